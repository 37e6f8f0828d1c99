"""A container's environment through the real API server and pykubelet: value with $(VAR)
expansion, valueFrom (fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef), envFrom with
prefixes and invalid keys skipped, expansion in command and args; a missing ConfigMap key makes
the container wait in CreateContainerConfigError until the key appears; an immutable ConfigMap
still serves its pod's restarted container after it is deleted, a mutable one does not."""
from __future__ import annotations

import base64

import pytest

from kubelet import downward
from kubelet.config_objects import ConfigObjects
from kubelet.pods import Pod
from kubelet.sync.env_vars import ConfigError, environment
from kubelet_testlib import IMAGE, wait_for

pytestmark = pytest.mark.root


def env_pod(name: str, node: str, env: list[dict], env_from: list[dict] | None = None,
            command: list[str] | None = None, args: list[str] | None = None) -> dict:
    c = {"name": "c", "image": IMAGE, "imagePullPolicy": "Never", "env": env,
         "command": command or ["sh", "-c", "env | sort; exec sleep 1000"],
         "resources": {"requests": {"cpu": "250m", "memory": "32Mi"},
                       "limits": {"memory": "64Mi"}}}
    if args:
        c["args"] = args
    if env_from:
        c["envFrom"] = env_from
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "demo"},
                         "annotations": {"note": "hello"}},
            "spec": {"nodeName": node, "serviceAccountName": "builder",
                     "terminationGracePeriodSeconds": 1, "containers": [c]}}


@pytest.fixture(autouse=True)
def builder_account(request) -> None:
    """The pods run as the ServiceAccount "builder", which admission wants to exist."""
    if "namespace" not in request.fixturenames:
        return
    api, namespace = request.getfixturevalue("api"), request.getfixturevalue("namespace")
    api.client.create(f"/api/v1/namespaces/{namespace}/serviceaccounts",
                      {"metadata": {"name": "builder"}})


def logs(api, namespace: str, name: str) -> str:
    r = api.kubectl("logs", "-n", namespace, name)
    return r.stdout if r.returncode == 0 else ""


def test_env_sources_and_expansion(api, kubelet, namespace):
    client = api.client
    client.create(f"/api/v1/namespaces/{namespace}/configmaps", {
        "metadata": {"name": "settings"},
        "data": {"MODE": "fast", "LEVEL": "3", "1BAD": "x"}})
    client.create(f"/api/v1/namespaces/{namespace}/secrets", {
        "metadata": {"name": "keys"}, "data": {"TOKEN": base64.b64encode(b"t0k").decode()}})
    field = lambda path: {"valueFrom": {"fieldRef": {"fieldPath": path}}}  # noqa: E731
    env = [
        {"name": "POD", **field("metadata.name")},
        {"name": "NS", **field("metadata.namespace")},
        {"name": "UID", **field("metadata.uid")},
        {"name": "APP", **field("metadata.labels['app']")},
        {"name": "NOTE", **field("metadata.annotations['note']")},
        {"name": "NODE", **field("spec.nodeName")},
        {"name": "SA", **field("spec.serviceAccountName")},
        {"name": "HOST_IP", **field("status.hostIP")},
        {"name": "POD_IP", **field("status.podIP")},
        {"name": "POD_IPS", **field("status.podIPs")},
        {"name": "MEM_LIMIT_MI", "valueFrom": {"resourceFieldRef": {
            "resource": "limits.memory", "divisor": "1Mi"}}},
        {"name": "CPU_REQ_M", "valueFrom": {"resourceFieldRef": {
            "resource": "requests.cpu", "divisor": "1m"}}},
        {"name": "CPU_REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
        {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "settings",
                                                             "key": "MODE"}}},
        {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "keys",
                                                              "key": "TOKEN"}}},
        {"name": "MAYBE", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k",
                                                           "optional": True}}},
        {"name": "GREETING", "value": "$(POD) in $(NS) at $$(NS) with $(UNKNOWN)"},
        {"name": "cfg_MODE", "value": "overridden $(cfg_MODE)"},
    ]
    env_from = [{"configMapRef": {"name": "settings"}, "prefix": "cfg_"},
                {"configMapRef": {"name": "settings"}},
                {"secretRef": {"name": "keys"}},
                {"configMapRef": {"name": "nothing-here", "optional": True}}]
    api.create_pod(namespace, env_pod("envy", kubelet.node, env, env_from,
                                      command=["sh", "-c", "env | sort; echo \"$1\"", "--"],
                                      args=["$(GREETING)|$(FROM_CM)|$$(POD)"]))
    running = wait_for(lambda: (p := api.pod(namespace, "envy")) and
                       p["status"].get("phase") in ("Running", "Succeeded") and p,
                       what="pod ran")
    out = wait_for(lambda: "|" in (t := logs(api, namespace, "envy")) and t, what="output")
    lines = out.splitlines()
    got = dict(line.split("=", 1) for line in lines[:-1] if "=" in line)
    pod_ip = wait_for(lambda: api.pod(namespace, "envy")["status"].get("podIP"))
    assert {k: got.get(k) for k in (
        "POD", "NS", "UID", "APP", "NOTE", "NODE", "SA", "HOST_IP", "POD_IP", "POD_IPS",
        "MEM_LIMIT_MI", "CPU_REQ_M", "CPU_REQ", "FROM_CM", "FROM_SECRET", "GREETING",
        "cfg_MODE", "cfg_LEVEL", "TOKEN")} == {
        "POD": "envy", "NS": namespace, "UID": running["metadata"]["uid"], "APP": "demo",
        "NOTE": "hello", "NODE": kubelet.node, "SA": "builder", "HOST_IP": "127.0.0.1",
        "POD_IP": pod_ip, "POD_IPS": pod_ip, "MEM_LIMIT_MI": "64", "CPU_REQ_M": "250",
        "CPU_REQ": "1", "FROM_CM": "fast", "FROM_SECRET": "t0k",
        "GREETING": f"envy in {namespace} at $(NS) with $(UNKNOWN)",
        "cfg_MODE": "overridden fast", "cfg_LEVEL": "3", "TOKEN": "t0k"}
    assert got["cfg_1BAD"] == "x" and got["MODE"] == "fast"
    assert "MAYBE" not in got and "1BAD" not in got     # not a variable name: skipped
    assert lines[-1] == f"envy in {namespace} at $(NS) with $(UNKNOWN)|fast|$(POD)"


