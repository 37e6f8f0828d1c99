"""The v2 driver for real: this host's cgroup2 hierarchy has no controllers, so the real-cgroup
tests run again inside a throwaway VM with a pure cgroup v2 hierarchy.

virtme-ng (`vng`) boots Debian's kernel with this host's filesystem visible read-only, so this
virtualenv and checkout run inside. QEMU software emulation (--disable-kvm): /dev/kvm here only
runs specially built guest kernels. Never skipped: a VM that cannot boot fails the test. It boots while the rest of the suite runs
(a background stage, tests/conftest.py).
"""
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from testlib import vm_guard

REPO = Path(__file__).resolve().parents[2]
# And the runtime's containers where cgroups matter: on a pure v2 host the init is born in its
# cgroup (clone3 CLONE_INTO_CGROUP), containers see cgroup2, device rules are an eBPF program,
# kill --all and pause use cgroup.kill and cgroup.freeze. (The whole runtime suite would take
# minutes under emulation.)
_RUN = "tests/runtime/test_runtime_run.py::"
_LIFECYCLE = "tests/runtime/test_runtime_lifecycle.py::"
_IO = "tests/cgroups/test_cgroup_blkio_hugetlb_net.py::"
_RUN_IO = "tests/runtime/test_runtime_blkio.py::"
INNER_TESTS = ["tests/cgroups/test_cgroup_real.py", "tests/cgroups/test_cgroup_v2.py",
               "tests/cgroups/test_cgroup_lean_import.py",
               _IO + "test_throttles_land_in_the_kernel_and_a_rate_of_0_lifts_one",
               _IO + "test_weight_lands_where_the_kernel_has_a_weight_file_else_is_refused",
               _IO + "test_a_device_the_host_lacks_is_refused_before_anything_exists",
               _IO + "test_v2_hugepage_limits_land_in_max_and_rsvd_max",
               _IO + "test_v2_device_weight_lands_where_iocost_is_on_else_is_refused",
               _RUN_IO + "test_block_io_throttles_are_in_the_containers_cgroup",
               _RUN_IO + "test_block_io_weight_is_in_the_cgroup_or_refused_with_nothing_left",
               _RUN_IO + "test_hugepage_limits_are_in_the_containers_cgroup",
               _RUN + "test_run_prints_output_and_leaves_nothing",
               _RUN + "test_without_pid_namespace_term_kills_and_the_rest_is_reaped",
               _RUN + "test_default_devices", _RUN + "test_config_devices_are_created",
               _RUN + "test_memory_limit_visible_and_enforced",
               _RUN + "test_cgroup_namespace_roots_the_view_at_the_container",
               _LIFECYCLE + "test_kill_all_signals_every_process",
               _LIFECYCLE + "test_pause_and_resume", _LIFECYCLE + "test_events_stats_and_oom"]
BOOT_AND_RUN_TIMEOUT = 600


def newest_kernel() -> str:
    def version(path: str) -> list[int]:
        return [int(n) for n in re.findall(r"\d+", path)]
    kernels = sorted(glob.glob("/boot/vmlinuz-*"), key=version)
    assert kernels, "no kernel in /boot: scripts/install.sh installs linux-image-amd64"
    return kernels[-1]


class VmRun:
    __slots__ = ("results", "returncode", "stdout", "stderr")

    def __init__(self, results: Path, returncode: int, stdout: str, stderr: str) -> None:
        self.results, self.returncode, self.stdout, self.stderr = results, returncode, stdout, stderr


def start_vng(rwdir: Path, command: str, cpus: int, memory: str) -> subprocess.Popen:
    """vng booting the newest kernel to run `command`, under a guard (tests/testlib/vm_guard.py)
    in a session of its own, so that a timeout ends QEMU too, not only vng, and QEMU dies with
    this process even when it is killed before its cleanup."""
    bindir = os.path.dirname(sys.executable)
    # vng's return-code file goes in TMPDIR and its atexit removal never runs: in `rwdir`, it
    # goes with the caller's results instead of staying in /tmp after every run.
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""),
               TMPDIR=str(rwdir))
    return vm_guard.start(
        [os.path.join(bindir, "vng"), "--disable-kvm", "--cpus", str(cpus), "--memory", memory,
         "--rwdir", str(rwdir), "--run", newest_kernel(), "--exec", command],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env)


