"""`pykube-proxy`: kube-proxy's flags, then the proxy (informers on Services and EndpointSlices,
nftables rules) until SIGTERM or SIGINT. The rules stay when it exits, as kube-proxy's do, so
Services keep working across a restart; `--cleanup` removes them.

The table is `ip pykube-proxy`; $PYKUBE_PROXY_TABLE names another (tests run several proxies on
one host)."""
from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
import threading

from kubeapi.component.logs import setup_logging
from kubeapi.kubeconfig import KubeconfigError, load as load_kubeconfig
from linux.signals import on_stop_signals

from .config import (ConfigError, ProxyConfig, load_file, parse_address, parse_cidrs,
                     parse_duration, parse_mode)
from .healthz import Health, HealthServer
from .rules import ProxyOptions

DEFAULT_TABLE = "pykube-proxy"
TABLE_ENV = "PYKUBE_PROXY_TABLE"
USER_AGENT = "pykube-proxy/v1.37.1"


class _Parser(argparse.ArgumentParser):
    """Bad flags are one line and exit 1, as every pycontainer command."""

    def error(self, message: str) -> None:
        print(f"pykube-proxy: {message}", file=sys.stderr)
        sys.exit(1)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pykube-proxy", description="The pycontainer service proxy (nftables).")
    p.add_argument("--config", help="a KubeProxyConfiguration file (YAML); flags override it")
    p.add_argument("--kubeconfig", help="how to reach the API server")
    p.add_argument("--proxy-mode", help="nftables (the only mode; iptables is refused)")
    p.add_argument("--cluster-cidr", help="pod CIDRs, comma separated: traffic from outside "
                   "them to a ClusterIP is masqueraded")
    p.add_argument("--nodeport-addresses", help="CIDRs whose local addresses serve NodePorts, "
                   "comma separated (default: every local address but 127.0.0.0/8)")
    p.add_argument("--hostname-override", help="this node's name (default: the hostname)")
    p.add_argument("--masquerade-all", nargs="?", const="true", choices=("true", "false"),
                   help="masquerade all traffic to Services")
    p.add_argument("--sync-period", help="how often stale chains are checked (default 30s)")
    p.add_argument("--min-sync-period", help="the least time between two syncs (default 1s)")
    p.add_argument("--healthz-bind-address", help="IP:port of /healthz and /livez "
                   "(default 0.0.0.0:10256; empty: none)")
    p.add_argument("--cleanup", action="store_true", help="remove the rules and exit")
    p.add_argument("-v", "--v", type=int, default=0, help="log verbosity (0-4)")
    return p


def build_config(args: argparse.Namespace) -> ProxyConfig:
    cfg = load_file(args.config) if args.config else ProxyConfig()
    if args.kubeconfig is not None:
        cfg.kubeconfig = args.kubeconfig
    if args.proxy_mode is not None:
        cfg.mode = parse_mode(args.proxy_mode, "--proxy-mode")
    if args.cluster_cidr is not None:
        cfg.cluster_cidrs = parse_cidrs(args.cluster_cidr, "--cluster-cidr")
    if args.nodeport_addresses is not None:
        cfg.nodeport_addresses = parse_cidrs(args.nodeport_addresses, "--nodeport-addresses")
    if args.hostname_override is not None:
        cfg.hostname_override = args.hostname_override
    if args.masquerade_all is not None:
        cfg.masquerade_all = args.masquerade_all == "true"
    if args.sync_period is not None:
        cfg.sync_period = parse_duration(args.sync_period, "--sync-period")
    if args.min_sync_period is not None:
        cfg.min_sync_period = parse_duration(args.min_sync_period, "--min-sync-period")
    if args.healthz_bind_address is not None:
        cfg.healthz_bind_address = parse_address(args.healthz_bind_address,
                                                 "--healthz-bind-address")
    if not cfg.kubeconfig and not args.cleanup:
        raise ConfigError("--kubeconfig: required (or clientConnection.kubeconfig in --config)")
    return cfg


