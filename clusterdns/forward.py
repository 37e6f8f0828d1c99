"""Names outside the cluster: asked of the upstream resolvers (`--upstream`, else the
nameservers of /etc/resolv.conf) over UDP, again over TCP when the answer was truncated, with
failover to the next upstream on a timeout or an unreachable one (starting from a random one
each time, as CoreDNS's forward plugin's default policy), through a `Cache`."""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass

from clusterdns.cache import Cache, Result

TIMEOUT = 2.0           # per upstream, per attempt
UPSTREAM_PAYLOAD = 1232  # the EDNS buffer size asked of upstreams (DNS flag day 2020)
RESOLV_CONF = "/etc/resolv.conf"


@dataclass(frozen=True)
class Upstream:
    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def resolv_conf_nameservers(path: str = RESOLV_CONF) -> list[Upstream]:
    """The `nameserver` lines of a resolv.conf ([] if it cannot be read)."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            out.append(Upstream(words[1].split("%")[0]))
    return out


@dataclass
class Forwarder:
    upstreams: list[Upstream]
    timeout: float = TIMEOUT
    cache: Cache = field(default_factory=Cache)

    def cached(self, qname: dns.name.Name, qtype: int, qclass: int = dns.rdataclass.IN,
               dnssec_ok: bool = False) -> Result | None:
        """The cached answer, without asking anyone."""
        return self.cache.get(_key(qname, qtype, qclass, dnssec_ok))

    def resolve(self, qname: dns.name.Name, qtype: int, qclass: int = dns.rdataclass.IN,
                dnssec_ok: bool = False) -> Result | None:
        """The answer from the cache or an upstream; None when no upstream answered."""
        key = _key(qname, qtype, qclass, dnssec_ok)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        query = dns.message.make_query(qname, qtype, qclass, use_edns=0,
                                       payload=UPSTREAM_PAYLOAD, want_dnssec=dnssec_ok)
        response = self._exchange(query)
        if response is None:
            return None
        result = Result.of(response)
        self.cache.put(key, result)
        return result

    def lookup(self, qname: dns.name.Name, qtype: int) -> list | None:
        """An answer section (for an ExternalName's target), None on failure or a denial."""
        result = self.resolve(qname, qtype)
        if result is None or result.rcode != dns.rcode.NOERROR:
            return None
        return result.answer

    def _exchange(self, query: dns.message.Message) -> dns.message.Message | None:
        if not self.upstreams:
            return None
        start = random.randrange(len(self.upstreams))
        for upstream in self.upstreams[start:] + self.upstreams[:start]:
            try:
                response = dns.query.udp(query, upstream.host, timeout=self.timeout,
                                         port=upstream.port, ignore_unexpected=True)
                if response.flags & dns.flags.TC:
                    response = dns.query.tcp(query, upstream.host, timeout=self.timeout,
                                             port=upstream.port)
                return response
            except (dns.exception.DNSException, OSError, EOFError):
                continue
        return None


def _key(qname: dns.name.Name, qtype: int, qclass: int, dnssec_ok: bool):
    return (qname.to_text().lower(), qtype, qclass, dnssec_ok)
