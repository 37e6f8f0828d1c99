"""What the proxy tests share: "pods" (network namespaces on a bridge of the host, in a random
/24 of 198.18.0.0/15), each serving HTTP with busybox httpd that answers its own name; Service
and EndpointSlice objects as the API server writes them; clients that run in a pod or on the
host; and nft helpers that only ever read or delete the test's own table."""
from __future__ import annotations

import http.client
import ipaddress
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from netkit import Namespaces, random_subnet, unique
from netns import addresses, bridge_port, enter, links, routes, rtnl, sysctl

HTTP_PORT = 8080            # the pods' port: the Services' targetPort, unlike their port 80
BUSYBOX = shutil.which("busybox") or "/usr/bin/busybox"
NSENTER = shutil.which("nsenter") or "/usr/bin/nsenter"


def table_name() -> str:
    """A unique table name per test: parallel tests and a real pykube-proxy never meet."""
    return f"pykp-test-{secrets.token_hex(4)}"


def nft(*args: str) -> str:
    return subprocess.run(["nft", *args], capture_output=True, text=True, check=True).stdout


def table_exists(table: str) -> bool:
    return f"table ip {table}" in nft("list", "tables").splitlines()


def delete_table(table: str) -> None:
    if table_exists(table):
        nft("delete", "table", "ip", table)


def list_table(table: str) -> str:
    return nft("list", "table", "ip", table)


@dataclass
class Pod:
    name: str
    netns: str
    ip: str
    node: str = "n1"
    server: subprocess.Popen | None = None


@dataclass
class PodNet:
    """A bridge with the host as gateway, and pods on it. Everything goes in cleanup()."""
    bridge: str
    namespaces: Namespaces = field(default_factory=Namespaces)
    pods: list[Pod] = field(default_factory=list)
    web_root: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="pyk-proxy-"))

    def __post_init__(self) -> None:
        net = ipaddress.ip_network(random_subnet())
        hosts = list(net.hosts())
        self.subnet = str(net)
        self.gateway = str(hosts[0])
        self._next = 1
        # The Services' IPs: a second random /24, routed into a sink (a veth whose other end
        # is in a namespace of its own) so that nothing meant for a Service can leave the
        # machine, even when no rule catches it. Not to the bridge: a packet routed back out
        # of the interface it came in by gets no ICMP error from the kernel, so a reject
        # would look like a timeout (real nodes route Service IPs out of their uplink).
        svc = ipaddress.ip_network(random_subnet())
        while svc == net:
            svc = ipaddress.ip_network(random_subnet())
        self.service_subnet = str(svc)
        self._service_ips = [str(h) for h in list(svc.hosts())[9:]]
        sink = self.namespaces.new(unique("pod"))
        sink_end = unique("pyv")
        fd = os.open(sink, os.O_RDONLY)
        try:
            with rtnl.RtnlSocket() as host:
                link = links.create_bridge(host, self.bridge)
                addresses.add_address(host, link.index, f"{self.gateway}/{net.prefixlen}")
                links.set_up(host, link.index)
                self.bridge_index = link.index
                links.create_veth(host, sink_end, "eth0", peer_netns_fd=fd)
                uplink = links.get_link(host, sink_end)
                links.set_up(host, uplink.index)
                routes.add_route(host, self.service_subnet, oif=uplink.index)
        finally:
            os.close(fd)
        with rtnl.open_in(sink) as sock:
            links.set_up(sock, links.get_link(sock, "eth0").index)

    def service_ip(self) -> str:
        return self._service_ips.pop(0)

    def add_pod(self, name: str, node: str = "n1", serve: bool = True) -> Pod:
        self._next += 1
        ip = str(ipaddress.ip_network(self.subnet)[self._next])
        path = self.namespaces.new(unique("pod"))
        host_end = unique("pyv")
        fd = os.open(path, os.O_RDONLY)
        try:
            with rtnl.RtnlSocket() as host:
                links.create_veth(host, host_end, "eth0", peer_netns_fd=fd)
                veth = links.get_link(host, host_end)
                links.set_master(host, veth.index, self.bridge_index)
                links.set_up(host, veth.index)
        finally:
            os.close(fd)
        # As the kubelet's hairpin-veth mode (the CNI bridge's hairpinMode): with
        # br_netfilter a pod's packet DNATed back to itself is bridged out of the port it
        # came in by.
        bridge_port.set_hairpin(host_end, True)
        with rtnl.open_in(path) as sock:
            for ifname in ("lo", "eth0"):
                links.set_up(sock, links.get_link(sock, ifname).index)
            eth0 = links.get_link(sock, "eth0")
            addresses.add_address(sock, eth0.index, f"{ip}/24")
            routes.add_route(sock, "0.0.0.0/0", self.gateway)
        pod = Pod(name, path, ip, node)
        if serve:
            pod.server = self._serve(pod)
        self.pods.append(pod)
        return pod

    def _serve(self, pod: Pod) -> subprocess.Popen:
        root = os.path.join(self.web_root, pod.name)
        os.makedirs(root)
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write(pod.name)
        proc = subprocess.Popen([NSENTER, f"--net={pod.netns}", BUSYBOX, "httpd", "-f",
                                 "-p", f"{pod.ip}:{HTTP_PORT}", "-h", root],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _port_open(pod.netns, pod.ip, HTTP_PORT):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"httpd of {pod.name} did not start")
            time.sleep(0.05)
        return proc

    def cleanup(self) -> None:
        for pod in self.pods:
            if pod.server is not None and pod.server.poll() is None:
                pod.server.terminate()
                try:
                    pod.server.wait(5)
                except subprocess.TimeoutExpired:
                    pod.server.kill()
                    pod.server.wait()
        self.namespaces.cleanup()
        shutil.rmtree(self.web_root, ignore_errors=True)


