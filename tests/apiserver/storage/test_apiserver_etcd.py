"""pyapiserver on etcd: a real 3-member etcd cluster (Debian's etcd-server) on loopback and two
pyapiserver processes on it, driven by the official Python client and the real kubectl."""
from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import threading
import uuid
from contextlib import contextmanager
from typing import Iterator

import pytest

from apiserver_testlib import BIN, stop_server, wait_for
from etcd_testlib import server_on, start_cluster, two_servers_on
from testlib.processes import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def etcd():
    cluster = start_cluster(3)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def servers(etcd):
    with two_servers_on(etcd) as both:
        yield both


@pytest.fixture
def apis(servers):
    from kubernetes import client
    clients = [s.client() for s in servers]
    yield [client.CoreV1Api(c) for c in clients]
    for c in clients:
        c.close()


@pytest.fixture
def namespace(apis):
    from kubernetes import client
    name = "etcd-" + uuid.uuid4().hex[:8]
    apis[0].create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    try:
        apis[0].delete_namespace(name)
    except Exception:
        pass


def _configmap(name: str, **data: str):
    from kubernetes import client
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data=data)


def test_a_write_through_one_server_is_seen_in_a_watch_on_the_other(apis, namespace):
    from kubernetes import watch
    first, second = apis
    start = second.list_namespaced_config_map(namespace).metadata.resource_version
    seen: list[tuple[str, str, str]] = []

    def follow() -> None:
        w = watch.Watch()
        for ev in w.stream(second.list_namespaced_config_map, namespace,
                           field_selector="metadata.name=w", resource_version=start,
                           timeout_seconds=30):
            obj = ev["object"]
            seen.append((ev["type"], obj.metadata.name, obj.metadata.resource_version))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=follow)
    t.start()
    try:
        created = first.create_namespaced_config_map(namespace, _configmap("w", a="1"))
        updated = first.patch_namespaced_config_map("w", namespace, {"data": {"a": "2"}})
        first.delete_namespaced_config_map("w", namespace)
    finally:
        t.join(40)
    assert [s[:2] for s in seen] == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
    # resourceVersions are etcd revisions, the same whichever server answers.
    assert seen[0][2] == created.metadata.resource_version
    assert seen[1][2] == updated.metadata.resource_version
    assert int(seen[2][2]) > int(seen[1][2])


def test_lists_agree_between_servers_and_pages_continue_on_either(apis, namespace):
    first, second = apis
    for i in range(7):
        (first if i % 2 else second).create_namespaced_config_map(
            namespace, _configmap(f"cm-{i}", i=str(i)))
    a = first.list_namespaced_config_map(namespace)
    b = second.list_namespaced_config_map(namespace)
    names = ["cm-0", "cm-1", "cm-2", "cm-3", "cm-4", "cm-5", "cm-6", "kube-root-ca.crt"]
    assert [o.metadata.name for o in a.items] == names
    assert [(o.metadata.name, o.metadata.resource_version) for o in a.items] == \
        [(o.metadata.name, o.metadata.resource_version) for o in b.items]
    # A page from one server, the next pages from the other: one consistent snapshot, even
    # with writes in between.
    page = first.list_namespaced_config_map(namespace, limit=3)
    second.create_namespaced_config_map(namespace, _configmap("cm-x"))
    got = [o.metadata.name for o in page.items]
    token = page.metadata._continue
    while token:
        page = second.list_namespaced_config_map(namespace, limit=3, _continue=token)
        got += [o.metadata.name for o in page.items]
        token = page.metadata._continue
    assert got == names


def test_conflicting_writes_through_two_servers(apis, namespace):
    from kubernetes.client.rest import ApiException
    first, second = apis
    first.create_namespaced_config_map(namespace, _configmap("c", v="0"))
    with pytest.raises(ApiException) as exists:
        second.create_namespaced_config_map(namespace, _configmap("c", v="0"))
    assert exists.value.status == 409
    stale = second.read_namespaced_config_map("c", namespace)
    first.replace_namespaced_config_map("c", namespace, _configmap("c", v="1"))
    stale.data = {"v": "2"}
    with pytest.raises(ApiException) as conflict:
        second.replace_namespaced_config_map("c", namespace, stale)
    assert conflict.value.status == 409
    assert json.loads(conflict.value.body)["reason"] == "Conflict"
    assert second.read_namespaced_config_map("c", namespace).data == {"v": "1"}


