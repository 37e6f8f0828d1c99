"""The kubelet's streaming endpoints on its HTTPS port, as the kubelet's server routes them:

    GET|POST /exec/{namespace}/{pod}[/{uid}]/{container}?command=...&stdin=1&stdout=1&tty=1
    GET|POST /attach/{namespace}/{pod}[/{uid}]/{container}?stdin=1&stdout=1&stderr=1
    GET|POST /portForward/{namespace}/{pod}[/{uid}]?port=8080
    POST     /run/{namespace}/{pod}[/{uid}]/{container}?cmd=ls%20-l     (answers the output)

The upgrade and the protocols (WebSocket, SPDY) are cri.streaming's; the work is the runtime
service's (exec, attach, port_forward_dial). A remote runtime (cri.client) serves its own
streams: the request is proxied to the URL its Exec, Attach or PortForward answers
(stream_proxy). What is answered before an upgrade is the
kubelet's own wording: 400 for bad stream options, 404 "pod does not exist" for a pod this
node does not run, 500 `container not found ("name")` for a container that is not running
(the kubelet looks among running containers only), 500 with the runtime's error otherwise."""
from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from cri.api import CRIError, RuntimeService
from cri.client.runtime import RemoteRuntime
from cri.streaming import handover, portforward, remotecommand
from kubelet.server import stream_proxy

PREFIXES = ("exec", "attach", "portForward", "run")


class StreamLookupError(Exception):
    """The request names no pod or container this kubelet runs; status and one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# (namespace, pod, uid or "", container) -> the running container's ID
ContainerLookup = Callable[[str, str, str, str], str]
# (namespace, pod, uid or "") -> the pod's ready sandbox's ID
SandboxLookup = Callable[[str, str, str], str]


@dataclass(frozen=True)
class Request:
    kind: str           # one of PREFIXES
    namespace: str
    pod: str
    uid: str            # "" when the path has none
    container: str      # "" for portForward


def parse_path(parts: list[str]) -> Request | None:
    """The request a path names (its parts, unquoted), or None (404)."""
    if not parts or parts[0] not in PREFIXES:
        return None
    kind, rest = parts[0], parts[1:]
    if kind == "portForward":
        if len(rest) == 2:
            return Request(kind, rest[0], rest[1], "", "")
        if len(rest) == 3:
            return Request(kind, rest[0], rest[1], rest[2], "")
        return None
    if len(rest) == 3:
        return Request(kind, rest[0], rest[1], "", rest[2])
    if len(rest) == 4:
        return Request(kind, rest[0], rest[1], rest[2], rest[3])
    return None


class Streaming:
    """The endpoints, on a runtime service and the kubelet's view of its pods."""

    def __init__(self, runtime: RuntimeService, container: ContainerLookup,
                 sandbox: SandboxLookup) -> None:
        self.runtime = runtime
        self.container = container
        self.sandbox = sandbox

    def serve(self, handler: BaseHTTPRequestHandler, method: str, request: Request,
              query: str) -> None:
        """Answers (or upgrades and serves) one authenticated request to its end."""
        try:
            if request.kind == "run":
                if method != "POST":
                    handover.reject(handler, 405, "405: Method Not Allowed")
                    return
                self._run(handler, request, query)
            elif request.kind == "portForward":
                self._port_forward(handler, method, request, query)
            else:
                self._remotecommand(handler, method, request, query)
        except StreamLookupError as e:
            handover.reject(handler, e.status, str(e))

    def _proxy(self, handler: BaseHTTPRequestHandler, method: str, url) -> None:
        """To the remote runtime's streaming server at the URL url() asks it for."""
        try:
            target = url()
        except CRIError as e:
            handover.reject(handler, 500, str(e))
            return
        stream_proxy.proxy(handler, method, target)

    def _remotecommand(self, handler: BaseHTTPRequestHandler, method: str, request: Request,
                       query: str) -> None:
        is_exec = request.kind == "exec"
        try:
            opts = remotecommand.options(query, exec_=is_exec)
        except remotecommand.OptionsError as e:
            handover.reject(handler, 400, str(e))
            return
        container_id = self.container(request.namespace, request.pod, request.uid,
                                      request.container)
        runtime = self.runtime
        if isinstance(runtime, RemoteRuntime):
            if is_exec:
                self._proxy(handler, method, lambda: runtime.exec_url(
                    container_id, list(opts.command), opts.tty, opts.stdin, opts.stdout,
                    opts.stderr))
            else:
                self._proxy(handler, method, lambda: runtime.attach_url(
                    container_id, opts.tty, opts.stdin, opts.stdout, opts.stderr))
            return
        if is_exec:
            command = list(opts.command)
            remotecommand.serve(handler, opts,
                                lambda session: self.runtime.exec(container_id, command,
                                                                  session))
        else:
            remotecommand.serve(handler, opts,
                                lambda session: self.runtime.attach(container_id, session))

    def _port_forward(self, handler: BaseHTTPRequestHandler, method: str, request: Request,
                      query: str) -> None:
        sandbox_id = self.sandbox(request.namespace, request.pod, request.uid)
        runtime = self.runtime
        if isinstance(runtime, RemoteRuntime):
            ports = [int(p) for p in urllib.parse.parse_qs(query).get("port", [])
                     if p.isdigit()]
            self._proxy(handler, method, lambda: runtime.port_forward_url(sandbox_id, ports))
            return
        # The CRI streaming server names the sandbox as the pod in its errors, with no uid.
        portforward.serve(handler, query,
                          lambda port: self.runtime.port_forward_dial(sandbox_id, port),
                          pod=sandbox_id)

    def _run(self, handler: BaseHTTPRequestHandler, request: Request, query: str) -> None:
        # As the kubelet: the command is the cmd parameter split at spaces.
        cmd = (urllib.parse.parse_qs(query).get("cmd") or [""])[0].split(" ")
        container_id = self.container(request.namespace, request.pod, request.uid,
                                      request.container)
        try:
            result = self.runtime.exec_sync(container_id, cmd, 0)
        except CRIError as e:
            handover.reject(handler, 500, str(e))
            return
        if result.exit_code != 0:
            handover.reject(handler, 500, f"command '{' '.join(cmd)}' exited with "
                                          f"{result.exit_code}: {result.stderr}")
            return
        body = (result.stdout + result.stderr).encode()
        handler.send_response(200)
        if body:
            handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
