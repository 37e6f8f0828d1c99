"""RFC 3339 timestamps in UTC, the one formatter of every package that writes times: runc's
`created` (nanoseconds), image records, runtime and shim logs, and the Kubernetes metav1.Time of
kubeapi.timefmt (seconds). Here because overlay is the lowest package that writes a time; the
packages above it import this module rather than format times themselves."""
from __future__ import annotations

import time

_SECONDS = "%Y-%m-%dT%H:%M:%S"


def rfc3339(seconds: float | None = None) -> str:
    """Whole seconds: 2006-01-02T15:04:05Z (Go's time.RFC3339, metav1.Time)."""
    return time.strftime(_SECONDS + "Z", time.gmtime(time.time() if seconds is None else seconds))


def rfc3339_nano(ns: int | None = None) -> str:
    """Nine fraction digits always, as runc writes `created` and the CRI log its lines."""
    ns = time.time_ns() if ns is None else ns
    return time.strftime(_SECONDS, time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"
