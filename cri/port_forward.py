"""port-forward's dial (the CRI's PortForward, behind the kubelet's /portForward): a TCP
connection to localhost:port made inside the pod's network namespace, IPv4 first and IPv6 if
that fails, as containerd dials. The socket is made by a short-lived thread that joins the
namespace (netns.enter); it keeps that namespace after the thread is gone."""
from __future__ import annotations

import socket

from netns.enter import run_in_netns

from cri.streaming.backend import StreamError

DIAL_TIMEOUT = 10.0
_TARGETS = ((socket.AF_INET, "tcp4", "127.0.0.1"), (socket.AF_INET6, "tcp6", "::1"))


def dial(netns_path: str, sandbox_id: str, port: int) -> socket.socket:
    """A socket connected to localhost:port in the netns at netns_path ("" for a hostNetwork
    pod: the host's); StreamError in containerd's words when neither family connects."""
    if not 0 < port < 65536:
        raise StreamError(f"invalid port {port}: must be 1 to 65535")
    try:
        sock, errors = run_in_netns(netns_path, _connect, port) if netns_path \
            else _connect(port)
    except OSError as e:
        raise StreamError(f"network namespace {netns_path} of sandbox {sandbox_id}: "
                          f"{e.strerror}") from None
    if sock is None:
        raise StreamError(f"failed to connect to localhost:{port} inside namespace "
                          f'"{sandbox_id}", IPv4: {errors[0]} IPv6 {errors[1]} ')
    return sock


def _connect(port: int) -> tuple[socket.socket | None, list[str]]:
    errors = []
    for family, network, address in _TARGETS:
        sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.settimeout(DIAL_TIMEOUT)
        try:
            sock.connect((address, port))
        except OSError as e:
            sock.close()
            shown = f"[{address}]" if ":" in address else address
            reason = (e.strerror or str(e))
            errors.append(f"dial {network} {shown}:{port}: connect: "
                          f"{reason[:1].lower()}{reason[1:]}")
            continue
        sock.settimeout(None)
        return sock, errors
    return None, errors
