"""The gRPC probe (the kubelet's pkg/probe/grpc): one grpc.health.v1.Health/Check call to the
pod's IP, over plain HTTP/2 as the kubelet makes it; success only on SERVING. The messages are
the kubelet's, so an Unhealthy event reads the same.

grpcio is imported at the first gRPC probe: a kubelet whose pods have none does not pay for it.
The two messages of the health protocol (one string field in, one enum field out) go through
kubeapi's protobuf wire reader and writer rather than generated protobuf code."""
from __future__ import annotations

from typing import TYPE_CHECKING

from kubeapi import protobuf

if TYPE_CHECKING:
    import grpc

CHECK_METHOD = "/grpc.health.v1.Health/Check"
SERVING = 1
# grpc.health.v1.HealthCheckResponse.ServingStatus, as the kubelet names them in its message.
STATUS_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def check(host: str, port: int, service: str, timeout: float,
          user_agent: str) -> tuple[bool, str]:
    """(success, message) of one health check of `service` at host:port within `timeout`
    seconds, connection included."""
    import grpc

    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    limit = _duration(timeout)
    # No retries, no proxy from the environment: one probe is one attempt at the pod itself.
    options = [("grpc.primary_user_agent", user_agent), ("grpc.enable_retries", 0),
               ("grpc.enable_http_proxy", 0)]
    with grpc.insecure_channel(address, options=options) as channel:
        # wait_for_ready: the call waits out connecting within the same deadline, as the
        # kubelet's blocking dial does; _connected then tells which wait ran out.
        call = channel.unary_unary(CHECK_METHOD)  # bytes in, bytes out
        try:
            reply = call(encode_request(service), timeout=timeout, wait_for_ready=True)
        except grpc.RpcError as e:
            code, details = e.code(), e.details() or ""
            if code == grpc.StatusCode.DEADLINE_EXCEEDED and not _connected(channel):
                return False, (f'timeout: failed to connect service "{address}" within '
                               f"{limit}: context deadline exceeded")
            if code == grpc.StatusCode.UNIMPLEMENTED:
                return False, ("error: this server does not implement the grpc health protocol "
                               f"(grpc.health.v1.Health): {details}")
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return False, f"timeout: health rpc did not complete within {limit}"
            return False, (f"error: health rpc probe failed: rpc error: "
                           f"code = {_code_name(code.name)} desc = {details}")
    try:
        status = decode_status(reply)
    except ValueError as e:
        return False, f"error: health rpc probe failed: {e}"
    if status != SERVING:
        name = STATUS_NAMES.get(status, str(status))
        return False, f'service unhealthy (responded with "{name}")'
    return True, "service healthy"


def _connected(channel: grpc.Channel) -> bool:
    """Whether the channel is connected to the server, asked once a call has run out of time.
    The public way (grpc.channel_ready_future) learns the state from a polling thread, too late
    for this question and holding the channel's close for 200 ms; the core channel beneath it
    answers at once."""
    import grpc

    state = channel._channel.check_connectivity_state(False)  # noqa: SLF001
    return state == grpc.ChannelConnectivity.READY.value[0]


def encode_request(service: str) -> bytes:
    """HealthCheckRequest{service = 1}; proto3 leaves out an empty string."""
    data = service.encode()
    return protobuf.length_delimited(1, data) if data else b""


def decode_status(message: bytes) -> int:
    """HealthCheckResponse.status (field 1, an enum); absent means UNKNOWN (0). ValueError
    if the message is malformed."""
    status = 0
    for number, value in protobuf.fields(message):
        if number == 1 and isinstance(value, int):
            status = value
    return status


def _duration(seconds: float) -> str:
    """Go's time.Duration form of a whole number of seconds, as the kubelet prints it."""
    return f"{seconds:g}s"


def _code_name(name: str) -> str:
    """grpc-go's name of a status code (Unavailable, NotFound...) from grpcio's (UNAVAILABLE,
    NOT_FOUND...)."""
    return "".join(part.capitalize() for part in name.split("_"))
