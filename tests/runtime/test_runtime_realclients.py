"""podman and containerd, unchanged, drive pycontainer in place of runc (issue 10).

The scripts in shared/realclients install their tools from Debian, build a busybox image, and run
18 scenarios each through the real client: run, exit codes, env, workdir, read-only root, user,
tty via console socket, memory limit, detached run, exec (exit code, env, cwd, tty), pause/resume,
stop with a trapped SIGTERM, logs, kill with a signal, kill --all, ps.
"""
from __future__ import annotations

import os
import re
import subprocess

import pytest

from testlib.paths import PYCONTAINER, REPO

# Beside the checkout, as on the development machines (PYCONTAINER_REALCLIENTS points elsewhere).
REALCLIENTS = os.environ.get("PYCONTAINER_REALCLIENTS",
                             os.path.join(os.path.dirname(REPO), "shared", "realclients"))

# A first run installs the clients from Debian: each script has 900 s (check()), so the test too.
pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(960)]


@pytest.fixture(autouse=True)
def realclients() -> None:
    """A skip on a machine without the scripts; in CI (CI=true), where they must be, a failure."""
    if os.path.isdir(REALCLIENTS):
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{REALCLIENTS} is missing, and CI=true: the real clients must run in CI "
                    "(PYCONTAINER_REALCLIENTS points elsewhere)")
    pytest.skip(f"{REALCLIENTS} is not on this machine")


@pytest.fixture(autouse=True)
def podman_cgroup_parent():
    """podman leaves its cgroupfs parent behind: remove it if it was not there before, and empty."""
    parents = [os.path.join("/sys/fs/cgroup", h, "libpod_parent") for h in os.listdir("/sys/fs/cgroup")]
    existed = {p for p in parents if os.path.isdir(p)}
    yield
    for path in parents:
        if path not in existed and os.path.isdir(path):
            try:
                os.rmdir(path)
            except OSError:
                pass  # still in use: not ours to judge


# Debian 12's ctr (containerd 1.6.20) can lose a short-lived process's whole output, with runc as
# with us (runc 5/500 exec, 12/400 tty runs here): `ctr task exec` cancels its stdout fifo while
# still opening it once the exit is in, and `task.Delete` closes the fifos before the copy ends
# (fixed in 1.6.22). A check that got nothing, or only the NUL the tty check types, lost the race;
# so did an exec -t whose pty shows only ctr's complaint that the process it came to resize had
# already exited (it then logs "resize pty ... cannot resize a stopped container").
_LOST_OUTPUT = re.compile(r"^FAIL [\w-]+: want '[^']+' got "
                          r"'((\^@)?|[^']*resize pty[^']*cannot resize a stopped container[^']*)' ")


def check(script: str, runtime_path: str) -> None:
    for attempt in range(2):
        out = subprocess.run([os.path.join(REALCLIENTS, script), runtime_path],
                             capture_output=True, text=True, timeout=900)
        summary = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
        failures = [line for line in out.stdout.splitlines() if line.startswith("FAIL")]
        if summary == "18 passed, 0 failed" or not failures or \
                not all(_LOST_OUTPUT.match(line) for line in failures):
            break  # a pass, or a failure the client's races do not explain
    assert summary == "18 passed, 0 failed", "\n".join(failures) or out.stdout + out.stderr


def test_podman_drives_pycontainer():
    check("podman-check.sh", PYCONTAINER)


def test_podman_drives_pycontainer_named_runc(tmp_path):
    """Under the name runc, podman adds --log and --log-format json to every call."""
    link = tmp_path / "runc"
    link.symlink_to(PYCONTAINER)
    check("podman-check.sh", str(link))


def test_containerd_runc_shim_drives_pycontainer():
    check("containerd-check.sh", PYCONTAINER)
