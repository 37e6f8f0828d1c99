#!/bin/bash
# Installs everything (scripts/install.sh), then runs the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
./scripts/install.sh
VENV=${PYCONTAINER_VENV:-$PWD/.venv}
# Two workers, each taking whole files (a module's fixtures stay on one worker): most tests wait
# on processes, servers and the kernel, so two share the machine's cores without waiting on
# each other; tests/conftest.py runs the leak audit once both are done.
exec "$VENV/bin/pytest" -ra -n 2 --dist loadfile "$@"
