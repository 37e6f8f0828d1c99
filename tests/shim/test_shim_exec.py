"""exec through the shim's socket: output, exit code, env and cwd, timeouts, errors."""
from __future__ import annotations

import os

import pytest

import shim
from shim.protocol import EXEC_OUTPUT_LIMIT

pytestmark = pytest.mark.root


@pytest.fixture
def running(shims):
    info = shims.start("sleep", "1000")
    with shims.connect(info.id) as c:
        yield c


def test_output_and_exit_code(running):
    result = running.exec(["sh", "-c", "echo out; echo err >&2; exit 4"])
    assert (result.exit_code, result.signal, result.timed_out) == (4, 0, False)
    assert (result.stdout, result.stderr, result.truncated) == ("out\n", "err\n", False)


def test_env_and_cwd(running):
    result = running.exec(["sh", "-c", 'echo "$GREETING $(pwd)"'], env=["GREETING=hi"],
                          cwd="/tmp")
    assert result.stdout == "hi /tmp\n" and result.exit_code == 0


def test_timeout_kills_the_process(running):
    result = running.exec(["sh", "-c", "echo started; exec sleep 30"], timeout=0.5)
    assert (result.exit_code, result.signal, result.timed_out) == (137, 9, True)
    assert result.stdout == "started\n"
    ps = running.exec(["ps", "-o", "comm"])  # the timed out process is gone from the container
    assert ps.stdout.split()[1:] == ["sleep", "ps"]


def test_output_is_bounded(running):
    result = running.exec(["sh", "-c", f"head -c {EXEC_OUTPUT_LIMIT + 5000} /dev/zero"])
    assert result.truncated and len(result.stdout) == EXEC_OUTPUT_LIMIT
    assert result.exit_code == 0


def test_a_missing_program_is_the_runtimes_error(running):
    with pytest.raises(shim.ShimError, match="no-such-program"):
        running.exec(["no-such-program"])
    assert running.exec(["true"]).exit_code == 0  # the shim serves on


def test_exec_after_the_container_exited(shims):
    info = shims.start("true")
    with shims.connect(info.id) as c:
        c.wait(timeout=10)
        with pytest.raises(shim.ShimError, match="has exited"):
            c.exec(["true"])


def test_exec_into_a_paused_container_is_the_runtimes_error(shims):
    info = shims.start("sleep", "1000")
    assert shims.runtime("pause", info.id).returncode == 0
    try:
        with shims.connect(info.id) as c:
            with pytest.raises(shim.ShimError, match="cannot exec in a paused container"):
                c.exec(["true"], timeout=1)
    finally:
        assert shims.runtime("resume", info.id).returncode == 0
    with shims.connect(info.id) as c:
        assert c.exec(["true"]).exit_code == 0     # the shim serves on


def test_the_process_is_in_the_containers_namespaces_cgroup_and_privileges(shims):
    """The process the shim forks for an exec joins every namespace and the cgroup of the
    container's init and has its capabilities, no_new_privs and seccomp mode."""
    info = shims.start("sleep", "1000")
    kinds = ("ipc", "mnt", "net", "pid", "uts", "cgroup")
    with shims.connect(info.id) as c:
        result = c.exec(["sh", "-c", "for k in " + " ".join(kinds) + "; do readlink "
                         "/proc/self/ns/$k; done; cat /proc/self/cgroup; grep -E "
                         "'^(Cap|NoNewPrivs|Seccomp)' /proc/self/status; echo ---; "
                         "cat /proc/1/cgroup; grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/1/status"])
    assert result.exit_code == 0, result
    own, init = result.stdout.split("---\n")
    lines = own.splitlines()
    assert lines[:len(kinds)] == [os.readlink(f"/proc/{info.container_pid}/ns/{k}")
                                  for k in kinds]
    assert "\n".join(lines[len(kinds):]) + "\n" == init
