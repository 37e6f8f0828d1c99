"""`pykube-dns`: the cluster DNS server, until SIGTERM or SIGINT.

    pykube-dns --kubeconfig /etc/kubernetes/dns.kubeconfig --listen 198.18.0.10:53

It starts answering at once; until its first list of the cluster is complete, a name it does not
know yet is SERVFAIL (retry) rather than NXDOMAIN, as CoreDNS does."""
from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
import threading

import dns.exception
import dns.name

from kubeapi.component.logs import setup_logging
from kubeapi.kubeconfig import KubeconfigError, load as load_kubeconfig
from kubeapi.restclient import ApiClient
from linux.signals import on_stop_signals

from clusterdns.forward import Forwarder, Upstream, resolv_conf_nameservers
from clusterdns.handler import Handler
from clusterdns.registration import Registration
from clusterdns.server import DNSServer, ListenAddress
from clusterdns.source import InformerView
from clusterdns.zone import DEFAULT_TTL, Zone

SYNC_WAIT = 5.0   # seconds to wait for the first list before serving anyway (CoreDNS: 5 s)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:   # one line and exit 1, not usage and exit 2
        print(f"pykube-dns: {message}", file=sys.stderr)
        sys.exit(1)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pykube-dns", description="Cluster DNS: Services and pods under the "
                "cluster domain, every other name forwarded upstream.")
    p.add_argument("--kubeconfig", required=True, help="how to reach the API server")
    p.add_argument("--cluster-domain", default="cluster.local",
                   help="the cluster's DNS domain (default cluster.local)")
    p.add_argument("--listen", default="0.0.0.0:53",
                   help="address:port for UDP and TCP (default 0.0.0.0:53; port 0: any)")
    p.add_argument("--upstream", action="append", default=[],
                   help="resolver for other names, host[:port], repeatable or comma separated "
                        "(default: the nameservers of /etc/resolv.conf)")
    p.add_argument("--ttl", type=int, default=DEFAULT_TTL,
                   help=f"TTL of the cluster's records in seconds (default {DEFAULT_TTL})")
    p.add_argument("--advertise-address",
                   help="this node's address in the kube-dns Service's EndpointSlice "
                        "(default: register nothing)")
    p.add_argument("--hostname-override", help="the node name (default: the hostname)")
    p.add_argument("-v", "--v", type=int, default=0, help="log verbosity (0-4)")
    return p


def parse_upstream(text: str) -> Upstream:
    host, port = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else "53" if not rest else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    if not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(f"--upstream: {text!r} is not host[:port]")
    try:
        ListenAddress.parse(f"[{host}]:{port}")
    except ValueError:
        raise ValueError(f"--upstream: {host!r} is not an IP address") from None
    return Upstream(host, int(port))


def upstreams(args: argparse.Namespace, listen: ListenAddress) -> list[Upstream]:
    chosen = [parse_upstream(u.strip()) for flag in args.upstream for u in flag.split(",")
              if u.strip()] or resolv_conf_nameservers()
    if not chosen:
        raise ValueError("--upstream: none given and /etc/resolv.conf has no nameserver")
    for u in chosen:
        # A query forwarded to ourselves would loop until it times out.
        if u.port == listen.port and (u.host == listen.host or (
                listen.host in ("0.0.0.0", "::") and ipaddress.ip_address(u.host).is_loopback)):
            raise ValueError(f"--upstream: {u} is this server's own address")
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.v)
    try:
        if not 0 <= args.ttl <= 3600:
            raise ValueError(f"--ttl: {args.ttl} is not between 0 and 3600")
        try:
            domain = dns.name.from_text(args.cluster_domain).to_text(omit_final_dot=True)
        except dns.exception.DNSException as e:
            raise ValueError(f"--cluster-domain: {args.cluster_domain!r}: {e}") from None
        if not domain or domain == "." or domain.startswith("."):
            raise ValueError(f"--cluster-domain: {args.cluster_domain!r} is not a domain")
        listen = ListenAddress.parse(args.listen)
        forwarder = Forwarder(upstreams(args, listen))
        if args.advertise_address:
            try:
                ipaddress.ip_address(args.advertise_address)
            except ValueError:
                raise ValueError(f"--advertise-address: {args.advertise_address!r} is not an "
                                 "IP address") from None
        client = ApiClient(load_kubeconfig(args.kubeconfig), "pykube-dns")
        server_view = InformerView(client)
        server = DNSServer(Handler(Zone(server_view, domain, args.ttl), forwarder), listen)
        registration = None
        if args.advertise_address:
            node = (args.hostname_override or socket.gethostname()).lower()
            registration = Registration(client, node, args.advertise_address,
                                        server.address.port)
    except (KubeconfigError, ValueError, OSError) as e:
        print(f"pykube-dns: {e}", file=sys.stderr)
        return 1
    stop = threading.Event()
    on_stop_signals(stop.set)
    server_view.start()
    server_view.wait_for_sync(SYNC_WAIT)
    server.start()
    if registration is not None:
        registration.start()
    print(f"pykube-dns: serving {domain} on {server.address.host}:{server.address.port} "
          f"(udp, tcp), upstream {', '.join(map(str, forwarder.upstreams))}", flush=True)
    stop.wait()
    if registration is not None:
        registration.stop()
    server.close()
    server_view.stop()
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
