from __future__ import annotations

import json
import sys
import time

from runtime.cli.lean_parser import Parsed
from runtime.container import STOPPED, Container
from runtime.errors import PycontainerError, StateError
from runtime.log import Log

# runc reports an unlimited v2 memory.max as the largest uint64.
_UNLIMITED = 2**64 - 1
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def run(p: Parsed, log: Log) -> int:
    """runc's `events`: a stats event (JSON line) every --interval, an "oom" event whenever the
    OOM killer strikes in the container, until it stops; --stats prints one stats event."""
    c = Container.load(p.globals["root"], p.args["container_id"], lock=False)
    if c.status() == STOPPED:
        raise StateError("container not running")
    if p.options["stats"]:
        _emit("stats", c.id, _stats(c.cgroup().stats()))
        return 0
    interval = parse_duration(p.options["interval"])
    ooms = c.cgroup().stats().oom_kill
    while True:
        # Status first: an OOM kill that stopped the container still gets its event.
        running = c.status() != STOPPED
        if not c.cgroup().exists():
            return 0
        stats = c.cgroup().stats()
        if stats.oom_kill > ooms:
            _emit("oom", c.id, None)
            ooms = stats.oom_kill
        if not running:
            return 0
        _emit("stats", c.id, _stats(stats))
        time.sleep(interval)


def parse_duration(text: str) -> float:
    """Go's duration syntax for the few forms runc's users write: 5s, 500ms, 1m, 1.5h."""
    for unit in sorted(_UNITS, key=len, reverse=True):
        number = text[: -len(unit)]
        if text.endswith(unit) and number.replace(".", "", 1).isdigit():
            if float(number) > 0:
                return float(number) * _UNITS[unit]
    raise PycontainerError(f"--interval: {text!r} is not a positive duration (e.g. 5s, 500ms)")


def _emit(kind: str, container_id: str, data: dict | None) -> None:
    event = {"type": kind, "id": container_id}
    if data is not None:
        event["data"] = data
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def _stats(s) -> dict:
    """cgroups.CgroupStats in the layout of runc's events (types/events.go)."""
    return {
        "cpu": {"usage": {"total": s.cpu_usage_ns, "kernel": s.cpu_system_ns,
                          "user": s.cpu_user_ns},
                "throttling": {"periods": s.cpu_periods,
                               "throttledPeriods": s.cpu_throttled_periods,
                               "throttledTime": s.cpu_throttled_ns}},
        "memory": {"usage": {"usage": s.memory_usage, "max": s.memory_max_usage or 0,
                             "limit": s.memory_limit or _UNLIMITED},
                   "swap": {"usage": s.swap_usage}},
        "pids": {"current": s.pids_current, "limit": s.pids_limit or 0},  # runc: 0 = no limit
    }
