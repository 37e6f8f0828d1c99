"""pycni-hostgw: cross-node pod routes as flannel's host-gw and vxlan backends. One small daemon
per node (`pycni-hostgw --kubeconfig K --node-name N [--backend vxlan]`), run in the node's
network namespace: it watches the Nodes and keeps, for every other node with a podCIDR and an
InternalIP, a way to that podCIDR. host-gw (the default): the route "podCIDR via nodeIP" in the
main table; the nodes must share one L2 segment (the next hop is on a connected subnet), a node
that is not is skipped with one log line, as flannel. vxlan (cni/vxlan.py): pod traffic
tunnelled in UDP to the node's address, for nodes that only reach each other through routers.
With --ip-masq and --cluster-cidr, traffic from pods to outside the cluster CIDR (the API
server's host, the underlay) leaves with the node's address, as flannel's --ip-masq: an nft
table `ip pycni-hostgw`; pod to pod across nodes keeps its addresses.

Why a daemon and not a CNI plugin run at ADD: the routes depend on the other nodes, which come
and go after this node's pods were set up; an ADD sees no later node. Why not inside the
kubelet: the kubelet never edits the node's routes (flannel, calico, kube-router do), and a
daemon is what runs beside any kubelet, ours or kube's. Routes and the table are left at exit,
as flannel leaves them: a restarted daemon finds and keeps them, and traffic does not stop
meanwhile."""
from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
import threading
from dataclasses import dataclass, field

from kubeapi.component.logs import setup_logging
from kubeapi.informer import Informer, resource_path
from kubeapi.kubeconfig import KubeconfigError, load as load_kubeconfig
from kubeapi.restclient import ApiClient
from linux.signals import on_stop_signals
from netns import routes
from netns.nftables import Nft, NftError
from netns.rtnl import RtnlSocket

from .node_routes import wanted_routes
from .vxlan import VxlanSyncer

log = logging.getLogger("pycni-hostgw")
USER_AGENT = "pycni-hostgw/v0.1.0"
MASQ_TABLE = "pycni-hostgw"


def masquerade_rules(cluster_cidr: str) -> str:
    """One nft transaction: the table made or emptied, then its one rule."""
    network = ipaddress.ip_network(cluster_cidr)
    if network.version != 4:
        raise ValueError(f"{cluster_cidr} is not IPv4")
    return (f"add table ip {MASQ_TABLE}\nflush table ip {MASQ_TABLE}\n"
            f"add chain ip {MASQ_TABLE} postrouting {{ type nat hook postrouting priority "
            f"srcnat; policy accept; }}\n"
            f"add rule ip {MASQ_TABLE} postrouting ip saddr {network} ip daddr != {network} "
            f"masquerade\n")


@dataclass
class RouteSyncer:
    """Makes the main table hold exactly the wanted routes among those it manages."""

    own_name: str
    managed: dict[str, str] = field(default_factory=dict)   # podCIDR -> gateway we set
    lock: threading.Lock = field(default_factory=threading.Lock)
    adopted: bool = False

    def adopt(self, cluster_routes: dict[str, str]) -> None:
        """Routes a previous run left count as ours when they go to a wanted podCIDR."""
        with RtnlSocket() as sock:
            for route in routes.list_routes(sock):
                if route.gateway and route.dst in cluster_routes:
                    self.managed[route.dst] = route.gateway
        self.adopted = True

    def sync(self, nodes: list[dict]) -> None:
        wanted = wanted_routes(nodes, self.own_name)
        if not self.adopted:
            self.adopt(wanted)
        with self.lock, RtnlSocket() as sock:
            for cidr, gateway in list(self.managed.items()):
                if wanted.get(cidr) != gateway:
                    routes.delete_route(sock, cidr, gateway)
                    del self.managed[cidr]
                    log.info("route %s via %s removed", cidr, gateway)
            for cidr, gateway in wanted.items():
                if self.managed.get(cidr) == gateway:
                    continue
                hop = routes.route_get(sock, gateway)
                if hop is None or hop.gateway:
                    log.warning("node address %s of podCIDR %s is not on a connected subnet: "
                                "host-gw needs one L2 segment; skipped", gateway, cidr)
                    continue
                routes.add_route(sock, cidr, gateway, exist_ok=True)
                self.managed[cidr] = gateway
                log.info("route %s via %s added", cidr, gateway)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pycni-hostgw",
                                description="Routes to the other nodes' podCIDRs (host-gw).")
    p.add_argument("--kubeconfig", required=True, help="how to reach the API server")
    p.add_argument("--node-name", required=True, help="this node's name (its own podCIDR is "
                   "the bridge's, not routed)")
    p.add_argument("--backend", choices=("host-gw", "vxlan"), default="host-gw",
                   help="host-gw: routes via the nodes' addresses, one L2 segment (default); "
                   "vxlan: a tunnel device, nodes anywhere the underlay routes")
    p.add_argument("--resync", type=float, default=30.0,
                   help="seconds between full re-checks of the routes (default 30)")
    p.add_argument("--ip-masq", action="store_true",
                   help="masquerade pod traffic to outside --cluster-cidr")
    p.add_argument("--cluster-cidr", help="the pods' addresses in the whole cluster (IPv4)")
    p.add_argument("-v", "--v", type=int, default=0, help="log verbosity (0-4)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.v)
    try:
        conn = load_kubeconfig(args.kubeconfig)
        if args.ip_masq:
            if not args.cluster_cidr:
                raise ValueError("--ip-masq: needs --cluster-cidr")
            try:
                rules = masquerade_rules(args.cluster_cidr)
            except ValueError:
                raise ValueError(f"--cluster-cidr: {args.cluster_cidr!r} is not an IPv4 "
                                 "network") from None
            nft = Nft()
            try:
                nft.run(rules)
            finally:
                nft.close()
    except (KubeconfigError, OSError, ValueError, NftError) as e:
        print(f"pycni-hostgw: {e}", file=sys.stderr)
        return 1
    client = ApiClient(conn, USER_AGENT)
    syncer = VxlanSyncer(args.node_name) if args.backend == "vxlan" else \
        RouteSyncer(args.node_name)
    nodes = Informer(client, resource_path("", "v1", "nodes"), resync=args.resync)
    changed = threading.Event()
    nodes.add_event_handler(on_add=lambda _o: changed.set(),
                            on_update=lambda _o, _n: changed.set(),
                            on_delete=lambda _o: changed.set())
    stop = threading.Event()
    on_stop_signals(lambda: (stop.set(), changed.set()))
    nodes.start()
    print(f"pycni-hostgw: node {args.node_name}, backend {args.backend}", flush=True)
    try:
        while not stop.is_set():
            changed.wait(args.resync)
            changed.clear()
            if stop.is_set() or not nodes.has_synced():
                continue
            try:
                syncer.sync(nodes.store.list())
            except OSError as e:
                log.warning("routes: %s", e)
    finally:
        nodes.stop()
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
