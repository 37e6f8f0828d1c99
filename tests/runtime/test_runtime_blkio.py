"""linux.resources.blockIO and hugepageLimits through the real `pycontainer` binary: what the
container sees in its own cgroup files, and where the host lacks the controller (this host: no
hugetlb, no proportional blkio weights), exit 1 with one line naming the field and nothing left
behind. The VM stage (tests/cgroups/test_cgroup_vm.py) runs them on cgroup v2 too."""
from __future__ import annotations

import os
import uuid

import pytest

import cgroups
from cgroups import hugetlb, mode
from testlib.disks import whole_disk

pytestmark = pytest.mark.root
MiB = 1 << 20


def has_hugetlb() -> bool:
    h = mode.detect()
    if h.mode == mode.V2:
        with open(h.unified + "/cgroup.controllers") as f:
            return "hugetlb" in f.read().split()
    return "hugetlb" in h.v1


def has_blkio_weight() -> bool:
    """Whether a new cgroup gets a weight file: it depends on the kernel's I/O schedulers."""
    h = mode.detect()
    probe = cgroups.open_cgroup(cgroups.resolve_path(None, f"probe-{uuid.uuid4().hex[:12]}"), h)
    probe.create()
    try:
        directory = (h.unified if h.mode == mode.V2 else h.v1["blkio"]) + probe.path
        names = {"io.weight", "io.bfq.weight", "blkio.weight", "blkio.bfq.weight"}
        return bool(names & set(os.listdir(directory)))
    finally:
        probe.destroy()


def assert_refused(runtime, cid, out, field: bytes, *words: bytes) -> None:
    assert out.returncode == 1, out
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert field in lines[0] and all(w in lines[0] for w in words), out.stderr
    assert runtime.leftovers(cid) == []


def test_block_io_throttles_are_in_the_containers_cgroup(runtime, bundle):
    major, minor = whole_disk()
    bundle.config["linux"]["resources"]["blockIO"] = {
        "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 4 * MiB}],
        "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 200}]}
    bundle.process("sh", "-c", "cd /sys/fs/cgroup; cat blkio/blkio.throttle.read_bps_device"
                   " blkio/blkio.throttle.write_iops_device 2>/dev/null || cat io.max")
    cid = runtime.new_id()
    out = runtime.run("run", "-b", bundle.path, cid)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().splitlines() in (
        [f"{major}:{minor} {4 * MiB}", f"{major}:{minor} 200"],                    # v1
        [f"{major}:{minor} rbps={4 * MiB} wbps=max riops=max wiops=200"])           # v2
    assert runtime.leftovers(cid) == []


def test_block_io_weight_is_in_the_cgroup_or_refused_with_nothing_left(runtime, bundle):
    bundle.config["linux"]["resources"]["blockIO"] = {"weight": 500}
    bundle.process("sh", "-c", "cd /sys/fs/cgroup; cat blkio/blkio.weight blkio/blkio.bfq.weight"
                   " io.bfq.weight io.weight 2>/dev/null | head -n 1")
    cid = runtime.new_id()
    supported = has_blkio_weight()
    out = runtime.run("run", "-b", bundle.path, cid)
    if supported:
        assert out.returncode == 0, out.stderr
        # as given on v1 and to BFQ, converted for io.weight (runc: 1 + (500 - 10) * 9999 / 990)
        assert out.stdout.split()[-1] in (b"500", b"4950")
    else:  # this host: no CFQ (gone since Linux 5.0) and no BFQ in its kernel
        assert_refused(runtime, cid, out, b"linux.resources.blockIO.weight: ", b"BFQ")


def test_hugepage_limits_without_hugetlb_exit_1_with_one_line_and_nothing_left(runtime, bundle):
    if has_hugetlb():
        pytest.skip("this host has the hugetlb controller")
    bundle.config["linux"]["resources"]["hugepageLimits"] = [{"pageSize": "2MB", "limit": 64 * MiB}]
    bundle.process("true")
    cid = runtime.new_id()
    out = runtime.run("run", "-b", bundle.path, cid)
    assert_refused(runtime, cid, out, b"linux.resources.hugepageLimits: ",
                   b"hugetlb controller is not available on this host")


def test_hugepage_limits_are_in_the_containers_cgroup(runtime, bundle):
    if not has_hugetlb():
        pytest.skip("this host has no hugetlb controller (the test above covers that)")
    size = hugetlb.host_page_sizes()[0]
    bundle.config["linux"]["resources"]["hugepageLimits"] = [{"pageSize": size, "limit": 64 * MiB}]
    bundle.process("sh", "-c", f"cd /sys/fs/cgroup; cat hugetlb/hugetlb.{size}.limit_in_bytes 2>/dev/null"
                   f" || cat hugetlb.{size}.max")
    cid = runtime.new_id()
    out = runtime.run("run", "-b", bundle.path, cid)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(64 * MiB).encode()]
