"""NAT rule sets with both backends: added and removed exactly, found by network for GC, and
really forwarding a host port (from the host's bridge address and from 127.0.0.1)."""
import os
import socket

import pytest

from netns import addresses, links, nat, nat_backend, rtnl, sysctl
from netkit import EchoServer, nat_dump, roundtrip, unique

pytestmark = pytest.mark.root
BACKENDS = ["nftables", "iptables"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    return nat_backend.host_backend(request.param)


@pytest.fixture
def rule_names(backend):
    made = []

    def name(kind, network, container):
        made.append(nat.rule_set_name(kind, network, container, "eth0"))
        return made[-1]

    yield name
    for n in made:
        backend.delete(n)


def test_rule_sets_are_removed_exactly(backend, rule_names):
    network = unique("net")
    # What the backend makes once per host and keeps (iptables: the nat table and its base
    # chains, on a host that had none) is made before the snapshot.
    warm_masq, warm_ports = rule_names("mq", network, "c0"), rule_names("hp", network, "c0")
    backend.add_masquerade(warm_masq, f"net={network} id=c0", [nat.Masquerade("198.18.7.4/24")])
    backend.add_port_forward(warm_ports, f"net={network} id=c0", ["198.18.7.4"],
                             [nat.PortMapping(18079, 79)])
    assert backend.delete(warm_masq) and backend.delete(warm_ports)
    before = nat_dump()
    masq = rule_names("mq", network, "c1")
    ports = rule_names("hp", network, "c1")

    def ours(text: str) -> list[str]:
        # Only what names this test's network or rule sets: other tests change the host's NAT
        # state meanwhile (and every rule's packet counters with their traffic).
        return [line for line in text.splitlines()
                if network in line or any(name in line for name in (masq, ports))]

    backend.add_masquerade(masq, f"net={network} id=c1", [nat.Masquerade("198.18.7.5/24")])
    backend.add_port_forward(ports, f"net={network} id=c1", ["198.18.7.5"], [
        nat.PortMapping(18080, 80), nat.PortMapping(18081, 81, "udp", "198.18.7.1")])
    # A second add replaces instead of duplicating.
    backend.add_port_forward(ports, f"net={network} id=c1", ["198.18.7.5"],
                             [nat.PortMapping(18080, 80)])
    text = backend.dump(ports)
    assert "18080" in text and "18081" not in text
    assert backend.exists(masq) and backend.exists(ports)
    assert len(ours(nat_dump())) >= 2
    assert backend.delete(masq) and backend.delete(ports)
    assert not backend.delete(ports)
    assert not backend.exists(ports)
    assert ours(nat_dump()) == ours(before) == []


def test_names_select_one_network(backend, rule_names):
    net_a, net_b = unique("net"), unique("net")
    a1, a2 = rule_names("hp", net_a, "c1"), rule_names("hp", net_a, "c2")
    b1 = rule_names("hp", net_b, "c1")
    for name in (a1, a2, b1):
        backend.add_port_forward(name, "t", ["198.18.7.9"], [nat.PortMapping(18090, 90)])
    assert sorted(backend.names(nat.network_prefix("hp", net_a))) == sorted([a1, a2])
    assert backend.names(nat.network_prefix("hp", net_b)) == [b1]
    assert len(a1) <= 26


def test_host_port_reaches_a_pod(backend, rule_names, namespaces, bridge_name):
    pod = namespaces.new()
    with rtnl.RtnlSocket() as host:
        bridge = links.create_bridge(host, bridge_name)
        links.set_up(host, bridge.index)
        addresses.add_address(host, bridge.index, "198.18.77.1/24")
        veth = unique("pyv")
        fd = os.open(pod, os.O_RDONLY)
        try:
            links.create_veth(host, veth, "eth0", fd)
        finally:
            os.close(fd)
        index = links.get_link(host, veth).index
        links.set_master(host, index, bridge.index)
        links.set_up(host, index)
    with rtnl.open_in(pod) as inside:
        eth0 = links.get_link(inside, "eth0")
        addresses.add_address(inside, eth0.index, "198.18.77.2/24")
        links.set_up(inside, eth0.index)
        links.set_up(inside, links.get_link(inside, "lo").index)
        from netns import routes
        routes.add_route(inside, "0.0.0.0/0", "198.18.77.1")
    sysctl.enable_route_localnet(bridge_name)  # the bridge is deleted after the test
    server = EchoServer(pod, "198.18.77.2")
    try:
        with socket.socket() as probe:  # a free host port, never used by anything else
            probe.bind(("127.0.0.1", 0))
            host_port = probe.getsockname()[1]
        name = rule_names("hp", unique("net"), "c1")
        backend.add_port_forward(name, "t", ["198.18.77.2"],
                                 [nat.PortMapping(host_port, server.port)])
        assert roundtrip(None, "198.18.77.1", host_port, b"a").startswith(b"echo:a from:")
        # From localhost: masqueraded to the bridge address on the way to the pod.
        assert roundtrip(None, "127.0.0.1", host_port, b"b") == b"echo:b from:198.18.77.1"
        backend.delete(name)
        with pytest.raises(OSError):
            roundtrip(None, "127.0.0.1", host_port, b"c", timeout=1)
    finally:
        server.close()
        with rtnl.RtnlSocket() as host:  # not left to the namespace's teardown, which is lazy
            link = links.get_link(host, veth)
            if link is not None:
                links.delete_link(host, link.index)
