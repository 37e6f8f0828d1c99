"""pycni-hostgw's vxlan backend (cni/vxlan.py) on a routed underlay of the test's own: three
"nodes" (network namespaces), each on a subnet of its own behind a router namespace, so no two
share an L2 segment and host-gw could not route between them; a "pod" (a namespace behind a
veth) on each node. The router knows no pod address: with the syncer run on every node, pods
reach each other across nodes (TCP and UDP) with their own addresses, through the tunnel; a node gone from the list takes its entries with it."""
from __future__ import annotations

import os

import pytest
from pyroute2 import IPRoute

from cni.node_routes import own_node, wanted_routes
from cni.vxlan import DEVICE, VxlanSyncer, vtep_ip, vtep_mac
from netkit import EchoServer, roundtrip
from netns import addresses, links, routes, sysctl
from netns.enter import run_in_netns
from netns.rtnl import RtnlSocket

NODES = 3


def _node(name: str, cidr: str, ip: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            "status": {"addresses": [{"type": "InternalIP", "address": ip},
                                     {"type": "Hostname", "address": name}]}}


def test_a_device_mac_and_address_come_from_the_node():
    assert vtep_mac("198.18.201.2") == "0e:76:c6:12:c9:02"
    assert vtep_ip("198.19.201.0/24") == "198.19.201.0"
    nodes = [_node("a", "198.19.201.0/24", "198.18.201.2"),
             _node("b", "198.19.202.0/24", "198.18.202.2")]
    assert own_node(nodes, "a") == ("198.18.201.2", "198.19.201.0/24")
    assert own_node(nodes, "c") is None
    assert wanted_routes(nodes, "a") == {"198.19.202.0/24": "198.18.202.2"}


def _veth(left: str, left_name: str, left_cidr: str, right: str, right_name: str,
          right_cidr: str) -> None:
    """A veth pair from namespace `left` to `right`, both ends up and addressed."""
    def make_left() -> None:
        fd = os.open(right, os.O_RDONLY | os.O_CLOEXEC)
        try:
            with RtnlSocket() as sock:
                links.create_veth(sock, left_name, right_name, peer_netns_fd=fd)
        finally:
            os.close(fd)
        _up(left_name, left_cidr)

    run_in_netns(left, make_left)
    run_in_netns(right, _up, right_name, right_cidr)


def _up(name: str, cidr: str) -> None:
    with RtnlSocket() as sock:
        for link_name in ("lo", name):
            links.set_up(sock, links.get_link(sock, link_name).index)
        addresses.add_address(sock, links.get_link(sock, name).index, cidr)


def _default_route(gateway: str) -> None:
    with RtnlSocket() as sock:
        routes.add_route(sock, "0.0.0.0/0", gateway)


def _vxlan_state() -> tuple[set[str], set[str], set[str]]:
    """(routes, neighbours, FDB destinations) on the device."""
    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=DEVICE)[0]
        got_routes = {f"{r.get('RTA_DST')}/{r['dst_len']} via {r.get('RTA_GATEWAY')}"
                      for r in ipr.get_routes(family=2, oif=index) if r.get("RTA_GATEWAY")}
        neighbours = {f"{n.get('NDA_DST')} {n.get('NDA_LLADDR')}"
                      for n in ipr.get_neighbours(family=2, ifindex=index)}
        fdb = {f"{e.get('NDA_LLADDR')} {e.get('NDA_DST')}"
               for e in ipr.fdb("dump", ifindex=index) if e.get("NDA_DST")}
    return got_routes, neighbours, fdb


@pytest.mark.root
def test_pods_on_routed_nodes_reach_each_other_through_vxlan(namespaces):
    router = namespaces.new()
    run_in_netns(router, sysctl.enable_ip_forward)
    nodes, pods, objects = [], [], []
    for n in range(1, NODES + 1):
        node, pod = namespaces.new(), namespaces.new()
        node_ip, cidr = f"198.18.{200 + n}.2", f"198.19.{200 + n}.0/24"
        _veth(router, f"u{n}", f"198.18.{200 + n}.1/24", node, "eth0", f"{node_ip}/24")
        run_in_netns(node, _default_route, f"198.18.{200 + n}.1")
        run_in_netns(node, sysctl.enable_ip_forward)
        _veth(node, "p0", f"198.19.{200 + n}.1/24", pod, "eth0", f"198.19.{200 + n}.2/24")
        run_in_netns(pod, _default_route, f"198.19.{200 + n}.1")
        nodes.append(node)
        pods.append(pod)
        objects.append(_node(f"n{n}", cidr, node_ip))

    for n, node in enumerate(nodes, 1):
        run_in_netns(node, VxlanSyncer(f"n{n}").sync, objects)
        # a second pass (a resync, or a restarted daemon) changes nothing
        run_in_netns(node, VxlanSyncer(f"n{n}").sync, objects)
    assert run_in_netns(nodes[0], _vxlan_state) == (
        {"198.19.202.0/24 via 198.19.202.0", "198.19.203.0/24 via 198.19.203.0"},
        {"198.19.202.0 0e:76:c6:12:ca:02", "198.19.203.0 0e:76:c6:12:cb:02"},
        {"0e:76:c6:12:ca:02 198.18.202.2", "0e:76:c6:12:cb:02 198.18.203.2"})

    servers = [EchoServer(pod, f"198.19.{200 + n}.2") for n, pod in enumerate(pods, 1)]
    try:
        for n, pod in enumerate(pods, 1):
            for m, server in enumerate(servers, 1):
                if m != n:
                    # the reply names the caller: pod addresses cross unchanged (no NAT)
                    assert roundtrip(pod, f"198.19.{200 + m}.2", server.port) == \
                        f"echo:hi from:198.19.{200 + n}.2".encode()
        udp = EchoServer(pods[2], "198.19.203.2", "udp")
        try:
            assert roundtrip(pods[0], "198.19.203.2", udp.port, proto="udp") == \
                b"echo:hi from:198.19.201.2"
        finally:
            udp.close()
    finally:
        for server in servers:
            server.close()

    run_in_netns(nodes[0], VxlanSyncer("n1").sync, objects[:2])
    assert run_in_netns(nodes[0], _vxlan_state) == (
        {"198.19.202.0/24 via 198.19.202.0"}, {"198.19.202.0 0e:76:c6:12:ca:02"},
        {"0e:76:c6:12:ca:02 198.18.202.2"})
