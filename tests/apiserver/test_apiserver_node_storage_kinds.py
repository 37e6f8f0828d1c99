"""storage.k8s.io/v1 CSINodes, CSIDrivers, StorageClasses and node.k8s.io/v1 RuntimeClasses with
the real kubectl and the official client: discovery, kube's defaults and table columns, bad input
refused with kube's messages, what a node may write (its CSINode) and may not (CSIDrivers)."""
from __future__ import annotations

import json
import uuid

import pytest

from apiserver_testlib import NODE_TOKEN, USER_TOKEN


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def made(server):
    """kubectl create of manifests; everything created is deleted after."""
    names: list[tuple[str, str]] = []

    def create(manifest: dict, check: bool = True):
        p = server.kubectl("create", "-f", "-", input=json.dumps(manifest), check=check)
        if p.returncode == 0:
            names.append((manifest["kind"].lower(), manifest["metadata"]["name"]))
        return p
    yield create
    for kind, name in names:
        server.kubectl("delete", kind, name, "--ignore-not-found", check=False)


def _header_and_row(table: str, name: str) -> tuple[list[str], list[str]]:
    lines = table.splitlines()
    row = next(line for line in lines if line.startswith(name))
    return lines[0].split(), row.split()


def test_discovery_lists_the_kinds(server):
    out = server.kubectl("api-resources", "--api-group=storage.k8s.io").stdout
    assert [line.split()[0] for line in out.splitlines()[1:]] == \
        ["csidrivers", "csinodes", "storageclasses"]
    assert "sc " in out
    out = server.kubectl("api-resources", "--api-group=node.k8s.io").stdout
    assert out.splitlines()[1].split() == ["runtimeclasses", "node.k8s.io/v1", "false",
                                           "RuntimeClass"]
    explained = server.kubectl("explain", "runtimeclass.handler").stdout
    assert "FIELD: handler <string>" in explained


def test_runtimeclass(server, made):
    name = _name("rc")
    made({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": name},
          "handler": "runc"})
    header, row = _header_and_row(server.kubectl("get", "runtimeclasses").stdout, name)
    assert (header, row[:2]) == (["NAME", "HANDLER", "AGE"], [name, "runc"])
    bad = made({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                "metadata": {"name": _name("rc")}, "handler": "Bad_Handler"}, check=False)
    assert bad.returncode == 1
    assert 'handler: Invalid value: "Bad_Handler": a lowercase RFC 1123 label must consist ' \
        'of lower case alphanumeric characters or \'-\'' in bad.stderr
    missing = made({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                    "metadata": {"name": _name("rc")}}, check=False)
    assert "handler: Required value" in missing.stderr
    patched = server.kubectl("patch", "runtimeclass", name, "-p", '{"handler":"crun"}',
                             check=False)
    assert patched.returncode == 1
    assert f'The RuntimeClass "{name}" is invalid: handler: Invalid value: "crun": field is ' \
        'immutable' in patched.stderr


