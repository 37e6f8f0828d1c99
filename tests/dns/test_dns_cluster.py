"""pykube-dns against the real pyapiserver: Services, EndpointSlices and Namespaces created
through the API, queries with dnspython (and dig when installed) to the process on loopback,
names outside the cluster forwarded to a fake upstream resolver the test runs on loopback."""
from __future__ import annotations

import shutil
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.reversename
import pytest

from controllers.fresh_read import fresh_read
from dns_testlib import BIN, DnsProcess, addresses, query, wait_for

ZONE = "cluster.local"


def svc_name(name: str, ns: str) -> str:
    return f"{name}.{ns}.svc.{ZONE}"


def create_service(client, ns: str, name: str, spec: dict) -> dict:
    return client.create(f"/api/v1/namespaces/{ns}/services",
                         {"metadata": {"name": name}, "spec": spec})


def create_slice(client, ns: str, service: str, endpoints: list[dict], ports: list[dict],
                 address_type: str = "IPv4") -> dict:
    body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service}-{uuid.uuid4().hex[:5]}",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": address_type, "endpoints": endpoints, "ports": ports}
    return client.create(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", body)


def resolved(port: int, name: str, rdtype: str = "A"):
    """The response once the name exists (the server sees objects through a watch)."""
    def ok():
        r = query(port, name, rdtype)
        return r if r.rcode() == dns.rcode.NOERROR and r.answer else None
    return wait_for(ok, what=f"{name} {rdtype} answered")


def soa_only(r: dns.message.Message) -> bool:
    return not r.answer and [rr.rdtype for rr in r.authority] == [dns.rdatatype.SOA] and \
        r.authority[0].name.to_text() == ZONE + "."


@pytest.fixture
def web(client, namespace):
    """A ClusterIP Service with two named ports."""
    svc = create_service(client, namespace, "web", {
        "selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                  {"name": "dns", "port": 53, "protocol": "UDP"}]})
    return svc["spec"]["clusterIP"]


def test_service_a_record(dns_server, namespace, web):
    r = resolved(dns_server.port, svc_name("web", namespace))
    assert addresses(r) == {web}
    assert r.answer[0].ttl == 5
    assert r.flags & dns.flags.AA
    # Names are case-insensitive; the answer keeps the question's case.
    upper = query(dns_server.port, svc_name("WEB", namespace).upper())
    assert addresses(upper) == {web}
    assert upper.answer[0].name.to_text() == svc_name("WEB", namespace).upper() + "."


def test_nodata_for_other_types(dns_server, namespace, web):
    resolved(dns_server.port, svc_name("web", namespace))
    for rdtype in ("AAAA", "MX", "PTR"):
        r = query(dns_server.port, svc_name("web", namespace), rdtype)
        assert r.rcode() == dns.rcode.NOERROR, rdtype
        assert soa_only(r), rdtype
    # The namespace alone exists with no records: NODATA too.
    assert soa_only(query(dns_server.port, f"{namespace}.svc.{ZONE}"))


def test_nxdomain(dns_server, namespace, web):
    resolved(dns_server.port, svc_name("web", namespace))
    for name in (svc_name("nothere", namespace), svc_name("web", "no-such-ns"),
                 f"web.{namespace}.other.{ZONE}", f"a.b.c.web.{namespace}.svc.{ZONE}",
                 f"_nope._tcp.web.{namespace}.svc.{ZONE}"):
        r = query(dns_server.port, name)
        assert r.rcode() == dns.rcode.NXDOMAIN, name
        assert soa_only(r), name
        assert r.flags & dns.flags.AA


def test_soa_ns_and_schema_version(dns_server):
    soa = query(dns_server.port, ZONE, "SOA")
    rd = soa.answer[0][0]
    assert (rd.mname.to_text(), rd.rname.to_text()) == (f"ns.dns.{ZONE}.", f"hostmaster.{ZONE}.")
    assert (rd.refresh, rd.retry, rd.expire, rd.minimum) == (7200, 1800, 86400, 5)
    ns = query(dns_server.port, ZONE, "NS")
    assert ns.answer[0][0].target.to_text() == f"ns.dns.{ZONE}."
    txt = query(dns_server.port, f"dns-version.{ZONE}", "TXT")
    assert txt.answer[0][0].strings == (b"1.1.0",)


def test_srv_for_named_ports(dns_server, namespace, web):
    resolved(dns_server.port, svc_name("web", namespace))
    r = query(dns_server.port, f"_http._tcp.web.{namespace}.svc.{ZONE}", "SRV")
    (srv,) = r.answer[0]
    assert (srv.priority, srv.weight, srv.port) == (0, 100, 80)
    assert srv.target.to_text() == svc_name("web", namespace) + "."
    assert {rd.to_text() for rrset in r.additional for rd in rrset} == {web}
    udp = query(dns_server.port, f"_dns._udp.web.{namespace}.svc.{ZONE}", "SRV")
    assert [rd.port for rd in udp.answer[0]] == [53]
    both = query(dns_server.port, svc_name("web", namespace), "SRV")
    assert sorted((rd.port, rd.weight) for rd in both.answer[0]) == [(53, 50), (80, 50)]
    # A port that the Service does not have: the name does not exist.
    wrong = query(dns_server.port, f"_http._udp.web.{namespace}.svc.{ZONE}", "SRV")
    assert wrong.rcode() == dns.rcode.NXDOMAIN


def test_headless_service_answers_every_ready_endpoint(client, dns_server, namespace):
    create_service(client, namespace, "db", {"clusterIP": "None",
                                             "ports": [{"name": "pg", "port": 5432}]})
    create_slice(client, namespace, "db", [
        {"addresses": ["198.18.10.1"], "conditions": {"ready": True}, "hostname": "db-0"},
        {"addresses": ["198.18.10.2"], "conditions": {"ready": True}},
        {"addresses": ["198.18.10.3"]},                                  # ready unset: ready
        {"addresses": ["198.18.10.4"], "conditions": {"ready": False}},  # not ready: hidden
    ], [{"name": "pg", "port": 5432, "protocol": "TCP"}])
    name = svc_name("db", namespace)
    r = wait_for(lambda: (lambda r: r if len(addresses(r)) == 3 else None)(
        query(dns_server.port, name)), what="three endpoints")
    assert addresses(r) == {"198.18.10.1", "198.18.10.2", "198.18.10.3"}
    assert addresses(query(dns_server.port, f"db-0.{name}")) == {"198.18.10.1"}
    assert addresses(query(dns_server.port, f"198-18-10-2.{name}")) == {"198.18.10.2"}
    assert query(dns_server.port, f"db-9.{name}").rcode() == dns.rcode.NXDOMAIN
    srv = query(dns_server.port, f"_pg._tcp.{name}", "SRV")
    targets = {(rd.target.to_text(), rd.port, rd.weight) for rd in srv.answer[0]}
    assert targets == {(f"db-0.{name}.", 5432, 33), (f"198-18-10-2.{name}.", 5432, 33),
                       (f"198-18-10-3.{name}.", 5432, 33)}
    glue = {(rr.name.to_text(), rd.to_text()) for rr in srv.additional for rd in rr}
    assert (f"db-0.{name}.", "198.18.10.1") in glue and len(glue) == 3


def test_headless_without_ready_endpoints_is_nxdomain(client, dns_server, namespace, web):
    resolved(dns_server.port, svc_name("web", namespace))
    create_service(client, namespace, "empty", {"clusterIP": "None"})
    create_slice(client, namespace, "empty",
                 [{"addresses": ["198.18.11.1"], "conditions": {"ready": False}}], [])
    r = query(dns_server.port, svc_name("empty", namespace))
    assert r.rcode() == dns.rcode.NXDOMAIN   # as CoreDNS: no ready endpoint, no name


def test_ptr_for_cluster_ips_and_endpoints(client, dns_server, namespace, web, upstream):
    create_service(client, namespace, "db", {"clusterIP": "None"})
    create_slice(client, namespace, "db", [
        {"addresses": ["198.18.12.7"], "hostname": "db-0"}], [])
    resolved(dns_server.port, svc_name("db", namespace))
    ptr = query(dns_server.port, dns.reversename.from_address(web).to_text(), "PTR")
    assert [rd.target.to_text() for rd in ptr.answer[0]] == [svc_name("web", namespace) + "."]
    ptr = query(dns_server.port, "7.12.18.198.in-addr.arpa", "PTR")
    assert [rd.target.to_text() for rd in ptr.answer[0]] == [f"db-0.{svc_name('db', namespace)}."]
    # An address the cluster does not know is the upstream's (kubeadm's fallthrough).
    before = upstream.count("9.9.18.198.in-addr.arpa.")
    other = query(dns_server.port, "9.9.18.198.in-addr.arpa", "PTR")
    assert other.rcode() == dns.rcode.NXDOMAIN and not other.flags & dns.flags.AA
    assert upstream.count("9.9.18.198.in-addr.arpa.") == before + 1


def test_pod_records(dns_server, namespace):
    wait_for(lambda: query(dns_server.port, f"{namespace}.pod.{ZONE}").rcode()
             == dns.rcode.NOERROR, what="namespace seen")
    r = query(dns_server.port, f"198-18-0-5.{namespace}.pod.{ZONE}")
    assert addresses(r) == {"198.18.0.5"}
    v6 = query(dns_server.port, f"fd00--5.{namespace}.pod.{ZONE}", "AAAA")
    assert addresses(v6, "AAAA") == {"fd00::5"}
    assert soa_only(query(dns_server.port, f"198-18-0-5.{namespace}.pod.{ZONE}", "AAAA"))
    for bad in (f"198-18-0.{namespace}.pod.{ZONE}", f"not-an-ip.{namespace}.pod.{ZONE}",
                f"198-18-0-5.no-such-ns.pod.{ZONE}"):
        assert query(dns_server.port, bad).rcode() == dns.rcode.NXDOMAIN, bad


def test_external_name_is_a_cname(client, dns_server, namespace, upstream):
    create_service(client, namespace, "ext", {"type": "ExternalName",
                                              "externalName": "target.example"})
    name = svc_name("ext", namespace)
    r = resolved(dns_server.port, name)
    cname, a = r.answer
    assert cname.rdtype == dns.rdatatype.CNAME and cname[0].target.to_text() == "target.example."
    assert a.name.to_text() == "target.example." and addresses(r) == {"198.18.200.2"}
    only = query(dns_server.port, name, "CNAME")
    assert [rr.rdtype for rr in only.answer] == [dns.rdatatype.CNAME]
    assert soa_only(query(dns_server.port, name, "SRV"))


def test_forwarded_names_are_cached(dns_server, upstream):
    first = query(dns_server.port, "external.example")
    assert addresses(first) == {"198.18.200.1"} and first.flags & dns.flags.RA
    assert not first.flags & dns.flags.AA
    asked = upstream.count("external.example.")
    again = query(dns_server.port, "EXTERNAL.example")
    assert addresses(again) == {"198.18.200.1"}
    assert upstream.count("external.example.") == asked   # from the cache
    assert again.answer[0].ttl <= first.answer[0].ttl
    missing = query(dns_server.port, "missing.example")
    assert missing.rcode() == dns.rcode.NXDOMAIN
    assert [rr.rdtype for rr in missing.authority] == [dns.rdatatype.SOA]
    asked = upstream.count("missing.example.")
    assert query(dns_server.port, "missing.example").rcode() == dns.rcode.NXDOMAIN
    assert upstream.count("missing.example.") == asked     # denials are cached too


def test_service_created_later_resolves(client, dns_server, namespace):
    name = svc_name("late", namespace)
    wait_for(lambda: query(dns_server.port, f"{namespace}.svc.{ZONE}").rcode()
             == dns.rcode.NOERROR, what="namespace seen")
    assert query(dns_server.port, name).rcode() == dns.rcode.NXDOMAIN
    ip = create_service(client, namespace, "late", {"ports": [{"port": 80}]})["spec"]["clusterIP"]
    # Watch-driven: the name answers once the event arrives (how soon is
    # bench/dns_qps.py's business; a loaded machine may take seconds).
    r = wait_for(lambda: addresses(query(dns_server.port, name)), timeout=30,
                 what="the new Service answered")
    assert r == {ip}
    client.delete(f"/api/v1/namespaces/{namespace}/services/late")
    wait_for(lambda: query(dns_server.port, name).rcode() == dns.rcode.NXDOMAIN, timeout=30,
             what="the deleted Service gone")


def test_tcp_and_truncation(dns_server, namespace, web):
    resolved(dns_server.port, svc_name("web", namespace))
    r = query(dns_server.port, svc_name("web", namespace), tcp=True)
    assert addresses(r) == {web}
    assert addresses(query(dns_server.port, "external.example", tcp=True)) == {"198.18.200.1"}
    # 20 TXT strings of 63 bytes: more than 512 bytes.
    udp = query(dns_server.port, "big.example", "TXT")
    assert udp.flags & dns.flags.TC and not udp.answer
    tcp = query(dns_server.port, "big.example", "TXT", tcp=True)
    assert not tcp.flags & dns.flags.TC and len(tcp.answer[0]) == 20
    edns = query(dns_server.port, "big.example", "TXT", use_edns=0, payload=4096)
    assert not edns.flags & dns.flags.TC and len(edns.answer[0]) == 20
    # Several queries on one TCP connection (RFC 7766).
    import socket
    with socket.create_connection(("127.0.0.1", dns_server.port), timeout=5) as sock:
        for name in (svc_name("web", namespace), "external.example"):
            dns.query.send_tcp(sock, dns.message.make_query(name, "A"))
            answer, _ = dns.query.receive_tcp(sock)
            assert answer.answer


def test_concurrent_queries(dns_server, namespace, web):
    resolved(dns_server.port, svc_name("web", namespace))
    names = [svc_name("web", namespace), "external.example", f"198-18-0-9.{namespace}.pod.{ZONE}"]
    expect = {names[0]: {web}, names[1]: {"198.18.200.1"}, names[2]: {"198.18.0.9"}}
    jobs = [(names[i % 3], i % 4 == 0) for i in range(120)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda job: (job[0], addresses(query(dns_server.port, job[0],
                                                                      tcp=job[1]))), jobs))
    assert all(got == expect[name] for name, got in results)


@pytest.mark.skipif(not shutil.which("dig"), reason="dig (dnsutils) is not installed")
def test_dig(dns_server, namespace, web):
    resolved(dns_server.port, svc_name("web", namespace))

    def dig(*args: str) -> str:
        return subprocess.run(["dig", "@127.0.0.1", "-p", str(dns_server.port), "+time=5",
                               "+tries=1", *args], capture_output=True, text=True,
                              timeout=30, check=True).stdout

    assert dig("+short", svc_name("web", namespace)).split() == [web]
    assert dig("+short", "SRV", f"_http._tcp.web.{namespace}.svc.{ZONE}").split() == \
        ["0", "100", "80", svc_name("web", namespace) + "."]
    assert dig("+short", "+tcp", "external.example").split() == ["198.18.200.1"]
    assert "status: NXDOMAIN" in dig(svc_name("absent", namespace))
    assert dig("+short", "-x", web).split() == [svc_name("web", namespace) + "."]


def test_node_registers_behind_kube_dns(client, server, upstream):
    """--advertise-address: the node's EndpointSlice of kube-system/kube-dns while it runs."""
    node = "dns-node-" + uuid.uuid4().hex[:6]
    path = f"/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices/kube-dns-{node}"
    d = DnsProcess(server.kubeconfig, "--upstream", f"127.0.0.1:{upstream.port}",
                   "--advertise-address", "127.0.0.1", "--hostname-override", node)
    try:
        slc = wait_for(lambda: fresh_read(client, path), what="the node's EndpointSlice")
        assert slc["metadata"]["labels"]["kubernetes.io/service-name"] == "kube-dns"
        assert slc["endpoints"] == [{"addresses": ["127.0.0.1"], "nodeName": node,
                                     "conditions": {"ready": True, "serving": True,
                                                    "terminating": False}}]
        assert sorted((p["name"], p["protocol"], p["port"]) for p in slc["ports"]) == \
            [("dns", "UDP", d.port), ("dns-tcp", "TCP", d.port)]
    finally:
        d.stop()
    assert d.proc.returncode == 0
    assert fresh_read(client, path) is None


@pytest.mark.parametrize("args, message", [
    (["--listen", "nowhere"], "--listen: 'nowhere' is not address:port"),
    (["--listen", "127.0.0.1:99999"], "--listen: '127.0.0.1:99999' is not address:port"),
    (["--upstream", "dns.example:53"], "--upstream: 'dns.example' is not an IP address"),
    (["--upstream", "127.0.0.1:x"], "--upstream: '127.0.0.1:x' is not host[:port]"),
    (["--listen", "127.0.0.1:5399", "--upstream", "127.0.0.1:5399"],
     "--upstream: 127.0.0.1:5399 is this server's own address"),
    (["--cluster-domain", "a..b"], "--cluster-domain: 'a..b'"),
    (["--ttl", "-1"], "--ttl: -1 is not between 0 and 3600"),
    (["--advertise-address", "node1"], "--advertise-address: 'node1' is not an IP address"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_flags_fail_in_one_line(server, args, message):
    proc = subprocess.run([f"{BIN}/pykube-dns", "--kubeconfig", server.kubeconfig,
                           "--upstream", "127.0.0.1:5300", *args] if "--upstream" not in args
                          else [f"{BIN}/pykube-dns", "--kubeconfig", server.kubeconfig, *args],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pykube-dns: ") and message in lines[0], \
        proc.stderr


def test_missing_kubeconfig_fails_in_one_line(tmp_path):
    proc = subprocess.run([f"{BIN}/pykube-dns", "--kubeconfig", str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"pykube-dns: --kubeconfig: cannot read {tmp_path / 'none'}: No such file or directory"]


def test_short_names_through_the_kubelets_search_path(dns_server, namespace, web):
    """A ClusterFirst pod's resolv.conf as the kubelet writes it (search <ns>.svc.cluster.local
    svc.cluster.local cluster.local, ndots:5), read by a stub resolver pointed at pykube-dns:
    `web`, `web.<ns>` and the full name are the Service; an outside name, after the search
    suffixes' NXDOMAINs, is forwarded."""
    import io

    import dns.resolver

    from kubelet.pods import Pod
    from kubelet.sync.pod_dns import DNSConfig, pod_dns, resolv_conf

    resolved(dns_server.port, svc_name("web", namespace))
    pod = Pod({"metadata": {"name": "client", "namespace": namespace},
               "spec": {"dnsPolicy": "ClusterFirst", "containers": []}})
    text = resolv_conf(pod_dns(pod, DNSConfig(), ["127.0.0.1"], ZONE))
    resolver = dns.resolver.Resolver(filename=io.StringIO(text))
    resolver.port = dns_server.port
    resolver.lifetime = 10
    assert resolver.ndots == 5
    for short in ("web", f"web.{namespace}", f"web.{namespace}.svc", svc_name("web", namespace)):
        answer = resolver.resolve(short, "A", search=True)
        assert {rd.to_text() for rd in answer} == {web}, short
        assert answer.qname.to_text() == svc_name("web", namespace) + "."
    answer = resolver.resolve("external.example", "A", search=True)
    assert answer.qname.to_text() == "external.example."
    assert {rd.to_text() for rd in answer} == {"198.18.200.1"}
