#!/bin/bash
# Installs everything (scripts/install.sh), then runs the main job: a busybox container with
# `pycontainer run`, as a user would, with a memory and CPU limit and a hostname of its own;
# then a pod, through pyapiserver, pykubelet and kubectl (scripts/demo-pod.sh).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
repo=$PWD
./scripts/install.sh
VENV=${PYCONTAINER_VENV:-$PWD/.venv}
export PATH="$VENV/bin:$PATH"

bundle=$(mktemp -d /tmp/pycontainer-demo.XXXXXX)
trap 'pycontainer delete --force demo-$$ >/dev/null 2>&1; rm -rf "$bundle"' EXIT
./scripts/busybox-rootfs.sh "$bundle/rootfs"
cd "$bundle"
pycontainer spec                        # runc's default config.json (an interactive sh)
python3 - <<'PY'                        # run a script instead, with limits
import json
with open("config.json") as f:
    config = json.load(f)
config["process"]["terminal"] = False
config["process"]["args"] = ["sh", "-c",
    "echo \"hello from $(hostname), PID $$ in its own namespace\"; "
    "echo \"memory limit: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null"
    " || cat /sys/fs/cgroup/memory.max)\"; "
    "echo \"processes it can see: $(ls /proc | grep -c '^[0-9]')\"; echo \"its root: $(ls / | tr '\\n' ' ')\""]
config["hostname"] = "demo"
config["linux"]["resources"].update(memory={"limit": 64 << 20},
                                    cpu={"quota": 50000, "period": 100000})
with open("config.json", "w") as f:
    json.dump(config, f, indent=2)
PY
echo "+ pycontainer run demo-$$"
pycontainer run "demo-$$"
echo
"$repo/scripts/demo-pod.sh"
