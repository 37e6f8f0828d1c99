"""The syncer's rules carry real traffic: pods (network namespaces on a bridge, busybox httpd
answering their names) behind Services given as the API server's objects, rules written into a
table of the test's own through libnftables. No API server here: test_proxy_e2e.py has it."""
from __future__ import annotations

import re
import secrets
from collections import Counter

import pytest

from proxy.model import service_ports
from proxy_testlib import (connect_error, endpoint_slice, get, get_many, list_table, nodeport,
                           service, table_exists)
from testlib.waiting import wait_for

pytestmark = pytest.mark.root


def _ports(svc: dict, *slices: dict):
    return service_ports(svc, list(slices))


def _key(svc: dict) -> str:
    return f"{svc['metadata']['namespace']}/{svc['metadata']['name']}"


def _backends(podnet, count: int = 3):
    return [podnet.add_pod(f"web-{i}") for i in range(count)]


def test_clusterip_spreads_over_every_ready_backend(podnet, make_syncer):
    pods = _backends(podnet)
    client = podnet.add_pod("client", serve=False)
    svc = service("web", podnet.service_ip())
    syncer = make_syncer(cluster_cidrs=(podnet.subnet,))
    syncer.full_sync({_key(svc): _ports(svc, endpoint_slice("web", pods))})

    answers = Counter(get_many(svc["spec"]["clusterIP"], 300, netns=client.netns))
    assert set(answers) == {p.name for p in pods}
    for name, n in answers.items():
        assert 0.20 <= n / 300 <= 0.47, answers
    # From the node itself too (the output hook).
    assert get(svc["spec"]["clusterIP"]) in {p.name for p in pods}


