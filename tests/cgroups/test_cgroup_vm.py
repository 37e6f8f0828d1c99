"""The v2 driver for real: this host's cgroup2 hierarchy has no controllers, so the real-cgroup
tests run again inside a throwaway VM with a pure cgroup v2 hierarchy.

virtme-ng (`vng`) boots Debian's kernel with this host's filesystem visible read-only, so this
virtualenv and checkout run inside. QEMU software emulation (--disable-kvm): /dev/kvm here only
runs specially built guest kernels. Never skipped: a VM that cannot boot fails the test.
"""
import glob
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The runtime's container tests too: on a pure v2 host it starts the init in its cgroup with
# clone3(CLONE_INTO_CGROUP) and mounts cgroup2 in containers with their own cgroup namespace.
INNER_TESTS = ["tests/cgroups/test_cgroup_real.py", "tests/cgroups/test_cgroup_v2.py",
               "tests/cgroups/test_cgroup_lean_import.py", "tests/runtime/test_runtime_run.py",
               "tests/runtime/test_runtime_lifecycle.py"]
BOOT_AND_RUN_TIMEOUT = 480


def newest_kernel() -> str:
    def version(path: str) -> list[int]:
        return [int(n) for n in re.findall(r"\d+", path)]
    kernels = sorted(glob.glob("/boot/vmlinuz-*"), key=version)
    assert kernels, "no kernel in /boot: scripts/install.sh installs linux-image-amd64"
    return kernels[-1]


@pytest.mark.slow
@pytest.mark.root
def test_v2_driver_passes_the_real_cgroup_tests_in_a_vm(tmp_path):
    results = tmp_path
    inner = (f"cd {REPO} && PYTHONDONTWRITEBYTECODE=1 {sys.executable} -m pytest -p no:cacheprovider -q -ra"
             f" --junitxml={results}/junit.xml {' '.join(INNER_TESTS)} > {results}/out.txt 2>&1;"
             f" echo $? > {results}/rc")
    bindir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    vm = subprocess.run(
        [os.path.join(bindir, "vng"), "--disable-kvm", "--cpus", "2", "--memory", "1G",
         "--rwdir", str(results), "--run", newest_kernel(), "--exec", inner],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=BOOT_AND_RUN_TIMEOUT)
    rc_file = results / "rc"
    assert rc_file.exists(), (f"the VM did not run the tests (vng exit {vm.returncode}):\n"
                              f"{vm.stdout[-2000:]}\n{vm.stderr[-4000:]}")
    output = (results / "out.txt").read_text()
    print(output)  # shown with -rP or on failure
    assert rc_file.read_text().strip() == "0", output
    suite = ET.parse(results / "junit.xml").getroot().find("testsuite")
    counts = {k: int(suite.get(k)) for k in ("tests", "failures", "errors", "skipped")}
    assert counts["failures"] == counts["errors"] == counts["skipped"] == 0, output
    assert counts["tests"] >= 20, output