def _port_open(netns: str, ip: str, port: int) -> bool:
    def probe() -> bool:
        with socket.socket() as s:
            s.settimeout(1)
            return s.connect_ex((ip, port)) == 0
    return enter.run_in_netns(netns, probe)


def get(ip: str, port: int = 80, netns: str | None = None, timeout: float = 5.0) -> str:
    """One HTTP GET / from the pod `netns` (the host when None): the answering pod's name."""
    def fetch() -> str:
        conn = http.client.HTTPConnection(ip, port, timeout=timeout)
        try:
            conn.request("GET", "/")
            return conn.getresponse().read().decode()
        finally:
            conn.close()
    return enter.run_in_netns(netns, fetch) if netns else fetch()


def get_many(ip: str, count: int, port: int = 80, netns: str | None = None) -> list[str]:
    """`count` GETs, each on a new connection (a new random choice), from one thread."""
    def fetch_all() -> list[str]:
        out = []
        for _ in range(count):
            conn = http.client.HTTPConnection(ip, port, timeout=5)
            try:
                conn.request("GET", "/")
                out.append(conn.getresponse().read().decode())
            finally:
                conn.close()
        return out
    return enter.run_in_netns(netns, fetch_all) if netns else fetch_all()


def connect_error(ip: str, port: int = 80, netns: str | None = None,
                  timeout: float = 10.0) -> type[BaseException] | None:
    """The exception class a TCP connect ends with (None when it connects)."""
    def attempt():
        with socket.socket() as s:
            s.settimeout(timeout)
            try:
                s.connect((ip, port))
            except (OSError, socket.timeout) as e:
                return type(e)
            return None
    return enter.run_in_netns(netns, attempt) if netns else attempt()


def ensure_bridge_netfilter() -> str | None:
    """Bridged replies (a backend answering a client on its own bridge) must pass conntrack to
    be un-DNATed, as on every Kubernetes node (br_netfilter); returns the value to restore."""
    key = "net.bridge.bridge-nf-call-iptables"
    before = sysctl.read(key)
    if before.strip() != "1":
        sysctl.write(key, "1")
        return before
    return None


# -- API objects ------------------------------------------------------------------------------

def service(name: str, cluster_ip: str, namespace: str = "default", port: int = 80,
            type_: str = "ClusterIP", node_port: int = 0, protocol: str = "TCP",
            **spec: object) -> dict:
    p = {"name": "http", "port": port, "protocol": protocol, "targetPort": HTTP_PORT}
    if node_port:
        p["nodePort"] = node_port
    body = {"type": type_, "clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "ports": [p],
            "sessionAffinity": "None"}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace}, "spec": body}


def endpoint_slice(svc: str, pods: list[Pod], namespace: str = "default",
                   protocol: str = "TCP", not_ready: tuple[str, ...] = (),
                   terminating: tuple[str, ...] = (), suffix: str = "abcde",
                   port_name: str = "http") -> dict:
    endpoints = []
    for pod in pods:
        term = pod.name in terminating
        ready = pod.name not in not_ready and not term
        endpoints.append({"addresses": [pod.ip], "nodeName": pod.node,
                          "conditions": {"ready": ready, "serving": pod.name not in not_ready,
                                         "terminating": term},
                          "targetRef": {"kind": "Pod", "name": pod.name,
                                        "namespace": namespace}})
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{svc}-{suffix}", "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "endpoints": endpoints,
            "ports": [{"name": port_name, "port": HTTP_PORT, "protocol": protocol}]}


def nodeport() -> int:
    """A random NodePort in 30000-32767 (below the ephemeral range, so no client's port)."""
    return 30000 + secrets.randbelow(2768)
