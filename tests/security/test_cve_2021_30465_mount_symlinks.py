"""CVE-2021-30465 (a mount destination that is, or becomes, a symlink out of the rootfs) and
CVE-2019-16884 / CVE-2023-27561 (procfs mounted over a symlink): a bind destination through a
static symlink, then one that a second container swaps with a directory (renameat2 exchange) while
containers are created, must land inside the rootfs; an image whose /proc or /sys is a symlink is
refused with one line and leaves nothing."""
from __future__ import annotations

import copy
import json
import os
import uuid

import pytest

from seclib import (Runtime, detached, mountinfo, one_line_error, result, sandboxed, up,
                    wait_for)

pytestmark = pytest.mark.root

# In the container: where did the volume go? /data (inside the root, through the symlink as the
# container resolves it) is right; /elsewhere is where a symlink resolved on the host lands.
WHERE = ("[ -e /elsewhere/volume-file ] && echo ESCAPED; "
         "cat /data/volume-file 2>/dev/null; true")


@pytest.fixture
def volume(tmp_path) -> tuple[str, str]:
    path = tmp_path / f"volume-{uuid.uuid4().hex[:12]}"
    path.mkdir()
    token = f"volume-{uuid.uuid4().hex}"
    (path / "volume-file").write_text(token + "\n")
    return str(path), token


def _mounts_under(lines: list[str], *dirs: str) -> list[str]:
    return [line for line in lines if any(line.split()[4].startswith(d) for d in dirs)]


def scenario_run(root: str, bundle: str, watch: list[str]) -> dict:
    rt = Runtime(root)
    try:
        found = {"run": result(rt.run("run", "-b", bundle, rt.new_id()))}
    finally:
        rt.cleanup()
    found["mounts_left"] = _mounts_under(mountinfo(), *watch)
    return found


@pytest.mark.parametrize("link", ["relative-canary", "absolute-canary", "absolute-rootfs"])
def test_bind_through_a_static_symlink_lands_inside(runtime, hostile_bundle, canary, volume,
                                                    link):
    rootfs = hostile_bundle.rootfs
    os.mkdir(os.path.join(rootfs, "elsewhere"))
    target = {"relative-canary": up(12).rstrip("/") + canary.dir,
              "absolute-canary": canary.dir,
              "absolute-rootfs": os.path.join(rootfs, "elsewhere")}[link]
    os.symlink(target, os.path.join(rootfs, "data"))
    source, token = volume
    hostile_bundle.config["mounts"].append(
        {"destination": "/data", "type": "bind", "source": source, "options": ["rbind"]})
    hostile_bundle.process("sh", "-c", WHERE)
    found = sandboxed(scenario_run, root=runtime.root, bundle=hostile_bundle.path,
                      watch=[canary.dir, rootfs])
    run = found["run"]
    assert "ESCAPED" not in run["stdout"], f"the bind followed the symlink on the host: {found}"
    assert canary.damage() == [] and os.listdir(os.path.join(rootfs, "elsewhere")) == []
    assert found["mounts_left"] == []
    if run["rc"] != 0:
        assert one_line_error(run["stderr"]), found
    else:
        assert token in run["stdout"], f"the volume is not at /data in the container: {found}"


def volume_mount_points(mountinfo_text: str, volume: str) -> list[str]:
    """Where the container sees the volume mounted; a mount outside its root is not listed."""
    return [line.split()[4] for line in mountinfo_text.splitlines()
            if len(line.split()) > 4 and line.split()[3].endswith(volume)]


