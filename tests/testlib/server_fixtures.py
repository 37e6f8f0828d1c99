"""The pyapiserver fixtures of the directories whose tests talk to one server (apiserver,
controllers): a conftest imports them by name."""
from __future__ import annotations

import pytest

from testlib.pyapiserver import running_server


@pytest.fixture(scope="session")
def server():
    with running_server() as s:
        yield s


@pytest.fixture
def own_server():
    """A server of the test's own (restarts, compaction, scheduling with its own nodes)."""
    with running_server() as s:
        yield s
