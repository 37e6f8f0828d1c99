"""Fixtures of the attack tests: the runtime tests' bundles, a canary, the static attacker."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from seclib import (ROOTFS_MARKER, Canary, build_attacker, copy_interpreter,  # noqa: E402
                    runtime_lib, sha256)

busybox_rootfs = runtime_lib.busybox_rootfs
runtime = runtime_lib.runtime
bundle = runtime_lib.bundle
writable_bundle = runtime_lib.writable_bundle


@pytest.fixture
def canary() -> Canary:
    c = Canary.make()
    yield c
    c.remove()


@pytest.fixture(scope="session")
def attacker(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The static attack tool (attack.c), built once per session."""
    return build_attacker(str(tmp_path_factory.mktemp("attacker")))


@pytest.fixture
def hostile_bundle(bundle, busybox_rootfs: str, attacker: str):
    """A bundle on a private writable busybox copy with the attack tool at /attack and a marker
    file at its root. The copy sits in a world-searchable directory, so that a user-namespaced
    root (mapped to an unprivileged host uid) reaches it too."""
    top = tempfile.mkdtemp(prefix="pycontainer-hostile-", dir="/tmp")
    os.chmod(top, 0o755)
    rootfs = os.path.join(top, "rootfs")
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    shutil.copy2(attacker, os.path.join(rootfs, "attack"))
    open(os.path.join(rootfs, ROOTFS_MARKER), "w").close()
    bundle.config["root"] = {"path": rootfs, "readonly": False}
    bundle.rootfs = rootfs
    yield bundle.write()
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def interpreter_copy(tmp_path) -> tuple[str, str]:
    """(path, sha256) of a private copy of the interpreter that runs `pycontainer` in the
    exe-overwrite tests: the canary those attacks aim at."""
    python = copy_interpreter(str(tmp_path / "pyenv"))
    return python, sha256(python)
