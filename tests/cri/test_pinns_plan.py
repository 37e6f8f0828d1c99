"""cri.pinns without root, against linux.fake.RecordingSyscalls: which namespaces a sandbox's
pin unshares, the hostname set in the new UTS namespace, the bind of each nsfs file onto its
pin, the shared pins directory, and that a failure leaves nothing pinned."""
from __future__ import annotations

import errno
import os

import pytest

from cri import pinns
from linux import constants as lx
from linux.fake import RecordingSyscalls


def without_task(call: tuple) -> tuple:
    """The bind's source names the worker thread's id; only its namespace matters here."""
    if call[0] == "mount" and str(call[1]).startswith("/proc/self/task/"):
        return (call[0], "/proc/self/task/TID/" + call[1].split("/", 5)[5], *call[2:])
    return call


def test_ipc_and_uts_are_unshared_named_and_bound_onto_their_pins(tmp_path):
    kernel = RecordingSyscalls()
    directory = str(tmp_path / "sandbox")
    paths = pinns.pin(directory, ipc=True, uts=True, hostname="web-0", syscalls=kernel)
    assert paths == {"ipc": f"{directory}/ipc", "uts": f"{directory}/uts"}
    assert [without_task(call) for call in kernel.calls] == [
        ("unshare", lx.CLONE_NEWIPC | lx.CLONE_NEWUTS),
        ("sethostname", "web-0"),
        ("mount", "/proc/self/task/TID/ns/ipc", f"{directory}/ipc", None, lx.MS_BIND, None),
        ("mount", "/proc/self/task/TID/ns/uts", f"{directory}/uts", None, lx.MS_BIND, None),
    ]
    assert sorted(os.listdir(directory)) == ["ipc", "uts"]  # the files the binds cover


def test_only_the_namespaces_asked_for_and_no_hostname_without_uts(tmp_path):
    kernel = RecordingSyscalls()
    paths = pinns.pin(str(tmp_path), ipc=True, uts=False, hostname="ignored", syscalls=kernel)
    assert list(paths) == ["ipc"]
    assert kernel.names() == ["unshare", "mount"]
    assert kernel.calls[0] == ("unshare", lx.CLONE_NEWIPC)
    assert pinns.pin(str(tmp_path / "none"), False, False, "x", syscalls=kernel) == {}
    assert len(kernel.calls) == 2


def test_a_failed_bind_unpins_what_was_made_and_raises(tmp_path):
    kernel = RecordingSyscalls()
    kernel.fail("mount", errno.EPERM, when=lambda call: call[2].endswith("/uts"))
    directory = str(tmp_path / "sandbox")
    with pytest.raises(PermissionError):
        pinns.pin(directory, ipc=True, uts=True, hostname="", syscalls=kernel)
    assert kernel.names() == ["unshare", "mount", "mount", "umount2", "umount2"]
    assert kernel.calls[-2:] == [("umount2", f"{directory}/ipc", lx.MNT_DETACH),
                                 ("umount2", f"{directory}/uts", lx.MNT_DETACH)]
    assert os.listdir(directory) == []


def test_the_pins_directory_becomes_a_shared_mount_binding_itself_first(tmp_path):
    kernel = RecordingSyscalls()
    path = str(tmp_path / "pins")
    kernel.fail("mount", errno.EINVAL, when=lambda call: call[1] is None and len(kernel.calls) == 1)
    pinns.make_shared_dir(path, syscalls=kernel)
    assert kernel.calls == [("mount", None, path, None, lx.MS_SHARED | lx.MS_REC, None),
                            ("mount", path, path, None, lx.MS_BIND | lx.MS_REC, None),
                            ("mount", None, path, None, lx.MS_SHARED | lx.MS_REC, None)]


def test_unpin_detaches_and_removes_each_pin_and_may_be_repeated(tmp_path):
    kernel = RecordingSyscalls()
    pin = tmp_path / "ipc"
    pin.write_text("")
    pinns.unpin({"ipc": str(pin)}, syscalls=kernel)
    pinns.unpin({"ipc": str(pin)}, syscalls=kernel)
    assert kernel.calls == [("umount2", str(pin), lx.MNT_DETACH)] * 2
    assert not pin.exists()
