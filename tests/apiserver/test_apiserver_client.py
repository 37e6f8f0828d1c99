"""The official kubernetes Python client against pyapiserver: verbs, concurrency, watch."""
from __future__ import annotations

import json
import threading

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException


def pod(name: str, labels: dict | None = None, node_selector: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"nodeSelector": node_selector or {"pool": "nowhere"},
                     "containers": [{"name": "c", "image": "busybox"}]}}


def status_of(e: ApiException) -> dict:
    body = json.loads(e.body)
    assert body["kind"] == "Status" and body["code"] == e.status
    return body


def test_update_conflict_returns_409(core, namespace):
    cm = core.create_namespaced_config_map(namespace, {"metadata": {"name": "c1"},
                                                       "data": {"k": "v"}})
    stale = cm.metadata.resource_version
    cm.data = {"k": "v2"}
    updated = core.replace_namespaced_config_map("c1", namespace, cm)
    assert int(updated.metadata.resource_version) > int(stale)
    cm.metadata.resource_version = stale
    cm.data = {"k": "v3"}
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("c1", namespace, cm)
    body = status_of(e.value)
    assert e.value.status == 409 and body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]
    assert core.read_namespaced_config_map("c1", namespace).data == {"k": "v2"}


def test_watch_resumes_from_resource_version(core, namespace):
    first = core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "b"}})
    core.patch_namespaced_config_map("a", namespace, {"data": {"x": "1"}})
    core.delete_namespaced_config_map("b", namespace)
    w = watch.Watch()
    seen = []
    for ev in w.stream(core.list_namespaced_config_map, namespace,
                       resource_version=first.metadata.resource_version, timeout_seconds=2):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 3:
            w.stop()
    assert seen == [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]


def test_watch_sees_live_changes_with_selectors(core, namespace):
    w = watch.Watch()
    events: list[tuple[str, str]] = []

    # From the list's resourceVersion on, the watch sees every change after it, however late
    # its thread connects.
    listed = core.list_namespaced_pod(namespace, label_selector="app=web")

    def consume():
        for ev in w.stream(core.list_namespaced_pod, namespace, label_selector="app=web",
                           resource_version=listed.metadata.resource_version,
                           timeout_seconds=10, _preload_content=True):
            if ev["type"] != "MODIFIED":  # the scheduler also writes status
                events.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "DELETED":
                w.stop()
    t = threading.Thread(target=consume)
    t.start()
    core.create_namespaced_pod(namespace, pod("p1", {"app": "web"}))
    core.create_namespaced_pod(namespace, pod("p2", {"app": "db"}))
    core.patch_namespaced_pod("p2", namespace, {"metadata": {"labels": {"app": "web"}}})
    core.patch_namespaced_pod("p1", namespace, {"metadata": {"labels": {"app": "db"}}})
    t.join(15)
    # p2 starts matching (ADDED), p1 stops matching (DELETED), as kube-apiserver reports it.
    assert events == [("ADDED", "p1"), ("ADDED", "p2"), ("DELETED", "p1")]


def test_list_paging_and_selectors(core, namespace):
    for i in range(7):
        core.create_namespaced_config_map(namespace, {"metadata": {
            "name": f"cm{i}", "labels": {"parity": "even" if i % 2 == 0 else "odd"}}})
    page = core.list_namespaced_config_map(namespace, limit=3)
    names = [c.metadata.name for c in page.items]
    assert len(names) == 3 and page.metadata._continue
    rv = page.metadata.resource_version
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "cm9"}})
    while page.metadata._continue:
        page = core.list_namespaced_config_map(namespace, limit=3,
                                               _continue=page.metadata._continue)
        assert page.metadata.resource_version == rv  # one consistent snapshot
        names += [c.metadata.name for c in page.items]
    # kube-root-ca.crt: every namespace holds one, as in kube
    assert [n for n in names if n != "kube-root-ca.crt"] == [f"cm{i}" for i in range(7)]
    odd = core.list_namespaced_config_map(namespace, label_selector="parity in (odd)")
    assert [c.metadata.name for c in odd.items] == ["cm1", "cm3", "cm5"]
    one = core.list_namespaced_config_map(namespace, field_selector="metadata.name=cm4")
    assert [c.metadata.name for c in one.items] == ["cm4"]
    with pytest.raises(ApiException) as e:
        core.list_namespaced_config_map(namespace, field_selector="data.x=1")
    assert e.value.status == 400 and "field label not supported" in status_of(e.value)["message"]


