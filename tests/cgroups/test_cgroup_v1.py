"""What only the v1 driver does, on this hybrid host: the files it writes, cpuset copy-down,
joining the unified and name=systemd hierarchies, refusing `unified`."""
import os

import pytest

import cgroups
from cgroups import mode

MiB = 1 << 20


@pytest.fixture
def v1(cgroup, host_mode):
    if host_mode not in ("v1", "hybrid"):
        pytest.skip(f"v1 driver tests: this host is {host_mode}")
    return cgroup


def read(controller: str, path: str, name: str) -> str:
    with open(f"{mode.detect().v1[controller]}{path}/{name}") as f:
        return f.read().strip()


def test_resources_land_in_the_v1_files(v1):
    v1.create()
    v1.apply({"cpu": {"shares": 512, "quota": 20000, "period": 50000, "cpus": "0", "mems": "0"},
              "memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 96 * MiB, "swappiness": 10},
              "pids": {"limit": 42}})
    assert read("cpu", v1.path, "cpu.shares") == "512"
    assert read("cpu", v1.path, "cpu.cfs_quota_us") == "20000"
    assert read("cpu", v1.path, "cpu.cfs_period_us") == "50000"
    assert read("cpuset", v1.path, "cpuset.cpus") == "0"
    assert read("memory", v1.path, "memory.limit_in_bytes") == str(64 * MiB)
    assert read("memory", v1.path, "memory.soft_limit_in_bytes") == str(32 * MiB)
    assert read("memory", v1.path, "memory.memsw.limit_in_bytes") == str(96 * MiB)  # v1 keeps the total
    assert read("memory", v1.path, "memory.swappiness") == "10"
    assert read("pids", v1.path, "pids.max") == "42"
    # a smaller period with a larger quota needs the quota written first (runc's EINVAL retry)
    v1.apply({"cpu": {"quota": 4000, "period": 10000}})
    assert (read("cpu", v1.path, "cpu.cfs_quota_us"), read("cpu", v1.path, "cpu.cfs_period_us")) == ("4000", "10000")
    # shrinking memory+swap under the old memory limit needs the limit lowered first
    v1.apply({"memory": {"limit": 16 * MiB, "swap": 16 * MiB}})
    assert read("memory", v1.path, "memory.memsw.limit_in_bytes") == str(16 * MiB)
    # -1 lifts both
    v1.apply({"memory": {"limit": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}})
    assert v1.stats().memory_limit is None
    assert read("memory", v1.path, "memory.memsw.limit_in_bytes") == read("memory", v1.path, "memory.limit_in_bytes")
    assert read("pids", v1.path, "pids.max") == "max"
    assert read("cpu", v1.path, "cpu.cfs_quota_us") == "-1"


def test_new_cpuset_gets_the_parents_cpus_and_mems(v1):
    nested = cgroups.open_cgroup(v1.path + "/a/b")
    nested.create()
    root = mode.detect().v1["cpuset"]
    with open(root + "/cpuset.cpus") as f:
        cpus = f.read().strip()
    for path in (v1.path, v1.path + "/a", v1.path + "/a/b"):
        assert read("cpuset", path, "cpuset.cpus") == cpus
        assert read("cpuset", path, "cpuset.mems") != ""


def test_process_also_joins_the_unified_and_systemd_hierarchies(v1, spawn):
    # runc's fs manager: name=systemd and, on hybrid hosts, the cgroup2 hierarchy (best effort).
    v1.create()
    child = spawn("import time; time.sleep(60)")
    v1.add_process(child.pid)
    with open(f"/proc/{child.pid}/cgroup") as f:
        lines = f.read().splitlines()
    h = mode.detect()
    if h.unified:
        assert f"0::{v1.path}" in lines
    if "name=systemd" in h.v1:
        assert any(line.endswith(f":name=systemd:{v1.path}") for line in lines)
    assert all(line.endswith(":" + v1.path) for line in lines), lines


def test_unified_keys_are_refused_naming_the_key(v1):
    with pytest.raises(cgroups.CgroupError, match=r"^linux.resources.unified\['memory.high'\]: cgroup v2 files"
                                                  r" cannot be set on this host"):
        v1.validate({"unified": {"memory.high": "50M"}})
    assert not v1.exists()


def test_oom_killer_can_be_disabled(v1):
    v1.create()
    v1.apply({"memory": {"limit": 64 * MiB, "disableOOMKiller": True}})
    assert "oom_kill_disable 1" in read("memory", v1.path, "memory.oom_control")


def test_cpus_outside_the_parent_are_refused_with_what_it_has(v1):
    v1.create()
    with pytest.raises(cgroups.CgroupError, match=r"^linux.resources.cpu.cpus: '0-4095' was refused: .*"
                                                  r"\(the parent cgroup has '[0-9,-]+'\)$"):
        v1.apply({"cpu": {"cpus": "0-4095"}})
    assert os.path.isdir(mode.detect().v1["cpuset"] + v1.path)
