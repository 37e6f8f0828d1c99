"""runtime.init.rootfs without root: what it would ask of the kernel (recorded by
linux.fake.RecordingSyscalls) for a rootfs that is a plain directory tree: propagation, each kind
of mount, the refusals, pivot_root and its --no-pivot stand-in, read-only and masked paths."""
from __future__ import annotations

import errno
import os
import subprocess

import pytest

from linux import constants as lx
from linux.fake import RecordingSyscalls
from rootfs_plan_lib import Bundle, host_dir, kept_flags, masking_tmpfs, open_fds
from rootfs_plan_lib import bundle, kernel  # noqa: F401 - fixtures
from runtime.init import rootfs
from runtime.errors import ConfigError

CLONE = lx.OPEN_TREE_CLONE
SLAVE_REC = lx.MS_SLAVE | lx.MS_REC


def mount_all(kernel: RecordingSyscalls, bundle: Bundle, *mounts: dict,
              cgroup_dirs: dict[str, str] | None = None) -> None:
    bundle.raw["mounts"] = list(mounts)
    rootfs.mount_all(kernel, bundle.config(), cgroup_dirs or {})


# --- prepare: the root's propagation, then the rootfs made a mount point ---------------------

def holding_mount(path: str) -> tuple[str, bool]:
    """findmnt's view of the mount `path` is on: its mount point and whether it is shared."""
    out = subprocess.run(["findmnt", "-n", "-o", "TARGET,PROPAGATION", "--target", path],
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0], "shared" in out[1].split(",")


@pytest.mark.parametrize(("propagation", "flags"), [
    ("", SLAVE_REC),  # runc's default
    ("slave", lx.MS_SLAVE),
    ("private", lx.MS_PRIVATE),
    ("rprivate", lx.MS_PRIVATE | lx.MS_REC),
    ("unbindable", lx.MS_UNBINDABLE),
    ("runbindable", lx.MS_UNBINDABLE | lx.MS_REC),
    ("shared", lx.MS_SHARED),
    ("rshared", lx.MS_SHARED | lx.MS_REC),
])
def test_prepare_sets_the_roots_propagation_then_binds_the_rootfs_onto_itself(
        kernel, bundle, propagation, flags):
    """As runc: the mount holding the rootfs goes private when it is shared (pivot_root refuses
    a new root whose parent mount is shared), whatever the root's propagation."""
    rootfs.prepare(kernel, bundle.config(rootfsPropagation=propagation))
    point, shared = holding_mount(bundle.rootfs)
    assert kernel.actions == [
        ("mount", None, "/", None, flags, None),
        *([("mount", None, point, None, lx.MS_PRIVATE, None)] if shared else []),
        ("mount", bundle.rootfs, bundle.rootfs, None, lx.MS_BIND | lx.MS_REC, None),
    ]


# --- the config's mounts ----------------------------------------------------------------------

def test_no_mounts_no_calls(kernel, bundle):
    mount_all(kernel, bundle)
    assert kernel.calls == []


def test_bind_mount_clones_the_source_and_attaches_it_onto_the_resolved_destination(
        kernel, bundle, tmp_path):
    src = host_dir(tmp_path, "src")
    mount_all(kernel, bundle, {"destination": "/data", "type": "bind", "source": src,
                               "options": ["rbind", "ro", "nosuid"]})
    assert kernel.actions == [
        ("open_tree", "AT_FDCWD", src, CLONE | lx.AT_RECURSIVE),
        ("move_mount", f"tree:{src}", bundle.fd("/data")),
        # the flags beyond the bind need a remount of the new mount
        ("mount", None, f"tree:{src}", None, lx.MS_REMOUNT | lx.MS_BIND | lx.MS_REC |
         lx.MS_RDONLY | lx.MS_NOSUID | kept_flags(src), None),
    ]
    assert os.path.isdir(bundle.path("/data"))


