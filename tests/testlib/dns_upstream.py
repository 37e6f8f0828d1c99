"""A tiny upstream resolver on loopback for pykube-dns to forward to (the DNS tests' peer, and
the Services node's in the kubelet tests): fixed names, and a count of what it was asked."""
from __future__ import annotations

import socket
import threading

import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

# The upstream's names: what it answers, and a name long enough to need truncation.
UPSTREAM_ZONE = {
    ("external.example.", "A"): ["198.18.200.1"],
    ("target.example.", "A"): ["198.18.200.2"],
    ("big.example.", "TXT"): [f'"{i:02d}-' + "x" * 60 + '"' for i in range(20)],
}
UPSTREAM_TTL = 300


class FakeUpstream:
    """UDP and TCP on 127.0.0.1, a kernel-chosen port; `queries` counts what it was asked."""

    def __init__(self) -> None:
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(8)
        self.lock = threading.Lock()
        self.queries: list[tuple[str, str]] = []
        self.threads = [threading.Thread(target=self._udp_loop, daemon=True),
                        threading.Thread(target=self._tcp_loop, daemon=True)]
        for t in self.threads:
            t.start()

    def count(self, name: str) -> int:
        with self.lock:
            return sum(1 for q in self.queries if q[0] == name)

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        q = query.question[0]
        name, rdtype = q.name.to_text().lower(), dns.rdatatype.to_text(q.rdtype)
        with self.lock:
            self.queries.append((name, rdtype))
        response = dns.message.make_response(query, recursion_available=True)
        values = UPSTREAM_ZONE.get((name, rdtype))
        if values:
            response.answer.append(dns.rrset.from_text_list(q.name, UPSTREAM_TTL, "IN", rdtype,
                                                            values))
        else:
            if not any(n == name for n, _ in UPSTREAM_ZONE):
                response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(dns.rrset.from_text(
                "example.", 60, "IN", "SOA", "ns.example. admin.example. 1 7200 1800 86400 30"))
        return response

    def _udp_loop(self) -> None:
        while True:
            try:
                wire, peer = self.udp.recvfrom(65535)
            except OSError:
                return
            if not wire:
                return
            query = dns.message.from_wire(wire)
            out = self.answer(query).to_wire(max_size=max(512, query.payload)
                                             if query.edns >= 0 else 512,
                                             prefer_truncation=True)
            self.udp.sendto(out, peer)

    def _tcp_loop(self) -> None:
        while True:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    head = conn.recv(2, socket.MSG_WAITALL)
                    wire = conn.recv(int.from_bytes(head, "big"), socket.MSG_WAITALL)
                    out = self.answer(dns.message.from_wire(wire)).to_wire(max_size=65535)
                    conn.sendall(len(out).to_bytes(2, "big") + out)
                except (OSError, dns.exception.DNSException):
                    pass

    def close(self) -> None:
        for sock in (self.udp, self.tcp):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self.threads:
            t.join(5)
        self.udp.close()
        self.tcp.close()
