#!/usr/bin/env python3
"""Time `pycontainer run` against `runc run` on the same busybox bundle running /bin/true.

Alternates the two runtimes run by run (so that drift in the machine's load hits both), and
prints each one's median, p90 and the ratio pycontainer/runc, and the machine's load. With
--floor, the same loop also times what no Python runtime can go under: the bare interpreter
(`python -I -S -c pass`), the venv's interpreter with its site and .pth files (`python -c pass`),
and a clone+exec+wait of /bin/true from `python -I -S`. As root:

    .venv/bin/python bench/runtime_start.py [--runs 200] [--floor] [--runc /usr/sbin/runc]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bench.stats import load  # noqa: E402


# What both runtime benches set up (runtime_verbs imports it): the two runtimes to time, from
# the command line, and a busybox bundle to run them on.
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


def time_one(argv: list[str], bundle: str, config: dict, cgroup: str) -> float:
    # An absolute cgroupsPath for both: without one, runc nests the container's v1 cgroups
    # under the caller's own.
    config["linux"]["cgroupsPath"] = cgroup
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    cwd = bundle
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def floor_commands(python: str) -> dict[str, list[str]]:
    spawn = "import os; os.waitpid(os.posix_spawn('/bin/true', ['true'], {}), 0)"
    return {"python -I -S -c pass": [python, "-I", "-S", "-c", "pass"],
            "python -c pass (venv)": [python, "-c", "pass"],
            "python -I -S, spawn true": [python, "-I", "-S", "-c", spawn]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--floor", action="store_true", help="also time the floor commands")
    add_runtime_options(parser)
    args = parser.parse_args()
    check_runc(args.runc)
    floor = floor_commands(sys.executable) if args.floor else {}
    print(f"before: {load()}")
    with tempfile.TemporaryDirectory() as top:
        bundle, config = busybox_bundle(top, ["/bin/true"])
        runtimes = {
            "runc": [args.runc, "--root", os.path.join(top, "runc-state"), "run"],
            "pycontainer": [args.pycontainer, "--root", os.path.join(top, "pyc-state"), "run"],
        }
        times: dict[str, list[float]] = {name: [] for name in [*runtimes, *floor]}
        for i in range(args.runs + 5):
            for name, argv in runtimes.items():
                cid = f"bench-{name}-{os.getpid()}-{i}"
                elapsed = time_one([*argv, cid], bundle, config, f"/pycontainer/{cid}")
                if i >= 5:  # warm-up: page cache, bytecode, the cgroup parents
                    times[name].append(elapsed)
            for name, argv in floor.items():
                start = time.perf_counter()
                subprocess.run(argv, check=True)
                if i >= 5:
                    times[name].append(time.perf_counter() - start)
    print(f"after:  {load()}")
    for name, samples in times.items():
        samples.sort()
        print(f"{name:26s} median {1000 * statistics.median(samples):6.1f} ms   "
              f"p90 {1000 * samples[int(len(samples) * 0.9)]:6.1f} ms   ({len(samples)} runs)")
    ratio = statistics.median(times["pycontainer"]) / statistics.median(times["runc"])
    print(f"ratio pycontainer/runc (median): {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