def test_kubectl_works_against_each_server(servers, namespace):
    first, second = servers
    first.kubectl("-n", namespace, "create", "configmap", "k", "--from-literal=a=b")
    got = second.kubectl("-n", namespace, "get", "configmap", "k", "-o", "json").stdout
    assert json.loads(got)["data"] == {"a": "b"}
    second.kubectl("-n", namespace, "label", "configmap", "k", "x=y")
    out = first.kubectl("-n", namespace, "get", "configmaps", "-l", "x=y",
                        "-o", "name").stdout.split()
    assert out == ["configmap/k"]
    first.kubectl("-n", namespace, "delete", "configmap", "k", "--wait=true")
    gone = second.kubectl("-n", namespace, "get", "configmap", "k", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_a_server_killed_mid_load_loses_no_acknowledged_write(etcd, servers, namespace):
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    victim = server_on(etcd, pki_from=servers[0])
    acked: list[str] = []
    lock = threading.Lock()
    api_client = victim.client()
    api = client.CoreV1Api(api_client)

    def create(i: int) -> None:
        try:
            api.create_namespaced_config_map(namespace, _configmap(f"load-{i}", i=str(i)),
                                             _request_timeout=20)
        except (ApiException, OSError, Exception):
            return  # not acknowledged: may or may not be stored
        with lock:
            acked.append(f"load-{i}")

    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(create, i) for i in range(600)]
            wait_for(lambda: len(acked) >= 100, timeout=120)
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait(10)
            concurrent.futures.wait(futures)
    finally:
        api_client.close()
        stop_server(victim)
    assert 100 <= len(acked) < 600
    survivor = servers[1].client()
    try:
        stored = {o.metadata.name for o in client.CoreV1Api(survivor).list_namespaced_config_map(
            namespace).items}
    finally:
        survivor.close()
    assert set(acked) <= stored


