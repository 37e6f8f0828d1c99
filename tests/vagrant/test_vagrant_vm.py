"""The VM stage: vagrant/provision.sh on a real systemd host with a pure cgroup v2 hierarchy.

A Debian 12 image (vagrant/vm/image.sh, cached by its inputs under /var/cache/pycontainer/vm)
boots under QEMU software emulation with this host's kernel and no network card; the checkout
and a wheelhouse of the package are shared over 9p, so nothing is downloaded inside. The guest
runs tests/vagrant/vm_check.sh: provision.sh twice, then a pod with limits through kubectl and a
`systemctl restart pykubelet`. Never skipped: a VM that cannot boot fails the test. It runs
while the rest of the suite does (a background stage, tests/conftest.py).
"""
import shutil
import tempfile
from pathlib import Path

import pytest

import vmlib

SCRIPT = vmlib.REPO / "tests/vagrant/vm_check.sh"


class Stage:
    __slots__ = ("workdir", "build_seconds", "run")

    def __init__(self, workdir: Path, build_seconds: float | None, run: vmlib.Run) -> None:
        self.workdir, self.build_seconds, self.run = workdir, build_seconds, run


def boot_and_check(track) -> Stage:
    """Builds (or finds) the image and the wheelhouse, boots the VM and runs the check script
    (a background stage: see tests/conftest.py)."""
    workdir = Path(tempfile.mkdtemp(prefix="pycontainer-vagrant-vm-"))
    kernel = vmlib.newest_kernel()
    image, build_seconds = vmlib.cached_image(kernel)
    wheels = workdir / "wheels"
    vmlib.build_wheelhouse(wheels)
    run = vmlib.run_script(image, kernel, SCRIPT.read_text(), workdir,
                           {"pyc-repo": vmlib.REPO, "pyc-wheels": wheels}, track=track)
    return Stage(workdir, build_seconds, run)


@pytest.mark.slow
@pytest.mark.root
# It waits on its stage from the start of the session, and its stage waits on the ones before
# (the cgroup VM, 600 s at most): then the image build when not cached, and the VM's 900 s.
@pytest.mark.timeout(3600)
@pytest.mark.background.with_args(boot_and_check)
def test_provisioned_node_runs_a_pod_through_a_kubelet_restart(background_result):
    stage = background_result
    try:
        check(stage)
    finally:
        shutil.rmtree(stage.workdir, ignore_errors=True)


def check(stage: Stage) -> None:
    run = stage.run
    figures = run.lines("figure")
    # Shown with -rP. In the guest: boot is the uptime when the script starts, the others count
    # from there.
    print(f"image build {stage.build_seconds or 0:.0f} s (0: cached), VM run {run.seconds:.0f} s, "
          f"in the guest: {figures}")
    assert run.rc == 0, f"vm_check.sh exit {run.rc}:\n{run.output}\n{run.console[-3000:]}"
    checks = run.lines("check")
    node = "pycvm"  # the image's host name
    assert checks["system"] == "running", run.output          # no failed unit after provisioning
    assert checks["cgroupfs"] == "cgroup2fs"
    assert checks["second_run_kept_services"] == "yes", run.output
    assert checks["pod_node"] == node
    # The pod lives beside systemd's slices, the kubelet in its own delegated unit.
    assert checks["pod_cgroup"].startswith("/pycontainer/kubepods/pod")
    assert checks["container_cgroup"].startswith(checks["pod_cgroup"] + "/")
    assert checks["container_command"].strip() == "sleep 100000"
    assert checks["kubelet_cgroup"] == "/system.slice/pykubelet.service"
    assert checks["memory_max"] == str(64 << 20), run.output
    assert checks["cpu_max"] == "50000 100000", run.output
    # After `systemctl restart pykubelet`: a new kubelet reports the node and the same process.
    assert checks["new_kubelet"] == "yes"
    assert checks["heartbeat_after_restart"] == "yes"
    assert checks["node_ready"] == "True"
    assert checks["phase_after_restart"] == "Running"
    assert checks["restarts_after_restart"] == "0"
    assert checks["same_process"] == "yes"
    assert checks["logs_after_restart"] == "started"
    assert checks["cgroup_after_delete"] == "gone"
