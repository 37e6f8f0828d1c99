"""The gRPC channel to a CRI endpoint and what its errors become: NOT_FOUND is NotFound, any
other status a CRIError with the runtime's own message, as the kubelet reports them."""
from __future__ import annotations

import grpc

from cri.api import CRIError, NotFound

# The kubelet's default --runtime-request-timeout.
REQUEST_TIMEOUT = 120.0
MAX_MESSAGE = 16 << 20


class EndpointError(ValueError):
    """--container-runtime-endpoint or --image-service-endpoint names nothing we can dial."""


def channel(endpoint: str) -> grpc.Channel:
    """A channel to `unix:///path` (a bare absolute path is taken as one too, as the kubelet
    used to)."""
    if endpoint.startswith("/"):
        endpoint = "unix://" + endpoint
    if not endpoint.startswith("unix://") or len(endpoint) <= len("unix://"):
        raise EndpointError(f"{endpoint!r}: only unix:///path endpoints are supported")
    return grpc.insecure_channel(endpoint, options=[
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE)])


def error(e: grpc.RpcError, what: str) -> CRIError:
    """The runtime's error as ours; what: the call, for a message that says where it failed."""
    code = e.code() if hasattr(e, "code") else None
    details = (e.details() if hasattr(e, "details") else "") or str(code)
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(details)
    if code == grpc.StatusCode.UNAVAILABLE:
        return CRIError(f"{what}: the container runtime is unavailable: {details}")
    return CRIError(details)


def call(method, request, what: str, timeout: float = REQUEST_TIMEOUT):
    """One unary call; its answer, or its error as CRIError."""
    try:
        return method(request, timeout=timeout)
    except grpc.RpcError as e:
        raise error(e, what) from None
