"""Correctness under concurrency (issue 28), not speed: many writers and watchers on one
pyapiserver, and a server SIGKILLed mid-load. The official Python client throughout; watch
streams are read raw (its iter_resp_lines) so that 20 watchers keep up with 16 writers."""
from __future__ import annotations

import json
import signal
import threading
import uuid
from typing import Callable

import pytest

from apiserver_testlib import wait_for

WRITERS = 16
WATCHERS = 20
# 16 writers x 313 creates and 313 patches: 10,016 writes, each seen by 20 watchers.
OBJECTS_PER_WRITER = 313
WRITES = WRITERS * OBJECTS_PER_WRITER * 2


def _configmap(name: str, **data: str):
    from kubernetes import client
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data=data)


@pytest.fixture
def namespace_on(own_server):
    """A namespace on the test's own server and the resourceVersion it was created at."""
    from kubernetes import client
    api_client = own_server.client()
    try:
        name = "c-" + uuid.uuid4().hex[:8]
        ns = client.CoreV1Api(api_client).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    finally:
        api_client.close()
    return name, ns.metadata.resource_version


class WatchReader(threading.Thread):
    """One raw watch from a resourceVersion; collects (type, name, resourceVersion) of the
    objects whose name starts with `mine` (not the namespace's kube-root-ca.crt)."""

    def __init__(self, server, namespace: str, since: str, want: int, mine: str):
        super().__init__(daemon=True)
        from kubernetes import client
        self._api_client = server.client()
        self._response = client.CoreV1Api(self._api_client).list_namespaced_config_map(
            namespace, watch=True, resource_version=since, timeout_seconds=600,
            _preload_content=False, _request_timeout=(10, 120))
        self.want = want
        self.mine = mine
        self.events: list[tuple[str, str, int]] = []
        self.error: BaseException | None = None
        # The worker that took this watch, with --workers.
        self.worker = self._response.headers.get("X-Pyapiserver-Worker", "")

    def run(self) -> None:
        from kubernetes.watch.watch import iter_resp_lines
        try:
            for line in iter_resp_lines(self._response):
                ev = json.loads(line)
                meta = ev["object"]["metadata"]
                if not meta["name"].startswith(self.mine):
                    continue
                self.events.append((ev["type"], meta["name"], int(meta["resourceVersion"])))
                if len(self.events) >= self.want:
                    return
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def close(self) -> None:
        self._response.close()
        self._api_client.close()


def test_16_writers_20_watchers_every_event_once_in_order(own_server, namespace_on):
    writers_and_watchers(own_server, *namespace_on)


def writers_and_watchers(server, namespace: str, since: str) -> list[WatchReader]:
    """16 writers, 20 watchers from `since`: every watcher sees every acknowledged write once,
    in resourceVersion order. Returns the (closed) watchers."""
    from kubernetes import client
    acked: list[tuple[str, str, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        api_client = server.client()
        api = client.CoreV1Api(api_client)
        try:
            for i in range(OBJECTS_PER_WRITER):
                name = f"w{n}-{i}"
                made = api.create_namespaced_config_map(namespace, _configmap(name, v="1"))
                changed = api.patch_namespaced_config_map(name, namespace, {"data": {"v": "2"}})
                with lock:
                    acked.append(("ADDED", name, int(made.metadata.resource_version)))
                    acked.append(("MODIFIED", name, int(changed.metadata.resource_version)))
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)
        finally:
            api_client.close()

    watchers = [WatchReader(server, namespace, since, WRITES, "w") for _ in range(WATCHERS)]
    writers = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(WRITERS)]
    try:
        for t in watchers + writers:
            t.start()
        for t in writers + watchers:
            t.join(timeout=600)
    finally:
        for w in watchers:
            w.close()
    assert not errors, errors[0]
    assert not any(t.is_alive() for t in writers + watchers)
    expected = sorted(acked, key=lambda e: e[2])
    assert len(expected) == WRITES and len({rv for _, _, rv in expected}) == WRITES
    for w in watchers:
        assert w.error is None, w.error
        assert w.events == expected
    return watchers


def test_sigkill_mid_load_loses_no_acknowledged_write(own_server, namespace_on):
    killed_mid_load(own_server, *namespace_on, lambda: own_server.stop(signal.SIGKILL))


def killed_mid_load(server, namespace: str, since: str, kill: Callable[[], None]) -> None:
    """Writers until 300 creates are acknowledged, then kill(); the restarted server has every
    acknowledged write and replays the same resourceVersion sequence."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    acked: dict[str, int] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(n: int) -> None:
        api_client = server.client()
        api = client.CoreV1Api(api_client)
        try:
            i = 0
            while not stop.is_set():
                name = f"k{n}-{i}"
                i += 1
                made = api.create_namespaced_config_map(namespace, _configmap(name),
                                                        _request_timeout=20)
                with lock:
                    acked[name] = int(made.metadata.resource_version)
        except (ApiException, OSError, Exception):
            return  # the server died under this request: not acknowledged
        finally:
            api_client.close()

    writers = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(8)]
    try:
        for t in writers:
            t.start()
        wait_for(lambda: len(acked) >= 300, timeout=120)
        kill()
    finally:
        stop.set()
        for t in writers:
            t.join(timeout=60)
    server.start()

    api_client = server.client()
    try:
        api = client.CoreV1Api(api_client)
        stored = {o.metadata.name: int(o.metadata.resource_version)
                  for o in api.list_namespaced_config_map(namespace).items
                  if o.metadata.name.startswith("k")}
        assert {name: stored.get(name) for name in acked} == acked
        # The revision log replays the same sequence: every stored create at the
        # resourceVersion it was acknowledged with, in increasing order, and nothing else.
        replayed = []
        for line in _raw_watch(api, namespace, since, len(stored), "k"):
            replayed.append((line["type"], line["object"]["metadata"]["name"],
                             int(line["object"]["metadata"]["resourceVersion"])))
        assert replayed == sorted((("ADDED", n, rv) for n, rv in stored.items()),
                                  key=lambda e: e[2])
        after = api.create_namespaced_config_map(namespace, _configmap("after-restart"))
        assert int(after.metadata.resource_version) > max(stored.values())
    finally:
        api_client.close()


def _raw_watch(api, namespace: str, since: str, count: int, mine: str) -> list[dict]:
    """The first `count` events of objects named `mine`... from resourceVersion `since`."""
    from kubernetes.watch.watch import iter_resp_lines
    response = api.list_namespaced_config_map(namespace, watch=True, resource_version=since,
                                              timeout_seconds=60, _preload_content=False,
                                              _request_timeout=(10, 60))
    events = []
    try:
        for line in iter_resp_lines(response):
            event = json.loads(line)
            if event["object"]["metadata"]["name"].startswith(mine):
                events.append(event)
            if len(events) >= count:
                break
    finally:
        response.close()
    return events
