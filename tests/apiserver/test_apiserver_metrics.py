"""metrics.k8s.io in the API server: reading the kubelet's Prometheus text, turning two scrapes
into usage as metrics-server does (rates, windows, restarts, fresh containers), Go's quantity
and duration forms, the REST objects over real stores, and discovery and errors through the
real server with the official client and kubectl."""
from __future__ import annotations

import json

import pytest
from kubeapi.status import ApiError

from apiserver import resources
from apiserver.metrics.exposition import ExpositionError, parse
from apiserver.metrics.formats import cpu_quantity, go_duration, memory_quantity
from apiserver.metrics.points import Batch, Point, decode, usage
from apiserver.metrics.rest import MetricsApi
from apiserver.metrics.storage import MetricsStorage
from apiserver.registry.store import Store
from apiserver.storage.sqlite import SQLiteStorage
from apiserver.auth.authn import User

T0 = 1_700_000_000.0

KUBELET_TEXT = """\
# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{{container="busy",namespace="ns",pod="load"}} {busy} {ms}
container_cpu_usage_seconds_total{{container="mem",namespace="ns",pod="load"}} 0.5 {ms}
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{{container="busy",namespace="ns",pod="load"}} 204800 {ms}
container_memory_working_set_bytes{{container="mem",namespace="ns",pod="load"}} 5.24288e+07 {ms}
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{{container="busy",namespace="ns",pod="load"}} {start}
container_start_time_seconds{{container="mem",namespace="ns",pod="load"}} {start}
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total {node} {ms}
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 1.073741824e+09 {ms}
# HELP scrape_error [ALPHA] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE scrape_error gauge
scrape_error 0
"""


def scrape(at: float, busy: float, node: float, start: float = T0 - 3600) -> Batch:
    return decode(KUBELET_TEXT.format(ms=int(at * 1000), busy=busy, node=node, start=start),
                  at)


def test_exposition_labels_escapes_and_errors():
    (s,) = parse('m{a="x\\"y",b="line\\nnext",c="back\\\\"} 1.5e+06 1700000000123\n')
    assert s.labels == {"a": 'x"y', "b": "line\nnext", "c": "back\\"}
    assert (s.value, s.timestamp_ms) == (1.5e6, 1700000000123)
    assert parse("# only a comment\n\nplain 3\n")[0].timestamp_ms is None
    with pytest.raises(ExpositionError, match="malformed"):
        parse('m{a="x} 1\n')
    with pytest.raises(ExpositionError, match="not a number"):
        parse("m one\n")


def test_decode_a_kubelet_scrape():
    batch = scrape(T0, busy=2.0, node=100.0)
    assert batch.node == Point(T0, 100_000_000_000, 1 << 30)
    busy = batch.pods[("ns", "load")]["busy"]
    assert (busy.cpu_ns, busy.memory, busy.timestamp, busy.start_time) == \
        (2_000_000_000, 204800, T0, T0 - 3600)
    assert batch.pods[("ns", "load")]["mem"].memory == 52428800
    # A container without CPU time makes its pod incomplete, as metrics-server drops it.
    text = KUBELET_TEXT.format(ms=int(T0 * 1000), busy=0, node=1, start=T0 - 60)
    assert decode(text, T0).pods == {}
    # Samples without a timestamp take the time of the request.
    assert decode("node_cpu_usage_seconds_total 5\nnode_memory_working_set_bytes 7\n",
                  T0).node == Point(T0, 5_000_000_000, 7)


def test_two_scrapes_give_rates_and_windows():
    storage = MetricsStorage(15.0)
    storage.store({"n1": scrape(T0, busy=2.0, node=100.0)})
    assert storage.node("n1") is None and storage.pod(("ns", "load")) is None
    storage.store({"n1": scrape(T0 + 15, busy=5.0, node=130.0)})
    node = storage.node("n1")
    assert (node.nano_cores, node.memory, node.timestamp, node.window) == \
        (2_000_000_000, 1 << 30, T0 + 15, 15.0)
    timestamp, window, containers = storage.pod(("ns", "load"))
    assert (timestamp, window) == (T0 + 15, 15.0)
    assert containers["busy"].nano_cores == 200_000_000
    assert containers["mem"].nano_cores == 0 and containers["mem"].memory == 52428800
    # The same point again keeps the earlier one as previous.
    storage.store({"n1": scrape(T0 + 15, busy=5.0, node=130.0)})
    assert storage.node("n1").window == 15.0
    # A node gone from the scrape is forgotten.
    storage.store({})
    assert storage.node("n1") is None


