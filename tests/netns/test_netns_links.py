"""veth pairs, bridges, addresses, routes, MTU, up/down and sysctls, on real kernel objects."""
import os

import pytest

from netns import addresses, bridge_port, links, routes, rtnl, sysctl
from netns.enter import run_in_netns
from netkit import unique

pytestmark = pytest.mark.root


@pytest.fixture
def host():
    with rtnl.RtnlSocket() as sock:
        yield sock


@pytest.fixture
def veth_name(host):
    name = unique("pyv")
    yield name
    link = links.get_link(host, name)
    if link is not None:
        links.delete_link(host, link.index)


def test_veth_with_peer_born_in_a_namespace(host, namespaces, veth_name):
    pod = namespaces.new()
    fd = os.open(pod, os.O_RDONLY)
    try:
        links.create_veth(host, veth_name, "eth0", fd, mtu=1400)
    finally:
        os.close(fd)
    mine = links.get_link(host, veth_name)
    assert (mine.kind, mine.mtu) == ("veth", 1400)
    with rtnl.open_in(pod) as inside:
        peer = links.get_link(inside, "eth0")
        assert (peer.kind, peer.mtu) == ("veth", 1400)
        # A second pair with the same peer name in that namespace is refused.
        fd = os.open(pod, os.O_RDONLY)
        try:
            with pytest.raises(FileExistsError):
                links.create_veth(host, unique("pyv"), "eth0", fd)
        finally:
            os.close(fd)
    assert links.delete_link(host, mine.index) is True
    with rtnl.open_in(pod) as inside:
        assert links.get_link(inside, "eth0") is None  # the peer went with it
    assert links.delete_link(host, mine.index) is False


def test_move_into_namespace_and_rename(host, namespaces, veth_name):
    pod = namespaces.new()
    peer = unique("pyp")
    links.create_veth(host, veth_name, peer)
    fd = os.open(pod, os.O_RDONLY)
    try:
        links.move_to_netns(host, links.get_link(host, peer).index, fd, "eth1")
    finally:
        os.close(fd)
    assert links.get_link(host, peer) is None
    with rtnl.open_in(pod) as inside:
        assert links.get_link(inside, "eth1").kind == "veth"


def test_bridge_ports_addresses_routes_mtu(host, namespaces, veth_name, bridge_name):
    pod = namespaces.new()
    bridge = links.create_bridge(host, bridge_name, mtu=1450)
    assert links.create_bridge(host, bridge_name).index == bridge.index  # idempotent
    fd = os.open(pod, os.O_RDONLY)
    try:
        links.create_veth(host, veth_name, "eth0", fd)
    finally:
        os.close(fd)
    veth = links.get_link(host, veth_name)
    links.set_master(host, veth.index, bridge.index)
    links.set_mtu(host, veth.index, 1450)
    links.set_up(host, veth.index)
    links.set_up(host, bridge.index)
    bridge_port.set_hairpin(veth_name, True)
    assert bridge_port.get_hairpin(veth_name) is True
    addresses.add_address(host, bridge.index, "198.18.200.1/24")
    with pytest.raises(FileExistsError):
        addresses.add_address(host, bridge.index, "198.18.200.1/24")
    addresses.add_address(host, bridge.index, "198.18.200.1/24", exist_ok=True)
    veth = links.get_link(host, veth_name)
    assert (veth.master, veth.mtu, veth.up) == (bridge.index, 1450, True)
    with rtnl.open_in(pod) as inside:
        eth0 = links.get_link(inside, "eth0")
        links.set_up(inside, eth0.index)
        addresses.add_address(inside, eth0.index, "198.18.200.7/24")
        routes.add_route(inside, "198.19.0.0/16", "198.18.200.1")
        assert "198.18.200.7/24" in addresses.list_addresses(inside, eth0.index)
        found = {(r.dst, r.gateway) for r in routes.list_routes(inside)}
        assert ("198.19.0.0/16", "198.18.200.1") in found
        assert routes.route_get(inside, "198.19.1.1").gateway == "198.18.200.1"
        assert routes.delete_route(inside, "198.19.0.0/16", "198.18.200.1") is True
        assert routes.delete_route(inside, "198.19.0.0/16", "198.18.200.1") is False
        links.set_down(inside, eth0.index)
        assert links.get_link(inside, "eth0").up is False
    assert routes.route_get(host, "198.18.200.7").oif == bridge.index
    assert addresses.delete_address(host, bridge.index, "198.18.200.1/24") is True
    assert addresses.delete_address(host, bridge.index, "198.18.200.1/24") is False


def test_create_bridge_refuses_another_kind(host, veth_name):
    links.create_veth(host, veth_name, unique("pyp"))
    with pytest.raises(ValueError, match="not a bridge"):
        links.create_bridge(host, veth_name)


@pytest.mark.parametrize("bad", ["", "x" * 16, "a/b", "a b"])
def test_bad_link_names(host, bad):
    with pytest.raises(ValueError, match="invalid link name"):
        links.create_bridge(host, bad)


def test_sysctls_follow_the_namespace(namespaces):
    pod = namespaces.new()
    host_value = sysctl.read("net.ipv4.conf.lo.route_localnet")

    def flip():
        old = sysctl.write("net.ipv4.conf.lo.route_localnet", "1")
        return old, sysctl.read("net.ipv4.conf.lo.route_localnet")

    assert run_in_netns(pod, flip) == ("0", "1")
    assert sysctl.read("net.ipv4.conf.lo.route_localnet") == host_value
    # New namespaces copy the host's IPv4 settings; what we write in one stays there.
    host_forward = sysctl.read("net.ipv4.ip_forward")
    run_in_netns(pod, sysctl.write, "net.ipv4.ip_forward", "0")
    assert run_in_netns(pod, sysctl.enable_ip_forward) == "0"
    assert run_in_netns(pod, sysctl.read, "net/ipv4/ip_forward") == "1"
    assert sysctl.read("net.ipv4.ip_forward") == host_forward


def test_batch_answers_each_message_in_order(namespaces):
    """One write of several requests: each gets its own outcome, a failure does not stop the
    ones after it, and a dump's parts come back whole beside the others."""
    pod = namespaces.new()
    with rtnl.open_in(pod) as inside:
        lo = links.get_link(inside, "lo")
        missing, up, dump, got = inside.batch([
            links.get_message("nosuchlink"),
            links.set_message(lo.index, flags=links.IFF_UP, change=links.IFF_UP),
            addresses.list_message(lo.index),
            links.get_message("lo")])
        assert isinstance(missing, OSError) and links.link_of(missing) is None
        assert up == []
        assert "127.0.0.1/8" in addresses.addresses_of(dump, lo.index)
        assert links.link_of(got).up
        with pytest.raises(OSError):
            rtnl.raise_first(inside.batch([links.get_message("lo"),
                                           links.get_message("nosuchlink")]))
