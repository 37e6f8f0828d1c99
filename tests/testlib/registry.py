"""Real registries for the pull tests: Debian's docker-registry (the distribution registry) on
127.0.0.1, anonymous, with token auth (a small token server here signs RS256 JWTs with a key
whose certificate the registry trusts), or with htpasswd basic auth. Images go in with skopeo."""
from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from testlib.processes import free_port

USER, PASSWORD = "tester", "s3cret-pw"
SERVICE, ISSUER = "pycontainer-test", "pycontainer-test-issuer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """GET /token?service=..&scope=..: a token for the asked scope, to the right user only."""

    def __init__(self, workdir: str) -> None:
        self.key = os.path.join(workdir, "token.key")
        self.cert = os.path.join(workdir, "token.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=token-signer"],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", self.cert, "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                auth = self.headers.get("Authorization", "")
                expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                server.requests.append({"query": query, "authorized": auth == expected})
                if auth != expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps({"token": server.sign(query.get("scope", []))}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def sign(self, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, name, actions = scope.split(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": ISSUER, "sub": USER, "aud": SERVICE, "exp": now + 600, "nbf": now - 10,
                  "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key],
                                   input=signing_input.encode(), check=True,
                                   capture_output=True).stdout
        return f"{signing_input}.{_b64url(signature)}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def self_signed_cert(workdir: str, name: str = "registry") -> tuple[str, str]:
    """(certificate, key) for 127.0.0.1, signed by itself: no client trusts it."""
    cert, key = os.path.join(workdir, f"{name}.crt"), os.path.join(workdir, f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


class Registry:
    """docker-registry serving workdir/storage, over plain HTTP or, with tls=(cert, key), HTTPS."""

    def __init__(self, workdir: str, auth: dict | None = None,
                 tls: tuple[str, str] | None = None) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        storage = os.path.join(workdir, "storage")
        os.makedirs(storage, exist_ok=True)
        config = {"version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
                  "storage": {"filesystem": {"rootdirectory": storage},
                              "delete": {"enabled": True}},
                  "http": {"addr": self.host}}
        if auth:
            config["auth"] = auth
        if tls:
            config["http"]["tls"] = {"certificate": tls[0], "key": tls[1]}
        path = os.path.join(workdir, "config.yml")
        with open(path, "w") as f:
            json.dump(config, f)  # YAML is a superset of JSON
        self.log = open(os.path.join(workdir, "registry.log"), "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", path], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    with open(os.path.join(workdir, "registry.log")) as f:
                        raise RuntimeError(f"docker-registry did not start: {f.read()}")
                time.sleep(0.05)

    def push(self, layout: str, ref_name: str, dest: str, *extra: str,
             creds: str | None = None) -> None:
        argv = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", *extra]
        if creds:
            argv.append(f"--dest-creds={creds}")
        argv += [f"oci:{layout}:{ref_name}", f"docker://{self.host}/{dest}"]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class FaultyProxy:
    """Forwards GETs to a registry over plain HTTP; the next full response for a blob digest in
    `cut` stops halfway (the connection closes), one in `corrupt` has a byte flipped."""

    def __init__(self, upstream: str) -> None:
        self.cut: set[str] = set()
        self.corrupt: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                import http.client

                wanted_range = self.headers.get("Range")
                proxy.requests.append((self.path, wanted_range))
                conn = http.client.HTTPConnection(upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection")}
                conn.request("GET", self.path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                conn.close()
                digest = self.path.rsplit("/", 1)[-1] if "/blobs/" in self.path else None
                self.send_response(resp.status)
                for key, value in resp.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if digest in proxy.cut and wanted_range is None:
                    proxy.cut.discard(digest)
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if digest in proxy.corrupt:
                    body = bytearray(body)
                    body[len(body) // 2] ^= 0xFF
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
