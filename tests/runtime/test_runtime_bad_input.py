"""Bad input: one clear line naming the field, exit 1 (as README promises), and nothing left
behind."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from runtime_refusals import assert_one_line_error

pytestmark = pytest.mark.root

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Fresh mount, PID, net, UTS and IPC namespaces: for configs without a mount namespace, which
# would reach the caller's mount table if the runtime were wrong.
SANDBOX = os.path.join(os.path.dirname(REPO), "shared", "sandbox.sh")


def assert_refused(runtime, cid, out, *words: bytes) -> None:
    assert_one_line_error(out, *words)
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
    "no process": (lambda c: c.pop("process"), [b"process", b"required"]),
    "long hostname": (lambda c: c.update(hostname="h" * 300), [b"hostname", b"64", b"300"]),
    "long domainname": (lambda c: c.update(domainname="d" * 65), [b"domainname", b"64"]),
    "empty root.path": (lambda c: c["root"].update(path=""), [b"root.path", b"empty"]),
    "ociVersion a number": (lambda c: c.update(ociVersion=1.0), [b"ociVersion", b"string"]),
    "args a string": (lambda c: c["process"].update(args="sh"), [b"process.args", b"array"]),
    "terminal a string": (lambda c: c["process"].update(terminal="yes"),
                          [b"process.terminal", b"boolean"]),
    "uid beyond 32 bits": (lambda c: c["process"]["user"].update(uid=2**64),
                           [b"process.user.uid", b"4294967294"]),
    "namespaces an object": (lambda c: c["linux"].update(namespaces={"type": "pid"}),
                             [b"linux.namespaces", b"array"]),
    "mount options a string": (lambda c: c["mounts"][0].update(options="ro"),
                               [b"mounts[0].options", b"array"]),
    "memory limit a string": (lambda c: c["linux"]["resources"].update(memory={"limit": "1g"}),
                              [b"linux.resources.memory.limit"]),
    "seccomp architectures a string": (lambda c: c["linux"].update(seccomp={
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": "SCMP_ARCH_X86_64"}),
        [b"linux.seccomp.architectures", b"array"]),
    "seccomp action an object": (lambda c: c["linux"].update(seccomp={"defaultAction": {}}),
                                 [b"linux.seccomp.defaultAction"]),
    "hooks not an array": (lambda c: c.update(hooks={"prestart": {"path": "/bin/true"}}),
                           [b"hooks.prestart", b"array"]),
    "uid (uid_t)-1, which would leave root": (
        lambda c: c["process"]["user"].update(uid=2**32 - 1),
        [b"process.user.uid", b"4294967294"]),
    "too many groups": (lambda c: c["process"]["user"].update(additionalGids=[1] * 65537),
                        [b"process.user.additionalGids", b"65536"]),
    "NUL in args": (lambda c: c["process"].update(args=["s\0h"]), [b"process.args[0]", b"NUL"]),
    "empty env name": (lambda c: c["process"]["env"].append("=x"), [b"process.env[2]"]),
    "open files above nr_open": (lambda c: c["process"]["rlimits"][0].update(
        soft=2**64 - 1, hard=2**64 - 1), [b"process.rlimits[0].hard", b"nr_open"]),
    "device major beyond 12 bits": (lambda c: c["linux"].update(devices=[
        {"path": "/dev/x", "type": "c", "major": 4096, "minor": 1}]),
        [b"linux.devices[0].major", b"4095"]),
    "hook timeout beyond the clock": (lambda c: c.update(hooks={"prestart": [
        {"path": "/bin/true", "timeout": 2**70}]}), [b"hooks.prestart[0].timeout"]),
    "field name with a line break": (lambda c: c["linux"].update(sysctl={"net.a\nb": 1}),
                                     [b"linux.sysctl.net.a", b"string"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_config_is_refused_cleanly(runtime, bundle, case):
    change, words = CASES[case]
    edit(bundle, change)
    cid = runtime.new_id()
    for verb in ("create", "run"):
        assert_refused(runtime, cid, runtime.run(verb, "-b", bundle.path, cid), *words)


def config_text(bundle) -> str:
    return json.dumps(bundle.config, indent=1)


# config.json as text -> the words its one line must have. The position is 1-based, as editors
# count.
BROKEN_JSON = {
    "truncated": (lambda b: '{"ociVersion": "1.0.2", "root": ', [b"expecting a value", b"line 1"]),
    "truncated inside an array": (lambda b: config_text(b)[:config_text(b).index('"CAP_KILL"')],
                                  [b"line", b"column"]),
    "missing comma": (lambda b: '{\n "ociVersion": "1.0.2"\n "root": {}\n}',
                      [b"expecting ',' delimiter at line 3, column 2"]),
    "trailing comma": (lambda b: '{"ociVersion": "1.0.2",}',
                       [b"expecting property name", b"line 1, column 24"]),
    "unterminated string": (lambda b: '{"ociVersion": "1.0.2', [b"unterminated string", b"line 1"]),
    "deep nesting": (lambda b: "[" * 200_000 + "]" * 200_000, [b"nested too deeply"]),
    "NaN": (lambda b: '{"ociVersion": NaN}', [b"NaN"]),
    "extra data": (lambda b: config_text(b) + "\n{}", [b"extra data", b"column 1"]),
    "empty file": (lambda b: "", [b"expecting a value", b"line 1, column 1"]),
    "not an object": (lambda b: "[]", [b"config.json", b"must be an object"]),
}


@pytest.mark.parametrize("case", list(BROKEN_JSON))
def test_malformed_json(runtime, bundle, case):
    text, words = BROKEN_JSON[case]
    content = text(bundle)
    with open(os.path.join(bundle.path, "config.json"), "w") as f:
        f.write(content)
    cid = runtime.new_id()
    for verb in ("create", "run"):
        assert_refused(runtime, cid, runtime.run(verb, "-b", bundle.path, cid), b"config.json",
                       *words)


def test_config_that_is_not_utf8(runtime, bundle):
    with open(os.path.join(bundle.path, "config.json"), "wb") as f:
        f.write(b'{"ociVersion": "1.0.2", "hostname": "\xff"}')
    cid = runtime.new_id()
    assert_refused(runtime, cid, runtime.run("create", "-b", bundle.path, cid),
                   b"config.json", b"byte 0xff is not UTF-8", b"line 1, column 38")


# Without a mount namespace the runtime never changes the caller's mount table, so what only a
# change to it could honour is refused (as runc's validator does). Run in a sandbox: were the
# refusal missing, the container would share the mount namespace it runs in.
NEEDS_MOUNT_NAMESPACE = {
    "maskedPaths": (lambda c: None, [b"linux.maskedPaths", b"mount namespace"]),
    "readonlyPaths": (lambda c: c["linux"].pop("maskedPaths"),
                      [b"linux.readonlyPaths", b"mount namespace"]),
    "root.readonly": (lambda c: (c["linux"].pop("maskedPaths"), c["linux"].pop("readonlyPaths")),
                      [b"root.readonly", b"mount namespace"]),
    "rootfsPropagation": (lambda c: (c["linux"].pop("maskedPaths"),
                                     c["linux"].pop("readonlyPaths"),
                                     c["root"].update(readonly=False),
                                     c["linux"].update(rootfsPropagation="rprivate")),
                          [b"linux.rootfsPropagation", b"mount namespace"]),
}


@pytest.mark.parametrize("case", list(NEEDS_MOUNT_NAMESPACE))
def test_without_a_mount_namespace_what_needs_one_is_refused(runtime, bundle, case):
    change, words = NEEDS_MOUNT_NAMESPACE[case]
    bundle.config["linux"]["namespaces"] = [
        n for n in bundle.config["linux"]["namespaces"] if n["type"] != "mount"]
    edit(bundle, change)
    cid = runtime.new_id()
    out = subprocess.run([SANDBOX, *runtime.argv("create", "-b", bundle.path, cid)],
                         capture_output=True, timeout=60)
    assert_refused(runtime, cid, out, *words)


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


def created(runtime, bundle) -> str:
    bundle.process("sleep", "60")
    cid = runtime.new_id()
    subprocess.run(runtime.argv("create", "-b", bundle.path, cid), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    return cid


# An `exec --process` file -> the words of its one line.
BAD_PROCESS_FILES = {
    "truncated": ('{"args": ["true"], "cwd": "/"', [b"--process", b"expecting ',' delimiter",
                                                     b"line 1, column 30"]),
    "deep nesting": ("[" * 200_000, [b"--process", b"nested too deeply"]),
    "no args": ('{"cwd": "/"}', [b"process.args", b"required"]),
    "args a string": ('{"args": "true", "cwd": "/"}', [b"process.args", b"array"]),
    "uid negative": ('{"args": ["true"], "cwd": "/", "user": {"uid": -1}}',
                     [b"process.user.uid"]),
}


@pytest.mark.parametrize("case", list(BAD_PROCESS_FILES))
def test_bad_exec_process_file(runtime, bundle, tmp_path, case):
    content, words = BAD_PROCESS_FILES[case]
    cid = created(runtime, bundle)
    path = tmp_path / "process.json"
    path.write_text(content)
    assert_one_line_error(runtime.run("exec", "--process", str(path), cid), *words)
    assert runtime.state(cid)["status"] == "created"


def test_missing_exec_process_file(runtime, bundle, tmp_path):
    cid = created(runtime, bundle)
    missing = str(tmp_path / "nowhere.json")
    assert_one_line_error(runtime.run("exec", "--process", missing, cid),
                          b"--process", missing.encode(), b"No such file")


@pytest.mark.parametrize("content, words", [
    ('{"id": ', [b"expecting a value", b"line 1, column 8"]),
    ('{"id": "x"}', [b"pid", b"missing"]),
    ("[]", [b"not a JSON object"]),
])
def test_damaged_state_file(runtime, bundle, content, words):
    cid = created(runtime, bundle)
    path = os.path.join(runtime.root, cid, "state.json")
    with open(path) as f:
        good = f.read()
    try:
        with open(path, "w") as f:
            f.write(content)
        assert_one_line_error(runtime.run("state", cid), path.encode(), b"damaged", *words)
    finally:
        # So that the cleanup's delete finds the container and removes it.
        with open(path, "w") as f:
            f.write(good)
