"""The proxy's pieces without the kernel: names and rules as kube-proxy's nftables mode writes
them (its proxier_test.go expectations), the endpoint choice, the syncer's transactions
recorded instead of run, the configuration file and the command line's refusals."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from proxy import config
from proxy.model import Endpoint, ServicePort, choose_endpoints, service_ports
from proxy.rules import ProxyOptions, hash_name, service_rules
from proxy.syncer import Syncer

BIN = os.path.dirname(sys.executable)


def _svc(name="svc1", ns="ns1", ip="172.30.0.41", **spec):
    body = {"clusterIP": ip, "type": "ClusterIP",
            "ports": [{"name": "p80", "port": 80, "protocol": "TCP"}]}
    body.update(spec)
    return {"metadata": {"name": name, "namespace": ns}, "spec": body}


def _slice(svc="svc1", ns="ns1", endpoints=(("10.180.0.1", None, True, False),), name=""):
    return {"metadata": {"name": name or f"{svc}-x", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "ports": [{"name": "p80", "port": 80, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "nodeName": node,
                           "conditions": {"ready": ready, "serving": True,
                                          "terminating": term}}
                          for ip, node, ready, term in endpoints]}


def test_names_hash_as_kube_proxys():
    assert hash_name("service", "ns1/svc1/tcp/p80") == "service-ULMVA6XW-ns1/svc1/tcp/p80"
    assert hash_name("endpoint", "ns1/svc1/tcp/p80__10.180.0.1/80") == \
        "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
    long = hash_name("service", "x" * 400)
    assert len(long) < 256 and long.endswith("...")


def test_clusterip_rules_as_kube_proxys_svc1():
    rules = service_rules(service_ports(_svc(), [_slice()]),
                          ProxyOptions(cluster_cidrs=("10.0.0.0/8",)))
    assert rules.chains == {
        "service-ULMVA6XW-ns1/svc1/tcp/p80": (
            "ip daddr 172.30.0.41 tcp dport 80 ip saddr != { 10.0.0.0/8 } "
            "jump mark-for-masquerade",
            "numgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__"
            "10.180.0.1/80 }"),
        "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80": (
            "ip saddr 10.180.0.1 jump mark-for-masquerade",
            "meta l4proto tcp dnat to 10.180.0.1:80"),
    }
    assert {(e.container, e.key, e.value) for e in rules.elements.values()} == {
        ("cluster-ips", "172.30.0.41", ""),
        ("service-ips", "172.30.0.41 . tcp . 80", "goto service-ULMVA6XW-ns1/svc1/tcp/p80")}


def test_no_endpoints_is_a_reject_and_no_chain():
    rules = service_rules(service_ports(_svc(type="NodePort", ports=[
        {"name": "p80", "port": 80, "protocol": "TCP", "nodePort": 30001}]), []),
        ProxyOptions())
    assert rules.chains == {}
    assert {(e.container, e.key, e.value, e.comment) for e in rules.elements.values()} == {
        ("cluster-ips", "172.30.0.41", "", ""),
        ("no-endpoint-services", "172.30.0.41 . tcp . 80", "goto reject-chain", "ns1/svc1:p80"),
        ("no-endpoint-nodeports", "tcp . 30001", "goto reject-chain", "ns1/svc1:p80")}


def test_external_local_without_local_endpoints_drops_external_traffic():
    svc = _svc(type="LoadBalancer", externalTrafficPolicy="Local", externalIPs=["192.168.99.22"],
               ports=[{"name": "p80", "port": 80, "protocol": "TCP", "nodePort": 3001}])
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    rules = service_rules(service_ports(svc, [_slice()]),
                          ProxyOptions(node_name="me", cluster_cidrs=("10.0.0.0/8",)))
    external = rules.chains["external-ULMVA6XW-ns1/svc1/tcp/p80"]
    assert external == (
        "ip saddr { 10.0.0.0/8 } goto service-ULMVA6XW-ns1/svc1/tcp/p80 "
        'comment "short-circuit pod traffic"',
        'fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"',
        "fib saddr type local goto service-ULMVA6XW-ns1/svc1/tcp/p80 "
        'comment "short-circuit local traffic"')
    drops = {(e.container, e.key) for e in rules.elements.values() if e.value == "drop"}
    assert drops == {("no-endpoint-services", "192.168.99.22 . tcp . 80"),
                     ("no-endpoint-services", "1.2.3.4 . tcp . 80"),
                     ("no-endpoint-nodeports", "tcp . 3001")}
    assert not any(c.startswith("local-") for c in rules.chains)


def test_internal_local_goes_to_the_local_chain_only():
    slices = [_slice(endpoints=(("10.180.0.1", "me", True, False),
                                ("10.180.0.2", "other", True, False)))]
    rules = service_rules(service_ports(_svc(internalTrafficPolicy="Local"), slices),
                          ProxyOptions(node_name="me"))
    assert set(rules.chains) == {"local-ULMVA6XW-ns1/svc1/tcp/p80",
                                 hash_name("endpoint", "ns1/svc1/tcp/p80__10.180.0.1/80")}
    # No local endpoint: the ClusterIP drops (others have endpoints), it does not reject.
    rules = service_rules(service_ports(_svc(internalTrafficPolicy="Local"), slices),
                          ProxyOptions(node_name="elsewhere"))
    assert rules.elements[("no-endpoint-services", "172.30.0.41 . tcp . 80")].value == "drop"


def test_affinity_sets_per_endpoint_with_the_services_timeout():
    svc = _svc(sessionAffinity="ClientIP",
               sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}})
    rules = service_rules(service_ports(svc, [_slice()]), ProxyOptions())
    name = hash_name("affinity", "ns1/svc1/tcp/p80__10.180.0.1/80")
    assert rules.sets == {name: "{ type ipv4_addr ; flags dynamic,timeout ; timeout 600s ; }"}
    chain = rules.chains["service-ULMVA6XW-ns1/svc1/tcp/p80"]
    assert chain[0] == f"ip saddr @{name} goto " + hash_name(
        "endpoint", "ns1/svc1/tcp/p80__10.180.0.1/80")
    assert f"update @{name} {{ ip saddr }}" in rules.chains[hash_name(
        "endpoint", "ns1/svc1/tcp/p80__10.180.0.1/80")]
    default = service_ports(_svc(sessionAffinity="ClientIP"), [])[0]
    assert default.affinity_timeout == 10800


def test_endpoint_choice_ready_then_serving_terminating():
    eps = (Endpoint("10.0.0.1", 80, ready=False, serving=True, terminating=True),
           Endpoint("10.0.0.2", 80, ready=True),
           Endpoint("10.0.0.3", 80, ready=False, serving=False))
    sp = ServicePort("ns", "s", "", "tcp", 80, "10.96.0.1", endpoints=eps)
    assert [e.ip for e in choose_endpoints(sp, "").cluster] == ["10.0.0.2"]
    sp = ServicePort("ns", "s", "", "tcp", 80, "10.96.0.1", endpoints=(eps[0], eps[2]))
    assert [e.ip for e in choose_endpoints(sp, "").cluster] == ["10.0.0.1"]
    sp = ServicePort("ns", "s", "", "tcp", 80, "10.96.0.1", endpoints=(eps[2],))
    assert not choose_endpoints(sp, "").any_usable


def test_model_reads_only_what_it_can_program():
    assert service_ports(_svc(ip="None"), []) == []                       # headless
    assert service_ports(_svc(type="ExternalName", externalName="x.y"), []) == []
    assert service_ports(_svc(ip="fd00::1"), []) == []                    # IPv6: not ours
    v6 = dict(_slice(), addressType="IPv6")
    twice = [_slice(name="a"), _slice(name="b")]
    assert service_ports(_svc(), [v6])[0].endpoints == ()
    assert len(service_ports(_svc(), twice)[0].endpoints) == 1
    # Unset conditions: ready.
    bare = _slice()
    del bare["endpoints"][0]["conditions"]
    assert service_ports(_svc(), [bare])[0].endpoints[0].ready


class Recorder:
    def __init__(self):
        self.texts: list[str] = []

    def __call__(self, text: str) -> str:
        self.texts.append(text)
        return ""


def test_syncer_transactions_order_and_scope():
    rec = Recorder()
    syncer = Syncer(ProxyOptions(table="t"), rec, clear_conntrack=lambda flows: 0,
                    delete_chains_at_once=True)
    two = [("10.180.0.1", None, True, False), ("10.180.0.2", None, True, False)]
    syncer.full_sync({"ns1/svc1": service_ports(_svc(), [_slice(endpoints=two)]),
                      "ns1/other": service_ports(_svc("other", ip="172.30.0.9"),
                                                 [_slice("other")])})
    assert len(rec.texts) == 1 and rec.texts[0].startswith("add table ip t\ndelete table ip t\n")
    syncer.sync({"ns1/svc1": service_ports(_svc(), [_slice()])})
    assert len(rec.texts) == 2
    lines = rec.texts[1].splitlines()
    assert all("ns1/svc1/" in line for line in lines), lines
    gone = hash_name("endpoint", "ns1/svc1/tcp/p80__10.180.0.2/80")
    assert lines[-1] == f"delete chain ip t {gone}"
    assert lines.index(f"flush chain ip t {gone}") < lines.index(f"delete chain ip t {gone}")
    # Deleting: elements first, chains after.
    syncer.sync({"ns1/svc1": []})
    lines = rec.texts[2].splitlines()
    first_chain_delete = min(i for i, line in enumerate(lines) if line.startswith("delete chain"))
    assert all(i < first_chain_delete for i, line in enumerate(lines)
               if line.startswith("delete element"))
    assert "ns1/other" not in rec.texts[2]


def test_syncer_clears_udp_flows_of_removed_endpoints():
    flows = []
    syncer = Syncer(ProxyOptions(table="t"), Recorder(), clear_conntrack=lambda f: flows.extend(f)
                    or len(f))
    udp = _svc(ports=[{"name": "p80", "port": 53, "protocol": "UDP"}])
    eps = _slice(endpoints=(("10.180.0.1", None, True, False), ("10.180.0.2", None, True, False)))
    for e in eps["ports"]:
        e.update(protocol="UDP", port=53)
    syncer.full_sync({"ns1/svc1": service_ports(udp, [eps])})
    # Programmed with endpoints: the flows that met no DNAT go, as they would for TCP.
    assert [(f.dest_ip, f.port, f.endpoint_ip, f.protocol) for f in flows] == [
        ("172.30.0.41", 53, "172.30.0.41", "udp")]
    flows.clear()
    eps["endpoints"].pop()
    syncer.sync({"ns1/svc1": service_ports(udp, [eps])})
    assert [(f.dest_ip, f.port, f.endpoint_ip) for f in flows] == [("172.30.0.41", 53,
                                                                    "10.180.0.2")]


def test_config_file(tmp_path):
    path = tmp_path / "proxy.yaml"
    path.write_text(
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
        "clientConnection:\n  kubeconfig: /etc/kube/proxy.conf\nmode: nftables\n"
        "clusterCIDR: 198.18.0.0/16\nhostnameOverride: Node-1\n"
        "nodePortAddresses: [198.18.0.0/24]\n"
        "nftables:\n  masqueradeAll: true\n  minSyncPeriod: 250ms\n  syncPeriod: 1m\n")
    cfg = config.load_file(str(path))
    assert (cfg.kubeconfig, cfg.cluster_cidrs, cfg.node_name, cfg.nodeport_addresses,
            cfg.masquerade_all, cfg.min_sync_period, cfg.sync_period) == (
        "/etc/kube/proxy.conf", ["198.18.0.0/16"], "node-1", ["198.18.0.0/24"], True, 0.25, 60)
    path.write_text("apiVersion: kubeproxy.config.k8s.io/v1alpha1\n"
                    "kind: KubeProxyConfiguration\nipvs: {}\n")
    with pytest.raises(config.ConfigError, match="unknown field 'ipvs'"):
        config.load_file(str(path))
    path.write_text("kind: KubeletConfiguration\n")
    with pytest.raises(config.ConfigError, match="expected apiVersion"):
        config.load_file(str(path))


@pytest.mark.parametrize("args,message", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--proxy-mode=iptables", "--kubeconfig=x"], "--proxy-mode: iptables mode is not"),
    (["--proxy-mode=ipvs", "--kubeconfig=x"], "--proxy-mode: unknown mode 'ipvs'"),
    (["--cluster-cidr=10.0.0.0/33", "--kubeconfig=x"], "--cluster-cidr: '10.0.0.0/33' is not"),
    (["--nodeport-addresses=primary", "--kubeconfig=x"], "--nodeport-addresses: 'primary'"),
    (["--min-sync-period=soon", "--kubeconfig=x"], "--min-sync-period: 'soon' is not"),
    ([], "--kubeconfig: required"),
    (["--kubeconfig=x", "--healthz-bind-address=nowhere"], "--healthz-bind-address: 'nowhere'"),
    (["--kubeconfig=/nonexistent/kubeconfig"], "--kubeconfig: cannot read"),
    (["--config=/nonexistent.yaml"], "--config: cannot read"),
])
def test_bad_flags_are_one_line_and_exit_1(args, message):
    run = subprocess.run([os.path.join(BIN, "pykube-proxy"), *args], capture_output=True,
                         text=True, timeout=30)
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1 and message in run.stderr, run.stderr


def test_two_services_on_one_external_ip_and_port_do_not_break_the_sync():
    rec = Recorder()
    syncer = Syncer(ProxyOptions(table="t"), rec, clear_conntrack=lambda flows: 0)
    first = _svc("a", ip="172.30.0.1", externalIPs=["192.168.99.1"])
    second = _svc("b", ip="172.30.0.2", externalIPs=["192.168.99.1"])
    syncer.full_sync({"ns1/a": service_ports(first, [_slice("a")]),
                      "ns1/b": service_ports(second, [_slice("b")])})
    shared = "add element ip t service-ips { 192.168.99.1 . tcp . 80 : goto external-"
    assert rec.texts[0].count(shared) == 1
    # b's change leaves a's element alone.
    syncer.sync({"ns1/b": service_ports(second, [])})
    assert "service-ips { 192.168.99.1" not in rec.texts[-1]


def test_health_turns_503_when_a_change_waits_too_long():
    from datetime import datetime, timedelta, timezone

    from proxy.healthz import Health, go_time, node_eligible

    now = [datetime(2026, 12, 6, 21, 0, 0, 123000, tzinfo=timezone.utc)]
    health = Health(timeout=60, clock=lambda: now[0])
    assert health.report() == {"lastUpdated": "2026-12-06T21:00:00.123Z",
                               "currentTime": "2026-12-06T21:00:00.123Z", "healthy": True}
    health.updated()
    health.queued()
    now[0] += timedelta(seconds=59)
    assert health.report()["healthy"]
    now[0] += timedelta(seconds=2)
    report = health.report()
    assert not report["healthy"] and report["lastUpdated"] == "2026-12-06T21:00:00.123Z"
    assert report["status"] == {"IPv4": {"lastUpdated": "2026-12-06T21:00:00.123Z",
                                         "healthy": False}}
    health.updated()
    assert health.report()["healthy"]
    assert go_time(None) == "0001-01-01T00:00:00Z"
    assert not node_eligible(None)
    assert node_eligible({"metadata": {"name": "n1"}, "spec": {}})
    assert not node_eligible({"metadata": {}, "spec": {"taints": [
        {"key": "ToBeDeletedByClusterAutoscaler", "effect": "NoSchedule"}]}})



def test_proxier_syncs_fully_first_and_again_when_the_table_went():
    from proxy.proxier import Proxier

    tables: list[str] = []

    def run(text: str) -> str:
        if text == "list tables":
            return "".join(f"{t}\n" for t in tables)
        if text.startswith("add table ip t\ndelete table ip t\n"):
            tables[:] = ["table ip t"]
        return ""

    syncer = Syncer(ProxyOptions(table="t"), run, clear_conntrack=lambda flows: 0)
    proxier = Proxier(syncer)
    proxier._service_set(_svc())
    proxier._slice_set(_slice())
    proxier.sync_once()
    assert syncer.stats.transactions == 1 and "ns1/svc1" in syncer.stats.last_transaction
    proxier._slice_set(_slice(endpoints=(("10.180.0.9", None, True, False),)))
    proxier.sync_once()
    assert syncer.stats.transactions == 2
    assert not syncer.stats.last_transaction.startswith("add table")
    tables.clear()                      # nft flush ruleset
    proxier.sync_once()
    assert syncer.stats.transactions == 3
    assert syncer.stats.last_transaction.startswith("add table ip t\ndelete table ip t\n")
    assert "10.180.0.9" in syncer.stats.last_transaction