def test_patch_types(core, namespace):
    core.create_namespaced_pod(namespace, {
        **pod("p"), "spec": {**pod("p")["spec"], "containers": [
            {"name": "a", "image": "busybox:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "busybox:1"}]}})
    # Strategic merge: containers merge by name; only b's image changes.
    core.patch_namespaced_pod("p", namespace, {"spec": {"containers": [
        {"name": "b", "image": "busybox:2"}]}})
    p = core.read_namespaced_pod("p", namespace)
    assert [(c.name, c.image) for c in p.spec.containers] == [("a", "busybox:1"),
                                                              ("b", "busybox:2")]
    assert p.spec.containers[0].env[0].value == "1"
    # JSON patch
    core.patch_namespaced_pod(
        "p", namespace,
        [{"op": "add", "path": "/metadata/labels", "value": {"j": "1"}},
         {"op": "replace", "path": "/spec/containers/0/image", "value": "busybox:3"}],
        _content_type="application/json-patch+json")
    p = core.read_namespaced_pod("p", namespace)
    assert p.metadata.labels == {"j": "1"} and p.spec.containers[0].image == "busybox:3"
    # JSON patch whose test fails: 422, nothing changes
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_pod(
            "p", namespace, [{"op": "test", "path": "/metadata/labels/j", "value": "2"},
                             {"op": "remove", "path": "/metadata/labels"}],
            _content_type="application/json-patch+json")
    assert e.value.status == 422
    # JSON merge patch: null deletes
    core.patch_namespaced_pod("p", namespace, {"metadata": {"labels": {"j": None, "m": "1"}}},
                              _content_type="application/merge-patch+json")
    assert core.read_namespaced_pod("p", namespace).metadata.labels == {"m": "1"}


def test_validation_errors_are_readable(core, namespace):
    bad = pod("Bad_Name")
    bad["spec"]["containers"].append({"name": "c", "image": "x",
                                      "ports": [{"containerPort": 70000}]})
    with pytest.raises(ApiException) as e:
        core.create_namespaced_pod(namespace, bad)
    body = status_of(e.value)
    assert e.value.status == 422 and body["reason"] == "Invalid"
    fields = {c["field"]: c["reason"] for c in body["details"]["causes"]}
    assert fields["metadata.name"] == "FieldValueInvalid"
    assert fields["spec.containers[1].name"] == "FieldValueDuplicate"
    assert fields["spec.containers[1].ports[0].containerPort"] == "FieldValueInvalid"
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod("missing", namespace)
    assert e.value.status == 404 and status_of(e.value)["details"]["name"] == "missing"
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("no-such-namespace", {"metadata": {"name": "x"}})
    assert e.value.status == 404 and 'namespaces "no-such-namespace" not found' in \
        status_of(e.value)["message"]


def test_graceful_deletion_until_grace_zero(core, namespace):
    core.create_namespaced_pod(namespace, pod("g"))
    # Bound to a node (nothing runs it here): deletion must wait for the kubelet.
    core.create_namespaced_pod_binding("g", namespace, {
        "metadata": {"name": "g"}, "target": {"kind": "Node", "name": "somenode"}},
        _preload_content=False)
    bound = core.read_namespaced_pod("g", namespace)
    assert bound.spec.node_name == "somenode"
    with pytest.raises(ApiException) as e:  # a second binding is a conflict
        core.create_namespaced_pod_binding("g", namespace, {
            "metadata": {"name": "g"}, "target": {"kind": "Node", "name": "other"}},
            _preload_content=False)
    assert e.value.status == 409
    core.delete_namespaced_pod("g", namespace)
    terminating = core.read_namespaced_pod("g", namespace)
    assert terminating.metadata.deletion_timestamp is not None
    assert terminating.metadata.deletion_grace_period_seconds == 30
    # The kubelet reports the containers gone through /status, then deletes with grace 0.
    core.patch_namespaced_pod_status("g", namespace, {"status": {"phase": "Running"}})
    assert core.read_namespaced_pod("g", namespace).status.phase == "Running"
    core.delete_namespaced_pod("g", namespace, grace_period_seconds=0)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod("g", namespace)
    assert e.value.status == 404


def test_status_subresource_and_main_resource_are_separate(core, namespace):
    core.create_namespaced_pod(namespace, pod("s"))
    core.patch_namespaced_pod_status("s", namespace, {"status": {"podIP": "198.18.0.5"}})
    p = core.read_namespaced_pod("s", namespace)
    assert p.status.pod_ip == "198.18.0.5"
    # A status change through the main resource is ignored, as kube does.
    core.patch_namespaced_pod("s", namespace, {"status": {"podIP": "198.18.0.6"}})
    assert core.read_namespaced_pod("s", namespace).status.pod_ip == "198.18.0.5"
    listed = core.list_pod_for_all_namespaces(field_selector="status.podIP=198.18.0.5")
    assert [x.metadata.name for x in listed.items] == ["s"]


def test_leases_nodes_events_secrets(server, core, namespace):
    coord = client.CoordinationV1Api(core.api_client)
    lease = coord.create_namespaced_lease(namespace, {
        "metadata": {"name": "n1"}, "spec": {"holderIdentity": "n1",
                                             "leaseDurationSeconds": 40}})
    lease.spec.renew_time = "2026-01-01T00:00:00.000000Z"
    assert coord.replace_namespaced_lease("n1", namespace, lease).spec.holder_identity == "n1"
    secret = core.create_namespaced_secret(namespace, {"metadata": {"name": "s"},
                                                       "stringData": {"pw": "hunter2"}})
    assert secret.data == {"pw": "aHVudGVyMg=="} and secret.type == "Opaque"
    core.create_namespaced_event(namespace, {
        "metadata": {"name": "e1"}, "reason": "Pulled", "message": "done", "type": "Normal",
        "involvedObject": {"kind": "Pod", "name": "x", "namespace": namespace}})
    found = core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.name=x,involvedObject.namespace={namespace},"
        "involvedObject.kind=Pod")
    assert [e.reason for e in found.items] == ["Pulled"]
