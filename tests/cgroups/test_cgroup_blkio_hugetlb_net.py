"""linux.resources.blockIO, hugepageLimits and network: bad values refused with one line naming
the field; the files each driver writes for each kernel's I/O schedulers; and, against the real
kernel, the values read back where the host has the controller and a refusal before anything
exists where it has not. This host is v1 (blkio, no hugetlb, net_cls or net_prio, no BFQ); the v2
tests run in the VM stage (test_cgroup_vm.py)."""
import os
import uuid

import pytest

import cgroups
from cgroups import CgroupError, blkio, hugetlb, mode, validate_resources
from testlib.disks import whole_disk

R = "linux.resources"
B = R + ".blockIO"
H = R + ".hugepageLimits"
N = R + ".network"
MiB = 1 << 20
# No block device has these numbers (major 4095 is the last, never assigned).
NO_SUCH_DEVICE = (4095, 4095)

BAD = [
    ({"blockIO": []}, f"{B}: must be an object, got []"),
    ({"blockIO": {"weight": 5}}, f"{B}.weight: must be between 10 and 1000, got 5"),
    ({"blockIO": {"weight": 1001}}, f"{B}.weight: must be between 10 and 1000, got 1001"),
    ({"blockIO": {"leafWeight": -1}}, f"{B}.leafWeight: must be between 10 and 1000, got -1"),
    ({"blockIO": {"weight": "500"}}, f"{B}.weight: must be an integer, got '500'"),
    ({"blockIO": {"weightDevice": {}}}, f"{B}.weightDevice: must be a list, got {{}}"),
    ({"blockIO": {"weightDevice": [{"major": 8, "minor": 0}]}},
     f"{B}.weightDevice[0]: needs a weight or a leafWeight"),
    ({"blockIO": {"weightDevice": [{"minor": 0, "weight": 500}]}}, f"{B}.weightDevice[0].major: is required"),
    ({"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 500},
                                   {"major": 8, "minor": -1, "weight": 500}]}},
     f"{B}.weightDevice[1].minor: must be a device number (0 or more), got -1"),
    ({"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 2000}]}},
     f"{B}.weightDevice[0].leafWeight: must be between 10 and 1000, got 2000"),
    ({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0}]}},
     f"{B}.throttleReadBpsDevice[0].rate: is required"),
    ({"blockIO": {"throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": -1}]}},
     f"{B}.throttleWriteIOPSDevice[0].rate: must be between 0 and 18446744073709551615, got -1"),
    ({"blockIO": {"throttleWriteBpsDevice": [5]}}, f"{B}.throttleWriteBpsDevice[0]: must be an object, got 5"),
    ({"blockIO": {"throttleReadIOPSDevice": [{"major": "8", "minor": 0, "rate": 1}]}},
     f"{B}.throttleReadIOPSDevice[0].major: must be an integer, got '8'"),
    ({"hugepageLimits": {"pageSize": "2MB"}}, f"{H}: must be a list, got {{'pageSize': '2MB'}}"),
    ({"hugepageLimits": [{"pageSize": "2M", "limit": 1}]},
     f"{H}[0].pageSize: must be a size like '2MB', '1GB' or '64KB', got '2M'"),
    ({"hugepageLimits": [{"pageSize": "0MB", "limit": 1}]},
     f"{H}[0].pageSize: must be a size like '2MB', '1GB' or '64KB', got '0MB'"),
    ({"hugepageLimits": [{"pageSize": 2, "limit": 1}]},
     f"{H}[0].pageSize: must be a size like '2MB', '1GB' or '64KB', got 2"),
    ({"hugepageLimits": [{"pageSize": "2MB"}]}, f"{H}[0].limit: is required"),
    ({"hugepageLimits": [{"pageSize": "2MB", "limit": -1}]},
     f"{H}[0].limit: must be between 0 and 18446744073709551615, got -1"),
    ({"network": 5}, f"{N}: must be an object, got 5"),
    ({"network": {"classID": 1 << 32}}, f"{N}.classID: must be between 0 and 4294967295, got 4294967296"),
    ({"network": {"priorities": [{"name": "eth0"}]}}, f"{N}.priorities[0].priority: is required"),
    ({"network": {"priorities": [{"name": "eth 0", "priority": 1}]}},
     f"{N}.priorities[0].name: must be a network interface name, got 'eth 0'"),
    ({"network": {"priorities": [{"name": "a" * 16, "priority": 1}]}},
     f"{N}.priorities[0].name: must be a network interface name, got '{'a' * 16}'"),
    ({"network": {"priorities": [{"priority": 1}]}},
     f"{N}.priorities[0].name: must be a network interface name, got None"),
]


