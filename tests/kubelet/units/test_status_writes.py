"""The status manager's writes, against a recording client: a pod's first status while its
first sync makes the containers is held until that sync ends, so that a pod that starts is
written once, Running; what the sync ends with is written at once whatever it is; a sync that
takes longer than the hold shows its Pending status when the hold ends."""
from __future__ import annotations

import threading
import time

from kubelet.pods import Pod
from kubelet.status import manager


class RecordingClient:
    def __init__(self) -> None:
        self.patches: list[dict] = []
        self.written = threading.Event()

    def patch(self, path: str, body: dict) -> dict:
        self.patches.append(body["status"])
        self.written.set()
        return {}


def pod() -> Pod:
    return Pod({"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}})


def container_status(state: dict) -> dict:
    return {"phase": "Pending" if "waiting" in state else "Running",
            "containerStatuses": [{"name": "c", "state": state}]}


CREATING = container_status({"waiting": {"reason": "ContainerCreating"}})


def written(client: RecordingClient, count: int, within: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + within
    while len(client.patches) < count and time.monotonic() < deadline:
        client.written.wait(0.05)
        client.written.clear()
    return [s["phase"] for s in client.patches]


def test_a_pod_that_starts_gets_one_write_carrying_running():
    client = RecordingClient()
    statuses = manager.StatusManager(client)
    try:
        statuses.set(pod(), CREATING)
        time.sleep(0.3)                      # the sync makes the sandbox and the container
        assert client.patches == []
        statuses.set(pod(), container_status({"running": {}}))
        assert written(client, 1) == ["Running"]
        time.sleep(0.2)
        assert len(client.patches) == 1
    finally:
        statuses.stop()


def test_what_the_first_sync_ends_with_is_written_at_once_even_if_still_pending():
    client = RecordingClient()
    statuses = manager.StatusManager(client)
    try:
        statuses.set(pod(), CREATING)
        started = time.monotonic()
        statuses.set(pod(), container_status({"waiting": {"reason": "ErrImagePull"}}))
        assert written(client, 1) == ["Pending"]
        assert time.monotonic() - started < manager.FIRST_PENDING_HOLD
        assert client.patches[0]["containerStatuses"][0]["state"]["waiting"]["reason"] == \
            "ErrImagePull"
    finally:
        statuses.stop()


def test_a_long_first_sync_shows_pending_when_the_hold_ends(monkeypatch):
    monkeypatch.setattr(manager, "FIRST_PENDING_HOLD", 0.3)
    client = RecordingClient()
    statuses = manager.StatusManager(client)
    try:
        statuses.set(pod(), CREATING)
        assert written(client, 1) == ["Pending"]
    finally:
        statuses.stop()
