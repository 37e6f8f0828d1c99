"""The container init's steps without root, against linux.fake.RecordingSyscalls: the whole mount
plan in order, the path without a mount namespace (which must leave the caller's "/" alone),
/dev, joining namespaces, and the runtime's cleanup of mounts made in its caller's namespace."""
from __future__ import annotations

import errno
import os

import pytest

from linux import constants as lx
from linux.fake import RecordingSyscalls
from rootfs_plan_lib import Bundle, host_dir, masking_tmpfs, open_fds
from rootfs_plan_lib import bundle, kernel  # noqa: F401 - fixtures
from runtime.init import container_init, devices, host_mounts, rootfs
from runtime import namespaces
from runtime.default_spec import default_spec
from runtime.errors import ConfigError, PycontainerError

CLONE = lx.OPEN_TREE_CLONE
DEFAULT_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
                   "/dev/tty")


def device_binds(bundle: Bundle) -> list[tuple]:
    """What a container in a user namespace gets for the default devices: the host's nodes,
    bound (mknod is refused there)."""
    return [call for path in DEFAULT_DEVICES
            for call in (("open_tree", "AT_FDCWD", path, CLONE),
                         ("move_mount", f"tree:{path}", bundle.fd(path)))]


def test_the_default_specs_plan_in_order(kernel, bundle, tmp_path, monkeypatch):
    """runc's default spec (in a user namespace): propagation, the rootfs bind, the mounts in
    order, /dev, pivot_root, then the read-only and masked paths."""
    spec = default_spec(unified_cgroups=False)
    bundle.raw["mounts"] = spec["mounts"]
    bundle.raw["linux"]["maskedPaths"] = ["/sys/firmware"]
    bundle.raw["linux"]["readonlyPaths"] = ["/proc/sys"]
    for path in ("/sys/firmware", "/proc/sys"):
        bundle.make(path)
    config = bundle.config()
    memory = host_dir(tmp_path, "memory")
    monkeypatch.chdir(bundle.dir)

    own_dev = container_init.mount_rootfs(kernel, config, {"memory": memory})
    container_init.enter_root(kernel, config, no_pivot=False)
    rootfs.finalize(kernel, config, bundle.rootfs)  # what "/" is after pivot_root

    nosuid, noexec, nodev = lx.MS_NOSUID, lx.MS_NOEXEC, lx.MS_NODEV
    cgroup_flags = nosuid | noexec | nodev | lx.MS_RELATIME
    assert own_dev
    assert kernel.actions == [
        ("mount", None, "/", None, lx.MS_SLAVE | lx.MS_REC, None),
        ("mount", bundle.rootfs, bundle.rootfs, None, lx.MS_BIND | lx.MS_REC, None),
        ("mount", "proc", bundle.fd("/proc"), "proc", 0, ""),
        ("mount", "tmpfs", bundle.fd("/dev"), "tmpfs", nosuid | lx.MS_STRICTATIME,
         "mode=755,size=65536k"),
        ("mount", "devpts", bundle.fd("/dev/pts"), "devpts", nosuid | noexec,
         "newinstance,ptmxmode=0666,mode=0620,gid=5"),
        ("mount", "shm", bundle.fd("/dev/shm"), "tmpfs", nosuid | noexec | nodev,
         "mode=1777,size=65536k"),
        ("mount", "mqueue", bundle.fd("/dev/mqueue"), "mqueue", nosuid | noexec | nodev, ""),
        ("mount", "sysfs", bundle.fd("/sys"), "sysfs", nosuid | noexec | nodev | lx.MS_RDONLY,
         ""),
        ("mount", "tmpfs", bundle.fd("/sys/fs/cgroup"), "tmpfs", cgroup_flags, "mode=755"),
        ("open_tree", "AT_FDCWD", memory, CLONE),
        ("move_mount", f"tree:{memory}", bundle.fd("/sys/fs/cgroup/memory")),
        ("mount", None, f"tree:{memory}", None, lx.MS_REMOUNT | lx.MS_BIND | cgroup_flags |
         lx.MS_RDONLY | (os.statvfs(memory).f_flag & (nosuid | nodev | noexec)), None),
        ("mount", None, bundle.fd("/sys/fs/cgroup"), None,
         lx.MS_REMOUNT | cgroup_flags | lx.MS_RDONLY, "mode=755"),
        *device_binds(bundle),
        ("pivot_root", ".", "."),
        ("mount", None, ".", None, lx.MS_SLAVE | lx.MS_REC, None),
        ("umount2", ".", lx.MNT_DETACH),
        # linux.readonlyPaths, then linux.maskedPaths
        ("open_tree", bundle.fd("/proc/sys"), "", CLONE | lx.AT_RECURSIVE | lx.AT_EMPTY_PATH),
        ("mount_setattr", f"tree:{bundle.path('/proc/sys')}", lx.MOUNT_ATTR_RDONLY, 0, False),
        ("move_mount", f"tree:{bundle.path('/proc/sys')}", bundle.fd("/proc/sys")),
        *masking_tmpfs(bundle.fd("/sys/firmware")),
    ]


