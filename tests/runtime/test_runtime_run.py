"""`pycontainer run` on busybox bundles: what the user sees inside and outside the container."""
from __future__ import annotations

import os
import subprocess

import pytest

from runtime_waits import read_line

pytestmark = pytest.mark.root


def test_run_prints_output_and_leaves_nothing(runtime, bundle):
    bundle.process("echo", "hello")
    cid = runtime.new_id()
    out = runtime.run("run", "--bundle", bundle.path, cid)
    assert (out.returncode, out.stdout, out.stderr) == (0, b"hello\n", b"")
    assert runtime.leftovers(cid) == []


def test_bundle_defaults_to_current_directory(runtime, bundle):
    bundle.process("echo", "from cwd")
    out = runtime.run("run", runtime.new_id(), cwd=bundle.path)
    assert out.stdout == b"from cwd\n"


def test_run_returns_the_container_status(runtime, bundle):
    bundle.process("sh", "-c", "exit 3")
    assert runtime.run("run", "-b", bundle.path, runtime.new_id()).returncode == 3


def test_run_returns_128_plus_the_killing_signal(runtime, bundle):
    bundle.process("sh", "-c", "echo up; sleep 30")
    cid = runtime.new_id()
    proc = subprocess.Popen(runtime.argv("run", "-b", bundle.path, cid), stdout=subprocess.PIPE)
    assert read_line(proc.stdout, "'up' from the container") == b"up\n"
    assert runtime.run("kill", cid, "KILL").returncode == 0
    assert proc.wait(timeout=10) == 137


def test_without_pid_namespace_term_kills_and_the_rest_is_reaped(runtime, bundle):
    """As PID 1 of its own namespace, sh would ignore SIGTERM; without one it dies of it, and
    `run` kills what it left in the cgroup."""
    bundle.config["linux"]["namespaces"] = [
        ns for ns in bundle.config["linux"]["namespaces"] if ns["type"] != "pid"]
    bundle.process("sh", "-c", "sleep 60 & echo up; wait")
    cid = runtime.new_id()
    proc = subprocess.Popen(runtime.argv("run", "-b", bundle.path, cid), stdout=subprocess.PIPE)
    assert read_line(proc.stdout, "'up' from the container") == b"up\n"
    assert runtime.run("kill", cid, "TERM").returncode == 0
    assert proc.wait(timeout=10) == 143
    assert runtime.leftovers(cid) == []


def test_init_is_pid_1_and_proc_shows_only_the_container(runtime, bundle):
    bundle.process("sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'")
    out = runtime.run("run", "-b", bundle.path, runtime.new_id())
    pid, count = out.stdout.split()
    assert pid == b"1"
    assert int(count) <= 3  # sh, ls, grep at most


def test_hostname_and_domainname(runtime, bundle):
    bundle.config["hostname"] = "box"
    bundle.config["domainname"] = "example.test"
    bundle.process("sh", "-c", "hostname; cat /proc/sys/kernel/domainname")
    assert runtime.run("run", "-b", bundle.path, runtime.new_id()).stdout == b"box\nexample.test\n"


def test_root_is_read_only(runtime, bundle):
    bundle.process("sh", "-c", "touch /x 2>/dev/null && echo writable || echo read-only")
    assert runtime.run("run", "-b", bundle.path, runtime.new_id()).stdout == b"read-only\n"


def test_writable_root_keeps_writes(runtime, writable_bundle):
    writable_bundle.process("sh", "-c", "echo data > /root/file")
    assert runtime.run("run", "-b", writable_bundle.path, runtime.new_id()).returncode == 0
    with open(os.path.join(writable_bundle.path, "rootfs", "root", "file")) as f:
        assert f.read() == "data\n"


def test_env_cwd_and_user(runtime, bundle):
    bundle.process("sh", "-c", "echo $GREETING; pwd; id -u; id -g; id -G; echo $HOME",
                   env=["PATH=/bin", "GREETING=hi there"], cwd="/tmp",
                   user={"uid": 1000, "gid": 1000, "additionalGids": [5, 1000]})
    out = runtime.run("run", "-b", bundle.path, runtime.new_id())
    assert out.stdout.decode().splitlines() == ["hi there", "/tmp", "1000", "1000", "1000 5",
                                                "/home/user"]


def test_missing_cwd_is_created(runtime, writable_bundle):
    writable_bundle.process("pwd", cwd="/srv/app")
    assert runtime.run("run", "-b", writable_bundle.path, runtime.new_id()).stdout == b"/srv/app\n"


