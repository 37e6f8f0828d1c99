"""Ephemeral containers in the API server: the validation of kube-apiserver (worded as it
words it), the pods/ephemeralcontainers subresource through the official Python client and
kubectl, and the main pod resource refusing to change them."""
from __future__ import annotations

import copy
import json

import pytest

from kubeapi.pod_defaulting import default_pod
from kubeapi.pod_validation import validate_ephemeral_containers_update, validate_pod_spec

IMAGE = "busybox:1.36"


def _pod(**spec) -> dict:
    pod = {"metadata": {"name": "p", "namespace": "ns"},
           "spec": {"containers": [{"name": "app", "image": IMAGE}],
                    "initContainers": [{"name": "setup", "image": IMAGE}], **spec}}
    default_pod(pod)
    return pod


def _with_debugger(pod: dict, **fields) -> dict:
    new = copy.deepcopy(pod)
    new["spec"].setdefault("ephemeralContainers", []).append(
        {"name": "debugger", "image": IMAGE, **fields})
    default_pod(new)
    return new


def _messages(errors: list[dict]) -> list[str]:
    return [f"{e['field']}: {e['message']}" for e in errors]


def test_a_new_ephemeral_container_is_valid():
    old = _pod()
    assert validate_ephemeral_containers_update(
        _with_debugger(old, targetContainerName="app", stdin=True, tty=True,
                       securityContext={"capabilities": {"add": ["SYS_PTRACE"]}}), old) == []


def test_defaults_fill_an_ephemeral_container_as_kube_does():
    pod = _with_debugger(_pod())
    debugger = pod["spec"]["ephemeralContainers"][0]
    assert debugger["imagePullPolicy"] == "IfNotPresent"
    assert debugger["terminationMessagePolicy"] == "File"
    assert debugger["terminationMessagePath"] == "/dev/termination-log"


@pytest.mark.parametrize("field, value", [
    ("ports", [{"containerPort": 80}]),
    ("resources", {"limits": {"cpu": "1"}}),
    ("livenessProbe", {"exec": {"command": ["true"]}}),
    ("readinessProbe", {"tcpSocket": {"port": 80}}),
    ("startupProbe", {"exec": {"command": ["true"]}}),
    ("lifecycle", {"preStop": {"exec": {"command": ["true"]}}}),
    ("restartPolicy", "Always"),
])
def test_fields_that_serve_the_pod_are_forbidden(field, value):
    old = _pod()
    errors = validate_ephemeral_containers_update(_with_debugger(old, **{field: value}), old)
    assert f"spec.ephemeralContainers[0].{field}: Forbidden: cannot be set for an Ephemeral " \
           "Container" in _messages(errors)


def test_sub_path_mounts_are_forbidden():
    old = _pod(volumes=[{"name": "v", "emptyDir": {}}])
    new = _with_debugger(old, volumeMounts=[{"name": "v", "mountPath": "/v", "subPath": "x"}])
    assert _messages(validate_ephemeral_containers_update(new, old)) == [
        "spec.ephemeralContainers[0].volumeMounts[0].subPath: Forbidden: cannot be set for an "
        "Ephemeral Container"]


@pytest.mark.parametrize("name", ["app", "setup"])
def test_names_are_unique_across_every_kind_of_container(name):
    old = _pod()
    new = _with_debugger(old)
    new["spec"]["ephemeralContainers"][0]["name"] = name
    assert _messages(validate_ephemeral_containers_update(new, old)) == [
        f'spec.ephemeralContainers[0].name: Duplicate value: "{name}"']


def test_two_ephemeral_containers_of_one_name_are_a_duplicate():
    old = _with_debugger(_pod())
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"].append(copy.deepcopy(
        new["spec"]["ephemeralContainers"][0]))
    assert _messages(validate_ephemeral_containers_update(new, old)) == [
        'spec.ephemeralContainers[1].name: Duplicate value: "debugger"']


def test_the_target_must_be_an_init_or_app_container():
    old = _with_debugger(_pod())
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"].append({"name": "second", "image": IMAGE,
                                               "targetContainerName": "debugger"})
    default_pod(new)
    assert _messages(validate_ephemeral_containers_update(new, old)) == [
        'spec.ephemeralContainers[1].targetContainerName: Not found: "debugger"']
    assert validate_ephemeral_containers_update(
        _with_debugger(_pod(), targetContainerName="setup"), _pod()) == []


def test_existing_ephemeral_containers_may_be_neither_removed_nor_changed():
    old = _with_debugger(_pod())
    removed = copy.deepcopy(old)
    del removed["spec"]["ephemeralContainers"]
    assert _messages(validate_ephemeral_containers_update(removed, old)) == [
        'spec.ephemeralContainers: Forbidden: existing ephemeral containers "debugger" may not '
        'be removed\n']
    changed = copy.deepcopy(old)
    changed["spec"]["ephemeralContainers"][0]["image"] = "busybox:1.37"
    [message] = _messages(validate_ephemeral_containers_update(changed, old))
    assert message.startswith('spec.ephemeralContainers: Forbidden: existing ephemeral '
                              'containers "debugger" may not be changed\n')
    assert "busybox:1.37" in message


def test_static_pods_have_none():
    old = _pod()
    old["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    assert _messages(validate_ephemeral_containers_update(_with_debugger(old), old)) == [
        ": Forbidden: static pods do not support ephemeral containers"]


