"""What only the v2 driver does: the v1 values converted into v2 files, `unified` keys, and the
controllers enabled on the way down. This host has no v2 controllers: these run in the VM stage
(test_cgroup_vm.py), where test_cgroup_real.py runs on the v2 driver as well."""
import pytest

import cgroups
from cgroups import mode

MiB = 1 << 20


@pytest.fixture
def v2(cgroup, host_mode):
    if host_mode != "v2":
        pytest.skip(f"cgroup v2 driver: runs in the v2 VM stage (test_cgroup_vm.py); this host is {host_mode}")
    return cgroup


def read(path: str, name: str) -> str:
    with open(f"{mode.detect().unified}{path}/{name}") as f:
        return f.read().strip()


def test_v1_values_land_converted_in_the_v2_files(v2):
    v2.create()
    v2.apply({"cpu": {"shares": 1024, "quota": 10000, "period": 100000, "cpus": "0", "mems": "0"},
              "memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 96 * MiB},
              "pids": {"limit": 42}})
    assert read(v2.path, "cpu.weight") == "100"
    assert read(v2.path, "cpu.max") == "10000 100000"
    assert read(v2.path, "cpuset.cpus") == "0"
    assert read(v2.path, "memory.max") == str(64 * MiB)
    assert read(v2.path, "memory.low") == str(32 * MiB)
    assert read(v2.path, "memory.swap.max") == str(32 * MiB)  # swap - limit
    assert read(v2.path, "pids.max") == "42"
    v2.apply({"cpu": {"shares": 2, "quota": -1}, "memory": {"limit": -1}, "pids": {"limit": -1}})
    assert read(v2.path, "cpu.weight") == "1"
    assert read(v2.path, "cpu.max") == "max 100000"
    assert read(v2.path, "memory.max") == "max"
    assert read(v2.path, "memory.swap.max") == "max"
    assert read(v2.path, "pids.max") == "max"
    v2.apply({"cpu": {"shares": 262144, "period": 50000}})
    assert read(v2.path, "cpu.weight") == "10000"
    assert read(v2.path, "cpu.max") == "max 50000"


def test_unified_keys_are_written_last_and_unknown_ones_named(v2):
    v2.create()
    v2.apply({"memory": {"limit": 64 * MiB}, "unified": {"memory.high": "33554432", "memory.max": "50331648"}})
    assert read(v2.path, "memory.high") == str(32 * MiB)
    assert read(v2.path, "memory.max") == str(48 * MiB)  # unified overrides the converted value
    with pytest.raises(cgroups.CgroupError, match=r"^linux.resources.unified\['nosuch.max'\]: the nosuch controller"
                                                  r" is not enabled"):
        v2.apply({"unified": {"nosuch.max": "1"}})
    with pytest.raises(cgroups.CgroupError, match=r"^linux.resources.unified\['memory.high'\]: writing 'lots'"):
        v2.apply({"unified": {"memory.high": "lots"}})


def test_controllers_are_enabled_on_the_way_down(v2):
    nested = cgroups.open_cgroup(v2.path + "/a")
    nested.create()
    for path in ("/pycontainer", v2.path):
        enabled = read(path, "cgroup.subtree_control").split()
        assert {"cpu", "memory", "pids"} <= set(enabled), (path, enabled)
    assert {"cpu", "memory", "pids"} <= set(read(nested.path, "cgroup.controllers").split())