@pytest.mark.parametrize("resources, message", BAD, ids=[m.split(": ")[0] for _, m in BAD])
def test_bad_value_gives_one_line_naming_the_field(resources, message):
    with pytest.raises(CgroupError) as caught:
        validate_resources(resources)
    assert str(caught.value) == message


# The OCI runtime spec's own examples, and runc's "0 is unset".
GOOD = [
    {"blockIO": {"weight": 10, "leafWeight": 10,
                 "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300},
                                  {"major": 8, "minor": 16, "weight": 500}],
                 "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                 "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}]}},
    {"hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}, {"pageSize": "64KB", "limit": 1000000}]},
    {"network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500},
                                                   {"name": "eth1", "priority": 1000}]}},
    {"blockIO": {"weight": 0, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 0}]},
     "network": {"classID": 0}},
]


@pytest.mark.parametrize("resources", GOOD)
def test_good_values_pass(resources):
    validate_resources(resources)


# -- the files written, for schedulers this host may not have ------------------------------------

WEIGHTS = {"weight": 500, "leafWeight": 300,
           "weightDevice": [{"major": 8, "minor": 0, "weight": 200, "leafWeight": 100}],
           "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 0}],
           "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}]}


def test_v1_writes_cfq_files_when_the_kernel_has_them():
    present = {"blkio.weight", "blkio.weight_device", "blkio.leaf_weight", "blkio.leaf_weight_device"}
    assert blkio.v1_writes(WEIGHTS, present) == [
        ("blkio.weight", "500", f"{B}.weight"),
        ("blkio.leaf_weight", "300", f"{B}.leafWeight"),
        ("blkio.weight_device", "8:0 200", f"{B}.weightDevice[0].weight"),
        ("blkio.leaf_weight_device", "8:0 100", f"{B}.weightDevice[0].leafWeight"),
        ("blkio.throttle.read_bps_device", "8:0 0", f"{B}.throttleReadBpsDevice[0]"),
        ("blkio.throttle.write_iops_device", "8:16 300", f"{B}.throttleWriteIOPSDevice[0]")]


def test_v1_falls_back_to_bfq_weights_and_names_what_bfq_lacks():
    present = {"blkio.bfq.weight", "blkio.bfq.weight_device"}
    weights = {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 200}]}
    assert blkio.v1_writes(weights, present) == [
        ("blkio.bfq.weight", "500", f"{B}.weight"),
        ("blkio.bfq.weight_device", "8:0 200", f"{B}.weightDevice[0].weight")]
    with pytest.raises(CgroupError, match=rf"^{B}.leafWeight: this kernel has no blkio.leaf_weight "):
        blkio.v1_writes(WEIGHTS, present)


def test_v2_converts_weights_to_io_weight_without_bfq():
    assert blkio.v2_writes(WEIGHTS, None) == [
        ("io.weight", "4950", f"{B}.weight"),              # runc: 1 + (500 - 10) * 9999 / 990
        ("io.weight", "8:0 1920", f"{B}.weightDevice[0].weight"),
        ("io.max", "8:0 rbps=max", f"{B}.throttleReadBpsDevice[0]"),   # 0 is "no limit", as on v1
        ("io.max", "8:16 wiops=300", f"{B}.throttleWriteIOPSDevice[0]")]  # leafWeight: no v2 file
    assert [blkio.io_weight(w) for w in (10, 100, 1000)] == [1, 910, 10000]


def test_v2_gives_bfq_the_weights_as_they_are():
    weights = {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 200}]}
    # BFQ since Linux 5.4 lists per-device weights; before, its file is one number and takes none.
    assert blkio.v2_writes(weights, "default 100\n") == [
        ("io.bfq.weight", "500", f"{B}.weight"), ("io.bfq.weight", "8:0 200", f"{B}.weightDevice[0].weight")]
    assert blkio.v2_writes(weights, "100\n")[1] == ("io.weight", "8:0 1920", f"{B}.weightDevice[0].weight")


def test_page_sizes_are_this_kernels_and_others_are_refused():
    names = os.listdir("/sys/kernel/mm/hugepages")
    kib = sorted(int(n.removeprefix("hugepages-").removesuffix("kB")) for n in names)
    expected = [f"{k >> 20}GB" if k >= 1 << 20 else f"{k >> 10}MB" if k >= 1 << 10 else f"{k}KB" for k in kib]
    assert hugetlb.host_page_sizes() == expected
    with pytest.raises(CgroupError) as caught:
        hugetlb.check_page_sizes([{"pageSize": expected[0], "limit": 0}, {"pageSize": "3MB", "limit": 1}])
    assert str(caught.value) == (f"{H}[1].pageSize: '3MB' is not a huge page size of this host"
                                 f" (it has {', '.join(expected)})")


