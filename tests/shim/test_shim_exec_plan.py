"""exec through the shim from the container's exec plan (runtime/exec_plan.py, made in C by
linux/exec_child.c): the process has what the container's init has (user, groups, umask,
capabilities, no_new_privs, rlimits, seccomp, HOME) and nothing of the shim's; refusals are the
runtime's one line."""
from __future__ import annotations

import json
import os
import shutil
import tempfile

import pytest

import shim
from runtime import exec_plan

pytestmark = pytest.mark.root

CAPS = ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]
# What the exec's shell prints of itself, then (after ---) the same of the container's init.
REPORT = ("for f in self 1; do grep -E '^(Uid|Gid|Groups|Umask|Cap|NoNewPrivs|Seccomp)' "
          "/proc/$f/status; grep 'open files' /proc/$f/limits; echo ---; done")


@pytest.fixture
def public_dir():
    """A directory host UID 100000 can reach (pytest's temp dirs are private to root); asked
    for before `shims`, so it goes after the containers."""
    top = tempfile.mkdtemp(prefix="pcsu", dir="/tmp")
    os.chmod(top, 0o755)
    yield top
    shutil.rmtree(top, ignore_errors=True)


def _start(shims, userns_rootfs: str | None = None, **process) -> shim.ShimInfo:
    bundle = shims.bundle("sleep", "1000")
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        config = json.load(f)
    config["process"].update(process)
    if userns_rootfs:
        # Root is host UID 100000: a rootfs of its own, where it can reach it.
        shutil.copytree(shims.rootfs, userns_rootfs, symlinks=True)
        config["root"] = {"path": userns_rootfs, "readonly": True}
        config["linux"]["namespaces"].append({"type": "user"})
        for key in ("uidMappings", "gidMappings"):
            config["linux"][key] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        config["mounts"] = [m for m in config["mounts"]
                            if m["destination"] not in ("/sys", "/sys/fs/cgroup")]
    config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    with open(path, "w") as f:
        json.dump(config, f)
    info = shim.start(shims.config(bundle))
    shims.pids.append(info.pid)
    return info


@pytest.mark.parametrize("no_new_privs", [True, False])
def test_the_process_has_the_inits_user_privileges_limits_and_seccomp(shims, no_new_privs):
    info = _start(shims, user={"uid": 1000, "gid": 1000, "additionalGids": [5, 65534],
                               "umask": 0o027},
                  capabilities={"bounding": CAPS, "effective": CAPS, "permitted": CAPS,
                                "inheritable": CAPS, "ambient": ["CAP_NET_BIND_SERVICE"]},
                  rlimits=[{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}],
                  noNewPrivileges=no_new_privs)
    with shims.connect(info.id) as c:
        result = c.exec(["sh", "-c", REPORT])
        home = c.exec(["sh", "-c", "echo HOME=$HOME"])
        blocked = c.exec(["sh", "-c", "mkdir /dev/shm/x"])
        fds = c.exec(["ls", "/proc/self/fd"])
    assert result.exit_code == 0, result
    own, init, _ = result.stdout.split("---\n")
    assert own == init
    assert "Seccomp:\t2" in own and "Uid:\t1000\t1000\t1000" in own
    assert "Groups:\t5 65534" in own and "Umask:\t0027" in own
    assert f"NoNewPrivs:\t{int(no_new_privs)}" in own and home.stdout == "HOME=/home/user\n"
    assert "123" in own and "456" in own
    assert "Operation not permitted" in blocked.stderr and blocked.exit_code != 0
    assert fds.stdout.split() == ["0", "1", "2", "3"]  # 3: ls's own directory


def test_the_process_joins_the_containers_user_namespace_first(public_dir, shims):
    info = _start(shims, os.path.join(public_dir, "rootfs"), user={"uid": 1000, "gid": 1000})
    with shims.connect(info.id) as c:
        result = c.exec(["sh", "-c", "for k in user mnt; do readlink /proc/self/ns/$k; done; "
                         "cat /proc/self/uid_map; grep -E '^(Uid|Seccomp):' /proc/self/status"])
    assert result.exit_code == 0, result
    user_ns, mnt_ns, uid_map, uid, mode = result.stdout.splitlines()
    assert [user_ns, mnt_ns] == [os.readlink(f"/proc/{info.container_pid}/ns/{k}")
                                 for k in ("user", "mnt")]
    assert uid_map.split() == ["0", "100000", "65536"]
    assert uid.split()[1:] == ["1000"] * 4 and mode == "Seccomp:\t2"


def test_the_plan_is_written_once_at_create(shims):
    info = _start(shims)
    plan = exec_plan.load(shims.roots.runtime_root, info.id)
    assert plan.seccomp is not None and len(plan.seccomp.bpf) % 8 == 0
    assert "pid" in plan.namespaces and plan.cwd == "/"


def test_a_container_without_a_plan_gets_one_at_its_first_exec(shims):
    """A container created by a pycontainer that wrote no plan."""
    info = _start(shims)
    path = os.path.join(shims.roots.runtime_root, info.id, exec_plan.FILE)
    os.unlink(path)
    with shims.connect(info.id) as c:
        result = c.exec(["grep", "^Seccomp:", "/proc/self/status"])
    assert result.stdout == "Seccomp:\t2\n"
    assert os.path.exists(path)


def test_refusals_are_one_line_and_the_shim_serves_on(shims):
    info = _start(shims)
    with shims.connect(info.id) as c:
        with pytest.raises(shim.ShimError, match=r"process.cwd: /nowhere: No such file"):
            c.exec(["true"], cwd="/nowhere")
        with pytest.raises(shim.ShimError, match=r"executable /bin/nothing not found"):
            c.exec(["/bin/nothing"])
        assert c.exec(["true"]).exit_code == 0


def test_no_descriptor_of_the_shim_leads_out_as_cwd(shims):
    """CVE-2024-21626 through the shim: every descriptor but the process's own is closed
    before the cwd is looked up, and those left (pipes, /dev/null, the sealed stub) are no
    directory: a cwd through them is refused, never the host's."""
    info = _start(shims)
    with shims.connect(info.id) as c:
        for n in range(8):
            with pytest.raises(shim.ShimError, match=r"process.cwd: /proc/self/fd/\d/\.\.: "
                                                     r"(Not a directory|No such file)"):
                c.exec(["pwd"], cwd=f"/proc/self/fd/{n}/..")


def test_a_damaged_plan_is_one_line_and_the_shim_serves_on(shims):
    info = _start(shims)
    path = os.path.join(shims.roots.runtime_root, info.id, exec_plan.FILE)
    with open(path, "w") as f:
        f.write('{"namespaces": {}}')
    with shims.connect(info.id) as c:
        with pytest.raises(shim.ShimError, match=r"exec plan .* is damaged"):
            c.exec(["true"])
        os.unlink(path)  # made again from the state at the next exec
        assert c.exec(["true"]).exit_code == 0
