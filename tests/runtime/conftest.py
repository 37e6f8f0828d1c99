"""Bundles from busybox-static and a way to run the real `pycontainer` binary against them."""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

import pytest

from runtime.default_spec import default_spec

# Its own copies of testlib.paths': tests/security/seclib.py loads this file by path inside
# sandboxed scenarios, where testlib is not importable.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYCONTAINER = os.path.join(os.path.dirname(sys.executable), "pycontainer")
CGROUP_ROOT = "/sys/fs/cgroup"


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One read-only busybox root filesystem shared by the bundles of a session."""
    path = str(tmp_path_factory.mktemp("rootfs") / "rootfs")
    subprocess.run([os.path.join(REPO, "scripts", "busybox-rootfs.sh"), path], check=True)
    return path


class Runtime:
    """Runs `pycontainer --root <private dir>` and remembers the containers to clean up."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.ids: list[str] = []

    def new_id(self) -> str:
        container_id = f"t{uuid.uuid4().hex[:10]}"
        self.ids.append(container_id)
        return container_id

    def argv(self, *args: str) -> list[str]:
        return [PYCONTAINER, "--root", self.root, *args]

    def run(self, *args: str, input: bytes | None = None, timeout: float = 30,
            **kwargs: object) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        return subprocess.run(self.argv(*args), input=input, timeout=timeout, **kwargs)

    def state(self, container_id: str) -> dict:
        out = self.run("state", container_id)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def leftovers(self, container_id: str) -> list[str]:
        """What a container left on the machine: state dir, cgroups, mounts, processes (in its
        cgroup or naming it), named network namespaces."""
        found = [*_stray_processes(container_id), *_named_netns(container_id)]
        if os.path.exists(os.path.join(self.root, container_id)):
            found.append(f"state dir {self.root}/{container_id}")
        # v1 and hybrid hosts: one directory per hierarchy; v2: one directory.
        for path in [os.path.join(CGROUP_ROOT, "pycontainer", container_id),
                     *(os.path.join(CGROUP_ROOT, h, "pycontainer", container_id)
                       for h in os.listdir(CGROUP_ROOT))]:
            if os.path.exists(path):
                found.append(f"cgroup {path}")
        with open("/proc/self/mountinfo") as f:
            found.extend(f"mount {line.split()[4]}" for line in f if container_id in line)
        return found

    def cleanup(self) -> None:
        for container_id in self.ids:
            subprocess.run(self.argv("delete", "--force", container_id), capture_output=True)


def _stray_processes(container_id: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/{pid}/cgroup") as f:
                cgroup = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue  # it ended while we looked
        if state == "Z":
            continue
        # Not "any child of pytest": session fixtures (an API server) are children too.
        if f"/{container_id}\n" in cgroup or f"/{container_id}/" in cgroup \
                or container_id in cmdline:
            found.append(f"process {pid} ({cmdline.strip()[:100]})")
    return found


def _named_netns(container_id: str) -> list[str]:
    try:
        names = os.listdir("/run/netns")
    except FileNotFoundError:
        return []
    return [f"netns /run/netns/{name}" for name in names if container_id in name]


@pytest.fixture
def runtime(tmp_path: os.PathLike) -> Runtime:
    rt = Runtime(os.path.join(str(tmp_path), "state"))
    yield rt
    rt.cleanup()


class Bundle:
    def __init__(self, path: str, config: dict) -> None:
        self.path = path
        self.config = config

    def write(self) -> Bundle:
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(self.config, f, indent=1)
        return self

    def process(self, *args: str, **fields: object) -> Bundle:
        self.config["process"]["args"] = list(args)
        self.config["process"].update(fields)
        return self.write()


@pytest.fixture
def bundle(tmp_path: os.PathLike, busybox_rootfs: str) -> Bundle:
    """A bundle with runc's default spec, no terminal, on the shared read-only rootfs."""
    path = os.path.join(str(tmp_path), "bundle")
    os.mkdir(path)
    config = copy.deepcopy(default_spec(unified_cgroups=False))
    config["root"] = {"path": busybox_rootfs, "readonly": True}
    config["process"]["terminal"] = False
    return Bundle(path, config).write()


@pytest.fixture
def writable_bundle(bundle: Bundle, tmp_path: os.PathLike, busybox_rootfs: str) -> Bundle:
    """Like `bundle`, with a private writable copy of the rootfs."""
    rootfs = os.path.join(bundle.path, "rootfs")
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    bundle.config["root"] = {"path": "rootfs", "readonly": False}
    return bundle.write()


@pytest.fixture
def userns_bundle(bundle: Bundle, busybox_rootfs: str) -> Bundle:
    """Like `bundle`, with a user namespace mapping root to host UID 100000 and a private rootfs
    that UID can reach (pytest's own temp dirs are private to the host's root). Without /sys:
    sysfs and the host's cgroups cannot be mounted from a user namespace that owns neither the
    network nor the cgroup namespace."""
    with tempfile.TemporaryDirectory(dir="/tmp") as top:
        os.chmod(top, 0o755)
        rootfs = os.path.join(top, "rootfs")
        shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
        bundle.config["root"]["path"] = rootfs
        bundle.config["linux"]["namespaces"].append({"type": "user"})
        for key in ("uidMappings", "gidMappings"):
            bundle.config["linux"][key] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        bundle.config["mounts"] = [m for m in bundle.config["mounts"]
                                   if m["destination"] not in ("/sys", "/sys/fs/cgroup")]
        yield bundle.write()