def local_ipv4_addresses() -> list[str]:
    from netns import addresses, rtnl

    with rtnl.RtnlSocket() as sock:
        return [a.split("/")[0] for a in addresses.list_addresses(sock, family=socket.AF_INET)]


def proxy_options(cfg: ProxyConfig, table: str) -> ProxyOptions:
    nodeport_ips = None
    if cfg.nodeport_addresses:
        nets = [ipaddress.ip_network(c) for c in cfg.nodeport_addresses]
        nodeport_ips = tuple(ip for ip in local_ipv4_addresses()
                             if any(ipaddress.ip_address(ip) in n for n in nets))
    return ProxyOptions(table=table, node_name=cfg.node_name,
                        cluster_cidrs=tuple(cfg.cluster_cidrs),
                        masquerade_all=cfg.masquerade_all, nodeport_ips=nodeport_ips)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.v)
    table = os.environ.get(TABLE_ENV) or DEFAULT_TABLE
    try:
        cfg = build_config(args)
        from netns import nftables

        if not nftables.available():
            raise ConfigError(f"--proxy-mode: nftables: {nftables.LIBRARY} is not installed "
                              "(apt install nftables)")
        opts = proxy_options(cfg, table)
        nft = nftables.Nft()
        from .syncer import Syncer

        syncer = Syncer(opts, nft.run)
        if args.cleanup:
            syncer.cleanup()
            return 0
        conn = load_kubeconfig(cfg.kubeconfig)
        health = Health(timeout=2 * cfg.sync_period)
        nodes = _NodeCache(cfg.node_name)
        server = None
        if cfg.healthz_bind_address:
            try:
                server = HealthServer(cfg.healthz_bind_address, health, nodes.get)
            except OSError as e:
                raise ConfigError(f"--healthz-bind-address: {cfg.healthz_bind_address}: "
                                  f"{e.strerror}") from None
    except (ConfigError, KubeconfigError, OSError) as e:
        print(f"pykube-proxy: {e}", file=sys.stderr)
        return 1
    return _run(cfg, conn, syncer, health, server, nodes)


class _NodeCache:
    """This node's Node, from an informer (the health server reads it)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.informer = None

    def get(self) -> dict | None:
        return self.informer.store.get(self.name) if self.informer is not None else None


def _run(cfg: ProxyConfig, conn, syncer, health, server, nodes: _NodeCache) -> int:
    from kubeapi.informer import InformerFactory, resource_path
    from kubeapi.restclient import ApiClient

    from .proxier import Proxier

    client = ApiClient(conn, USER_AGENT)
    factory = InformerFactory(client)
    services = factory.informer(resource_path("", "v1", "services"))
    slices = factory.informer(resource_path("discovery.k8s.io", "v1", "endpointslices"))
    if server is not None:
        nodes.informer = factory.informer(resource_path("", "v1", "nodes"),
                                          field_selector=f"metadata.name={nodes.name}")
    proxier = Proxier(syncer, min_sync_period=cfg.min_sync_period, sync_period=cfg.sync_period,
                      health=health)
    proxier.watch(services, slices)
    stop = threading.Event()
    on_stop_signals(lambda: (stop.set(), proxier.stop()))
    factory.start()
    synced = threading.Event()

    def wait_synced() -> None:
        while not stop.is_set():
            if factory.wait_for_sync(0.5):
                synced.set()
                return

    threading.Thread(target=wait_synced, daemon=True, name="wait for sync").start()
    print(f"pykube-proxy: node {cfg.node_name}, table ip {syncer.opts.table}, "
          f"{conn.server}", flush=True)
    worker = threading.Thread(target=proxier.run, args=(synced,), name="sync")
    worker.start()
    if server is not None:
        server.start()
    stop.wait()
    if server is not None:
        server.stop()
    proxier.stop()
    worker.join(10)
    factory.stop()
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
