"""create -> state -> start -> state -> kill -> delete, and the verbs around a running container,
as podman and containerd's shim call them."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from runtime_waits import read_line

pytestmark = pytest.mark.root


def create(runtime, bundle, cid, *extra, stdout=subprocess.DEVNULL):
    """`create` with stdio the container may keep: files, as a pipe would never see EOF."""
    import tempfile

    with tempfile.TemporaryFile() as err:
        out = runtime.run("create", "-b", bundle.path, *extra, cid, capture_output=False,
                          stdout=stdout, stderr=err, stdin=subprocess.DEVNULL)
        err.seek(0)
        assert out.returncode == 0, err.read()
    return out


def ended(pid: int) -> bool:
    """Gone, or a zombie waiting for its parent."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_for(predicate, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s"
        time.sleep(0.02)


def test_create_state_start_kill_delete(runtime, bundle, tmp_path):
    bundle.config["annotations"] = {"org.example.key": "value"}
    bundle.process("sh", "-c", "trap 'exit 0' TERM; echo started; while :; do sleep 0.1; done")
    cid = runtime.new_id()
    pid_file = tmp_path / "pid"
    log = open(tmp_path / "out", "wb")
    create(runtime, bundle, cid, "--pid-file", str(pid_file), stdout=log)
    state = runtime.state(cid)
    assert state["status"] == "created"
    assert state["id"] == cid and state["bundle"] == bundle.path
    assert state["annotations"] == {"org.example.key": "value"}
    assert set(state) >= {"ociVersion", "pid", "rootfs", "created", "owner"}
    # The pid file holds the bare number: the containerd shim refuses a trailing newline.
    assert pid_file.read_text() == str(state["pid"])
    assert (tmp_path / "out").read_bytes() == b""  # nothing runs before start

    assert runtime.run("start", cid).returncode == 0
    assert runtime.state(cid)["status"] == "running"
    wait_for(lambda: (tmp_path / "out").read_bytes() == b"started\n", "'started' in the log")
    assert runtime.run("start", cid).returncode == 1  # only once

    assert runtime.run("kill", cid, "TERM").returncode == 0
    wait_for(lambda: runtime.state(cid)["status"] == "stopped", "'stopped' status")
    assert runtime.state(cid)["pid"] == 0
    assert runtime.run("kill", cid, "TERM").returncode == 1  # not running any more
    assert runtime.run("delete", cid).returncode == 0
    assert runtime.leftovers(cid) == []
    assert runtime.run("state", cid).returncode == 1


def test_created_container_is_the_callers_child_and_inherits_stdio(runtime, bundle, tmp_path):
    """conmon and the containerd shim reap the init themselves: create must leave it to the
    caller (or the caller's subreaper) with the stdio create was given."""
    bundle.process("sh", "-c", "echo to-stdout; echo to-stderr >&2")
    cid = runtime.new_id()
    out_r, out_w = os.pipe()
    import prctl

    prctl.set_child_subreaper(True)
    try:
        proc = subprocess.run(runtime.argv("create", "-b", bundle.path, cid), stdout=out_w,
                              stderr=out_w, stdin=subprocess.DEVNULL)
        os.close(out_w)
        assert proc.returncode == 0
        pid = runtime.state(cid)["pid"]
        with open(f"/proc/{pid}/stat") as f:
            assert int(f.read().rsplit(")", 1)[1].split()[1]) == os.getpid()
        assert runtime.run("start", cid).returncode == 0
        assert os.read(out_r, 100) + os.read(out_r, 100) in (b"to-stdout\nto-stderr\n",)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        prctl.set_child_subreaper(False)
        os.close(out_r)


def test_delete_refuses_a_running_container_unless_forced(runtime, bundle):
    bundle.process("sleep", "60")
    cid = runtime.new_id()
    create(runtime, bundle, cid)
    assert runtime.run("start", cid).returncode == 0
    out = runtime.run("delete", cid)
    assert out.returncode == 1 and b"not stopped: running" in out.stderr
    assert runtime.run("delete", "--force", cid).returncode == 0
    assert runtime.leftovers(cid) == []


def test_delete_of_a_created_container_kills_its_init(runtime, bundle):
    bundle.process("true")
    cid = runtime.new_id()
    create(runtime, bundle, cid)
    pid = runtime.state(cid)["pid"]
    assert runtime.run("delete", cid).returncode == 0
    wait_for(lambda: ended(pid), f"end of process {pid}")
    assert runtime.leftovers(cid) == []