def test_bind_of_a_file_creates_a_file_to_mount_onto(kernel, bundle, tmp_path):
    src = os.path.join(str(tmp_path), "resolv.conf")
    with open(src, "w") as f:
        f.write("nameserver 198.18.0.1\n")
    mount_all(kernel, bundle, {"destination": "/etc/resolv.conf", "source": src,
                               "options": ["bind"]})
    assert kernel.actions == [
        ("open_tree", "AT_FDCWD", src, CLONE),
        ("move_mount", f"tree:{src}", bundle.fd("/etc/resolv.conf")),
    ]
    assert os.path.isfile(bundle.path("/etc/resolv.conf"))


def test_propagation_options_are_set_on_the_new_mount(kernel, bundle, tmp_path):
    src = host_dir(tmp_path, "src")
    mount_all(kernel, bundle, {"destination": "/data", "source": src,
                               "options": ["rbind", "rslave", "private"]})
    assert kernel.actions[2:] == [
        ("mount", None, f"tree:{src}", None, SLAVE_REC, None),
        ("mount", None, f"tree:{src}", None, lx.MS_PRIVATE, None),
    ]


def test_a_new_filesystem_is_mounted_through_a_descriptor_of_its_destination(kernel, bundle):
    mount_all(kernel, bundle, {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                               "options": ["nosuid", "nodev", "mode=1777", "size=1m"]})
    assert kernel.actions == [
        ("mount", "tmpfs", bundle.fd("/tmp"), "tmpfs", lx.MS_NOSUID | lx.MS_NODEV,
         "mode=1777,size=1m"),
    ]


