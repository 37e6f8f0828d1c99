"""PersistentVolumes and claims in the real pyapiserver with the local provisioner running in
the manager (its root a temporary directory): a claim with no fitting volume gets a new
hostPath volume `pvc-<uid>` under the root and both are Bound; a claim that an Available volume
fits is bound to it instead; deleting a provisioned claim deletes its volume and directory, a
static volume is only Released. Bad claims and volumes are refused with kube's field paths."""
from __future__ import annotations

import os

import pytest

from controllers.context import Options
from controllers.fresh_read import fresh_read
from controllers_testlib import running, wait_for
from kubeapi.status import ApiError

CLAIMS = "/api/v1/namespaces/{ns}/persistentvolumeclaims"
PVS = "/api/v1/persistentvolumes"


@pytest.fixture
def pv_root(tmp_path):
    root = tmp_path / "volumes"
    root.mkdir()
    return str(root)


@pytest.fixture
def controllers(client, pv_root):
    with running(client, ["local-provisioner"], Options(extra={"local_pv_root": pv_root})):
        yield


def claim(client, ns: str, name: str, storage: str = "1Mi", **spec) -> dict:
    return client.create(CLAIMS.format(ns=ns), {"metadata": {"name": name}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}},
        **spec}})


def bound(client, ns: str, name: str) -> dict | None:
    pvc = client.get(f"{CLAIMS.format(ns=ns)}/{name}")
    return pvc if pvc["status"].get("phase") == "Bound" else None


def test_provisioned_and_deleted(client, namespace, controllers, pv_root):
    made = claim(client, namespace, "data")
    pvc = wait_for(lambda: bound(client, namespace, "data"), what="the claim bound")
    name = f"pvc-{made['metadata']['uid']}"
    assert pvc["spec"]["volumeName"] == name
    assert pvc["status"]["capacity"] == {"storage": "1Mi"}
    assert pvc["status"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
    pv = wait_for(lambda: (fresh_read(client, f"{PVS}/{name}") or {}).get("status", {})
                  .get("phase") == "Bound" and client.get(f"{PVS}/{name}"),
                  what="the volume bound")
    path = pv["spec"]["hostPath"]["path"]
    assert os.path.dirname(path) == pv_root and os.path.isdir(path)
    assert pv["spec"]["claimRef"]["uid"] == made["metadata"]["uid"]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    client.delete(f"{CLAIMS.format(ns=namespace)}/data")
    wait_for(lambda: fresh_read(client, f"{PVS}/{name}") is None, what="the volume deleted")
    assert not os.path.exists(path)


def test_bound_to_a_fitting_static_volume(client, namespace, controllers, tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    pv_name = f"static-{namespace}"
    client.create(PVS, {"metadata": {"name": pv_name}, "spec": {
        "capacity": {"storage": "5Mi"}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
        "storageClassName": "manual", "hostPath": {"path": str(static)}}})
    try:
        wait_for(lambda: client.get(f"{PVS}/{pv_name}")["status"]["phase"] == "Available",
                 what="Available")
        claim(client, namespace, "small", storageClassName="manual")
        pvc = wait_for(lambda: bound(client, namespace, "small"), what="bound")
        assert pvc["spec"]["volumeName"] == pv_name
        assert pvc["status"]["capacity"] == {"storage": "5Mi"}
        client.delete(f"{CLAIMS.format(ns=namespace)}/small")
        wait_for(lambda: client.get(f"{PVS}/{pv_name}")["status"]["phase"] == "Released",
                 what="Released")
        assert static.is_dir()
    finally:
        client.delete(f"{PVS}/{pv_name}")


@pytest.mark.parametrize("path, body, message", [
    (CLAIMS, {"metadata": {"name": "bad"}, "spec": {
        "resources": {"requests": {"storage": "1Mi"}}}}, "spec.accessModes: Required value"),
    (CLAIMS, {"metadata": {"name": "bad"}, "spec": {"accessModes": ["ReadWriteOnce"]}},
     "spec.resources[storage]: Required value"),
    (CLAIMS, {"metadata": {"name": "bad"}, "spec": {
        "accessModes": ["WriteSometimes"], "resources": {"requests": {"storage": "1Mi"}}}},
     'spec.accessModes: Unsupported value: "WriteSometimes"'),
    (PVS, {"metadata": {"name": "bad-pv"}, "spec": {
        "capacity": {"storage": "1Mi"}, "accessModes": ["ReadWriteOnce"]}},
     "spec: Required value: must specify a volume type"),
])
def test_bad_claims_and_volumes_refused(client, namespace, path, body, message):
    with pytest.raises(ApiError) as e:
        client.create(path.format(ns=namespace), body)
    assert e.value.code == 422
    assert message in e.value.message


def test_kubectl_get_and_explain(client, namespace, controllers, server):
    claim(client, namespace, "shown")
    wait_for(lambda: bound(client, namespace, "shown"), what="bound")
    table = server.kubectl("get", "pvc", "-n", namespace).stdout
    header, row = table.splitlines()
    assert header.split() == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES",
                              "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "AGE"]
    assert row.split()[:5] == ["shown", "Bound", client.get(
        f"{CLAIMS.format(ns=namespace)}/shown")["spec"]["volumeName"], "1Mi", "RWO"]
    assert "KIND:       PersistentVolume\n" in server.kubectl("explain", "pv").stdout
    assert "KIND:       PersistentVolumeClaim\n" in server.kubectl("explain", "pvc").stdout
    client.delete(f"{CLAIMS.format(ns=namespace)}/shown")
