"""CVE-2025-52565 (the /dev/console bind follows the rootfs's symlink): with the image's own /dev
and `process.terminal: true`, a rootfs whose /dev/console is a symlink to a file (the canary bound
at /canary, or a procfs file) must not get the terminal mounted over that file: it stays what it
was in the container, and the canary is unchanged."""
from __future__ import annotations

import os
import socket

import pytest

from seclib import one_line_error
from testlib.console import console_socket as listening

pytestmark = pytest.mark.root


@pytest.fixture
def console_socket(tmp_path):
    """The --console-socket a containerd shim or conmon would listen on."""
    with listening(str(tmp_path / "console.sock")) as console:
        yield console


def receive_master(server: socket.socket) -> int:
    conn, _ = server.accept()
    with conn:
        _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    return fds[0]

PROBE = ("stat -c '%n %F' /canary /proc/cmdline; stat -c '%n %F %t' /dev/console; "
         "cat /canary; echo pwned > /dev/console; echo probe-end")


def read_terminal(master: int, limit: float = 30) -> str:
    """What the container wrote to its terminal, up to the probe's last line or EOF; at most
    `limit` seconds of waiting, so that a terminal nobody closes fails the test, not hangs it."""
    import select
    import time

    data = b""
    deadline = time.monotonic() + limit
    while b"probe-end" not in data and time.monotonic() < deadline:
        if not select.select([master], [], [], max(0.0, deadline - time.monotonic()))[0]:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the last holder of the slave is gone
            break
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").replace("\r", "")


@pytest.mark.parametrize("target", ["/canary", "/proc/cmdline"])
def test_console_bind_does_not_follow_a_symlink(runtime, hostile_bundle, canary, console_socket,
                                                target):
    path, server = console_socket
    config = hostile_bundle.config
    config["mounts"] = [m for m in config["mounts"] if m["destination"] != "/dev"]
    config["mounts"].append({"destination": "/canary", "type": "bind", "source": canary.path,
                             "options": ["bind"]})
    open(os.path.join(hostile_bundle.rootfs, "canary"), "w").close()
    os.symlink(target, os.path.join(hostile_bundle.rootfs, "dev", "console"))
    hostile_bundle.process("sh", "-c", PROBE, terminal=True)
    cid = runtime.new_id()
    out = runtime.run("run", "-d", "--console-socket", path, "-b", hostile_bundle.path, cid)
    if out.returncode != 0:
        assert one_line_error(out.stderr), out.stderr
        assert canary.damage() == [] and runtime.leftovers(cid) == []
        return
    master = receive_master(server)
    try:
        text = read_terminal(master)
    finally:
        os.close(master)
    assert canary.damage() == [], f"the canary was written through the console: {text}"
    lines = text.splitlines()
    kinds = {line.split()[0]: line.split(None, 1)[1] for line in lines[:2] if " " in line}
    assert kinds.get("/canary", "").startswith("regular") \
        and kinds.get("/proc/cmdline", "").startswith("regular"), \
        f"the terminal was mounted over {target}: {text}"
    assert canary.token in lines and "probe-end" in lines, text
