"""The kubelet's long-running loops (pod sources, node status, lease, mirror pods,
housekeeping, eviction), each in a thread that is never lost: a loop that raises or returns
before the kubelet stops is logged with its cause and started again after a back-off, as the
real kubelet's wait.Until and HandleCrash keep its goroutines going."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("kubelet.supervisor")

Loop = Callable[[threading.Event], None]
# A loop that keeps failing is restarted at most every BACKOFF_MAX seconds; one that ran that
# long before it failed is restarted quickly again.
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 10.0


def supervise(name: str, loop: Loop, stop: threading.Event) -> threading.Thread:
    """Runs loop(stop) in a daemon thread named `name`, again whenever it ends before `stop`
    is set. The thread ends with the loop once `stop` is set."""
    thread = threading.Thread(target=_keep_running, args=(name, loop, stop), name=name,
                              daemon=True)
    thread.start()
    return thread


def _keep_running(name: str, loop: Loop, stop: threading.Event) -> None:
    delay = BACKOFF_FIRST
    while not stop.is_set():
        started = time.monotonic()
        try:
            loop(stop)
        except Exception:  # noqa: BLE001 - whatever ended it, the loop must go on
            if stop.is_set():
                return
            log.exception("thread %s died; restarting it in %.1f s", name, delay)
        else:
            if stop.is_set():
                return
            log.error("thread %s returned before the kubelet stopped; restarting it in %.1f s",
                      name, delay)
        if time.monotonic() - started >= BACKOFF_MAX:
            delay = BACKOFF_FIRST
        stop.wait(delay)
        delay = min(delay * 2, BACKOFF_MAX)
