"""One runtime-tools validation file against one runtime, in the sandbox, leaving nothing behind.

Each run gets a work directory (the runtime's state root, TMPDIR for the bundles, the runtime's
log), cgroups of its own under `pycontainer/` in every hierarchy, and a fresh sandbox (mount,
PID, net, UTS, IPC namespaces) in which the file runs in a mount namespace of its own. After the
run, everything it could leave is looked for, removed, and named in `TapRun.leftovers`, with
container IDs and this run's cgroup replaced by placeholders so two runtimes' lists compare.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from conformance_tap import TapRun, parse

HERE = os.path.dirname(os.path.abspath(__file__))
SANDBOX = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "sandbox.sh"))
RUN_SCRIPT = os.path.join(HERE, "run_tap_file.sh")
CGROUP_ROOT = "/sys/fs/cgroup"
# The suite's fixed cgroup paths (runtime-tools cgroups.AbsCgroupPath, RelCgroupPath's top).
SUITE_CGROUPS = ("cgrouptest", "testdir")
# How long processes of a finished sandbox may take to leave their cgroups (they are SIGKILLed
# with its PID namespace; the kernel reaps them asynchronously).
CGROUP_DRAIN_SECONDS = 10
RUN_LOCK = "/run/lock/pycontainer-runtime-tools.lock"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class RunCgroup:
    """`pycontainer/<name>` in every cgroup hierarchy: where the sandbox runs."""

    name: str
    hierarchies: tuple[str, ...]

    @classmethod
    def new(cls) -> "RunCgroup":
        return cls(f"runtime-tools-{uuid.uuid4().hex[:10]}", tuple(_hierarchies()))

    def make(self) -> None:
        for hierarchy in self.hierarchies:
            parent = os.path.join(hierarchy, "pycontainer")
            for path in (parent, os.path.join(parent, self.name)):
                if not os.path.isdir(path):
                    os.mkdir(path)
                    _inherit_cpuset(path)

    def paths(self) -> list[str]:
        return [os.path.join(h, "pycontainer", self.name) for h in self.hierarchies]

    def procs_files(self) -> str:
        return "\n".join(os.path.join(p, "cgroup.procs") for p in self.paths())


def _inherit_cpuset(path: str) -> None:
    # A v1 cpuset cgroup takes no process until its cpus and mems are set.
    for knob in ("cpuset.cpus", "cpuset.mems"):
        own = os.path.join(path, knob)
        if os.path.exists(own):
            with open(os.path.join(os.path.dirname(path), knob)) as f:
                value = f.read().strip()
            with open(own, "w") as f:
                f.write(value)


@contextlib.contextmanager
def host_exclusive() -> Iterator[None]:
    """One validation file at a time on this host, across test sessions: several files use the
    same fixed cgroups (/cgrouptest), and another session's would pass for this one's."""
    with open(RUN_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def check_host_clean() -> list[str]:
    """The suite's fixed cgroups that exist before a run: they would make its results lie."""
    return [path for path in _suite_cgroup_candidates() if os.path.isdir(path)]


def _suite_cgroup_candidates() -> list[str]:
    found = []
    for hierarchy in _hierarchies():
        for parent in (hierarchy, os.path.join(hierarchy, "pycontainer")):
            found.extend(os.path.join(parent, name) for name in SUITE_CGROUPS)
    return found


def _hierarchies() -> list[str]:
    """Every cgroup hierarchy's root: one on cgroup v2, one per mount on v1 and hybrid hosts."""
    if os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.procs")):
        return [CGROUP_ROOT]
    return [os.path.join(CGROUP_ROOT, h) for h in sorted(os.listdir(CGROUP_ROOT))
            if os.path.exists(os.path.join(CGROUP_ROOT, h, "cgroup.procs"))]


