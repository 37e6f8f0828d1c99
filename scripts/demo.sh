#!/bin/bash
# Installs everything (scripts/install.sh), then runs the main job.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
./scripts/install.sh
VENV=${PYCONTAINER_VENV:-$PWD/.venv}