def test_capabilities_and_no_new_privs(runtime, bundle):
    bundle.process("sh", "-c", "grep -E '^(CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status")
    out = runtime.run("run", "-b", bundle.path, runtime.new_id()).stdout.decode()
    status = dict(line.split(":\t") for line in out.splitlines())
    # runc's default set: CAP_KILL(5), CAP_NET_BIND_SERVICE(10), CAP_AUDIT_WRITE(29)
    expected = f"{(1 << 5) | (1 << 10) | (1 << 29):016x}"
    assert status == {"CapEff": expected, "CapBnd": expected, "CapAmb": "0" * 16, "NoNewPrivs": "1"}


def test_ambient_capabilities_reach_a_non_root_user(runtime, bundle):
    caps = ["CAP_NET_RAW"]
    bundle.process("sh", "-c", "grep -E '^CapEff' /proc/self/status",
                   user={"uid": 1000, "gid": 1000},
                   capabilities={k: caps for k in ("bounding", "effective", "inheritable",
                                                   "permitted", "ambient")})
    out = runtime.run("run", "-b", bundle.path, runtime.new_id())
    assert out.stdout.decode().split() == ["CapEff:", f"{1 << 13:016x}"], out.stderr


def test_masked_and_read_only_paths(runtime, bundle):
    bundle.config["linux"]["maskedPaths"] += ["/etc/group", "/home"]
    bundle.process("sh", "-c", "wc -c < /etc/group; ls /home | wc -l; "
                   "echo 1 > /proc/sys/kernel/sysrq 2>/dev/null && echo rw || echo ro")
    out = runtime.run("run", "-b", bundle.path, runtime.new_id())
    assert out.stdout.split() == [b"0", b"0", b"ro"]


def test_rlimits(runtime, bundle):
    bundle.process("sh", "-c", "ulimit -n; ulimit -Hn",
                   rlimits=[{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 2048}])
    assert runtime.run("run", "-b", bundle.path, runtime.new_id()).stdout.split() == [b"512", b"2048"]


def test_default_devices(runtime, bundle):
    bundle.process("sh", "-c", "ls /dev; echo x > /dev/null && head -c 4 /dev/zero | wc -c")
    out = runtime.run("run", "-b", bundle.path, runtime.new_id()).stdout.decode().split()
    for name in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx", "fd",
                 "stdin", "stdout", "stderr"):
        assert name in out
    assert out[-1] == "4"


