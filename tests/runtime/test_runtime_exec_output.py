"""A detached exec's output and exit, taken as containerd's runc shim takes them.

The shim runs `exec --detach --pid-file F --process P` with pipe write ends (or
--console-socket) as the process's stdio and, as a subreaper, reaps the process named by F once
the runtime is gone. It must find everything the process wrote in the pipe (or on the pty
master it was sent), an end of file once the process is gone (nothing else holding a write
end), and the process's own PID in F: the PID it reaps and takes the exit code of. Short
commands in a tight loop, as `ctr task exec` runs them.

The empty `ctr task exec` output and the tty check's lost /dev/pts/0 that the containerd check
shows now and then are containerd 1.6.20's, and runc shows them too: ctr's process.Delete
cancels the stdout fifo while the goroutine opening it has not yet seen the shim's open (the
fifo is then closed unread), and its task.Delete closes the fifos before waiting for their copy
(fixed in containerd 1.6.22). A ctr built with both changed showed neither. This test keeps our
side of the contract.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from testlib.paths import PYCONTAINER

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(300)]

LOOPS = 40

# The shim's side, in a process of its own: it becomes a subreaper, which the pytest process
# must not (every orphan of the session would come to it).
_SHIM = r"""
import ctypes, json, os, re, select, socket, subprocess, sys, tempfile, time

a = json.loads(sys.argv[1])
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
    sys.exit("prctl PR_SET_CHILD_SUBREAPER failed")


def drain(fd, deadline):
    # Everything until end of file (a pipe) or EIO (a pty whose last user is gone).
    data = b""
    while True:
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            return data, "no end of file within 10 s: something still holds a write end"
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            return data, ""
        data += chunk


def reap(pid, deadline):
    while time.monotonic() < deadline:
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None, f"pid {pid} from the pid file is not a process we can reap"
        if got:
            return os.waitstatus_to_exitcode(status), ""
        time.sleep(0.01)
    return None, f"pid {pid} did not exit within 10 s"


failures = []
for i in range(a["loops"]):
    pid_file = os.path.join(a["dir"], f"exec{i}.pid")
    argv = [a["pycontainer"], "--root", a["root"], "exec", "--detach", "--pid-file", pid_file,
            "--process", a["process"]]
    master = -1
    if a["tty"]:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock_path = os.path.join(a["dir"], f"console{i}.sock")
        server.bind(sock_path)
        server.listen(1)
        server.settimeout(30)
        runtime = subprocess.Popen(argv + ["--console-socket", sock_path, a["cid"]],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        try:
            conn, _ = server.accept()
            with conn:
                _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
            master = fds[0]
        except OSError as e:
            failures.append(f"loop {i}: no pty master: {e}")
        finally:
            server.close()
            os.unlink(sock_path)
        err = runtime.communicate(timeout=60)[1]
        rc = runtime.returncode
        read_end = master
    else:
        read_end, write_end = os.pipe()
        # stderr to a file: a pipe would keep run() waiting for whatever still holds it
        with tempfile.TemporaryFile() as err_file:
            rc = subprocess.run(argv + [a["cid"]], stdin=subprocess.DEVNULL, stdout=write_end,
                                stderr=err_file, timeout=60).returncode
            err_file.seek(0)
            err = err_file.read()
        os.close(write_end)  # as the shim does once the runtime returned
    if rc != 0:
        failures.append(f"loop {i}: exec exit status {rc}: {err.decode(errors='replace')}")
        if read_end >= 0:
            os.close(read_end)
        continue
    deadline = time.monotonic() + 10
    with open(pid_file) as f:
        text = f.read()
    out, problem = drain(read_end, deadline) if read_end >= 0 else (b"", "")
    if read_end >= 0:
        os.close(read_end)
    status, reap_problem = reap(int(text), deadline)
    if problem or reap_problem:
        failures.append(f"loop {i}: {problem or reap_problem}")
    if not re.fullmatch(a["want"], out.decode(errors="replace")):
        failures.append(f"loop {i}: output {out!r}, want {a['want']!r}")
    if status not in (None, 0):
        failures.append(f"loop {i}: exit status {status}")
print(json.dumps(failures))
"""


@pytest.fixture
def running(runtime, bundle):
    bundle.process("sleep", "600")
    cid = runtime.new_id()
    out = runtime.run("run", "-d", "-b", bundle.path, cid, capture_output=False,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert out.returncode == 0
    return cid


def shim_loop(runtime, cid: str, tmp_path, args: list[str], terminal: bool, want: str) -> list[str]:
    process = {"args": args, "cwd": "/tmp", "env": ["PATH=/bin", "TERM=xterm"],
               "user": {"uid": 0, "gid": 0}, "terminal": terminal}
    (tmp_path / "process.json").write_text(json.dumps(process))
    work = tmp_path / "shim"
    work.mkdir()
    spec = {"pycontainer": PYCONTAINER, "root": runtime.root, "cid": cid, "loops": LOOPS,
            "process": str(tmp_path / "process.json"), "dir": str(work), "tty": terminal,
            "want": want}
    out = subprocess.run([sys.executable, "-c", _SHIM, json.dumps(spec)], capture_output=True,
                         timeout=280)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    return json.loads(out.stdout)


def test_detached_exec_output_through_a_pipe(runtime, running, tmp_path):
    failures = shim_loop(runtime, running, tmp_path, ["pwd"], False, "/tmp\n")
    assert not failures, f"{len(failures)} of {LOOPS}: " + "; ".join(failures[:5])


def test_detached_exec_output_through_the_console_socket(runtime, running, tmp_path):
    failures = shim_loop(runtime, running, tmp_path, ["tty"], True, r"/dev/pts/\d+\r\n")
    assert not failures, f"{len(failures)} of {LOOPS}: " + "; ".join(failures[:5])
