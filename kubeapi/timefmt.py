"""Kubernetes time formats: metav1.Time (RFC 3339, seconds) and MicroTime (microseconds)."""
from __future__ import annotations

import calendar
import time

from overlay.timefmt import rfc3339


def rfc3339_ns(ns: int) -> str:
    return rfc3339(ns / 1e9)


def micro(seconds: float | None = None) -> str:
    t = time.time() if seconds is None else seconds
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def parse(text: str) -> float:
    """Seconds since the epoch from RFC 3339 UTC ("...Z", fractions allowed)."""
    base, _, frac = text.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return seconds + (float("0." + frac) if frac else 0.0)
