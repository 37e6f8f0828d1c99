"""What one slow or far-behind watch may cost the fan-out thread (issue 28): a client that
reads nothing is ended once its unsent bytes pass the bound while writes and the other watches
go on; a watch whose queue overflowed before the hand-over is ended at once; bookmarks go out
under steady writes and at the deadline, so that a client resumes from near the present and not
from its last event. A socket pair stands for the client's connection. No server, no root."""
from __future__ import annotations

import json
import socket
import threading
import time

from apiserver import fanout, watch
from apiserver.watch import everything
from fanout_testlib import chunks, hub, read_all  # noqa: F401 - hub is a fixture


def bookmark(rev: int) -> bytes:
    return b'{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"%d"}}}\n' % rev


def start(stream: fanout.LiveStream, sock: socket.socket) -> tuple[threading.Thread, list]:
    result: list = []

    def run() -> None:
        try:
            result.append(stream.stream_to(sock))
        except ConnectionError as e:
            result.append(e)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_a_dead_client_is_ended_at_the_byte_bound_and_nothing_else_waits(hub, monkeypatch):
    storage, watch_hub = hub
    monkeypatch.setattr(fanout, "UNSENT_LIMIT", 256 << 10)
    fan = fanout.FanOut(watch_hub)
    dead_server, dead_client = socket.socketpair()
    dead_server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    live_server, live_client = socket.socketpair()
    rev = storage.current_revision()
    dead = fanout.Sink(watch_hub.open("/registry/"), rev, everything, time.monotonic() + 60,
                       None)
    live = fanout.Sink(watch_hub.open("/registry/"), rev, everything, time.monotonic() + 3,
                       None)
    dead_stream, live_stream = fanout.LiveStream([], fan, dead), fanout.LiveStream([], fan, live)
    dead_thread, _ = start(dead_stream, dead_server)
    live_thread, live_rest = start(live_stream, live_server)
    received = bytearray()
    reader = threading.Thread(target=read_all, args=(live_client, received), daemon=True)
    reader.start()
    for i in range(40):  # 800 KB: the dead client's kernel buffers take a few KB of it
        big = json.dumps({"metadata": {"name": f"big{i:02}"}, "data": {"v": "y" * 20000}})
        storage.create(f"/registry/configmaps/default/big{i:02}", big.encode())
    dead_thread.join(10)
    assert not dead_thread.is_alive(), "the dead client's watch was not ended"
    assert dead.behind and not dead.lines
    assert dead.unsent <= fanout.UNSENT_LIMIT + len(big) + 1024
    live_thread.join(10)
    assert not live_thread.is_alive()
    live_server.sendall(live_rest[0])
    live_server.close()
    reader.join(10)
    names = [e["object"]["metadata"]["name"] for e in chunks(bytes(received))]
    assert names == [f"big{i:02}" for i in range(40)]
    for s in (dead_stream, live_stream):
        s.close()
    for s in (dead_server, dead_client, live_client):
        s.close()


def test_a_watch_whose_queue_overflowed_before_the_hand_over_is_ended(hub, monkeypatch):
    storage, watch_hub = hub
    monkeypatch.setattr(watch, "QUEUE_LIMIT", 5)
    watcher = watch_hub.open("/registry/configmaps/")
    rev = storage.current_revision()
    for i in range(10):
        storage.create(f"/registry/configmaps/default/c{i}", b'{"metadata":{"name":"c"}}')
    server, client = socket.socketpair()
    sink = fanout.Sink(watcher, rev, everything, time.monotonic() + 60, None)
    stream = fanout.LiveStream([], fanout.FanOut(watch_hub), sink)
    thread, result = start(stream, server)
    thread.join(10)
    assert not thread.is_alive(), "a watch that lost events went on"
    assert result == [b""]  # nothing of a gapped stream is sent: its client resumes
    stream.close()
    server.close()
    client.close()


def test_bookmarks_under_steady_writes_and_at_the_deadline(hub, monkeypatch):
    storage, watch_hub = hub
    monkeypatch.setattr(fanout, "CHECK_SECONDS", 0.05)
    monkeypatch.setattr(fanout, "LIVENESS_SECONDS", 0.1)
    monkeypatch.setattr(fanout, "BOOKMARK_SECONDS", 0.2)
    fan = fanout.FanOut(watch_hub)
    server, client = socket.socketpair()
    # A node's pod watch that sees none of the writes (they are Leases).
    sink = fanout.Sink(watch_hub.open("/registry/pods/"), storage.current_revision(),
                       everything, time.monotonic() + 2.0, bookmark)
    stream = fanout.LiveStream([], fan, sink)
    received = bytearray()
    reader = threading.Thread(target=read_all, args=(client, received), daemon=True)
    reader.start()
    thread, result = start(stream, server)
    i = 0
    # Faster than CHECK_SECONDS, so that the fan-out thread's queue is never found empty.
    while thread.is_alive() and i < 2000:
        storage.create(f"/registry/leases/kube-node-lease/n{i}", b'{"metadata":{"name":"n"}}')
        i += 1
    last = storage.current_revision()
    thread.join(10)
    assert not thread.is_alive()
    server.sendall(result[0])
    server.close()
    reader.join(10)
    events = chunks(bytes(received))
    assert {e["type"] for e in events} == {"BOOKMARK"}
    revs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert len(revs) >= 3, revs  # some while the writes went on, one at the deadline
    assert revs == sorted(revs)
    assert revs[-1] >= last - 5  # the deadline's names (nearly) the last write
    stream.close()
    client.close()
