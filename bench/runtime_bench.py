"""What the runtime benches (runtime_start, runtime_verbs) share: the two runtimes they time
side by side, from the command line, and a busybox bundle to run them on."""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    parser.add_argument("--pycontainer",
                        default=os.path.join(os.path.dirname(sys.executable), "pycontainer"))


def check_runc(runc: str) -> None:
    if not os.path.exists(runc):
        sys.exit(f"runc not found at {runc}: apt-get install runc")


def busybox_bundle(top: str, args: list[str]) -> tuple[str, dict]:
    """top/bundle with a busybox rootfs, and the default config running args (not written:
    each bench sets its own cgroup path)."""
    from runtime.default_spec import default_spec

    bundle = os.path.join(top, "bundle")
    os.mkdir(bundle)
    subprocess.run([os.path.join(REPO, "scripts", "busybox-rootfs.sh"),
                    os.path.join(bundle, "rootfs")], check=True)
    config = default_spec(unified_cgroups=False)
    config["process"]["terminal"] = False
    config["process"]["args"] = args
    return bundle, config
