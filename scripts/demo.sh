#!/bin/bash
# Installs everything (scripts/install.sh), then runs the main job.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
./scripts/install.sh
VENV=${PYCONTAINER_VENV:-$PWD/.venv}

# The main job, until the runtime exists: a cgroup with a 10% CPU quota and a 64 MiB memory limit,
# a busy loop inside for 2 s, the CPU it got, then the cgroup removed.
"$VENV/bin/python" - <<'PY'
import os, subprocess, sys, time
import cgroups

resources = {"cpu": {"quota": 10000, "period": 100000}, "memory": {"limit": 64 << 20}}
cg = cgroups.open_cgroup(cgroups.resolve_path(None, f"demo-{os.getpid()}"))
cg.validate(resources)
cg.create()
busy = None
try:
    cg.apply(resources)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    cg.add_process(busy.pid)
    before, start = cg.stats(), time.monotonic()
    time.sleep(2)
    after, end = cg.stats(), time.monotonic()
    used = (after.cpu_usage_ns - before.cpu_usage_ns) / 1e9 / (end - start)
    print(f"cgroup {cg.path} on a {cgroups.detect_mode()} host:"
          f" cpu quota 10% of one CPU, memory limit {after.memory_limit >> 20} MiB")
    print(f"a busy loop inside used {used:.1%} of a CPU over {end - start:.1f} s"
          f" (throttled in {after.cpu_throttled_periods - before.cpu_throttled_periods} periods)")
finally:
    cg.destroy()
    if busy:
        busy.wait()
    print(f"cgroup removed: {not cg.exists()}")
PY