def run_file(suite_dir: str, program: str, runtime: str, timeout: float) -> TapRun:
    """Runs `program` (a validation .t) with RUNTIME=`runtime`; cleans up and lists leftovers."""
    work = tempfile.mkdtemp(prefix="pycontainer-runtime-tools-")
    # The bundles are in here: a container's root in a user namespace must be able to reach them.
    os.chmod(work, 0o755)
    for sub in ("state", "tmp"):
        os.mkdir(os.path.join(work, sub))
    cgroup = RunCgroup.new()
    env = {**os.environ, "RTT_WORK": work, "RTT_RUNTIME": runtime,
           "RTT_CGROUP_PROCS": cgroup.procs_files()}
    proc = None
    try:
        cgroup.make()
        proc = subprocess.Popen([SANDBOX, RUN_SCRIPT, program], cwd=suite_dir, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                errors="replace", start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
            returncode: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            # The sandbox's PID 1 is in this session: killing it ends the whole PID namespace.
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            stderr += f"\n(killed after the per-file timeout of {timeout:.0f} s)"
            returncode = None
        checks, plan = parse(stdout)
        return TapRun(checks, plan, returncode, stderr=stderr,
                      runtime_log=_read(os.path.join(work, "runtime.log")),
                      leftovers=_clean_up(work, cgroup))
    except BaseException:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        _clean_up(work, cgroup)
        raise


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def _container_ids(runtime_log: str) -> list[str]:
    # "$ runc create --bundle DIR --pid-file FILE ID": the ID is the last word of a create, when
    # it is one (the suite also calls create without an ID).
    ids = []
    for line in runtime_log.splitlines():
        words = line.split()
        if len(words) > 3 and words[:1] == ["$"] and words[2] == "create" \
                and not words[-2].startswith("-") and _ID.fullmatch(words[-1]):
            ids.append(words[-1])
    return ids


def _clean_up(work: str, cgroup: RunCgroup) -> list[str]:
    """Removes everything the run left and names it, ID- and run-independently."""
    ids = _container_ids(_read(os.path.join(work, "runtime.log")))
    left = _read(os.path.join(work, "leftovers")).splitlines()
    left += [f"container state {entry}" for entry in os.listdir(os.path.join(work, "state"))]
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if work in line.split()[4]]
    for mount in sorted(mounts, reverse=True):
        left.append(f"host mount {mount}")
        subprocess.run(["umount", "-l", mount], capture_output=True)
    left += [f"bundle {entry}" for entry in os.listdir(os.path.join(work, "tmp"))]
    left += _remove_cgroups(cgroup, ids)
    shutil.rmtree(work, ignore_errors=True)
    return [_normalise(item, ids, cgroup.name, work) for item in left]


def _remove_cgroups(cgroup: RunCgroup, ids: list[str]) -> list[str]:
    left = []
    for run_path in cgroup.paths():
        left += [f"cgroup {path}" for path in _subtree(run_path) if path != run_path]
        left += _rmdir_tree(run_path)
    for hierarchy in _hierarchies():
        candidates = [os.path.join(parent, name)
                      for parent in (hierarchy, os.path.join(hierarchy, "pycontainer"))
                      for name in ids]
        for path in candidates + [c for c in _suite_cgroup_candidates()
                                  if c.startswith(hierarchy + "/")]:
            if os.path.isdir(path):
                left += [f"cgroup {p}" for p in _subtree(path)]
                left += _rmdir_tree(path)
    return left


def _subtree(path: str) -> list[str]:
    if not os.path.isdir(path):
        return []
    return [path] + [os.path.join(root, d) for root, dirs, _ in os.walk(path) for d in dirs]


def _rmdir_tree(path: str) -> list[str]:
    """Removes a cgroup and its children; names those that keep processes past the drain time."""
    deadline = time.monotonic() + CGROUP_DRAIN_SECONDS
    stuck = []
    for sub in reversed(_subtree(path)):
        while True:
            try:
                os.rmdir(sub)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if time.monotonic() > deadline:
                    stuck.append(f"cgroup {sub} cannot be removed: {e.strerror}")
                    break
                time.sleep(0.05)  # its processes are still being reaped
    return stuck


def _normalise(item: str, ids: list[str], run_name: str, work: str) -> str:
    for container_id in ids:
        item = item.replace(container_id, "<id>")
    item = item.replace(work, "<work>").replace(f"/{run_name}/", "/")
    # runc puts a relative cgroupsPath under its caller's cgroup (this run's), pycontainer under
    # its own parent: the same leftover either way.
    item = re.sub(rf"{CGROUP_ROOT}/([^/ ]+)/(?:pycontainer/)?", r"\1:", item)
    return re.sub(r"\d{6,}", "<N>", item)  # the suite's random temporary names
