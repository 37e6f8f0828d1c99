"""A bridge + portmap chain, ours and the reference plugins, driven by our invoker (exec and
in-process) and by the CNI protocol directly: pods reach each other and the host's bridge
address, a host port reaches a pod (also via 127.0.0.1), a second ADD is refused as the spec
says, and DEL removes the veth, the IP allocation, the NAT rules and the cached result."""
import ipaddress
import json
import os
import socket
import subprocess

import pytest

from cni import conf as cni_conf
from cni import invoker
from cni.errors import CNIError
from netkit import (CNI_PATH, EchoServer, exec_plugin,
                    host_link_names, roundtrip, random_subnet, unique)
from netns import links, nat, nat_backend, rtnl

pytestmark = pytest.mark.root
POD_PORT = 8080


def conflist(name, bridge, subnet, data_dir, bridge_type, ipam_type, portmap_type):
    return {"cniVersion": "1.0.0", "name": name, "plugins": [
        {"type": bridge_type, "bridge": bridge, "isGateway": True, "ipMasq": True,
         "hairpinMode": True,
         "ipam": {"type": ipam_type, "ranges": [[{"subnet": subnet}]], "dataDir": data_dir}},
        {"type": portmap_type, "capabilities": {"portMappings": True}}]}


class InvokerDriver:
    def __init__(self, raw: dict, cache_dir: str, in_process: bool) -> None:
        self.net = cni_conf.parse(json.dumps(raw).encode())
        self.cni = invoker.CNI(CNI_PATH, cache_dir, in_process=in_process)
        self.cache_dir = cache_dir

    def _rt(self, cid, netns, ports=()):
        return invoker.RuntimeConf(cid, netns, "eth0", capability_args={"portMappings": [
            {"hostPort": h, "containerPort": c, "protocol": "tcp"} for h, c in ports]})

    def add(self, cid, netns, ports=()):
        return self.cni.add(self.net, self._rt(cid, netns, ports))

    def check(self, cid, netns, ports=()):
        self.cni.check(self.net, self._rt(cid, netns, ports))

    def delete(self, cid, netns, ports=()):
        self.cni.delete(self.net, self._rt(cid, netns, ports))

    def leftovers(self):
        results = os.path.join(self.cache_dir, "results")
        return os.listdir(results) if os.path.isdir(results) else []


class ProtocolDriver:
    """Runs each plugin of the list by exec, as a runtime would, without our invoker."""

    def __init__(self, raw: dict) -> None:
        self.raw = raw
        self.results = {}

    def _conf(self, plugin, prev, ports):
        conf = {k: v for k, v in plugin.items() if k != "capabilities"}
        conf.update(name=self.raw["name"], cniVersion=self.raw["cniVersion"])
        if prev is not None:
            conf["prevResult"] = prev
        if "capabilities" in plugin:
            conf["runtimeConfig"] = {"portMappings": [
                {"hostPort": h, "containerPort": c, "protocol": "tcp"} for h, c in ports]}
        return conf

    def _exec(self, plugin, command, cid, netns, prev, ports):
        path = next(os.path.join(d, plugin["type"]) for d in CNI_PATH
                    if os.path.exists(os.path.join(d, plugin["type"])))
        code, out = exec_plugin(path, command, self._conf(plugin, prev, ports), cid, netns)
        if code != 0:
            raise CNIError(out["code"], out["msg"], out.get("details", ""))
        return out

    def add(self, cid, netns, ports=()):
        result = None
        for plugin in self.raw["plugins"]:
            result = self._exec(plugin, "ADD", cid, netns, result, ports)
        self.results[cid] = result
        return result

    def check(self, cid, netns, ports=()):
        for plugin in self.raw["plugins"]:
            self._exec(plugin, "CHECK", cid, netns, self.results[cid], ports)

    def delete(self, cid, netns, ports=()):
        for plugin in reversed(self.raw["plugins"]):
            self._exec(plugin, "DEL", cid, netns, self.results.get(cid), ports)
        self.results.pop(cid, None)

    def leftovers(self):
        return []


OURS = ("pycni-bridge", "pycni-host-local", "pycni-portmap")
REFERENCE = ("bridge", "host-local", "portmap")
CASES = {
    "ours-invoker-exec": (OURS, "invoker", False),
    "ours-invoker-inprocess": (OURS, "invoker", True),
    "ours-protocol": (OURS, "protocol", False),
    "reference-invoker": (REFERENCE, "invoker", False),
    "reference-protocol": (REFERENCE, "protocol", False),
    "our-bridge-reference-ipam": (("pycni-bridge", "host-local", "pycni-portmap"), "invoker",
                                  False),
    "reference-bridge-our-ipam": (("bridge", "pycni-host-local", "portmap"), "invoker", True),
}


def free_host_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def nat_state_of(cids) -> list[str]:
    """NAT lines that mention one of the containers (reference: rule comments carry the ID)."""
    text = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True,
                          text=True).stdout
    return [line for line in text.splitlines() if any(c in line for c in cids)]


def allocations(data_dir, network):
    path = os.path.join(data_dir, network)
    return sorted(n for n in os.listdir(path) if n[0].isdigit()) if os.path.isdir(path) else []


