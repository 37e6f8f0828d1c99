"""What the attack tests share: canaries, the static attacker, and scenarios run in the sandbox.

A scenario is a module-level function of a test module that takes JSON-able keyword arguments
and returns a JSON-able dict. `sandboxed` runs it in `/work/shared/sandbox.sh` (fresh mount, PID,
net, UTS and IPC namespaces), so that an attack that works, or a runtime that touches its caller's
namespaces, cannot reach the host. The whole scenario (create → exec → attack → delete) is one
call, because the sandbox's PID namespace, and every container in it, ends with the call.

Run as a script, this file is the runner on the sandbox side.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from typing import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SANDBOX = os.path.join(os.path.dirname(REPO), "shared", "sandbox.sh")
_RESULT = "SECURITY-SCENARIO-RESULT "


def _load(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# The runtime tests' fixtures and Runtime, loaded under a name of their own: every conftest is
# "conftest" to pytest.
runtime_lib = sys.modules.get("runtime_testlib") or _load(
    "runtime_testlib", os.path.join(REPO, "tests", "runtime", "conftest.py"))
Runtime = runtime_lib.Runtime


def sandboxed(scenario: Callable[..., dict], timeout: float = 240, **kwargs: object) -> dict:
    """Runs `scenario(**kwargs)` inside the sandbox and returns what it returned."""
    module = sys.modules[scenario.__module__]
    try:
        # Under sh, not as the sandbox's PID 1 itself: PID 1 must reap the orphans (a killed
        # container init, a detached exec) as the host's init does, or they never go away.
        out = subprocess.run(
            [SANDBOX, "/bin/sh", "-c", '"$@"; exit $?', "sh", sys.executable,
             os.path.abspath(__file__), module.__file__, scenario.__name__, json.dumps(kwargs)],
            capture_output=True, text=True, timeout=timeout)
    finally:
        if "root" in kwargs:
            delete_all(str(kwargs["root"]))
    for line in out.stdout.splitlines():
        if line.startswith(_RESULT):
            return json.loads(line[len(_RESULT):])
    raise AssertionError(f"scenario {scenario.__name__} gave no result (exit {out.returncode}):\n"
                         f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}")


def delete_all(root: str) -> None:
    """`delete --force` of every container a scenario left under `root`: their processes are
    gone with the sandbox's PID namespace, their state and cgroups are not."""
    if os.path.isdir(root):
        for container_id in os.listdir(root):
            subprocess.run([runtime_lib.PYCONTAINER, "--root", root, "delete", "--force",
                            container_id], capture_output=True)


def _run_scenario(path: str, function: str, kwargs: str) -> None:
    sys.path.insert(0, HERE)
    module = _load(f"scenario_{uuid.uuid4().hex[:8]}", path)
    result = getattr(module, function)(**json.loads(kwargs))
    print(_RESULT + json.dumps(result), flush=True)


@dataclass
class Canary:
    """A host file that no container may read or change, in a directory no container may add to.

    World-readable and -writable on purpose: a process that escapes as an unprivileged or
    user-namespaced uid must be able to reach it, or the test would prove nothing."""
    dir: str
    path: str
    token: str

    @classmethod
    def make(cls) -> Canary:
        directory = tempfile.mkdtemp(prefix="pycontainer-canary-", dir="/tmp")
        os.chmod(directory, 0o777)
        token = f"canary-{uuid.uuid4().hex}"
        path = os.path.join(directory, "secret")
        with open(path, "w") as f:
            f.write(token + "\n")
        os.chmod(path, 0o666)
        return cls(directory, path, token)

    def damage(self) -> list[str]:
        """How the canary differs from when it was made (empty: untouched)."""
        found = []
        try:
            with open(self.path) as f:
                if f.read() != self.token + "\n":
                    found.append(f"{self.path} was changed")
        except OSError as e:
            found.append(f"{self.path}: {e.strerror}")
        extra = sorted(set(os.listdir(self.dir)) - {"secret"})
        if extra:
            found.append(f"{self.dir} gained {extra}")
        return found

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class CopyRuntime(Runtime):
    """`pycontainer` run by a copy of the interpreter: what an exe-overwrite attack may hit."""

    def __init__(self, root: str, python: str) -> None:
        super().__init__(root)
        self.python = python

    def argv(self, *args: str) -> list[str]:
        return [self.python, os.path.join(REPO, "bin", "pycontainer"), "--root", self.root, *args]

    def cleanup(self) -> None:
        # By the venv's interpreter: the copy may be what an attack just broke.
        for container_id in self.ids:
            subprocess.run(super().argv("delete", "--force", container_id), capture_output=True)


