"""A node with Services, as the tests of tests/kubelet/pods/test_kubelet_services.py use it: its own
pyapiserver (a Service range inside 198.18.0.0/15), pycontroller-manager (Deployments and
EndpointSlices), a pykubelet whose bridge ports hairpin and whose pods resolve through
`--cluster-dns`, pykube-proxy (a table of its own) and pykube-dns behind the `kube-dns` Service
(internalTrafficPolicy Local, registered by the daemon with the node's address), forwarding to
a resolver on loopback. The node's address sits on a link of its own that also takes the Service
range (a bridge without ports: what is routed there goes nowhere), so that nothing meant for
a Service leaves the machine and a reject stays a reject (a packet routed back out of the pods'
bridge it came in by would get no ICMP error). cleanup() removes all of it, also after a
failed start."""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import tempfile
import uuid

from kubelet_testlib import Api, KubeletProcess
from netkit import random_subnet, unique
from netns import addresses, links, routes, rtnl, sysctl
from testlib.dns_upstream import FakeUpstream
from testlib.processes import stop
from testlib.pyapiserver import Server
from testlib.runtime_leftovers import remove_link, run_steps

BIN = os.path.dirname(sys.executable)

BRIDGE_NF = "net.bridge.bridge-nf-call-iptables"


def distinct_subnets(count: int) -> list[str]:
    """`count` different random /24s of 198.18.0.0/15."""
    chosen: list[str] = []
    while len(chosen) < count:
        subnet = random_subnet()
        if subnet not in chosen:
            chosen.append(subnet)
    return chosen


