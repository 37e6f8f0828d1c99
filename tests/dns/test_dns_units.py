"""The zone, cache and memo of clusterdns on plain dicts and a fake clock (no server, no API):
the corners of CoreDNS's answers that the cluster tests do not reach."""
from __future__ import annotations

from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype as T
import dns.rrset
import pytest

from clusterdns.cache import Cache, Result
from clusterdns.memo import Memo
from clusterdns.records import normalize_ip
from clusterdns.request import InvalidName, RecordRequest, parse
from clusterdns.zone import NeedsNetwork, Zone

N = dns.name.from_text


@dataclass
class DictView:
    """A records.ClusterView over lists of API objects."""
    namespaces: set[str] = field(default_factory=lambda: {"default"})
    services: list[dict] = field(default_factory=list)
    slices: list[dict] = field(default_factory=list)
    is_synced: bool = True

    def synced(self) -> bool:
        return self.is_synced

    def serial(self) -> int:
        return 42

    def generation(self) -> int:
        return 0

    def namespace_exists(self, name: str) -> bool:
        return name in self.namespaces

    def service(self, namespace: str, name: str) -> dict | None:
        return next((s for s in self.services if s["metadata"] == {"namespace": namespace,
                                                                    "name": name}), None)

    def endpoint_slices(self, namespace: str, service: str) -> list[dict]:
        return [s for s in self.slices if s["metadata"]["namespace"] == namespace and
                s["metadata"]["labels"]["kubernetes.io/service-name"] == service]

    def services_by_ip(self, ip: str) -> list[dict]:
        return [s for s in self.services if ip in s["spec"].get("clusterIPs", [])]

    def endpoint_slices_by_ip(self, ip: str) -> list[dict]:
        return [s for s in self.slices
                if any(ip in map(normalize_ip, e["addresses"]) for e in s["endpoints"])]


def svc(name: str, **spec) -> dict:
    return {"metadata": {"namespace": "default", "name": name}, "spec": spec}


