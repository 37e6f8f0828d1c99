"""Server-side apply and managedFields: field sets in kube-apiserver's FieldsV1 form, Update
entries for every write, apply conflicts, forced ownership moves and pruning. Units on the
pure functions, then the real kubectl and the official Python client against pyapiserver."""
from __future__ import annotations

import json
import os
import sys

import pytest
import yaml

from apiserver.patch import managed_fields as mf
from apiserver.patch.apply import apply
from apiserver.patch.field_manager import Request, manager_for, record_update
from apiserver.patch.typed_schema import root_type
from kubeapi.status import ApiError

CM = Request("kubectl", "v1", "ConfigMap")


def _cm(labels: dict | None = None, **data: str) -> dict:
    meta: dict = {"name": "x"}
    if labels is not None:
        meta["labels"] = labels
    out = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
    return {**out, "data": data} if data else out


def _entries(obj: dict) -> dict[tuple[str, str], dict]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"]["managedFields"]}


# units


def test_fields_v1_round_trip_and_paths():
    tree = {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {'k:{"name":"c"}': {".": {}, "f:image": {}}}},
            "f:finalizers": {'v:"x"': {}}}
    fields = mf.from_json(tree)
    assert (("f", "metadata"), ("f", "labels")) in fields
    assert (("f", "metadata"),) not in fields
    assert mf.to_json(fields) == tree
    assert mf.to_json(fields | mf.from_json({"f:a": {}})) == {**tree, "f:a": {}}
    path = (("f", "spec"), ("f", "containers"), ("k", '{"name":"c"}'), ("f", "image"))
    assert mf.path_string(path) == '.spec.containers[name="c"].image'
    assert mf.path_string((("f", "a"), ("v", "80"), ("i", "2"))) == ".a[=80][2]"
    for bad in ({"x:y": {}}, {"f:a": []}, {'k:[1]': {}}):
        with pytest.raises(ValueError):
            mf.from_json(bad)


def test_field_set_of_a_pod_follows_the_schema():
    pod = {"metadata": {"finalizers": ["a/b"], "labels": {}},
           "spec": {"containers": [{"name": "c", "image": "i", "args": ["x", "y"],
                                    "ports": [{"containerPort": 80}],
                                    "resources": {"limits": {"cpu": "1"}}}],
                    "tolerations": [{"key": "k"}]}}
    got = mf.to_json(mf.from_object(pod, root_type("v1", "Pod")))
    assert got == {
        "f:metadata": {"f:finalizers": {'v:"a/b"': {}}, "f:labels": {}},
        "f:spec": {"f:containers": {'k:{"name":"c"}': {
            ".": {}, "f:args": {}, "f:image": {}, "f:name": {},
            "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {
                ".": {}, "f:containerPort": {}}},
            "f:resources": {"f:limits": {"f:cpu": {}}}}},
            "f:tolerations": {}}}


def test_atomic_types_and_lists_as_kube_tags_them():
    pod = {"metadata": {"ownerReferences": [{"uid": "u", "name": "o", "kind": "K"}]},
           "spec": {"nodeSelector": {"disk": "ssd"}, "imagePullSecrets": [{"name": "s"}],
                    "containers": [{"name": "c", "env": [{"name": "E", "valueFrom": {
                        "configMapKeyRef": {"name": "cm", "key": "k"}}}]}]},
           "status": {"hostIPs": [{"ip": "198.18.0.1"}]}}
    assert mf.to_json(mf.from_object(pod, root_type("v1", "Pod"))) == {
        "f:metadata": {"f:ownerReferences": {'k:{"uid":"u"}': {}}},
        "f:spec": {"f:containers": {'k:{"name":"c"}': {".": {}, "f:env": {'k:{"name":"E"}': {
            ".": {}, "f:name": {}, "f:valueFrom": {"f:configMapKeyRef": {}}}}, "f:name": {}}},
            "f:imagePullSecrets": {'k:{"name":"s"}': {}}, "f:nodeSelector": {}},
        "f:status": {"f:hostIPs": {}}}


