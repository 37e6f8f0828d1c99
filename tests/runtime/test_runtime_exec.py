"""`exec`: a new process in the namespaces and cgroup of a running container."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

pytestmark = pytest.mark.root


@pytest.fixture
def running(runtime, bundle):
    bundle.config["hostname"] = "execbox"
    bundle.process("sleep", "60")
    cid = runtime.new_id()
    out = runtime.run("run", "-d", "-b", bundle.path, cid, capture_output=False,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert out.returncode == 0
    return cid


def test_exec_joins_the_container(runtime, running):
    init_pid = runtime.state(running)["pid"]
    out = runtime.run("exec", running, "sh", "-c", "hostname; readlink /proc/self/ns/net; "
                      "readlink /proc/self/ns/mnt; cat /proc/1/cmdline | tr '\\0' ' '")
    assert out.returncode == 0, out.stderr
    hostname, net, mnt, cmdline = out.stdout.decode().splitlines()
    assert hostname == "execbox"
    assert net == os.readlink(f"/proc/{init_pid}/ns/net")
    assert mnt == os.readlink(f"/proc/{init_pid}/ns/mnt")
    assert cmdline.strip() == "sleep 60"


def test_exec_into_a_user_namespace_and_its_pid_namespace(runtime, userns_bundle):
    # The process is born in the container's PID namespace before it joins the user namespace
    # that owns it (exec_process): both must hold, and the caller's own PID namespace is back.
    userns_bundle.process("sleep", "60")
    cid = runtime.new_id()
    assert runtime.run("run", "-d", "-b", userns_bundle.path, cid, capture_output=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    init_pid = runtime.state(cid)["pid"]
    out = runtime.run("exec", cid, "sh", "-c", "id -u; cat /proc/self/uid_map; "
                      "readlink /proc/self/ns/pid; readlink /proc/self/ns/user; cat /proc/1/cmdline")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().splitlines()
    assert lines[0] == "0" and lines[1].split() == ["0", "100000", "65536"]
    assert lines[2:4] == [os.readlink(f"/proc/{init_pid}/ns/{k}") for k in ("pid", "user")]
    assert lines[4].replace("\0", " ").strip() == "sleep 60"
    runtime.run("delete", "--force", cid)


def test_exec_process_is_in_the_container_cgroup(runtime, running):
    out = runtime.run("exec", running, "cat", "/proc/self/cgroup")
    assert f"/pycontainer/{running}".encode() in out.stdout


def test_exec_exit_code_env_cwd_user(runtime, running):
    assert runtime.run("exec", running, "sh", "-c", "exit 4").returncode == 4
    out = runtime.run("exec", "-e", "V=x", "--cwd", "/tmp", "--user", "1000:1000", running,
                      "sh", "-c", "echo $V $(pwd) $(id -u):$(id -g)")
    assert out.stdout == b"x /tmp 1000:1000\n"


def test_exec_with_a_process_file_and_detach(runtime, running, tmp_path):
    process = {"args": ["sh", "-c", "echo detached > /dev/shm/mark; sleep 1"], "cwd": "/",
               "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}
    (tmp_path / "process.json").write_text(json.dumps(process))
    pid_file = tmp_path / "exec.pid"
    out = runtime.run("exec", "--process", str(tmp_path / "process.json"), "--detach",
                      "--pid-file", str(pid_file), running, capture_output=False,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert out.returncode == 0
    assert pid_file.read_text().isdigit()
    assert runtime.run("exec", running, "sh", "-c",
                       "while [ ! -s /dev/shm/mark ]; do sleep 0.05; done; cat /dev/shm/mark"
                       ).stdout == b"detached\n"


def test_exec_missing_command_is_one_clear_line(runtime, running):
    out = runtime.run("exec", running, "no-such-command")
    assert out.returncode == 1
    assert out.stderr.count(b"\n") == 1 and b"no-such-command" in out.stderr


def test_exec_in_a_stopped_container_fails(runtime, bundle):
    bundle.process("true")
    cid = runtime.new_id()
    runtime.run("run", "--keep", "-b", bundle.path, cid)
    out = runtime.run("exec", cid, "true")
    assert out.returncode == 1 and b"stopped" in out.stderr


def test_exec_cap_adds_a_capability(runtime, running):
    out = runtime.run("exec", "--cap", "CAP_SYS_ADMIN", running, "grep", "CapEff", "/proc/self/status")
    assert int(out.stdout.split()[1], 16) & (1 << 21)


def test_a_container_of_an_older_state_file_still_execs_pauses_and_deletes(runtime, running):
    """The state records the cgroup mounts (so exec does not read mountinfo); a state written
    before that field existed is read as it is."""
    path = os.path.join(runtime.root, running, "state.json")
    with open(path) as f:
        state = json.load(f)
    assert state["cgroup_hierarchies"]["mode"] in ("v1", "v2", "hybrid")
    del state["cgroup_hierarchies"]
    with open(path, "w") as f:
        json.dump(state, f)
    assert runtime.run("exec", running, "true").returncode == 0
    assert runtime.run("pause", running).returncode == 0
    assert runtime.state(running)["status"] == "paused"
    assert runtime.run("resume", running).returncode == 0
    assert runtime.run("delete", "--force", running).returncode == 0
    assert runtime.leftovers(running) == []
