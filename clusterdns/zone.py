"""Authoritative answers for the cluster domain and for the reverse names of cluster addresses,
as CoreDNS's kubernetes plugin (handler.go, backend_lookup.go) gives them:

- a name that does not exist is NXDOMAIN; one that exists without records of the asked type is
  NODATA (NOERROR, empty answer); both carry the zone's SOA in the authority section, and a name
  error before the first full list of the cluster is SERVFAIL, not a lie;
- A/AAAA follow an ExternalName's CNAME: inside the zone at once, outside through `Resolve`;
- SRV answers one record per (target, port) with weight 100/n, their addresses as additional;
- PTR answers a Service's clusterIP, else every endpoint with that address; an address the
  cluster does not know falls through (None) to the upstream resolvers, as kubeadm's Corefile's
  `fallthrough in-addr.arpa ip6.arpa` does;
- TXT dns-version.<zone> is the schema version; AXFR and IXFR are refused.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype as T
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.NS
import dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.SOA
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.SRV
import dns.reversename
import dns.rrset

from clusterdns.records import ClusterView, Entry, NoItems, cluster_ips, find, normalize_ip, \
    reverse
from clusterdns.request import InvalidName, parse

IN = dns.rdataclass.IN
DEFAULT_TTL = 5            # CoreDNS's default; kubeadm's Corefile says `ttl 30`
SCHEMA_VERSION = "1.1.0"   # the Kubernetes DNS specification this follows
SCHEMA_TTL = 28800
MAX_CNAME_CHAIN = 8
REVERSE_ZONES = (dns.name.from_text("in-addr.arpa."), dns.name.from_text("ip6.arpa."))
DNS_SERVICE = ("kube-system", "kube-dns")  # whose ClusterIPs are ns.dns.<zone>

# A name outside the zone and a type -> its answer's RRsets, or None when it cannot be resolved.
Resolve = Callable[[dns.name.Name, int], "list[dns.rrset.RRset] | None"]


class NeedsNetwork(Exception):
    """The answer needs an upstream lookup and the caller offered none (the fast path)."""


class _NameError(Exception):
    pass


@dataclass
class Answer:
    rcode: int = dns.rcode.NOERROR
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)


class Zone:
    def __init__(self, view: ClusterView, domain: str = "cluster.local",
                 ttl: int = DEFAULT_TTL) -> None:
        self.view = view
        self.origin = dns.name.from_text(domain).canonicalize()
        self.ttl = ttl

    def owns(self, qname: dns.name.Name) -> bool:
        """Whether the name is under the cluster domain (always answered here)."""
        return qname.is_subdomain(self.origin)

    def answer(self, qname: dns.name.Name, qtype: int, resolve: Resolve | None) -> Answer | None:
        """The authoritative answer, or None when the name is not the cluster's to answer."""
        if not self.owns(qname):
            if qtype == T.PTR and any(qname.is_subdomain(z) for z in REVERSE_ZONES):
                return self._ptr(qname)
            return None
        try:
            answer = self._forward(qname, qtype, resolve)
        except _NameError:
            rcode = dns.rcode.NXDOMAIN if self.view.synced() else dns.rcode.SERVFAIL
            return Answer(rcode, authority=[self.soa()])
        if answer.rcode == dns.rcode.NOERROR and not answer.answer:
            answer.authority = [self.soa()]
        return answer

    def soa(self) -> dns.rrset.RRset:
        rd = dns.rdtypes.ANY.SOA.SOA(
            IN, T.SOA, self._name("ns.dns"), self._name("hostmaster"),
            self.view.serial() & 0xFFFFFFFF, 7200, 1800, 86400, self.ttl)
        return _rrset(self.origin, min(self.ttl, 300), rd)

    # -- the forward zone ---------------------------------------------------------------------

    def _forward(self, qname: dns.name.Name, qtype: int, resolve: Resolve | None) -> Answer:
        labels = self._labels(qname)
        apex = not labels
        if qtype in (T.AXFR, T.IXFR):
            return Answer(dns.rcode.REFUSED)
        if qtype == T.SOA:
            return Answer(answer=[self.soa()] if apex else [])
        if qtype == T.NS and apex:
            ns = self._name("ns.dns")
            return Answer(answer=[_rrset(qname, self.ttl, dns.rdtypes.ANY.NS.NS(IN, T.NS, ns))],
                          additional=self._ns_addresses(ns, T.A) + self._ns_addresses(ns, T.AAAA))
        if qtype in (T.A, T.AAAA):
            if labels == ["ns", "dns"]:
                return Answer(answer=self._ns_addresses(qname, qtype))
            return Answer(answer=self._addresses(qname, qtype, self._entries(labels), resolve, 0))
        if qtype == T.SRV:
            return self._srv(qname, self._entries(labels))
        if qtype == T.CNAME:
            return Answer(answer=[_rrset(qname, self.ttl, _cname(e.host))
                                  for e in self._entries(labels) if not _is_ip(e.host)][:1])
        if qtype == T.TXT:
            if labels == ["dns-version"]:
                txt = dns.rdtypes.ANY.TXT.TXT(IN, T.TXT, [SCHEMA_VERSION.encode()])
                return Answer(answer=[_rrset(qname, SCHEMA_TTL, txt)])
            if not self._entries(labels):  # as CoreDNS: TXT of a name without records
                raise _NameError
            return Answer()
        self._entries(labels)  # any other type: only whether the name exists
        return Answer()

    def _labels(self, qname: dns.name.Name) -> list[str]:
        rel = qname.relativize(self.origin)
        return [label.decode("ascii", "replace").lower() for label in rel.labels]

    def _entries(self, labels: list[str]) -> list[Entry]:
        try:
            return find(parse(labels), self.view)
        except (InvalidName, NoItems):
            raise _NameError from None

    def _addresses(self, qname: dns.name.Name, qtype: int, entries: list[Entry],
                   resolve: Resolve | None, chain: int) -> list[dns.rrset.RRset]:
        family = 4 if qtype == T.A else 6
        out: list[dns.rrset.RRset] = []
        addresses = None
        for entry in entries:
            if _is_ip(entry.host):
                if ipaddress.ip_address(entry.host).version == family:
                    if addresses is None:
                        addresses = dns.rrset.RRset(qname, IN, qtype)
                        out.append(addresses)
                    addresses.add(_address(entry.host), self.ttl)
                continue
            target = dns.name.from_text(entry.host)
            if target == qname.canonicalize() or chain >= MAX_CNAME_CHAIN:
                continue
            followed = self._follow(target, qtype, resolve, chain)
            if followed:
                out.append(_rrset(qname, self.ttl, _cname(entry.host)))
                out.extend(followed)
        return out

    def _follow(self, target: dns.name.Name, qtype: int, resolve: Resolve | None,
                chain: int) -> list[dns.rrset.RRset]:
        if self.owns(target):
            try:
                entries = self._entries(self._labels(target))
            except _NameError:
                return []
            return self._addresses(target, qtype, entries, resolve, chain + 1)
        if resolve is None:
            raise NeedsNetwork(str(target))
        return resolve(target, qtype) or []

    def _srv(self, qname: dns.name.Name, entries: list[Entry]) -> Answer:
        entries = [e for e in entries if _is_ip(e.host)]  # no SRV for ExternalName
        if not entries:
            return Answer()
        weight = max(1, 10000 // (100 * len(entries)))
        srv = dns.rrset.RRset(qname, IN, T.SRV)
        extra: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = {}
        for entry in entries:
            if entry.port < 0:
                continue
            target = self._name(".".join(entry.key))
            srv.add(dns.rdtypes.IN.SRV.SRV(IN, T.SRV, 0, weight, entry.port, target), self.ttl)
            rdtype = T.A if ipaddress.ip_address(entry.host).version == 4 else T.AAAA
            rrset = extra.setdefault((target, rdtype), dns.rrset.RRset(target, IN, rdtype))
            rrset.add(_address(entry.host), self.ttl)
        return Answer(answer=[srv] if srv else [], additional=list(extra.values()))

    def _ns_addresses(self, owner: dns.name.Name, qtype: int) -> list[dns.rrset.RRset]:
        svc = self.view.service(*DNS_SERVICE)
        family = 4 if qtype == T.A else 6
        ips = [ip for ip in (cluster_ips(svc) if svc else [])
               if _is_ip(ip) and ipaddress.ip_address(ip).version == family]
        if not ips:
            return []
        rrset = dns.rrset.RRset(owner, IN, qtype)
        for ip in ips:
            rrset.add(_address(ip), self.ttl)
        return [rrset]

    # -- reverse ------------------------------------------------------------------------------

    def _ptr(self, qname: dns.name.Name) -> Answer | None:
        try:
            ip = normalize_ip(dns.reversename.to_address(qname))
        except (dns.exception.SyntaxError, ValueError):
            return None   # a partial reverse name: not an address, the upstream's business
        names = reverse(ip, self.view) if ip else []
        if not names:
            return None
        rrset = dns.rrset.RRset(qname, IN, T.PTR)
        for labels in names:
            rrset.add(dns.rdtypes.ANY.PTR.PTR(IN, T.PTR, self._name(".".join(labels))),
                      self.ttl)
        return Answer(answer=[rrset])

    def _name(self, relative: str) -> dns.name.Name:
        return dns.name.from_text(relative, origin=self.origin)


def _is_ip(text: str) -> bool:
    return bool(normalize_ip(text))


def _address(ip: str):
    if ":" in ip:
        return dns.rdtypes.IN.AAAA.AAAA(IN, T.AAAA, ip)
    return dns.rdtypes.IN.A.A(IN, T.A, ip)


def _cname(host: str):
    return dns.rdtypes.ANY.CNAME.CNAME(IN, T.CNAME, dns.name.from_text(host))


def _rrset(owner: dns.name.Name, ttl: int, rdata) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(owner, IN, rdata.rdtype)
    rrset.add(rdata, ttl)
    return rrset
