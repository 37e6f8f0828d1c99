"""Mounts resolved inside the rootfs through descriptors (issue 19): the resolver against the
kernel's own RESOLVE_IN_ROOT, and the refusals and in-root landings through the real binary."""
from __future__ import annotations

import os
import stat
import subprocess

import pytest

from linux import constants as lx
from linux.syscalls import Syscalls
from runtime.init import securejoin
from runtime_refusals import assert_one_line_error

IN_ROOT = lx.RESOLVE_IN_ROOT | lx.RESOLVE_NO_MAGICLINKS
# --no-pivot unmounts in the init's mount namespace: were that the caller's, the sandbox's
# fresh namespaces take the blow instead of the host.
SANDBOX = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))), "shared", "sandbox.sh")


@pytest.fixture
def tree(tmp_path):
    """root/ holds a small image; outside/ beside it is what no lookup may reach."""
    root = tmp_path / "root"
    for d in ("etc", "usr/lib", "var"):
        (root / d).mkdir(parents=True)
    (root / "etc/passwd").write_text("inside\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/passwd").write_text("outside\n")
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    yield root, fd
    os.close(fd)


def resolve(root_fd: int, path: str, **kwargs) -> tuple[str, os.stat_result]:
    found = securejoin.walk(root_fd, path, **kwargs)
    os.close(found.fd)
    return found.path, found.st


def kernel(root_fd: int, path: str) -> os.stat_result:
    fd = Syscalls().openat2(root_fd, path, os.O_PATH, IN_ROOT)
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


@pytest.mark.parametrize("link, path, expected", [
    ("../../../outside", "/link/passwd", "/etc/passwd"),   # relative, climbing out
    ("/../../outside/..", "/link/etc/passwd", "/etc/passwd"),   # absolute, climbing out
    ("/etc", "/link/passwd", "/etc/passwd"),                # absolute: from the rootfs
    ("usr/lib", "/link/../../etc/passwd", "/etc/passwd"),    # ".." after a link: the link's
    ("../etc", "/var/../link/passwd", "/etc/passwd"),
])
def test_symlinks_resolve_as_the_kernel_does_in_root(tree, link, path, expected):
    root, root_fd = tree
    os.symlink(link, root / "link")
    if link == "../../../outside":  # climbs to root's parent, which is the root: make it lead
        os.symlink("etc", root / "outside")
    if link == "/../../outside/..":
        os.symlink("/", root / "outside")
    inside, st = resolve(root_fd, path)
    assert inside == expected
    want = kernel(root_fd, path)
    assert (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino)
    with open(Syscalls().openat2(root_fd, path, os.O_RDONLY, IN_ROOT)) as f:
        assert f.read() == "inside\n"


def test_dot_dot_stops_at_the_root(tree):
    _, root_fd = tree
    assert resolve(root_fd, "/../../../etc/../../etc/passwd")[0] == "/etc/passwd"
    assert resolve(root_fd, "/..")[0] == "/"


def test_symlink_loop_is_refused(tree):
    root, root_fd = tree
    os.symlink("b", root / "a")
    os.symlink("a", root / "b")
    with pytest.raises(OSError) as e:
        resolve(root_fd, "/a/x", create="dir")
    assert e.value.errno == 40  # ELOOP, as the kernel's
    assert sorted(os.listdir(root)) == ["a", "b", "etc", "usr", "var"]


def test_missing_components_are_made_inside_even_through_an_outward_link(tree):
    root, root_fd = tree
    os.symlink("../../../../outside/new", root / "dangling")
    inside, st = resolve(root_fd, "/dangling/deep", create="dir")
    assert inside == "/outside/new/deep" and stat.S_ISDIR(st.st_mode)
    assert (root / "outside/new/deep").is_dir()
    assert sorted(os.listdir(root.parent / "outside")) == ["passwd"]


def test_file_creation_follows_a_dangling_link_inside(tree):
    root, root_fd = tree
    os.symlink("/run/resolv.conf", root / "etc/resolv.conf")
    inside, st = resolve(root_fd, "/etc/resolv.conf", create="file")
    assert inside == "/run/resolv.conf" and stat.S_ISREG(st.st_mode)
    assert (root / "run/resolv.conf").is_file()