@pytest.mark.parametrize("case", sorted(CASES))
def test_two_pods_on_one_bridge(case, tmp_path, namespaces, bridge_name):
    types, driver_kind, in_process = CASES[case]
    network = unique("net")
    subnet = random_subnet()
    gateway = str(ipaddress.ip_network(subnet)[1])
    raw = conflist(network, bridge_name, subnet, str(tmp_path / "ipam"), *types)
    driver = InvokerDriver(raw, str(tmp_path / "cache"), in_process) \
        if driver_kind == "invoker" else ProtocolDriver(raw)
    pod_a, pod_b = namespaces.new(), namespaces.new()
    cid_a, cid_b = unique("ca"), unique("cb")
    host_port = free_host_port()
    servers = []
    ours = types[0] == "pycni-bridge"
    try:
        res_a = driver.add(cid_a, pod_a)
        res_b = driver.add(cid_b, pod_b, [(host_port, POD_PORT)])
        ip_a = res_a["ips"][0]["address"].split("/")[0]
        ip_b = res_b["ips"][0]["address"].split("/")[0]
        assert ipaddress.ip_address(ip_a) in ipaddress.ip_network(subnet)
        assert res_a["ips"][0]["gateway"] == gateway
        assert [i["name"] for i in res_a["interfaces"]][0] == bridge_name
        assert res_a["interfaces"][2] == {"name": "eth0", "mac": res_a["interfaces"][2]["mac"],
                                          "sandbox": pod_a}
        assert len(allocations(tmp_path / "ipam", network)) == 2
        if types[2] == "pycni-portmap":  # the reference portmap 1.1.1's CHECK looks for an
            driver.check(cid_b, pod_b, [(host_port, POD_PORT)])  # IPv6 chain it never made

        servers += [EchoServer(pod_a, ip_a, "tcp", POD_PORT),
                    EchoServer(pod_b, ip_b, "tcp", POD_PORT),
                    EchoServer(pod_b, ip_b, "udp", POD_PORT),
                    EchoServer(None, gateway, "tcp")]
        # Pod to pod, TCP and UDP, with their own addresses (same subnet: no masquerade).
        assert roundtrip(pod_a, ip_b, POD_PORT, b"ab") == f"echo:ab from:{ip_a}".encode()
        assert roundtrip(pod_b, ip_a, POD_PORT, b"ba") == f"echo:ba from:{ip_b}".encode()
        assert roundtrip(pod_a, ip_b, POD_PORT, b"u", "udp") == f"echo:u from:{ip_a}".encode()
        # Pod to the host's bridge address.
        assert roundtrip(pod_a, gateway, servers[3].port, b"h") == \
            f"echo:h from:{ip_a}".encode()
        # The host port, from the host: via the bridge address and via 127.0.0.1.
        assert roundtrip(None, gateway, host_port, b"p").startswith(b"echo:p from:")
        assert roundtrip(None, "127.0.0.1", host_port, b"l").startswith(b"echo:l from:")
        # Hairpin: pod B reaching itself through the host port.
        if ours:
            assert roundtrip(pod_b, gateway, host_port, b"hp").startswith(b"echo:hp from:")

        # A second ADD for the same container and interface is refused; the first stands.
        with pytest.raises(CNIError):
            driver.add(cid_a, pod_a)
        assert len(allocations(tmp_path / "ipam", network)) == 2
        assert roundtrip(pod_b, ip_a, POD_PORT, b"again") == f"echo:again from:{ip_b}".encode()

        host_veths = {res_a["interfaces"][1]["name"], res_b["interfaces"][1]["name"]}
        assert host_veths <= host_link_names()
        if ours:  # one nftables table per rule set, named after network, container, ifname
            backend = nat_backend.host_backend()
            assert sorted(backend.names(nat.network_prefix("mq", network))) == sorted(
                nat.rule_set_name("mq", network, cid, "eth0") for cid in (cid_a, cid_b))
            assert backend.names(nat.network_prefix("hp", network)) == [
                nat.rule_set_name("hp", network, cid_b, "eth0")]
        else:  # the reference's iptables rules carry the container ID in their comments
            nat_lines = "\n".join(nat_state_of([cid_a, cid_b]))
            assert cid_a in nat_lines and cid_b in nat_lines, nat_lines
        for server in servers:
            server.close()
        servers = []
        driver.delete(cid_a, pod_a)
        driver.delete(cid_b, pod_b, [(host_port, POD_PORT)])
        driver.delete(cid_b, pod_b, [(host_port, POD_PORT)])  # DEL again: still fine
        assert not host_veths & host_link_names()
        # Nothing of theirs is left on the bridge (links of other sessions' tests may come and
        # go on the host meanwhile; the session's leak audit names any other link left).
        with rtnl.RtnlSocket() as host:
            assert links.ports_of(host, links.get_link(host, bridge_name).index) == []
        assert allocations(tmp_path / "ipam", network) == []
        assert nat_state_of([cid_a, cid_b]) == []
        if ours:
            backend = nat_backend.host_backend()
            assert backend.names(nat.network_prefix("hp", network)) == []
            assert backend.names(nat.network_prefix("mq", network)) == []
        assert driver.leftovers() == []
        with pytest.raises(OSError):
            roundtrip(None, "127.0.0.1", host_port, b"x", timeout=1)
    finally:
        for server in servers:
            server.close()
        for cid, pod in ((cid_a, pod_a), (cid_b, pod_b)):
            try:
                driver.delete(cid, pod, [(host_port, POD_PORT)])
            except CNIError:
                pass
