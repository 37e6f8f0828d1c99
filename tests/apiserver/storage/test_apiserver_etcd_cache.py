"""pyapiserver on etcd reads from its watch cache (issue 25): a write acknowledged by one server
is in the next read through the other, a write to etcd outside the prefix does not stall reads,
an update starts from the cached object, the Txn's revision compare catching a stale one, and a
server whose etcd watch missed compacted changes relists, as kube's cacher does."""
from __future__ import annotations

import threading
import time
import uuid

import pytest

from etcd_testlib import server_on, start_cluster, two_servers_on
from testlib.pyapiserver import stop_server

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


def test_a_server_away_from_etcd_past_a_compaction_relists_and_ends_its_watches():
    """Server A reaches only member m0. While m0 is down, server B (on m1, m2) changes
    objects and etcd compacts past them: A's feed resumes at a compacted revision. Before,
    A's cache kept the deleted object and never learned the new one; now A relists, ends the
    watches it served (they missed those changes), and a watch from before answers 410."""
    from kubernetes import client, watch
    from kubernetes.client.rest import ApiException

    from apiserver.storage.etcd_client import EtcdClient, EtcdConfig
    cluster = start_cluster(3)
    servers = []
    try:
        m0 = cluster.members[0]
        servers.append(server_on(cluster, members=[m0]))
        servers.append(server_on(cluster, pki_from=servers[0], members=cluster.members[1:]))
        a, b = (client.CoreV1Api(s.client()) for s in servers)
        tag = uuid.uuid4().hex[:8]
        gone, kept, new = f"gone-{tag}", f"kept-{tag}", f"new-{tag}"
        a.create_namespaced_config_map("default", _configmap(gone, "1"))
        since = a.create_namespaced_config_map("default", _configmap(kept, "1")) \
            .metadata.resource_version
        ended = threading.Event()

        def follow() -> None:
            stream = watch.Watch().stream(a.list_namespaced_config_map, "default",
                                          resource_version=since, timeout_seconds=240)
            for _ in stream:
                pass
            ended.set()
        watcher = threading.Thread(target=follow, daemon=True)
        watcher.start()
        time.sleep(1)  # the watch is open (its end below is the reset's, not a refusal)
        assert not ended.is_set()

        cluster.stop_member(m0)
        b.delete_namespaced_config_map(gone, "default")
        b.patch_namespaced_config_map(kept, "default", {"data": {"k": "2"}})
        b.create_namespaced_config_map("default", _configmap(new, "1"))
        etcd = EtcdClient(EtcdConfig(EtcdConfig.parse_servers(cluster.members[1].client_url)))
        try:
            etcd.compact(etcd.range(b"compact_rev_key", count_only=True).header.revision)
        finally:
            etcd.close()
        cluster.restart_member(m0)

        def names() -> dict[str, str]:
            try:
                return {c.metadata.name: c.data["k"] for c in
                        a.list_namespaced_config_map("default").items if tag in c.metadata.name}
            except ApiException:  # A's etcd member is still coming back
                return {}
        deadline = time.monotonic() + 60
        while names() != {kept: "2", new: "1"}:
            assert time.monotonic() < deadline, f"A's cache holds {names()}"
            time.sleep(0.2)
        watcher.join(30)
        assert ended.is_set(), "the watch that missed the compacted changes was not ended"

        with pytest.raises(ApiException) as expired:
            for _ in watch.Watch().stream(a.list_namespaced_config_map, "default",
                                          resource_version=since, timeout_seconds=5):
                pass
        assert expired.value.status == 410

        listed = a.list_namespaced_config_map("default").metadata.resource_version
        b.patch_namespaced_config_map(new, "default", {"data": {"k": "3"}})
        for event in watch.Watch().stream(a.list_namespaced_config_map, "default",
                                          resource_version=listed, timeout_seconds=30):
            if event["object"].metadata.name == new:
                assert (event["type"], event["object"].data) == ("MODIFIED", {"k": "3"})
                break
        else:
            raise AssertionError("a watch from the relisted revision saw no change")
    finally:
        for server in reversed(servers):
            stop_server(server)
        cluster.stop()