def test_a_kind_without_schema_is_deduced():
    widget = {"metadata": {"name": "w", "labels": {"a": "b"}},
              "spec": {"list": [1, 2], "deep": {"x": 1}}}
    assert mf.to_json(mf.from_object(widget, root_type("example.com/v1", "Widget"))) == {
        "f:metadata": {"f:labels": {"f:a": {}}, "f:name": {}},
        "f:spec": {".": {}, "f:deep": {".": {}, "f:x": {}}, "f:list": {}}}


def test_update_owns_what_it_changed_and_others_lose_it():
    live = apply(None, _cm({"app": "a"}, k="v"), CM, "t1")
    new = json.loads(json.dumps(live))
    new["metadata"]["labels"]["app"] = "b"
    new["metadata"]["labels"]["tier"] = "web"
    record_update(live, new, Request("kubectl-label", "v1", "ConfigMap"), "t2")
    entries = _entries(new)
    assert entries["kubectl", "Apply"]["fieldsV1"] == {"f:data": {"f:k": {}}}
    assert entries["kubectl-label", "Update"] == {
        "manager": "kubectl-label", "operation": "Update", "apiVersion": "v1", "time": "t2",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}, "f:tier": {}}}}}
    # A write that changes nothing leaves the entries as they were.
    same = json.loads(json.dumps(new))
    record_update(new, same, Request("other", "v1", "ConfigMap"), "t3")
    assert same["metadata"]["managedFields"] == new["metadata"]["managedFields"]
    # Removing the manager's only fields drops its entry.
    gone = json.loads(json.dumps(new))
    del gone["metadata"]["labels"]
    record_update(new, gone, Request("kubectl-edit", "v1", "ConfigMap"), "t4")
    assert [e["manager"] for e in gone["metadata"]["managedFields"]] == ["kubectl"]


def test_create_owns_new_maps_as_members():
    obj = _cm({"a": "b"}, k="v")
    record_update(None, obj, Request("kubectl-create", "v1", "ConfigMap"), "t")
    assert obj["metadata"]["managedFields"][0]["fieldsV1"] == {
        "f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}}


def test_apply_conflicts_force_and_shared_ownership():
    live = apply(None, _cm({"app": "a"}), CM, "t1")
    shared = apply(live, _cm({"app": "a"}), Request("other", "v1", "ConfigMap"), "t2")
    assert set(_entries(shared)) == {("kubectl", "Apply"), ("other", "Apply")}
    with pytest.raises(ApiError) as e:
        apply(shared, _cm({"app": "c"}, k="v"), Request("third", "v1", "ConfigMap"), "t3")
    assert e.value.code == 409
    assert e.value.message == ('Apply failed with 2 conflicts: conflicts with "kubectl":\n'
                               '- .metadata.labels.app\nconflicts with "other":\n'
                               '- .metadata.labels.app')
    assert sorted(c["message"] for c in e.value.causes) == [
        'conflict with "kubectl"', 'conflict with "other"']
    assert e.value.causes[0]["type"] == "FieldManagerConflict"
    assert e.value.causes[0]["field"] == ".metadata.labels.app"
    # The second applier changed nothing: its entry has no time, as in kube-apiserver.
    assert "time" not in _entries(shared)["other", "Apply"]
    forced = apply(shared, _cm({"app": "c"}), Request("third", "v1", "ConfigMap"), "t3",
                   force=True)
    assert forced["metadata"]["labels"] == {"app": "c"}
    assert [e["manager"] for e in forced["metadata"]["managedFields"]] == ["third"]


def test_apply_prunes_only_what_nobody_else_owns():
    live = apply(None, _cm({"a": "1", "b": "2"}, x="1", y="2"), CM, "t1")
    other = json.loads(json.dumps(live))
    other["data"]["z"] = "3"
    record_update(live, other, Request("editor", "v1", "ConfigMap"), "t2")
    shared = apply(other, _cm({"b": "2"}, y="2"), Request("second", "v1", "ConfigMap"), "t3")
    pruned = apply(shared, _cm(None, x="1"), CM, "t4")
    assert pruned["metadata"]["labels"] == {"b": "2"}  # "second" still applies b
    assert pruned["data"] == {"x": "1", "y": "2", "z": "3"}
    emptied = apply(apply(None, _cm({"a": "1"}), CM, "t1"), _cm(None, k="v"), CM, "t2")
    assert "labels" not in emptied["metadata"]  # the named field goes with its last label
    live = apply(None, _cm(None, k="v"), CM, "t1")
    labelled = json.loads(json.dumps(live))
    labelled["metadata"]["labels"] = {"b": "2"}
    record_update(live, labelled, Request("kubectl-label", "v1", "ConfigMap"), "t2")
    labelled = apply(labelled, _cm({"a": "1"}, k="v"), CM, "t3")
    unlabelled = json.loads(json.dumps(labelled))
    del unlabelled["metadata"]["labels"]["b"]
    record_update(labelled, unlabelled, Request("editor", "v1", "ConfigMap"), "t4")
    assert _entries(unlabelled)["kubectl-label", "Update"]["fieldsV1"] == {
        "f:metadata": {"f:labels": {}}}  # owns the labels map, not any label in it
    emptied = apply(unlabelled, _cm(None, k="v"), CM, "t5")
    assert "labels" not in emptied["metadata"]  # emptied by pruning: gone, as a null is


def test_apply_checks_the_type_and_managed_fields():
    for config, message in (({"metadata": {"name": "x"}}, "invalid object type: /, Kind="),
                            ({**_cm(), "apiVersion": "apps/v1"},
                             "invalid object type: apps/v1, Kind=ConfigMap"),
                            ({**_cm(), "metadata": {"name": "x", "managedFields": []}},
                             "metadata.managedFields must be nil")):
        with pytest.raises(ApiError) as e:
            apply(None, config, CM, "t")
        assert (e.value.code, e.value.message) == (400, message)


def test_apply_leaves_the_live_object_alone():
    live = apply(None, _cm({"a": "1"}, k="v"), CM, "t1")
    live["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": "{}"}
    before = json.loads(json.dumps(live))
    out = apply(live, {"apiVersion": "v1", "kind": "ConfigMap"}, CM, "t2")
    assert live == before and out is not live
    assert out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] \
        == '{"apiVersion":"v1","kind":"ConfigMap"}\n'


