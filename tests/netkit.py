"""Test helpers shared by tests/netns and tests/cni: unique names, test-owned network
namespaces, and tiny TCP/UDP echo servers and clients that run inside a namespace. Every address
used is in 198.18.0.0/15 or loopback: nothing leaves the machine."""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading

import pytest

from netns import enter, links, named, rtnl, sysctl

VENV_BIN = os.path.dirname(sys.executable)
REFERENCE_BIN = "/usr/lib/cni"
CNI_PATH = [VENV_BIN, REFERENCE_BIN]


def unique(prefix: str) -> str:
    """A short unique name (link names have at most 15 characters)."""
    return f"{prefix}{secrets.token_hex(4)}"


def random_subnet() -> str:
    """A random /24 inside 198.18.0.0/15 (the benchmark range), so parallel tests don't meet."""
    n = secrets.randbelow(510) + 1
    return f"198.{18 + n // 256}.{n % 256}.0/24"


class Namespaces:
    """Network namespaces under a directory owned by one test; all removed by cleanup()."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="pycni-netns-")

    def new(self, name: str = "") -> str:
        return named.create(name or unique("pod"), self.dir)

    def cleanup(self) -> None:
        for name in named.list_names(self.dir):
            named.delete(name, self.dir)
        named.release_dir(self.dir)


@pytest.fixture
def namespaces():
    ns = Namespaces()
    yield ns
    ns.cleanup()


@pytest.fixture
def bridge_name():
    """A unique bridge name, deleted after the test whatever happened."""
    name = unique("pyb")
    yield name
    with rtnl.RtnlSocket() as host:
        link = links.get_link(host, name)
        if link is not None:
            links.delete_link(host, link.index)


class EchoServer:
    """Echoes whatever it receives (TCP: one message per connection; UDP: per datagram),
    listening on ip:port inside the namespace at `netns` (the host's when None)."""

    def __init__(self, netns: str | None, ip: str, proto: str = "tcp", port: int = 0) -> None:
        self._ready = threading.Event()
        self._stop = False
        self._error: BaseException | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._serve, args=(netns, ip, proto, port),
                                        daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error:
            raise self._error

    def _serve(self, netns, ip, proto, port) -> None:
        try:
            if netns:
                enter.join_netns(netns)  # this thread exists only to live there
            kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
            sock = socket.socket(socket.AF_INET, kind)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((ip, port))
            if proto == "tcp":
                sock.listen(16)
            sock.settimeout(0.2)
            self.port = sock.getsockname()[1]
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        with sock:
            while not self._stop:
                try:
                    if proto == "tcp":
                        conn, peer = sock.accept()
                        with conn:
                            conn.settimeout(5)
                            data = conn.recv(4096)
                            conn.sendall(b"echo:" + data + b" from:" + peer[0].encode())
                    else:
                        data, peer = sock.recvfrom(4096)
                        sock.sendto(b"echo:" + data + b" from:" + peer[0].encode(), peer)
                except (socket.timeout, OSError):
                    continue

    def close(self) -> None:
        self._stop = True
        self._thread.join(5)


def roundtrip(netns: str | None, ip: str, port: int, payload: bytes = b"hi",
              proto: str = "tcp", timeout: float = 5.0) -> bytes:
    """Sends payload to ip:port from the namespace `netns` (the host when None) and returns
    the reply."""
    def talk() -> bytes:
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.settimeout(timeout)
            if proto == "tcp":
                sock.connect((ip, port))
                sock.sendall(payload)
                return sock.recv(4096)
            sock.sendto(payload, (ip, port))
            return sock.recvfrom(4096)[0]

    return enter.run_in_netns(netns, talk) if netns else talk()


def exec_plugin(path: str, command: str, conf: dict, container_id: str = "", netns: str = "",
                ifname: str = "eth0", cni_args: str = "", cni_path=None, env_override=None):
    """Runs a plugin by the CNI protocol: env + stdin in, (exit code, parsed stdout) out.
    Independent of cni/exec.py on purpose."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CNI_COMMAND": command,
           "CNI_CONTAINERID": container_id, "CNI_NETNS": netns, "CNI_IFNAME": ifname,
           "CNI_ARGS": cni_args, "CNI_PATH": ":".join(cni_path or CNI_PATH)}
    env.update(env_override or {})
    env = {k: v for k, v in env.items() if v is not None}
    stdin = conf if isinstance(conf, bytes) else json.dumps(conf).encode()
    run = subprocess.run([path], input=stdin, env=env, capture_output=True, timeout=60)
    out = json.loads(run.stdout) if run.stdout.strip() else None
    return run.returncode, out


def host_link_names() -> set[str]:
    with rtnl.RtnlSocket() as host:
        return {link.name for link in links.list_links(host)}


def bridge_ports(bridge: str) -> set[str]:
    """The host links enslaved to `bridge`: a test's own veths, where a diff of the host's
    links would also see the links that tests on other xdist workers make meanwhile."""
    with rtnl.RtnlSocket() as host:
        found = links.list_links(host)
    index = {link.name: link.index for link in found}.get(bridge)
    return {link.name for link in found if index is not None and link.master == index}


def nat_dump() -> str:
    """The host's whole NAT state as text (nftables ruleset, which includes iptables-nft)."""
    text = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout + \
        subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    return "\n".join(line for line in text.splitlines() if not line.startswith("#"))


def _nft_tables() -> set[str]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return {line.split(None, 1)[1].strip() for line in out.splitlines() if line.strip()}


def _holds_only_reference_globals(family: str) -> bool:
    """True if the iptables nat table of `family` holds nothing but the chains that the
    reference portmap creates once per host (no container's rules, no one else's)."""
    tool = "iptables-save" if family == "ip" else "ip6tables-save"
    text = subprocess.run([tool, "-t", "nat"], capture_output=True, text=True).stdout
    rules = [line for line in text.splitlines() if line.startswith("-A ")]
    return all("CNI-HOSTPORT" in r and "CNI-DN-" not in r for r in rules)


@pytest.fixture(scope="session", autouse=True)
def restore_host_networking():
    """Puts back the host state that the plugins change for the whole host rather than per
    container: IPv4 forwarding (turned on for a gateway bridge, by ours and the reference) and
    the iptables nat tables (made by the reference plugins and our iptables backend) when they
    did not exist before and hold nothing of anyone else's."""
    forward = sysctl.read("net.ipv4.ip_forward")
    tables = _nft_tables()
    yield
    sysctl.write("net.ipv4.ip_forward", forward)
    for family in ("ip", "ip6"):
        if f"{family} nat" not in tables and f"{family} nat" in _nft_tables() \
                and _holds_only_reference_globals(family):
            subprocess.run(["nft", "delete", "table", family, "nat"], check=True)
