"""pycni-hostgw's routes (cni/hostgw.py): which Nodes give a route, and the route syncer in a
network namespace of the test's own: added, moved when a node's address changes, removed with
the node, a node off the local subnet skipped. The daemon against the real control plane and
pods across nodes: tests/cluster."""
from __future__ import annotations

import subprocess
import sys

import pytest

from cni.hostgw import RouteSyncer, masquerade_rules
from cni.node_routes import wanted_routes
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


def test_the_masquerade_spares_the_cluster_cidr():
    rules = masquerade_rules("198.19.128.0/17")
    assert ("add rule ip pycni-hostgw postrouting ip saddr 198.19.128.0/17 "
            "ip daddr != 198.19.128.0/17 masquerade") in rules
    assert rules.index("flush table ip pycni-hostgw") < rules.index("add chain")


@pytest.mark.parametrize("args, message", [
    (["--ip-masq"], "pycni-hostgw: --ip-masq: needs --cluster-cidr\n"),
    (["--ip-masq", "--cluster-cidr", "fd00::/64"],
     "pycni-hostgw: --cluster-cidr: 'fd00::/64' is not an IPv4 network\n"),
    (["--ip-masq", "--cluster-cidr", "198.19.128.1/17"],
     "pycni-hostgw: --cluster-cidr: '198.19.128.1/17' is not an IPv4 network\n"),
])
def test_bad_flags_are_one_line(tmp_path, args, message):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n"
                          "- name: c\n  cluster: {server: 'https://198.18.7.1:6443'}\n"
                          "contexts:\n- name: c\n  context: {cluster: c, user: u}\n"
                          "users:\n- name: u\n  user: {token: abc}\n")
    done = subprocess.run([sys.executable, "-m", "cni.hostgw", "--kubeconfig", str(kubeconfig),
                           "--node-name", "n", *args], capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stderr) == (1, message)
