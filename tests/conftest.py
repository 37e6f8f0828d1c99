"""Fixtures shared by every package's tests, and the background stages.

A test marked `@pytest.mark.background.with_args(launch)` is a long stage that mostly waits on something
else (a VM under software emulation): `launch(track)` starts as soon as the suite is collected,
in one background thread (stages one after another), while the rest of the suite runs; the test
itself runs last and receives what `launch` returned through the `background_result` fixture.
`launch` hands every process it starts to `track`, so that an interrupted session ends them.

At the end, the leak audit (leak_audit.py) compares the host with a snapshot taken at session
start and fails the run, naming each mount, cgroup, namespace, link, nft table, process or state
directory that a test left behind.

Under pytest-xdist (scripts/test.sh runs the suite on one worker per core) the controller takes
the snapshot and audits once every worker is done; the first worker runs the stages and leaves
each result in a directory of the run's own, where the worker that runs the stage's test finds it.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import Future

import pytest

import leak_audit

_STAGES = pytest.StashKey[dict]()
_PROCESSES = pytest.StashKey[list]()
_HOST_BEFORE = pytest.StashKey[leak_audit.HostState]()
_STAGE_THREAD = pytest.StashKey[threading.Thread]()
# The directory where the first xdist worker leaves the stages' results: made by the controller
# before it starts the workers, which inherit its environment.
_STAGE_DIR_ENV = "PYCONTAINER_TEST_STAGES"


def _worker(config: pytest.Config) -> str | None:
    """This process's xdist worker id (gw0, gw1 ...), or None in the controller or without xdist."""
    return getattr(config, "workerinput", {}).get("workerid")


def pytest_configure(config: pytest.Config) -> None:
    if _worker(config) is None and getattr(config.option, "numprocesses", None):
        os.environ[_STAGE_DIR_ENV] = tempfile.mkdtemp(prefix="pycontainer-stages-")


def pytest_sessionstart(session: pytest.Session) -> None:
    if _worker(session.config) is None:
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
    worker = _worker(session.config)
    if worker not in (None, "gw0"):
        stages = []  # the first worker runs them; this one reads their results
    if session.config.option.collectonly:
        stages = []  # nothing runs, and a stage boots VMs
    futures = {nodeid: Future() for nodeid, _ in stages}
    processes: list[subprocess.Popen] = []
    session.config.stash[_STAGES] = futures
    session.config.stash[_PROCESSES] = processes
    shared = os.environ.get(_STAGE_DIR_ENV) if worker else None

    def run_stages() -> None:
        for nodeid, launch in stages:
            try:
                futures[nodeid].set_result(launch(processes.append))
            except BaseException as e:  # noqa: BLE001 - the stage's test reports it
                futures[nodeid].set_exception(e)
            if shared:
                _publish(shared, nodeid, futures[nodeid])
    if stages:
        thread = threading.Thread(target=run_stages, name="background-stages", daemon=True)
        session.config.stash[_STAGE_THREAD] = thread
        thread.start()


def _stage_file(directory: str, nodeid: str) -> str:
    return os.path.join(directory, hashlib.sha256(nodeid.encode()).hexdigest() + ".pickle")


def _publish(directory: str, nodeid: str, future: Future) -> None:
    error = future.exception()
    path = _stage_file(directory, nodeid)
    with open(path + ".tmp", "wb") as f:
        pickle.dump((error is None, future.result() if error is None else error), f)
    os.rename(path + ".tmp", path)  # the reader sees the whole result or none


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    thread = session.config.stash.get(_STAGE_THREAD, None)
    if thread is not None and exitstatus != pytest.ExitCode.INTERRUPTED:
        # Under xdist another worker may still wait on a stage of this one's: the stages end
        # within their own deadlines.
        thread.join(timeout=3600)
    for proc in session.config.stash.get(_PROCESSES, []):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # each stage starts its processes in a session
            proc.wait()
    if _worker(session.config) is None:
        shared = os.environ.pop(_STAGE_DIR_ENV, None)
        if shared:
            shutil.rmtree(shared, ignore_errors=True)
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
    future = request.config.stash[_STAGES].get(request.node.nodeid)
    if future is not None:
        return future.result()
    # Another xdist worker runs the stage: its result lands in the run's directory (this test's
    # timeout bounds the wait).
    path = _stage_file(os.environ[_STAGE_DIR_ENV], request.node.nodeid)
    while not os.path.exists(path):
        time.sleep(1)
    with open(path, "rb") as f:
        ok, value = pickle.load(f)
    if not ok:
        raise value
    return value
