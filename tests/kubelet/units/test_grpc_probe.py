"""The gRPC probe against a real grpc.health.v1 server on loopback: each answer the kubelet
tells apart, with the kubelet's messages."""
from __future__ import annotations

import socket

import pytest

from kubelet.prober import grpc_probe
from kubelet_testlib import GrpcHealthServer

UA = "kube-probe/1.31"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port_pair()
    with GrpcHealthServer(str(tmp_path_factory.mktemp("grpc")), port,
                          {"": "SERVING", "down": "NOT_SERVING", "hang": "HANG"}) as s:
        yield s


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no two free ports in a row")


def test_serving_is_healthy(server):
    assert grpc_probe.check("127.0.0.1", server.port, "", 1, UA) == (True, "service healthy")


def test_not_serving_is_unhealthy_with_the_status_name(server):
    assert grpc_probe.check("127.0.0.1", server.port, "down", 1, UA) == \
        (False, 'service unhealthy (responded with "NOT_SERVING")')


def test_unknown_service_is_a_failed_rpc(server):
    ok, message = grpc_probe.check("127.0.0.1", server.port, "nosuch", 1, UA)
    assert not ok
    assert message == ("error: health rpc probe failed: rpc error: code = NotFound "
                       "desc = unknown service 'nosuch'")


def test_a_server_without_the_health_service(server):
    ok, message = grpc_probe.check("127.0.0.1", server.port + 1, "", 1, UA)
    assert not ok
    assert message.startswith("error: this server does not implement the grpc health "
                              "protocol (grpc.health.v1.Health): ")


def test_an_answer_later_than_the_timeout(server):
    assert grpc_probe.check("127.0.0.1", server.port, "hang", 1, UA) == \
        (False, "timeout: health rpc did not complete within 1s")


def test_nothing_listening_times_out_connecting():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        assert grpc_probe.check("127.0.0.1", port, "", 1, UA) == (
            False, f'timeout: failed to connect service "127.0.0.1:{port}" within 1s: '
                   "context deadline exceeded")


def test_messages_of_the_health_protocol():
    assert grpc_probe.encode_request("") == b""
    assert grpc_probe.encode_request("a" * 200) == b"\x0a\xc8\x01" + b"a" * 200
    assert grpc_probe.decode_status(b"") == 0
    assert grpc_probe.decode_status(b"\x08\x02") == 2
    # Unknown fields of any wire type are skipped.
    assert grpc_probe.decode_status(b"\x12\x02hi\x19" + bytes(8) + b"\x08\x01\x25" + bytes(4)) == 1
    with pytest.raises(ValueError):
        grpc_probe.decode_status(b"\x08")
    with pytest.raises(ValueError):
        grpc_probe.decode_status(b"\x12\x05hi")
