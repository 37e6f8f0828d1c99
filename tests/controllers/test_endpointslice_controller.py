"""The EndpointSlice and Endpoints controllers against the real pyapiserver: pods are API objects
whose IP and readiness are written through pods/status (no kubelet), Services select them, and
the slices and Endpoints follow: conditions as kube computes them, node and zone, targetRef,
named target ports resolved per pod, 100 endpoints per slice, terminating pods, placeholders,
and removal with the Service. kubectl reads what they wrote."""
from __future__ import annotations

import subprocess
import uuid

import pytest

from controllers_testlib import running, wait_for
from testlib.pyapiserver import kubectl_path

SLICES = "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"
ZONE = "topology.kubernetes.io/zone"


@pytest.fixture
def controllers(client):
    """The two controllers in this process, as the manager runs them."""
    with running(client, ["endpointslice", "endpoint"]):
        yield


@pytest.fixture
def node(client):
    name = "es-node-" + uuid.uuid4().hex[:6]
    client.create("/api/v1/nodes", {"metadata": {"name": name, "labels": {ZONE: "zone-a"}}})
    yield name
    client.delete(f"/api/v1/nodes/{name}")


@pytest.fixture
def pods(client, namespace):
    """Creates pods (bound to a node, so the scheduler leaves them) and removes them at the end,
    finalizers first."""
    made: list[str] = []

    def make(name: str, node: str, labels: dict, ip: str | None = None, ready: bool = True,
             ports: list[dict] | None = None, **spec) -> dict:
        container = {"name": "c", "image": "busybox"}
        if ports:
            container["ports"] = ports
        client.create(f"/api/v1/namespaces/{namespace}/pods", {
            "metadata": {"name": name, "labels": labels},
            "spec": {"nodeName": node, "containers": [container], **spec}})
        made.append(name)
        if ip:
            set_status(name, ip, ready)
        return client.get(f"/api/v1/namespaces/{namespace}/pods/{name}")

    def set_status(name: str, ip: str, ready: bool) -> None:
        client.patch(f"/api/v1/namespaces/{namespace}/pods/{name}/status", {"status": {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}})

    make.set_status = set_status
    yield make
    for name in made:
        path = f"/api/v1/namespaces/{namespace}/pods/{name}"
        try:
            client.patch(path, {"metadata": {"finalizers": None}})
            client.delete(path, {"gracePeriodSeconds": 0})
        except Exception:
            pass


def service(client, namespace: str, name: str, selector: dict, ports: list[dict] | None = None,
            **spec) -> dict:
    body = {"metadata": {"name": name, "labels": {"team": "web"}},
            "spec": {"selector": selector, **spec}}
    if ports is not None:
        body["spec"]["ports"] = ports
    return client.create(f"/api/v1/namespaces/{namespace}/services", body)


def slices(client, namespace: str, svc: str) -> list[dict]:
    items = client.get(SLICES.format(ns=namespace),
                       {"labelSelector": f"kubernetes.io/service-name={svc}"})["items"]
    return sorted(items, key=lambda s: s["metadata"]["name"])


def endpoints_by_pod(client, namespace: str, svc: str) -> dict[str, dict]:
    return {ep["targetRef"]["name"]: ep for s in slices(client, namespace, svc)
            for ep in s.get("endpoints") or []}


def endpoints_object(client, namespace: str, name: str) -> dict | None:
    try:
        return client.get(f"/api/v1/namespaces/{namespace}/endpoints/{name}")
    except Exception:
        return None


