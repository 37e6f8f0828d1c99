"""kube-proxy's health server (`--healthz-bind-address`, default 0.0.0.0:10256): /livez and
/healthz answer 200 while the rules are current and 503 once a change has waited longer than
the health timeout (twice --sync-period) for its sync; /healthz also needs this node's Node to
exist, undeleted and without the cluster autoscaler's ToBeDeletedByClusterAutoscaler taint
(nodeEligible). The body is kube-proxy's ProxyHealth JSON."""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kubeapi.component.server_thread import ServerThread

TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time in JSON


def go_time(t: datetime | None) -> str:
    """time.Time's JSON form (RFC 3339 with the nanoseconds it has, UTC as Z)."""
    if t is None:
        return ZERO_TIME
    text = t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


@dataclass
class Health:
    """What the proxier reports: a change queued, the rules updated."""
    timeout: float
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _last_updated: datetime | None = None
    _oldest_queued: datetime | None = None

    def queued(self) -> None:
        with self._lock:
            if self._oldest_queued is None:
                self._oldest_queued = self.clock()

    def updated(self) -> None:
        with self._lock:
            self._oldest_queued = None
            self._last_updated = self.clock()

    def report(self) -> dict:
        """ProxyHealth without nodeEligible (what /livez answers)."""
        now = self.clock()
        with self._lock:
            last, queued = self._last_updated, self._oldest_queued
        healthy = last is None or queued is None or \
            (now - queued).total_seconds() < self.timeout
        status = {"IPv4": {"lastUpdated": go_time(last), "healthy": healthy}} if last else {}
        body = {"lastUpdated": go_time(now if healthy else last), "currentTime": go_time(now),
                "healthy": healthy}
        if status:
            body["status"] = status
        return body


def node_eligible(node: dict | None) -> bool:
    if node is None or (node.get("metadata") or {}).get("deletionTimestamp"):
        return False
    taints = (node.get("spec") or {}).get("taints") or []
    return not any(t.get("key") == TO_BE_DELETED_TAINT for t in taints)


class HealthServer(ServerThread):
    """Serves /healthz and /livez on `address` ("host:port") from a thread of its own."""

    def __init__(self, address: str, health: Health, node: Callable[[], dict | None]) -> None:
        host, _, port = address.rpartition(":")
        server = ThreadingHTTPServer((host.strip("[]") or "0.0.0.0", int(port)),
                                     _handler(health, node))
        server.daemon_threads = True
        super().__init__(server, "healthz")


def _handler(health: Health, node: Callable[[], dict | None]):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("?")[0]
            if path not in ("/healthz", "/livez"):
                self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
                return
            body = health.report()
            healthy = body["healthy"]
            if path == "/healthz":
                eligible = node_eligible(node())
                body = {"lastUpdated": body["lastUpdated"], "currentTime": body["currentTime"],
                        "nodeEligible": eligible, **{k: v for k, v in body.items()
                                                     if k in ("healthy", "status")}}
                healthy = healthy and eligible
            self._send(200 if healthy else 503, json.dumps(body, separators=(",", ":")).encode(),
                       "application/json")

        def _send(self, code: int, payload: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass  # probes every few seconds: not worth a log line each

    return Handler
