"""Fixtures of the kubeapi tests: a real pyapiserver of the test's own, for the REST client."""
from __future__ import annotations

import pytest

from testlib.pyapiserver import running_server


@pytest.fixture
def api_server():
    with running_server() as server:
        yield server