def test_apply_merges_containers_by_name():
    who = Request("kubectl", "v1", "Pod", has_status=True)
    spec = {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}
    live = apply(None, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                        "spec": spec, "status": {"phase": "X"}}, who, "t")
    assert "f:status" not in live["metadata"]["managedFields"][0]["fieldsV1"]
    live["spec"]["containers"][1]["imagePullPolicy"] = "Always"  # a default: nobody's
    again = apply(live, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                         "spec": {"containers": [{"name": "b", "image": "2"}]}}, who, "t")
    assert again["spec"]["containers"] == [{"name": "b", "image": "2",
                                           "imagePullPolicy": "Always"}]


def test_manager_from_user_agent_and_validation():
    ua = "kubectl/v1.31.0 (linux/amd64) kubernetes/abc"
    assert manager_for({}, ua, "CreateOptions") == "kubectl"
    assert manager_for({}, "OpenAPI-Generator/31.0.0/python", "x") == "OpenAPI-Generator"
    assert manager_for({"fieldManager": "mine"}, ua, "UpdateOptions") == "mine"
    assert manager_for({}, "a" * 200, "CreateOptions") == "a" * 128
    for query, apply_, message in (
            ({"fieldManager": "m" * 129}, False, 'CreateOptions.meta.k8s.io "" is invalid: '
             'fieldManager: Too long: may not be more than 128 bytes'),
            ({"fieldManager": "a\x07"}, False, 'CreateOptions.meta.k8s.io "" is invalid: '
             'fieldManager: Invalid value: "a\x07": invalid character U+0007 (at position 1)')):
        with pytest.raises(ApiError) as e:
            manager_for(query, "", "CreateOptions", apply=apply_)
        assert e.value.code == 422 and e.value.message == message
        assert e.value.status()["details"]["group"] == "meta.k8s.io"


# kubectl and the Python client against the real server


def _apply(server, namespace, obj, *args, check=True):
    return server.kubectl("apply", "--server-side", "-n", namespace, *args, "-f", "-",
                          input=json.dumps(obj), check=check)


def _live(server, namespace, what):
    return yaml.safe_load(server.kubectl("get", *what, "-n", namespace, "-o", "yaml",
                                         "--show-managed-fields").stdout)


