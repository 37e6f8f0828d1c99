"""Pure pieces of the runtime: signal names, secure path joins, mount options, config checks."""
from __future__ import annotations

import os
import signal

import pytest

from linux import constants as lx
from runtime import mount_options, signals
from runtime.config import parse, parse_process
from runtime.default_spec import default_spec
from runtime.errors import ConfigError, PycontainerError
from runtime.init import securejoin


@pytest.mark.parametrize("text, number", [("TERM", 15), ("SIGTERM", 15), ("15", 15),
                                          ("kill", 9), ("SIGRTMIN+1", signal.SIGRTMIN + 1)])
def test_signal_names(text, number):
    assert signals.parse(text) == number


@pytest.mark.parametrize("text", ["SIGFOO", "0", "999", "RTMIN+100"])
def test_bad_signal_names(text):
    with pytest.raises(PycontainerError, match="signal"):
        signals.parse(text)


def test_securejoin_keeps_symlinks_inside(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink("/etc", root / "abs")
    os.symlink("../../../../..", root / "up")
    os.symlink("loop", root / "loop")
    assert securejoin.join(str(root), "/abs/passwd") == str(root / "etc" / "passwd")
    assert securejoin.join(str(root), "/up/etc") == str(root / "etc")
    assert securejoin.join(str(root), "/../../x") == str(root / "x")
    assert securejoin.join(str(root), "/new/dir") == str(root / "new" / "dir")
    with pytest.raises(OSError):
        securejoin.join(str(root), "/loop")


def test_mount_options():
    parsed = mount_options.parse(["rbind", "ro", "nosuid", "rprivate"], True, "mounts[0].options")
    assert parsed.flags == lx.MS_BIND | lx.MS_REC | lx.MS_RDONLY | lx.MS_NOSUID
    assert parsed.propagation == [lx.MS_PRIVATE | lx.MS_REC]
    parsed = mount_options.parse(["nosuid", "mode=755", "size=1m", "newinstance"], False, "m")
    assert parsed.data == "mode=755,size=1m,newinstance"
    assert mount_options.parse(["ro", "rw"], False, "m").flags == 0
    with pytest.raises(ConfigError, match=r"mounts\[0\].options: unknown mount option 'x'"):
        mount_options.parse(["bind", "x"], True, "mounts[0].options")


def config(tmp_path, **changes):
    raw = default_spec(unified_cgroups=False)
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    raw.update(changes)
    return raw


def test_default_spec_parses(tmp_path):
    c = parse(config(tmp_path), str(tmp_path))
    assert c.root_path == str(tmp_path / "rootfs") and c.root_readonly
    assert c.new_namespace("pid") and not c.has_namespace("user")
    assert c.process.args == ["sh"] and c.process.no_new_privileges
    assert [m.destination for m in c.mounts][:2] == ["/proc", "/dev"]


@pytest.mark.parametrize("changes, message", [
    ({"ociVersion": "2.0"}, "ociVersion: unsupported version"),
    ({"hooks": {"prestart": [{"path": "relative"}]}}, r"hooks.prestart\[0\].path: must be an absolute"),
    ({"hooks": {"prestart": [{"path": "/x", "timeout": 0}]}}, "greater than zero"),
    ({"hooks": {"preboot": []}}, "hooks.preboot: unknown hook kind"),
    ({"mounts": [{"destination": "/x"}]}, r"mounts\[0\].type: is required"),
    ({"annotations": {"a": 1}}, "annotations.a: must be a string"),
])
def test_config_errors_name_the_field(tmp_path, changes, message):
    with pytest.raises(ConfigError, match=message):
        parse(config(tmp_path, **changes), str(tmp_path))


def test_user_namespace_needs_mappings(tmp_path):
    raw = config(tmp_path)
    raw["linux"]["namespaces"].append({"type": "user"})
    with pytest.raises(ConfigError, match="linux.uidMappings"):
        parse(raw, str(tmp_path))


@pytest.mark.parametrize("process, message", [
    ({"args": ["x"], "cwd": "/", "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 2, "hard": 1}]},
     r"process.rlimits\[0\].soft: 2 is above the hard limit 1"),
    ({"args": ["x"], "cwd": "/", "oomScoreAdj": 5000}, "process.oomScoreAdj"),
    ({"args": ["x"], "cwd": "/", "env": ["NOEQUALS"]}, r"process.env\[0\]"),
    ({"args": ["x"], "cwd": "/", "terminal": "yes"}, "process.terminal: must be a boolean"),
    ({"args": ["x"]}, "process.cwd: is required"),
])
def test_process_errors_name_the_field(process, message):
    with pytest.raises(ConfigError, match=message):
        parse_process(process, "process")
