"""One query in, one response out: the cluster's names from the `Zone` (authoritative), every
other name through the `Forwarder`. `respond(network=False)` is the fast path a receiving thread
runs itself: it answers from memory, or returns None for a query that needs an upstream."""
from __future__ import annotations

import struct
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass

from clusterdns.forward import Forwarder
from clusterdns.memo import Memo
from clusterdns.zone import NeedsNetwork, Zone

UDP_LIMIT = 512        # without EDNS (RFC 1035)
OUR_PAYLOAD = 1232     # the EDNS buffer size we announce


@dataclass
class Handler:
    zone: Zone
    forwarder: Forwarder

    def __post_init__(self) -> None:
        self.memo = Memo(self.zone.view.generation)

    def handle(self, wire: bytes, udp: bool, network: bool) -> bytes | None:
        """The response's bytes to a query's, None when there is nothing to send; NeedsNetwork
        when `network` is False and the query needs an upstream."""
        cached = self.memo.get(wire, udp)
        if cached is not None:
            return cached
        generation = self.zone.view.generation()
        query = parse(wire)
        if query is None or isinstance(query, bytes):
            return query
        response = self.respond(query, network)
        if response is None:
            if not network and not query.flags & dns.flags.QR:
                raise NeedsNetwork(str(query.question))
            return None
        out = to_wire(response, query, udp)
        if response.rcode() != dns.rcode.SERVFAIL:
            self.memo.put(wire, udp, generation, out)
        return out

    def respond(self, query: dns.message.Message, network: bool) -> dns.message.Message | None:
        if query.flags & dns.flags.QR:
            return None   # a response sent to us: never answer it (no loops)
        response = dns.message.make_response(query, our_payload=OUR_PAYLOAD)
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            return response
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        qname, qtype, qclass = question.name, question.rdtype, question.rdclass
        if self.zone.owns(qname) and qclass != dns.rdataclass.IN:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        answer = None
        if qclass == dns.rdataclass.IN:   # other classes (CHAOS...) are the upstream's
            try:
                answer = self.zone.answer(qname, qtype,
                                          self.forwarder.lookup if network else None)
            except NeedsNetwork:
                return None
        if answer is not None:
            response.flags |= dns.flags.AA
            response.set_rcode(answer.rcode)
            response.answer, response.authority = answer.answer, answer.authority
            response.additional = answer.additional
            return response
        dnssec_ok = bool(query.ednsflags & dns.flags.DO)
        result = self.forwarder.cached(qname, qtype, qclass, dnssec_ok)
        if result is None:
            if not network:
                return None
            result = self.forwarder.resolve(qname, qtype, qclass, dnssec_ok)
        response.flags |= dns.flags.RA
        if result is None:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response
        if result.ad and (dnssec_ok or query.flags & dns.flags.AD):
            response.flags |= dns.flags.AD
        response.set_rcode(result.rcode)
        response.answer, response.authority = list(result.answer), list(result.authority)
        response.additional = list(result.additional)
        return response


def parse(wire: bytes) -> dns.message.Message | bytes | None:
    """The query, or the FORMERR response to bytes that are not one (None: not even a header)."""
    try:
        return dns.message.from_wire(wire)
    except dns.exception.DNSException:
        if len(wire) < 12 or wire[2] & 0x80:
            return None
        (ident,) = struct.unpack("!H", wire[:2])
        flags = dns.flags.QR | (wire[2] << 8 & dns.flags.RD)
        return struct.pack("!HHHHHH", ident, flags | dns.rcode.FORMERR, 0, 0, 0, 0)


def to_wire(response: dns.message.Message, query: dns.message.Message, udp: bool) -> bytes:
    """The response's bytes; over UDP cut to what the client can take, with the TC bit."""
    if not udp:
        return response.to_wire(max_size=65535)
    limit = max(UDP_LIMIT, query.payload) if query.edns >= 0 else UDP_LIMIT
    return response.to_wire(max_size=limit, prefer_truncation=True)
