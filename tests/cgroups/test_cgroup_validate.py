"""validate_resources: one line naming the full OCI field, no root and no I/O needed."""
import copy

import pytest

from cgroups import CgroupError, validate_resources

MiB = 1 << 20

BAD = [
    ({"memory": {"limit": -5}}, "linux.resources.memory.limit: must be positive or -1 (unlimited), got -5"),
    ({"memory": {"limit": "64M"}}, "linux.resources.memory.limit: must be an integer, got '64M'"),
    ({"memory": {"limit": 1.5}}, "linux.resources.memory.limit: must be an integer, got 1.5"),
    ({"memory": {"limit": True}}, "linux.resources.memory.limit: must be an integer, got True"),
    ({"memory": {"limit": 1 << 63}}, "linux.resources.memory.limit: must be at most 9223372036854775807,"
                                     " got 9223372036854775808"),
    ({"memory": {"reservation": -2}}, "linux.resources.memory.reservation: must be positive or -1 (unlimited), got -2"),
    ({"memory": {"limit": 64 * MiB, "reservation": 128 * MiB}},
     "linux.resources.memory.reservation: must not exceed linux.resources.memory.limit (134217728 > 67108864)"),
    ({"memory": {"limit": 64 * MiB, "swap": 32 * MiB}},
     "linux.resources.memory.swap: is the memory+swap total and must be at least linux.resources.memory.limit"
     " (33554432 < 67108864)"),
    ({"memory": {"swap": 32 * MiB}},
     "linux.resources.memory.swap: needs linux.resources.memory.limit (swap is the memory+swap total)"),
    ({"memory": {"swappiness": 101}}, "linux.resources.memory.swappiness: must be between 0 and 100, got 101"),
    ({"memory": {"disableOOMKiller": "yes"}}, "linux.resources.memory.disableOOMKiller: must be true or false, got 'yes'"),
    ({"memory": 5}, "linux.resources.memory: must be an object, got 5"),
    ({"cpu": {"shares": 1}}, "linux.resources.cpu.shares: must be between 2 and 262144, got 1"),
    ({"cpu": {"shares": 300000}}, "linux.resources.cpu.shares: must be between 2 and 262144, got 300000"),
    ({"cpu": {"quota": -5}}, "linux.resources.cpu.quota: must be positive or -1 (unlimited), got -5"),
    ({"cpu": {"quota": 500}}, "linux.resources.cpu.quota: must be at least 1000 microseconds, got 500"),
    ({"cpu": {"period": 500}}, "linux.resources.cpu.period: must be between 1000 and 1000000 microseconds, got 500"),
    ({"cpu": {"period": 2000000}},
     "linux.resources.cpu.period: must be between 1000 and 1000000 microseconds, got 2000000"),
    ({"cpu": {"quota": 10000, "burst": 20000}},
     "linux.resources.cpu.burst: must not exceed linux.resources.cpu.quota (20000 > 10000)"),
    ({"cpu": {"idle": 2}}, "linux.resources.cpu.idle: must be 0 or 1, got 2"),
    ({"cpu": {"realtimeRuntime": 950000}},
     "linux.resources.cpu.realtimeRuntime: real-time CPU limits are not supported by pycontainer"),
    ({"cpu": {"realtimePeriod": 1000000}},
     "linux.resources.cpu.realtimePeriod: real-time CPU limits are not supported by pycontainer"),
    ({"cpu": {"cpus": "0-"}}, "linux.resources.cpu.cpus: must be a list like '0-3,5', got '0-' (bad item '0-')"),
    ({"cpu": {"cpus": "3-1"}}, "linux.resources.cpu.cpus: must be a list like '0-3,5', got '3-1' (bad item '3-1')"),
    ({"cpu": {"mems": "0,,1"}}, "linux.resources.cpu.mems: must be a list like '0-3,5', got '0,,1' (bad item '')"),
    ({"cpu": {"cpus": 3}}, "linux.resources.cpu.cpus: must be a string like '0-3,5', got 3"),
    ({"pids": {"limit": -2}}, "linux.resources.pids.limit: must be positive or -1 (unlimited), got -2"),
    ({"devices": {}}, "linux.resources.devices: must be a list, got {}"),
    ({"devices": [{"access": "rwm"}]}, "linux.resources.devices[0].allow: must be true or false, got None"),
    ({"devices": [{"allow": True, "type": "x", "access": "r"}]},
     "linux.resources.devices[0].type: must be 'a', 'b' or 'c', got 'x'"),
    ({"devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": -3, "access": "r"}]},
     "linux.resources.devices[1].major: must be a device number or -1 (any), got -3"),
    ({"devices": [{"allow": True, "type": "c", "access": "rwx"}]},
     "linux.resources.devices[0].access: must be letters from 'rwm', got 'rwx'"),
    ({"devices": [{"allow": True, "type": "c", "access": ""}]},
     "linux.resources.devices[0].access: must be letters from 'rwm', got ''"),
    ({"unified": {"memory/max": "1"}},
     "linux.resources.unified['memory/max']: must be a cgroup v2 file name like 'memory.high'"),
    ({"unified": {"memory": "1"}},
     "linux.resources.unified['memory']: must be a cgroup v2 file name like 'memory.high'"),
    ({"unified": {"memory..high": "1"}},
     "linux.resources.unified['memory..high']: must be a cgroup v2 file name like 'memory.high'"),
    ({"unified": {"memory.high": 5}}, "linux.resources.unified['memory.high']: must be a string, got 5"),
    ({"rdma": {"mlx5_1": {"hcaHandles": 3}}}, "linux.resources.rdma: RDMA limits are not supported by pycontainer"),
    ([], "linux.resources: must be an object, got []"),
]


