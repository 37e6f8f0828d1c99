"""OCI hooks: each sees the state on stdin, in the right order, and a failing one stops create."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

pytestmark = pytest.mark.root


def hook_script(tmp_path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_hooks_see_the_state_in_order(runtime, bundle, tmp_path):
    log = tmp_path / "hooks.log"
    record = hook_script(tmp_path, "record", f'echo "$1 $(cat)" >> {log}')
    bundle.config["hooks"] = {kind: [{"path": record, "args": ["record", kind]}]
                              for kind in ("prestart", "createRuntime", "createContainer",
                                           "poststart", "poststop")}
    bundle.process("true")
    cid = runtime.new_id()
    assert runtime.run("run", "-b", bundle.path, cid).returncode == 0
    entries = [line.split(" ", 1) for line in log.read_text().splitlines()]
    assert [kind for kind, _ in entries] == ["prestart", "createRuntime", "createContainer",
                                             "poststart", "poststop"]
    states = {kind: json.loads(state) for kind, state in entries}
    assert {s["id"] for s in states.values()} == {cid}
    assert states["createRuntime"]["pid"] > 0
    assert states["createRuntime"]["bundle"] == bundle.path
    assert states["poststart"]["status"] == "running"
    assert states["poststop"]["status"] == "stopped"


def test_create_runtime_hook_runs_in_the_runtime_namespace(runtime, bundle, tmp_path):
    out_file = tmp_path / "ns"
    hook = hook_script(tmp_path, "ns", f"readlink /proc/self/ns/mnt > {out_file}")
    bundle.config["hooks"] = {"createRuntime": [{"path": hook}]}
    bundle.process("true")
    assert runtime.run("run", "-b", bundle.path, runtime.new_id()).returncode == 0
    assert out_file.read_text().strip() == os.readlink("/proc/self/ns/mnt")


def test_start_container_hook_runs_inside(runtime, writable_bundle, tmp_path):
    writable_bundle.config["hooks"] = {"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "hostname > /root/hook-saw"]}]}
    writable_bundle.config["hostname"] = "inside"
    writable_bundle.process("true")
    assert runtime.run("run", "-b", writable_bundle.path, runtime.new_id()).returncode == 0
    assert (tmp_path / "bundle" / "rootfs" / "root" / "hook-saw").read_text() == "inside\n"


def test_failing_hook_stops_create_and_leaves_nothing(runtime, bundle, tmp_path):
    hook = hook_script(tmp_path, "fail", "echo nope >&2; exit 7")
    bundle.config["hooks"] = {"createRuntime": [{"path": hook}]}
    bundle.process("true")
    cid = runtime.new_id()
    out = runtime.run("run", "-b", bundle.path, cid)
    assert out.returncode == 1
    assert b"hooks.createRuntime[0]" in out.stderr and b"exit status 7: nope" in out.stderr
    assert runtime.leftovers(cid) == []


def test_hook_timeout(runtime, bundle, tmp_path):
    hook = hook_script(tmp_path, "slow", "sleep 10")
    bundle.config["hooks"] = {"prestart": [{"path": hook, "timeout": 1}]}
    bundle.process("true")
    cid = runtime.new_id()
    out = runtime.run("run", "-b", bundle.path, cid)
    assert out.returncode == 1 and b"timed out after 1s" in out.stderr
    assert runtime.leftovers(cid) == []


def test_runtime_killed_between_create_and_start_is_cleaned_by_delete_force(runtime, bundle, tmp_path):
    """A crash of the runtime mid-create must not leak: delete --force finds every part."""
    marker = tmp_path / "in-hook"
    hook = hook_script(tmp_path, "wait", f"touch {marker}; sleep 30")
    bundle.config["hooks"] = {"createRuntime": [{"path": hook}]}
    bundle.process("true")
    cid = runtime.new_id()
    # Its own process group: the crash takes the hook it was running along, as a SIGKILLed
    # shell's job would go, and leaves no orphan for the leak audit.
    proc = subprocess.Popen(runtime.argv("create", "-b", bundle.path, cid),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not marker.exists():
            assert time.monotonic() < deadline, "the createRuntime hook did not start within 10 s"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert runtime.run("delete", "--force", cid).returncode == 0
    assert runtime.leftovers(cid) == []
