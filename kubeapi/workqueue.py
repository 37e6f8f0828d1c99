"""Work queues for controllers, as client-go's workqueue: a rate-limited, delaying queue of keys.

    q = RateLimitingQueue()
    q.add("ns/name")                    # from informer handlers; a queued key is queued once
    key, shutdown = q.get()             # in a worker; blocks; (None, True) after shut_down()
    try:
        sync(key)
        q.forget(key)                   # success: its back-off starts again at 5 ms
    except Exception:
        q.add_rate_limited(key)         # failure: retried after 5 ms, 10 ms, ... up to 1000 s
    finally:
        q.done(key)                     # always

Guarantees, as client-go's: a key is never handed to two workers at once (added while it is
being processed, it is queued again at done()); keys come out in the order first added; add_after
(delay) adds later without blocking; add_rate_limited waits the longer of the key's exponential
back-off (5 ms * 2^failures, at most 1000 s) and an overall token bucket (10 per second, bursts of
100); num_requeues(key) counts failures since the last forget. shut_down() wakes every get() and
makes further adds no-ops; shut_down_with_drain() first waits for the keys being processed.
Items may be any hashable value.
"""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable


class ItemExponentialRateLimiter:
    """base * 2^failures per item, capped at max_delay."""

    def __init__(self, base: float = 0.005, max_delay: float = 1000.0) -> None:
        self.base = base
        self.max_delay = max_delay
        self._failures: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def when(self, item: Hashable) -> float:
        with self._lock:
            n = self._failures.get(item, 0)
            self._failures[item] = n + 1
        # 2**n overflows a float long after the cap is reached.
        return self.max_delay if n > 64 else min(self.base * 2 ** n, self.max_delay)

    def num_requeues(self, item: Hashable) -> int:
        with self._lock:
            return self._failures.get(item, 0)

    def forget(self, item: Hashable) -> None:
        with self._lock:
            self._failures.pop(item, None)


class BucketRateLimiter:
    """A token bucket for all items together: the delay until a token is free (reserving it),
    as golang.org/x/time/rate's Reserve."""

    def __init__(self, qps: float = 10.0, burst: int = 100,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def when(self, item: Hashable) -> float:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
            self._last = now
            self._tokens -= 1
            return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def num_requeues(self, item: Hashable) -> int:
        return 0

    def forget(self, item: Hashable) -> None:
        pass


class MaxOfRateLimiter:
    """The longest delay any of its limiters asks for."""

    def __init__(self, *limiters) -> None:
        self.limiters = limiters

    def when(self, item: Hashable) -> float:
        return max(limiter.when(item) for limiter in self.limiters)

    def num_requeues(self, item: Hashable) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)

    def forget(self, item: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(item)


def default_rate_limiter() -> MaxOfRateLimiter:
    """client-go's DefaultControllerRateLimiter."""
    return MaxOfRateLimiter(ItemExponentialRateLimiter(0.005, 1000.0),
                            BucketRateLimiter(10.0, 100))


class RateLimitingQueue:
    """The queue (dedup, one worker per key), its delays (add_after) and rate limiting."""

    def __init__(self, rate_limiter=None, name: str = "") -> None:
        self.name = name
        self.rate_limiter = rate_limiter or default_rate_limiter()
        self._cond = threading.Condition()
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()        # queued, or to be queued again at done()
        self._processing: set[Hashable] = set()
        self._waiting: list[tuple[float, int, Hashable]] = []   # (ready at, seq, item) heap
        self._ready_at: dict[Hashable, float] = {}  # the live heap entry of each waiting item
        self._seq = itertools.count()
        self._shutting_down = False

    def add(self, item: Hashable) -> None:
        with self._cond:
            self._add_locked(item)

    def _add_locked(self, item: Hashable) -> None:
        if self._shutting_down or item in self._dirty:
            return
        self._dirty.add(item)
        if item in self._processing:
            return
        self._queue.append(item)
        self._cond.notify()

    def add_after(self, item: Hashable, delay: float) -> None:
        if delay <= 0:
            self.add(item)
            return
        with self._cond:
            if self._shutting_down:
                return
            ready = time.monotonic() + delay
            # A waiting item waits once, for the earlier of its times (client-go's waitingForQueue).
            if item in self._ready_at and self._ready_at[item] <= ready:
                return
            self._ready_at[item] = ready
            heapq.heappush(self._waiting, (ready, next(self._seq), item))
            # A getter may be waiting for a later item, or for nothing: it recomputes.
            self._cond.notify_all()

    def add_rate_limited(self, item: Hashable) -> None:
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: Hashable) -> None:
        self.rate_limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return self.rate_limiter.num_requeues(item)

    def get(self, timeout: float | None = None) -> tuple[Hashable | None, bool]:
        """(item, False); (None, True) once shut down and empty; (None, False) on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                self._move_ready_locked()
                if self._queue:
                    item = self._queue.popleft()
                    self._processing.add(item)
                    self._dirty.discard(item)
                    return item, False
                if self._shutting_down:
                    return None, True
                now = time.monotonic()
                wait = None if deadline is None else deadline - now
                if wait is not None and wait <= 0:
                    return None, False
                if self._waiting:
                    until_ready = max(0.0, self._waiting[0][0] - now)
                    wait = until_ready if wait is None else min(wait, until_ready)
                self._cond.wait(wait)

    def _move_ready_locked(self) -> None:
        now = time.monotonic()
        while self._waiting and self._waiting[0][0] <= now:
            ready, _, item = heapq.heappop(self._waiting)
            if self._ready_at.get(item) == ready:  # else superseded by an earlier entry
                del self._ready_at[item]
                self._add_locked(item)

    def done(self, item: Hashable) -> None:
        with self._cond:
            self._processing.discard(item)
            if item in self._dirty:
                self._queue.append(item)
                self._cond.notify()
            if not self._processing:
                self._cond.notify_all()  # shut_down_with_drain waits for this

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

    def shut_down(self) -> None:
        with self._cond:
            self._shutting_down = True
            self._waiting.clear()
            self._ready_at.clear()
            self._cond.notify_all()

    def shut_down_with_drain(self, timeout: float | None = None) -> bool:
        """Shuts down, then waits until no key is being processed; False on timeout."""
        self.shut_down()
        with self._cond:
            return self._cond.wait_for(lambda: not self._processing, timeout)

    def shutting_down(self) -> bool:
        with self._cond:
            return self._shutting_down
