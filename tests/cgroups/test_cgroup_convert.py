"""v1 (OCI) values -> cgroup v2 values, with the figures runc's own tests give (no root needed)."""
import pytest

from cgroups import CgroupError, convert


@pytest.mark.parametrize("shares, weight", [
    (0, 0),            # unset
    (1, 1), (2, 1),    # minimum (and below)
    (3, 2),
    (1024, 100),       # the defaults map onto each other
    (262143, 10000), (262144, 10000), (262145, 10000),  # maximum (and above)
    (512, 59), (2048, 174), (100, 17),
])
def test_shares_to_weight_matches_runc(shares, weight):
    assert convert.cpu_weight(shares) == weight


@pytest.mark.parametrize("quota, period, line", [
    (10000, 100000, "10000 100000"),
    (50000, None, "50000 100000"),   # the kernel's default period
    (-1, 100000, "max 100000"),
    (None, 20000, "max 20000"),
    (-1, None, "max 100000"),
    (None, None, None),
    (0, 0, None),
])
def test_quota_period_to_cpu_max(quota, period, line):
    assert convert.cpu_max(quota, period) == line


MiB = 1 << 20


@pytest.mark.parametrize("swap, limit, swap_max", [
    (96 * MiB, 64 * MiB, 32 * MiB),  # OCI swap is memory+swap: v2 gets the difference
    (64 * MiB, 64 * MiB, 0),         # no swap at all
    (-1, 64 * MiB, -1),
    (None, -1, -1),                  # unlimited memory and no swap given: unlimited swap too
    (None, 64 * MiB, None),          # left alone
    (128 * MiB, -1, 128 * MiB),      # unlimited memory: swap as is
])
def test_swap_to_swap_max(swap, limit, swap_max):
    assert convert.swap_max(swap, limit) == swap_max


def test_swap_below_limit_or_without_limit_is_refused():
    with pytest.raises(CgroupError, match=r"^linux.resources.memory.swap: is the memory\+swap total"):
        convert.swap_max(32 * MiB, 64 * MiB)
    with pytest.raises(CgroupError, match=r"^linux.resources.memory.swap: needs linux.resources.memory.limit"):
        convert.swap_max(32 * MiB, None)


def test_limit_value():
    assert convert.limit_value(-1) == "max"
    assert convert.limit_value(4096) == "4096"
