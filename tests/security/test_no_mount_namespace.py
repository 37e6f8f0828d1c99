"""A config without a mount namespace (no advisory: the worst bug, issue 19): the runtime must
chroot into the rootfs as runc does and never pivot, remount or detach its caller's root. Run in
the sandbox, whose mount namespace stands for the host's: its `/` line (root, options,
propagation) is the same before, during and after, and after delete its whole mount table is.
maskedPaths without a mount namespace may be refused instead, with one line."""
from __future__ import annotations

import json
import os

import pytest

from seclib import (ROOTFS_MARKER, Runtime, detached, mountinfo, one_line_error, result,
                    root_mount, sandboxed, wait_for)

pytestmark = pytest.mark.root


RUN_ARGS = ["ls", "-a", "/"]
CREATE_ARGS = ["sh", "-c", "ls -a / > /tmp/listing; echo listed >> /tmp/listing; sleep 1000"]


def _write(bundle: str, config: dict, args: list[str]) -> None:
    config["process"]["args"] = args
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)


def scenario_no_mount_namespace(root: str, bundle: str, config: dict, rootfs: str) -> dict:
    rt = Runtime(root)
    before = mountinfo()
    found: dict = {"root_before": root_mount(before)}
    try:
        _write(bundle, config, RUN_ARGS)
        found["run"] = result(rt.run("run", "-b", bundle, rt.new_id()))
        found["root_after_run"] = root_mount(mountinfo())
        _write(bundle, config, CREATE_ARGS)
        cid = rt.new_id()
        found["create"] = detached(rt, "create", "-b", bundle, cid)
        if found["create"]["rc"] != 0:
            return found
        found["start"] = result(rt.run("start", cid))
        found["listing"] = wait_for(os.path.join(rootfs, "tmp", "listing"), "listed")
        found["root_while_running"] = root_mount(mountinfo())
        found["delete"] = result(rt.run("delete", "--force", cid))
    finally:
        rt.cleanup()
        after = mountinfo()
        found["root_after_delete"] = root_mount(after)
        found["mounts_added"] = sorted(set(after) - set(before))
        found["mounts_removed"] = sorted(set(before) - set(after))
    return found


@pytest.mark.parametrize("masks", [True, False], ids=["masked-paths", "no-masked-paths"])
def test_no_mount_namespace_chroots_and_leaves_the_callers_mounts(runtime, hostile_bundle, masks):
    linux = hostile_bundle.config["linux"]
    linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "mount"]
    if not masks:
        linux.pop("maskedPaths", None)
        linux.pop("readonlyPaths", None)
    found = sandboxed(scenario_no_mount_namespace, root=runtime.root, bundle=hostile_bundle.path,
                      config=hostile_bundle.config, rootfs=hostile_bundle.rootfs)
    assert found["root_before"] == found["root_after_run"] == found["root_after_delete"], \
        f"the caller's root mount changed: {found}"
    assert found["mounts_added"] == [] and found["mounts_removed"] == [], found
    if masks and found["run"]["rc"] != 0:
        # Refusing maskedPaths without a mount namespace is allowed, as one line.
        assert one_line_error(found["run"]["stderr"]) and "maskedPaths" in found["run"]["stderr"]
        assert found["create"]["rc"] != 0 and one_line_error(found["create"]["stderr"]), found
        return
    assert found["run"]["rc"] == 0, found
    assert ROOTFS_MARKER in found["run"]["stdout"].split(), f"`run` not chrooted: {found}"
    assert found["create"]["rc"] == 0 and found["start"]["rc"] == 0, found
    assert ROOTFS_MARKER in found["listing"].split(), f"not chrooted into the rootfs: {found}"
    assert found["root_while_running"] == found["root_before"], found
    assert found["delete"]["rc"] == 0, found