def test_csinode_written_by_its_node(server, made):
    from kubernetes import client

    api = server.client(NODE_TOKEN)
    try:
        storage = client.StorageV1Api(api)
        storage.create_csi_node(client.V1CSINode(
            metadata=client.V1ObjectMeta(name="n1"),
            spec=client.V1CSINodeSpec(drivers=[client.V1CSINodeDriver(
                name="hostpath.csi.k8s.io", node_id="n1",
                allocatable=client.V1VolumeNodeResources(count=10))])))
        try:
            header, row = _header_and_row(server.kubectl("get", "csinodes").stdout, "n1 ")
            assert (header, row[:2]) == (["NAME", "DRIVERS", "AGE"], ["n1", "1"])
            assert storage.read_csi_node("n1").spec.drivers[0].allocatable.count == 10
            # another node's CSINode is not this node's to make or read (Node authorizer and
            # NodeRestriction)
            with pytest.raises(client.ApiException) as refused:
                storage.create_csi_node(client.V1CSINode(
                    metadata=client.V1ObjectMeta(name="n2"),
                    spec=client.V1CSINodeSpec(drivers=[])))
            assert (refused.value.status, json.loads(refused.value.body)["message"]) == (
                403, 'csinodes.storage.k8s.io "n2" is forbidden: can only access CSINode with '
                'the same name as the requesting node')
            with pytest.raises(client.ApiException) as refused:
                storage.read_csi_node("n2")
            assert json.loads(refused.value.body)["message"] == (
                'csinodes.storage.k8s.io "n2" is forbidden: User "system:node:n1" cannot get '
                'resource "csinodes" in API group "storage.k8s.io" at the cluster scope: can '
                'only access CSINode with the same name as the requesting node')
            # a node reads CSIDrivers but does not make them
            storage.list_csi_driver()
            with pytest.raises(client.ApiException) as refused:
                storage.create_csi_driver(client.V1CSIDriver(
                    metadata=client.V1ObjectMeta(name="x.example.com"),
                    spec=client.V1CSIDriverSpec()))
            assert refused.value.status == 403
        finally:
            storage.delete_csi_node("n1")
    finally:
        api.close()
    user = server.client(USER_TOKEN)
    try:
        with pytest.raises(client.ApiException) as refused:
            client.StorageV1Api(user).create_csi_node(client.V1CSINode(
                metadata=client.V1ObjectMeta(name="n2"), spec=client.V1CSINodeSpec(drivers=[])))
        assert refused.value.status == 403
    finally:
        user.close()
    bad = made({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
                "metadata": {"name": _name("n")}, "spec": {"drivers": [
                    {"name": "a.example.com", "nodeID": "x"}, {"name": "a.example.com"}]}},
               check=False)
    assert bad.returncode == 1
    assert '* spec.drivers[1].name: Duplicate value: "a.example.com"' in bad.stderr
    assert "* spec.drivers[1].nodeID: Required value" in bad.stderr


def test_csidriver_defaults_and_columns(server, made):
    name = f"{_name('d')}.example.com"
    made({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": name},
          "spec": {"podInfoOnMount": True}})
    spec = json.loads(server.kubectl("get", "csidriver", name, "-o", "json").stdout)["spec"]
    assert spec == {"attachRequired": True, "podInfoOnMount": True, "storageCapacity": False,
                    "requiresRepublish": False, "seLinuxMount": False,
                    "fsGroupPolicy": "ReadWriteOnceWithFSType",
                    "volumeLifecycleModes": ["Persistent"]}
    header, row = _header_and_row(server.kubectl("get", "csidrivers").stdout, name)
    assert header == ["NAME", "ATTACHREQUIRED", "PODINFOONMOUNT", "STORAGECAPACITY",
                      "TOKENREQUESTS", "REQUIRESREPUBLISH", "MODES", "AGE"]
    assert row[:7] == [name, "true", "true", "false", "<unset>", "false", "Persistent"]
    bad = made({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
                "metadata": {"name": f"{_name('d')}.example.com"},
                "spec": {"fsGroupPolicy": "Sometimes"}}, check=False)
    assert 'spec.fsGroupPolicy: Unsupported value: "Sometimes": supported values: "File", ' \
        '"None", "ReadWriteOnceWithFSType"' in bad.stderr
    changed = server.kubectl("patch", "csidriver", name, "-p",
                             '{"spec":{"attachRequired":false}}', check=False)
    assert "spec.attachRequired: Invalid value: false: field is immutable" in changed.stderr


def test_storageclass(server, made):
    name = _name("sc")
    made({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {
        "name": name, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode":
        "WaitForFirstConsumer"})
    header, row = _header_and_row(server.kubectl("get", "sc").stdout, name)
    assert header == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE",
                      "ALLOWVOLUMEEXPANSION", "AGE"]
    assert row[:6] == [name, "(default)", "kubernetes.io/no-provisioner", "Delete",
                       "WaitForFirstConsumer", "false"]
    missing = made({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                    "metadata": {"name": _name("sc")}}, check=False)
    assert "provisioner: Required value" in missing.stderr
    changed = server.kubectl("patch", "sc", name, "-p", '{"parameters":{"a":"b"}}',
                             check=False)
    assert "parameters: Forbidden: updates to parameters are forbidden." in changed.stderr