def test_config_devices_are_created(runtime, bundle):
    bundle.config["linux"]["devices"] = [
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o620,
         "uid": 0, "gid": 5}]
    bundle.config["linux"]["resources"]["devices"].append(
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"})
    bundle.process("sh", "-c", "stat -c '%t,%T %a %g' /dev/mynull; echo x > /dev/mynull && echo ok")
    out = runtime.run("run", "-b", bundle.path, runtime.new_id())
    assert out.stdout == b"1,3 620 5\nok\n", out.stderr


def test_bind_mount_read_only(runtime, bundle, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "f").write_text("from host\n")
    bundle.config["mounts"].append({"destination": "/data", "type": "bind", "source": str(shared),
                                    "options": ["rbind", "ro", "nosuid"]})
    bundle.process("sh", "-c", "cat /data/f; touch /data/g 2>/dev/null && echo rw || echo ro")
    assert runtime.run("run", "-b", bundle.path, runtime.new_id()).stdout == b"from host\nro\n"
    assert not (shared / "g").exists()


def test_tmpfs_mount_with_size_and_mode(runtime, bundle):
    bundle.config["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["size=1m", "mode=1777", "nodev"]})
    bundle.process("sh", "-c", "stat -c %a /scratch; df -k /scratch | tail -1 | awk '{print $2}'")
    assert runtime.run("run", "-b", bundle.path, runtime.new_id()).stdout.split() == [b"1777", b"1024"]


def test_mount_destination_symlink_stays_in_rootfs(runtime, writable_bundle, tmp_path):
    """A symlink in the image pointing at /etc of the host must not move a mount onto the host."""
    os.symlink("/tmp/../../../outside", os.path.join(writable_bundle.path, "rootfs", "escape"))
    writable_bundle.config["mounts"].append(
        {"destination": "/escape", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]})
    writable_bundle.process("sh", "-c", "ls -d /outside")
    out = runtime.run("run", "-b", writable_bundle.path, runtime.new_id())
    assert out.stdout == b"/outside\n"
    assert not os.path.exists("/outside")


def test_sysctl_in_the_container_namespace(runtime, bundle):
    host_value = _read("/proc/sys/net/ipv4/ip_unprivileged_port_start")
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_unprivileged_port_start": "80"}
    bundle.process("cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start")
    assert runtime.run("run", "-b", bundle.path, runtime.new_id()).stdout == b"80\n"
    assert _read("/proc/sys/net/ipv4/ip_unprivileged_port_start") == host_value


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def test_memory_limit_visible_and_enforced(runtime, bundle):
    bundle.config["linux"]["resources"]["memory"] = {"limit": 32 * 1024 * 1024}
    bundle.process("sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null "
                   "|| cat /sys/fs/cgroup/memory.max; x=0123456789; while :; do x=$x$x; done")
    out = runtime.run("run", "-b", bundle.path, runtime.new_id())
    assert out.stdout.split()[0] == b"33554432"
    assert out.returncode == 137  # OOM-killed: SIGKILL


def test_user_namespace_maps_root(runtime, userns_bundle):
    userns_bundle.process("sh", "-c", "id -u; cat /proc/self/uid_map; stat -c %u /bin/busybox")
    out = runtime.run("run", "-b", userns_bundle.path, runtime.new_id())
    assert out.stdout.split() == [b"0", b"0", b"100000", b"65536", b"65534"], out.stderr


def test_user_namespace_error_reaches_the_user(runtime, bundle):
    """The mapped root cannot reach a rootfs under a private directory: the init's own error
    comes back, not a broken pipe."""
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    bundle.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.process("true")
    cid = runtime.new_id()
    out = runtime.run("run", "-b", bundle.path, cid)
    assert out.returncode == 1
    assert b"Permission denied" in out.stderr and b"Broken pipe" not in out.stderr
    assert runtime.leftovers(cid) == []


def test_joins_a_namespace_by_path(runtime, bundle, tmp_path):
    """What pods do: a second container joins the network and UTS namespaces of a first."""
    first = runtime.new_id()
    bundle.config["hostname"] = "pod"
    bundle.process("sleep", "30")
    # Detached, the container keeps the stdio it was given: do not wait for its EOF.
    assert runtime.run("run", "-d", "-b", bundle.path, first, capture_output=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    pid = runtime.state(first)["pid"]
    second = tmp_path / "second"
    second.mkdir()
    bundle.path = str(second)
    bundle.config.pop("hostname")
    for ns in bundle.config["linux"]["namespaces"]:
        if ns["type"] in ("network", "uts"):
            ns["path"] = f"/proc/{pid}/ns/{'net' if ns['type'] == 'network' else 'uts'}"
    bundle.process("sh", "-c", "hostname; readlink /proc/self/ns/net")
    out = runtime.run("run", "-b", bundle.path, runtime.new_id())
    assert out.stdout.decode().split() == ["pod", os.readlink(f"/proc/{pid}/ns/net")]


def test_seccomp_profile_blocks_and_allows(runtime, bundle):
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["no_such_syscall_in_any_kernel"], "action": "SCMP_ACT_ERRNO"},
            # personality(2) allowed for 0 only: two conditions on one argument become two rules
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 131080, "op": "SCMP_CMP_EQ"}]},
        ],
    }
    bundle.process("sh", "-c", "mkdir /dev/shm/d 2>&1; grep Seccomp: /proc/self/status")
    out = runtime.run("run", "-b", bundle.path, runtime.new_id())
    assert b"Permission denied" in out.stdout, out.stderr
    assert b"Seccomp:\t2" in out.stdout