def test_restarted_and_fresh_containers():
    storage = MetricsStorage(15.0)
    storage.store({"n1": scrape(T0, busy=50.0, node=100.0)})
    # Restarted after the stored point: no usage until a second point of the new run.
    storage.store({"n1": scrape(T0 + 15, busy=1.0, node=130.0, start=T0 + 10)})
    assert storage.pod(("ns", "load")) is None
    storage.store({"n1": scrape(T0 + 30, busy=4.0, node=160.0, start=T0 + 10)})
    assert storage.pod(("ns", "load"))[2]["busy"].nano_cores == 200_000_000
    # A container 12 s old at its first scrape: its start is the previous point.
    fresh = MetricsStorage(15.0)
    fresh.store({"n1": scrape(T0, busy=1.2, node=100.0, start=T0 - 12)})
    timestamp, window, containers = fresh.pod(("ns", "load"))
    assert window == 12.0 and containers["busy"].nano_cores == 100_000_000
    # A counter going back (not a restart) gives no usage.
    assert usage(Point(T0 + 1, 5, 1), Point(T0, 10, 1)) is None


def test_go_forms():
    assert [cpu_quantity(n) for n in (0, 123456789, 200_000_000, 10 ** 9, 1_500_000_000)] == \
        ["0", "123456789n", "200m", "1", "1500m"]
    assert [memory_quantity(n) for n in (0, 1000, 1024, 53944320, 52428800)] == \
        ["0", "1000", "1Ki", "52680Ki", "50Mi"]
    assert [go_duration(s) for s in (15.012, 60.5, 0.5, 3661, 15)] == \
        ["15.012s", "1m0.5s", "500ms", "1h1m1s", "15s"]


def test_kubelet_text_round_trip():
    """What our kubelet writes is what the scraper reads."""
    from kubelet.stats import resource_metrics
    from kubelet.stats.prometheus import render
    from kubelet.stats.provider import ContainerSample, PodSample, Snapshot
    from cgroups.usage import Usage

    u = Usage(int(T0) * 10**9 + 123_000_000, 3_250_000_000, 60 << 20, 50 << 20, 0, 0, 0, 0)
    snap = Snapshot("n1", T0 - 9999, u, None, [PodSample(
        "load", "ns", "uid", T0 - 100, u, None, [ContainerSample("c", T0 - 100.5, u, None)])])
    batch = decode(render(resource_metrics.families(snap)), T0 + 5)
    assert batch.node == Point(T0 + 0.123, 3_250_000_000, 50 << 20)
    assert batch.pods[("ns", "load")]["c"] == Point(T0 + 0.123, 3_250_000_000, 50 << 20,
                                                    T0 - 100.5)


@pytest.fixture
def metrics_api(tmp_path):
    storage = SQLiteStorage(str(tmp_path / "db"))
    stores = {plural: Store(storage, resources.find("", "v1", plural), lambda ns, c: None)
              for plural in ("pods", "nodes")}
    api = MetricsApi(stores["pods"], stores["nodes"], _cert(tmp_path), _cert(tmp_path, True))
    # Stopped before the first request: the tests store the points themselves, and a scrape
    # (of no Ready node) would replace them with nothing.
    api.stop()
    yield api, stores
    storage.close()


def _cert(tmp_path, key: bool = False) -> str:
    from apiserver.pki.certificates import ensure_pki
    pki = ensure_pki(str(tmp_path / "pki"), "127.0.0.1")
    return pki.kubelet_client_key if key else pki.kubelet_client_cert


class _Req:
    def __init__(self, method: str = "GET", query: dict | None = None) -> None:
        self.method, self.query = method, query or {}
        self.user = User("admin", "", ("system:masters", "system:authenticated"))


def _pod(stores, name: str, phase: str, labels: dict) -> None:
    pods = stores["pods"]
    pods.create("ns", {"metadata": {"name": name, "labels": labels}, "spec": {
        "containers": [{"name": "busy", "image": "busybox"}]}})
    pods.guaranteed_update("ns", name, lambda p: {**p, "status": {"phase": phase}},
                           subresource="status")


