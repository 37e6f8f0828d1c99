"""kubelet.pods.Pod, the typed view of an API pod every part of the kubelet is handed: what it
reads from the JSON, its defaults for what the JSON leaves out, and the sources that make it
(static manifests, mirror pods) without an API server."""
from __future__ import annotations

import dataclasses
import json

import pytest

from kubelet import pods
from kubelet.pods import Pod
from kubelet.sources.mirror import mirror_of
from kubelet.sources.static import FilePodSource, load_manifest


def _pod(meta: dict | None = None, **spec) -> Pod:
    return Pod({"metadata": {"name": "web", "namespace": "shop", "uid": "u-1", **(meta or {})},
                "spec": spec})


def test_identity_as_the_kubelet_prints_and_stores_a_pod():
    pod = _pod()
    assert (pod.uid, pod.name, pod.namespace) == ("u-1", "web", "shop")
    assert pod.full_name == "web_shop(u-1)"
    assert pod.log_directory("/var/log/pods") == "/var/log/pods/shop_web_u-1"
    assert Pod({"metadata": {"name": "a", "uid": "u"}}).namespace == "default"


def test_what_an_empty_spec_means():
    pod = Pod({"metadata": {"name": "p", "uid": "u"}})
    assert pod.containers == pod.init_containers == pod.ephemeral_containers == []
    assert pod.volumes == pod.host_aliases == []
    assert pod.labels == pod.annotations == pod.security_context == pod.dns_config == {}
    assert pod.restart_policy == "Always" and pod.dns_policy == "ClusterFirst"
    assert not (pod.host_network or pod.host_pid or pod.host_ipc)
    assert pod.host_users and pod.enable_service_links
    assert (pod.priority, pod.termination_grace_period, pod.deletion_grace_period) == (0, 30, 30)
    assert pod.active_deadline_seconds is None
    assert pod.node_name == pod.service_account_name == pod.hostname == pod.subdomain == ""
    assert (pod.status, pod.phase, pod.is_terminal, pod.is_deleted) == ({}, "", False, False)
    assert pod.resource_version == ""
    assert pod.qos_class == "BestEffort"


def test_spec_fields_are_read_as_given():
    pod = _pod(hostNetwork=True, hostPID=True, hostIPC=True, hostUsers=False,
               restartPolicy="Never", nodeName="n1", serviceAccountName="sa",
               enableServiceLinks=False, priority=2000001000, activeDeadlineSeconds=5,
               hostname="h", subdomain="s", dnsPolicy="None",
               dnsConfig={"nameservers": ["1.1.1.1"]}, securityContext={"fsGroup": 7},
               volumes=[{"name": "v", "emptyDir": {}}],
               hostAliases=[{"ip": "10.0.0.1", "hostnames": ["x"]}])
    assert pod.host_network and pod.host_pid and pod.host_ipc and not pod.host_users
    assert (pod.restart_policy, pod.node_name, pod.service_account_name) == ("Never", "n1", "sa")
    assert not pod.enable_service_links
    assert (pod.priority, pod.active_deadline_seconds) == (2000001000, 5)
    assert (pod.hostname, pod.subdomain, pod.dns_policy) == ("h", "s", "None")
    assert pod.dns_config == {"nameservers": ["1.1.1.1"]}
    assert pod.security_context == {"fsGroup": 7}
    assert [v["name"] for v in pod.volumes] == ["v"]
    assert pod.host_aliases[0]["hostnames"] == ["x"]


def test_all_containers_are_init_then_app_then_ephemeral():
    pod = _pod(containers=[{"name": "app"}], initContainers=[{"name": "init"}],
               ephemeralContainers=[{"name": "debug"}])
    assert [c["name"] for c in pod.all_containers] == ["init", "app", "debug"]


@pytest.mark.parametrize("meta, spec_grace, expected", [
    ({}, None, 30),
    ({}, 10, 10),
    ({"deletionGracePeriodSeconds": 3}, 10, 3),
    ({"deletionGracePeriodSeconds": 0}, 10, 0),       # zero is a value, not a missing one
])
def test_a_deletion_grants_its_grace_period_else_the_specs(meta, spec_grace, expected):
    spec = {} if spec_grace is None else {"terminationGracePeriodSeconds": spec_grace}
    assert _pod(meta, **spec).deletion_grace_period == expected


