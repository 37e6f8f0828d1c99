"""A cluster of several nodes on one machine (issue 25): the real control plane of
../shared/refbin (Debian's etcd, kube-apiserver, kube-scheduler, kube-controller-manager with
--allocate-node-cidrs) on the host side of a bridge "underlay", and pykubelets, each in a
network namespace of its own with a veth on that bridge, its own node IP, root dir, cgroup
root and CNI config written from the podCIDR the controller manager gave its Node. Pods on
different nodes reach each other through pycni-hostgw (cni/hostgw.py), one per node.

Addresses: the underlay is a random /24 of 198.18.0.0/16 (the host side .1 serves the API, the
nodes .11, .12, ...); pod CIDRs are /24s of CLUSTER_CIDR and Services of SERVICE_CIDR, which
exist only inside the node namespaces, so they meet no other test's host routes.

Every process is started here, and cleanup() ends them by PID and removes the namespaces,
links, cgroups, mounts and directories, also after a failure half-way."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field

import cgroups
from apiserver.pki import certificates as pkimod
from kubeapi import kubeconfig
from kubeapi.restclient import ApiClient
from netkit import unique
from netns import addresses, links, named, rtnl
from netns.enter import run_in_netns
from testlib import runtime_leftovers
from testlib.kubeconfigs import write_kubeconfig
from testlib.processes import free_port, kill_all, pids_naming, stop
from testlib.reference_plane import etcd_argv, kube_apiserver_argv, service_account_keys
from testlib.refbin import refbin
from testlib.runtime_leftovers import release_namespaces, remove_link, run_steps, unmount_below
from testlib.waiting import wait_for

BIN = os.path.dirname(sys.executable)
PYKUBELET = os.path.join(BIN, "pykubelet")
CLUSTER_CIDR = "198.19.128.0/17"
SERVICE_CIDR = "198.19.96.0/20"
PYTHON = os.path.join(BIN, "python")
NODE_MONITOR_GRACE = "20s"   # > the kubelets' 10 s lease renewal, short for the NotReady test


def underlay_subnet() -> str:
    """A random /24 of 198.18.0.0/16 whose .1 no host link holds yet."""
    taken = _host_addresses()
    for _ in range(50):
        n = int.from_bytes(os.urandom(1), "big")
        if f"198.18.{n}.1" not in taken and n not in (0, 255):
            return f"198.18.{n}"
    raise RuntimeError("no free underlay /24 in 198.18.0.0/16")


def _host_addresses() -> set[str]:
    with rtnl.RtnlSocket() as sock:
        return {a.split("/")[0] for a in addresses.list_addresses(sock)}


@dataclass
class Node:
    """One pykubelet in a network namespace of its own, with its hostgw daemon."""

    name: str
    ip: str
    dir: str
    netns: str                    # the name under netns_dir
    netns_dir: str                # the cluster's own, not /run/netns: a mount of its own
    host_veth: str
    cgroup_root: str
    kubeconfig: str
    image_root: str
    cgroup: cgroups.Cgroup        # where its processes run (the cluster's)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    kubelet_argv: list[str] = field(default_factory=list)

    @property
    def netns_path(self) -> str:
        return named.path_of(self.netns, self.netns_dir)

    @property
    def root(self) -> str:
        return os.path.join(self.dir, "root")

    @property
    def cni_conf(self) -> str:
        return os.path.join(self.dir, "net.d")

    def log(self, what: str = "kubelet") -> str:
        with open(os.path.join(self.dir, f"{what}.log"), errors="replace") as f:
            return f.read()

    def spawn(self, what: str, argv: list[str]) -> subprocess.Popen:
        """argv run in the node's network namespace (nsenter execs it: the PID is argv's),
        in the cluster's cgroup."""
        with open(os.path.join(self.dir, f"{what}.log"), "ab") as log:
            proc = subprocess.Popen(["nsenter", f"--net={self.netns_path}", "--", *argv],
                                    stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.cgroup.add_process(proc.pid)
        self.procs[what] = proc
        return proc

    def write_cni_config(self, pod_cidr: str) -> None:
        """The pod network of this node: a bridge gateway for its podCIDR, no masquerade (pod
        addresses are routed between nodes as they are)."""
        os.makedirs(self.cni_conf, exist_ok=True)
        conf = {"cniVersion": "1.0.0", "name": "cluster", "plugins": [
            {"type": "pycni-bridge", "bridge": "cbr0", "isGateway": True, "isDefaultGateway": True,
             "ipam": {"type": "pycni-host-local", "ranges": [[{"subnet": pod_cidr}]],
                      "dataDir": os.path.join(self.dir, "ipam")}}]}
        tmp = os.path.join(self.cni_conf, ".10-cluster.conflist")
        with open(tmp, "w") as f:
            json.dump(conf, f)
        os.rename(tmp, os.path.join(self.cni_conf, "10-cluster.conflist"))

    def start_kubelet(self) -> None:
        self.spawn("kubelet", self.kubelet_argv)

    def stop_kubelet(self) -> None:
        stop(self.procs.get("kubelet"))

    def cleanup(self) -> list[BaseException]:
        errors = run_steps((lambda: [stop(p) for p in self.procs.values()],
                            self._remove_runtime_objects,
                            lambda: kill_all(pids_naming(os.path.join(self.root, "shims"))),
                            self._release_mounts,
                            lambda: cgroups.open_cgroup(self.cgroup_root).destroy(),
                            self._remove_links))
        shutil.rmtree(self.dir, ignore_errors=True)
        return errors

    def _remove_runtime_objects(self) -> None:
        """The pods a stopped kubelet left, removed by its CRI code inside the node's
        namespace (where their bridge and CNI state are)."""
        if not os.path.isdir(self.root):
            return
        subprocess.run(["nsenter", f"--net={self.netns_path}", "--", PYTHON,
                        runtime_leftovers.__file__, self.root, self.image_root, self.cni_conf,
                        os.path.join(self.dir, "cni-cache")],
                       check=True, capture_output=True, timeout=120)

    def _release_mounts(self) -> None:
        release_namespaces(self.root)
        # what the stopped kubelet would have unmounted at the pods' deletion (their
        # kube-api-access tmpfs, ...), deepest first
        unmount_below(self.dir)

    def _remove_links(self) -> None:
        named.delete(self.netns, self.netns_dir)
        remove_link(self.host_veth)


class Cluster:
    """The control plane on the host and nodes added by add_node(); cleanup() removes all."""

    def __init__(self, image_root: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="kcl-")
        self.image_root = image_root
        self.id = unique("c")[-6:]
        self.underlay = underlay_subnet()
        self.host_ip = f"{self.underlay}.1"
        self.bridge = f"pku{self.id}"
        self.admin_token = uuid.uuid4().hex
        self.node_tokens: dict[str, str] = {}
        self.nodes: list[Node] = []
        self.procs: dict[str, subprocess.Popen] = {}
        self.pki = pkimod.ensure_pki(os.path.join(self.dir, "pki"), self.host_ip)
        self.ca_key = os.path.join(self.dir, "pki", "ca.key")
        self.sa_key = os.path.join(self.dir, "pki", "sa.key")
        self.sa_pub = os.path.join(self.dir, "pki", "sa.pub")
        service_account_keys(self.sa_key, self.sa_pub)
        self.etcd_port, self.etcd_peer_port = free_port(), free_port()
        self.port = free_port()
        self.url = f"https://{self.host_ip}:{self.port}"
        self.admin_kubeconfig = os.path.join(self.dir, "admin.kubeconfig")
        self.hostgw_kubeconfig = os.path.join(self.dir, "hostgw.kubeconfig")
        self.netns_dir = os.path.join(self.dir, "netns")
        # every process of the cluster, the real binaries too, under pycontainer's parent: the
        # leak audit sees what outlives the tests, and cleanup ends the rest
        self.cgroup = cgroups.open_cgroup(f"/pycontainer/{unique('kcp')}")
        self.client: ApiClient | None = None

    # -- the control plane --------------------------------------------------------------------

    def log(self, name: str) -> str:
        with open(os.path.join(self.dir, f"{name}.log"), errors="replace") as f:
            return f.read()

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        with open(os.path.join(self.dir, f"{name}.log"), "ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.cgroup.add_process(proc.pid)
        self.procs[name] = proc
        return proc

    def _make_underlay(self) -> None:
        with rtnl.RtnlSocket() as host:
            bridge = links.create_bridge(host, self.bridge)
            addresses.add_address(host, bridge.index, f"{self.host_ip}/24")
            links.set_up(host, bridge.index)

    def start(self, node_names: list[str]) -> None:
        """The underlay, etcd and the control plane, with a token for each node to come."""
        self.cgroup.create()
        self._make_underlay()
        tokens = os.path.join(self.dir, "tokens.csv")
        with open(tokens, "w") as f:
            f.write(f'{self.admin_token},admin,uid-admin,"system:masters"\n')
            for name in node_names:
                self.node_tokens[name] = uuid.uuid4().hex
                f.write(f'{self.node_tokens[name]},system:node:{name},uid-{name},'
                        f'"system:nodes"\n')
        write_kubeconfig(self.admin_kubeconfig, self.url, self.pki.ca_cert, self.admin_token)
        self._spawn("etcd", etcd_argv("kcl", os.path.join(self.dir, "etcd"), self.etcd_port,
                                      self.etcd_peer_port))
        self._spawn("kube-apiserver", kube_apiserver_argv(
            f"http://127.0.0.1:{self.etcd_port}", self.host_ip, self.port,
            os.path.join(self.dir, "certs"), self.pki, tokens, self.sa_key, self.sa_pub,
            SERVICE_CIDR, "--enable-bootstrap-token-auth"))
        wait_for(self._ready, 90, interval=0.5,
                 what=lambda: f"kube-apiserver ready: {self.log('kube-apiserver')[-3000:]}")
        self.client = ApiClient(kubeconfig.load(self.admin_kubeconfig), "cluster-tests")
        self._hostgw_credentials()
        common = ["--kubeconfig", self.admin_kubeconfig,
                  "--authentication-kubeconfig", self.admin_kubeconfig,
                  "--authorization-kubeconfig", self.admin_kubeconfig,
                  "--bind-address", "127.0.0.1", "--leader-elect=false", "--v", "1"]
        self._spawn("kube-scheduler", [refbin("kube-scheduler"), *common,
                                       "--secure-port", str(free_port())])
        self._spawn("kube-controller-manager", [
            refbin("kube-controller-manager"), *common, "--secure-port", str(free_port()),
            "--controllers", "*,bootstrapsigner,tokencleaner",
            "--allocate-node-cidrs", "--cluster-cidr", CLUSTER_CIDR,
            "--node-cidr-mask-size", "24", "--service-cluster-ip-range", SERVICE_CIDR,
            "--node-monitor-period", "2s", "--node-monitor-grace-period", NODE_MONITOR_GRACE,
            "--service-account-private-key-file", self.sa_key,
            "--root-ca-file", self.pki.ca_cert, "--use-service-account-credentials=true",
            "--cluster-signing-cert-file", self.pki.ca_cert,
            "--cluster-signing-key-file", self.ca_key,
            "--cluster-signing-duration", "1h"])

    def _hostgw_credentials(self) -> None:
        """pycni-hostgw reads every Node, which the Node authorizer refuses a node's own
        identity: it runs as a ServiceAccount with a ClusterRole, as flannel does."""
        manifests = [
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": "pycni-hostgw", "namespace": "kube-system"}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": "pycni-hostgw"},
             "rules": [{"apiGroups": [""], "resources": ["nodes"],
                        "verbs": ["get", "list", "watch"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": "pycni-hostgw"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": "pycni-hostgw"},
             "subjects": [{"kind": "ServiceAccount", "name": "pycni-hostgw",
                           "namespace": "kube-system"}]}]
        done = self.kubectl("apply", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": manifests}))
        if done.returncode != 0:
            raise RuntimeError(f"pycni-hostgw's account: {done.stderr}")
        token = self.kubectl("create", "token", "-n", "kube-system", "pycni-hostgw",
                             "--duration", "2h")
        if token.returncode != 0:
            raise RuntimeError(f"pycni-hostgw's token: {token.stderr}")
        write_kubeconfig(self.hostgw_kubeconfig, self.url, self.pki.ca_cert,
                         token.stdout.strip())

    def bootstrap_token(self) -> str:
        """A kubeadm-style bootstrap token: its Secret in kube-system, and the bindings kubeadm
        makes, so that its holders may request node client certificates that the controller
        manager approves, and nodes may renew theirs."""
        token_id, secret = uuid.uuid4().hex[:6], uuid.uuid4().hex[:16]
        group = "system:bootstrappers:kubeadm:default-node-token"

        def binding(name: str, role: str, group: str) -> dict:
            return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                    "metadata": {"name": name},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                "kind": "ClusterRole", "name": role},
                    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                  "name": group}]}

        items = [
            {"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
             "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
             "stringData": {"token-id": token_id, "token-secret": secret,
                            "usage-bootstrap-authentication": "true",
                            "usage-bootstrap-signing": "true", "auth-extra-groups": group}},
            binding("kubeadm:kubelet-bootstrap", "system:node-bootstrapper", group),
            binding("kubeadm:node-autoapprove-bootstrap",
                    "system:certificates.k8s.io:certificatesigningrequests:nodeclient", group),
            binding("kubeadm:node-autoapprove-certificate-rotation",
                    "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
                    "system:nodes")]
        done = self.kubectl("apply", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": items}))
        if done.returncode != 0:
            raise RuntimeError(f"bootstrap token: {done.stderr}")
        return f"{token_id}.{secret}"

    def _ready(self) -> bool:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} ended: {self.log(name)[-3000:]}")
        return self.kubectl("get", "--raw", "/readyz").returncode == 0

    def kubectl(self, *args: str, input: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([shutil.which("kubectl", path=BIN) or "kubectl", "--kubeconfig",
                               self.admin_kubeconfig, *args], input=input,
                              capture_output=True, text=True, timeout=timeout)

    # -- nodes --------------------------------------------------------------------------------

    def _make_node_network(self, node: Node) -> None:
        named.create(node.netns, self.netns_dir)
        with rtnl.RtnlSocket() as host:
            bridge = links.get_link(host, self.bridge)
            fd = os.open(node.netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                links.create_veth(host, node.host_veth, f"u{node.host_veth}", peer_netns_fd=fd)
            finally:
                os.close(fd)
            veth = links.get_link(host, node.host_veth)
            links.set_master(host, veth.index, bridge.index)
            links.set_up(host, veth.index)

        def inside() -> None:
            with rtnl.RtnlSocket() as sock:
                lo = links.get_link(sock, "lo")
                links.set_up(sock, lo.index)
                eth = links.get_link(sock, f"u{node.host_veth}")
                addresses.add_address(sock, eth.index, f"{node.ip}/24")
                links.set_up(sock, eth.index)

        run_in_netns(node.netns_path, inside)

    def add_node(self, name: str, bootstrap_token: str = "") -> Node:
        """A pykubelet on a new node namespace, with its hostgw daemon; its CNI config follows
        when the controller manager has given the Node its podCIDR (wait_pod_cidr).
        bootstrap_token: the kubelet has no credentials of its own but a bootstrap kubeconfig
        with this token (--bootstrap-kubeconfig, --rotate-certificates), as a kubeadm join,
        and asks for its serving certificate (--rotate-server-certificates)."""
        index = len(self.nodes)
        node = Node(name=name, ip=f"{self.underlay}.{11 + index}",
                    dir=tempfile.mkdtemp(prefix=f"kcn{index}-"),
                    netns=f"pkc{self.id}{index}", netns_dir=self.netns_dir,
                    host_veth=f"pkv{self.id}{index}",
                    cgroup_root=f"/pycontainer/{unique('kcl')}",
                    kubeconfig="", image_root=self.image_root, cgroup=self.cgroup)
        self.nodes.append(node)
        node.kubeconfig = os.path.join(node.dir, "kubeconfig")
        credentials = []
        if bootstrap_token:
            boot = os.path.join(node.dir, "bootstrap.kubeconfig")
            write_kubeconfig(boot, self.url, self.pki.ca_cert, bootstrap_token)
            credentials = ["--bootstrap-kubeconfig", boot, "--rotate-certificates",
                           "--rotate-server-certificates"]
        else:
            write_kubeconfig(node.kubeconfig, self.url, self.pki.ca_cert,
                             self.node_tokens[name])
        self._make_node_network(node)
        config = os.path.join(node.dir, "kubelet.yaml")
        with open(config, "w") as f:
            json.dump({"apiVersion": "kubelet.config.k8s.io/v1beta1",
                       "kind": "KubeletConfiguration",
                       "podLogsDir": os.path.join(node.dir, "pods"),
                       "cgroupRoot": node.cgroup_root, "address": node.ip, "port": 10250,
                       "syncFrequency": "20s"}, f)
        node.kubelet_argv = [
            PYKUBELET, "--config", config, "--kubeconfig", node.kubeconfig,
            "--hostname-override", name, "--node-ip", node.ip, "--root-dir", node.root,
            "--cni-conf-dir", node.cni_conf, "--cni-bin-dir", f"{BIN},/usr/lib/cni",
            "--cni-cache-dir", os.path.join(node.dir, "cni-cache"),
            "--image-root", self.image_root, "-v", "1", *credentials]
        node.start_kubelet()
        node.spawn("hostgw", [PYTHON, "-m", "cni.hostgw", "--kubeconfig",
                              self.hostgw_kubeconfig,
                              "--node-name", name, "--resync", "10", "--ip-masq",
                              "--cluster-cidr", CLUSTER_CIDR, "-v", "1"])
        return node

    def wait_pod_cidr(self, node: Node, timeout: float = 60) -> str:
        def cidr() -> str:
            if node.procs["kubelet"].poll() is not None:
                raise RuntimeError(f"pykubelet {node.name} ended: {node.log()[-3000:]}")
            try:
                return (self.client.get(f"/api/v1/nodes/{node.name}").get("spec") or {}
                        ).get("podCIDR", "")
            except Exception:  # noqa: BLE001 - not registered yet
                return ""

        pod_cidr = wait_for(cidr, timeout, interval=0.5,
                            what=lambda: f"podCIDR of {node.name}: {node.log()[-2000:]}")
        node.write_cni_config(pod_cidr)
        return pod_cidr

    def node_ready(self, name: str) -> str:
        """The status of the Node's Ready condition ("" when there is none)."""
        node = self.client.get(f"/api/v1/nodes/{name}")
        return next((c["status"] for c in (node.get("status") or {}).get("conditions") or []
                     if c["type"] == "Ready"), "")

    def cleanup(self) -> None:
        errors: list[BaseException] = []
        for node in self.nodes:
            errors += node.cleanup()
        if self.client is not None:
            self.client.close()
        errors += run_steps(lambda name=name: stop(self.procs.get(name))
                            for name in ("kube-controller-manager", "kube-scheduler",
                                         "kube-apiserver", "etcd"))
        errors += run_steps((lambda: remove_link(self.bridge), self.cgroup.destroy))
        if os.path.isdir(self.netns_dir):
            named.release_dir(self.netns_dir)
        shutil.rmtree(self.dir, ignore_errors=True)
        if errors:
            raise errors[0]
