"""A container's life under its shim: start, outliving the caller, exit status (live and from the
durable file), kill, shutdown, a killed shim, bad input."""
from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import threading
import time

import pytest

import shim
from shim_testlib import alive, log_records, wait_for

pytestmark = pytest.mark.root

TICKER = ("sh", "-c", "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done")


def test_container_outlives_the_caller(shims):
    container_id = shims.new_id()
    bundle = shims.bundle(*TICKER)
    config = shims.config(bundle, container_id)
    script = (
        "import sys, time, shim\n"
        f"info = shim.start(shim.ShimConfig({config.id!r}, {bundle!r}, "
        f"log_path={config.log_path!r}, shim_root={config.shim_root!r}, "
        f"runtime_root={config.runtime_root!r}))\n"
        "print(info.pid, info.container_pid, flush=True)\n"
        "time.sleep(60)\n")
    caller = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        shim_pid, init_pid = map(int, caller.stdout.readline().split())
        shims.pids.append(shim_pid)
        # Detached: its own session, not the caller's child.
        assert os.getsid(shim_pid) != os.getsid(caller.pid)
        assert _ppid(shim_pid) != caller.pid
        assert _ppid(init_pid) == shim_pid  # the shim is the container's parent
    finally:
        caller.kill()
        caller.wait()
    size = os.path.getsize(config.log_path)
    wait_for(lambda: os.path.getsize(config.log_path) > size + 100, what="the log to grow")
    assert alive(shim_pid) and alive(init_pid)
    with shims.connect(container_id) as c:
        assert c.state().status == "running"
    records = log_records(config.log_path)
    assert records[0][1:] == ("stdout", "F", "tick 0")


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def test_exit_code_from_a_fresh_client_and_from_the_file(shims):
    info = shims.start("sh", "-c", "echo bye; exit 3")
    with shims.connect(info.id) as c:
        status = c.wait(timeout=10)
    assert (status.exit_code, status.signal, status.oom_killed) == (3, 0, False)
    assert status.started_at < status.finished_at
    with shims.connect(info.id) as c:  # a client that comes after the fact
        state = c.state()
        assert state.status == "stopped" and state.exit == status
        assert c.wait() == status
    # The shim dies; the file still tells.
    os.kill(info.pid, signal.SIGKILL)
    wait_for(lambda: not alive(info.pid), what="the shim to die")
    assert shim.read_exit(info.id, shims.roots.shim_root) == status
    assert ("stdout", "F", "bye") in [r[1:] for r in log_records(shims.log_path(info.id))]


def test_kill_through_the_socket_is_no_oom(shims):
    info = shims.start("sleep", "1000")
    with shims.connect(info.id) as c:
        c.kill("SIGKILL")
        status = c.wait(timeout=10)
    assert (status.exit_code, status.signal, status.oom_killed) == (137, 9, False)
    with shims.connect(info.id) as c, pytest.raises(shim.ShimError, match="has exited"):
        c.kill(9)


def test_kill_all(shims):
    info = shims.start("sh", "-c", "sleep 1000 & sleep 1000")
    with shims.connect(info.id) as c:
        c.kill(signal.SIGKILL, all=True)
        assert c.wait(timeout=10).signal == signal.SIGKILL


def test_orphans_are_reaped(shims):
    # Without a PID namespace of its own, the container's orphans come to the shim.
    info = shims.start("sh", "-c", "(sleep 1 &); exec sleep 1000", pid_namespace=False)
    orphans: set[int] = set()

    def orphan_came_and_went() -> bool:
        # the orphan's stay as the shim's child is seen, then its end: reaped, so no zombie
        children = set(_children(info.pid)) - {info.container_pid}
        orphans.update(children)
        return bool(orphans) and not children
    _poll(orphan_came_and_went, 20, "the orphan reparented to the shim, then reaped")
    assert _children(info.pid) == [info.container_pid]
    assert not any(os.path.exists(f"/proc/{pid}") for pid in orphans)
    with shims.connect(info.id) as c:
        assert c.state().status == "running"


