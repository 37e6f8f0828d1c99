"""The controller manager's /healthz, /livez and /readyz over HTTPS (--secure-port), as
kube-controller-manager serves them to anyone (they are in its always-allowed paths): "ok", or
500 when a check fails; ?verbose lists the checks ([+]name ok). The one check besides ping is
leaderElection (kubeapi.leaderelection's). Without --tls-cert-file a self-signed certificate is
made in memory for the start, as kube's self-signed serving certificate is."""
from __future__ import annotations

import datetime
import http.server
import ipaddress
import os
import socket
import ssl
import tempfile
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubeapi.component.server_thread import ServerThread

Check = Callable[[], str]  # "" when healthy, else why not
HANDSHAKE_TIMEOUT = 10.0


def self_signed_context() -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(
        NameOID.COMMON_NAME, f"localhost@{int(datetime.datetime.now().timestamp())}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(key, hashes.SHA256()))
    with tempfile.TemporaryDirectory(prefix="pycm-cert-") as tmp:
        # ssl loads certificates from files only; they live for this call.
        cert_path, key_path = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        with open(cert_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        return file_context(cert_path, key_path)


def file_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], checks: dict[str, Check],
                 context: ssl.SSLContext) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.checks = checks
        self.context = context
        super().__init__(address, _Handler)

    def finish_request(self, request, client_address) -> None:
        # The TLS handshake in the connection's own thread: a slow client holds up no other.
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        super().finish_request(tls, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path, _, query = self.path.partition("?")
        if path not in ("/healthz", "/livez", "/readyz"):
            self._answer(404, "404 page not found\n")
            return
        results = [("ping", "")] + [(name, check()) for name, check in
                                    self.server.checks.items()]
        failed = any(why for _, why in results)
        if "verbose" not in query and not failed:
            self._answer(200, "ok")
            return
        lines = [f"[+]{name} ok" if not why else f"[-]{name} failed: reason withheld"
                 for name, why in results]
        what = path.lstrip("/")
        lines.append(f"{what} check failed" if failed else f"{what} check passed")
        self._answer(500 if failed else 200, "\n".join(lines) + "\n")

    def _answer(self, code: int, body: str) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - probes are not news
        pass


class HealthServer(ServerThread):
    def __init__(self, bind_address: str, port: int, context: ssl.SSLContext,
                 checks: dict[str, Check]) -> None:
        super().__init__(_Server((bind_address, port), checks, context), "healthz")