def test_rest_objects_lists_selectors_and_tables(metrics_api):
    api, stores = metrics_api
    _pod(stores, "load", "Running", {"app": "load"})
    _pod(stores, "done", "Succeeded", {"app": "load"})
    stores["nodes"].create("", {"metadata": {"name": "n1", "labels": {"zone": "a"}}})
    text = "".join(line for line in KUBELET_TEXT.splitlines(True)     # one container
                   if 'container="mem"' not in line)
    for at, busy, node in ((T0, 2.0, 100.0), (T0 + 15, 5.0, 130.0)):
        api.storage.store({"n1": decode(text.format(ms=int(at * 1000), busy=busy, node=node,
                                                    start=T0 - 3600), at)})
    code, body = api.handle(["v1beta1", "namespaces", "ns", "pods", "load"], _Req(), False)
    assert code == 200 and body["kind"] == "PodMetrics"
    assert body["metadata"]["name"] == "load" and body["window"] == "15s"
    assert body["containers"] == [{"name": "busy", "usage": {
        "cpu": "200m", "memory": "200Ki", "swap": "0"}}]
    listed = api.handle(["v1beta1", "namespaces", "ns", "pods"],
                        _Req(query={"labelSelector": "app=load"}), False)[1]
    assert listed["kind"] == "PodMetricsList" and \
        [i["metadata"]["name"] for i in listed["items"]] == ["load"]     # not the Succeeded one
    assert api.handle(["v1beta1", "pods"], _Req(query={"labelSelector": "app=x"}),
                      False)[1]["items"] == []
    nodes = api.handle(["v1beta1", "nodes"], _Req(query={"labelSelector": "zone=a"}), False)[1]
    assert nodes["items"][0]["usage"]["cpu"] == "2" and \
        nodes["items"][0]["timestamp"].endswith("Z")
    table = api.handle(["v1beta1", "nodes"], _Req(), True)[1]
    assert [c["name"] for c in table["columnDefinitions"]] == \
        ["Name", "cpu", "memory", "swap", "Window"]
    assert table["rows"][0]["cells"] == ["n1", "2", "1Gi", "0", "15s"]
    with pytest.raises(ApiError) as e:
        api.handle(["v1beta1", "namespaces", "ns", "pods", "done"], _Req(), False)
    assert e.value.code == 404 and 'podmetrics.metrics.k8s.io "ns/done" not found' in \
        e.value.message
    with pytest.raises(ApiError) as e:
        api.handle(["v1beta1", "nodes"], _Req("POST"), False)
    assert e.value.code == 405
    with pytest.raises(ApiError) as e:
        api.handle(["v1beta1", "nodes"], _Req(query={"watch": "true"}), False)
    assert e.value.code == 405


def test_discovery_and_errors_through_the_server(own_server):
    """On a server of its own: asking for metrics starts the scraping of Ready nodes, which
    must not reach the fake kubelets of other tests."""
    from kubernetes import client
    server, namespace = own_server, "metrics-test"
    server.kubectl("create", "namespace", namespace)
    api = server.client()
    try:
        groups = client.ApisApi(api).get_api_versions()
        (group,) = [g for g in groups.groups if g.name == "metrics.k8s.io"]
        assert group.preferred_version.group_version == "metrics.k8s.io/v1beta1"
        custom = client.CustomObjectsApi(api)
        listed = custom.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")
        assert listed["kind"] == "NodeMetricsList" and listed["items"] == []
        with pytest.raises(client.ApiException) as e:
            custom.get_namespaced_custom_object("metrics.k8s.io", "v1beta1", namespace, "pods",
                                                "nothere")
        assert e.value.status == 404
    finally:
        api.close()
    resources_out = server.kubectl("api-resources", "--api-group=metrics.k8s.io").stdout
    assert "NodeMetrics" in resources_out and "PodMetrics" in resources_out
    raw = json.loads(server.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1").stdout)
    assert {r["name"] for r in raw["resources"]} == {"nodes", "pods"}
    top = server.kubectl("top", "pod", "-n", namespace, check=False)
    assert top.returncode == 0 and "No resources found" in top.stderr
