"""`pyapiserver --workers 2` agrees with one process where a per-process state could differ
(issue 28): the Service ranges are one stored RangeAllocation that every worker changes by
compare-and-swap, so an address or port freed through one worker is free through the other; a
bad flag is the one line of a single process; the parent, which only owns the storage and
supervises, stays small."""
from __future__ import annotations

import os
import subprocess

import pytest

from apiserver_testlib import BIN, start_server, stop_server
from test_apiserver_workers import WORKER_HEADER, _workers

# 6 addresses (one is the kubernetes Service's) and 3 node ports: every one is reused.
FLAGS = ["--workers", "2", "--service-cluster-ip-range", "198.18.2.0/29",
         "--service-node-port-range", "30200-30202"]
# The parent without the API server imported is ~16 MiB; a worker ~55.
PARENT_RSS_LIMIT_KIB = 30 * 1024


@pytest.fixture(scope="module")
def server():
    s = start_server(FLAGS)
    yield s
    stop_server(s)


def _client_on(server, worker: str):
    """A CoreV1Api whose connection was accepted by `worker` (connections are kept alive)."""
    from kubernetes import client
    for _ in range(200):
        api_client = server.client()
        api = client.CoreV1Api(api_client)
        _, _, headers = api.read_namespace_with_http_info("default")
        if headers[WORKER_HEADER] == worker:
            return api_client, api
        api_client.close()
    pytest.fail(f"no connection reached worker {worker}")


def _service(name: str):
    from kubernetes import client
    return client.V1Service(metadata=client.V1ObjectMeta(name=name), spec=client.V1ServiceSpec(
        type="NodePort", ports=[client.V1ServicePort(port=80)]))


def test_services_through_alternating_workers_share_the_ranges(server):
    from kubernetes.client.rest import ApiException
    clients = [_client_on(server, w) for w in ("0", "1")]
    apis = [api for _, api in clients]
    try:
        for round_ in range(3):
            ips, ports = set(), set()
            for i in range(3):  # the range holds 3 node ports
                svc = apis[(i + round_) % 2].create_namespaced_service("default",
                                                                       _service(f"r{i}"))
                ips.add(svc.spec.cluster_ip)
                ports.add(svc.spec.ports[0].node_port)
            assert len(ips) == 3 and ports == {30200, 30201, 30202}
            # The range is full, whichever worker is asked.
            for api in apis:
                with pytest.raises(ApiException) as e:
                    api.create_namespaced_service("default", _service("full"))
                assert "range is full" in e.value.body
            # Each is deleted through the other worker than the one that created it.
            for i in range(3):
                apis[(i + round_ + 1) % 2].delete_namespaced_service(f"r{i}", "default")
        # An address freed through one worker is taken again by name through the other.
        ip = apis[0].create_namespaced_service("default", _service("a")).spec.cluster_ip
        apis[1].delete_namespaced_service("a", "default")
        from kubernetes import client
        again = client.V1Service(metadata=client.V1ObjectMeta(name="b"), spec=client.V1ServiceSpec(
            cluster_ip=ip, ports=[client.V1ServicePort(port=80)]))
        assert apis[0].create_namespaced_service("default", again).spec.cluster_ip == ip
        apis[1].delete_namespaced_service("b", "default")
    finally:
        for api_client, _ in clients:
            api_client.close()


def test_parent_rss_is_small(server):
    assert set(_workers(server.proc.pid)) == {0, 1}
    with open(f"/proc/{server.proc.pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    assert rss < PARENT_RSS_LIMIT_KIB, f"parent RSS {rss} KiB"


@pytest.mark.parametrize("flag, value, text", [
    ("--service-cluster-ip-range", "10.0.0.0/33", "--service-cluster-ip-range: invalid CIDR"),
    ("--service-node-port-range", "3-2", "--service-node-port-range: invalid port range"),
    ("--advertise-address", "nope", "--advertise-address: invalid IP address"),
])
def test_bad_flags_one_line_and_nothing_left(tmp_path, flag, value, text):
    data_dir = tmp_path / "d"
    proc = subprocess.run([os.path.join(BIN, "pyapiserver"), "--workers", "2",
                           "--bind-address", "127.0.0.1", "--port", "0",
                           "--data-dir", str(data_dir), flag, value],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith("pyapiserver: " + text), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stdout == ""
    assert not data_dir.exists()
