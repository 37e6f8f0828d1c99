"""Fixtures shared by every package's tests, and the background stages.

A test marked `@pytest.mark.background.with_args(launch)` is a long stage that mostly waits on something
else (a VM under software emulation): `launch(track)` starts as soon as the suite is collected,
in one background thread (stages one after another), while the rest of the suite runs; the test
itself runs last and receives what `launch` returned through the `background_result` fixture.
`launch` hands every process it starts to `track`, so that an interrupted session ends them.

At the end, the leak audit (leak_audit.py) compares the host with a snapshot taken at session
start and fails the run, naming each mount, cgroup, namespace, link, nft table, process or state
directory that a test left behind.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
from concurrent.futures import Future

import pytest

import leak_audit

_STAGES = pytest.StashKey[dict]()
_PROCESSES = pytest.StashKey[list]()
_HOST_BEFORE = pytest.StashKey[leak_audit.HostState]()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_HOST_BEFORE] = leak_audit.snapshot()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        needs_root = [item for item in items if "root" in item.keywords]
        if needs_root and os.environ.get("CI") == "true":
            # In CI a skip would hide them all: the runner must be root.
            raise pytest.UsageError(f"CI=true and not root: {len(needs_root)} tests need root "
                                    "(real namespaces, cgroups, mounts)")
        skip = pytest.mark.skip(reason="needs root (real namespaces, cgroups, mounts)")
        for item in needs_root:
            item.add_marker(skip)
    # Stable: the background stages go last, in their order, everything else keeps its own.
    items.sort(key=lambda item: item.get_closest_marker("background") is not None)


def pytest_collection_finish(session: pytest.Session) -> None:
    stages = [(item.nodeid, item.get_closest_marker("background").args[0])
              for item in session.items if item.get_closest_marker("background")
              and item.get_closest_marker("skip") is None]
    futures = {nodeid: Future() for nodeid, _ in stages}
    processes: list[subprocess.Popen] = []
    session.config.stash[_STAGES] = futures
    session.config.stash[_PROCESSES] = processes

    def run_stages() -> None:
        for nodeid, launch in stages:
            try:
                futures[nodeid].set_result(launch(processes.append))
            except BaseException as e:  # noqa: BLE001 - the stage's test reports it
                futures[nodeid].set_exception(e)
    if stages:
        threading.Thread(target=run_stages, name="background-stages", daemon=True).start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    for proc in session.config.stash.get(_PROCESSES, []):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # each stage starts its processes in a session
            proc.wait()
    _audit(session)


def _audit(session: pytest.Session) -> None:
    before = session.config.stash.get(_HOST_BEFORE, None)
    if before is None or session.config.option.collectonly:
        return
    factory = getattr(session.config, "_tmp_path_factory", None)  # absent with -p no:tmpdir
    left = leak_audit.leaks(before, str(factory.getbasetemp()) if factory else None)
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")  # ends the progress line
        reporter.write_sep("=", "leak audit: the session left this on the host", red=True)
        for line in left:
            reporter.write_line(line)
        # Counted in the summary line ("N passed, 2 leaked") as well as in the exit status.
        reporter.stats.setdefault("leaked", []).extend(_Leak(line) for line in left)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


class _Leak:
    """An entry of the reporter's stats: plugins read every entry's __dict__, as of a report."""

    def __init__(self, what: str) -> None:
        self.what = what


@pytest.fixture
def background_result(request: pytest.FixtureRequest) -> object:
    """What this test's background stage returned (its exception, if it raised)."""
    return request.config.stash[_STAGES][request.node.nodeid].result()