def scenario_race(root: str, victim: str, attacker: str, rootfs: str, tries: int,
                  volume: str) -> dict:
    rt = Runtime(root)
    outcomes: dict[str, list] = {"escaped": [], "inside": [], "refused": [], "other": []}
    before = mountinfo()
    try:
        steps = {"attacker": detached(rt, "run", "-d", "-b", attacker, rt.new_id())}
        steps["ready"] = wait_for(os.path.join(rootfs, "tmp", "swap-out"), "ready")
        for _ in range(tries):
            out = result(rt.run("run", "-b", victim, rt.new_id()))
            points = volume_mount_points(out["stdout"], volume)
            if out["rc"] == 0 and (points == [] or "/elsewhere" in points):
                outcomes["escaped"].append(points or "not in the container's mount table")
            elif out["rc"] == 0:
                outcomes["inside"].append(points)
            elif out["rc"] != 0 and one_line_error(out["stderr"]):
                outcomes["refused"].append(out["stderr"].strip()[-200:])
            else:
                outcomes["other"].append(out)
        open(os.path.join(rootfs, "tmp", "stop"), "w").close()
        steps["swapper"] = wait_for(os.path.join(rootfs, "tmp", "swap-out"), "done")
    finally:
        rt.cleanup()
    steps["mounts_added"] = sorted(set(mountinfo()) - set(before))
    return {"steps": steps, "outcomes": outcomes}


@pytest.mark.slow
def test_bind_destination_swapped_with_a_symlink(runtime, hostile_bundle, canary, volume,
                                                 tmp_path):
    """Container A swaps /shared/d between a directory and a symlink to a host path while B,
    on the same rootfs, is created over and over with a bind on /shared/d."""
    rootfs = hostile_bundle.rootfs
    os.mkdir(os.path.join(rootfs, "elsewhere"))
    os.makedirs(os.path.join(rootfs, "shared", "d"))
    os.symlink(os.path.join(rootfs, "elsewhere"), os.path.join(rootfs, "shared", "d.lnk"))
    attacker = copy.deepcopy(hostile_bundle.config)
    attacker["process"]["args"] = ["sh", "-c",
                                   "/attack swap /shared/d /shared/d.lnk /tmp/stop > /tmp/swap-out"]
    attacker_dir = tmp_path / "attacker"
    attacker_dir.mkdir()
    (attacker_dir / "config.json").write_text(json.dumps(attacker))
    source, token = volume
    hostile_bundle.config["mounts"].append(
        {"destination": "/shared/d", "type": "bind", "source": source, "options": ["rbind"]})
    hostile_bundle.process("cat", "/proc/self/mountinfo")
    found = sandboxed(scenario_race, root=runtime.root, victim=hostile_bundle.path,
                      attacker=str(attacker_dir), rootfs=rootfs, tries=40,
                      volume=os.path.basename(source))
    outcomes = found["outcomes"]
    assert "ready" in found["steps"]["ready"], found["steps"]
    # Inside the root is enough (/shared/d, or where the symlink leads when resolved in the
    # root); /elsewhere is where the host's resolution of the symlink leads.
    assert outcomes["escaped"] == [], f"the bind followed the host's symlink: {outcomes['escaped']}"
    assert outcomes["other"] == [], outcomes["other"]
    assert os.listdir(os.path.join(rootfs, "elsewhere")) == [] and canary.damage() == []
    assert found["steps"]["mounts_added"] == []


def scenario_create(root: str, bundle: str) -> dict:
    rt = Runtime(root)
    cid = rt.new_id()
    before = mountinfo()
    found = {"id": cid, "create": detached(rt, "create", "-b", bundle, cid)}
    if found["create"]["rc"] == 0:
        rt.cleanup()
    found["mounts_added"] = sorted(set(mountinfo()) - set(before))
    return found


@pytest.mark.parametrize("kind", ["proc", "sys"])
@pytest.mark.parametrize("target", ["inside", "host"])
def test_proc_or_sys_on_a_symlink_is_refused(runtime, hostile_bundle, canary, kind, target):
    rootfs = hostile_bundle.rootfs
    os.rmdir(os.path.join(rootfs, kind))
    if target == "inside":
        os.mkdir(os.path.join(rootfs, "fake" + kind))
        os.symlink("/fake" + kind, os.path.join(rootfs, kind))
    else:
        os.symlink(canary.dir, os.path.join(rootfs, kind))
    hostile_bundle.process("true")
    found = sandboxed(scenario_create, root=runtime.root, bundle=hostile_bundle.path)
    create = found["create"]
    assert create["rc"] != 0, f"/{kind} mounted over a symlink: {found}"
    assert one_line_error(create["stderr"]) and f"/{kind}" in create["stderr"], create
    assert found["mounts_added"] == [] and runtime.leftovers(found["id"]) == []
    assert canary.damage() == []