def test_kubectl_conflict_force_and_prune(server, namespace):
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "settings", "labels": {"app": "a"}},
          "data": {"a": "1", "b": "2"}}
    _apply(server, namespace, cm)
    server.kubectl("label", "cm", "settings", "-n", namespace, "app=b", "--overwrite")
    cm["metadata"]["labels"]["app"] = "c"
    failed = _apply(server, namespace, cm, check=False)
    assert failed.returncode == 1
    assert ('Apply failed with 1 conflict: conflict with "kubectl-label" using v1: '
            '.metadata.labels.app') in failed.stderr
    live = _live(server, namespace, ["cm", "settings"])
    assert live["metadata"]["labels"] == {"app": "b"}
    entries = {e["manager"]: e for e in live["metadata"]["managedFields"]}
    assert entries["kubectl"]["operation"] == "Apply"
    assert entries["kubectl"]["fieldsV1"] == {"f:data": {"f:a": {}, "f:b": {}}}
    label = entries["kubectl-label"]
    assert (label["operation"], label["apiVersion"], label["fieldsType"]) == \
        ("Update", "v1", "FieldsV1")
    assert label["fieldsV1"] == {"f:metadata": {"f:labels": {"f:app": {}}}}
    assert label["time"].endswith("Z")

    del cm["data"]["b"]
    _apply(server, namespace, cm, "--force-conflicts")
    live = _live(server, namespace, ["cm", "settings"])
    assert live["metadata"]["labels"] == {"app": "c"} and live["data"] == {"a": "1"}
    assert [(e["manager"], e["operation"]) for e in live["metadata"]["managedFields"]] == \
        [("kubectl", "Apply")]
    assert live["metadata"]["managedFields"][0]["fieldsV1"] == {
        "f:data": {"f:a": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}


def test_kubectl_edit_and_client_side_apply_managers(server, namespace, tmp_path,
                                                     monkeypatch):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ed"},
          "data": {"a": "1"}}
    server.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(cm))
    editor = tmp_path / "editor.py"
    editor.write_text(f"#!{sys.executable}\nimport sys\np = sys.argv[-1]\n"
                      "t = open(p).read().replace('a: \"1\"', 'a: \"2\"')\n"
                      "open(p, 'w').write(t)\n")
    os.chmod(editor, 0o755)
    monkeypatch.setenv("KUBE_EDITOR", str(editor))
    server.kubectl("edit", "cm", "ed", "-n", namespace)
    live = _live(server, namespace, ["cm", "ed"])
    assert live["data"] == {"a": "2"}
    entries = {e["manager"]: e["fieldsV1"] for e in live["metadata"]["managedFields"]}
    assert entries["kubectl-edit"] == {"f:data": {"f:a": {}}}
    assert entries["kubectl-client-side-apply"]["f:metadata"] == {
        "f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}}
    # It keeps the data map it created, not the key another manager changed.
    assert entries["kubectl-client-side-apply"]["f:data"] == {}


POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
       "spec": {"containers": [{"name": "web", "image": "nginx:1",
                                "ports": [{"containerPort": 80}]},
                               {"name": "side", "image": "busybox:1"}]}}


