"""pycni-hostgw's routes (cni/hostgw.py): which Nodes give a route, and the route syncer in a
network namespace of the test's own: added, moved when a node's address changes, removed with
the node, a node off the local subnet skipped. The daemon against the real control plane and
pods across nodes: tests/cluster."""
from __future__ import annotations

from cni.hostgw import RouteSyncer, wanted_routes
from netns import addresses, links, routes
from netns.enter import run_in_netns
from netns.rtnl import RtnlSocket


def _node(name: str, cidr: str = "", ip: str = "") -> dict:
    return {"metadata": {"name": name},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]} if cidr else {},
            "status": {"addresses": [{"type": "InternalIP", "address": ip},
                                     {"type": "Hostname", "address": name}] if ip else []}}


def test_wanted_routes_are_the_other_nodes_with_a_cidr_and_an_address():
    nodes = [_node("self", "198.19.128.0/24", "198.18.7.11"),
             _node("b", "198.19.129.0/24", "198.18.7.12"),
             _node("no-cidr", "", "198.18.7.13"), _node("no-ip", "198.19.131.0/24"),
             _node("v6", "fd00:1::/64", "198.18.7.15")]
    assert wanted_routes(nodes, "self") == {"198.19.129.0/24": "198.18.7.12"}


def _main_routes() -> set[tuple[str, str]]:
    with RtnlSocket() as sock:
        return {(r.dst, r.gateway) for r in routes.list_routes(sock) if r.gateway}


def test_the_syncer_adds_moves_and_removes_routes(namespaces):
    path = namespaces.new()

    def scenario() -> list[set[tuple[str, str]]]:
        with RtnlSocket() as sock:
            lo = links.get_link(sock, "lo")
            links.set_up(sock, lo.index)
            addresses.add_address(sock, lo.index, "198.18.7.11/24")
        syncer = RouteSyncer("self")
        seen = []
        syncer.sync([_node("b", "198.19.129.0/24", "198.18.7.12"),
                     _node("c", "198.19.130.0/24", "198.18.7.13"),
                     _node("far", "198.19.131.0/24", "203.0.113.9")])   # not on a subnet here
        seen.append(_main_routes())
        syncer.sync([_node("b", "198.19.129.0/24", "198.18.7.22"),
                     _node("c", "198.19.130.0/24", "198.18.7.13")])
        seen.append(_main_routes())
        syncer.sync([_node("c", "198.19.130.0/24", "198.18.7.13")])
        seen.append(_main_routes())
        # a restarted daemon adopts what the last one left and still removes it with its node
        again = RouteSyncer("self")
        again.adopt({"198.19.130.0/24": "198.18.7.13"})
        again.sync([])
        seen.append(_main_routes())
        return seen

    first, moved, removed, adopted = run_in_netns(path, scenario)
    assert first == {("198.19.129.0/24", "198.18.7.12"), ("198.19.130.0/24", "198.18.7.13")}
    assert moved == {("198.19.129.0/24", "198.18.7.22"), ("198.19.130.0/24", "198.18.7.13")}
    assert removed == {("198.19.130.0/24", "198.18.7.13")}
    assert adopted == set()