def test_slice_of_a_service_and_its_endpoints(client, namespace, node, pods, controllers):
    web = {"app": "web"}
    pods("web-1", node, web, "198.18.10.1",
         ports=[{"name": "http", "containerPort": 8080}], hostname="h1", subdomain="web")
    pods("web-2", node, web, "198.18.10.2", ready=False,
         ports=[{"name": "http", "containerPort": 8080}])
    pods("web-noip", node, web)
    pods("other", node, {"app": "other"}, "198.18.10.9")
    svc = service(client, namespace, "web", web,
                  [{"name": "http", "port": 80, "targetPort": "http"}])

    def both():
        eps = endpoints_by_pod(client, namespace, "web")
        return eps if set(eps) == {"web-1", "web-2"} else None
    eps = wait_for(both, what="slice with web-1 and web-2")
    (es,) = slices(client, namespace, "web")
    meta = es["metadata"]
    assert meta["name"].startswith("web-") and len(meta["name"]) == len("web-") + 5
    assert meta["labels"] == {"kubernetes.io/service-name": "web", "team": "web",
                              "endpointslice.kubernetes.io/managed-by":
                              "endpointslice-controller.k8s.io"}
    assert meta["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                        "uid": svc["metadata"]["uid"], "controller": True,
                                        "blockOwnerDeletion": True}]
    assert es["addressType"] == "IPv4"
    assert es["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    one, two = eps["web-1"], eps["web-2"]
    assert one["addresses"] == ["198.18.10.1"]
    assert one["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert two["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert one["nodeName"] == node and one["zone"] == "zone-a" and one["hostname"] == "h1"
    assert one["targetRef"]["kind"] == "Pod" and one["targetRef"]["namespace"] == namespace
    assert "hostname" not in two

    ep = wait_for(lambda: endpoints_object(client, namespace, "web"), what="Endpoints web")
    assert ep["metadata"]["labels"] == {"team": "web", "endpoints.kubernetes.io/managed-by":
                                        "endpoint-controller"}
    (subset,) = ep["subsets"]
    assert [a["ip"] for a in subset["addresses"]] == ["198.18.10.1"]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["198.18.10.2"]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert subset["addresses"][0]["nodeName"] == node


def test_readiness_flips_follow_pod_events(client, namespace, node, pods, controllers):
    pods("p", node, {"app": "flip"}, "198.18.10.3", ready=False)
    service(client, namespace, "flip", {"app": "flip"}, [{"port": 80}])

    def ready_is(value: bool):
        ep = endpoints_by_pod(client, namespace, "flip").get("p")
        return ep if ep and ep["conditions"]["ready"] is value else None

    def endpoints_ready(value: bool):
        ep = endpoints_object(client, namespace, "flip") or {}
        key = "addresses" if value else "notReadyAddresses"
        return any(key in s for s in ep.get("subsets") or [])
    wait_for(lambda: ready_is(False), what="p not ready")
    for value in (True, False, True):
        pods.set_status("p", "198.18.10.3", value)
        ep = wait_for(lambda: ready_is(value), timeout=5, what=f"p ready={value}")
        assert ep["conditions"]["serving"] is value
        wait_for(lambda: endpoints_ready(value), timeout=5, what=f"Endpoints ready={value}")


def test_terminating_pods_are_serving_not_ready(client, namespace, node, pods, controllers):
    pods("t", node, {"app": "term"}, "198.18.10.4")
    pods("u", node, {"app": "term"}, "198.18.10.5", ready=False)
    for name in ("t", "u"):
        client.patch(f"/api/v1/namespaces/{namespace}/pods/{name}",
                     {"metadata": {"finalizers": ["example.com/hold"]}})
    service(client, namespace, "term", {"app": "term"}, [{"port": 80}])
    wait_for(lambda: len(endpoints_by_pod(client, namespace, "term")) == 2, what="2 endpoints")
    for name in ("t", "u"):
        client.delete(f"/api/v1/namespaces/{namespace}/pods/{name}")

    def terminating():
        eps = endpoints_by_pod(client, namespace, "term")
        ok = all(eps.get(n, {}).get("conditions", {}).get("terminating") for n in ("t", "u"))
        return eps if ok else None
    eps = wait_for(terminating, what="terminating endpoints")
    assert eps["t"]["conditions"] == {"ready": False, "serving": True, "terminating": True}
    assert eps["u"]["conditions"] == {"ready": False, "serving": False, "terminating": True}
    # The Endpoints object leaves terminating pods out, as kube's endpoints controller.
    wait_for(lambda: not (endpoints_object(client, namespace, "term") or {"subsets": [1]})
             .get("subsets"), what="Endpoints without terminating pods")


def test_publish_not_ready_addresses(client, namespace, node, pods, controllers):
    pods("n", node, {"app": "pub"}, "198.18.10.6", ready=False)
    service(client, namespace, "pub", {"app": "pub"}, [{"port": 53, "protocol": "UDP"}],
            publishNotReadyAddresses=True)
    ep = wait_for(lambda: endpoints_by_pod(client, namespace, "pub").get("n"), what="n")
    assert ep["conditions"] == {"ready": True, "serving": True, "terminating": False}
    obj = wait_for(lambda: (endpoints_object(client, namespace, "pub") or {}).get("subsets"),
                   what="Endpoints pub")
    assert [a["ip"] for a in obj[0]["addresses"]] == ["198.18.10.6"]
    assert obj[0]["ports"] == [{"port": 53, "protocol": "UDP"}]


def test_named_ports_resolve_per_pod_into_slices(client, namespace, node, pods, controllers):
    pods("a", node, {"app": "np"}, "198.18.10.7", ports=[{"name": "web", "containerPort": 8080}])
    pods("b", node, {"app": "np"}, "198.18.10.8", ports=[{"name": "web", "containerPort": 9090}])
    service(client, namespace, "np", {"app": "np"}, [{"port": 80, "targetPort": "web"}])

    def two_slices():
        got = slices(client, namespace, "np")
        return got if len(got) == 2 and all(s.get("endpoints") for s in got) else None
    got = wait_for(two_slices, what="a slice per resolved port")
    by_port = {s["ports"][0]["port"]: [e["targetRef"]["name"] for e in s["endpoints"]]
               for s in got}
    assert by_port == {8080: ["a"], 9090: ["b"]}
    ep = wait_for(lambda: (endpoints_object(client, namespace, "np") or {}).get("subsets"),
                  what="Endpoints np")
    assert sorted((s["ports"][0]["port"], s["addresses"][0]["ip"]) for s in ep) == \
        [(8080, "198.18.10.7"), (9090, "198.18.10.8")]


def test_placeholder_then_removal_with_the_service(client, namespace, controllers):
    service(client, namespace, "empty", {"app": "none"}, [{"port": 80}])
    (placeholder,) = wait_for(lambda: slices(client, namespace, "empty"), what="placeholder")
    assert not placeholder.get("endpoints") and not placeholder.get("ports")
    wait_for(lambda: endpoints_object(client, namespace, "empty"), what="Endpoints empty")
    client.delete(f"/api/v1/namespaces/{namespace}/services/empty")
    wait_for(lambda: not slices(client, namespace, "empty"), what="slices gone")
    wait_for(lambda: endpoints_object(client, namespace, "empty") is None, what="Endpoints gone")


def test_selectorless_service_is_left_alone(client, namespace, controllers):
    service(client, namespace, "manual", {}, [{"port": 80}])
    client.create(f"/api/v1/namespaces/{namespace}/endpoints", {
        "metadata": {"name": "manual"},
        "subsets": [{"addresses": [{"ip": "198.18.10.20"}], "ports": [{"port": 80}]}]})
    service(client, namespace, "marker", {"app": "none"}, [{"port": 80}])
    wait_for(lambda: slices(client, namespace, "marker"), what="the controller ran")
    assert slices(client, namespace, "manual") == []
    ep = endpoints_object(client, namespace, "manual")
    assert ep["subsets"][0]["addresses"] == [{"ip": "198.18.10.20"}]


@pytest.fixture
def mirroring(client):
    with running(client, ["endpointslicemirroring"]):
        yield


def test_mirroring_of_a_selectorless_services_endpoints(client, namespace, mirroring):
    service(client, namespace, "ext", {}, [{"name": "db", "port": 5432}])
    ep = client.create(f"/api/v1/namespaces/{namespace}/endpoints", {
        "metadata": {"name": "ext", "labels": {"tier": "db"}},
        "subsets": [{"addresses": [{"ip": "198.18.12.1", "hostname": "db-0"}],
                     "notReadyAddresses": [{"ip": "198.18.12.2"}],
                     "ports": [{"name": "db", "port": 5432}]}]})
    (es,) = wait_for(lambda: slices(client, namespace, "ext"), what="mirrored slice")
    assert es["metadata"]["name"].startswith("ext-")
    assert es["metadata"]["labels"] == {
        "tier": "db", "kubernetes.io/service-name": "ext",
        "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io"}
    assert es["metadata"]["ownerReferences"] == [{
        "apiVersion": "v1", "kind": "Endpoints", "name": "ext", "uid": ep["metadata"]["uid"],
        "controller": True, "blockOwnerDeletion": True}]
    assert es["addressType"] == "IPv4"
    assert es["ports"] == [{"name": "db", "port": 5432, "protocol": "TCP"}]
    assert sorted((e["addresses"][0], e["conditions"]["ready"]) for e in es["endpoints"]) == \
        [("198.18.12.1", True), ("198.18.12.2", False)]
    client.patch(f"/api/v1/namespaces/{namespace}/endpoints/ext", {"subsets": [
        {"addresses": [{"ip": "198.18.12.3"}], "ports": [{"name": "db", "port": 5433}]}]})
    wait_for(lambda: [e["addresses"] for s in slices(client, namespace, "ext")
                      for e in s.get("endpoints") or []] == [["198.18.12.3"]],
             what="the slice follows the Endpoints")
    client.patch(f"/api/v1/namespaces/{namespace}/endpoints/ext",
                 {"metadata": {"labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}}})
    wait_for(lambda: not slices(client, namespace, "ext"), what="skip-mirror removes it")


def test_at_most_100_endpoints_per_slice(client, namespace, node, pods, controllers):
    for i in range(105):
        pods(f"m{i}", node, {"app": "many"}, f"198.18.11.{i + 1}")
    service(client, namespace, "many", {"app": "many"}, [{"port": 80}])

    def full():
        got = slices(client, namespace, "many")
        sizes = sorted(len(s.get("endpoints") or []) for s in got)
        return sizes if sum(sizes) == 105 else None
    assert wait_for(full, timeout=30, what="105 endpoints") == [5, 100]


def test_endpoints_truncated_at_1000_ready_first():
    from controllers.endpoints.endpoints import truncate
    subsets = [{"addresses": [{"ip": f"198.18.20.{i}"} for i in range(600)],
                "ports": [{"port": 80}]},
               {"notReadyAddresses": [{"ip": f"198.18.21.{i}"} for i in range(300)],
                "addresses": [{"ip": f"198.18.22.{i}"} for i in range(300)],
                "ports": [{"port": 81}]}]
    assert truncate(subsets)
    assert [len(s.get("addresses") or []) for s in subsets] == [600, 300]
    assert [len(s.get("notReadyAddresses") or []) for s in subsets] == [0, 100]
    assert not truncate(subsets)


def test_kubectl_shows_slices_and_endpoints(server, client, namespace, node, pods,
                                            controllers):
    pods("k1", node, {"app": "kc"}, "198.18.10.30")
    service(client, namespace, "kc", {"app": "kc"}, [{"port": 80, "targetPort": 8080}])
    wait_for(lambda: endpoints_by_pod(client, namespace, "kc").get("k1"), what="k1")
    wait_for(lambda: (endpoints_object(client, namespace, "kc") or {}).get("subsets"),
             what="Endpoints kc")

    def kubectl(*args: str) -> str:
        proc = subprocess.run([kubectl_path(), "--kubeconfig", server.kubeconfig, "-n", namespace,
                               *args], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout
    out = kubectl("get", "endpointslices")
    assert out.split("\n")[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    assert out.split("\n")[1].split()[1:4] == ["IPv4", "8080", "198.18.10.30"]
    out = kubectl("get", "endpoints", "kc")
    assert out.split("\n")[1].split()[:2] == ["kc", "198.18.10.30:8080"]
    out = kubectl("describe", "svc", "kc")
    assert "Endpoints:" in out and "198.18.10.30:8080" in out
