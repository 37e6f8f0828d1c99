"""Where the checkout is and the `pycontainer` entry script the install put beside the
interpreter: one module for the test files that run it, since importing a directory's
conftest by name finds another directory's conftest when pytest collects both."""
from __future__ import annotations

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYCONTAINER = os.path.join(os.path.dirname(sys.executable), "pycontainer")