def test_mounts_are_made_in_the_configs_order(kernel, bundle):
    mount_all(kernel, bundle,
              {"destination": "/run", "type": "tmpfs", "source": "tmpfs"},
              {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
              {"destination": "/dev/shm", "type": "tmpfs", "source": "shm"})
    assert [call[2] for call in kernel.actions] == [
        bundle.fd("/run"), bundle.fd("/dev"), bundle.fd("/dev/shm")]


def test_a_destination_through_an_escaping_symlink_lands_inside_the_rootfs(
        kernel, bundle, tmp_path):
    bundle.make("/data", "link", "../../../../../../outside")
    mount_all(kernel, bundle, {"destination": "/data", "type": "tmpfs", "source": "tmpfs"})
    assert kernel.actions == [("mount", "tmpfs", bundle.fd("/outside"), "tmpfs", 0, "")]
    assert os.path.isdir(bundle.path("/outside"))
    assert not os.path.exists(os.path.join(os.path.dirname(str(tmp_path)), "outside"))


@pytest.mark.parametrize(("fstype", "link"), [("proc", "/somewhere"), ("sysfs", "/")])
def test_proc_and_sysfs_refuse_a_symlinked_destination(kernel, bundle, fstype, link):
    destination = "/proc" if fstype == "proc" else "/sys"
    bundle.make(destination, "link", link)
    with pytest.raises(ConfigError) as refused:
        mount_all(kernel, bundle, {"destination": destination, "type": fstype,
                                   "source": fstype})
    assert refused.value.field == "mounts[0].destination"
    assert "not a directory (a symlink)" in str(refused.value)
    assert kernel.actions == []


def test_only_a_procfs_may_go_on_proc(kernel, bundle, tmp_path):
    src = host_dir(tmp_path, "fake-proc")
    bundle.make("/proc")
    with pytest.raises(ConfigError, match=r"^mounts\[0\]\.destination: /proc: only a procfs"):
        mount_all(kernel, bundle, {"destination": "/proc", "source": src, "options": ["rbind"]})
    assert kernel.names() == ["open_tree"]  # cloned, never attached


def test_below_proc_only_the_files_lxcfs_emulates_may_be_covered(kernel, bundle, tmp_path):
    src = os.path.join(str(tmp_path), "meminfo")
    with open(src, "w"):
        pass
    bundle.make("/proc/meminfo", "file")
    mount_all(kernel, bundle, {"destination": "/proc/meminfo", "source": src,
                               "options": ["bind"]})
    assert kernel.names() == ["open_tree", "move_mount"]

    refused = RecordingSyscalls()
    with pytest.raises(ConfigError, match="/proc/sys/kernel: inside /proc; refusing"):
        mount_all(refused, bundle, {"destination": "/proc/sys/kernel", "type": "tmpfs",
                                    "source": "tmpfs"})
    assert refused.actions == []


def test_a_destination_leading_to_the_root_is_refused(kernel, bundle):
    bundle.make("/data", "link", "/")
    with pytest.raises(ConfigError, match="is the container's root"):
        mount_all(kernel, bundle, {"destination": "/data", "type": "tmpfs", "source": "tmpfs"})
    assert kernel.actions == []


@pytest.mark.parametrize("source_kind", ["dir", "file"])
def test_a_bind_must_match_its_destinations_kind(kernel, bundle, tmp_path, source_kind):
    src = host_dir(tmp_path, "src")
    if source_kind == "file":
        src = os.path.join(src, "f")
        with open(src, "w"):
            pass
        bundle.make("/data", "dir")
        expected = "a directory, and the source is not"
    else:
        bundle.make("/data", "file")
        expected = "not a directory, and the source is one"
    with pytest.raises(ConfigError, match=expected):
        mount_all(kernel, bundle, {"destination": "/data", "source": src, "options": ["bind"]})
    assert kernel.names() == ["open_tree"]


def test_cgroup_v1_is_a_tmpfs_holding_a_bind_of_each_hierarchy(kernel, bundle, tmp_path):
    memory, cpu = host_dir(tmp_path, "memory"), host_dir(tmp_path, "cpu")
    flags = lx.MS_NOSUID | lx.MS_NOEXEC | lx.MS_NODEV
    mount_all(kernel, bundle, {"destination": "/sys/fs/cgroup", "type": "cgroup",
                               "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "ro"]},
              cgroup_dirs={"memory": memory, "cpu,cpuacct": cpu})
    cgroup = bundle.fd("/sys/fs/cgroup")
    assert kernel.actions == [
        ("mount", "tmpfs", cgroup, "tmpfs", flags, "mode=755"),
        ("open_tree", "AT_FDCWD", memory, CLONE),
        ("move_mount", f"tree:{memory}", bundle.fd("/sys/fs/cgroup/memory")),
        ("mount", None, f"tree:{memory}", None,
         lx.MS_REMOUNT | lx.MS_BIND | flags | lx.MS_RDONLY | kept_flags(memory), None),
        ("open_tree", "AT_FDCWD", cpu, CLONE),
        ("move_mount", f"tree:{cpu}", bundle.fd("/sys/fs/cgroup/cpu,cpuacct")),
        ("mount", None, f"tree:{cpu}", None,
         lx.MS_REMOUNT | lx.MS_BIND | flags | lx.MS_RDONLY | kept_flags(cpu), None),
        # read-only once it is filled
        ("mount", None, cgroup, None, lx.MS_REMOUNT | flags | lx.MS_RDONLY, "mode=755"),
    ]
    assert os.readlink(bundle.path("/sys/fs/cgroup/cpu")) == "cpu,cpuacct"
    assert os.readlink(bundle.path("/sys/fs/cgroup/cpuacct")) == "cpu,cpuacct"


def test_cgroup2_with_a_cgroup_namespace_is_a_new_cgroup2_mount(kernel, bundle, tmp_path):
    bundle.raw["linux"]["namespaces"].append({"type": "cgroup"})
    mount_all(kernel, bundle, {"destination": "/sys/fs/cgroup", "type": "cgroup",
                               "source": "cgroup", "options": ["nosuid", "ro"]},
              cgroup_dirs={"": host_dir(tmp_path, "unified")})
    assert kernel.actions == [("mount", "cgroup2", bundle.fd("/sys/fs/cgroup"), "cgroup2",
                               lx.MS_NOSUID | lx.MS_RDONLY, None)]


def test_cgroup2_without_a_cgroup_namespace_binds_the_containers_cgroup(
        kernel, bundle, tmp_path):
    unified = host_dir(tmp_path, "unified")
    mount_all(kernel, bundle, {"destination": "/sys/fs/cgroup", "type": "cgroup",
                               "source": "cgroup", "options": ["ro"]},
              cgroup_dirs={"": unified})
    assert kernel.actions == [
        ("open_tree", "AT_FDCWD", unified, CLONE),
        ("move_mount", f"tree:{unified}", bundle.fd("/sys/fs/cgroup")),
        ("mount", None, f"tree:{unified}", None,
         lx.MS_REMOUNT | lx.MS_BIND | lx.MS_RDONLY | kept_flags(unified), None),
    ]


@pytest.mark.parametrize(("failing", "mount"), [
    ("move_mount", {"destination": "/data", "options": ["rbind"]}),
    ("mount", {"destination": "/data", "type": "tmpfs", "source": "tmpfs"}),
])
def test_a_refused_mount_names_its_field_and_leaves_no_descriptor_open(
        kernel, bundle, tmp_path, failing, mount):
    if "options" in mount:
        mount["source"] = host_dir(tmp_path, "src")
    kernel.fail(failing, errno.EPERM)
    before = open_fds()
    with pytest.raises(ConfigError) as refused:
        mount_all(kernel, bundle, mount)
    assert refused.value.field == "mounts[0]"
    assert "/data: " in str(refused.value) and "Operation not permitted" in str(refused.value)
    assert open_fds() == before


# --- after pivot_root: sysctls, read-only and masked paths, a read-only root -------------------

def finalize(kernel: RecordingSyscalls, bundle: Bundle, root: str | None = None,
             **linux: object) -> None:
    rootfs.finalize(kernel, bundle.config(**linux), root or bundle.rootfs)


def test_a_read_only_path_gets_a_read_only_recursive_bind_of_itself(kernel, bundle):
    usr = bundle.make("/usr")
    finalize(kernel, bundle, readonlyPaths=["/usr"])
    assert kernel.actions == [
        ("open_tree", bundle.fd("/usr"), "", CLONE | lx.AT_RECURSIVE | lx.AT_EMPTY_PATH),
        # set on the detached copy, before it is attached
        ("mount_setattr", f"tree:{usr}", lx.MOUNT_ATTR_RDONLY, 0, False),
        ("move_mount", f"tree:{usr}", bundle.fd("/usr")),
    ]


def test_masked_directories_share_one_empty_read_only_tmpfs(kernel, bundle):
    bundle.make("/sys/firmware")
    bundle.make("/proc/acpi")
    finalize(kernel, bundle, maskedPaths=["/sys/firmware", "/proc/acpi"])
    assert kernel.actions == [
        *masking_tmpfs(bundle.fd("/sys/firmware")),
        ("open_tree", "fsmount:tmpfs", "", CLONE | lx.AT_EMPTY_PATH),
        ("move_mount", "tree:fsmount:tmpfs", bundle.fd("/proc/acpi")),
    ]


def test_each_path_is_covered_once_and_missing_ones_not_at_all(kernel, bundle):
    bundle.make("/sys/firmware")
    finalize(kernel, bundle, maskedPaths=["/sys/firmware", "//sys/firmware/", "/proc/nothing"],
             readonlyPaths=["/usr/nothing"])
    assert kernel.names().count("move_mount") == 1


def test_a_masked_file_is_refused_when_dev_null_is_not_the_null_device(kernel, bundle):
    bundle.make("/etc/secret", "file")
    bundle.make("/dev/null", "file")
    with pytest.raises(ConfigError, match=r"^linux\.maskedPaths\[0\]: /etc/secret: .*"
                                          r"not the null device"):
        finalize(kernel, bundle, maskedPaths=["/etc/secret"])
    assert kernel.actions == []


def test_paths_below_proc_are_covered_through_the_procfs(kernel, bundle):
    """With "/" as the root (as after pivot_root), /proc is a real procfs: the covers below it
    are resolved from it, and a masked file gets the real null device bound over it."""
    finalize(kernel, bundle, "/", maskedPaths=["/proc/version"], readonlyPaths=["/proc/sys"])
    assert kernel.actions == [
        ("open_tree", "fd:/proc/sys", "", CLONE | lx.AT_RECURSIVE | lx.AT_EMPTY_PATH),
        ("mount_setattr", "tree:/proc/sys", lx.MOUNT_ATTR_RDONLY, 0, False),
        ("move_mount", "tree:/proc/sys", "fd:/proc/sys"),
        ("open_tree", "fd:/dev/null", "", CLONE | lx.AT_EMPTY_PATH),
        ("move_mount", "tree:/dev/null", "fd:/proc/version"),
    ]


def test_sysctls_need_a_procfs_at_proc(kernel, bundle):
    bundle.make("/proc")
    with pytest.raises(ConfigError, match=r"^linux\.sysctl: needs a procfs"):
        finalize(kernel, bundle, sysctl={"net.ipv4.ip_forward": "1"})
    assert kernel.actions == []


def test_a_read_only_root_is_remounted_read_only_last(kernel, bundle):
    bundle.raw["root"]["readonly"] = True
    bundle.make("/usr")
    finalize(kernel, bundle, readonlyPaths=["/usr"])
    assert kernel.actions[-1] == (
        "mount", None, bundle.rootfs, None,
        lx.MS_REMOUNT | lx.MS_BIND | lx.MS_RDONLY | lx.MS_REC | kept_flags(bundle.rootfs), None)
    assert kernel.names() == ["open_tree", "mount_setattr", "move_mount", "mount"]


# --- entering the root ------------------------------------------------------------------------

def test_pivot_stacks_the_old_root_under_the_new_and_detaches_it_as_a_slave(
        kernel, bundle, monkeypatch):
    monkeypatch.chdir(bundle.dir)
    rootfs.pivot(kernel, bundle.rootfs)
    assert kernel.actions == [
        ("pivot_root", ".", "."),
        # a slave first, so that the unmount does not reach the host
        ("mount", None, ".", None, SLAVE_REC, None),
        ("umount2", ".", lx.MNT_DETACH),
    ]
    assert os.getcwd() == "/"


def test_a_refused_pivot_root_leaves_no_descriptor_open(kernel, bundle, monkeypatch):
    monkeypatch.chdir(bundle.dir)
    kernel.fail("pivot_root", errno.EINVAL)
    before = open_fds()
    with pytest.raises(OSError) as refused:
        rootfs.pivot(kernel, bundle.rootfs)
    assert refused.value.errno == errno.EINVAL
    assert open_fds() == before
    assert kernel.names() == ["pivot_root"]


def _proc_and_sys_mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        fields = [line.split() for line in f]
    return [f[4] for f in fields if f[3] == "/" and f[f.index("-") + 1] in ("proc", "sysfs")]


def test_move_root_detaches_the_hosts_procfs_and_sysfs_then_moves_the_rootfs_onto_slash(
        kernel, bundle, monkeypatch):
    monkeypatch.chdir(bundle.dir)
    rootfs.move_root(kernel, bundle.rootfs)
    detach = [call for point in _proc_and_sys_mounts()
              for call in (("mount", None, point, None, SLAVE_REC, None),
                           ("umount2", point, lx.MNT_DETACH))]
    assert detach  # the test's own /proc at least
    assert kernel.actions == [
        *detach,
        ("mount", bundle.rootfs, "/", None, lx.MS_MOVE, None),
        ("chroot", "."),
    ]
    assert kernel.names().count("pivot_root") == 0


def test_move_root_covers_what_it_cannot_unmount_with_an_empty_tmpfs(
        kernel, bundle, monkeypatch):
    monkeypatch.chdir(bundle.dir)
    kernel.fail("umount2", errno.EINVAL)
    rootfs.move_root(kernel, bundle.rootfs)
    points = _proc_and_sys_mounts()
    assert [call for call in kernel.actions if call[0] == "mount" and call[1] == "tmpfs"] == [
        ("mount", "tmpfs", point, "tmpfs", 0, None) for point in points]
