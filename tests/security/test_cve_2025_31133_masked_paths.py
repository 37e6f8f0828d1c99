"""CVE-2025-31133 (maskedPaths bind whatever the rootfs calls /dev/null): with the image's own
/dev (no /dev tmpfs), a rootfs whose /dev/null is a symlink to a file the container may only read,
a regular file, or missing must not decide what covers a masked path: it is the real /dev/null
(char 1:3) in the container, or the start fails with one line. The canary is bound read-only at
/canary; a mask made of it would make it writable. Then the same with /dev/null swapped for the
symlink by a second container while the mask is made."""
from __future__ import annotations

import copy
import json
import os

import pytest

from seclib import Runtime, detached, one_line_error, result, sandboxed, wait_for

pytestmark = pytest.mark.root

# Masked files of the default spec that this kernel has (it has no /proc/kcore).
MASKED = ["/proc/keys", "/proc/timer_list"]
PROBE = "; ".join(f"stat -c '%n %F %t:%T' {path}; head -c 100 {path}; "
                  f"echo pwned > {path} 2>/dev/null" for path in MASKED) + "; true"


@pytest.mark.parametrize("null", ["symlink", "regular-file", "missing"])
def test_masked_path_is_the_real_dev_null(runtime, hostile_bundle, canary, null):
    config = hostile_bundle.config
    config["mounts"] = [m for m in config["mounts"] if m["destination"] != "/dev"]
    config["mounts"].append({"destination": "/canary", "type": "bind", "source": canary.path,
                             "options": ["bind", "ro"]})
    open(os.path.join(hostile_bundle.rootfs, "canary"), "w").close()
    dev_null = os.path.join(hostile_bundle.rootfs, "dev", "null")
    if null == "symlink":
        os.symlink("/canary", dev_null)
    elif null == "regular-file":
        with open(dev_null, "w") as f:
            f.write("not-dev-null\n")
    hostile_bundle.process("sh", "-c", PROBE)
    cid = runtime.new_id()
    out = runtime.run("run", "-b", hostile_bundle.path, cid)
    text = out.stdout.decode(errors="replace")
    assert canary.damage() == [], f"the canary was written through a masked path: {text}"
    assert canary.token not in text and "not-dev-null" not in text, \
        f"a masked path shows what the rootfs called /dev/null: {text}"
    if out.returncode != 0:
        assert one_line_error(out.stderr), out.stderr
        assert runtime.leftovers(cid) == []
    else:
        stats = [line for line in text.splitlines() if line.startswith(tuple(MASKED))]
        assert stats == [f"{path} character special file 1:3" for path in MASKED], text


def scenario_race(root: str, victim: str, attacker: str, rootfs: str, tries: int) -> dict:
    rt = Runtime(root)
    runs = []
    try:
        steps = {"attacker": detached(rt, "run", "-d", "-b", attacker, rt.new_id())}
        steps["ready"] = wait_for(os.path.join(rootfs, "tmp", "swap-out"), "ready")
        for _ in range(tries):
            runs.append(result(rt.run("run", "-b", victim, rt.new_id())))
        open(os.path.join(rootfs, "tmp", "stop"), "w").close()
        steps["swapper"] = wait_for(os.path.join(rootfs, "tmp", "swap-out"), "done")
    finally:
        rt.cleanup()
    return {"steps": steps, "runs": runs}


@pytest.mark.slow
def test_dev_null_swapped_with_a_symlink_while_masking(runtime, hostile_bundle, canary,
                                                       tmp_path):
    """Container A, on the same rootfs and /dev, exchanges /dev/null with a symlink to /canary
    over and over while B is created with maskedPaths."""
    config = hostile_bundle.config
    config["mounts"] = [m for m in config["mounts"] if m["destination"] != "/dev"]
    config["mounts"].append({"destination": "/canary", "type": "bind", "source": canary.path,
                             "options": ["bind", "ro"]})
    open(os.path.join(hostile_bundle.rootfs, "canary"), "w").close()
    os.symlink("/canary", os.path.join(hostile_bundle.rootfs, "dev", "evil"))
    attacker = copy.deepcopy(config)
    attacker["process"]["args"] = ["sh", "-c",
                                   "/attack swap /dev/null /dev/evil /tmp/stop > /tmp/swap-out"]
    attacker_dir = tmp_path / "attacker"
    attacker_dir.mkdir()
    (attacker_dir / "config.json").write_text(json.dumps(attacker))
    hostile_bundle.process("sh", "-c", PROBE)
    found = sandboxed(scenario_race, root=runtime.root, victim=hostile_bundle.path,
                      attacker=str(attacker_dir), rootfs=hostile_bundle.rootfs, tries=30)
    assert "ready" in found["steps"]["ready"], found["steps"]
    assert "done" in found["steps"]["swapper"], found["steps"]
    assert canary.damage() == [], "the canary was written through a masked path"
    for run in found["runs"]:
        assert canary.token not in run["stdout"], f"a masked path showed the canary: {run}"
        if run["rc"] != 0:
            assert one_line_error(run["stderr"]), run
        else:
            stats = [line for line in run["stdout"].splitlines() if line.startswith(tuple(MASKED))]
            assert stats == [f"{path} character special file 1:3" for path in MASKED], run
