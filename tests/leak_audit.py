"""What a test session leaves on the host: a snapshot at session start, another at the end, and
the difference, limited to what tests make (their prefixes, their roots, their cgroup parent).

Comparing with the start means the machine's own state (and whatever an earlier run left) is
never blamed on this session; only one session runs at a time in CI, so anything new is ours.
"""
from __future__ import annotations

import glob
import os
import re
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field

# Where tests mount and keep state: pytest's basetemp lives under the temp dir ($TMPDIR), and so
# do the mkdtemp roots of the fixtures (pycni-netns-*, pycontainer-hostile-*, pcs*, pyk-*, ...).
MOUNT_ROOTS = ("/tmp/", "/run/netns/", "/var/run/netns/", "/run/pycontainer/")
TMP_PREFIXES = ("pycni-netns-", "pycontainer-", "pcs", "pyk-", "pyapiserver-test-")
STATE_DIRS = ("/run/netns", "/run/pycontainer")
# netkit.unique() prefixes (pyb, pyp, pyv, pykb, ca, cb, kt, net, pod) and the host side of a
# veth pair (links.random_veth_name).
LINK_PREFIXES = ("py", "veth", "kt", "ca", "cb", "net", "pod")
CGROUP_PARENT = "pycontainer"


@dataclass(frozen=True)
class Process:
    pid: int
    start: int       # starttime from /proc/PID/stat: a recycled pid is another process
    ppid: int
    cgroups: str
    cmdline: str

    def describe(self) -> str:
        return f"process {self.pid} ({self.cmdline[:120]}) cgroup {self.cgroups}"


@dataclass
class HostState:
    mounts: Counter = field(default_factory=Counter)
    cgroups: set[str] = field(default_factory=set)
    links: set[str] = field(default_factory=set)
    nft_tables: set[str] = field(default_factory=set)
    state: set[str] = field(default_factory=set)
    processes: set[tuple[int, int]] = field(default_factory=set)


def snapshot() -> HostState:
    return HostState(mounts=_mounts(), cgroups=_cgroups(), links=_links(),
                     nft_tables=_nft_tables(), state=_state_entries(),
                     processes={(p.pid, p.start) for p in _processes()})


def leaks(before: HostState, basetemp: str | None, settle: float = 10.0) -> list[str]:
    """One line per thing that exists now, did not at `before`, and belongs to a test.

    The kernel tears a network namespace down in a work queue after its last user is gone, and
    its veths with it: what is still there is looked at again until `settle` seconds pass."""
    deadline = time.monotonic() + settle
    found = _leaks_now(before, basetemp)
    while found and time.monotonic() < deadline:
        time.sleep(0.2)
        found = _leaks_now(before, basetemp)
    return found


def _leaks_now(before: HostState, basetemp: str | None) -> list[str]:
    found = []
    now = _mounts()
    for point, count in sorted(now.items()):
        if count > before.mounts[point]:
            found.append(f"mount {point}" + (f" (x{count - before.mounts[point]})"
                                               if count - before.mounts[point] > 1 else ""))
    found += _describe_cgroups(_cgroups() - before.cgroups)
    found += [("network namespace " if path.startswith(("/run/netns/", "/var/run/netns/"))
               else "state ") + path for path in sorted(_state_entries() - before.state)]
    found += [f"link {name}" for name in sorted(_links() - before.links)]
    found += [f"nft table {name}" for name in sorted(_nft_tables() - before.nft_tables)]
    if basetemp:  # the runtime fixture's root is <tmp_path>/state: <id>/state.json inside
        # Under pytest-xdist each worker's basetemp is <basetemp>/popen-gwN.
        roots = glob.glob(os.path.join(basetemp, "popen-gw*")) or [basetemp]
        states = [path for root in roots
                  for path in glob.glob(os.path.join(root, "*", "*", "*", "state.json"))]
        found += [f"container state {os.path.dirname(path)}" for path in sorted(states)]
    me = os.getpid()
    root = (basetemp.rstrip("/") + "/") if basetemp else None
    for proc in _processes():
        if (proc.pid, proc.start) in before.processes or proc.pid == me:
            continue
        ours = proc.ppid == me or f"/{CGROUP_PARENT}/" in proc.cgroups \
            or (root is not None and root in proc.cmdline + "/")
        if ours:
            found.append(proc.describe())
    return found


def _mounts() -> Counter:
    with open("/proc/self/mountinfo") as f:
        points = [_unescape(line.split()[4]) for line in f]
    roots = (*MOUNT_ROOTS, os.path.join(tempfile.gettempdir(), ""))
    return Counter(p for p in points if (p + "/").startswith(roots))


def _unescape(path: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def _cgroup_mounts() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        rows = [line.split() for line in f]
    return {_unescape(row[4]) for row in rows
            if row[row.index("-") + 1] in ("cgroup", "cgroup2")}


def _cgroups() -> set[str]:
    """Every cgroup below the tests' parent in every mounted hierarchy (not the parent itself,
    which outlives the sessions that made it)."""
    found = set()
    for mount in _cgroup_mounts():
        parent = os.path.join(mount, CGROUP_PARENT)
        for dirpath, dirnames, _ in os.walk(parent):
            found.update(os.path.join(dirpath, d) for d in dirnames)
    return found


def _describe_cgroups(new: set[str]) -> list[str]:
    """The topmost new cgroups (their children go with them), each once with its hierarchies."""
    where: dict[str, list[str]] = {}
    for path in new:
        if os.path.dirname(path) not in new:
            mount, rel = path.split(f"/{CGROUP_PARENT}/", 1)
            where.setdefault(f"/{CGROUP_PARENT}/{rel}", []).append(os.path.basename(mount))
    return [f"cgroup {rel} in {', '.join(sorted(mounts))}" for rel, mounts in sorted(where.items())]


def _links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = {line.split(": ")[1].split("@")[0] for line in out.splitlines() if ": " in line}
    return {n for n in names if n.startswith(LINK_PREFIXES)}


def _nft_tables() -> set[str]:
    try:
        run = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
    except FileNotFoundError:
        return set()
    return {line.split(None, 1)[1].strip() for line in run.stdout.splitlines()
            if line.startswith("table ")}


def _state_entries() -> set[str]:
    entries = set()
    for directory in STATE_DIRS:
        try:
            entries.update(os.path.join(directory, n) for n in os.listdir(directory))
        except OSError:
            pass
    tmp = tempfile.gettempdir()
    try:
        entries.update(os.path.join(tmp, n) for n in os.listdir(tmp) if n.startswith(TMP_PREFIXES))
    except OSError:
        pass
    return entries


def _processes() -> list[Process]:
    procs = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                # comm may hold spaces and parentheses: the fields start after the last ')'
                fields = f.read().rsplit(")", 1)[1].split()
            if fields[0] == "Z":  # a zombie holds nothing of the host's
                continue
            with open(f"/proc/{name}/cgroup") as f:
                cgroups = ",".join(sorted({line.strip().split(":", 2)[2] for line in f}))
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError):
            continue  # it ended while we looked
        procs.append(Process(int(name), int(fields[19]), int(fields[1]), cgroups, cmdline))
    return procs
