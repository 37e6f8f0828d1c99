"""One run of a probe or lifecycle handler (the kubelet's prober and handlers): exec through
the container's shim, httpGet, tcpSocket, grpc (grpc_probe), sleep. Each returns
(success, message); the message is what an Unhealthy event or a hook failure tells."""
from __future__ import annotations

import http.client
import socket
import ssl
import time

from cri.api import CRIError, RuntimeService
from kubelet.prober import grpc_probe

# The kubelet reads at most this much of an HTTP probe's body (for the message).
HTTP_BODY_LIMIT = 10 * 1024
USER_AGENT = "kube-probe/1.31"


class Target:
    """What a handler acts on: the container, and the address its network answers on."""

    __slots__ = ("runtime", "container_id", "container", "pod_ip")

    def __init__(self, runtime: RuntimeService, container_id: str, container: dict,
                 pod_ip: str) -> None:
        self.runtime = runtime
        self.container_id = container_id
        self.container = container
        self.pod_ip = pod_ip


def run(handler: dict, target: Target, timeout: float) -> tuple[bool, str]:
    """A probe or a lifecycle handler: whichever of exec, httpGet, tcpSocket, grpc, sleep it
    holds."""
    if "exec" in handler:
        return _exec(handler["exec"], target, timeout)
    try:
        if "httpGet" in handler:
            return _http_get(handler["httpGet"], target, timeout)
        if "tcpSocket" in handler:
            return _tcp(handler["tcpSocket"], target, timeout)
        if "grpc" in handler:
            return _grpc(handler["grpc"], target, timeout)
    except ValueError as e:  # a port the container does not have
        return False, str(e)
    if "sleep" in handler:
        time.sleep(min(float(handler["sleep"].get("seconds", 0)), timeout))
        return True, ""
    return False, "the handler names no action (exec, httpGet, tcpSocket, grpc or sleep)"


def _exec(action: dict, target: Target, timeout: float) -> tuple[bool, str]:
    command = action.get("command") or []
    if not command:
        return False, "exec: no command"
    try:
        result = target.runtime.exec_sync(target.container_id, list(command), timeout)
    except CRIError as e:
        return False, str(e)
    output = (result.stdout + result.stderr).strip()
    # The kubelet's runtime errors: the command joined by spaces, quoted as it quotes it.
    joined = " ".join(command)
    if result.timed_out:
        return False, f'command "{joined}" timed out'
    if result.exit_code != 0:
        return False, output or f"command '{joined}' exited with {result.exit_code}: "
    return True, output


def resolve_port(port: object, container: dict) -> int:
    """A port number, or the name of one of the container's ports."""
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        number = int(port)
    else:
        number = next((p.get("containerPort") for p in container.get("ports") or []
                       if p.get("name") == port), None)
        if number is None:
            raise ValueError(f"port {port!r} not found in the container's ports")
    if not 0 < number < 65536:
        raise ValueError(f"invalid port number: {number}")
    return number


def _address(action: dict, target: Target) -> tuple[str, int]:
    """Where an httpGet or tcpSocket action connects: its host or the pod's IP, and its port."""
    return action.get("host") or target.pod_ip, resolve_port(action.get("port"), target.container)


def _http_get(action: dict, target: Target, timeout: float) -> tuple[bool, str]:
    host, port = _address(action, target)
    path = action.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    for h in action.get("httpHeaders") or []:
        headers[h.get("name", "")] = h.get("value", "")
    if action.get("scheme", "HTTP").upper() == "HTTPS":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # as the kubelet: probes skip verification
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    url = f"{action.get('scheme', 'http').lower()}://{host}:{port}{path}"
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read(HTTP_BODY_LIMIT).decode(errors="replace")
    except (OSError, http.client.HTTPException) as e:
        return False, f'Get "{url}": {e}'
    finally:
        conn.close()
    # Redirects to another host count as success with a warning in the kubelet; followed
    # redirects are not needed to decide: 3xx is success either way.
    if 200 <= response.status < 400:
        return True, body
    return False, f"HTTP probe failed with statuscode: {response.status}"


def _tcp(action: dict, target: Target, timeout: float) -> tuple[bool, str]:
    host, port = _address(action, target)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, ""
    except OSError as e:
        return False, f"dial tcp {host}:{port}: {e.strerror or e}"


def _grpc(action: dict, target: Target, timeout: float) -> tuple[bool, str]:
    # The API takes a port number only, and no host: the pod's IP it is.
    port = action.get("port")
    if not isinstance(port, int) or isinstance(port, bool):
        raise ValueError(f"grpc: port must be a number, not {port!r}")
    return grpc_probe.check(target.pod_ip, resolve_port(port, target.container),
                            action.get("service") or "", timeout, USER_AGENT)
