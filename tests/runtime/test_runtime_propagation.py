"""Bidirectional mount propagation (critest's 'rshared' spec) through the real binary: with
rootfsPropagation rshared, a volume bound from a shared host mount stays a peer of it, so mounts
travel both ways. All of it runs in ../shared/sandbox.sh, whose private mount namespace takes
any mount a failure would leave behind."""
from __future__ import annotations

import os
import subprocess

import pytest

SANDBOX = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))), "shared", "sandbox.sh")

# Polls with a deadline: each side waits for the other's mount to show up.
CONTAINER = """
mount -t tmpfs from-container /vol/from-container && echo c > /vol/from-container/mark
i=0
while [ ! -e /vol/from-host/mark ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
cat /vol/from-host/mark 2>/dev/null || echo "no mount from the host"
"""

HOST = """
set -e
shared=$1; rootfs=$2; shift 2
# As containerd's overlay under a shared "/": the rootfs is a shared mount point itself.
mount --bind "$rootfs" "$rootfs"
mount --make-shared "$rootfs"
mount -t tmpfs vol "$shared"
mount --make-shared "$shared"
mkdir "$shared/from-container" "$shared/from-host"
"$@" > "$shared.out" 2>&1 &
runner=$!
i=0
while [ ! -e "$shared/from-container/mark" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
cat "$shared/from-container/mark" 2>/dev/null || echo "no mount from the container"
mount -t tmpfs from-host "$shared/from-host"
echo h > "$shared/from-host/mark"
wait $runner || echo "runner exit $?"
cat "$shared.out"
umount -R "$shared"
umount "$rootfs"
"""


def _run_with_volume(runtime, bundle, tmp_path, options: list[str]) -> subprocess.CompletedProcess:
    shared = tmp_path / "shared"
    shared.mkdir()
    bundle.config["mounts"].append({"destination": "/vol", "type": "bind",
                                    "source": str(shared), "options": options})
    bundle.config["linux"]["rootfsPropagation"] = "rshared"
    for kind in ("bounding", "effective", "permitted"):
        bundle.config["process"]["capabilities"][kind].append("CAP_SYS_ADMIN")
    bundle.process("sh", "-c", CONTAINER)
    cid = runtime.new_id()
    return subprocess.run([SANDBOX, "bash", "-c", HOST, "host", str(shared),
                           os.path.join(bundle.path, "rootfs"),
                           *runtime.argv("run", "--bundle", bundle.path, cid)],
                          capture_output=True, timeout=90)


@pytest.mark.root
def test_rshared_volume_propagates_both_ways(runtime, writable_bundle, tmp_path):
    out = _run_with_volume(runtime, writable_bundle, tmp_path, ["rbind", "rshared"])
    assert out.stdout.decode().split() == ["c", "h"], (out.stdout, out.stderr)
    assert runtime.leftovers(runtime.ids[-1]) == []