def slc(service: str, endpoints: list[dict], ports=None, address_type="IPv4") -> dict:
    return {"metadata": {"namespace": "default", "name": service + "-x",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": address_type, "endpoints": endpoints, "ports": ports or []}


def texts(rrsets) -> set[tuple[str, str]]:
    return {(T.to_text(r.rdtype), rd.to_text()) for r in rrsets for rd in r}


def ask(zone: Zone, name: str, rdtype: int, resolve=None):
    return zone.answer(N(name), rdtype, resolve)


@pytest.mark.parametrize("labels, expect", [
    ([], RecordRequest()),
    (["svc"], RecordRequest()),
    (["ns", "svc"], RecordRequest("svc", "ns")),
    (["web", "ns", "svc"], RecordRequest("svc", "ns", "web")),
    (["h", "web", "ns", "svc"], RecordRequest("svc", "ns", "web", endpoint="h")),
    (["_http", "_tcp", "web", "ns", "svc"],
     RecordRequest("svc", "ns", "web", port="http", protocol="tcp")),
])
def test_request_parse(labels, expect):
    assert parse(labels) == expect


@pytest.mark.parametrize("labels", [["web", "ns", "other"], ["a", "b", "c", "web", "ns", "svc"]])
def test_request_parse_invalid(labels):
    with pytest.raises(InvalidName):
        parse(labels)


def test_dual_stack_service_and_srv_weights():
    view = DictView(services=[svc("web", clusterIP="198.19.0.1",
                                  clusterIPs=["198.19.0.1", "fd00::1"],
                                  ports=[{"name": "http", "port": 80, "protocol": "TCP"}])])
    zone = Zone(view)
    name = "web.default.svc.cluster.local."
    assert texts(ask(zone, name, T.A).answer) == {("A", "198.19.0.1")}
    assert texts(ask(zone, name, T.AAAA).answer) == {("AAAA", "fd00::1")}
    srv = ask(zone, "_http._tcp." + name, T.SRV)
    # Two entries (one per ClusterIP), one SRV record: CoreDNS's weight is still 100/2.
    assert texts(srv.answer) == {("SRV", f"0 50 80 {name}")}
    assert texts(srv.additional) == {("A", "198.19.0.1"), ("AAAA", "fd00::1")}


def test_name_error_before_sync_is_servfail():
    zone = Zone(DictView(is_synced=False))
    r = ask(zone, "nope.default.svc.cluster.local.", T.A)
    assert r.rcode == dns.rcode.SERVFAIL and texts(r.authority) == {
        ("SOA", "ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 5")}


def test_soa_below_apex_and_transfers():
    zone = Zone(DictView())
    below = ask(zone, "anything.default.svc.cluster.local.", T.SOA)
    assert below.rcode == dns.rcode.NOERROR and not below.answer and below.authority
    assert ask(zone, "cluster.local.", T.AXFR).rcode == dns.rcode.REFUSED


def test_txt_as_coredns():
    view = DictView(services=[svc("web", clusterIP="198.19.0.1", clusterIPs=["198.19.0.1"],
                                  ports=[{"port": 80}])])
    zone = Zone(view)
    assert ask(zone, "web.default.svc.cluster.local.", T.TXT).rcode == dns.rcode.NOERROR
    # A name that exists without records (the namespace) is NXDOMAIN for TXT, as in CoreDNS.
    assert ask(zone, "default.svc.cluster.local.", T.TXT).rcode == dns.rcode.NXDOMAIN
    assert ask(zone, "default.svc.cluster.local.", T.A).rcode == dns.rcode.NOERROR


def test_slices_without_ports_fqdn_and_ipv6():
    view = DictView(services=[svc("h", clusterIP="None", clusterIPs=["None"])], slices=[
        slc("h", [{"addresses": ["198.18.1.1"]}]),
        slc("h", [{"addresses": ["fd00:0:0::7"], "hostname": "six"}], address_type="IPv6"),
        slc("h", [{"addresses": ["db.example"]}], address_type="FQDN"),
    ])
    zone = Zone(view)
    name = "h.default.svc.cluster.local."
    assert texts(ask(zone, name, T.A).answer) == {("A", "198.18.1.1")}
    assert texts(ask(zone, "six." + name, T.AAAA).answer) == {("AAAA", "fd00::7")}
    assert not ask(zone, name, T.SRV).answer   # no port: addresses, but no SRV
    ptr = ask(zone, "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
              T.PTR)
    assert texts(ptr.answer) == {("PTR", "six." + name)}
    assert ask(zone, "9.9.18.198.in-addr.arpa.", T.PTR) is None   # the upstream's


def test_external_name_inside_the_zone_and_outside():
    view = DictView(services=[
        svc("web", clusterIP="198.19.0.1", clusterIPs=["198.19.0.1"], ports=[{"port": 80}]),
        svc("alias", type="ExternalName", externalName="web.default.svc.cluster.local"),
        svc("out", type="ExternalName", externalName="Target.Example.")])
    zone = Zone(view)
    r = ask(zone, "alias.default.svc.cluster.local.", T.A)
    assert texts(r.answer) == {("CNAME", "web.default.svc.cluster.local."), ("A", "198.19.0.1")}
    with pytest.raises(NeedsNetwork):
        ask(zone, "out.default.svc.cluster.local.", T.A)
    target = dns.rrset.from_text("target.example.", 60, "IN", "A", "198.18.200.2")
    r = ask(zone, "out.default.svc.cluster.local.", T.A, lambda name, t: [target])
    assert texts(r.answer) == {("CNAME", "target.example."), ("A", "198.18.200.2")}
    # The target does not resolve: no answer at all (NODATA), as CoreDNS.
    r = ask(zone, "out.default.svc.cluster.local.", T.A, lambda name, t: None)
    assert r.rcode == dns.rcode.NOERROR and not r.answer and r.authority


def result(rcode=dns.rcode.NOERROR, answer_ttl=None, soa=None) -> Result:
    answer = [dns.rrset.from_text("a.example.", answer_ttl, "IN", "A", "198.18.0.1")] \
        if answer_ttl is not None else []
    authority = [dns.rrset.from_text("example.", soa[0], "IN", "SOA",
                                     f"ns.example. h.example. 1 2 3 4 {soa[1]}")] if soa else []
    return Result(rcode, answer, authority, [])


def test_cache_ages_ttls_and_expires():
    now = [100.0]
    cache = Cache(clock=lambda: now[0])
    key = ("a.example.", T.A, 1, False)
    cache.put(key, result(answer_ttl=30))
    now[0] += 12.5
    assert cache.get(key).answer[0].ttl == 18
    now[0] += 18
    assert cache.get(key) is None


def test_cache_denials_servfail_and_capacity():
    now = [0.0]
    cache = Cache(capacity=2, clock=lambda: now[0])
    nx = ("n.example.", T.A, 1, False)
    cache.put(nx, result(dns.rcode.NXDOMAIN, soa=(300, 20)))   # min(SOA TTL, minimum): 20 s
    now[0] = 19
    assert cache.get(nx).rcode == dns.rcode.NXDOMAIN
    now[0] = 20
    assert cache.get(nx) is None
    cache.put(("f.example.", T.A, 1, False), result(dns.rcode.SERVFAIL))
    cache.put(("z.example.", T.A, 1, False), result(answer_ttl=0))
    assert len(cache) == 0
    for name in ("a.", "b.", "c."):
        cache.put((name, T.A, 1, False), result(answer_ttl=60))
    assert len(cache) == 2 and cache.get(("a.", T.A, 1, False)) is None


def test_memo_follows_generation_and_lifetime():
    generation, now = [0], [0.0]
    memo = Memo(lambda: generation[0], clock=lambda: now[0])
    query = dns.message.make_query("web.default.svc.cluster.local.", "A").to_wire()
    response = query + b"answer"   # a response begins with its question
    memo.put(query, True, 0, response)
    other_id = b"\x12\x34" + query[2:]
    assert memo.get(other_id, True) == b"\x12\x34" + response[2:]
    assert memo.get(other_id, False) is None        # TCP answers are not UDP answers
    # Another spelling of the name (DNS 0x20) shares it and reads its own name back.
    mixed = dns.message.make_query("WEB.Default.svc.cluster.local.", "A", id=7).to_wire()
    assert memo.get(mixed, True) == mixed + b"answer"
    now[0] = 0.99
    assert memo.get(query, True) is not None
    generation[0] = 1
    assert memo.get(query, True) is None             # the cluster changed
    memo.put(query, True, 1, response)
    now[0] = 2.0
    assert memo.get(query, True) is None             # a second at most


def test_handler_bad_input():
    from clusterdns.forward import Forwarder
    from clusterdns.handler import Handler
    handler = Handler(Zone(DictView()), Forwarder([]))
    garbage = b"\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07trunc"
    reply = dns.message.from_wire(handler.handle(garbage, udp=True, network=True))
    assert reply.id == 0xBEEF and reply.rcode() == dns.rcode.FORMERR
    assert handler.handle(b"\x00\x01", udp=True, network=True) is None   # not even a header
    response = dns.message.make_query("x.example.", "A")
    response.flags |= dns.flags.QR
    assert handler.handle(response.to_wire(), udp=True, network=False) is None  # never answered
    chaos = dns.message.make_query("web.default.svc.cluster.local.", "TXT", rdclass="CH")
    reply = dns.message.from_wire(handler.handle(chaos.to_wire(), udp=True, network=True))
    assert reply.rcode() == dns.rcode.REFUSED
    # No upstream answers: SERVFAIL, and not kept for the next asker.
    query = dns.message.make_query("x.example.", "A").to_wire()
    with pytest.raises(NeedsNetwork):
        handler.handle(query, udp=True, network=False)
    reply = dns.message.from_wire(handler.handle(query, udp=True, network=True))
    assert reply.rcode() == dns.rcode.SERVFAIL
    with pytest.raises(NeedsNetwork):
        handler.handle(query, udp=True, network=False)
