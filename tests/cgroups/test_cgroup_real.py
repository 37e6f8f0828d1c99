"""Real cgroups and real processes with whatever driver this host needs: v1 here (hybrid host),
v2 inside the VM stage (test_vm.py runs this file there too)."""
import os
import signal
import time

import pytest

import cgroups

pytestmark = pytest.mark.root
MiB = 1 << 20


def test_create_is_idempotent_and_destroy_keeps_the_parent(cgroup, hierarchy_dirs):
    assert not cgroup.exists()
    cgroup.create()
    cgroup.create()
    assert cgroup.exists()
    assert all(os.path.isdir(d) for d in hierarchy_dirs(cgroup.path))
    cgroup.destroy()
    assert not cgroup.exists()
    assert all(os.path.isdir(d) for d in hierarchy_dirs("/pycontainer"))
    cgroup.destroy()  # absent: not an error


def test_add_process_lists_it_and_counts_it(cgroup, spawn):
    cgroup.create()
    child = spawn("import time; time.sleep(60)")
    cgroup.add_process(child.pid)
    assert cgroup.pids() == [child.pid]
    assert cgroup.stats().pids_current == 1
    with open(f"/proc/{child.pid}/cgroup") as f:
        assert f":{cgroup.path}\n" in f.read()


def test_add_missing_process_says_so(cgroup):
    cgroup.create()
    with pytest.raises(cgroups.CgroupError, match=r"^cannot add process 999999999 to .*cgroup.procs: "):
        cgroup.add_process(999999999)


def test_memory_limit_gets_a_real_allocation_oom_killed_and_counted(cgroup, spawn):
    cgroup.create()
    cgroup.apply({"memory": {"limit": 32 * MiB, "swap": 32 * MiB}})
    stats = cgroup.stats()
    assert stats.memory_limit == 32 * MiB and stats.oom_kill == 0
    child = spawn("data = b'x' * (256 << 20)\nprint('survived')")
    cgroup.add_process(child.pid)
    child.go()
    status, out, _ = child.finish()
    assert status == -signal.SIGKILL and "survived" not in out
    stats = cgroup.stats()
    assert stats.oom_kill >= 1
    # the peak (v1 memory.max_usage_in_bytes, v2 memory.peak) saw the allocation reach the limit
    assert stats.memory_max_usage is not None and stats.memory_max_usage > 16 * MiB, stats


def test_memory_limit_below_current_usage_is_refused(cgroup, spawn):
    cgroup.create()
    child = spawn("data = b'x' * (64 << 20)\nprint('ready', flush=True)\nimport time; time.sleep(60)")
    cgroup.add_process(child.pid)
    child.go()
    assert child.readline() == "ready"
    with pytest.raises(cgroups.CgroupError, match=r"^linux.resources.memory.limit: 16777216 is (below|not above)"
                                                  r" what the cgroup already uses \(\d+ bytes"):
        cgroup.apply({"memory": {"limit": 16 * MiB}})
    assert child.proc.poll() is None, "the refused limit must not kill anything"
    assert cgroup.stats().memory_limit is None
    cgroup.apply({"memory": {"limit": 512 * MiB}})  # above usage: fine
    assert cgroup.stats().memory_limit == 512 * MiB


def test_cpu_quota_of_10_percent_throttles_a_busy_loop(cgroup, spawn):
    cgroup.create()
    cgroup.apply({"cpu": {"quota": 10000, "period": 100000}})
    child = spawn("while True: pass")
    cgroup.add_process(child.pid)
    before, start = cgroup.stats(), time.monotonic()
    child.go()
    # An event, not a sleep: the loop is throttled in 20 periods (2 s at the least, however slow
    # the machine). Over that time the quota caps it at 10 % of the wall clock, whatever the load
    # (the cap leaves room for the periods at either end).
    wait_until(lambda: cgroup.stats().cpu_throttled_periods >= before.cpu_throttled_periods + 20,
               what="20 throttled periods of the busy loop")
    after, end = cgroup.stats(), time.monotonic()
    share = (after.cpu_usage_ns - before.cpu_usage_ns) / 1e9 / (end - start)
    assert 0 < share <= 0.25, f"busy loop used {share:.0%} of a CPU under a 10% quota"
    assert after.cpu_throttled_ns > before.cpu_throttled_ns


def test_pids_limit_stops_a_fork(cgroup, spawn):
    cgroup.create()
    cgroup.apply({"pids": {"limit": 1}})
    assert cgroup.stats().pids_limit == 1
    child = spawn("import os\ntry:\n    pid = os.fork()\nexcept BlockingIOError:\n    print('fork refused')\n"
                  "else:\n    os._exit(0) if pid == 0 else print('forked')")
    cgroup.add_process(child.pid)
    child.go()
    status, out, err = child.finish()
    assert (status, out.strip()) == (0, "fork refused"), err