def test_kubectl_pod_containers_by_merge_key(server, namespace):
    _apply(server, namespace, POD)
    server.kubectl("set", "image", "pod/web", "-n", namespace, "web=nginx:2")
    pod = json.loads(json.dumps(POD))
    pod["spec"]["containers"][0]["image"] = "nginx:3"
    failed = _apply(server, namespace, pod, check=False)
    assert failed.returncode == 1
    assert ('conflict with "kubectl-set" using v1: .spec.containers[name="web"].image'
            in failed.stderr)
    live = _live(server, namespace, ["pod", "web"])
    applied = next(e for e in live["metadata"]["managedFields"] if e["manager"] == "kubectl")
    containers = applied["fieldsV1"]["f:spec"]["f:containers"]
    assert set(containers) == {'k:{"name":"side"}', 'k:{"name":"web"}'}
    assert containers['k:{"name":"web"}']["f:ports"] == {
        'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}
    assert "f:image" not in containers['k:{"name":"web"}']  # kubectl-set has it now

    _apply(server, namespace, pod, "--force-conflicts")
    live = _live(server, namespace, ["pod", "web"])
    assert [c["image"] for c in live["spec"]["containers"]] == ["nginx:3", "busybox:1"]
    assert "kubectl-set" not in {e["manager"] for e in live["metadata"]["managedFields"]}


def test_python_client_managers_status_and_conflict(server, namespace, core):
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="py"), data={"k": "v"}))
    live = core.read_namespaced_config_map("py", namespace)
    entry = live.metadata.managed_fields[0]
    assert (entry.manager, entry.operation, entry.fields_type) == \
        ("OpenAPI-Generator", "Update", "FieldsV1")
    assert entry.fields_v1 == {"f:data": {".": {}, "f:k": {}}}

    applied = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "py"},
               "data": {"k": "other"}}
    elsewhere = {**applied, "metadata": {"name": "py", "namespace": "elsewhere"}}
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_config_map("py", namespace, elsewhere, field_manager="tool",
                                         _content_type="application/apply-patch+yaml")
    assert e.value.status == 400 and json.loads(e.value.body)["message"] == (
        f"the namespace of the object (elsewhere) does not match the namespace on the "
        f"request ({namespace})")
    for kwargs, message in (
            ({"_content_type": "application/apply-patch+yaml"},
             "fieldManager: Required value: is required for apply patch"),
            ({"force": True, "_content_type": "application/merge-patch+json"},
             "force: Forbidden: may not be specified for non-apply patch")):
        with pytest.raises(ApiException) as e:
            core.patch_namespaced_config_map("py", namespace, applied, **kwargs)
        assert e.value.status == 422
        assert json.loads(e.value.body)["message"] == \
            f'PatchOptions.meta.k8s.io "" is invalid: {message}'
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_config_map("py", namespace, applied, field_manager="tool",
                                         _content_type="application/apply-patch+yaml")
    body = json.loads(e.value.body)
    assert e.value.status == 409 and body["reason"] == "Conflict"
    assert body["details"]["causes"] == [{
        "type": "FieldManagerConflict", "message": 'conflict with "OpenAPI-Generator" using v1',
        "field": ".data.k"}]
    core.patch_namespaced_config_map("py", namespace, applied, field_manager="tool",
                                     force=True,
                                     _content_type="application/apply-patch+yaml")
    live = core.read_namespaced_config_map("py", namespace)
    assert live.data == {"k": "other"}
    assert [(m.manager, m.operation, m.fields_v1) for m in live.metadata.managed_fields] == \
        [("tool", "Apply", {"f:data": {"f:k": {}}}), ("OpenAPI-Generator", "Update",
                                                      {"f:data": {}})]

    core.create_namespaced_pod(namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name="st"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")])))
    core.patch_namespaced_pod_status("st", namespace, {"status": {"message": "hello"}},
                                     field_manager="kubelet")
    pod = core.read_namespaced_pod("st", namespace)
    status_entry = next(m for m in pod.metadata.managed_fields if m.manager == "kubelet")
    assert status_entry.subresource == "status"
    assert status_entry.fields_v1 == {"f:status": {"f:message": {}}}
    created = next(m for m in pod.metadata.managed_fields if m.manager == "OpenAPI-Generator")
    assert "f:status" not in created.fields_v1
    # Its defaults are the creator's; what admission adds (tolerations) is nobody's.
    assert "f:restartPolicy" in created.fields_v1["f:spec"]
    assert "f:tolerations" not in created.fields_v1["f:spec"] and pod.spec.tolerations
    assert created.fields_v1["f:spec"]["f:containers"]['k:{"name":"c"}']["."] == {}


def test_untracked_objects_reset_and_the_cap_on_updaters():
    untracked = _cm(None, k="v")
    edited = json.loads(json.dumps(untracked)) | {"data": {"k": "w"}}
    record_update(untracked, edited, Request("kubectl-edit", "v1", "ConfigMap"), "t")
    assert "managedFields" not in edited["metadata"]  # not tracked until applied to
    applied = apply(untracked, _cm(None, k="w"), CM, "t2", force=True)
    assert [(e["manager"], e["fieldsV1"]) for e in applied["metadata"]["managedFields"]] == \
        [("kubectl", {"f:data": {"f:k": {}}}), ("before-first-apply", {"f:data": {}})]
    applied = apply(_cm({"a": "b"}, k="v"), _cm(None, k="v"), CM, "t2")
    assert {e["manager"]: e["fieldsV1"] for e in applied["metadata"]["managedFields"]} == {
        "kubectl": {"f:data": {"f:k": {}}},
        "before-first-apply": {"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {
            ".": {}, "f:a": {}}}}}  # k: the same value, owned by both
    reset = json.loads(json.dumps(applied))
    reset["metadata"]["managedFields"] = [{}]
    record_update(applied, reset, Request("x", "v1", "ConfigMap"), "t3")
    assert "managedFields" not in reset["metadata"]

    obj = _cm(None, k="0")
    record_update(None, obj, Request("creator", "v1", "ConfigMap"), "t00")
    for i in range(1, 12):
        new = json.loads(json.dumps(obj))
        new["data"][f"k{i}"] = "x"
        record_update(obj, new, Request(f"m{i}", "v1", "ConfigMap"), f"t{i:02}")
        obj = new
    managers = [e["manager"] for e in obj["metadata"]["managedFields"]]
    assert len(managers) == 10 and managers[0] == "ancient-changes"
    assert obj["metadata"]["managedFields"][0]["time"] == "t02"
    assert obj["metadata"]["managedFields"][0]["fieldsV1"] == {
        "f:data": {".": {}, "f:k": {}, "f:k1": {}, "f:k2": {}}}