def test_no_pivot_moves_the_rootfs_instead_of_pivot_root(kernel, bundle, monkeypatch):
    monkeypatch.chdir(bundle.dir)
    container_init.enter_root(kernel, bundle.config(), no_pivot=True)
    assert kernel.actions[-2:] == [("mount", bundle.rootfs, "/", None, lx.MS_MOVE, None),
                                   ("chroot", ".")]
    assert "pivot_root" not in kernel.names()


def test_without_a_mount_namespace_nothing_touches_the_callers_root(kernel, bundle,
                                                                    monkeypatch):
    """The caller's mount namespace is shared: no propagation change, no bind of the rootfs,
    no pivot_root, only the config's own mounts and a chroot."""
    bundle.without_namespace("mount")
    bundle.raw["mounts"] = [{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}]
    config = bundle.config()
    monkeypatch.chdir(bundle.dir)

    container_init.mount_rootfs(kernel, config, {})
    container_init.enter_root(kernel, config, no_pivot=False)
    rootfs.finalize(kernel, config, bundle.rootfs)

    assert kernel.actions == [
        ("mount", "tmpfs", bundle.fd("/tmp"), "tmpfs", 0, ""),
        *device_binds(bundle),
        ("chroot", "."),
    ]
    assert os.getcwd() == "/"


def test_without_a_mount_namespace_masks_are_refused_before_any_mount(kernel, bundle):
    """config.parse refuses them already; the init checks again, as runc does."""
    bundle.raw["linux"]["maskedPaths"] = ["/proc/kcore"]
    config = bundle.config()
    del config.namespaces["mount"]
    with pytest.raises(ConfigError, match=r"^linux\.maskedPaths: needs a mount namespace"):
        container_init.mount_rootfs(kernel, config, {})
    assert kernel.calls == []


def test_a_bind_of_the_hosts_dev_gets_no_device_nodes(kernel, bundle, tmp_path):
    dev = host_dir(tmp_path, "dev")
    bundle.raw["mounts"] = [{"destination": "/dev", "source": dev, "options": ["rbind"]}]
    assert container_init.mount_rootfs(kernel, bundle.config(), {}) is False
    assert kernel.names() == ["mount", "mount", "open_tree", "move_mount"]


def test_devices_in_a_user_namespace_are_bound_from_the_host_with_the_usual_links(kernel,
                                                                                  bundle):
    bundle.raw["mounts"] = [{"destination": "/dev/pts", "type": "devpts", "source": "devpts"}]
    devices.populate(kernel, bundle.config(), in_user_namespace=True)
    assert kernel.actions == device_binds(bundle)
    for path in DEFAULT_DEVICES:
        assert os.path.isfile(bundle.path(path))  # the files the nodes are bound onto
    assert os.readlink(bundle.path("/dev/fd")) == "/proc/self/fd"
    assert os.readlink(bundle.path("/dev/stderr")) == "/proc/self/fd/2"
    # devpts' own ptmx, not the host's
    assert os.readlink(bundle.path("/dev/ptmx")) == "pts/ptmx"


