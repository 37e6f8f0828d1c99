"""Clearing stale conntrack entries. As kube-proxy's conntrack.CleanStaleEntries: a UDP
"connection" to a Service lives on in conntrack after its endpoint went away, so the client's
datagrams would keep going to the dead endpoint (or to the reject of a Service that had none)
until the entry times out.

Beyond kube-proxy, a flow of any protocol that reached a Service address before the proxy had
rules for it: it met no DNAT, and conntrack keeps that null binding (a TCP SYN_SENT entry for
120 s), so a client whose port allocator picks the same source port again within that time is
still not DNATed, and now that the address has rules, meets the reject of unknown ClusterIP
ports. Such an entry never reached anything; deleting it lets the next packet be DNATed.

Through netlink (pyroute2), not the `conntrack` CLI, which Debian does not install by default."""
from __future__ import annotations

import logging
import socket
from dataclasses import dataclass

log = logging.getLogger("pykube-proxy")
PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "sctp": socket.IPPROTO_SCTP}


@dataclass(frozen=True)
class StaleFlow:
    """Flows to `dest_ip:port` (`dest_ip` "" for a NodePort on any address) that were DNATed
    to `endpoint_ip`: "" for every flow (e.g. ones rejected while there was none), `dest_ip`
    itself for the flows that met no DNAT."""
    dest_ip: str
    port: int
    endpoint_ip: str = ""
    protocol: str = "udp"


def clear(flows: list[StaleFlow]) -> int:
    """Deletes the entries of `flows`; returns how many. Failures are logged, never raised: a
    stale entry only delays a client, it must not stop the proxy.

    The kernel filters every dump: Python parses about 2,000 entries a second, and a node's
    table holds tens of thousands."""
    if not flows:
        return 0
    try:
        from pyroute2 import Conntrack
        from pyroute2.netlink.nfnetlink import nfctsocket
    except ImportError:
        log.warning("pyroute2 has no conntrack support: stale flows are left to expire")
        return 0
    unnatted = {(PROTOCOLS[f.protocol], f.dest_ip, f.port) for f in flows
                if f.endpoint_ip and f.endpoint_ip == f.dest_ip}
    deleted = 0
    try:
        with Conntrack() as ct:
            stale = _unnatted(ct, nfctsocket, unnatted) if unnatted else []
            for flow in dict.fromkeys(f for f in flows if f.endpoint_ip != f.dest_ip):
                found = ct.dump_entries(tuple_orig=nfctsocket.NFCTAttrTuple(
                    proto=PROTOCOLS[flow.protocol], daddr=flow.dest_ip or None,
                    dport=flow.port))
                stale += [e.tuple_orig for e in found
                          if not flow.endpoint_ip or e.tuple_reply.saddr == flow.endpoint_ip]
            for orig in stale:
                try:
                    ct.delete(orig)
                    deleted += 1
                except OSError:  # gone meanwhile
                    continue
    except OSError as e:
        log.warning("conntrack: %s: stale flows are left to expire", e)
    return deleted


def _unnatted(ct, nfctsocket, keys: set[tuple[int, str, int]]) -> list:
    """The original tuples of the entries whose replies would come from a Service address
    itself (protocol, address and port in `keys`): flows that met no DNAT. All of them are
    unreplied, so one dump of the unreplied entries finds them, however many Services."""
    found = []
    for msg in ct.dump(status=0, status_mask=nfctsocket.IPS_SEEN_REPLY):
        orig = nfctsocket.NFCTAttrTuple.from_netlink(msg["nfgen_family"],
                                                     msg.get_attr("CTA_TUPLE_ORIG"))
        reply = nfctsocket.NFCTAttrTuple.from_netlink(msg["nfgen_family"],
                                                      msg.get_attr("CTA_TUPLE_REPLY"))
        if (reply.proto, reply.saddr, reply.sport) in keys:
            found.append(orig)
    return found