def test_kubectl_moves_from_client_side_to_server_side_apply(server, namespace):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "csa"},
          "data": {"a": "1", "b": "1"}}
    server.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(cm))
    server.kubectl("patch", "cm", "csa", "-n", namespace, "--type", "merge",
                   "-p", '{"data": {"b": "2"}}')  # manager kubectl-patch
    cm["data"] = {"a": "3", "b": "1"}
    failed = _apply(server, namespace, cm, check=False)
    # a is kubectl's own from client-side apply: no conflict; b was changed since by another.
    assert failed.returncode == 1
    assert 'conflict with "kubectl-patch" using v1: .data.b' in failed.stderr
    assert ".data.a" not in failed.stderr
    cm["data"] = {"a": "3", "b": "2"}
    _apply(server, namespace, cm)
    live = _live(server, namespace, ["cm", "csa"])
    assert live["data"] == {"a": "3", "b": "2"}
    annotation = live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert annotation == json.dumps(
        {"apiVersion": "v1", "data": {"a": "3", "b": "2"}, "kind": "ConfigMap",
         "metadata": {"name": "csa", "namespace": namespace}},
        separators=(",", ":"), sort_keys=True) + "\n"
    owners = {e["manager"]: e["fieldsV1"] for e in live["metadata"]["managedFields"]}
    assert owners["kubectl"]["f:data"] == {"f:a": {}, "f:b": {}}
    # kubectl then folds kubectl-client-side-apply's entry into its own (a JSON patch of
    # managedFields, which the server takes as sent).
    assert "kubectl-client-side-apply" not in owners


def test_dynamic_client_server_side_apply(server, namespace, tmp_path):
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.exceptions import ConflictError
    api = server.client()
    try:
        # Its discovery cache would otherwise stay in /tmp (osrcp-*.json) after the run.
        dynamic = DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
        configmaps = dynamic.resources.get(api_version="v1", kind="ConfigMap")
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dyn"},
                "data": {"k": "1"}}
        made = configmaps.server_side_apply(body=body, namespace=namespace,
                                            field_manager="one")
        assert made.metadata.managedFields[0].manager == "one"
        body["data"]["k"] = "2"
        with pytest.raises(ConflictError) as e:
            configmaps.server_side_apply(body=body, namespace=namespace, field_manager="two")
        assert 'conflict with "one": .data.k' in e.value.summary()
        moved = configmaps.server_side_apply(body=body, namespace=namespace,
                                             field_manager="two", force_conflicts=True)
        assert moved.data.k == "2"
        assert [m.manager for m in moved.metadata.managedFields] == ["two"]
    finally:
        api.close()
