"""Test VMs with real systemd and a pure cgroup v2 hierarchy: a Debian 12 image from
vagrant/vm/image.sh (built once per set of inputs and cached), booted by QEMU in software
emulation with the host's kernel, no network card, and a script run inside: the host shares
directories over 9p, the guest runs the executable `run.sh` of the share tagged pyc-ctl and powers off."""
from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from testlib import vm_guard

REPO = Path(__file__).resolve().parents[2]
IMAGE_INPUTS = [REPO / "vagrant/vm/image.sh", REPO / "vagrant/vm/pyc-ctl.sh"]
# Outside the checkout, so that a fresh clone on the same machine finds it.
CACHE_DIR = Path(os.environ.get("PYCONTAINER_VM_CACHE", "/var/cache/pycontainer/vm"))


def newest_kernel() -> str:
    """The version of the newest kernel in /boot (linux-image-amd64's)."""
    def version(path: str) -> list[int]:
        return [int(n) for n in re.findall(r"\d+", path)]
    kernels = sorted(glob.glob("/boot/vmlinuz-*"), key=version)
    assert kernels, "no kernel in /boot: scripts/install.sh installs linux-image-amd64"
    return kernels[-1].removeprefix("/boot/vmlinuz-")


def image_key(kernel: str) -> str:
    h = hashlib.sha256(kernel.encode())
    for path in IMAGE_INPUTS:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def cached_image(kernel: str) -> tuple[Path, float | None]:
    """The image for these inputs, built now if the cache has none (then also the seconds the
    build took); images of other inputs are removed. One builder at a time (a lock file)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    image = CACHE_DIR / f"debian12-{image_key(kernel)}.qcow2"
    with open(CACHE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if image.exists():
            return image, None
        start = time.monotonic()
        build = subprocess.run([str(REPO / "vagrant/vm/image.sh"), str(image), kernel],
                               capture_output=True, text=True)
        assert build.returncode == 0, f"image.sh failed:\n{build.stdout}\n{build.stderr}"
        for old in CACHE_DIR.glob("debian12-*.qcow2"):
            if old != image:
                old.unlink()
        return image, time.monotonic() - start


def build_wheelhouse(dest: Path, source: Path = REPO) -> None:
    """Wheels of the package (built from a clean copy of the checkout's files, so no stale
    build/ leaks in) and of everything it installs with the `node` extra."""
    with tempfile.TemporaryDirectory(prefix="pyc-wheel-src-") as copy:
        files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"],
                               cwd=source, check=True, capture_output=True).stdout
        for name in filter(None, files.decode().split("\0")):
            if (source / name).is_file():
                target = Path(copy) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source / name, target)
        # --use-pep517: python-prctl has no pyproject.toml, and a venv without `wheel` cannot
        # build it the legacy way.
        pip = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
             "--use-pep517", "--wheel-dir", str(dest), f"{copy}[node]"],
            capture_output=True, text=True)
        assert pip.returncode == 0, f"pip wheel failed:\n{pip.stdout}\n{pip.stderr}"


class Run:
    """What a VM run left: the script's exit status (None: it never finished), its output and
    the console."""

    def __init__(self, rc: int | None, output: str, console: str, seconds: float) -> None:
        self.rc, self.output, self.console, self.seconds = rc, output, console, seconds

    def lines(self, kind: str) -> dict[str, str]:
        """The script's "<kind> NAME VALUE" lines."""
        found = {}
        for line in self.output.splitlines():
            parts = line.split(" ", 2)
            if len(parts) >= 2 and parts[0] == kind:
                found[parts[1]] = parts[2] if len(parts) == 3 else ""
        return found


def run_script(image: Path, kernel: str, script: str, workdir: Path,
               shares: dict[str, Path], track=None, timeout: float = 900,
               memory: str = "2G") -> Run:
    """Boots a throwaway copy-on-write layer over `image`, runs `script` inside as root and
    returns when the guest has powered off (or after `timeout`, when QEMU is killed).
    `shares`: 9p tag -> host directory, mounted read-only by the script itself. `track`, if
    given, is handed QEMU's guard (see the background stages in tests/conftest.py)."""
    ctl = workdir / "ctl"
    ctl.mkdir()
    (ctl / "run.sh").write_text(script)
    (ctl / "run.sh").chmod(0o755)
    disk = workdir / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image), "-F", "qcow2",
                    str(disk)], check=True)
    cmdline = ("root=/dev/vda rw console=ttyS0 panic=-1 pyc.ctl "
               "systemd.mask=ssh.service systemd.mask=systemd-networkd-wait-online.service")
    args = ["qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", memory,
            "-nographic", "-no-reboot", "-nic", "none",
            "-kernel", f"/boot/vmlinuz-{kernel}", "-initrd", f"/boot/initrd.img-{kernel}",
            "-append", cmdline, "-drive", f"file={disk},if=virtio,format=qcow2",
            "-virtfs", f"local,path={ctl},mount_tag=pyc-ctl,security_model=none"]
    for tag, path in shares.items():
        args += ["-virtfs", f"local,path={path},mount_tag={tag},security_model=none,readonly=on"]
    console_path = workdir / "console.log"
    start = time.monotonic()
    with open(console_path, "w") as console:
        # Under a guard in a session of its own: a timeout kills QEMU's whole group, and QEMU
        # dies with this process even when it is killed before its cleanup.
        vm = vm_guard.start(args, stdin=subprocess.DEVNULL, stdout=console,
                            stderr=subprocess.STDOUT)
        if track is not None:
            track(vm)
        try:
            vm.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(vm.pid, signal.SIGKILL)
            vm.wait()
    seconds = time.monotonic() - start
    rc_file, out_file = ctl / "rc", ctl / "out.log"
    rc = int(rc_file.read_text()) if rc_file.exists() else None
    output = out_file.read_text(errors="replace") if out_file.exists() else ""
    disk.unlink()
    return Run(rc, output, console_path.read_text(errors="replace"), seconds)
