"""Clearing stale UDP conntrack entries, as kube-proxy's conntrack.CleanStaleEntries: a UDP
"connection" to a Service lives on in conntrack after its endpoint went away, so the client's
datagrams would keep going to the dead endpoint (or to the reject of a Service that had none)
until the entry times out. TCP needs nothing: the dead endpoint resets or times out.

Through netlink (pyroute2), not the `conntrack` CLI, which Debian does not install by default."""
from __future__ import annotations

import logging
import socket
from dataclasses import dataclass

log = logging.getLogger("pykube-proxy")


@dataclass(frozen=True)
class StaleFlow:
    """UDP flows to `dest_ip:port` (`dest_ip` "" for a NodePort on any address) that were
    DNATed to `endpoint_ip` ("" for every flow, e.g. ones rejected while there was none)."""
    dest_ip: str
    port: int
    endpoint_ip: str = ""


def _matches(entry, flow: StaleFlow) -> bool:
    orig, reply = entry.tuple_orig, entry.tuple_reply
    if orig.proto != socket.IPPROTO_UDP or orig.dport != flow.port:
        return False
    if flow.dest_ip and orig.daddr != flow.dest_ip:
        return False
    return not flow.endpoint_ip or reply.saddr == flow.endpoint_ip


def clear(flows: list[StaleFlow]) -> int:
    """Deletes the entries of `flows`; returns how many. Failures are logged, never raised: a
    stale entry only delays a client, it must not stop the proxy."""
    if not flows:
        return 0
    try:
        from pyroute2 import Conntrack
    except ImportError:
        log.warning("pyroute2 has no conntrack support: stale UDP flows are left to expire")
        return 0
    deleted = 0
    try:
        with Conntrack() as ct:
            stale = [e for e in ct.dump_entries() if any(_matches(e, f) for f in flows)]
            for entry in stale:
                try:
                    ct.delete(entry)
                    deleted += 1
                except OSError:  # gone meanwhile
                    continue
    except OSError as e:
        log.warning("conntrack: %s: stale UDP flows are left to expire", e)
    return deleted
