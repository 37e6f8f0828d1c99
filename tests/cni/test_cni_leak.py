"""500 ADD/DEL cycles of our chain (bridge + portmap, in-process as the kubelet runs it, so the
invoker's own leaks show too) leave nothing behind: links, addresses, NAT rules, allocation
files, cache files, file descriptors, threads."""
import gc
import ipaddress
import json
import os
import threading

import pytest

from cni import conf as cni_conf
from cni import invoker
from netkit import CNI_PATH, host_link_names, random_subnet
from netns import addresses, links, nat, nat_backend, rtnl

pytestmark = [pytest.mark.root, pytest.mark.slow]
CYCLES = 500


def test_500_add_del_cycles_leak_nothing(tmp_path, namespaces, bridge_name, network_name):
    network, subnet = network_name(), random_subnet()
    raw = {"cniVersion": "1.1.0", "name": network, "plugins": [
        {"type": "pycni-bridge", "bridge": bridge_name, "isGateway": True, "ipMasq": True,
         "ipam": {"type": "pycni-host-local", "ranges": [[{"subnet": subnet}]],
                  "dataDir": str(tmp_path / "ipam")}},
        {"type": "pycni-portmap", "capabilities": {"portMappings": True}}]}
    net = cni_conf.parse(json.dumps(raw).encode())
    cni = invoker.CNI(CNI_PATH, str(tmp_path / "cache"), in_process=True)
    pod = namespaces.new()
    rt = invoker.RuntimeConf("warmup", pod, "eth0", capability_args={"portMappings": [
        {"hostPort": 18000 + os.getpid() % 1000, "containerPort": 80}]})
    cni.add(net, rt)  # warm up: imports, the bridge, lazily created kernel state
    cni.delete(net, rt)
    # Earlier tests' garbage may close a descriptor of its own mid-loop: collect it first, and
    # count a leak as growth only.
    gc.collect()
    fds_before = len(_netlink_and_netns_fds())
    threads_before = set(threading.enumerate())
    seen_veths = set()
    for i in range(CYCLES):
        rt.container_id = f"c{i}"
        result = cni.add(net, rt)
        seen_veths.add(result["interfaces"][1]["name"])
        cni.delete(net, rt)
    # What the plugins could leak: sockets (netlink) and namespace handles, and threads of
    # their own; other threads of this process (a background stage) open pipes and files and
    # end meanwhile.
    assert len(_netlink_and_netns_fds()) <= fds_before
    assert [t.name for t in threading.enumerate() if t not in threads_before] == []
    assert len(seen_veths) == CYCLES
    # Ours by name (other sessions' links may come and go meanwhile); any other link the
    # plugins made would be left for the session's leak audit (tests/leak_audit.py) to name.
    assert not seen_veths & host_link_names()
    with rtnl.RtnlSocket() as host:
        bridge = links.get_link(host, bridge_name)
        assert links.ports_of(host, bridge.index) == []
        gateway = f"{ipaddress.ip_network(subnet)[1]}/24"
        assert [a for a in addresses.list_addresses(host, bridge.index)
                if not a.startswith("fe80:")] == [gateway]
    with rtnl.open_in(pod) as inside:
        assert [link.name for link in links.list_links(inside)] == ["lo"]
    backend = nat_backend.host_backend()
    assert backend.names(nat.network_prefix("hp", network)) == []
    assert backend.names(nat.network_prefix("mq", network)) == []
    assert sorted(os.listdir(tmp_path / "ipam" / network)) == ["last_reserved_ip.0", "lock"]
    assert os.listdir(tmp_path / "cache" / "results") == []


def _netlink_and_netns_fds() -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the descriptor listdir itself used, closed by now
        if target.startswith(("socket:", "net:[")):
            found.append(target)
    return found