# -- the real kernel ------------------------------------------------------------------------------


def io_dir(cg) -> str:
    h = mode.detect()
    return (h.v1["blkio"] if h.mode != mode.V2 else h.unified) + cg.path


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


@pytest.mark.root
def test_throttles_land_in_the_kernel_and_a_rate_of_0_lifts_one(cgroup, host_mode):
    major, minor = whole_disk()
    dev = f"{major}:{minor}"
    cgroup.validate({"blockIO": {}})
    cgroup.create()
    cgroup.apply({"blockIO": {
        "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 4 * MiB}],
        "throttleWriteBpsDevice": [{"major": major, "minor": minor, "rate": 2 * MiB}],
        "throttleReadIOPSDevice": [{"major": major, "minor": minor, "rate": 300}],
        "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 200}]}})
    directory = io_dir(cgroup)
    if host_mode == "v2":
        assert read(directory + "/io.max") == f"{dev} rbps={4 * MiB} wbps={2 * MiB} riops=300 wiops=200"
    else:
        assert [read(f"{directory}/blkio.throttle.{name}") for name in
                ("read_bps_device", "write_bps_device", "read_iops_device", "write_iops_device")] == [
            f"{dev} {4 * MiB}", f"{dev} {2 * MiB}", f"{dev} 300", f"{dev} 200"]
    cgroup.apply({"blockIO": {"throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 0}]}})
    if host_mode == "v2":
        assert read(directory + "/io.max") == f"{dev} rbps=max wbps={2 * MiB} riops=300 wiops=200"
    else:
        assert read(directory + "/blkio.throttle.read_bps_device") == ""


@pytest.mark.root
def test_weight_lands_where_the_kernel_has_a_weight_file_else_is_refused(cgroup, host_mode):
    cgroup.create()
    directory = io_dir(cgroup)
    files = set(os.listdir(directory))
    if host_mode == "v2":
        cgroup.apply({"blockIO": {"weight": 500}})
        if "io.bfq.weight" in files:
            assert read(directory + "/io.bfq.weight").splitlines()[0] in ("500", "default 500")
        else:
            assert read(directory + "/io.weight").splitlines()[0] == "default 4950"
    elif files & {"blkio.weight", "blkio.bfq.weight"}:
        cgroup.apply({"blockIO": {"weight": 500}})
        assert read(directory + "/" + min(files & {"blkio.weight", "blkio.bfq.weight"})) == "500"
    else:  # this host: no CFQ (gone since 5.0) and no BFQ in its kernel
        with pytest.raises(CgroupError) as caught:
            cgroup.apply({"blockIO": {"weight": 500}})
        assert str(caught.value) == (f"{B}.weight: this kernel has neither blkio.weight nor blkio.bfq.weight"
                                     " (proportional weights need the BFQ I/O scheduler)")


@pytest.mark.root
def test_a_device_the_host_lacks_is_refused_before_anything_exists(cgroup):
    major, minor = NO_SUCH_DEVICE
    with pytest.raises(CgroupError) as caught:
        cgroup.validate({"blockIO": {"throttleWriteBpsDevice": [{"major": major, "minor": minor, "rate": 1}]}})
    assert str(caught.value) == f"{B}.throttleWriteBpsDevice[0]: this host has no block device {major}:{minor}"
    assert not cgroup.exists()


# -- v1: hugetlb, net_cls and net_prio where mounted, a refusal where not ------------------------

@pytest.fixture
def v1(cgroup, host_mode):
    if host_mode not in ("v1", "hybrid"):
        pytest.skip(f"v1 driver: this host is {host_mode}")
    return cgroup


@pytest.mark.root
def test_v1_hugepage_limits_land_in_hugetlb_or_are_refused_before_anything_exists(v1):
    size = hugetlb.host_page_sizes()[0]
    limits = {"hugepageLimits": [{"pageSize": size, "limit": 0}]}
    root = mode.detect().v1.get("hugetlb")
    if root is None:  # this host
        with pytest.raises(CgroupError) as caught:
            v1.validate(limits)
        assert str(caught.value) == (f"{H}: the hugetlb controller is not available on this host"
                                     " (no cgroup v1 hierarchy has it mounted)")
        assert not v1.exists()
        return
    v1.create()
    v1.apply(limits)
    assert read(f"{root}{v1.path}/hugetlb.{size}.limit_in_bytes") == "0"


@pytest.mark.root
@pytest.mark.parametrize("key, value, controller, name, expected", [
    ("classID", 1048577, "net_cls", "net_cls.classid", "1048577"),
    ("priorities", [{"name": "lo", "priority": 5}], "net_prio", "net_prio.ifpriomap", "lo 5")])
def test_v1_network_lands_in_net_cls_and_net_prio_or_is_refused(v1, key, value, controller, name, expected):
    resources = {"network": {key: value}}
    root = mode.detect().v1.get(controller)
    if root is None:  # this host
        with pytest.raises(CgroupError) as caught:
            v1.validate(resources)
        assert str(caught.value) == (f"{N}.{key}: the {controller} controller is not available on this host"
                                     " (no cgroup v1 hierarchy has it mounted)")
        assert not v1.exists()
        return
    v1.create()
    v1.apply(resources)
    assert expected in read(f"{root}{v1.path}/{name}").splitlines()


# -- v2: hugetlb with reservations, network refused ---------------------------------

@pytest.fixture
def v2(cgroup, host_mode):
    if host_mode != "v2":
        pytest.skip(f"cgroup v2 driver: runs in the v2 VM stage (test_cgroup_vm.py); this host is {host_mode}")
    return cgroup


@pytest.mark.root
def test_v2_hugepage_limits_land_in_max_and_rsvd_max(v2):
    size = hugetlb.host_page_sizes()[0]
    v2.create()
    v2.apply({"hugepageLimits": [{"pageSize": size, "limit": 64 * MiB}]})
    directory = mode.detect().unified + v2.path
    assert read(f"{directory}/hugetlb.{size}.max") == str(64 * MiB)
    assert read(f"{directory}/hugetlb.{size}.rsvd.max") == str(64 * MiB)  # Linux >= 5.7
    with pytest.raises(CgroupError, match=rf"^{H}\[0\].pageSize: '3MB' is not a huge page size of this host"):
        v2.apply({"hugepageLimits": [{"pageSize": "3MB", "limit": 0}]})


@pytest.mark.root
def test_v2_device_weight_lands_where_iocost_is_on_else_is_refused(v2):
    major, minor = whole_disk()
    dev = f"{major}:{minor}"
    v2.create()
    directory = mode.detect().unified + v2.path
    if os.path.exists(directory + "/io.bfq.weight"):
        pytest.skip("BFQ is loaded: device weights go to it, for devices it schedules")
    qos = [line for line in read(mode.detect().unified + "/io.cost.qos").splitlines() if line.startswith(dev + " ")]
    resources = {"blockIO": {"weightDevice": [{"major": major, "minor": minor, "weight": 200}]}}
    if qos and "enable=1" in qos[0].split():
        v2.apply(resources)
        assert f"{dev} 1920" in read(directory + "/io.weight").splitlines()
        return
    with pytest.raises(CgroupError) as caught:  # the VM stage: neither BFQ nor blk-iocost
        v2.apply(resources)
    assert str(caught.value) == (
        f"{B}.weightDevice[0].weight: device {dev} takes no weight: it needs the BFQ I/O scheduler or"
        f" blk-iocost enabled for it (writing '{dev} 1920' to {directory}/io.weight: Operation not supported)")


def test_v2_refuses_network_which_has_no_v2_controller(tmp_path):
    # Refused, where runc ignores it: a class or priority asked for is never silently missing.
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    cg = cgroups.open_cgroup(f"/pycontainer/test-{uuid.uuid4().hex[:12]}",
                             cgroups.Hierarchies(mode.V2, {}, str(tmp_path)))
    with pytest.raises(CgroupError, match=rf"^{N}: net_cls and net_prio do not exist on cgroup v2"):
        cg.validate({"network": {"classID": 1048577}})
    assert os.listdir(tmp_path) == ["cgroup.controllers"]


def test_v2_refuses_blkio_and_hugetlb_when_the_host_lacks_the_controller(tmp_path):
    # A directory of our own making stands for a cgroup2 root without io and hugetlb (every v2
    # host here has both): the driver asks its cgroup.controllers, and creates nothing under it.
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    cg = cgroups.open_cgroup(f"/pycontainer/test-{uuid.uuid4().hex[:12]}",
                             cgroups.Hierarchies(mode.V2, {}, str(tmp_path)))
    for resources, field, controller in (
            ({"blockIO": {"weight": 500}}, B, "io"),
            ({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}, H, "hugetlb")):
        with pytest.raises(CgroupError) as caught:
            cg.validate(resources)
        assert str(caught.value) == (f"{field}: the {controller} controller is not available on this host"
                                     f" (not in {tmp_path}/cgroup.controllers)")
    assert os.listdir(tmp_path) == ["cgroup.controllers"]