def test_client_ip_affinity_pins_one_backend(podnet, make_syncer):
    pods = _backends(podnet)
    client = podnet.add_pod("client", serve=False)
    svc = service("sticky", podnet.service_ip(), sessionAffinity="ClientIP",
                  sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    syncer = make_syncer(cluster_cidrs=(podnet.subnet,))
    syncer.full_sync({_key(svc): _ports(svc, endpoint_slice("sticky", pods))})

    answers = set(get_many(svc["spec"]["clusterIP"], 30, netns=client.netns))
    assert len(answers) == 1
    assert "timeout 1m" in list_table(syncer.opts.table)


def test_no_endpoints_refuses_at_once(podnet, make_syncer):
    client = podnet.add_pod("client", serve=False)
    pod = podnet.add_pod("web-0")
    svc = service("empty", podnet.service_ip())
    syncer = make_syncer(cluster_cidrs=(podnet.subnet,))
    syncer.full_sync({_key(svc): _ports(svc)})
    ip = svc["spec"]["clusterIP"]
    # Refused (a reject), never a timeout: the client learns at once.
    assert connect_error(ip, netns=client.netns) is ConnectionRefusedError
    assert connect_error(ip) is ConnectionRefusedError
    # A port the Service does not have is refused as well (cluster-ips-check).
    assert connect_error(ip, port=81, netns=client.netns) is ConnectionRefusedError

    syncer.sync({_key(svc): _ports(svc, endpoint_slice("empty", [pod]))})
    assert get(ip, netns=client.netns) == "web-0"


def test_only_not_ready_endpoints_is_no_endpoint(podnet, make_syncer):
    client = podnet.add_pod("client", serve=False)
    pod = podnet.add_pod("web-0")
    svc = service("unready", podnet.service_ip())
    syncer = make_syncer()
    syncer.full_sync({_key(svc): _ports(svc, endpoint_slice("unready", [pod],
                                                              not_ready=("web-0",)))})
    assert connect_error(svc["spec"]["clusterIP"], netns=client.netns) is ConnectionRefusedError


def test_terminating_endpoints_serve_only_when_none_is_ready(podnet, make_syncer):
    client = podnet.add_pod("client", serve=False)
    old, new = podnet.add_pod("old"), podnet.add_pod("new")
    svc = service("rolling", podnet.service_ip())
    ip = svc["spec"]["clusterIP"]
    syncer = make_syncer()
    syncer.full_sync({_key(svc): _ports(svc, endpoint_slice(
        "rolling", [old, new], terminating=("old",), not_ready=("new",)))})
    assert set(get_many(ip, 10, netns=client.netns)) == {"old"}
    syncer.sync({_key(svc): _ports(svc, endpoint_slice("rolling", [old, new],
                                                       terminating=("old",)))})
    assert set(get_many(ip, 10, netns=client.netns)) == {"new"}


def test_hairpin_a_pod_reaches_itself_through_its_service(podnet, make_syncer):
    pod = podnet.add_pod("self")
    svc = service("hairpin", podnet.service_ip())
    syncer = make_syncer(cluster_cidrs=(podnet.subnet,))
    syncer.full_sync({_key(svc): _ports(svc, endpoint_slice("hairpin", [pod]))})
    assert get(svc["spec"]["clusterIP"], netns=pod.netns) == "self"


def test_nodeport_from_the_host_and_from_a_pod(podnet, make_syncer):
    pods = _backends(podnet, 2)
    client = podnet.add_pod("client", serve=False)
    port = nodeport()
    svc = service("np", podnet.service_ip(), type_="NodePort", node_port=port)
    syncer = make_syncer(cluster_cidrs=(podnet.subnet,), nodeport_ips=(podnet.gateway,))
    syncer.full_sync({_key(svc): _ports(svc, endpoint_slice("np", pods))})
    names = {p.name for p in pods}
    assert set(get_many(podnet.gateway, 20, port=port)) == names
    assert get(podnet.gateway, port=port, netns=client.netns) in names


def test_external_traffic_policy_local(podnet, make_syncer):
    here, there = podnet.add_pod("here", node="n1"), podnet.add_pod("there", node="n2")
    client = podnet.add_pod("client", serve=False)
    port = nodeport()
    svc = service("local", podnet.service_ip(), type_="NodePort", node_port=port,
                  externalTrafficPolicy="Local")
    syncer = make_syncer(node_name="n1", cluster_cidrs=(podnet.subnet,),
                         nodeport_ips=(podnet.gateway,))
    syncer.full_sync({_key(svc): _ports(svc, endpoint_slice("local", [here, there]))})
    # Outside traffic only to this node's endpoint; the ClusterIP still to both.
    rules = list_table(syncer.opts.table)
    local_chain = rules[rules.index("chain local-"):].split("}")[0]
    assert here.ip in local_chain and there.ip not in local_chain
    # The node itself and pods are short-circuited to every endpoint, as kube-proxy does.
    assert set(get_many(podnet.gateway, 20, port=port)) == {"here", "there"}
    assert set(get_many(svc["spec"]["clusterIP"], 20, netns=client.netns)) == {"here", "there"}

    # No local endpoint: NodePort traffic from outside is dropped, not rejected.
    syncer.sync({_key(svc): _ports(svc, endpoint_slice("local", [there]))})
    assert f"tcp . {port} comment \"default/local:http\" : drop" in list_table(
        syncer.opts.table)


def test_internal_traffic_policy_local(podnet, make_syncer):
    here, there = podnet.add_pod("here", node="n1"), podnet.add_pod("there", node="n2")
    client = podnet.add_pod("client", serve=False)
    svc = service("itp", podnet.service_ip(), internalTrafficPolicy="Local")
    syncer = make_syncer(node_name="n1")
    syncer.full_sync({_key(svc): _ports(svc, endpoint_slice("itp", [here, there]))})
    assert set(get_many(svc["spec"]["clusterIP"], 20, netns=client.netns)) == {"here"}


def test_deleting_the_service_removes_every_rule_it_had(podnet, make_syncer):
    pods = _backends(podnet, 2)
    keep = service("keep", podnet.service_ip())
    gone = service("gone", podnet.service_ip(), type_="NodePort", node_port=nodeport(),
                   sessionAffinity="ClientIP")
    syncer = make_syncer(cluster_cidrs=(podnet.subnet,))
    syncer.full_sync({_key(keep): _ports(keep, endpoint_slice("keep", pods))})
    before = list_table(syncer.opts.table)
    syncer.sync({_key(gone): _ports(gone, endpoint_slice("gone", pods))})
    with_gone = list_table(syncer.opts.table)
    assert "default/gone" in with_gone and gone["spec"]["clusterIP"] in with_gone

    syncer.sync({_key(gone): []})
    after = list_table(syncer.opts.table)
    assert after == before
    assert "default/gone" not in after and gone["spec"]["clusterIP"] not in after


def test_one_service_change_is_one_transaction_of_its_own_chains(podnet, make_syncer):
    pods = _backends(podnet, 3)
    svcs = [service(f"s{i}", podnet.service_ip()) for i in range(5)]
    syncer = make_syncer(cluster_cidrs=(podnet.subnet,))
    syncer.full_sync({_key(s): _ports(s, endpoint_slice(s["metadata"]["name"], pods))
                      for s in svcs})
    runs = syncer.stats.transactions
    changed = svcs[2]
    syncer.sync({_key(changed): _ports(changed, endpoint_slice("s2", pods[:2]))})
    assert syncer.stats.transactions == runs + 1
    text = syncer.stats.last_transaction
    touched = set(re.findall(r"(?:chain|rule) ip \S+ (\S+)", text))
    assert touched and all("default/s2/" in c for c in touched), touched
    assert "default/s0/" not in text and "default/s4/" not in text
    # The change took: s2 answers from the two endpoints left, the others from all three.
    assert set(get_many(changed["spec"]["clusterIP"], 30)) == {"web-0", "web-1"}
    assert set(get_many(svcs[0]["spec"]["clusterIP"], 30)) == {p.name for p in pods}
    # Nothing changed: no transaction at all.
    assert not syncer.sync({_key(changed): _ports(changed, endpoint_slice("s2", pods[:2]))})
    assert syncer.stats.transactions == runs + 1


def test_full_sync_replaces_what_a_previous_run_left(podnet, make_syncer):
    pods = _backends(podnet, 1)
    stale = service("stale", podnet.service_ip())
    fresh = service("fresh", podnet.service_ip())
    first = make_syncer()
    first.full_sync({_key(stale): _ports(stale, endpoint_slice("stale", pods))})
    assert get(stale["spec"]["clusterIP"]) == "web-0"

    # A new process (a new Syncer, knowing nothing) starts over the old table.
    second = make_syncer()
    second.full_sync({_key(fresh): _ports(fresh, endpoint_slice("fresh", pods))})
    rules = list_table(second.opts.table)
    assert "default/stale" not in rules and stale["spec"]["clusterIP"] not in rules
    assert get(fresh["spec"]["clusterIP"]) == "web-0"
    second.cleanup()
    assert not table_exists(second.opts.table)


def test_old_kernel_path_flushes_then_deletes_stale_chains(podnet, make_syncer):
    pods = _backends(podnet, 2)
    svc = service("old", podnet.service_ip())
    syncer = make_syncer()
    syncer.delete_chains_at_once = False  # as on kernels before 6.2
    syncer.full_sync({_key(svc): _ports(svc, endpoint_slice("old", pods))})
    syncer.sync({_key(svc): _ports(svc, endpoint_slice("old", pods[:1]))})
    assert pods[1].ip in list_table(syncer.opts.table)  # its endpoint chain, flushed, waits
    assert set(get_many(svc["spec"]["clusterIP"], 10)) == {"web-0"}
    syncer.delete_stale(now=float("inf"))
    assert pods[1].ip not in list_table(syncer.opts.table)


def _entries(protocol: int, daddr: str, saddr: str | None = None) -> list:
    """The conntrack entries whose original tuple has this protocol, destination and source,
    filtered by the kernel: the whole table, parsed by pyroute2 at about 0.5 ms an entry,
    takes seconds under CI's load."""
    from pyroute2 import Conntrack
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple
    with Conntrack() as ct:
        return list(ct.dump_entries(tuple_orig=NFCTAttrTuple(proto=protocol, daddr=daddr,
                                                             saddr=saddr)))


def _udp_flows(cluster_ip: str) -> dict[int, str]:
    """Source port -> the endpoint of each UDP conntrack entry to `cluster_ip`."""
    import socket as _socket
    return {e.tuple_orig.sport: e.tuple_reply.saddr
            for e in _entries(_socket.IPPROTO_UDP, cluster_ip)}


def test_udp_flows_of_a_removed_endpoint_are_cleared(podnet, make_syncer):
    import socket as _socket

    from netkit import EchoServer
    from netns import enter
    from proxy_testlib import HTTP_PORT

    pods = [podnet.add_pod(f"dns-{i}", serve=False) for i in range(2)]
    servers = [EchoServer(p.netns, p.ip, "udp", HTTP_PORT) for p in pods]
    client = podnet.add_pod("client", serve=False)
    try:
        svc = service("dns", podnet.service_ip(), protocol="UDP")
        ip = svc["spec"]["clusterIP"]
        syncer = make_syncer(cluster_cidrs=(podnet.subnet,))
        syncer.full_sync({_key(svc): _ports(svc, endpoint_slice("dns", pods, protocol="UDP"))})
        sock = enter.run_in_netns(client.netns, lambda: _socket.socket(_socket.AF_INET,
                                                                          _socket.SOCK_DGRAM))
        with sock:
            sock.settimeout(5)
            sock.bind((client.ip, 0))
            port = sock.getsockname()[1]
            sock.sendto(b"q", (ip, 80))
            assert sock.recvfrom(100)[0].startswith(b"echo:q")
            first = _udp_flows(ip)[port]
            left = [p for p in pods if p.ip != first]
            syncer.sync({_key(svc): _ports(svc, endpoint_slice("dns", left, protocol="UDP"))})
            assert syncer.stats.conntrack_deleted >= 1
            assert port not in _udp_flows(ip)
            # The same client socket now reaches the endpoint that is left.
            sock.sendto(b"q", (ip, 80))
            assert sock.recvfrom(100)[0].startswith(b"echo:q")
            assert _udp_flows(ip)[port] == left[0].ip
    finally:
        for server in servers:
            server.close()


def _unnatted_tcp_flows(cluster_ip: str) -> set[int]:
    """The source ports of the TCP conntrack entries to `cluster_ip` that met no DNAT."""
    import socket as _socket
    return {e.tuple_orig.sport for e in _entries(_socket.IPPROTO_TCP, cluster_ip)
            if e.tuple_reply.saddr == cluster_ip}


@pytest.mark.parametrize("programmed_by", ["sync", "full_sync"])
def test_a_tcp_flow_that_came_before_its_service_does_not_refuse_the_port_later(
        podnet, make_syncer, programmed_by):
    """A client that tried a ClusterIP before the proxy had its rules left a conntrack entry
    without DNAT (SYN_SENT, 120 s): the next connection from the same source port, within
    that time, was not DNATed either and met the reject of unknown ClusterIP ports."""
    import socket as _socket

    from netns import enter

    pod = podnet.add_pod("web-0")
    client = podnet.add_pod("client", serve=False)
    svc = service("late", podnet.service_ip())
    ip = svc["spec"]["clusterIP"]
    syncer = make_syncer(cluster_cidrs=(podnet.subnet,))
    syncer.full_sync({})

    def connect(port: int, timeout: float) -> str:
        def attempt() -> str:
            with _socket.socket() as s:
                s.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
                s.bind((client.ip, port))
                s.settimeout(timeout)
                try:
                    s.connect((ip, 80))
                except OSError as e:
                    return type(e).__name__
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                return s.makefile("rb").read().decode().rsplit("\n", 1)[-1]
        return enter.run_in_netns(client.netns, attempt)

    port = 40000 + secrets.randbelow(20000)
    assert connect(port, 0.5) in ("timeout", "TimeoutError")  # nothing answers it yet
    # The SYN may still wait for the gateway's address when the connect gives up.
    wait_for(lambda: port in _unnatted_tcp_flows(ip), timeout=10, what="the un-DNATed flow")
    ports = _ports(svc, endpoint_slice("late", [pod]))
    if programmed_by == "sync":
        syncer.sync({_key(svc): ports})
    else:
        make_syncer(cluster_cidrs=(podnet.subnet,)).full_sync({_key(svc): ports})
    assert port not in _unnatted_tcp_flows(ip)
    assert connect(port, 5) == "web-0"


def _reply_destination(cluster_ip: str, client_ip: str) -> str:
    """Where the backend answered the last TCP flow from `client_ip` to `cluster_ip`: the
    client itself, or the node's address when the flow was masqueraded."""
    import socket as _socket
    found = [e.tuple_reply.daddr for e in _entries(_socket.IPPROTO_TCP, cluster_ip, client_ip)]
    assert found, "no conntrack entry"
    return found[-1]


def test_masquerade_only_traffic_from_outside_the_cluster_cidr(podnet, make_syncer):
    pod = podnet.add_pod("web-0")
    client = podnet.add_pod("client", serve=False)
    inside, outside = service("in", podnet.service_ip()), service("out", podnet.service_ip())
    slices = endpoint_slice("in", [pod]), endpoint_slice("out", [pod])
    pods_here = make_syncer(cluster_cidrs=(podnet.subnet,))
    pods_here.full_sync({_key(inside): _ports(inside, slices[0])})
    assert get(inside["spec"]["clusterIP"], netns=client.netns) == "web-0"
    assert _reply_destination(inside["spec"]["clusterIP"], client.ip) == client.ip

    # The same client, now outside the --cluster-cidr (a machine routing to the node).
    pods_elsewhere = make_syncer(cluster_cidrs=("198.18.0.0/31",))
    pods_elsewhere.full_sync({_key(outside): _ports(outside, slices[1])})
    assert get(outside["spec"]["clusterIP"], netns=client.netns) == "web-0"
    assert _reply_destination(outside["spec"]["clusterIP"], client.ip) == podnet.gateway
