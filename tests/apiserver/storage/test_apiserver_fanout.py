"""The fan-out thread that writes live JSON watches (issue 28): every event once and in order,
from the events queued before the hand-over on; what it had not sent at the deadline given
back; a client that takes nothing ended once it is too far behind. A socket pair stands for
the client's connection. No server, no root."""
from __future__ import annotations

import json
import socket
import threading
import time

from apiserver import fanout
from apiserver.watch import everything
from fanout_testlib import chunks, hub, read_all  # noqa: F401 - hub is a fixture


def write(storage, n: int, first: int = 0) -> None:
    for i in range(first, first + n):
        storage.create(f"/registry/configmaps/default/c{i:04}",
                       json.dumps({"metadata": {"name": f"c{i:04}"}}).encode())


def test_events_once_in_order_and_the_rest_at_the_deadline(hub):
    storage, watch_hub = hub
    fan = fanout.FanOut(watch_hub)
    server, client = socket.socketpair()
    watcher = watch_hub.open("/registry/configmaps/")
    start = storage.current_revision()
    write(storage, 5)  # queued for the watcher before the hand-over
    sink = fanout.Sink(watcher, start, everything, time.monotonic() + 3.0, None)
    stream = fanout.LiveStream([b""], fan, sink)
    received = bytearray()
    reader = threading.Thread(target=read_all, args=(client, received))
    reader.start()
    result: list[bytes] = []
    streamer = threading.Thread(target=lambda: result.append(stream.stream_to(server)))
    streamer.start()
    write(storage, 20, first=5)
    streamer.join(10)
    assert not streamer.is_alive()
    server.sendall(result[0])
    server.close()
    reader.join(10)
    stream.close()
    events = chunks(bytes(received))
    assert [e["object"]["metadata"]["name"] for e in events] == [f"c{i:04}" for i in range(25)]
    assert {e["type"] for e in events} == {"ADDED"}
    revs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert revs == sorted(revs) and revs[0] > start
    client.close()


def test_a_client_that_reads_nothing_is_ended(hub, monkeypatch):
    storage, watch_hub = hub
    monkeypatch.setattr(fanout, "QUEUE_LIMIT", 20)
    fan = fanout.FanOut(watch_hub)
    server, client = socket.socketpair()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sink = fanout.Sink(watch_hub.open("/registry/"), storage.current_revision(), everything,
                       time.monotonic() + 60, None)
    stream = fanout.LiveStream([], fan, sink)
    done = threading.Event()
    threading.Thread(target=lambda: (stream.stream_to(server), done.set()), daemon=True).start()
    big = json.dumps({"metadata": {"name": "x"}, "data": {"v": "y" * 20000}}).encode()
    for i in range(40):
        storage.create(f"/registry/configmaps/default/big{i}", big)
        if done.is_set():
            break
    assert done.wait(10), "the stream did not end"
    stream.close()
    server.close()
    client.close()
