"""Worker threads of a keyed controller: wait for the informers, then take keys off the queue
and sync each; a failed sync comes back rate limited, as kube's processNextWorkItem."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kubeapi.informer import Informer
from kubeapi.status import ApiError
from kubeapi.workqueue import RateLimitingQueue

from .context import ControllerContext


def start_workers(ctx: ControllerContext, name: str, queue: RateLimitingQueue,
                  sync: Callable[[str], None], informers: list[Informer], count: int,
                  log: logging.Logger) -> None:
    def stopper() -> None:
        ctx.stop.wait()
        queue.shut_down()

    def worker() -> None:
        if not ctx.wait_for_sync(*informers):
            return
        while True:
            key, shutdown = queue.get()
            if shutdown:
                return
            try:
                sync(key)
                queue.forget(key)
            except ApiError as e:  # Unavailable too
                log.warning("syncing %s: %s", key, e.message)
                queue.add_rate_limited(key)
            except Exception:
                log.exception("syncing %s", key)
                queue.add_rate_limited(key)
            finally:
                queue.done(key)

    threading.Thread(target=stopper, name=f"{name}-stop", daemon=True).start()
    for i in range(count):
        threading.Thread(target=worker, name=f"{name}-{i}", daemon=True).start()
