#!/bin/bash
# Installs everything (scripts/install.sh), then runs the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
./scripts/install.sh
VENV=${PYCONTAINER_VENV:-$PWD/.venv}
exec "$VENV/bin/pytest" -ra "$@"
