"""pykube-dns with the EndpointSlice controller of pycontroller-manager: a headless Service's
answers follow its pods' readiness as the controller writes their slices (the pods' status is
written through the API, as a kubelet would)."""
from __future__ import annotations

import os
import signal
import subprocess

import dns.rcode
import pytest

from dns_testlib import BIN, addresses, query, wait_for

ZONE = "cluster.local"


@pytest.fixture(scope="module")
def controllers(server):
    proc = subprocess.Popen([os.path.join(BIN, "pycontroller-manager"), "--kubeconfig",
                             server.kubeconfig, "--controllers", "endpointslice-controller",
                             "--leader-elect=false"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    yield proc
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stderr.close()


def make_pod(client, ns: str, name: str, ip: str, ready: bool) -> None:
    client.create(f"/api/v1/namespaces/{ns}/pods", {
        "metadata": {"name": name, "labels": {"app": "db"}},
        "spec": {"hostname": name, "subdomain": "db",
                 "containers": [{"name": "c", "image": "busybox"}]}})
    set_ready(client, ns, name, ip, ready)


def set_ready(client, ns: str, name: str, ip: str, ready: bool) -> None:
    client.patch(f"/api/v1/namespaces/{ns}/pods/{name}/status", {"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}})


def test_headless_answers_follow_pod_readiness(client, controllers, dns_server, namespace):
    client.create(f"/api/v1/namespaces/{namespace}/services", {
        "metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "selector": {"app": "db"},
                 "ports": [{"name": "pg", "port": 5432}]}})
    for i in range(3):
        make_pod(client, namespace, f"db-{i}", f"198.18.20.{i + 1}", ready=i < 2)
    name = f"db.{namespace}.svc.{ZONE}"
    wait_for(lambda: addresses(query(dns_server.port, name)) == {"198.18.20.1", "198.18.20.2"},
             timeout=20, what="the ready pods answered")
    assert addresses(query(dns_server.port, f"db-1.{name}")) == {"198.18.20.2"}
    assert query(dns_server.port, f"db-2.{name}").rcode() == dns.rcode.NXDOMAIN
    set_ready(client, namespace, "db-2", "198.18.20.3", ready=True)
    set_ready(client, namespace, "db-0", "198.18.20.1", ready=False)
    wait_for(lambda: addresses(query(dns_server.port, name)) == {"198.18.20.2", "198.18.20.3"},
             timeout=20, what="the answers followed readiness")
    srv = query(dns_server.port, f"_pg._tcp.{name}", "SRV")
    assert {rd.target.to_text() for rd in srv.answer[0]} == {f"db-1.{name}.", f"db-2.{name}."}
    assert controllers.poll() is None
