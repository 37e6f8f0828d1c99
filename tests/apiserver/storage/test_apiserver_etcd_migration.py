"""The one-time move of an older pyapiserver's etcd keys (the registry's own layout, before
a656684) to kube-apiserver's: at start, whoever starts first, once, with nothing lost; objects
already under their new key win; two movers at once move each object once."""
from __future__ import annotations

import concurrent.futures
import json
import uuid

import pytest

from apiserver_testlib import stop_server
from etcd_testlib import server_on, start_cluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _obj(api_version: str, kind: str, name: str, namespace: str = "", **rest) -> bytes:
    meta = {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": "2026-12-06T00:00:00Z"}
    if namespace:
        meta["namespace"] = namespace
    return json.dumps({"apiVersion": api_version, "kind": kind, "metadata": meta,
                       **rest}).encode()


SELECTOR = {"matchLabels": {"app": "old"}}
TEMPLATE = {"metadata": {"labels": {"app": "old"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
# old key -> (its new key, the value); a Service in a namespace named "specs" looks like a key
# of kube's services/specs/ but is one level short.
OLD = {
    b"/registry/apps/deployments/default/web": (
        b"/registry/deployments/default/web",
        _obj("apps/v1", "Deployment", "web", "default",
             spec={"replicas": 0, "selector": SELECTOR, "template": TEMPLATE})),
    b"/registry/nodes/old-node": (
        b"/registry/minions/old-node", _obj("v1", "Node", "old-node")),
    b"/registry/services/specs/svc": (
        b"/registry/services/specs/specs/svc",
        _obj("v1", "Service", "svc", "specs",
             spec={"clusterIP": "None", "ports": [{"port": 80}]})),
    b"/registry/endpoints/default/web": (
        b"/registry/services/endpoints/default/web", _obj("v1", "Endpoints", "web", "default")),
    b"/registry/coordination.k8s.io/leases/default/l": (
        b"/registry/leases/default/l",
        _obj("coordination.k8s.io/v1", "Lease", "l", "default", spec={"holderIdentity": "h"})),
}
UNMOVED = {b"/registry/configmaps/default/cm": _obj("v1", "ConfigMap", "cm", "default",
                                                    data={"k": "v"})}


def _client(cluster):
    from apiserver.storage.etcd_client import EtcdClient, EtcdConfig
    return EtcdClient(EtcdConfig(EtcdConfig.parse_servers(cluster.servers)))


def _put(client, items: dict[bytes, bytes]) -> None:
    from apiserver.storage.etcd_client import op_put
    client.txn([], [op_put(k, v) for k, v in items.items()], [])


def _value(client, key: bytes) -> bytes | None:
    kvs = client.range(key).kvs
    return kvs[0].value if kvs else None


@pytest.fixture
def etcd():
    cluster = start_cluster(1)
    yield cluster
    cluster.stop()


def test_two_servers_starting_together_move_the_old_keys_once(etcd):
    client = _client(etcd)
    try:
        _put(client, {old: value for old, (_, value) in OLD.items()} | UNMOVED)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            servers = list(pool.map(lambda _: server_on(etcd), range(2)))
        try:
            for old, (new, value) in OLD.items():
                assert _value(client, old) is None, old
                assert _value(client, new) == value, new
            assert _value(client, b"/registry/configmaps/default/cm") == \
                UNMOVED[b"/registry/configmaps/default/cm"]
            assert _value(client, b"pyapiserver-key-layout/registry") == b"kube-apiserver"
            for server in servers:
                got = json.loads(server.kubectl("get", "deployment", "web", "-o", "json").stdout)
                assert got["metadata"]["uid"] == json.loads(OLD[
                    b"/registry/apps/deployments/default/web"][1])["metadata"]["uid"]
                names = server.kubectl("get", "nodes", "-o", "name").stdout.split()
                assert "node/old-node" in names
            # Once DONE, a restart moves nothing: an old-layout key written now stays.
            _put(client, {b"/registry/nodes/late": _obj("v1", "Node", "late")})
            servers[0].restart()
            assert _value(client, b"/registry/nodes/late") is not None
            assert _value(client, b"/registry/minions/late") is None
        finally:
            for server in servers:
                stop_server(server)
    finally:
        client.close()


def test_the_move_is_idempotent_and_two_movers_move_each_object_once(etcd):
    from apiserver.resources import RESOURCES
    from apiserver.storage.etcd_keys import KeyLayout
    from apiserver.storage.etcd_migration import migrate

    resources = [(r.group, r.plural, r.namespaced) for r in RESOURCES]
    layout = KeyLayout("/registry", [(g, p) for g, p, _ in resources])
    client = _client(etcd)
    try:
        _put(client, {old: value for old, (_, value) in OLD.items()})
        # A Lease already under its new key (written since the layout changed) wins.
        newer = _obj("coordination.k8s.io/v1", "Lease", "l", "default",
                     spec={"holderIdentity": "newer"})
        _put(client, {b"/registry/leases/default/l": newer})
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            moved = list(pool.map(lambda _: migrate(client, "/registry", layout, resources),
                                  range(2)))
        assert sorted(moved) == [0, len(OLD) - 1]
        assert _value(client, b"/registry/leases/default/l") == newer
        assert _value(client, b"/registry/coordination.k8s.io/leases/default/l") is None
        # Started over from scratch (the guard gone), it finds nothing left to move.
        from apiserver.storage.etcd_client import op_delete
        client.txn([], [op_delete(b"pyapiserver-key-layout/registry")], [])
        assert migrate(client, "/registry", layout, resources) == 0
        for old, (new, value) in OLD.items():
            assert _value(client, old) is None
    finally:
        client.close()