def test_last_symlink_kept_when_asked(tree):
    root, root_fd = tree
    os.symlink("/etc", root / "proc")
    inside, st = resolve(root_fd, "/proc", create="dir", follow_last=False)
    assert inside == "/proc" and stat.S_ISLNK(st.st_mode)


def test_a_file_in_the_middle_is_not_a_directory(tree):
    _, root_fd = tree
    with pytest.raises(NotADirectoryError):
        resolve(root_fd, "/etc/passwd/x", create="dir")


def test_component_swapped_for_an_outward_symlink_stays_inside(tree):
    """What an attacker swaps in between two steps is met as a symlink by the next step and
    resolved inside the root (CVE-2021-30465): the walk never lets the kernel follow it."""
    root, root_fd = tree
    (root / "var/data").mkdir()
    os.rename(root / "var/data", root / "var/data.old")
    os.symlink("../../../../outside", root / "var/data")
    inside, _ = resolve(root_fd, "/var/data/passwd", create="file")
    assert inside == "/outside/passwd"
    assert (root.parent / "outside/passwd").read_text() == "outside\n"


def test_walk_racing_a_swapper_never_leaves_the_root(tree):
    """A thread keeps exchanging a directory and a symlink out of the root (renameat2
    RENAME_EXCHANGE, as the CVE-2021-30465 exploit did) while mount points are made through
    it: whatever the interleaving, nothing appears outside."""
    import ctypes
    import threading

    libc = ctypes.CDLL(None, use_errno=True)
    root, root_fd = tree
    outside = root.parent / "outside"
    (root / "var/data").mkdir()
    os.symlink(str(outside), root / "var/link")
    a, b = str(root / "var/data").encode(), str(root / "var/link").encode()
    stop = threading.Event()
    swaps = []

    def swap() -> None:
        while not stop.is_set():
            assert libc.renameat2(-100, a, -100, b, 2) == 0, ctypes.get_errno()
            swaps.append(1)

    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        for i in range(2000):
            os.close(securejoin.walk(root_fd, f"/var/data/m{i}", create="dir").fd)
    finally:
        stop.set()
        swapper.join()
    assert swaps
    assert sorted(os.listdir(outside)) == ["passwd"]


# Through the real binary --------------------------------------------------------------------

def run_refused(runtime, bundle, *words: bytes) -> None:
    cid = runtime.new_id()
    assert_one_line_error(runtime.run("run", "--bundle", bundle.path, cid), *words)
    assert runtime.leftovers(cid) == []


def run_ok(runtime, bundle) -> bytes:
    cid = runtime.new_id()
    out = runtime.run("run", "--bundle", bundle.path, cid)
    assert out.returncode == 0, out.stderr
    return out.stdout


def proc_index(config) -> int:
    return next(i for i, m in enumerate(config["mounts"]) if m["destination"] == "/proc")


@pytest.mark.root
def test_proc_on_a_symlink_is_refused(runtime, writable_bundle, tmp_path):
    rootfs = os.path.join(writable_bundle.path, "rootfs")
    os.rmdir(os.path.join(rootfs, "proc"))
    os.symlink("/tmp", os.path.join(rootfs, "proc"))
    writable_bundle.process("true")
    i = proc_index(writable_bundle.config)
    run_refused(runtime, writable_bundle, f"mounts[{i}].destination".encode(),
                b"/proc: not a directory (a symlink); refusing to mount proc there")


@pytest.mark.root
def test_sysfs_on_a_file_is_refused(runtime, writable_bundle):
    rootfs = os.path.join(writable_bundle.path, "rootfs")
    os.rmdir(os.path.join(rootfs, "sys"))
    with open(os.path.join(rootfs, "sys"), "w"):
        pass
    writable_bundle.process("true")
    run_refused(runtime, writable_bundle, b".destination",
                b"/sys: not a directory (a file); refusing to mount sysfs there")


@pytest.mark.root
def test_mount_inside_proc_is_refused(runtime, bundle):
    bundle.config["mounts"].append(
        {"destination": "/proc/sys/kernel", "type": "tmpfs", "source": "tmpfs"})
    bundle.process("true")
    n = len(bundle.config["mounts"]) - 1
    run_refused(runtime, bundle, f"mounts[{n}].destination".encode(), b"inside /proc")