def test_device_nodes_go_inside_the_rootfs_whatever_its_symlinks_say(kernel, bundle, tmp_path):
    bundle.make("/dev", "link", "../../../../../../../../tmp")
    devices.populate(kernel, bundle.config(), in_user_namespace=True)
    assert [call[2] for call in kernel.actions if call[0] == "move_mount"] == [
        bundle.fd(path.replace("/dev/", "/tmp/")) for path in DEFAULT_DEVICES]


def test_a_missing_working_directory_is_made_and_a_file_there_is_refused(kernel, bundle):
    bundle.raw["process"]["cwd"] = "/home/app"
    container_init.mount_rootfs(kernel, bundle.config(), {})
    assert os.path.isdir(bundle.path("/home/app"))

    bundle.make("/srv", "file")
    bundle.raw["process"]["cwd"] = "/srv"
    with pytest.raises(ConfigError, match=r"^process\.cwd: /srv: Not a directory"):
        container_init.mount_rootfs(RecordingSyscalls(), bundle.config(), {})


# --- namespaces ---------------------------------------------------------------------------------

def test_namespaces_are_joined_user_first_mount_last(kernel):
    paths = {kind: f"/proc/self/ns/{namespaces.PROC_FILES[kind]}"
             for kind in ("mount", "network", "uts", "user", "ipc")}
    container_init.join_namespaces(kernel, paths)
    assert [(name, fd.split(":")[1], nstype) for name, fd, nstype in kernel.actions] == [
        ("setns", "user", lx.CLONE_NEWUSER),
        ("setns", "ipc", lx.CLONE_NEWIPC),
        ("setns", "uts", lx.CLONE_NEWUTS),
        ("setns", "net", lx.CLONE_NEWNET),
        ("setns", "mnt", lx.CLONE_NEWNS),
    ]


def test_a_missing_namespace_path_is_refused_before_any_setns(kernel):
    before = open_fds()
    with pytest.raises(PycontainerError, match="^linux.namespaces: network /nonexistent/net: "
                                               "No such file or directory$"):
        container_init.join_namespaces(kernel, {"user": "/proc/self/ns/user",
                                      "network": "/nonexistent/net"})
    assert kernel.actions == []
    assert open_fds() == before


def test_a_refused_setns_names_the_namespace(kernel):
    kernel.fail("setns", errno.EPERM, when=lambda call: call[2] == lx.CLONE_NEWUTS)
    before = open_fds()
    with pytest.raises(PycontainerError, match="^linux.namespaces: join uts /proc/self/ns/uts: "):
        container_init.join_namespaces(kernel, {"user": "/proc/self/ns/user", "uts": "/proc/self/ns/uts"})
    assert [call[2] for call in kernel.actions] == [lx.CLONE_NEWUSER, lx.CLONE_NEWUTS]
    assert open_fds() == before


def test_the_pid_namespace_is_entered_for_the_child_and_left_after(kernel):
    before = open_fds()
    own = namespaces.enter_pid_namespace_for_children(kernel, "/proc/self/ns/pid")
    namespaces.leave_pid_namespace_for_children(kernel, own)
    assert [(name, nstype) for name, _, nstype in kernel.actions] == [
        ("setns", lx.CLONE_NEWPID), ("setns", lx.CLONE_NEWPID)]
    assert open_fds() == before

    none = RecordingSyscalls()
    namespaces.leave_pid_namespace_for_children(
        none, namespaces.enter_pid_namespace_for_children(none, ""))
    assert none.calls == []


# --- mounts made in the caller's namespace --------------------------------------------------------

def test_mounts_left_in_the_callers_namespace_are_detached_last_made_first(kernel):
    kernel.fail("umount2", errno.EINVAL, when=lambda call: call[1] == "/c/gone")
    host_mounts.remove(kernel, ["/c/a", "/c/gone", "/c/a/b"])
    assert kernel.actions == [("umount2", "/c/a/b", lx.MNT_DETACH),
                              ("umount2", "/c/gone", lx.MNT_DETACH),
                              ("umount2", "/c/a", lx.MNT_DETACH)]
