"""Fixtures of the controller tests: the real pyapiserver (as tests/apiserver's fixtures start
it), our REST client and the official Python client pointed at it, and a namespace per test."""
from __future__ import annotations

import pytest

from testlib.pyapiserver import fresh_namespace, rest_client
from testlib.server_fixtures import own_server, server  # noqa: F401 - fixtures


@pytest.fixture(scope="session")
def client(server):
    with rest_client(server, "controllers-tests") as c:
        yield c


@pytest.fixture
def namespace(client):
    """A fresh namespace per test, so that tests do not see each other's objects."""
    with fresh_namespace(client, "c-") as name:
        yield name