@pytest.mark.parametrize("resources, message", BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_bad_value_gives_one_line_naming_the_field(resources, message):
    with pytest.raises(CgroupError) as caught:
        validate_resources(resources)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


# Each accepted value beside its twin, one step over the edge: the twin is refused naming the
# field, so the good value passes because the check looked at it, not because none ran.
GOOD = [
    (None, [], "linux.resources"),
    ({}, {"memory": 5}, "linux.resources.memory"),
    ({"memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 128 * MiB, "swappiness": 0,
                 "disableOOMKiller": False, "kernel": -1}},
     {"memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 128 * MiB, "swappiness": -1,
                 "disableOOMKiller": False, "kernel": -1}}, "linux.resources.memory.swappiness"),
    ({"memory": {"limit": -1, "swap": -1}}, {"memory": {"limit": -2, "swap": -1}},
     "linux.resources.memory.limit"),
    ({"memory": {"limit": 64 * MiB, "swap": 64 * MiB}},
     {"memory": {"limit": 64 * MiB, "swap": 64 * MiB - 1}}, "linux.resources.memory.swap"),
    ({"memory": {"limit": -1, "swap": 128 * MiB}}, {"memory": {"swap": 128 * MiB}},
     "linux.resources.memory.swap"),
    ({"cpu": {"shares": 1024, "quota": 10000, "period": 100000, "cpus": "0-1,3", "mems": "0",
              "burst": 5000, "idle": 0, "realtimeRuntime": 0}},
     {"cpu": {"shares": 1024, "quota": 10000, "period": 100000, "cpus": "0-1,3", "mems": "0-",
              "burst": 5000, "idle": 0, "realtimeRuntime": 0}}, "linux.resources.cpu.mems"),
    # quota without period: the kernel's period applies (runc too)
    ({"cpu": {"quota": 50000}}, {"cpu": {"quota": 999}}, "linux.resources.cpu.quota"),
    # period without quota: unlimited quota (runc too)
    ({"cpu": {"period": 50000}}, {"cpu": {"period": 999}}, "linux.resources.cpu.period"),
    ({"cpu": {"quota": -1, "cpus": ""}}, {"cpu": {"quota": -1, "cpus": "1-"}},
     "linux.resources.cpu.cpus"),
    ({"pids": {"limit": 0}}, {"pids": {"limit": 0.5}}, "linux.resources.pids.limit"),
    ({"pids": {"limit": -1}}, {"pids": {"limit": -2}}, "linux.resources.pids.limit"),
    ({"pids": {}}, {"pids": []}, "linux.resources.pids"),
    ({"devices": [{"allow": False, "access": "rwm"},
                  {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                  {"allow": True, "type": "c", "major": 136, "minor": None, "access": "rw"}]},
     {"devices": [{"allow": False, "access": "rwm"},
                  {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwx"}]},
     "linux.resources.devices[1].access"),
    ({"unified": {"memory.high": "50M", "memory.swap.max": "0", "hugetlb.2MB.max": "0",
                  "cpu.max.burst": "0"}},
     {"unified": {"memory.high": "50M", "memory..swap": "0"}}, "linux.resources.unified"),
    # unknown keys are ignored (spec)
    ({"blockIO": {}, "network": None, "someFutureField": {"x": 1}},
     {"blockIO": 5, "network": None, "someFutureField": {"x": 1}}, "linux.resources.blockIO"),
]


@pytest.mark.parametrize("resources, twin, field", GOOD, ids=[f for _, _, f in GOOD])
def test_good_values_pass_and_their_twin_over_the_edge_is_refused(resources, twin, field):
    given = copy.deepcopy(resources)
    validate_resources(resources)
    assert resources == given, "validation must not rewrite the config"
    with pytest.raises(CgroupError) as caught:
        validate_resources(twin)
    assert str(caught.value).startswith(field), (field, str(caught.value))
