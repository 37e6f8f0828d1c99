"""The rate-limited work queue's semantics, as client-go's workqueue tests check them."""
from __future__ import annotations

import threading
import time

import pytest

from controllers_testlib import wait_for
from kubeapi.workqueue import (BucketRateLimiter, ItemExponentialRateLimiter, RateLimitingQueue,
                               default_rate_limiter)


def test_dedup_and_order():
    q = RateLimitingQueue()
    for key in ("a", "b", "a", "c", "b"):
        q.add(key)
    assert len(q) == 3
    assert [q.get(0)[0] for _ in range(3)] == ["a", "b", "c"]
    assert q.get(0) == (None, False)


def test_key_in_processing_is_not_handed_out_twice():
    q = RateLimitingQueue()
    q.add("k")
    key, _ = q.get(0)
    q.add("k")               # changed while a worker has it
    q.add("k")
    assert q.get(0) == (None, False)
    q.done(key)               # queued again, once
    assert q.get(0) == ("k", False)
    q.done("k")
    assert q.get(0) == (None, False)


def test_parallel_workers_never_share_a_key():
    q = RateLimitingQueue()
    active: set[str] = set()
    clash = []
    processed = []
    lock = threading.Lock()

    def worker():
        while True:
            key, shutdown = q.get()
            if shutdown:
                return
            with lock:
                if key in active:
                    clash.append(key)
                active.add(key)
            time.sleep(0.001)
            with lock:
                active.discard(key)
                processed.append(key)
            q.done(key)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(400):
        q.add(f"k{i % 5}")
    wait_for(lambda: len(q) == 0 and not q._processing, what="queue drained")
    assert q.shut_down_with_drain(5)
    for t in threads:
        t.join(5)
    assert not clash
    assert set(processed) == {f"k{i}" for i in range(5)}


def test_add_after_and_shutdown_wakes_getters():
    q = RateLimitingQueue()
    q.add_after("much-later", 3600)
    q.add("now")
    assert q.get(0)[0] == "now"
    assert q.get(0) == (None, False)    # much-later is not ready
    q.add_after("later", 0.2)
    assert q.get(30)[0] == "later"      # blocks until it is ready
    results = []
    t = threading.Thread(target=lambda: results.append(q.get()))
    t.start()
    q.shut_down()
    t.join(5)
    assert results == [(None, True)]
    q.add("ignored")
    assert q.get(0) == (None, True)


def test_exponential_backoff_forget_and_requeues():
    limiter = ItemExponentialRateLimiter(0.005, 1000.0)
    assert [limiter.when("x") for _ in range(4)] == [0.005, 0.01, 0.02, 0.04]
    assert limiter.num_requeues("x") == 4
    for _ in range(100):
        last = limiter.when("x")
    assert last == 1000.0
    limiter.forget("x")
    assert limiter.when("x") == 0.005


def test_token_bucket_burst_then_qps():
    now = [1000.0]  # a clock of the test's: the bucket's arithmetic, not the machine's speed
    bucket = BucketRateLimiter(10.0, 100, clock=lambda: now[0])
    delays = [bucket.when(i) for i in range(102)]
    assert delays[:100] == [0.0] * 100
    assert delays[100:] == pytest.approx([0.1, 0.2])
    now[0] += 1.0  # 10 tokens back, two of them owed
    assert [bucket.when(i) for i in range(8)] == [0.0] * 8
    assert bucket.when("next") == pytest.approx(0.1)


def test_rate_limited_queue():
    q = RateLimitingQueue(default_rate_limiter())
    q.add_rate_limited("k")
    q.add_rate_limited("k")
    assert q.num_requeues("k") == 2
    assert q.get(5)[0] == "k"   # back after its 5 ms and 10 ms delays (deduplicated)
    q.forget("k")
    q.done("k")
    assert q.num_requeues("k") == 0
    assert q.get(0.1) == (None, False)