def boot_and_run(track) -> VmRun:
    """Boots the VM and runs INNER_TESTS in it (a background stage: see tests/conftest.py)."""
    results = Path(tempfile.mkdtemp(prefix="pycontainer-cgroup-vm-"))
    # The command goes in a script: vng passes --exec on the kernel command line, which the
    # kernel cuts at 2048 bytes, and a cut command leaves the guest waiting forever.
    script = results / "inner.sh"
    # The guest's /tmp is an overlay on the host's, where the host's session keeps making and
    # removing things: the inner session's temp dir (and so its leak audit) is the guest's own.
    script.write_text(
        f"cd {REPO} && mkdir -p /run/pyc-tmp && TMPDIR=/run/pyc-tmp"
        f" PYTHONDONTWRITEBYTECODE=1 {sys.executable} -m pytest -p no:cacheprovider"
        f" -q -ra --junitxml={results}/junit.xml {' '.join(INNER_TESTS)} > {results}/out.txt 2>&1\n"
        f"echo $? > {results}/rc\n")
    vm = start_vng(results, f"sh {script}", cpus=2, memory="1G")
    track(vm)
    try:
        stdout, stderr = vm.communicate(timeout=BOOT_AND_RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(vm.pid, signal.SIGKILL)
        stdout, stderr = vm.communicate()
    return VmRun(results, vm.returncode, stdout, stderr)


@pytest.mark.slow
@pytest.mark.root
# It waits on the stage from the start of the session: the VM's own bound, and room to check.
@pytest.mark.timeout(BOOT_AND_RUN_TIMEOUT + 300)
@pytest.mark.background.with_args(boot_and_run)
def test_v2_driver_passes_the_real_cgroup_tests_in_a_vm(background_result):
    run = background_result
    try:
        check(run)
    finally:
        shutil.rmtree(run.results, ignore_errors=True)


def check(run: VmRun) -> None:
    results = run.results
    rc_file = results / "rc"
    assert rc_file.exists(), (f"the VM did not run the tests (vng exit {run.returncode}):\n"
                              f"{run.stdout[-2000:]}\n{run.stderr[-4000:]}")
    output = (results / "out.txt").read_text()
    print(output)  # shown with -rP or on failure
    assert rc_file.read_text().strip() == "0", output
    suite = ET.parse(results / "junit.xml").getroot().find("testsuite")
    counts = {k: int(suite.get(k)) for k in ("tests", "failures", "errors", "skipped")}
    assert counts["failures"] == counts["errors"] == counts["skipped"] == 0, output
    assert counts["tests"] >= 30, output


# Started in a helper process that the test SIGKILLs as soon as QEMU runs: "vng" as the stage
# above starts it (QEMU four processes down), "qemu" as tests/vagrant/vmlib.py does, paused (-S).
_LAUNCH = {
    "vng": "vm = test_cgroup_vm.start_vng(Path(sys.argv[1]), 'true', cpus=1, memory='256M')",
    "qemu": "vm = vm_guard.start(['qemu-system-x86_64', '-accel', 'tcg', '-nodefaults',"
            " '-display', 'none', '-S'], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)",
}


def _group(pgid: int) -> dict[int, str]:
    """The live processes of a process group (zombies are dead, whoever reaps them):
    PID -> command name."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:]
        state, _, _, group = fields.split()[:4]
        if int(group) == pgid and state != "Z":
            found[int(pid)] = name
    return found


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.parametrize("launcher", sorted(_LAUNCH))
def test_the_vm_dies_with_the_process_that_started_it(launcher, tmp_path):
    """A test process killed before its cleanup takes its QEMU along (one lived on under PID 1
    for two hours)."""
    code = ("import subprocess, sys, time\nfrom pathlib import Path\n"
            f"sys.path[:0] = [{str(REPO / 'tests')!r}, {str(REPO / 'tests/cgroups')!r}]\n"
            "import test_cgroup_vm\nfrom testlib import vm_guard\n"
            f"{_LAUNCH[launcher]}\nprint(vm.pid, flush=True)\ntime.sleep(300)\n")
    helper = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                              text=True)
    group = 0
    try:
        group = int(helper.stdout.readline())
        assert _wait_for(lambda: any(n.startswith("qemu-system") for n in _group(group).values()),
                         120), f"QEMU never started: {_group(group)}"
        helper.kill()
        helper.wait()
        assert _wait_for(lambda: not _group(group), 10), \
            f"left behind when the test process died: {_group(group)}"
    finally:
        helper.kill()
        helper.wait()
        if group and _group(group):
            os.killpg(group, signal.SIGKILL)
