"""`pyapiserver --workers 2` (issue 28): one storage owner, two serving processes. Whichever
worker a client lands on (X-Pyapiserver-Worker names it), every watcher sees every event once in
resourceVersion order; kubectl works; a SIGKILL of the whole server loses no acknowledged write;
a worker killed alone is started again and its clients reconnect."""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import uuid

import pytest

from apiserver_testlib import kubectl_path, start_server, stop_server, wait_for
from test_apiserver_concurrency import killed_mid_load, writers_and_watchers

WORKER_HEADER = "X-Pyapiserver-Worker"


@pytest.fixture
def workers_server():
    s = start_server(["--workers", "2"])
    yield s
    stop_server(s)


@pytest.fixture
def namespace_on(workers_server):
    """A namespace of the test's own and the resourceVersion it was created at."""
    from kubernetes import client
    api_client = workers_server.client()
    try:
        name = "wk-" + uuid.uuid4().hex[:8]
        ns = client.CoreV1Api(api_client).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    finally:
        api_client.close()
    return name, ns.metadata.resource_version


def _workers(parent: int) -> dict[int, int]:
    """Worker index -> pid, of the children of `parent` that are workers."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().decode().split("\0")
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        role = [a for a in argv if a.startswith("--worker=")]
        if ppid == parent and role:
            found[int(role[0].split("=", 1)[1].split(":")[0])] = int(entry)
    return found


def _answered_by(api_client) -> str:
    from kubernetes import client
    _, _, headers = client.CoreV1Api(api_client).read_namespace_with_http_info("default")
    return headers[WORKER_HEADER]


def test_16_writers_20_watchers_on_both_workers(workers_server, namespace_on):
    watchers = writers_and_watchers(workers_server, *namespace_on)
    # Each watch is a connection of its own: 20 of them land on both workers.
    assert {w.worker for w in watchers} == {"0", "1"}


def test_kubectl_get_apply_watch(workers_server, namespace_on):
    namespace, _ = namespace_on
    manifest = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n"
                "data:\n  v: \"{v}\"\n")
    watch = subprocess.Popen([kubectl_path(), "--kubeconfig", workers_server.kubeconfig, "get",
                              "configmaps", "-n", namespace, "-w", "--output-watch-events",
                              "-o", "jsonpath={.type} {.object.metadata.name} "
                              "{.object.data.v}{\"\\n\"}"],
                             stdout=subprocess.PIPE, text=True)
    printed: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [printed.put(line.strip()) for line in watch.stdout],
                     daemon=True).start()
    try:
        for v in ("1", "2"):
            out = workers_server.kubectl("apply", "-n", namespace, "-f", "-",
                                         input=manifest.format(v=v)).stdout
            assert "configmap/applied" in out
            # Every kubectl is a new connection, whichever worker takes it: read your writes.
            got = workers_server.kubectl("get", "configmap", "applied", "-n", namespace,
                                         "-o", "jsonpath={.data.v}").stdout
            assert got == v
        seen = []
        while "MODIFIED applied 2" not in seen:
            seen.append(printed.get(timeout=30))
        assert seen.index("ADDED applied 1") < seen.index("MODIFIED applied 2")
    finally:
        watch.kill()
        watch.communicate()


def test_sigkill_of_every_process_loses_no_acknowledged_write(workers_server, namespace_on):
    parent = workers_server.proc.pid

    def kill() -> None:
        for pid in _workers(parent).values():
            os.kill(pid, signal.SIGKILL)
        workers_server.stop(signal.SIGKILL)
        wait_for(lambda: not _workers(parent), timeout=10)  # before the port is bound again
    killed_mid_load(workers_server, *namespace_on, kill)


def test_sigkill_of_the_parent_ends_its_workers(workers_server):
    parent = workers_server.proc.pid
    assert set(_workers(parent)) == {0, 1}
    workers_server.stop(signal.SIGKILL)
    wait_for(lambda: not _workers(parent), timeout=10)


def test_a_killed_worker_is_started_again_and_its_clients_reconnect(workers_server):
    from kubernetes import client
    parent = workers_server.proc.pid
    before = _workers(parent)
    api_client = workers_server.client()
    try:
        api = client.CoreV1Api(api_client)
        os.kill(before[1], signal.SIGKILL)
        # The log says which worker died and why, then a new one takes its place.
        line = ""
        while "worker 1" not in line:
            line = workers_server.proc.stdout.readline()
            assert line, "the server's log ended"
        assert f"(pid {before[1]}) was killed by SIGKILL; starting it again" in line
        wait_for(lambda: _workers(parent).get(1) not in (None, before[1]), timeout=30)
        # The client's connections to the dead worker are gone: its next requests connect
        # again, to either worker, until the new worker 1 answers some of them.
        answered: set[str] = set()

        def both_answer() -> bool:
            api.list_namespace()
            api_client.rest_client.pool_manager.clear()  # a new connection each time
            answered.add(_answered_by(api_client))
            return answered == {"0", "1"}
        wait_for(both_answer, timeout=60)
        assert _workers(parent)[0] == before[0]
    finally:
        api_client.close()
