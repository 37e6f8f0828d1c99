"""What the kubelet relies on when it runs our plugins in-process: concurrent pod starts on one
network get distinct addresses and clean up fully, and GC of the network removes the NAT rule
sets, allocations and cache entries of attachments that are no longer valid."""
import json
import os
import threading
import time

import pytest

from cni import conf as cni_conf
from cni import invoker
from netkit import CNI_PATH, bridge_ports, random_subnet
from netns import nat, nat_backend

pytestmark = pytest.mark.root


def network(tmp_path, bridge, name, version="1.1.0"):
    raw = {"cniVersion": version, "name": name, "plugins": [
        {"type": "pycni-bridge", "bridge": bridge, "isGateway": True, "ipMasq": True,
         "ipam": {"type": "pycni-host-local", "ranges": [[{"subnet": random_subnet()}]],
                  "dataDir": str(tmp_path / "ipam")}},
        {"type": "pycni-portmap", "capabilities": {"portMappings": True}}]}
    return cni_conf.parse(json.dumps(raw).encode())


def allocations(tmp_path, net):
    return sorted(n for n in os.listdir(tmp_path / "ipam" / net.name) if n[0].isdigit())


def start_and_join(threads: list[threading.Thread], what: str, timeout: float = 120) -> None:
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(deadline - time.monotonic(), 0))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"{what}: {stuck} still running after {timeout:.0f} s"


def test_concurrent_pods_in_process(tmp_path, namespaces, bridge_name, network_name):
    net = network(tmp_path, bridge_name, network_name())
    cni = invoker.CNI(CNI_PATH, str(tmp_path / "cache"), in_process=True)
    pods = [namespaces.new() for _ in range(8)]
    results, errors = {}, []

    def run(i, pod):
        rt = invoker.RuntimeConf(f"c{i}", pod, capability_args={"portMappings": [
            {"hostPort": 20000 + i, "containerPort": 80}]})
        try:
            results[i] = cni.add(net, rt)["ips"][0]["address"]
            cni.check(net, rt)
        except Exception as exc:  # reported below with the others
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, p)) for i, p in enumerate(pods)]
    start_and_join(threads, "concurrent ADDs")
    assert errors == []
    assert len(set(results.values())) == len(pods)
    assert len(allocations(tmp_path, net)) == len(pods)
    assert len(bridge_ports(bridge_name)) == len(pods)
    threads = [threading.Thread(target=cni.delete, args=(
        net, invoker.RuntimeConf(f"c{i}", p))) for i, p in enumerate(pods)]
    start_and_join(threads, "concurrent DELs")
    assert allocations(tmp_path, net) == []
    assert bridge_ports(bridge_name) == set()
    assert nat_backend.host_backend().names(nat.network_prefix("hp", net.name)) == []


def test_gc_removes_what_stale_attachments_hold(tmp_path, namespaces, bridge_name, network_name):
    net = network(tmp_path, bridge_name, network_name())
    cni = invoker.CNI(CNI_PATH, str(tmp_path / "cache"), in_process=True)
    backend = nat_backend.host_backend()
    rts = [invoker.RuntimeConf(f"c{i}", namespaces.new(), capability_args={"portMappings": [
        {"hostPort": 21000 + i, "containerPort": 80}]}) for i in range(3)]
    for rt in rts:
        cni.add(net, rt)
    assert len(backend.names(nat.network_prefix("hp", net.name))) == 3
    cni.status(net)
    # The runtime lost c1 and c2 without DEL (say, a crash): GC keeps only c0.
    cni.gc(net, [("c0", "eth0")])
    assert backend.names(nat.network_prefix("hp", net.name)) == [
        nat.rule_set_name("hp", net.name, "c0", "eth0")]
    assert backend.names(nat.network_prefix("mq", net.name)) == [
        nat.rule_set_name("mq", net.name, "c0", "eth0")]
    assert len(allocations(tmp_path, net)) == 1
    assert os.listdir(tmp_path / "cache" / "results") == [f"{net.name}-c0-eth0"]
    for rt in rts:
        cni.delete(net, rt)
    assert allocations(tmp_path, net) == []