@pytest.mark.root
def test_lxcfs_files_may_be_covered(runtime, bundle, tmp_path):
    fake = tmp_path / "meminfo"
    fake.write_text("MemTotal: 42 kB\n")
    bundle.config["mounts"].append({"destination": "/proc/meminfo", "type": "bind",
                                    "source": str(fake), "options": ["bind", "ro"]})
    bundle.process("cat", "/proc/meminfo")
    assert run_ok(runtime, bundle) == b"MemTotal: 42 kB\n"


@pytest.mark.root
def test_only_a_procfs_goes_over_proc(runtime, bundle, tmp_path):
    bundle.config["mounts"].append({"destination": "/proc", "type": "bind",
                                    "source": str(tmp_path), "options": ["rbind"]})
    bundle.process("true")
    run_refused(runtime, bundle, b".destination", b"only a procfs may be mounted there")


@pytest.mark.root
def test_destination_through_a_symlink_to_proc_is_checked_where_it_leads(runtime,
                                                                        writable_bundle):
    os.symlink("/proc/sys", os.path.join(writable_bundle.path, "rootfs", "sneaky"))
    writable_bundle.config["mounts"].append(
        {"destination": "/sneaky", "type": "tmpfs", "source": "tmpfs"})
    writable_bundle.process("true")
    run_refused(runtime, writable_bundle, b"/sneaky (leads to /proc/sys: inside /proc")