def test_missing_key_waits_in_create_container_config_error_then_recovers(api, kubelet,
                                                                          namespace):
    api.client.create(f"/api/v1/namespaces/{namespace}/configmaps", {
        "metadata": {"name": "late"}, "data": {"other": "1"}})
    api.create_pod(namespace, env_pod("waits", kubelet.node, [
        {"name": "V", "valueFrom": {"configMapKeyRef": {"name": "late", "key": "wanted"}}}],
        command=["sh", "-c", "echo V=$V; exec sleep 1000"]))

    def waiting() -> dict:
        return api.container_status(namespace, "waits").get("state", {}).get("waiting") or {}
    state = wait_for(lambda: waiting().get("reason") == "CreateContainerConfigError" and
                     waiting(), what="CreateContainerConfigError")
    assert state["message"] == f"couldn't find key wanted in ConfigMap {namespace}/late"
    assert api.phase(namespace, "waits") == "Pending"
    api.client.patch(f"/api/v1/namespaces/{namespace}/configmaps/late",
                     {"data": {"wanted": "here"}})
    wait_for(lambda: api.running(namespace, "waits"), timeout=40, what="recovered")
    wait_for(lambda: logs(api, namespace, "waits") == "V=here\n", what="value")


def test_an_immutable_config_map_outlives_its_deletion_for_its_pod(api, kubelet, namespace):
    """The kubelet's watch-based cache keeps an object it read as immutable and stops watching
    it: the container's restart after the ConfigMap is deleted still gets the value. A mutable
    ConfigMap's deletion reaches the restart through its watch."""
    for name, immutable in (("frozen", True), ("fluid", False)):
        api.client.create(f"/api/v1/namespaces/{namespace}/configmaps", {
            "metadata": {"name": name}, "data": {"V": name}, "immutable": immutable})
        api.create_pod(namespace, env_pod(name, kubelet.node, [
            {"name": "V", "valueFrom": {"configMapKeyRef": {"name": name, "key": "V"}}}],
            command=["sh", "-c", "echo V=$V; sleep 1; exit 1"]))
    for name in ("frozen", "fluid"):
        wait_for(lambda: f"V={name}" in logs(api, namespace, name), what=f"{name}'s first run")
    for name in ("frozen", "fluid"):
        api.client.delete(f"/api/v1/namespaces/{namespace}/configmaps/{name}")
    # The first restart comes after a 10 s back-off, so after the deletions.
    wait_for(lambda: api.container_status(namespace, "frozen").get("restartCount", 0) >= 1,
             timeout=60, what="frozen restarted")
    wait_for(lambda: "V=frozen" in logs(api, namespace, "frozen"), what="frozen's value")

    def waiting() -> dict:
        return api.container_status(namespace, "fluid").get("state", {}).get("waiting") or {}
    state = wait_for(lambda: waiting().get("reason") == "CreateContainerConfigError" and
                     waiting(), timeout=60, what="fluid's CreateContainerConfigError")
    assert state["message"] == 'configmaps "fluid" not found'


def test_missing_objects_have_the_kubelets_messages():
    """Without an API server (standalone) and with objects that are not there."""
    obj = env_pod("p", "n", [])
    obj["metadata"].update(namespace="ns", uid="u")
    pod = Pod(obj)
    info = downward.PodInfo(["10.0.0.1"], [], 2, 1 << 30)
    container = {"name": "c", "env": [{"name": "X", "valueFrom": {
        "secretKeyRef": {"name": "s", "key": "k"}}}]}
    with pytest.raises(ConfigError, match="^couldn't get secret ns/s, no kubeClient defined$"):
        environment(pod, container, ConfigObjects(None), info)
    container = {"name": "c", "env": [{"name": "L", "valueFrom": {"resourceFieldRef": {
        "resource": "limits.cpu", "divisor": "1m"}}}]}
    assert environment(pod, dict(container, resources={}), ConfigObjects(None), info) == \
        [("L", "2000")]
    with pytest.raises(ConfigError, match="unsupported fieldPath: spec.bogus"):
        environment(pod, {"name": "c", "env": [{"name": "F", "valueFrom": {
            "fieldRef": {"fieldPath": "spec.bogus"}}}]}, ConfigObjects(None), info)