class ServiceNode:
    """The node's addresses: pods on `pod_subnet`, ClusterIPs from `service_subnet` (kube-dns
    on `dns_ip`), the node itself on `node_ip`; start() brings it all up."""

    def __init__(self, image_root: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="pyk-svc-")
        pod_subnet, service_subnet, node_subnet = distinct_subnets(3)
        self.pod_subnet = pod_subnet
        self.service_subnet = service_subnet
        self.node_ip = str(ipaddress.ip_network(node_subnet)[1])
        self.dns_ip = str(ipaddress.ip_network(service_subnet)[10])
        self.node_name = "svc-" + uuid.uuid4().hex[:6]
        self.table = "pykp-test-" + uuid.uuid4().hex[:8]
        self.link = unique("pykn")
        self.image_root = image_root
        self.bridge_nf_before: str | None = None
        self.server: Server | None = None
        self.upstream: FakeUpstream | None = None
        self.kubelet: KubeletProcess | None = None
        self.api: Api | None = None
        self.procs: dict[str, subprocess.Popen] = {}

    # -- start ------------------------------------------------------------------------------

    def start(self) -> None:
        self._bridge_netfilter()
        self._node_link()
        token = uuid.uuid4().hex
        token_file = os.path.join(self.dir, "tokens.csv")
        with open(token_file, "w") as f:
            f.write(f'{uuid.uuid4().hex},admin,uid-admin,"system:masters"\n')
            f.write(f'{token},system:node:{self.node_name},{self.node_name},"system:nodes"\n')
        data_dir = os.path.join(self.dir, "pyapiserver")
        os.makedirs(data_dir)
        self.server = Server(data_dir, token_file,
                             ("--service-cluster-ip-range", self.service_subnet))
        self.server.start()
        self.api = Api(self.server)
        self.upstream = FakeUpstream()
        self._spawn("manager", [
            "pycontroller-manager", "--kubeconfig", self.server.kubeconfig,
            "--leader-elect=false",
            "--controllers=deployment,replicaset,endpointslice,garbagecollector"])
        self.kubelet = KubeletProcess(
            self.server, self.node_name, token, self.image_root,
            {"clusterDNS": [self.dns_ip], "clusterDomain": "cluster.local"},
            subnet=self.pod_subnet,
            # Pods reach Services (a default route) and themselves through one (hairpin).
            bridge_options={"isDefaultGateway": True, "hairpinMode": True})
        self.kubelet.start()
        self._spawn("proxy", [
            "pykube-proxy", "--kubeconfig", self.server.kubeconfig, "--proxy-mode=nftables",
            "--cluster-cidr", self.pod_subnet, "--nodeport-addresses", f"{self.node_ip}/32",
            "--hostname-override", self.node_name, "--min-sync-period", "100ms",
            "--healthz-bind-address=", "-v", "1"], PYKUBE_PROXY_TABLE=self.table)
        self._kube_dns_service()
        self._spawn("dns", [
            "pykube-dns", "--kubeconfig", self.server.kubeconfig,
            "--listen", f"{self.node_ip}:0", "--advertise-address", self.node_ip,
            "--hostname-override", self.node_name,
            "--upstream", f"127.0.0.1:{self.upstream.port}"], capture=True)
        line = self.procs["dns"].stdout.readline()
        if "serving" not in line:
            raise RuntimeError(f"pykube-dns did not start: {line}{self.log('dns')}")

    def _bridge_netfilter(self) -> None:
        """ClusterIP replies between pods of one bridge must pass conntrack to be un-DNATed
        (br_netfilter), as on every Kubernetes node."""
        before = sysctl.read(BRIDGE_NF).strip()
        if before != "1":
            sysctl.write(BRIDGE_NF, "1")
            self.bridge_nf_before = before

    def _node_link(self) -> None:
        with rtnl.RtnlSocket() as host:
            link = links.create_bridge(host, self.link)
            addresses.add_address(host, link.index, f"{self.node_ip}/32")
            links.set_up(host, link.index)
            routes.add_route(host, self.service_subnet, oif=link.index)

    def _spawn(self, name: str, argv: list[str], capture: bool = False, **env: str) -> None:
        log = open(os.path.join(self.dir, f"{name}.log"), "w")
        try:
            self.procs[name] = subprocess.Popen(
                [os.path.join(BIN, argv[0]), *argv[1:]], env=dict(os.environ, **env),
                stdout=subprocess.PIPE if capture else log, stderr=log, text=True,
                stdin=subprocess.DEVNULL)
        finally:
            log.close()

    def _kube_dns_service(self) -> None:
        """The selectorless kube-dns Service; each node's pykube-dns publishes its slice."""
        self.apply({"apiVersion": "v1", "kind": "Service", "metadata": {
            "name": "kube-dns", "namespace": "kube-system",
            "labels": {"k8s-app": "kube-dns"}}, "spec": {
            "clusterIP": self.dns_ip, "internalTrafficPolicy": "Local",
            "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                      {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}})

    # -- use --------------------------------------------------------------------------------

    def kubectl(self, *args: str, timeout: float = 60, check: bool = True
                ) -> subprocess.CompletedProcess:
        proc = self.api.kubectl(*args, timeout=timeout)
        if check:
            assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
        return proc

    def kubectl_argv(self) -> list[str]:
        """kubectl as the admin, for commands run in the background."""
        return [os.path.join(BIN, "kubectl"), "--kubeconfig", self.server.kubeconfig]

    def apply(self, manifest: dict, namespace: str | None = None) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            json.dump(manifest, f)
            f.flush()
            self.kubectl("apply", *(["-n", namespace] if namespace else []), "-f", f.name)

    def log(self, name: str) -> str:
        try:
            with open(os.path.join(self.dir, f"{name}.log")) as f:
                return f.read()
        except OSError:
            return ""

    def volume_mounts(self) -> list[str]:
        """What is mounted below the kubelet's pod directories (volumes of pods it has not
        removed yet: it does after their deletion, and a kubelet stopped before leaves them)."""
        pods_dir = os.path.join(self.kubelet.root, "pods") + "/"
        with open("/proc/self/mountinfo") as f:
            return [line.split()[4] for line in f if line.split()[4].startswith(pods_dir)]

    def nft_table(self) -> str:
        return subprocess.run(["nft", "list", "table", "ip", self.table], capture_output=True,
                              text=True, check=True).stdout

    # -- cleanup ----------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Every step runs even if an earlier one failed; the first error is raised last."""
        errors = run_steps([
            lambda: stop(self.procs.get("dns"), wait=20),
            lambda: self.kubelet and self.kubelet.cleanup(),
            lambda: stop(self.procs.get("proxy"), wait=20),
            self._delete_table,
            lambda: stop(self.procs.get("manager"), wait=20),
            lambda: self.api and self.api.client.close(),
            lambda: self.server and self.server.stop(),
            lambda: self.upstream and self.upstream.close(),
            lambda: remove_link(self.link), self._restore_bridge_netfilter])
        for proc in self.procs.values():
            if proc.stdout:
                proc.stdout.close()
        subprocess.run(["rm", "-rf", self.dir], check=False)
        if errors:
            raise errors[0]

    def _delete_table(self) -> None:
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                                check=True).stdout.splitlines()
        if f"table ip {self.table}" in tables:
            subprocess.run(["nft", "delete", "table", "ip", self.table], check=True)

    def _restore_bridge_netfilter(self) -> None:
        if self.bridge_nf_before is not None:
            sysctl.write(BRIDGE_NF, self.bridge_nf_before)
