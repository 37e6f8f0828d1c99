"""pykube-proxy as a process against the real pyapiserver: Services made with kubectl, their
EndpointSlices with the official Python client (Services without a selector, whose slices
their owner publishes, as the API allows), traffic from pods on a bridge of the test's own.
The proxy writes a table of the test's own ($PYKUBE_PROXY_TABLE); its ClusterIPs come from a
--service-cluster-ip-range that the pod network routes into a sink."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections import Counter

import pytest

from netkit import unique
from netns import links, rtnl
from proxy_testlib import (
    HTTP_PORT, PodNet, connect_error, delete_table, endpoint_slice, get, get_many, list_table,
    table_exists, table_name)
from testlib.processes import free_port
from testlib.pyapiserver import BIN, start_server, stop_server

pytestmark = [pytest.mark.root, pytest.mark.slow]


def wait_for(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met in {timeout}s")
        time.sleep(0.1)


class Cluster:
    """A pyapiserver, pods on a bridge, and a pykube-proxy process watching the server."""

    def __init__(self) -> None:
        self.bridge = unique("pyb")
        self.net = PodNet(self.bridge)
        self.table = table_name()
        self.ns = "px-" + uuid.uuid4().hex[:8]
        self.server = start_server(["--service-cluster-ip-range", self.net.service_subnet])
        self.proxy: subprocess.Popen | None = None
        self.log = open(os.path.join(self.net.web_root, "proxy.log"), "w+")
        self.healthz_port = free_port()

    def start_proxy(self) -> None:
        env = dict(os.environ, PYKUBE_PROXY_TABLE=self.table)
        self.proxy = subprocess.Popen(
            [os.path.join(BIN, "pykube-proxy"), "--kubeconfig", self.server.kubeconfig,
             "--proxy-mode=nftables", "--cluster-cidr", self.net.subnet,
             "--nodeport-addresses", f"{self.net.gateway}/32", "--hostname-override", "n1",
             "--min-sync-period", "100ms", "-v", "4",
             f"--healthz-bind-address=127.0.0.1:{self.healthz_port}"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: table_exists(self.table), what="the proxy's first sync")

    def stop_proxy(self) -> None:
        if self.proxy is not None and self.proxy.poll() is None:
            self.proxy.send_signal(signal.SIGTERM)
            try:
                self.proxy.wait(15)
            except subprocess.TimeoutExpired:
                self.proxy.kill()
                self.proxy.wait()
        self.proxy = None

    def proxy_log(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def kubectl(self, *args: str) -> str:
        return self.server.kubectl("-n", self.ns, *args).stdout

    def expose(self, name: str, kind: str = "clusterip") -> dict:
        """A Service made by kubectl; returns it as the API has it."""
        self.kubectl("create", "service", kind, name, f"--tcp=80:{HTTP_PORT}")
        return json.loads(self.kubectl("get", "service", name, "-o", "json"))

    def publish(self, svc: str, pods, **kwargs) -> None:
        """Creates or replaces the Service's EndpointSlice, through the official client."""
        from kubernetes import client
        # kubectl create service names the port after its numbers.
        body = endpoint_slice(svc, pods, namespace=self.ns, port_name=f"80-{HTTP_PORT}",
                              **kwargs)
        api = self.server.client()
        try:
            discovery = client.DiscoveryV1Api(api)
            name = body["metadata"]["name"]
            try:
                discovery.delete_namespaced_endpoint_slice(name, self.ns)
            except client.ApiException as e:
                if e.status != 404:
                    raise
            discovery.create_namespaced_endpoint_slice(self.ns, body)
        finally:
            api.close()

    def cleanup(self) -> None:
        try:
            self.stop_proxy()
        finally:
            self.log.close()
            stop_server(self.server)
            delete_table(self.table)
            self.net.cleanup()
            with rtnl.RtnlSocket() as host:
                link = links.get_link(host, self.bridge)
                if link is not None:
                    links.delete_link(host, link.index)


@pytest.fixture(scope="module")
def cluster(bridge_netfilter):
    c = Cluster()
    try:
        c.server.kubectl("create", "namespace", c.ns)
        c.pods = [c.net.add_pod(f"web-{i}") for i in range(3)]
        c.client = c.net.add_pod("client", serve=False)
        c.start_proxy()
        yield c
    finally:
        c.cleanup()


def _names_ip(text: str, ip: str) -> bool:
    """Whether `ip` is in the ruleset as a whole address: 198.19.8.19 is not in 198.19.8.191
    (a node's address in nodeport-ips, seen once in CI)."""
    return re.search(rf"(?<![\d.]){re.escape(ip)}(?![\d.])", text) is not None


def _ip(svc: dict) -> str:
    return svc["spec"]["clusterIP"]


def test_clusterip_reaches_all_three_backends(cluster):
    svc = cluster.expose("web")
    cluster.publish("web", cluster.pods)
    wait_for(lambda: get(_ip(svc), netns=cluster.client.netns, timeout=1), what="web answers")
    answers = Counter(get_many(_ip(svc), 300, netns=cluster.client.netns))
    assert set(answers) == {"web-0", "web-1", "web-2"}
    for name, n in answers.items():
        assert 0.20 <= n / 300 <= 0.47, answers