def test_delete_of_a_stopped_container_ends_what_its_init_left_in_the_cgroup(runtime, bundle,
                                                                         tmp_path):
    """Without a PID namespace the init's child outlives it: the container is stopped, its
    cgroup is not empty, and delete (which removes an empty cgroup by rmdir alone) kills the
    child through the cgroup driver and removes the cgroup."""
    bundle.config["linux"]["namespaces"] = [
        ns for ns in bundle.config["linux"]["namespaces"] if ns["type"] != "pid"]
    bundle.process("sh", "-c", "sleep 600 & echo $!")
    cid = runtime.new_id()
    out = tmp_path / "out"
    with open(out, "wb") as f:
        create(runtime, bundle, cid, stdout=f)
    assert runtime.run("start", cid).returncode == 0
    wait_for(lambda: runtime.state(cid)["status"] == "stopped", "stopped container")
    child = int(out.read_text())
    try:
        assert not ended(child), "the child did not outlive the init"
        assert runtime.run("delete", cid).returncode == 0
        wait_for(lambda: ended(child), f"end of process {child}")
    finally:
        if not ended(child):  # delete failed to: the state that named it is gone
            os.kill(child, signal.SIGKILL)
    assert runtime.leftovers(cid) == []


def test_delete_force_of_unknown_id_succeeds(runtime):
    assert runtime.run("delete", "--force", "no-such-container").returncode == 0
    out = runtime.run("delete", "no-such-container")
    assert out.returncode == 1 and b"does not exist" in out.stderr


@pytest.mark.parametrize("sig", ["USR1", "SIGUSR1", str(int(signal.SIGUSR1))])
def test_kill_takes_names_and_numbers(runtime, bundle, tmp_path, sig):
    bundle.process("sh", "-c", "trap 'echo got-usr1; exit 42' USR1; echo ready; "
                   "while :; do sleep 0.1; done")
    cid = runtime.new_id()
    log = open(tmp_path / "out", "wb")
    create(runtime, bundle, cid, stdout=log)
    runtime.run("start", cid)
    wait_for(lambda: b"ready" in (tmp_path / "out").read_bytes(), "'ready' from the container")
    assert runtime.run("kill", cid, sig).returncode == 0
    wait_for(lambda: b"got-usr1" in (tmp_path / "out").read_bytes(), "'got-usr1' in the log")


def test_kill_all_signals_every_process(runtime, bundle):
    bundle.process("sh", "-c", "sleep 60 & sleep 61 & wait")
    cid = runtime.new_id()
    create(runtime, bundle, cid)
    runtime.run("start", cid)
    wait_for(lambda: len(json.loads(runtime.run("ps", "--format", "json", cid).stdout)) == 3,
             "3 processes in `ps`")
    assert runtime.run("kill", "--all", cid, "9").returncode == 0
    wait_for(lambda: runtime.state(cid)["status"] == "stopped", "'stopped' status")


def test_list_and_ps(runtime, bundle):
    bundle.process("sleep", "60")
    cid = runtime.new_id()
    create(runtime, bundle, cid)
    runtime.run("start", cid)
    pid = runtime.state(cid)["pid"]
    table = runtime.run("list").stdout.decode().splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert table[1].split()[:4] == [cid, str(pid), "running", bundle.path]
    assert table[1].split()[-1] == "root"
    assert runtime.run("list", "-q").stdout == f"{cid}\n".encode()
    listed = json.loads(runtime.run("list", "--format", "json").stdout)
    assert [(c["id"], c["status"], c["pid"]) for c in listed] == [(cid, "running", pid)]
    assert json.loads(runtime.run("ps", "--format", "json", cid).stdout) == [pid]
    ps = runtime.run("ps", cid).stdout.decode().splitlines()
    assert ps[0].split()[:2] == ["UID", "PID"] and ps[1].split()[1] == str(pid)


def test_pause_and_resume(runtime, bundle, tmp_path):
    bundle.process("sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /dev/shm/n; sleep 0.05; "
                   "cat /dev/shm/n; done")
    cid = runtime.new_id()
    log = open(tmp_path / "out", "wb")
    create(runtime, bundle, cid, stdout=log)
    runtime.run("start", cid)
    wait_for(lambda: len((tmp_path / "out").read_bytes()) > 0, "output from the container")
    assert runtime.run("pause", cid).returncode == 0
    assert runtime.state(cid)["status"] == "paused"
    assert runtime.run("pause", cid).returncode == 1
    frozen = (tmp_path / "out").read_bytes()
    time.sleep(0.3)
    assert (tmp_path / "out").read_bytes() == frozen
    assert runtime.run("resume", cid).returncode == 0
    assert runtime.state(cid)["status"] == "running"
    wait_for(lambda: (tmp_path / "out").read_bytes() != frozen, "progress after resume")
    assert runtime.run("resume", cid).returncode == 1


