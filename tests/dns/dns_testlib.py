"""Helpers of the DNS tests: the pykube-dns process, and queries with dnspython (the upstream
resolver it forwards to is testlib.dns_upstream's)."""
from __future__ import annotations

import os
import subprocess
import sys

import dns.message
import dns.query
import dns.rdatatype

from testlib import waiting
from testlib.processes import stop

BIN = os.path.dirname(sys.executable)


class DnsProcess:
    """pykube-dns on 127.0.0.1, a kernel-chosen port."""

    def __init__(self, kubeconfig: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "pykube-dns"), "--kubeconfig", kubeconfig,
             "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        if "serving" not in line:
            self.stop()
            raise RuntimeError(f"pykube-dns did not start: {line}")
        self.port = int(line.split(" on ")[1].split()[0].rsplit(":", 1)[1])

    def stop(self) -> None:
        stop(self.proc, wait=10)
        self.proc.stdout.close()


def query(port: int, name: str, rdtype: str = "A", tcp: bool = False,
          **make) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, **make)
    if tcp:
        return dns.query.tcp(q, "127.0.0.1", port=port, timeout=5)
    return dns.query.udp(q, "127.0.0.1", port=port, timeout=5)


def addresses(response: dns.message.Message, rdtype: str = "A") -> set[str]:
    wanted = dns.rdatatype.from_text(rdtype)
    return {rd.to_text() for rrset in response.answer if rrset.rdtype == wanted
            for rd in rrset}


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    return waiting.wait_for(predicate, timeout, interval, what)