def test_a_pod_cannot_be_created_with_ephemeral_containers():
    pod = _with_debugger(_pod())
    assert "spec.ephemeralContainers: Forbidden: cannot be set on create" in \
        _messages(validate_pod_spec(pod["spec"]))


# -- through the server -------------------------------------------------------------------------

def _create_pod(core, namespace: str, name: str = "target") -> None:
    """A pod already bound to a node, as the pods a debugger targets are: an unbound one gets
    the scheduler's PodScheduled=False written behind its create, and a read-modify-replace
    racing that write gets 409, as it would from kube-apiserver (CI failed so once)."""
    from kubernetes import client
    core.create_namespaced_pod(namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(node_name=f"no-kubelet-{namespace}", containers=[
            client.V1Container(name="app", image=IMAGE, command=["sleep", "3600"])])))


def _debugger(**fields) -> dict:
    return {"spec": {"ephemeralContainers": [
        {"name": "debugger", "image": IMAGE, "targetContainerName": "app",
         "command": ["ps"], **fields}]}}


def test_the_python_client_adds_reads_and_cannot_remove_one(core, namespace):
    from kubernetes.client.rest import ApiException
    _create_pod(core, namespace)
    added = core.patch_namespaced_pod_ephemeralcontainers("target", namespace, _debugger())
    [debugger] = added.spec.ephemeral_containers
    assert (debugger.name, debugger.target_container_name, debugger.image_pull_policy,
            debugger.termination_message_policy) == ("debugger", "app", "IfNotPresent", "File")
    assert added.metadata.generation == 2
    read = core.read_namespaced_pod_ephemeralcontainers("target", namespace)
    assert read.kind == "Pod" and read.spec.ephemeral_containers[0].name == "debugger"
    read.spec.ephemeral_containers = []
    with pytest.raises(ApiException) as refused:
        core.replace_namespaced_pod_ephemeralcontainers("target", namespace, read)
    body = json.loads(refused.value.body)
    assert refused.value.status == 422 and body["reason"] == "Invalid"
    assert body["message"] == ('Pod "target" is invalid: spec.ephemeralContainers: Forbidden: '
                               'existing ephemeral containers "debugger" may not be removed\n')


def test_what_the_subresource_ignores_and_refuses(core, namespace):
    from kubernetes.client.rest import ApiException
    _create_pod(core, namespace)
    patch = _debugger(ports=[{"containerPort": 80}])
    with pytest.raises(ApiException) as refused:
        core.patch_namespaced_pod_ephemeralcontainers("target", namespace, patch)
    assert refused.value.status == 422
    assert json.loads(refused.value.body)["message"] == (
        'Pod "target" is invalid: spec.ephemeralContainers[0].ports: Forbidden: cannot be set '
        "for an Ephemeral Container")
    # Only spec.ephemeralContainers counts: labels and the other containers stay as they were.
    added = core.patch_namespaced_pod_ephemeralcontainers(
        "target", namespace, {"metadata": {"labels": {"x": "y"}},
                              "spec": {**_debugger()["spec"],
                                       "containers": [{"name": "app", "image": "other:1"}]}})
    assert added.metadata.labels is None
    assert [c.image for c in added.spec.containers] == [IMAGE]
    assert core.read_namespaced_pod("target", namespace).status.phase == "Pending"


def test_the_main_resource_refuses_ephemeral_containers(server, core, namespace):
    _create_pod(core, namespace)
    r = server.kubectl("patch", "pod", "target", "-n", namespace, "-p",
                       json.dumps(_debugger()), check=False)
    assert r.returncode != 0
    assert 'The Pod "target" is invalid: spec: Forbidden: pod updates may not change fields ' \
           "other than" in r.stderr
    assert core.read_namespaced_pod("target", namespace).spec.ephemeral_containers is None


def test_discovery_and_verbs_of_the_subresource(server, core, namespace):
    _create_pod(core, namespace)
    found = json.loads(server.kubectl("get", "--raw", "/api/v1").stdout)
    [entry] = [r for r in found["resources"] if r["name"] == "pods/ephemeralcontainers"]
    assert entry["kind"] == "Pod" and sorted(entry["verbs"]) == ["get", "patch", "update"]
    r = server.kubectl("delete", "--raw",
                       f"/api/v1/namespaces/{namespace}/pods/target/ephemeralcontainers",
                       check=False)
    assert r.returncode != 0
    assert "Error from server (MethodNotAllowed): the server does not allow this method on the " \
           "requested resource" in r.stderr
    assert core.read_namespaced_pod("target", namespace).metadata.deletion_timestamp is None


def test_kubectl_debug_adds_an_ephemeral_container(server, core, namespace):
    """Before the subresource existed, kubectl debug panicked (issue 21)."""
    _create_pod(core, namespace)
    r = server.kubectl("debug", "target", "-n", namespace, f"--image={IMAGE}",
                       "--target=app", "--", "sh", "-c", "ps")
    assert "Targeting container \"app\"" in r.stderr + r.stdout
    [debugger] = core.read_namespaced_pod("target", namespace).spec.ephemeral_containers
    assert debugger.name.startswith("debugger-") and debugger.target_container_name == "app"
    assert debugger.command == ["sh", "-c", "ps"]