def test_bad_etcd_flags_fail_in_one_line_and_leave_nothing(tmp_path):
    data_dir = str(tmp_path / "data")
    for servers, message in ((f"http://127.0.0.1:{free_port()}", "no answer from"),
                             ("127.0.0.1:2379", "is not an http(s)://host:port URL")):
        proc = subprocess.run([os.path.join(BIN, "pyapiserver"), "--bind-address", "127.0.0.1",
                               "--port", "0", "--data-dir", data_dir, "--etcd-servers", servers],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1
        assert proc.stderr.startswith("pyapiserver: --etcd-servers: ")
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert "Traceback" not in proc.stderr and proc.stdout == ""
        assert not os.path.exists(data_dir)


@pytest.fixture
def compacting():
    """One etcd member and a server that compacts every second."""
    cluster = start_cluster(1)
    try:
        server = server_on(cluster, extra=("--etcd-compaction-interval", "1s"))
    except BaseException:
        cluster.stop()
        raise
    yield server
    stop_server(server)
    cluster.stop()


def test_compaction_gives_410_and_clients_relist(compacting):
    from kubernetes import client, watch
    from kubernetes.client.rest import ApiException
    api_client = compacting.client()
    api = client.CoreV1Api(api_client)
    try:
        old = api.create_namespaced_config_map("default", _configmap("old", v="0"))
        page = api.list_namespaced_config_map("default", limit=1)
        old_rv = old.metadata.resource_version
        for i in range(1, 4):
            api.patch_namespaced_config_map("old", "default", {"data": {"v": str(i)}})

        def expired() -> bool:
            # Writes move the revision on; the compactor keeps one interval of history.
            api.patch_namespaced_config_map("old", "default", {"data": {"t": uuid.uuid4().hex}})
            try:
                list(watch.Watch().stream(api.list_namespaced_config_map, "default",
                                          resource_version=old_rv, timeout_seconds=1))
            except ApiException as e:
                return e.status == 410
            return False

        wait_for(expired, timeout=60, interval=0.5)
        raw = compacting.kubectl("get", "--raw", "/api/v1/namespaces/default/configmaps"
                                 f"?watch=1&resourceVersion={old_rv}&timeoutSeconds=5").stdout
        event = json.loads(raw.splitlines()[0])
        assert event["type"] == "ERROR"
        assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
        assert "too old resource version" in event["object"]["message"]
        # A continue token of a compacted snapshot: 410 too, and a fresh list works.
        with pytest.raises(ApiException) as stale:
            api.list_namespaced_config_map("default", limit=1, _continue=page.metadata._continue)
        assert stale.value.status == 410
        # The client's relist: a fresh list and a watch from its revision.
        fresh = api.list_namespaced_config_map("default")
        assert "old" in [o.metadata.name for o in fresh.items]
        api.patch_namespaced_config_map("old", "default", {"data": {"v": "relisted"}})
        for ev in watch.Watch().stream(api.list_namespaced_config_map, "default",
                                       resource_version=fresh.metadata.resource_version,
                                       timeout_seconds=10):
            if ev["object"].data.get("v") == "relisted":
                break
        else:
            pytest.fail("no event after the relist")
        out = compacting.kubectl("get", "configmaps", "-n", "default", "--chunk-size=1",
                                 "-o", "name").stdout.split()
        assert "configmap/old" in out
    finally:
        api_client.close()


def test_servers_ride_out_the_loss_of_an_etcd_member():
    """SIGKILL the member both servers talk to (the first one listed): they move to another,
    writes go on and the watch feed resumes where it stopped."""
    from kubernetes import client
    cluster = start_cluster(3)
    try:
        with two_servers_on(cluster) as servers:
            clients = [s.client() for s in servers]
            try:
                _ride_out_member_loss(cluster, *(client.CoreV1Api(c) for c in clients))
            finally:
                for c in clients:
                    c.close()
    finally:
        cluster.stop()


def _ride_out_member_loss(cluster, a, b) -> None:
    from kubernetes import watch
    before = a.create_namespaced_config_map("default", _configmap("before"))
    cluster.members[0].proc.send_signal(signal.SIGKILL)
    cluster.members[0].proc.wait(10)
    after = a.create_namespaced_config_map("default", _configmap("after"),
                                           _request_timeout=30)
    names = []
    for ev in watch.Watch().stream(b.list_namespaced_config_map, "default",
                                   resource_version=before.metadata.resource_version,
                                   timeout_seconds=30):
        names.append(ev["object"].metadata.name)
        if ev["object"].metadata.name == "after":
            break
    assert names[-1] == "after" and "before" not in names
    assert b.read_namespaced_config_map("after", "default").metadata.resource_version == \
        after.metadata.resource_version


def test_etcd_over_tls_with_a_client_certificate():
    from kubernetes import client
    cluster = start_cluster(1, tls=True)
    server = None
    try:
        tls = cluster.tls
        # Without the client certificate etcd refuses the handshake: one line, exit 1.
        proc = subprocess.run([os.path.join(BIN, "pyapiserver"), "--port", "0",
                               "--data-dir", os.path.join(cluster.root, "refused"),
                               "--etcd-servers", cluster.servers, "--etcd-cafile", tls.ca],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1 and proc.stderr.startswith("pyapiserver: --etcd-servers:")
        assert len(proc.stderr.strip().splitlines()) == 1
        server = server_on(cluster, extra=("--etcd-cafile", tls.ca, "--etcd-certfile",
                                            tls.client_cert, "--etcd-keyfile", tls.client_key,
                                            "--etcd-prefix", "/pyapiserver-test"))
        api_client = server.client()
        try:
            api = client.CoreV1Api(api_client)
            api.create_namespaced_config_map("default", _configmap("tls", a="b"))
            assert api.read_namespaced_config_map("tls", "default").data == {"a": "b"}
        finally:
            api_client.close()
    finally:
        if server:
            stop_server(server)
        cluster.stop()


def test_controllers_on_a_third_server_act_on_writes_through_the_first(etcd, servers,
                                                                       namespace):
    """A Deployment made with kubectl through the first server; the deployment and replicaset
    controllers of a third (its k3s-style child) make its ReplicaSet and pods, which the
    second lists: the controllers' informers work on watches fed from etcd."""
    first, second = servers
    third = server_on(etcd, pki_from=first,
                       extra=("--controllers", "deployment-controller,replicaset-controller"))
    try:
        first.kubectl("-n", namespace, "create", "deployment", "web", "--image=busybox:1.36",
                      "--replicas=3", "--", "sleep", "3600")

        def pods() -> list[str]:
            out = second.kubectl("-n", namespace, "get", "pods", "-l", "app=web",
                                 "-o", "jsonpath={.items[*].metadata.ownerReferences[0].kind}")
            kinds = out.stdout.split()
            return kinds if len(kinds) == 3 else []

        assert wait_for(pods, timeout=60, interval=0.5) == ["ReplicaSet"] * 3

        def replicas() -> int:
            got = first.kubectl("-n", namespace, "get", "deployment", "web", "-o", "json")
            return json.loads(got.stdout)["status"].get("replicas", 0)

        assert wait_for(lambda: replicas() == 3, timeout=30, interval=0.5)
    finally:
        stop_server(third)


def test_an_informer_relists_after_its_revision_was_compacted():
    """kubeapi's informer (what the controllers use) on a server whose etcd compacted past the
    informer's resourceVersion while the server was down: its watch gets 410, it relists."""
    from kubeapi import kubeconfig
    from kubeapi.informer import Informer, resource_path
    from kubeapi.restclient import ApiClient

    from apiserver.storage.etcd import EtcdStorage
    from apiserver.storage.etcd_client import EtcdConfig
    cluster = start_cluster(1)
    server = informer = api = None
    try:
        server = server_on(cluster, extra=("--etcd-compaction-interval", "0"))
        api = ApiClient(kubeconfig.load(server.kubeconfig), "etcd-tests")
        path = resource_path("", "v1", "configmaps", "default")
        api.create(path, {"metadata": {"name": "before"}})
        informer = Informer(api, path)
        informer.start()
        assert informer.wait_for_sync(15)
        server.stop()
        # Another server's writes and compaction while this one is down.
        other = EtcdStorage(EtcdConfig((cluster.members[0].client_url,)), compaction_interval=0)
        try:
            for i in range(3):
                rec = other.create(f"/registry/configmaps/kube-system/other-{i}", b"{}")
            other.compact(rec.rev)
        finally:
            other.close()
        server.start()
        api.close()
        api.create(path, {"metadata": {"name": "after"}}, retries=5)
        wait_for(lambda: informer.lists >= 2, timeout=60)
        wait_for(lambda: informer.store.get("default/after"), timeout=30)
        assert informer.store.get("default/before") is not None
    finally:
        if informer:
            informer.stop()
        if api:
            api.close()
        if server:
            stop_server(server)
        cluster.stop()


def test_objects_sit_under_kube_apiserver_keys_at_their_revision(etcd, servers, apis,
                                                                  namespace):
    """kube-apiserver's layout: built-in groups left out of the key, nodes under `minions`,
    services and endpoints under `services/`."""
    from apiserver.storage.etcd_client import EtcdClient, EtcdConfig
    made = apis[0].create_namespaced_config_map(namespace, _configmap("keyed", a="b"))
    servers[0].kubectl("-n", namespace, "create", "deployment", "keyed", "--image=busybox")
    etcd_client = EtcdClient(EtcdConfig(tuple(m.client_url for m in etcd.members)))
    try:
        got = etcd_client.range(f"/registry/configmaps/{namespace}/keyed".encode())
        keys = {key: bool(etcd_client.range(key.encode()).kvs) for key in (
            f"/registry/deployments/{namespace}/keyed", "/registry/services/specs/default/"
            "kubernetes", "/registry/services/endpoints/default/kubernetes",
            "/registry/leases/kube-system/kube-scheduler", f"/registry/apps/deployments/"
            f"{namespace}/keyed", "/registry/services/default/kubernetes")}
    finally:
        etcd_client.close()
    kv = got.kvs[0]
    assert str(kv.mod_revision) == made.metadata.resource_version
    stored = json.loads(kv.value)
    assert stored["data"] == {"a": "b"} and stored["metadata"]["uid"] == made.metadata.uid
    assert "resourceVersion" not in stored["metadata"]
    assert [k for k, present in keys.items() if present] == list(keys)[:4]


def test_services_made_through_both_servers_get_distinct_addresses_and_ports(etcd, servers,
                                                                             apis, namespace):
    """40 NodePort Services created at once through the two servers: the ClusterIP and NodePort
    bitmaps live in etcd (kube's RangeAllocations), so no address or port is handed out
    twice, and the stored bitmaps hold exactly what the Services hold."""
    from kubernetes import client

    from apiserver.ipalloc import IPAllocator
    from apiserver.portalloc import PortAllocator
    from apiserver.rangealloc import decode
    from apiserver.storage.etcd_client import EtcdClient, EtcdConfig

    def create(i: int):
        svc = client.V1Service(metadata=client.V1ObjectMeta(name=f"svc-{i}"),
                               spec=client.V1ServiceSpec(type="NodePort", selector={"a": "b"},
                                                         ports=[client.V1ServicePort(port=80)]))
        return apis[i % 2].create_namespaced_service(namespace, svc)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        made = list(pool.map(create, range(40)))
    ips = {s.spec.cluster_ip for s in made}
    ports = {s.spec.ports[0].node_port for s in made}
    assert len(ips) == 40 and len(ports) == 40
    every = apis[1].list_service_for_all_namespaces().items
    kubernetes = [s for s in every if s.metadata.name == "kubernetes"]
    assert len(kubernetes) == 1 and kubernetes[0].spec.cluster_ip == "10.96.0.1"
    etcd_client = EtcdClient(EtcdConfig(tuple(m.client_url for m in etcd.members)))
    try:
        stored_ips = decode(etcd_client.range(b"/registry/ranges/serviceips").kvs[0].value)
        stored_ports = decode(
            etcd_client.range(b"/registry/ranges/servicenodeports").kvs[0].value)
    finally:
        etcd_client.close()
    ip_range, port_range = IPAllocator.parse("10.96.0.0/12"), PortAllocator.parse("30000-32767")
    assert stored_ips == ("10.96.0.0/12", {ip_range.offset(s.spec.cluster_ip) for s in every})
    assert stored_ports == ("30000-32767", {port_range.offset(p.node_port) for s in every
                                            for p in s.spec.ports or [] if p.node_port})


@contextmanager
def two_schedulers(etcd, servers, name: str) -> Iterator[tuple]:
    """Two servers of their own (an etcd prefix of their own), the first started first so that
    it holds kube-scheduler's Lease: (that leader, the other's CoreV1Api and CoordinationV1Api).
    Both are stopped at the end, also when the test stopped or killed the leader."""
    from kubernetes import client

    prefix = ("--etcd-prefix", f"/{name}-" + uuid.uuid4().hex[:8])
    started = [server_on(etcd, pki_from=servers[0], extra=prefix)]
    api_client = None
    try:
        started.append(server_on(etcd, pki_from=servers[0], extra=prefix))
        api_client = started[1].client()
        yield started[0], client.CoreV1Api(api_client), client.CoordinationV1Api(api_client)
    finally:
        if api_client:
            api_client.close()
        for s in reversed(started):
            stop_server(s)


def scheduled(core, name: str) -> str | None:
    return core.read_namespaced_pod(name, "default").spec.node_name


def scheduler_lease(coordination):
    return coordination.read_namespaced_lease("kube-scheduler", "kube-system").spec


def test_one_server_schedules_and_another_takes_over_when_it_stops(etcd, servers):
    """The first server started holds kube-scheduler's Lease and schedules; stopped, it gives
    the Lease up and the other schedules the next pod."""
    from test_apiserver_scheduler_logs import events_for, pod, ready_node
    with two_schedulers(etcd, servers, "failover") as (leader, core, coordination):
        core.create_node(ready_node("failover-node"))
        before = scheduler_lease(coordination)
        for name in ("p-0", "p-1", "p-2"):
            core.create_namespaced_pod("default", pod(name))
        for name in ("p-0", "p-1", "p-2"):
            assert wait_for(lambda: scheduled(core, name), timeout=30) == "failover-node"
            # One scheduler: one binding, one Scheduled event.
            events = wait_for(lambda: events_for(core, "default", name), timeout=10)
            assert [e.reason for e in events] == ["Scheduled"]
        assert scheduler_lease(coordination).holder_identity == before.holder_identity
        stop_server(leader)
        core.create_namespaced_pod("default", pod("p-after"))
        # Given up at the leader's stop: well within the 15 s lease.
        assert wait_for(lambda: scheduled(core, "p-after"), timeout=15) == "failover-node"
        after = scheduler_lease(coordination)
        assert after.holder_identity != before.holder_identity
        assert after.lease_transitions == (before.lease_transitions or 0) + 1


def test_a_killed_leader_leaves_the_lease_to_expire_and_the_other_schedules(etcd, servers):
    """SIGKILL gives nothing up: the other server takes kube-scheduler's Lease once the 15 s
    lease has run out, schedules a pod created meanwhile, and sees the pods the dead leader
    bound (one more pod than the node has room for stays pending)."""
    import time

    from test_apiserver_scheduler_logs import pod, ready_node
    with two_schedulers(etcd, servers, "killed") as (leader, core, coordination):
        core.create_node(ready_node("killed-node", cpu="1"))
        core.create_namespaced_pod("default", pod("k-0", cpu="600m"))
        assert wait_for(lambda: scheduled(core, "k-0"), timeout=30) == "killed-node"
        before = scheduler_lease(coordination)
        leader.proc.send_signal(signal.SIGKILL)
        leader.proc.wait(10)
        killed_at = time.monotonic()
        core.create_namespaced_pod("default", pod("k-after", cpu="300m"))
        core.create_namespaced_pod("default", pod("k-no-room", cpu="300m"))
        assert wait_for(lambda: scheduled(core, "k-after"), timeout=40) == "killed-node"
        # Not before the lease ran out (renewed at most 2 s before the kill).
        assert time.monotonic() - killed_at >= before.lease_duration_seconds - 3
        after = scheduler_lease(coordination)
        assert after.holder_identity != before.holder_identity
        assert after.lease_transitions == (before.lease_transitions or 0) + 1
        # k-0 (600m, bound by the dead leader) counts: 300m more fit, 600m do not.
        time.sleep(2)
        assert scheduled(core, "k-no-room") is None