def test_seccomp_applies_to_exec_too(runtime, bundle):
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    bundle.process("sleep", "60")
    cid = runtime.new_id()
    runtime.run("run", "-d", "-b", bundle.path, cid, capture_output=False,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = runtime.run("exec", cid, "sh", "-c", "mkdir /dev/shm/x 2>&1; true")
    assert b"Operation not permitted" in out.stdout


def test_seccomp_without_no_new_privs_is_loaded_while_privileged(runtime, bundle):
    bundle.config["process"]["noNewPrivileges"] = False
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    bundle.process("sh", "-c", "mkdir /tmp/x 2>&1; grep NoNewPrivs /proc/self/status")
    out = runtime.run("run", "-b", bundle.path, runtime.new_id())
    assert b"Operation not permitted" in out.stdout and b"NoNewPrivs:\t0" in out.stdout, out.stderr


def test_tmpcopyup_fills_the_tmpfs_with_the_image_content(runtime, writable_bundle):
    rootfs = os.path.join(writable_bundle.path, "rootfs")
    os.makedirs(os.path.join(rootfs, "srv", "sub"))
    with open(os.path.join(rootfs, "srv", "sub", "file"), "w") as f:
        f.write("from the image\n")
    os.symlink("sub/file", os.path.join(rootfs, "srv", "link"))
    os.chmod(os.path.join(rootfs, "srv"), 0o750)
    writable_bundle.config["mounts"].append(
        {"destination": "/srv", "type": "tmpfs", "source": "tmpfs",
         "options": ["tmpcopyup", "nosuid", "size=1m"]})
    writable_bundle.process("sh", "-c", "cat /srv/link; stat -c %a /srv; "
                            "df /srv | tail -1 | cut -d' ' -f1; echo new > /srv/new")
    out = runtime.run("run", "-b", writable_bundle.path, runtime.new_id())
    assert out.stdout.split() == [b"from", b"the", b"image", b"750", b"tmpfs"], out.stderr
    assert not os.path.exists(os.path.join(rootfs, "srv", "new"))  # writes stay in the tmpfs


def test_no_pivot_moves_the_root(runtime, bundle, busybox_rootfs):
    """MS_MOVE + chroot instead of pivot_root: the container sees its rootfs at / and the same
    mount points as with pivot_root (none of the host's)."""
    bundle.process("sh", "-c", "ls /; cat /proc/self/mountinfo")
    seen = {}
    for flags in (["--no-pivot"], []):
        out = runtime.run("run", *flags, "-b", bundle.path, runtime.new_id())
        assert out.returncode == 0, out.stderr
        lines = out.stdout.decode().splitlines()
        assert "bin" in lines
        table = [line.split() for line in lines if " - " in line]
        root = next(row for row in table if row[4] == "/")
        assert root[3] == busybox_rootfs, root
        seen[" ".join(flags)] = sorted(row[4] for row in table)
    assert seen["--no-pivot"] == seen[""]


def test_rootfs_propagation_shared(runtime, bundle):
    bundle.config["linux"]["rootfsPropagation"] = "rshared"
    bundle.process("sh", "-c", "grep -c shared: /proc/self/mountinfo")
    out = runtime.run("run", "-b", bundle.path, runtime.new_id())
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) > 0


def test_umask_and_oom_score_adj(runtime, bundle):
    bundle.process("sh", "-c", "umask; cat /proc/self/oom_score_adj",
                   user={"uid": 0, "gid": 0, "umask": 0o027}, oomScoreAdj=500)
    assert runtime.run("run", "-b", bundle.path, runtime.new_id()).stdout.split() == [b"0027", b"500"]


def test_run_forwards_signals_to_the_container(runtime, bundle):
    bundle.process("sh", "-c", "trap 'echo got-hup; exit 7' HUP; echo up; while :; do sleep 0.1; done")
    proc = subprocess.Popen(runtime.argv("run", "-b", bundle.path, runtime.new_id()),
                            stdout=subprocess.PIPE)
    assert read_line(proc.stdout, "'up' from the container") == b"up\n"
    proc.send_signal(1)  # SIGHUP to pycontainer run, forwarded to the container's init
    assert read_line(proc.stdout, "the trap's 'got-hup'") == b"got-hup\n"
    assert proc.wait(timeout=10) == 7


def test_orphans_come_to_run_without_a_pid_namespace(runtime, bundle):
    """Without a PID namespace, the container's orphans come to `run` (a subreaper) to be
    reaped, not to the host's init."""
    bundle.config["linux"]["namespaces"] = [
        ns for ns in bundle.config["linux"]["namespaces"] if ns["type"] != "pid"]
    bundle.process("sh", "-c", "(sleep 0.7 &); sleep 0.3; "
                   "ps -o ppid,args | grep 'sleep 0.7' | grep -v grep; sleep 0.6")
    proc = subprocess.Popen(runtime.argv("run", "-b", bundle.path, runtime.new_id()),
                            stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert out.split()[0] == str(proc.pid).encode()


def test_cgroup_namespace_roots_the_view_at_the_container(runtime, bundle):
    bundle.config["linux"]["namespaces"].append({"type": "cgroup"})
    bundle.config["linux"]["resources"]["pids"] = {"limit": 42}
    bundle.process("sh", "-c", "cat /proc/self/cgroup; cat /sys/fs/cgroup/pids/pids.max "
                   "2>/dev/null || cat /sys/fs/cgroup/pids.max")
    out = runtime.run("run", "-b", bundle.path, runtime.new_id())
    lines = out.stdout.decode().splitlines()
    assert lines[-1] == "42", out.stderr
    assert all(line.endswith(":/") for line in lines[:-1]), lines
