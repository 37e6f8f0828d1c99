"""What issue 19 fixed that is not an attack of its own: joining a PID namespace by path, exec
into a created container with a user namespace, runc 1.1's ambient capabilities, the exec stub's
failures, and the field named when the init dies of its memory limit."""
from __future__ import annotations

import os
import subprocess

import pytest

pytestmark = pytest.mark.root


def _run_detached(runtime, bundle, *args: str) -> str:
    bundle.process(*args)
    cid = runtime.new_id()
    out = runtime.run("run", "-d", "-b", bundle.path, cid, capture_output=False,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert out.returncode == 0
    return cid


def test_a_container_joins_another_s_pid_namespace_by_path(runtime, bundle, tmp_path):
    first = _run_detached(runtime, bundle, "sleep", "60")
    first_pid = runtime.state(first)["pid"]
    own_pid_ns = os.readlink("/proc/self/ns/pid")
    second = bundle.config
    for ns in second["linux"]["namespaces"]:
        if ns["type"] == "pid":
            ns["path"] = f"/proc/{first_pid}/ns/pid"
    bundle.process("sh", "-c", "readlink /proc/self/ns/pid; ps -o pid,args")
    cid = runtime.new_id()
    out = runtime.run("run", "-b", bundle.path, cid)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().splitlines()
    assert lines[0] == os.readlink(f"/proc/{first_pid}/ns/pid")
    assert any(line.split()[:3] == ["1", "sleep", "60"] for line in lines[1:]), lines
    # Only the child moved: the runtime went back to its own namespace, and no second runtime
    # unwound in the child (it would have printed a second error or left state behind).
    assert os.readlink("/proc/self/ns/pid") == own_pid_ns
    assert out.stderr == b""
    assert runtime.leftovers(cid) == []


def test_exec_into_a_created_container_with_a_user_namespace(runtime, userns_bundle):
    userns_bundle.process("sleep", "60")
    cid = runtime.new_id()
    assert runtime.run("create", "-b", userns_bundle.path, cid, capture_output=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    out = runtime.run("exec", cid, "sh", "-c", "id -u; cat /proc/self/uid_map")
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().split() == ["0", "0", "100000", "65536"]
    runtime.run("delete", "--force", cid)


def test_runc_1_1_ambient_capabilities_are_a_warning(runtime, bundle):
    """runc 1.1's `runc spec` lists its capabilities as ambient too, with none inheritable: the
    kernel refuses to raise them, and runc warns and runs."""
    caps = bundle.config["process"]["capabilities"]
    caps["ambient"] = list(caps["bounding"])
    caps["inheritable"] = []
    bundle.process("grep", "CapAmb", "/proc/self/status")
    cid = runtime.new_id()
    out = runtime.run("run", "-b", bundle.path, cid)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[1] == b"0000000000000000"
    assert b"level=warning" in out.stderr and b"process.capabilities.ambient: CAP_" in out.stderr


def test_exec_cap_stays_out_of_inheritable_and_ambient(runtime, bundle):
    cid = _run_detached(runtime, bundle, "sleep", "60")
    out = runtime.run("exec", "--cap", "CAP_DAC_OVERRIDE", cid, "grep", "-E", "^Cap(Inh|Amb|Eff)",
                      "/proc/self/status")
    assert out.returncode == 0, out.stderr
    sets = dict(line.split(":") for line in out.stdout.decode().splitlines())
    assert int(sets["CapEff"], 16) & (1 << 1)          # CAP_DAC_OVERRIDE, effective for root
    assert int(sets["CapInh"], 16) == int(sets["CapAmb"], 16) == 0


def test_an_exec_whose_last_execve_fails_is_one_line_from_exec(runtime, writable_bundle):
    """The exec stub does the container's execve; its failure still reaches `exec` as an error."""
    with open(os.path.join(writable_bundle.path, "rootfs", "not-elf"), "wb") as f:
        f.write(b"\x7fELF garbage")
    os.chmod(os.path.join(writable_bundle.path, "rootfs", "not-elf"), 0o755)
    writable_bundle.config["root"]["readonly"] = False
    cid = _run_detached(runtime, writable_bundle, "sleep", "60")
    out = runtime.run("exec", cid, "/not-elf")
    assert out.returncode == 1
    assert "exec /not-elf: Exec format error" in out.stderr.decode()
    assert len(out.stderr.decode().strip().splitlines()) == 1


def test_proc_self_exe_of_a_container_process_is_never_a_host_file(runtime, writable_bundle):
    """A "#!/proc/self/exe" entrypoint runs what the runtime's last execve ran: the sealed stub,
    which does nothing when run that way (CVE-2019-5736; tests/security attacks it in full)."""
    script = os.path.join(writable_bundle.path, "rootfs", "evil")
    with open(script, "w") as f:
        f.write("#!/proc/self/exe\n")
    os.chmod(script, 0o755)
    cid = _run_detached(runtime, writable_bundle, "sleep", "60")
    out = runtime.run("exec", cid, "/evil")
    assert out.returncode == 127
    assert out.stderr == b""


def test_an_init_killed_by_its_memory_limit_names_the_field(runtime, bundle):
    bundle.config["linux"]["resources"] = {"memory": {"limit": 1}}
    bundle.process("true")
    cid = runtime.new_id()
    out = runtime.run("run", "-b", bundle.path, cid)
    assert out.returncode == 1
    line = out.stderr.decode().strip()
    assert "linux.resources.memory.limit" in line and "OOM" in line, line
    assert len(line.splitlines()) == 1
    assert runtime.leftovers(cid) == []
