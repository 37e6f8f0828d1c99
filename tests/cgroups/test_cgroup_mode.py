"""Detection of v1 / v2 / hybrid hosts from mountinfo text (no root needed)."""
import pytest

from cgroups import CgroupError, detect_mode, mode

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

V1_COMOUNTED = """\
25 21 0:22 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid shared:10 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/pids rw,nosuid shared:14 - cgroup cgroup rw,pids
31 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw shared:15 - cgroup cgroup rw,net_cls,net_prio
32 25 0:29 / /sys/fs/cgroup/elogind rw shared:16 - cgroup cgroup rw,name=elogind
"""

V2 = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
30 24 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""


def test_hybrid():
    h = mode.parse_mountinfo(HYBRID)
    assert h.mode == "hybrid"
    assert h.v1 == {"cpu": "/sys/fs/cgroup/cpu", "cpuacct": "/sys/fs/cgroup/cpuacct",
                    "memory": "/sys/fs/cgroup/memory", "name=systemd": "/sys/fs/cgroup/systemd"}
    assert h.unified == "/sys/fs/cgroup/unified"


def test_v1_with_comounted_controllers_and_optional_fields():
    h = mode.parse_mountinfo(V1_COMOUNTED)
    assert h.mode == "v1"
    assert h.unified is None
    assert h.v1["cpu"] == h.v1["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct"
    assert h.v1["net_prio"] == "/sys/fs/cgroup/net_cls,net_prio"
    assert "name=elogind" not in h.v1 and "xattr" not in h.v1


def test_v2():
    h = mode.parse_mountinfo(V2)
    assert (h.mode, h.v1, h.unified) == ("v2", {}, "/sys/fs/cgroup")


def test_escaped_mount_point():
    h = mode.parse_mountinfo(r"40 31 0:37 / /mnt/my\040cgroups rw - cgroup2 cgroup2 rw" + "\n")
    assert h.unified == "/mnt/my cgroups"


def test_nothing_mounted_says_what_the_kernel_supports():
    with pytest.raises(CgroupError, match=r"^no cgroup hierarchy is mounted \(the kernel supports cgroup, cgroup2"):
        mode.parse_mountinfo(V2.splitlines()[0], "nodev\tcgroup\nnodev\tcgroup2\n")
    with pytest.raises(CgroupError, match="supports neither"):
        mode.parse_mountinfo("", "nodev\tproc\n")


def test_this_host_is_detected():
    # The brief: this machine is hybrid; inside the v2 VM stage it is v2.
    assert detect_mode() in ("hybrid", "v2")