def test_client_ip_affinity_pins_one_backend(cluster):
    cluster.expose("sticky")
    cluster.kubectl("patch", "service", "sticky", "-p",
                    '{"spec":{"sessionAffinity":"ClientIP"}}')
    svc = json.loads(cluster.kubectl("get", "service", "sticky", "-o", "json"))
    cluster.publish("sticky", cluster.pods)
    wait_for(lambda: "affinity-" in list_table(cluster.table) and
             get(_ip(svc), netns=cluster.client.netns, timeout=1), what="sticky answers")
    assert len(set(get_many(_ip(svc), 30, netns=cluster.client.netns))) == 1


def test_service_without_endpoints_refuses_at_once(cluster):
    svc = cluster.expose("empty")
    # Until the proxy knows the Service its IP leads into the sink (a timeout); then the reject.
    wait_for(lambda: connect_error(_ip(svc), netns=cluster.client.netns, timeout=1)
             is ConnectionRefusedError, what="refused")
    assert connect_error(_ip(svc), netns=cluster.client.netns) is ConnectionRefusedError


def test_hairpin_pod_reaches_itself(cluster):
    svc = cluster.expose("self")
    cluster.publish("self", cluster.pods[:1])
    pod = cluster.pods[0]
    assert wait_for(lambda: get(_ip(svc), netns=pod.netns, timeout=1),
                    what="hairpin") == "web-0"


def test_nodeport_from_the_host_and_deletion_removes_every_rule(cluster):
    wait_for(lambda: cluster.proxy_log().count("sync of") >= 1, what="a sync")
    before = _stable(list_table(cluster.table))
    svc = cluster.expose("np", kind="nodeport")
    port = svc["spec"]["ports"][0]["nodePort"]
    cluster.publish("np", cluster.pods)
    answers = wait_for(lambda: get_many(cluster.net.gateway, 20, port=port),
                       what="the NodePort answers")
    assert set(answers) == {"web-0", "web-1", "web-2"}
    assert f"tcp . {port}" in list_table(cluster.table)

    cluster.kubectl("delete", "service", "np")
    cluster.kubectl("delete", "endpointslice", "np-abcde")
    wait_for(lambda: "/np/" not in list_table(cluster.table), what="np's rules gone")
    after = _stable(list_table(cluster.table))
    assert after == before
    assert not _names_ip(after, _ip(svc)) and f"tcp . {port}" not in after


def _stable(text: str) -> str:
    """The table without the running clocks of affinity entries."""
    return re.sub(r" expires \S+", "", text)


def _chains(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in
            re.finditer(r"\tchain (\S+) \{\n(.*?)\n\t\}", text, re.S)}


def test_one_service_change_touches_only_its_chains(cluster):
    cluster.expose("one")
    cluster.expose("two")
    cluster.publish("one", cluster.pods)
    cluster.publish("two", cluster.pods)
    wait_for(lambda: sum("/two/tcp" in c and "endpoint-" in c
                         for c in _chains(list_table(cluster.table))) == 3, what="two's chains")
    before = _chains(list_table(cluster.table))
    cluster.publish("two", cluster.pods[:2])
    wait_for(lambda: sum("/two/tcp" in c and "endpoint-" in c
                         for c in _chains(list_table(cluster.table))) == 2, what="the change")
    after = _chains(list_table(cluster.table))
    touched = {c for c in set(before) | set(after) if before.get(c) != after.get(c)}
    assert touched and all(f"{cluster.ns}/two/" in c for c in touched), touched
    # The proxy logged one partial sync of one Service for it.
    assert re.search(r"partial sync of 1 services", cluster.proxy_log())


def test_restart_full_sync_replaces_what_the_previous_run_left(cluster):
    svc = cluster.expose("gone")
    cluster.publish("gone", cluster.pods[:1])
    wait_for(lambda: f"{cluster.ns}/gone/" in list_table(cluster.table), what="gone's rules")
    cluster.stop_proxy()
    # The rules stay while the proxy is down, as kube-proxy's.
    assert get(_ip(svc), netns=cluster.client.netns) == "web-0"
    cluster.kubectl("delete", "service", "gone")
    cluster.start_proxy()
    wait_for(lambda: f"{cluster.ns}/gone/" not in list_table(cluster.table),
             what="the full sync dropped gone")
    assert not _names_ip(list_table(cluster.table), _ip(svc))


def _health(cluster, path: str) -> tuple[int, dict]:
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", cluster.healthz_port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        assert resp.getheader("Content-Type") == "application/json"
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_healthz_and_livez_as_kube_proxys(cluster):
    # The table exists once the first sync's transaction is in; the sync is done (and
    # reported) after its conntrack clearing.
    wait_for(lambda: "status" in _health(cluster, "/livez")[1], what="the first sync reported")
    status, body = _health(cluster, "/livez")
    assert status == 200 and body["healthy"] is True
    assert list(body)[:2] == ["lastUpdated", "currentTime"]
    assert body["status"]["IPv4"]["healthy"] is True
    # /healthz also needs this node's Node: none yet.
    status, body = _health(cluster, "/healthz")
    assert status == 503 and body["nodeEligible"] is False
    cluster.server.kubectl("create", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}))
    try:
        status, body = wait_for(lambda: (lambda r: r if r[0] == 200 else None)(
            _health(cluster, "/healthz")), what="/healthz 200")
        assert body["nodeEligible"] is True and body["healthy"] is True
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", body["currentTime"])
    finally:
        cluster.server.kubectl("delete", "node", "n1")

