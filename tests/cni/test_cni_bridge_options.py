"""Bridge options (isDefaultGateway, mtu, hairpinMode, promiscMode off) give the container and
the host the same view with our plugin as with the reference one."""
import ipaddress
import os

import pytest

from netkit import REFERENCE_BIN, VENV_BIN, exec_plugin, random_subnet, unique
from netns import addresses, bridge_port, links, routes, rtnl, sysctl
from netns.enter import run_in_netns

pytestmark = pytest.mark.root


def view(pod, result):
    with rtnl.open_in(pod) as inside:
        eth0 = links.get_link(inside, "eth0")
        seen = {"mtu": eth0.mtu, "up": eth0.up,
                "addresses": [a for a in addresses.list_addresses(inside, eth0.index)
                              if not a.startswith("fe80")],
                "routes": sorted((r.dst, r.gateway) for r in routes.list_routes(inside))}
    seen["arp_notify"] = run_in_netns(pod, sysctl.read, "net/ipv4/conf/eth0/arp_notify")
    host_veth = result["interfaces"][1]["name"]
    with rtnl.RtnlSocket() as host:
        veth = links.get_link(host, host_veth)
        bridge = links.get_link(host, result["interfaces"][0]["name"])
        seen["host_mtu"], seen["host_up"] = veth.mtu, veth.up
        seen["on_bridge"] = veth.master == bridge.index
    seen["hairpin"] = bridge_port.get_hairpin(host_veth)
    return seen


@pytest.mark.parametrize("impl", ["ours", "reference"])
def test_default_gateway_mtu_hairpin(impl, tmp_path, namespaces, bridge_name):
    prefix, bin_dir = ("pycni-", VENV_BIN) if impl == "ours" else ("", REFERENCE_BIN)
    subnet = random_subnet()
    gateway = str(ipaddress.ip_network(subnet)[1])
    conf = {"cniVersion": "1.0.0", "name": unique("net"), "type": f"{prefix}bridge",
            "bridge": bridge_name, "isDefaultGateway": True, "mtu": 1400, "hairpinMode": True,
            "ipam": {"type": f"{prefix}host-local", "subnet": subnet,
                     "dataDir": str(tmp_path / "ipam")}}
    pod = namespaces.new()
    code, result = exec_plugin(os.path.join(bin_dir, f"{prefix}bridge"), "ADD", conf, "c1", pod)
    assert code == 0, result
    address = result["ips"][0]["address"]
    assert result["routes"] == [{"dst": "0.0.0.0/0", "gw": gateway}]
    assert view(pod, result) == {
        "mtu": 1400, "up": True, "addresses": [address], "host_mtu": 1400, "hairpin": True,
        "arp_notify": "1", "host_up": True, "on_bridge": True,
        "routes": sorted([("0.0.0.0/0", gateway), (subnet, "")])}
    with rtnl.RtnlSocket() as host:
        bridge = links.get_link(host, bridge_name)
        assert f"{gateway}/24" in addresses.list_addresses(host, bridge.index)
        assert bridge.mtu == 1400
    assert exec_plugin(os.path.join(bin_dir, f"{prefix}bridge"), "DEL", conf, "c1", pod)[0] == 0
