"""The container start path imports cgroups: it must stay lean (DESIGN.md, common brief)."""
import subprocess
import sys

# math (v2 cpu.weight) and ctypes + struct (v2 device rules) are loaded only when those are set.
HEAVY = ["dataclasses", "typing", "re", "json", "pathlib", "subprocess", "click", "ctypes", "struct", "enum"]

SCRIPT = f"""
import sys
import cgroups
path = cgroups.resolve_path(None, "lean-check")
cgroups.validate_resources({{"cpu": {{"shares": 1024, "quota": 10000, "period": 100000, "cpus": "0-1"}},
                            "memory": {{"limit": 67108864, "swap": 67108864}}, "pids": {{"limit": 10}},
                            "devices": [{{"allow": False, "access": "rwm"}}], "unified": {{"memory.high": "1"}}}})
cg = cgroups.open_cgroup(path)
cg.exists()
print(",".join(m for m in {HEAVY!r} if m in sys.modules))
"""


def test_import_and_open_load_no_heavy_module():
    out = subprocess.run([sys.executable, "-c", SCRIPT], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == ""


def test_stats_dataclass_is_loaded_only_on_demand():
    out = subprocess.run([sys.executable, "-c", "import sys, cgroups; before = 'dataclasses' in sys.modules;"
                          " cgroups.CgroupStats; print(before, 'dataclasses' in sys.modules)"],
                         check=True, capture_output=True, text=True)
    assert out.stdout.split() == ["False", "True"]


LIFECYCLE = f"""
import os, sys
import cgroups
resources = {{"cpu": {{"shares": 512, "quota": 10000, "period": 100000}},
             "memory": {{"limit": 67108864}}, "pids": {{"limit": 10}}}}
cg = cgroups.open_cgroup(cgroups.resolve_path(None, "lean-%d" % os.getpid()))
cg.validate(resources)
cg.create()
try:
    cg.apply(resources)
    sleeper = os.posix_spawn("/bin/sleep", ["sleep", "60"], os.environ)
    cg.add_process(sleeper)
    cg.pids()
    cg.freeze()
    cg.thaw()
finally:
    cg.destroy()
os.waitpid(sleeper, 0)
print(",".join(m for m in {HEAVY!r} if m in sys.modules))
"""


def test_create_apply_add_process_destroy_load_no_heavy_module(host_mode):
    out = subprocess.run([sys.executable, "-c", LIFECYCLE], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == ""