def copy_interpreter(directory: str) -> str:
    """A venv-like tree whose bin/python3 is a private copy of the host's interpreter (the
    canary) and whose lib is the project venv's, so the copy imports what the venv does."""
    os.makedirs(os.path.join(directory, "bin"))
    python = os.path.join(directory, "bin", "python3")
    venv = sys.prefix  # the tests run from the project's venv
    shutil.copy2(os.path.realpath(sys.executable), python)
    shutil.copy2(os.path.join(venv, "pyvenv.cfg"), os.path.join(directory, "pyvenv.cfg"))
    os.symlink(os.path.join(venv, "lib"), os.path.join(directory, "lib"))
    return python


def wait_for(path: str, text: str, limit: float = 60) -> str:
    """The content of `path` once it holds `text`, or whatever it holds after `limit` seconds
    (the caller asserts on the content, never on the time)."""
    import time

    deadline = time.monotonic() + limit
    content = ""
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                content = f.read()
        except FileNotFoundError:
            pass
        if text in content:
            break
        time.sleep(0.05)
    return content


def wait_gone(pid: int, limit: float = 60) -> None:
    """Returns once process `pid` (of the caller's PID namespace) has exited, or after `limit`
    seconds."""
    import time

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except (FileNotFoundError, ProcessLookupError):
            return
        time.sleep(0.05)


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def up(levels: int = 24) -> str:
    """Enough `..` to climb from anywhere to the root of whatever tree a directory is in."""
    return "../" * levels


def mountinfo() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return f.read().splitlines()


def root_mount(lines: list[str]) -> str:
    """The mountinfo line of `/` without its mount ID: mount point, root, options, propagation."""
    for line in lines:
        fields = line.split()
        if fields[4] == "/":
            return " ".join(fields[3:])
    return ""


# At the root of every hostile rootfs: climbing `..` from a cwd inside the container's root ends
# where this file is; from a cwd outside, it ends at the host's `/`, where it is not.
ROOTFS_MARKER = ".pycontainer-rootfs-marker"


def add_user_namespace(config: dict) -> None:
    """A user namespace mapping root to 100000, as the runtime tests use it (without /sys, which
    a user-namespaced container cannot mount without its own network namespace's sysfs)."""
    config["linux"]["namespaces"].append({"type": "user"})
    for key in ("uidMappings", "gidMappings"):
        config["linux"][key] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    config["mounts"] = [m for m in config["mounts"]
                        if m["destination"] not in ("/sys", "/sys/fs/cgroup")]


def build_attacker(directory: str) -> str:
    binary = os.path.join(directory, "attack")
    subprocess.run(["gcc", "-static", "-O1", "-o", binary, os.path.join(HERE, "attack.c")],
                   check=True, capture_output=True)
    return binary


def result(out: subprocess.CompletedProcess) -> dict:
    return {"rc": out.returncode, "stdout": (out.stdout or b"").decode(errors="replace"),
            "stderr": (out.stderr or b"").decode(errors="replace")}


def detached(rt: Runtime, *args: str) -> dict:
    """`create` or `run -d`: the container keeps whatever stdout and stderr it is given, so
    they are a file and /dev/null rather than pipes that would never reach EOF."""
    with tempfile.TemporaryFile() as err:
        out = rt.run(*args, capture_output=False, stdout=subprocess.DEVNULL, stderr=err)
        err.seek(0)
        return {"rc": out.returncode, "stdout": "", "stderr": err.read().decode(errors="replace")}


def one_line_error(stderr: str | bytes) -> bool:
    """A refusal as the runtime must give it: one line, no traceback."""
    text = stderr.decode() if isinstance(stderr, bytes) else stderr
    lines = [line for line in text.splitlines() if line.strip()]
    return len(lines) == 1 and "Traceback" not in text


if __name__ == "__main__":
    _run_scenario(*sys.argv[1:4])