COUNTER = """
import os, sys
fd = os.open(sys.argv[1] if len(sys.argv) > 1 else {path!r}, os.O_WRONLY | os.O_CREAT, 0o600)
i = 0
while True:
    i += 1
    if i % 1000 == 0:
        os.pwrite(fd, b"%20d" % i, 0)
"""


def test_freeze_stops_progress_and_thaw_resumes_it(cgroup, spawn, tmp_path):
    counter = tmp_path / "counter"
    cgroup.create()
    child = spawn(COUNTER.format(path=str(counter)))
    cgroup.add_process(child.pid)
    child.go()

    def count():
        return int(counter.read_text() or 0) if counter.exists() else 0

    wait_until(lambda: count() > 0, what="count from the child")
    assert cgroup.freezer_state() == cgroups.THAWED
    cgroup.freeze()
    assert cgroup.freezer_state() == cgroups.FROZEN
    frozen_at = count()
    time.sleep(0.5)
    assert count() == frozen_at, "a frozen process made progress"
    cgroup.thaw()
    assert cgroup.freezer_state() == cgroups.THAWED
    wait_until(lambda: count() > frozen_at, what="progress after thaw")


def test_kill_all_signals_every_process(cgroup, spawn):
    cgroup.create()
    child = spawn("import os, time\nif os.fork() == 0:\n    time.sleep(60)\n    os._exit(0)\n"
                  "print('forked', flush=True)\ntime.sleep(60)")
    cgroup.add_process(child.pid)
    child.go()
    assert child.readline() == "forked"
    assert len(cgroup.pids()) == 2
    cgroup.kill_all(signal.SIGTERM)
    assert child.proc.wait(timeout=30) == -signal.SIGTERM
    wait_until(lambda: not cgroup.pids(), what="empty cgroup after kill")  # grandchild too
    assert cgroup.freezer_state() == cgroups.THAWED


def test_destroy_kills_everything_and_leaves_no_directory(cgroup, spawn, hierarchy_dirs):
    cgroup.create()
    cgroup.apply({"memory": {"limit": 256 * MiB}, "pids": {"limit": 20}})
    child = spawn("import os, time\nif os.fork():\n    print('forked', flush=True)\ntime.sleep(60)")
    cgroup.add_process(child.pid)
    child.go()
    assert child.readline() == "forked"
    nested = cgroups.open_cgroup(cgroup.path + "/nested")
    nested.create()
    cgroup.destroy()
    assert child.proc.wait(timeout=30) == -signal.SIGKILL
    assert not cgroup.exists()
    assert [d for d in hierarchy_dirs(cgroup.path) if os.path.exists(d)] == []


def test_destroy_kills_a_frozen_cgroup(cgroup, spawn):
    cgroup.create()
    child = spawn("import time; time.sleep(60)")
    cgroup.add_process(child.pid)
    cgroup.freeze()
    cgroup.destroy()
    assert child.proc.wait(timeout=30) == -signal.SIGKILL
    assert not cgroup.exists()


BAD = [
    {"memory": {"limit": -5}},
    {"cpu": {"quota": 500}},
    {"cpu": {"cpus": "0-"}},
    {"pids": {"limit": -7}},
    {"memory": {"limit": 64 * MiB, "swap": 32 * MiB}},
    {"devices": [{"allow": True, "type": "c", "access": "x"}]},
]


@pytest.mark.parametrize("resources", BAD)
def test_bad_input_gives_one_line_and_leaves_no_cgroup(cgroup, resources):
    # The runtime's order: open, validate, and only then create.
    with pytest.raises(cgroups.CgroupError) as caught:
        cgroup.validate(resources)
    assert str(caught.value).startswith("linux.resources.") and "\n" not in str(caught.value)
    assert not cgroup.exists()
    # apply validates before writing anything too
    cgroup.create()
    with pytest.raises(cgroups.CgroupError):
        cgroup.apply({"pids": {"limit": 5}, **resources})
    assert cgroup.stats().pids_limit is None


def test_device_rules_deny_and_allow_real_opens(cgroup, spawn):
    cgroup.create()
    rules = [{"allow": False, "access": "rwm"},
             {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    cgroup.apply({"devices": rules})
    probe = ("import os\nfor dev in ('/dev/null', '/dev/zero'):\n    try:\n        os.close(os.open(dev, os.O_RDONLY))\n"
             "        print(dev, 'ok')\n    except PermissionError:\n        print(dev, 'denied')\n")
    child = spawn(probe)
    cgroup.add_process(child.pid)
    child.go()
    assert child.finish()[1].split("\n")[:2] == ["/dev/null ok", "/dev/zero denied"]
    # a second apply replaces the rules
    cgroup.apply({"devices": rules + [{"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"}]})
    child = spawn(probe)
    cgroup.add_process(child.pid)
    child.go()
    assert child.finish()[1].split("\n")[:2] == ["/dev/null ok", "/dev/zero ok"]


def wait_until(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s"
        time.sleep(0.01)
