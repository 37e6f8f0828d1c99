"""Helpers for the apiserver tests: the pyapiserver process (testlib.pyapiserver) under the names
these tests import, and their short poll."""
from __future__ import annotations

from testlib import waiting
from testlib.pyapiserver import (ADMIN_TOKEN, BIN, NODE_TOKEN, USER_TOKEN,  # noqa: F401
                                 Server, kubectl_path, start_server, stop_server)


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    return waiting.wait_for(predicate, timeout, interval)
