"""pyapiserver on etcd reads from its watch cache (issue 25): a write acknowledged by one server
is in the next read through the other, a write to etcd outside the prefix does not stall reads,
and an update starts from the cached object, the Txn's revision compare catching a stale one."""
from __future__ import annotations

import time
import uuid

import pytest

from etcd_testlib import start_cluster, two_servers_on

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def etcd():
    cluster = start_cluster(1)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def apis(etcd):
    from kubernetes import client
    with two_servers_on(etcd) as servers:
        clients = [s.client() for s in servers]
        yield [client.CoreV1Api(c) for c in clients]
        for c in clients:
            c.close()


def _configmap(name: str, value: str):
    from kubernetes import client
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"k": value})


def test_a_write_through_one_server_is_read_back_at_once_through_the_other(apis):
    writer, reader = apis
    for i in range(30):
        name = f"rw-{uuid.uuid4().hex[:8]}"
        made = writer.create_namespaced_config_map("default", _configmap(name, str(i)))
        got = reader.read_namespaced_config_map(name, "default")
        assert got.metadata.resource_version == made.metadata.resource_version
        listed = reader.list_namespaced_config_map("default",
                                                   field_selector=f"metadata.name={name}")
        assert [c.metadata.name for c in listed.items] == [name]
        assert int(listed.metadata.resource_version) >= int(made.metadata.resource_version)
        changed = writer.patch_namespaced_config_map(name, "default", {"data": {"k": "new"}})
        assert reader.read_namespaced_config_map(name, "default").data == {"k": "new"}
        writer.delete_namespaced_config_map(name, "default")
        assert int(changed.metadata.resource_version) > int(made.metadata.resource_version)
        assert name not in [c.metadata.name for c in
                            reader.list_namespaced_config_map("default").items]


def test_a_write_outside_the_prefix_does_not_stall_reads(etcd, apis):
    from apiserver.storage.etcd_client import EtcdClient, EtcdConfig, op_put
    client = EtcdClient(EtcdConfig(EtcdConfig.parse_servers(etcd.servers)))
    try:
        client.txn([], [op_put(b"/elsewhere/" + uuid.uuid4().hex.encode(), b"x")], [])
    finally:
        client.close()
    start = time.monotonic()
    for api in apis:
        api.list_namespaced_config_map("default")
    assert time.monotonic() - start < 10  # a wait for a revision the feed never passes is 15 s


def test_updates_from_both_servers_at_once_lose_none(apis):
    """Each server's cache may be a write behind the other's: its Txn's compare fails and the
    update is retried from the current object that etcd answered with."""
    import concurrent.futures
    name = f"count-{uuid.uuid4().hex[:8]}"
    apis[0].create_namespaced_config_map("default", _configmap(name, ""))

    def append(args: tuple[int, int]) -> None:
        api, i = apis[args[0]], args[1]
        for _ in range(20):
            cm = api.read_namespaced_config_map(name, "default")
            cm.data["k"] += f"{args[0]}.{i},"
            try:
                api.replace_namespaced_config_map(name, "default", cm)
                return
            except Exception as e:  # 409: the resourceVersion read is no longer current
                if getattr(e, "status", 0) != 409:
                    raise
        raise AssertionError("20 conflicts in a row")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(append, [(s, i) for s in (0, 1) for i in range(10)]))
    got = apis[1].read_namespaced_config_map(name, "default").data["k"].split(",")
    assert sorted(x for x in got if x) == sorted(f"{s}.{i}" for s in (0, 1) for i in range(10))
