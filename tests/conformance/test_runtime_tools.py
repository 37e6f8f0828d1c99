"""The OCI runtime-tools validation suite against pycontainer and runc side by side (issue 19).

Each validation file runs against runc, then pycontainer, each in its own sandbox and mount
namespace. A file fails when pycontainer fails a check that runc passes in it, when runc
completes it and pycontainer does not, when pycontainer leaves something behind that runc does
not, or when it is one of the files pycontainer passes beyond runc and no longer does.

Two files race the container's own process, so runc passes them by luck as often as we do not:
their known races are told apart from a regression (RACES, RERUN_ON_REGRESSION).
"""
from __future__ import annotations

import os
import sys

import pytest

from conformance_run import check_host_clean, host_exclusive, run_file
from conformance_suite import Suite, file_names
from conformance_tap import Check, TapRun, passes_file, regressions

RUNC = "/usr/sbin/runc"
PYCONTAINER = os.path.join(os.path.dirname(sys.executable), "pycontainer")
# The slowest files wait out the suite's own 10 s polls a few times; a hang is far beyond this.
TIMEOUT_SECONDS = 120
# Files pycontainer passes outright where runc 1.1.5 fails them on this machine: kept passing.
PASSES_BEYOND_RUNC = frozenset({
    "linux_cgroups_devices", "linux_cgroups_relative_devices", "process_capabilities_fail",
})
# (file, check) -> what its diagnostic says when the suite's race, not the runtime, failed it.
# pidfile.t runs `true` and kills it after start and a state: once `true` has exited, kill must
# fail (the spec's error for a stopped container), so runc passes only when `true` outlives its
# state and kill (opencontainers/runtime-tools#805; runc 3-8 of 40 runs here, under load).
RACES = {
    ("pidfile", "create with '--pid-file' option works"): "not running",
}
# killsig.t signals `sh -c 'trap ...'` as soon as state says running: a signal that lands before
# the trap is set is dropped by PID 1 of the namespace, with any runtime. One more pair of runs.
RERUN_ON_REGRESSION = frozenset({"killsig"})
SHOWN_CHECKS = 10
SHOWN_LOG_LINES = 60


@pytest.mark.slow
@pytest.mark.root
# The first file also builds the suite (about a minute, more on a loaded machine), then runs
# against both runtimes within their own TIMEOUT_SECONDS each.
@pytest.mark.timeout(600 + 2 * TIMEOUT_SECONDS)
@pytest.mark.parametrize("name", file_names())
def test_validation_file(name: str, runtime_tools: Suite) -> None:
    with host_exclusive():
        stale = check_host_clean()
        assert not stale, f"the suite's fixed cgroups exist before the run: {', '.join(stale)}"
        for _ in range(1 + (name in RERUN_ON_REGRESSION)):
            runc = run_file(runtime_tools.path, runtime_tools.file(name), RUNC, TIMEOUT_SECONDS)
            ours = run_file(runtime_tools.path, runtime_tools.file(name), PYCONTAINER,
                            TIMEOUT_SECONDS)
            problems = _problems(name, runc, ours)
            if not problems:
                break
    assert not problems, "\n".join(problems + _context(ours))


def _problems(name: str, runc: TapRun, ours: TapRun) -> list[str]:
    problems = []
    if not passes_file(ours):
        found = [r for r in regressions(runc, ours) if not _lost_race(name, r.candidate)]
        failed = [r.candidate for r in found if r.candidate is not None]
        missing = [r.reference for r in found if r.candidate is None]
        if failed:
            problems.append(f"pycontainer fails {len(failed)} check(s) of {name}.t "
                            "that runc passes:")
            for check in failed[:SHOWN_CHECKS]:
                problems += check.lines()
            if len(failed) > SHOWN_CHECKS:
                problems.append(f"... and {len(failed) - SHOWN_CHECKS} more")
        if missing:
            problems.append(f"pycontainer never gets to {len(missing)} check(s) of {name}.t "
                            f"that runc passes, from check {missing[0].number} "
                            f"'{missing[0].description}' on")
        if not found and passes_file(runc) and not _races_only(name, ours):
            problems.append(f"runc passes {name}.t, pycontainer does not complete it "
                            f"({_ending(ours)}; runc: {_ending(runc)})")
        if name in PASSES_BEYOND_RUNC:
            problems.append(f"pycontainer no longer passes {name}.t ({_ending(ours)}), "
                            "one of the files it passes beyond runc")
    theirs = set(runc.leftovers)
    ours_only = [item for item in ours.leftovers if item not in theirs]
    if ours_only:
        problems.append("pycontainer left behind (removed now), where runc left nothing alike: "
                        + "; ".join(ours_only))
    return problems


def _lost_race(name: str, check: Check | None) -> bool:
    """A check the file's own race failed, as its diagnostic tells."""
    sign = RACES.get((name, check.description)) if check is not None else None
    return sign is not None and not check.ok and any(sign in line for line in check.diagnostic)


def _races_only(name: str, run: TapRun) -> bool:
    """The file completed, and every check it failed was lost to its own race."""
    return run.completed and all(check.outcome != "fail" or _lost_race(name, check)
                                 for check in run.checks)


def _ending(run: TapRun) -> str:
    status = "killed at the timeout" if run.returncode is None else f"exit {run.returncode}"
    failing = sum(check.outcome == "fail" for check in run.checks)
    plan = "no plan" if run.plan is None else f"{run.plan} planned"
    return f"{status}, {len(run.checks)} checks ({plan}), {failing} not ok"


def _context(ours: TapRun) -> list[str]:
    return ["", f"pycontainer run: {_ending(ours)}",
            "stderr of the validation file:", *_tail(ours.stderr),
            "pycontainer's calls and their stderr:", *_tail(ours.runtime_log)]


def _tail(text: str) -> list[str]:
    lines = text.rstrip().splitlines()
    shown = lines[-SHOWN_LOG_LINES:]
    return [f"  ... ({len(lines) - len(shown)} lines before)"] * (len(lines) > len(shown)) \
        + [f"  {line}" for line in shown]
