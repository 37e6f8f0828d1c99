"""linux.syscalls.Syscalls against the real kernel, and linux.fake.RecordingSyscalls beside it;
all without root."""
from __future__ import annotations

import errno
import os

import pytest

from linux import constants as lx
from linux.fake import QUERIES, RecordingSyscalls
from linux.syscalls import Syscalls

PROC_SUPER_MAGIC = 0x9FA0


# --- the real one -------------------------------------------------------------------------------

def test_a_refused_call_raises_oserror_with_its_errno_and_arguments(tmp_path):
    kernel = Syscalls()
    with pytest.raises(OSError) as refused:
        kernel.umount2(str(tmp_path / "nothing"))
    assert refused.value.errno in (errno.ENOENT, errno.EPERM)  # EPERM first without root
    assert f"umount {tmp_path / 'nothing'}: " in str(refused.value)
    with pytest.raises(FileNotFoundError) as missing:
        kernel.openat2(lx.AT_FDCWD, str(tmp_path / "nothing"), os.O_PATH, 0)
    assert missing.value.filename == str(tmp_path / "nothing")


def test_mount_errors_name_source_target_type_and_flags(tmp_path):
    with pytest.raises(OSError) as refused:
        Syscalls().mount("none", str(tmp_path / "nothing"), "tmpfs", lx.MS_NOSUID, "size=1m")
    assert refused.value.errno in (errno.ENOENT, errno.EPERM)
    assert (f"mount none on {tmp_path / 'nothing'} (type tmpfs, flags 0x2, size=1m)"
            in str(refused.value))


def test_openat2_in_root_keeps_an_escaping_symlink_inside(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("inside\n")
    (root / "link").symlink_to("../../../../../../etc/passwd")
    kernel = Syscalls()
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = kernel.openat2(root_fd, "link", os.O_RDONLY, lx.RESOLVE_IN_ROOT)
        with open(fd) as f:
            assert f.read() == "inside\n"
        with pytest.raises(OSError) as refused:
            kernel.openat2(root_fd, "link", os.O_RDONLY, lx.RESOLVE_BENEATH)
        assert refused.value.errno == errno.EXDEV
    finally:
        os.close(root_fd)


def test_procfs_and_mount_ids_are_read_from_descriptors(tmp_path):
    kernel = Syscalls()
    proc = os.open("/proc", os.O_PATH)
    a = os.open(tmp_path, os.O_PATH)
    b = os.open(tmp_path / "..", os.O_PATH)
    try:
        assert kernel.fstatfs_type(proc) == PROC_SUPER_MAGIC
        assert kernel.fstatfs_type(a) != PROC_SUPER_MAGIC
        assert kernel.mount_id(a) != kernel.mount_id(proc)
        assert kernel.mount_id(a) == kernel.mount_id(b)  # one directory tree, one mount
    finally:
        for fd in (proc, a, b):
            os.close(fd)


def test_prctl_names_a_thread_and_refuses_an_unknown_option():
    """In a thread of its own: PR_SET_NAME names the calling thread only."""
    import threading

    kernel = Syscalls()
    seen: list[str] = []

    def name_myself() -> None:
        kernel.set_name("pyc-test-thread-long-name")
        with open(f"/proc/self/task/{threading.get_native_id()}/comm") as comm:
            seen.append(comm.read().strip())

    thread = threading.Thread(target=name_myself)
    thread.start()
    thread.join()
    assert seen == ["pyc-test-thread"]
    with pytest.raises(OSError) as refused:
        kernel.prctl(0x7FFF_FFFF)
    assert refused.value.errno == errno.EINVAL


# --- the fake -----------------------------------------------------------------------------------

def test_the_fake_stands_in_for_every_call():
    """A call the fake does not override would reach the real kernel from a unit test."""
    public = {name for name in dir(Syscalls) if not name.startswith("_")}
    assert public - set(RecordingSyscalls.__dict__) == set()


def test_the_fake_records_actions_apart_from_look_ups(tmp_path):
    kernel = RecordingSyscalls()
    fd = kernel.openat2(lx.AT_FDCWD, str(tmp_path), os.O_PATH, 0)
    try:
        kernel.mount_id(fd)
        kernel.mount(None, str(tmp_path), None, lx.MS_PRIVATE)
        kernel.unshare(lx.CLONE_NEWNS)
        kernel.sethostname("box")
    finally:
        os.close(fd)
    assert {call[0] for call in kernel.calls} - {call[0] for call in kernel.actions} <= QUERIES
    assert kernel.actions == [("mount", None, str(tmp_path), None, lx.MS_PRIVATE, None),
                              ("unshare", lx.CLONE_NEWNS), ("sethostname", "box")]
    assert kernel.names() == ["mount", "unshare", "sethostname"]


def test_a_failure_is_injected_for_the_matching_calls_only(tmp_path):
    kernel = RecordingSyscalls()
    kernel.fail("mount", errno.EBUSY, when=lambda call: call[2] == "/busy")
    with pytest.raises(OSError) as refused:
        kernel.mount(None, "/busy", None, lx.MS_SLAVE)
    assert refused.value.errno == errno.EBUSY
    kernel.mount(None, "/free", None, lx.MS_SLAVE)
    assert [call[2] for call in kernel.actions] == ["/busy", "/free"]  # both recorded


def test_a_new_mount_covers_its_target_while_older_descriptors_keep_theirs(tmp_path):
    """The model behind the fake's mount ids: what runtime.init.mountfd checks after each mount."""
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    kernel = RecordingSyscalls()
    dst = os.open(tmp_path / "dst", os.O_PATH)
    tree = kernel.open_tree(lx.AT_FDCWD, str(tmp_path / "src"), lx.OPEN_TREE_CLONE)
    try:
        before = kernel.mount_id(dst)
        assert kernel.mount_id(tree) != before
        kernel.move_mount(tree, dst)
        again = kernel.openat2(lx.AT_FDCWD, str(tmp_path / "dst"), os.O_PATH, 0)
        try:
            assert kernel.mount_id(again) == kernel.mount_id(tree)
        finally:
            os.close(again)
        assert kernel.mount_id(dst) == before

        kernel.mount("tmpfs", f"/proc/self/fd/{dst}", "tmpfs")
        top = kernel.openat2(lx.AT_FDCWD, str(tmp_path / "dst"), os.O_PATH, 0)
        try:
            assert kernel.mount_id(top) not in (before, kernel.mount_id(tree))
        finally:
            os.close(top)
    finally:
        os.close(tree)
        os.close(dst)
    assert kernel.actions == [
        ("open_tree", "AT_FDCWD", str(tmp_path / "src"), lx.OPEN_TREE_CLONE),
        ("move_mount", f"tree:{tmp_path / 'src'}", f"fd:{tmp_path / 'dst'}"),
        ("mount", "tmpfs", f"fd:{tmp_path / 'dst'}", "tmpfs", 0, None),
    ]


def test_the_fakes_descriptors_are_real_and_processes_are_not(tmp_path):
    kernel = RecordingSyscalls()
    before = set(os.listdir("/proc/self/fd"))
    context = kernel.fsopen("tmpfs")
    mount = kernel.fsmount(context, lx.MOUNT_ATTR_RDONLY)
    os.fstat(mount)
    os.close(mount)
    os.close(context)
    assert set(os.listdir("/proc/self/fd")) == before
    pid = kernel.clone(lx.CLONE_NEWPID)
    assert pid > 0  # the caller goes on as the parent...
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # ...of no child
    assert kernel.actions[-1] == ("clone", lx.CLONE_NEWPID)
