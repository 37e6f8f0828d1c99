"""Bounded polling: the one wait of the tests (each directory keeps its own default timeout)."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.1,
             what: str | Callable[[], str] = "condition") -> T:
    """predicate's first true value; AssertionError naming `what` (a text, or a function that
    describes the state at the time of failure) after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what() if callable(what) else what} not met within "
                                 f"{timeout} s")
        time.sleep(interval)
