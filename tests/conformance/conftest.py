"""The runtime-tools validation suite, built (or found in its cache) once per session."""
from __future__ import annotations

import pytest

from conformance_suite import BuildError, Suite, build


@pytest.fixture(scope="session")
def runtime_tools() -> Suite:
    try:
        return build()
    except BuildError as e:
        pytest.fail(str(e), pytrace=False)