@pytest.mark.root
def test_outward_symlink_destination_lands_inside_the_rootfs(runtime, writable_bundle, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    rootfs = os.path.join(writable_bundle.path, "rootfs")
    os.symlink(f"../../../../../../{outside}", os.path.join(rootfs, "escape"))
    writable_bundle.config["mounts"].append(
        {"destination": "/escape/mnt", "type": "tmpfs", "source": "tmpfs"})
    writable_bundle.process("sh", "-c", "grep ' /[^ ]*outside/mnt ' /proc/self/mountinfo | "
                            "cut -d' ' -f5")
    assert run_ok(runtime, writable_bundle) == f"{outside}/mnt\n".encode()
    assert os.listdir(outside) == []
    assert os.path.isdir(os.path.join(rootfs, str(outside).lstrip("/"), "mnt"))


@pytest.mark.root
def test_masked_file_gets_only_the_real_null_device(runtime, writable_bundle, tmp_path):
    """A /dev of the bundle's (a bind, so the runtime makes no nodes) whose null is a symlink to
    a canary: masking must refuse rather than bind the canary over /proc (CVE-2025-31133)."""
    dev = tmp_path / "dev"
    dev.mkdir()
    os.symlink("/etc/canary", dev / "null")
    with open(os.path.join(writable_bundle.path, "rootfs", "etc", "canary"), "w") as f:
        f.write("canary\n")
    c = writable_bundle.config
    c["mounts"] = [m for m in c["mounts"] if not m["destination"].startswith("/dev")]
    c["mounts"].append({"destination": "/dev", "type": "bind", "source": str(dev),
                        "options": ["rbind"]})
    c["linux"]["maskedPaths"] = ["/proc/acpi", "/proc/keys"]
    writable_bundle.process("true")
    run_refused(runtime, writable_bundle, b"linux.maskedPaths[1]: /proc/keys",
                b"not the null device (char 1:3)")


@pytest.mark.root
def test_masks_and_read_only_paths_hold(runtime, bundle):
    bundle.process("sh", "-c", "cat /proc/keys | wc -c; ls /proc/acpi | wc -l; "
                   "echo 1 > /proc/sys/kernel/domainname && echo wrote; true")
    out = run_ok(runtime, bundle)
    assert out.split(b"\n")[:2] == [b"0", b"0"]
    assert b"wrote" not in out


@pytest.mark.root
def test_symlink_inside_proc_is_not_followed_by_a_mask(runtime, bundle):
    bundle.config["linux"]["readonlyPaths"] = ["//proc/net"]  # /proc/net -> self/net
    bundle.process("true")
    run_refused(runtime, bundle, b"linux.readonlyPaths[0]: //proc/net",
                b"through a symlink in /proc")


@pytest.mark.root
def test_sysctl_written_through_the_containers_procfs(runtime, bundle):
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    bundle.process("cat", "/proc/sys/net/ipv4/ip_forward")
    assert run_ok(runtime, bundle) == b"1\n"


@pytest.mark.root
def test_sysctl_that_does_not_exist_is_one_line(runtime, bundle):
    bundle.config["linux"]["sysctl"] = {"net.ipv4.no_such_knob": "1"}
    bundle.process("true")
    run_refused(runtime, bundle, b"linux.sysctl: net.ipv4.no_such_knob")


@pytest.mark.root
def test_sysctl_without_a_procfs_at_proc_is_refused(runtime, bundle):
    c = bundle.config
    c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/proc"]
    c["linux"]["sysctl"] = {"kernel.domainname": "inside.example"}
    bundle.process("true")
    run_refused(runtime, bundle, b"linux.sysctl: needs a procfs")


@pytest.mark.root
def test_console_is_not_bound_through_a_symlink(runtime, writable_bundle, tmp_path):
    """A /dev/console that became a symlink before the terminal is bound over it (a hook plays
    the attacker here) is refused, not followed (CVE-2025-52565)."""
    import socket

    rootfs = os.path.join(writable_bundle.path, "rootfs")
    writable_bundle.config["hooks"] = {"createContainer": [{
        "path": "/bin/sh", "args": ["sh", "-c", f"ln -s /etc/passwd {rootfs}/dev/console"]}]}
    writable_bundle.process("true", terminal=True)
    path = str(tmp_path / "console.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        cid = runtime.new_id()
        out = runtime.run("run", "-d", "--console-socket", path, "-b", writable_bundle.path, cid)
    assert out.returncode == 1, out.stderr
    assert b"process.terminal: /dev/console in the container is a symlink" in out.stderr
    assert runtime.leftovers(cid) == []
    with open(os.path.join(rootfs, "etc", "passwd")) as f:
        assert f.read().startswith("root:")


@pytest.mark.root
def test_outward_file_destination_lands_inside_without_pivot(runtime, writable_bundle,
                                                             tmp_path):
    """--no-pivot: the same descriptors, a bind of a file onto a dangling outward symlink."""
    source = tmp_path / "hosts"
    source.write_text("bound\n")
    target = tmp_path / "target"
    rootfs = os.path.join(writable_bundle.path, "rootfs")
    os.symlink(f"../../../../../../..{target}", os.path.join(rootfs, "etc", "hosts.link"))
    writable_bundle.config["mounts"].append({"destination": "/etc/hosts.link", "type": "bind",
                                             "source": str(source), "options": ["bind"]})
    writable_bundle.process("cat", str(target))
    cid = runtime.new_id()
    out = subprocess.run([SANDBOX, *runtime.argv("run", "--no-pivot", "--bundle",
                                                 writable_bundle.path, cid)],
                         capture_output=True, timeout=60)
    assert (out.returncode, out.stdout) == (0, b"bound\n"), out.stderr
    assert not target.exists()
    assert os.path.isfile(os.path.join(rootfs, str(target).lstrip("/")))


@pytest.mark.root
def test_file_bound_over_a_directory_is_one_line(runtime, bundle, tmp_path):
    source = tmp_path / "file"
    source.write_text("x\n")
    bundle.config["mounts"].append({"destination": "/etc", "type": "bind",
                                    "source": str(source), "options": ["bind"]})
    bundle.process("true")
    n = len(bundle.config["mounts"]) - 1
    run_refused(runtime, bundle, f"mounts[{n}].destination: /etc: a directory, and the source "
                "is not".encode())


@pytest.mark.root
def test_no_pivot_leaves_no_full_procfs_for_a_nested_user_namespace(runtime, bundle):
    """--no-pivot keeps the host's mounts under the moved root; while a full procfs or sysfs is
    among them, a user namespace made inside the container may mount new, unmasked ones."""
    caps = ["CAP_SETFCAP", "CAP_SETUID", "CAP_SETGID", "CAP_SYS_ADMIN"]
    for kind in ("bounding", "effective", "permitted"):
        bundle.config["process"]["capabilities"][kind] = caps
    bundle.process("sh", "-c", "mkdir /dev/shm/p; "
                   "unshare -U -r -m -p -f mount -t proc proc /dev/shm/p && echo proc mounted; "
                   "unshare -U -r -m -n mount -t sysfs sysfs /dev/shm/p && echo sysfs mounted; "
                   "true")
    cid = runtime.new_id()
    out = subprocess.run([SANDBOX, *runtime.argv("run", "--no-pivot", "--bundle", bundle.path,
                                                 cid)], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"", out.stdout
    assert out.stderr.count(b"permission denied") == 2, out.stderr
