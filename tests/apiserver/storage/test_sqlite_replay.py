"""Watch replay from the SQLite revision log (issue 25). A watch that resumes from far behind
gets its backlog read in bounded batches from one snapshot, exactly as the log held it when the
watch began; one older than the window the log keeps (its compaction revision) gets what
kube-apiserver answers past its watch cache's window: HTTP 200 and a single ERROR event whose
Status is 410 Expired, "too old resource version: R (oldest kept)". The official Python client
and kubectl's reflector then relist."""
from __future__ import annotations

import http.client
import json
import re
import socket
import sqlite3
import subprocess
import threading
import time
import tracemalloc
import urllib.parse

import pytest
import yaml

from apiserver.storage import Compacted, Event
from apiserver.storage.sqlite import REPLAY_BATCH, SQLiteStorage
from kubeapi import kubeconfig
from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError
from testlib.kube_reference import kube_apiserver
from testlib.pyapiserver import kubectl_path

TOO_OLD = re.compile(r"too old resource version: (\d+) \((\d+)\)")


def value(i: int, size: int) -> bytes:
    """A JSON value of `size` bytes that zlib shrinks (to about an eighth)."""
    fields = ",".join(f'"c{j}":{{"image":"registry.k8s.io/pause:3.10","uid":'
                      f'"{(i * 7919 + j * 104729) % 1000003:07}"}}' for j in range(size // 50))
    return ("{" + fields + "}").encode()[:size]


def writes(s: SQLiteStorage, keys: int, rounds: int, size: int, name: str = "p") -> list[Event]:
    """keys creates, then rounds updates of each; the events the log must replay."""
    events, current = [], {}
    for i in range(keys):
        key, v = f"/registry/pods/ns/{name}{i:03}", value(i, size)
        current[key] = (s.create(key, v).rev, v)
        events.append(Event("ADDED", key, current[key][0], v, None))
    for r in range(rounds):
        for i in range(keys):
            key, v = f"/registry/pods/ns/{name}{i:03}", value(1000 * (r + 1) + i, size)
            rev, prev = current[key]
            current[key] = (s.update(key, v, rev).rev, v)
            events.append(Event("MODIFIED", key, current[key][0], v, prev))
    return events


def replayed(s: SQLiteStorage, revision: int, want: list[Event]) -> tuple[bool, int]:
    """Whether the replay after `revision` is exactly `want`, and the peak of the memory
    Python allocated while it was taken (events checked as they come, none kept)."""
    tracemalloc.start()
    try:
        same = all(e == w for e, w in zip(s.events_since(revision, "/registry/pods/"), want,
                                          strict=True))
        return same, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_far_behind_replay_streams_in_bounded_batches(tmp_path):
    s = SQLiteStorage(str(tmp_path / "db"))
    try:
        s.create("/registry/configmaps/ns/other", b"{}")   # outside the prefix replayed
        want = writes(s, 40, 9, 20_000)                     # 400 events, ~40 KB each with prev
        tail = sum(len(e.value) + len(e.prev or b"") for e in want)
        same, peak = replayed(s, 1, want)
        assert same
        # The last two batches and a bit: the rows a cursor holds at most (the batch being
        # taken and the next one while it is fetched).
        short = 2 * REPLAY_BATCH + 2
        short_same, short_peak = replayed(s, want[-short - 1].rev, want[-short:])
        assert short_same
        # The list this replaced held all 16 MB at once; the cursor's peak does not grow with
        # the tail.
        assert tail > 15_000_000 and peak < tail / 10, (tail, peak)
        assert peak < 1.3 * short_peak, (peak, short_peak)
    finally:
        s.close()


def test_a_replay_reads_one_snapshot_and_lets_it_go(tmp_path):
    path = str(tmp_path / "db")
    s = SQLiteStorage(path)
    try:
        want = writes(s, 5, 3, 500)
        start = want[4].rev
        replay = s.events_since(start)
        first = next(replay)
        # Changes and a compaction past the replay's position, while it is under way: it still
        # yields what the log held when it began, no more (later changes reach a watch through
        # the subscription), no less.
        writes_after = writes(s, 2, 1, 500, "q")
        s.compact(s.current_revision())
        assert [first, *replay] == want[5:]
        with pytest.raises(Compacted) as e:
            s.events_since(start)   # raised by the call itself, before any event is taken
        assert (e.value.requested, e.value.compacted) == (start, writes_after[-1].rev)
        # A replay dropped half-read ends its read transaction: a checkpoint completes.
        s.create("/registry/pods/ns/late", b"{}")
        replay = s.events_since(s.current_revision() - 1)
        next(replay)
        s.create("/registry/pods/ns/later", b"{}")
        checker = sqlite3.connect(path)
        try:
            assert checker.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 1
            del replay
            assert checker.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
        finally:
            checker.close()
    finally:
        s.close()


# --- through the API server ---------------------------------------------------------------


def raw_watch(conn: kubeconfig.Connection, path: str) -> tuple[int, list[dict]]:
    """The HTTP status and every event line of one watch request."""
    url = urllib.parse.urlsplit(conn.server)
    http_conn = http.client.HTTPSConnection(url.hostname, url.port, context=conn.context,
                                            timeout=30)
    headers = {"Authorization": f"Bearer {conn.token}"} if conn.token else {}
    try:
        http_conn.request("GET", path, headers=headers)
        resp = http_conn.getresponse()
        return resp.status, [json.loads(line) for line in resp.read().splitlines() if line]
    finally:
        http_conn.close()


def expired_shape(status: int, events: list[dict]) -> tuple:
    """What a too-old watch answers, with the numbers in its message taken out."""
    objs = [e["object"] for e in events]
    message = objs[0].get("message", "") if objs else ""
    return (status, [e["type"] for e in events],
            [{**o, "message": TOO_OLD.sub("too old resource version: R (C)", o["message"])}
             for o in objs], bool(TOO_OLD.fullmatch(message)))


KUBE_EXPIRED = (200, ["ERROR"], [{"kind": "Status", "apiVersion": "v1", "metadata": {},
                                  "status": "Failure",
                                  "message": "too old resource version: R (C)",
                                  "reason": "Expired", "code": 410}], True)


class Proxy:
    """A TCP relay in front of the server whose connections the test can cut, and hold new ones
    meanwhile: kubectl's watch breaks and resumes from the last revision it saw."""

    def __init__(self, upstream: int):
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        self.open.wait()
        try:
            server = socket.create_connection(("127.0.0.1", self._upstream))
        except OSError:
            client.close()
            return
        with self._lock:
            if not self.open.is_set():  # held and cut while it was being made: cut too
                client.close()
                server.close()
                return
            self._socks += [client, server]
        for a, b in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        # Nothing more goes through once a cut has begun: cut() closes the connections one
        # after another, and kubectl, whose watch ended at the first, sent its resumed watch
        # at once on an idle keep-alive connection that was still to be closed; that watch got
        # its headers and then the cut, and client-go relisted instead of resuming. Unanswered,
        # it is retried by Go on a new connection, which is held.
        try:
            while (data := src.recv(65536)) and self.open.is_set():
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        with self._lock:
            socks, self._socks = self._socks, []
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self.open.set()
        self._listener.close()
        self.cut()


def wait_for_line(seen: list[str], pattern: str, timeout: float) -> None:
    """Until a line read into `seen` (by a thread reading kubectl's log) has `pattern`."""
    deadline = time.monotonic() + timeout
    while not any(pattern in line for line in seen):
        assert time.monotonic() < deadline, f"no {pattern!r} in kubectl's log: {seen[-20:]}"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_watch_past_the_window_is_410_and_clients_relist(tmp_path):
    """In-process server, so that the test can compact the revision log."""
    from kubernetes import client, config, watch
    from kubernetes.client.rest import ApiException

    from apiserver.server import ApiServer
    srv = ApiServer(str(tmp_path / "srv"), "127.0.0.1", 0)
    srv.start()
    proxy = None
    try:
        api = config.new_client_from_config(config_file=srv.kubeconfig)
        core = client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": "replay"}})
        old = core.create_namespaced_config_map("replay", {"metadata": {"name": "a"}})
        old_rv = old.metadata.resource_version
        for i in range(3):
            core.patch_namespaced_config_map("a", "replay", {"data": {"i": str(i)}})
        compacted = srv.storage.current_revision()
        srv.storage.compact(compacted)

        # On the wire: kube's answer past its window.
        # (configmap a only: the namespace's kube-root-ca.crt is made behind its create)
        path = ("/api/v1/namespaces/replay/configmaps?watch=1&fieldSelector=metadata.name%3Da"
                f"&resourceVersion={old_rv}&timeoutSeconds=5")
        status, events = raw_watch(kubeconfig.load(srv.kubeconfig), path)
        assert expired_shape(status, events) == KUBE_EXPIRED
        assert events[0]["object"]["message"] == \
            f"too old resource version: {old_rv} ({compacted})"
        # At the window's edge a watch resumes, with exactly what followed.
        core.patch_namespaced_config_map("a", "replay", {"data": {"i": "edge"}})
        status, events = raw_watch(kubeconfig.load(srv.kubeconfig), path.replace(
            f"resourceVersion={old_rv}", f"resourceVersion={compacted}").replace(
            "timeoutSeconds=5", "timeoutSeconds=1"))
        assert status == 200 and [(e["type"], e["object"]["data"]) for e in events] == [
            ("MODIFIED", {"i": "edge"})]

        # The official Python client: the 410 raised (after its one retry), then the relist
        # its users write, and a watch from the list's revision that sees what follows.
        with pytest.raises(ApiException) as e:
            for _ in watch.Watch().stream(core.list_namespaced_config_map, "replay",
                                          field_selector="metadata.name=a",
                                          resource_version=old_rv, timeout_seconds=5):
                pass
        assert e.value.status == 410
        listed = core.list_namespaced_config_map("replay", field_selector="metadata.name=a")
        core.patch_namespaced_config_map("a", "replay", {"data": {"i": "after relist"}})
        seen = [(ev["type"], ev["object"].data) for ev in watch.Watch().stream(
            core.list_namespaced_config_map, "replay", field_selector="metadata.name=a",
            resource_version=listed.metadata.resource_version, timeout_seconds=1)]
        assert seen == [("MODIFIED", {"i": "after relist"})]

        # kubectl wait (an informer): its watch is cut while the object changes and the log
        # is compacted past the revision it had; it resumes from that revision, gets the 410,
        # relists and sees the change.
        proxy = Proxy(srv.port)
        with open(srv.kubeconfig) as f:
            kc = yaml.safe_load(f)
        kc["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
        proxied = str(tmp_path / "proxied.kubeconfig")
        with open(proxied, "w") as f:
            yaml.safe_dump(kc, f)
        proc = subprocess.Popen(
            [kubectl_path(), "--kubeconfig", proxied, "-n", "replay", "wait", "configmap/a",
             "--for=jsonpath={.data.i}=relisted", "--timeout=90s", "-v=6"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        log: list[str] = []
        reader = threading.Thread(target=lambda: log.extend(proc.stderr), daemon=True)
        reader.start()
        try:
            wait_for_line(log, "watch=true", 60)
            # A watch shorter than a second is one client-go does not resume; and under load
            # kubectl may take a while to finish its initial events.
            time.sleep(3)
            proxy.open.clear()
            proxy.cut()
            core.patch_namespaced_config_map("a", "replay", {"data": {"i": "relisted"}})
            core.patch_namespaced_config_map("a", "replay", {"metadata": {"labels": {"x": "y"}}})
            srv.storage.compact(srv.storage.current_revision())
            proxy.open.set()
            proc.wait(90)   # (its log has a reader of its own; its output is one line)
            out = proc.stdout.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reader.join(5)
        text = "".join(log)
        requests = "".join(line for line in log if "configmaps" in line or "Watch" in line)
        assert proc.returncode == 0, text[-3000:]
        assert "condition met" in out
        assert TOO_OLD.search(text), requests
        api.close()
    finally:
        if proxy:
            proxy.close()
        srv.stop()


CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": "widgets.replay.example.com"},
       "spec": {"group": "replay.example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                    "openAPIV3Schema": {"type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True}}}]}}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_expired_answer_is_kube_apiservers():
    """The real kube-apiserver (refbin) gets the answer the test above holds pyapiserver to. Its
    watch cache of a resource starts at the revision it first lists, so a watch from revision
    1 is out of the window of a resource made after the server's own start-up writes (a
    built-in resource's cache may have listed at revision 1 itself)."""
    with kube_apiserver("replay-node") as cp:
        conn = kubeconfig.load(cp.admin_kubeconfig)
        client = ApiClient(conn, "replay-test")
        try:
            client.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD)
            widgets = "/apis/replay.example.com/v1/namespaces/default/widgets"
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.get(widgets)
                    break
                except ApiError:
                    assert time.monotonic() < deadline, "the CRD was never served"
                    time.sleep(0.2)
        finally:
            client.close()
        status, events = raw_watch(conn, f"{widgets}?watch=1&resourceVersion=1&timeoutSeconds=5")
    assert expired_shape(status, events) == KUBE_EXPIRED, events
