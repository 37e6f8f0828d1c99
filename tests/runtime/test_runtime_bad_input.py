"""Bad input: one clear line naming the field, a non-zero exit, and nothing left behind."""
from __future__ import annotations

import os
import subprocess

import pytest

pytestmark = pytest.mark.root


def assert_refused(runtime, cid, out, *words: bytes) -> None:
    assert out.returncode != 0
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    for word in words:
        assert word in lines[0], out.stderr
    assert out.stdout == b""
    assert runtime.leftovers(cid) == []


def edit(bundle, change):
    change(bundle.config)
    bundle.write()


CASES = {
    "missing root": (lambda c: c.pop("root"), [b"root: is required"]),
    "root not a directory": (lambda c: c["root"].update(path="/nonexistent"),
                             [b"root.path", b"/nonexistent"]),
    "unknown namespace": (lambda c: c["linux"]["namespaces"].append({"type": "bogus"}),
                          [b"linux.namespaces[5].type", b"bogus"]),
    "duplicate namespace": (lambda c: c["linux"]["namespaces"].append({"type": "pid"}),
                            [b"linux.namespaces[5].type", b"twice"]),
    "namespace path missing": (lambda c: c["linux"]["namespaces"].__setitem__(
        1, {"type": "network", "path": "/run/netns/none"}), [b"linux.namespaces[1].path"]),
    "unknown bind option": (lambda c: c["mounts"].append(
        {"destination": "/x", "type": "bind", "source": "/tmp", "options": ["rbind", "bogus"]}),
        [b"mounts[7].options", b"bogus"]),
    "option the kernel refuses": (lambda c: c["mounts"].append(
        {"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["bogus=1"]}),
        [b"mounts[7]", b"/x"]),
    "relative destination": (lambda c: c["mounts"].append(
        {"destination": "x", "type": "tmpfs", "source": "tmpfs"}), [b"mounts[7].destination"]),
    "args[0] not found": (lambda c: c["process"].update(args=["no-such-binary"]),
                          [b"process.args[0]", b"no-such-binary"]),
    "empty args": (lambda c: c["process"].update(args=[]), [b"process.args", b"empty"]),
    "relative cwd": (lambda c: c["process"].update(cwd="tmp"), [b"process.cwd"]),
    "uid not a number": (lambda c: c["process"]["user"].update(uid="root"),
                         [b"process.user.uid", b"integer"]),
    "unknown capability": (lambda c: c["process"]["capabilities"]["bounding"].append("CAP_FLY"),
                           [b"process.capabilities.bounding[3]", b"CAP_FLY"]),
    "unknown rlimit": (lambda c: c["process"]["rlimits"].append(
        {"type": "RLIMIT_WINGS", "soft": 1, "hard": 1}), [b"process.rlimits[1].type"]),
    "hostname without uts": (lambda c: (c.update(hostname="h"), c["linux"].update(
        namespaces=[n for n in c["linux"]["namespaces"] if n["type"] != "uts"])), [b"hostname"]),
    "host sysctl": (lambda c: c["linux"].update(sysctl={"vm.swappiness": "1"}),
                    [b"linux.sysctl.vm.swappiness"]),
    "negative memory limit": (lambda c: c["linux"]["resources"].update(memory={"limit": -5}),
                              [b"linux.resources.memory.limit"]),
    "seccomp action": (lambda c: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_MAYBE"}),
                       [b"linux.seccomp.defaultAction", b"SCMP_ACT_MAYBE"]),
    "seccomp notify": (lambda c: c["linux"].update(seccomp={
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
        [b"linux.seccomp.syscalls[0].action", b"SCMP_ACT_NOTIFY"]),
    "apparmor": (lambda c: c["process"].update(apparmorProfile="docker-default"),
                 [b"process.apparmorProfile"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_config_is_refused_cleanly(runtime, bundle, case):
    change, words = CASES[case]
    edit(bundle, change)
    cid = runtime.new_id()
    for verb in ("create", "run"):
        assert_refused(runtime, cid, runtime.run(verb, "-b", bundle.path, cid), *words)


def test_malformed_json(runtime, bundle):
    with open(os.path.join(bundle.path, "config.json"), "w") as f:
        f.write('{"ociVersion": "1.0.2", "root": ')
    cid = runtime.new_id()
    assert_refused(runtime, cid, runtime.run("create", "-b", bundle.path, cid),
                   b"config.json", b"not valid JSON")


def test_missing_config(runtime, tmp_path):
    cid = runtime.new_id()
    assert_refused(runtime, cid, runtime.run("create", "-b", str(tmp_path), cid),
                   b"config.json", b"not found")


def test_duplicate_id_is_refused_and_the_first_survives(runtime, bundle):
    bundle.process("sleep", "60")
    cid = runtime.new_id()
    subprocess.run(runtime.argv("create", "-b", bundle.path, cid), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    out = runtime.run("create", "-b", bundle.path, cid)
    assert out.returncode == 1 and b"already exists" in out.stderr
    assert runtime.state(cid)["status"] == "created"


def test_invalid_id(runtime, bundle):
    out = runtime.run("create", "-b", bundle.path, "../escape")
    assert out.returncode == 1 and b"invalid container ID" in out.stderr
    assert not os.path.exists(os.path.join(runtime.root, "..", "escape"))


def test_unknown_signal(runtime, bundle):
    bundle.process("sleep", "60")
    cid = runtime.new_id()
    subprocess.run(runtime.argv("create", "-b", bundle.path, cid), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    out = runtime.run("kill", cid, "SIGFOO")
    assert out.returncode == 1 and out.stderr.count(b"\n") == 1 and b"SIGFOO" in out.stderr


def test_systemd_cgroup_is_refused_clearly(runtime, bundle):
    cid = runtime.new_id()
    out = runtime.run("--systemd-cgroup", "create", "-b", bundle.path, cid)
    assert_refused(runtime, cid, out, b"systemd")


def test_errors_go_to_the_log_as_json_lines(runtime, bundle, tmp_path):
    """The containerd shim and conmon read the last JSON line of --log for the error."""
    import json

    log = tmp_path / "log.json"
    edit(bundle, lambda c: c["process"].update(args=["no-such-binary"]))
    cid = runtime.new_id()
    out = runtime.run("--log", str(log), "--log-format", "json", "create", "-b", bundle.path, cid)
    assert out.returncode == 1
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["level"] == "error" and "no-such-binary" in last["msg"] and "time" in last
    assert b"no-such-binary" in out.stderr  # and the user still sees it


def test_usage_errors_come_from_click(runtime):
    out = runtime.run("create")
    assert out.returncode == 2 and b"Missing argument" in out.stderr
    out = runtime.run("kill", "--bogus", "x")
    assert out.returncode == 2 and b"No such option" in out.stderr
