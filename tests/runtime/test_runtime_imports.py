"""What `pycontainer` imports on the paths users wait for (issue 26): `run` and the small verbs.

A structure test, not a timing test: each command runs under `-X importtime` with the flags of
the installed script's shebang, and every module it (or the container's init, forked from it)
imports must be on the allow-list of its path. A module that turns up here is milliseconds of
every container start: import it where it is used, or add it here knowingly.
"""
from __future__ import annotations

import os
import subprocess
import time

import pytest

from testlib.paths import PYCONTAINER

# What the interpreter loads before any of our code runs (python -I -S -c pass), and `os`.
_INTERPRETER = {"_io", "marshal", "posix", "_frozen_importlib_external", "time", "zipimport",
                "_codecs", "codecs", "encodings", "encodings.aliases", "encodings.utf_8",
                "_signal", "_abc", "abc", "io", "_collections_abc", "_stat", "stat",
                "genericpath", "posixpath", "os", "__future__"}
# start and kill: the state file, the pid and exec.fifo; no config parser, no `json` (it brings
# `re` and `enum`), no click.
_SMALL_VERBS = _INTERPRETER | {
    "_json", "errno", "fcntl", "select",
    "runtime", "runtime.cli", "runtime.cli.main", "runtime.cli.lean_parser", "runtime.cli.verbs",
    "runtime.state", "overlay", "overlay.timefmt",
    "runtime.errors", "runtime.fastjson", "runtime.log", "runtime.container", "runtime.signals",
    "runtime.image_annotations",
    "runtime.cli.commands", "runtime.cli.commands.state", "runtime.cli.commands.kill",
    "runtime.cli.commands.start", "runtime.cli.commands.delete",
}
# The cgroup driver: run and create set the cgroup up. state reads a running container's
# freezer file itself and delete removes a stopped one's empty cgroup itself; each asks the
# driver only when that is not the case.
_CGROUP_DRIVER = _SMALL_VERBS | {
    "cgroups", "cgroups.base", "cgroups.cpuset", "cgroups.devices", "cgroups.errors",
    "cgroups.files", "cgroups.mode", "cgroups.paths", "cgroups.v1", "cgroups.v2",
    "cgroups.validate",
}
# run and create: the config, the launcher and the init; the C helpers they call.
_RUN = _CGROUP_DRIVER | {
    "_cffi_backend", "_prctl", "resource",
    "linux", "linux._native", "linux.constants", "linux.syscalls",
    "runtime.cli.commands.run", "runtime.cli.commands.create", "runtime.config",
    "runtime.launcher", "runtime.exec_plan", "runtime.exec_stub", "runtime.foreground",
    "runtime.hooks", "runtime.namespaces", "runtime.sync",
    "runtime.init", "runtime.capabilities", "runtime.init.container_init",
    "runtime.init.devices", "runtime.init.host_mounts", "runtime.mount_options",
    "runtime.init.mountfd", "runtime.init.process_setup", "runtime.init.procfs",
    "runtime.init.rootfs", "runtime.seccomp", "runtime.init.securejoin",
}


def _interpreter_argv() -> list[str]:
    """The installed script's shebang as an argv: the interpreter and its flags."""
    with open(PYCONTAINER) as f:
        return f.readline()[2:].split()


def _imports(runtime, tmp_path, *args: str) -> set[str]:
    """The modules one command imports, its forked init included (same stderr)."""
    log = os.path.join(str(tmp_path), "importtime")
    with open(log, "w") as err:
        result = subprocess.run([*_interpreter_argv(), "-X", "importtime", PYCONTAINER,
                                 "--root", runtime.root, *args], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, timeout=60)
    with open(log) as f:
        lines = f.read().splitlines()
    assert result.returncode == 0, "\n".join(lines[-5:])
    return {line.split("|")[2].strip() for line in lines
            if line.startswith("import time:") and "imported package" not in line}


def test_installed_script_skips_site():
    """scripts/install.sh gives the venv's script `-IS`; pip alone writes a bare shebang."""
    flags = _interpreter_argv()[1:]
    assert flags == ["-IS"], (f"{PYCONTAINER}: shebang flags {flags}, want ['-IS'] "
                              "(run scripts/install.sh again after `pip install -e .`)")


@pytest.mark.root
def test_run_imports_only_its_allow_list(runtime, bundle, tmp_path):
    bundle.process("/bin/true")
    found = _imports(runtime, tmp_path, "run", "--bundle", bundle.path, runtime.new_id())
    assert found - _RUN == set()
    assert {"runtime.init.container_init", "runtime.config"} <= found, "the run path was not measured"


@pytest.mark.root
def test_small_verbs_import_only_their_allow_list(runtime, bundle, tmp_path):
    bundle.process("/bin/sleep", "100")
    cid = runtime.new_id()
    runtime.run("create", "--bundle", bundle.path, cid, check=True, capture_output=False,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    extra = {}
    extra["start"] = _imports(runtime, tmp_path, "start", cid) - _SMALL_VERBS
    extra["state"] = _imports(runtime, tmp_path, "state", cid) - _SMALL_VERBS
    extra["kill"] = _imports(runtime, tmp_path, "kill", cid, "KILL") - _SMALL_VERBS
    # delete wants the init gone; kill only sent the signal.
    for _ in range(3000):
        if runtime.state(cid)["status"] == "stopped":
            break
        time.sleep(0.01)
    extra["delete"] = _imports(runtime, tmp_path, "delete", cid) - _SMALL_VERBS
    assert extra == {"start": set(), "state": set(), "kill": set(), "delete": set()}