def test_delete_force_of_a_paused_container(runtime, bundle):
    bundle.process("sleep", "60")
    cid = runtime.new_id()
    create(runtime, bundle, cid)
    runtime.run("start", cid)
    runtime.run("pause", cid)
    assert runtime.run("delete", "--force", cid).returncode == 0
    assert runtime.leftovers(cid) == []


def test_detached_run(runtime, bundle):
    bundle.process("sleep", "60")
    cid = runtime.new_id()
    out = runtime.run("run", "-d", "-b", bundle.path, cid, capture_output=False,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert out.returncode == 0
    assert runtime.state(cid)["status"] == "running"


def test_run_keep_leaves_a_stopped_container(runtime, bundle):
    bundle.process("true")
    cid = runtime.new_id()
    assert runtime.run("run", "--keep", "-b", bundle.path, cid).returncode == 0
    assert runtime.state(cid)["status"] == "stopped"
    assert runtime.run("delete", cid).returncode == 0
    assert runtime.leftovers(cid) == []


def test_preserve_fds(runtime, bundle, tmp_path):
    bundle.process("sh", "-c", "cat <&3; ls /proc/self/fd")
    data = tmp_path / "data"
    data.write_text("passed along\n")
    argv = runtime.argv("run", "--preserve-fds", "1", "-b", bundle.path, runtime.new_id())
    out = subprocess.run(["sh", "-c", 'exec "$@" 3<"$0"', str(data), *argv], capture_output=True)
    lines = out.stdout.decode().split()
    assert lines[:2] == ["passed", "along"]
    assert sorted(lines[2:]) == ["0", "1", "2", "3", "4"]  # 4: the directory ls reads


def test_default_root_works_without_flag(bundle):
    """podman as root passes no --root: /run/pycontainer must do."""
    import sys
    import uuid

    cid = f"t{uuid.uuid4().hex[:10]}"
    exe = os.path.join(os.path.dirname(sys.executable), "pycontainer")
    bundle.process("true")
    try:
        out = subprocess.run([exe, "run", "-b", bundle.path, "--keep", cid], capture_output=True)
        assert out.returncode == 0, out.stderr
        assert os.path.isdir(f"/run/pycontainer/{cid}")
    finally:
        subprocess.run([exe, "delete", "--force", cid], capture_output=True)
    assert not os.path.exists(f"/run/pycontainer/{cid}")


def test_events_stats_and_oom(runtime, bundle):
    bundle.config["linux"]["resources"]["memory"] = {"limit": 32 * 1024 * 1024}
    bundle.config["linux"]["resources"]["pids"] = {"limit": 50}
    bundle.process("sh", "-c", "while [ ! -e /dev/shm/go ]; do sleep 0.05; done; "
                   "x=0123456789; while :; do x=$x$x; done")
    cid = runtime.new_id()
    assert runtime.run("run", "-d", "-b", bundle.path, cid, capture_output=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    out = runtime.run("events", "--stats", cid)
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    assert stats["type"] == "stats" and stats["id"] == cid
    assert stats["data"]["memory"]["usage"]["limit"] == 32 * 1024 * 1024
    assert stats["data"]["pids"]["limit"] == 50
    events = subprocess.Popen(runtime.argv("events", "--interval", "100ms", cid),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = read_line(events.stdout, "the first event of `events --interval`")
        assert json.loads(first)["type"] == "stats"
        # Now the shell eats memory until the OOM killer strikes.
        assert runtime.run("exec", cid, "touch", "/dev/shm/go").returncode == 0
        kinds = []
        deadline = time.monotonic() + 60
        while "oom" not in kinds:
            line = read_line(events.stdout, f"an oom event (after {kinds})",
                             timeout=max(deadline - time.monotonic(), 0))
            assert line, (kinds, events.communicate(timeout=10)[1])
            kinds.append(json.loads(line)["type"])
        assert events.wait(timeout=10) == 0  # the container stopped: events ends
    finally:
        if events.poll() is None:
            events.kill()
            events.wait(timeout=10)