def _poll(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def test_oom_kill_is_reported(shims):
    # tail keeps the whole of the one endless "line" of /dev/zero in memory.
    info = shims.start("tail", "/dev/zero", memory_limit=32 << 20)
    with shims.connect(info.id) as c:
        status = c.wait(timeout=30)
    assert status.oom_killed and status.signal == signal.SIGKILL
    assert shim.read_exit(info.id, shims.roots.shim_root).oom_killed


def test_shutdown_leaves_nothing(shims):
    info = shims.start("sleep", "1000")
    with shims.connect(info.id) as c:
        c.shutdown()  # a running container: deleted, killed
    assert not alive(info.pid) and not alive(info.container_pid)
    assert shims.leftovers(info.id) == []
    assert shim.read_exit(info.id, shims.roots.shim_root) is None
    assert info.id not in [s.id for s in shim.list_shims(shims.roots.shim_root)]


def test_killed_shim_leaves_the_container_to_the_runtime(shims):
    info = shims.start("sleep", "1000")
    assert [s.id for s in shim.list_shims(shims.roots.shim_root)].count(info.id) == 1
    os.kill(info.pid, signal.SIGKILL)
    wait_for(lambda: not alive(info.pid), what="the shim to die")
    time.sleep(0.2)
    assert alive(info.container_pid)
    assert not shim.is_alive(info.id, shims.roots.shim_root)
    with pytest.raises(shim.ShimError, match="no shim answers"):
        shims.connect(info.id)
    state = shims.runtime("state", info.id)
    assert state.returncode == 0 and '"running"' in state.stdout
    assert shims.runtime("kill", info.id, "KILL").returncode == 0
    wait_for(lambda: not alive(info.container_pid), what="the container to die")
    assert shims.runtime("delete", info.id).returncode == 0
    shim.remove_dead(info.id, shims.roots.shim_root)
    assert shims.leftovers(info.id) == []


def test_remove_dead_deletes_the_container_a_killed_shim_left_running(shims):
    info = shims.start("sleep", "1000")
    os.kill(info.pid, signal.SIGKILL)
    wait_for(lambda: not alive(info.pid), what="the shim to die")
    assert alive(info.container_pid)
    shim.remove_dead(info.id, shims.roots.shim_root, shims.roots.runtime_root)
    wait_for(lambda: not alive(info.container_pid), what="the container to die")
    assert shims.leftovers(info.id) == []
    assert shims.runtime("state", info.id).returncode != 0


def test_remove_dead_refuses_a_live_shim(shims):
    info = shims.start("sleep", "1000")
    with pytest.raises(shim.ShimError, match="is running: shut it down instead"):
        shim.remove_dead(info.id, shims.roots.shim_root, shims.roots.runtime_root)
    assert alive(info.container_pid)


def test_many_waits_in_one_thread(shims):
    """send_wait + exit_answer: the exits of several containers on one selector, and the end
    of a shim that died without answering."""
    quick = shims.start("sh", "-c", "trap 'exit 4' TERM; echo trapped; while :; do sleep 0.1; done")
    doomed = shims.start("sleep", "1000")
    # PID 1 of the container's namespace drops a SIGTERM that lands before its trap is set.
    wait_for(lambda: ("stdout", "F", "trapped") in [r[1:] for r in
                                                   log_records(shims.log_path(quick.id))],
             what="sh to set its trap")
    waiting = {}
    for info in (quick, doomed):
        client = shims.connect(info.id)
        client.send_wait()
        waiting[client] = info
    with selectors.DefaultSelector() as selector:
        for client in waiting:
            selector.register(client, selectors.EVENT_READ)
        with shims.connect(quick.id) as c:
            c.kill("SIGTERM")
        os.kill(doomed.pid, signal.SIGKILL)
        ends = {}
        while len(ends) < 2:
            ready = selector.select(timeout=60)
            assert ready, f"no exit within 60 s; have {sorted(ends)}"
            for key, _ in ready:
                info = waiting[key.fileobj]
                try:
                    status = key.fileobj.exit_answer()
                except shim.ShimError as e:
                    status = e
                if status is not None:
                    ends[info.id] = status
                    selector.unregister(key.fileobj)
                    key.fileobj.close()
    assert ends[quick.id].exit_code == 4
    assert isinstance(ends[doomed.id], shim.ShimError)  # an end of stream, or a reset
    shim.remove_dead(doomed.id, shims.roots.shim_root, shims.roots.runtime_root)
    assert shims.leftovers(doomed.id) == []


def test_bad_bundle_leaves_nothing(shims):
    config = shims.config(shims.bundle())  # no process.args
    with pytest.raises(shim.ShimError, match=r"^process\.args: "):
        shim.start(config)
    assert shims.leftovers(config.id) == []


def test_missing_executable_is_the_runtimes_error(shims):
    config = shims.config(shims.bundle("/no/such/program"))
    with pytest.raises(shim.ShimError, match="/no/such/program"):
        shim.start(config)
    assert shims.leftovers(config.id) == []


def test_bad_ids_and_duplicates(shims):
    with pytest.raises(shim.ShimError, match="invalid container ID"):
        shim.start(shims.config(shims.bundle("true"), "../escape"))
    info = shims.start("sleep", "1000")
    with pytest.raises(shim.ShimError, match="already exists"):
        shim.start(shims.config(shims.bundle("true"), info.id))
    with shims.connect(info.id) as c:
        assert c.state().status == "running"


def test_command_line(shims):
    bundle = shims.bundle("sleep", "1000")
    config = shims.config(bundle)
    argv = [os.path.join(os.path.dirname(sys.executable), "pycontainer-shim"), "--id", config.id,
            "--bundle", bundle, "--root", config.shim_root, "--runtime-root",
            config.runtime_root, "--log", config.log_path]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout)
    shims.pids.append(pid)
    with shims.connect(config.id) as c:
        assert c.state().shim_pid == pid
    again = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert again.returncode == 1
    assert again.stderr.strip() == (f"pycontainer-shim: a shim for container {config.id} "
                                    f"already exists in {config.shim_root}")