def test_deleted_and_terminal():
    assert _pod({"deletionTimestamp": "2026-01-01T00:00:00Z"}).is_deleted
    for phase, terminal in (("Pending", False), ("Running", False), ("Succeeded", True),
                            ("Failed", True)):
        pod = Pod({"metadata": {"name": "p", "uid": "u"}, "status": {"phase": phase}})
        assert (pod.phase, pod.is_terminal) == (phase, terminal)


def test_static_and_mirror_pods_by_their_config_annotations():
    api = _pod()
    assert not api.is_static and not api.is_mirror and api.mirror_hash == ""
    assert api.config_hash == "u-1"            # a pod without a config hash stands for itself
    static = _pod({"annotations": {pods.CONFIG_SOURCE: "file", pods.CONFIG_HASH: "h1"}})
    assert static.is_static and not static.is_mirror and static.config_hash == "h1"
    mirror = _pod({"annotations": {pods.CONFIG_SOURCE: "api", pods.CONFIG_MIRROR: "h1"}})
    assert mirror.is_mirror and not mirror.is_static and mirror.mirror_hash == "h1"


def test_desired_ignores_status_and_bookkeeping_only():
    base = {"metadata": {"name": "p", "uid": "u", "resourceVersion": "1", "generation": 1,
                         "managedFields": [{"manager": "a"}], "labels": {"a": "1"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Pending"}}
    bookkeeping = json.loads(json.dumps(base))
    bookkeeping["metadata"].update(resourceVersion="2", generation=2, managedFields=[])
    bookkeeping["status"] = {"phase": "Running"}
    assert Pod(base).desired == Pod(bookkeeping).desired
    relabeled = json.loads(json.dumps(base))
    relabeled["metadata"]["labels"] = {"a": "2"}
    assert Pod(base).desired != Pod(relabeled).desired
    new_image = json.loads(json.dumps(base))
    new_image["spec"]["containers"][0]["image"] = "j"
    assert Pod(base).desired != Pod(new_image).desired


def test_qos_class_from_the_containers_resources():
    guaranteed = {"limits": {"cpu": "1", "memory": "1Gi"}}
    assert _pod(containers=[{"name": "c", "resources": guaranteed}]).qos_class == "Guaranteed"
    assert _pod(containers=[{"name": "c", "resources": {"requests": {"cpu": "1"}}}]
                ).qos_class == "Burstable"


def test_the_view_is_frozen_and_compares_by_its_json():
    pod = _pod()
    with pytest.raises(dataclasses.FrozenInstanceError):
        pod.obj = {}                                        # type: ignore[misc]
    assert pod == _pod() and pod != _pod({"uid": "u-2"})


def test_a_static_manifest_becomes_a_pod_of_this_node(tmp_path):
    manifest = tmp_path / "web.yaml"
    manifest.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: web}\n"
                        "spec: {containers: [{name: c, image: busybox}]}\n")
    pod = load_manifest(str(manifest), "node-1")
    assert isinstance(pod, Pod)
    assert (pod.name, pod.namespace, pod.node_name) == ("web-node-1", "default", "node-1")
    assert pod.is_static and pod.config_hash == pod.uid and pod.phase == "Pending"
    [scanned] = FilePodSource(str(tmp_path), "node-1", None, 1.0).scan()
    assert scanned.uid == pod.uid and pods.CONFIG_SEEN in scanned.annotations


def test_a_mirror_pod_body_is_made_from_the_static_pods_view():
    static = _pod({"labels": {"app": "web"},
                   "annotations": {pods.CONFIG_SOURCE: "file", pods.CONFIG_HASH: "h1"}},
                  containers=[{"name": "c", "image": "busybox"}], nodeName="node-1")
    body = mirror_of(static, "node-1", "node-uid")
    assert body["metadata"]["annotations"][pods.CONFIG_MIRROR] == "h1"
    assert body["metadata"]["labels"] == {"app": "web"}
    assert body["metadata"]["ownerReferences"][0] == {
        "apiVersion": "v1", "kind": "Node", "name": "node-1", "uid": "node-uid",
        "controller": True}
    assert Pod(body).is_mirror and Pod(body).mirror_hash == static.config_hash
    body["spec"]["containers"][0]["image"] = "changed"     # a copy: the view is untouched
    assert static.containers[0]["image"] == "busybox"
