"""Fixtures of the kubeapi tests: a real pyapiserver of the test's own, for the REST client."""
from __future__ import annotations

import os
import sys

import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.join(TESTS, "apiserver") not in sys.path:
    sys.path.insert(0, os.path.join(TESTS, "apiserver"))

from apiserver_testlib import start_server, stop_server  # noqa: E402


@pytest.fixture
def api_server():
    server = start_server()
    yield server
    stop_server(server)