def test_shims_outlive_the_zygote(shims):
    first = shims.start("sleep", "1000")
    for pid in shims.roots.zygote_pids():
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not alive(pid), what="the zygote to die")
    with shims.connect(first.id) as c:
        assert c.state().status == "running"
    second = shims.start("sleep", "1000")  # a new zygote
    assert [alive(p) for p in shims.roots.zygote_pids()] == [True]
    with shims.connect(second.id) as c:
        assert c.state().status == "running"


def test_a_waiting_client_hears_of_the_exit(shims):
    info = shims.start("sleep", "1000")
    heard = []
    with shims.connect(info.id) as waiter, shims.connect(info.id) as killer:
        thread = threading.Thread(target=lambda: heard.append(waiter.wait(timeout=20)))
        thread.start()
        killer.kill("TERM")  # sleep as PID 1 ignores SIGTERM: nothing happens
        time.sleep(0.2)
        assert heard == [] and killer.state().status == "running"
        killer.kill("KILL")
        thread.join(20)
    assert heard[0].signal == 9


def test_drives_runc_too(shims, tmp_path):
    runc_root = str(tmp_path / "runc")
    info = shims.start("sleep", "1000", runtime="runc", runtime_root=runc_root)
    try:
        with shims.connect(info.id) as c:
            assert c.exec(["sh", "-c", "exit 2"]).exit_code == 2
            c.kill("KILL")
            assert c.wait(timeout=10).signal == signal.SIGKILL
            c.shutdown()
        assert os.listdir(runc_root) == []
        assert not os.path.exists(info.state_dir)
    finally:
        subprocess.run(["runc", "--root", runc_root, "delete", "--force", info.id],
                       capture_output=True)
