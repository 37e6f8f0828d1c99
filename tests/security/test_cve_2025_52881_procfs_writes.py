"""CVE-2025-52881 (the runtime's writes into /proc redirected by a mount): a config mount binds a
canary file over a /proc file the runtime itself writes (a linux.sysctl in the container's own
network namespace, process.oomScoreAdj), so that a write by path would land in the canary. The
runtime must refuse the mount with one line or write the real procfs file; the canary is
unchanged either way. (No LSM is enabled here, so /proc/self/attr is never written.)"""
from __future__ import annotations

import pytest

from seclib import one_line_error

pytestmark = pytest.mark.root

CASES = {
    "sysctl": ("/proc/sys/net/ipv4/ip_forward",
               lambda config: config["linux"].__setitem__("sysctl", {"net.ipv4.ip_forward": "1"})),
    "oom_score_adj": ("/proc/self/oom_score_adj",
                      lambda config: config["process"].__setitem__("oomScoreAdj", 500)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_runtime_proc_write_not_redirected_to_a_bind(runtime, hostile_bundle, canary, case):
    destination, ask_for_the_write = CASES[case]
    config = hostile_bundle.config
    ask_for_the_write(config)
    config["mounts"].append({"destination": destination, "type": "bind", "source": canary.path,
                             "options": ["bind"]})
    hostile_bundle.process("sh", "-c", f"cat {destination}; cat /proc/self/oom_score_adj")
    cid = runtime.new_id()
    out = runtime.run("run", "-b", hostile_bundle.path, cid)
    assert canary.damage() == [], \
        f"the runtime's write to {destination} went to the canary bound there: {out}"
    if out.returncode != 0:
        assert one_line_error(out.stderr), out.stderr
        assert runtime.leftovers(cid) == []
