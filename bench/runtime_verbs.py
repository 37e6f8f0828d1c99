#!/usr/bin/env python3
"""Time the small verbs, create/start/kill/state/delete, of `pycontainer` against runc's.

One cycle per runtime per round, the two runtimes alternating round by round (so that drift in
the machine's load hits both), on the same busybox bundle running `sleep 100`. Prints each verb's
median and p90 per runtime, the ratio pycontainer/runc per verb and for the whole cycle, and the
machine's load before and after. As root:

    .venv/bin/python bench/runtime_verbs.py [--runs 100] [--runc /usr/sbin/runc]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bench.runtime_start import add_runtime_options, busybox_bundle, check_runc  # noqa: E402
from bench.stats import load  # noqa: E402
VERBS = ("create", "start", "kill", "state", "delete")
WARMUP = 5


def make_bundle(top: str) -> str:
    bundle, config = busybox_bundle(top, ["/bin/sleep", "100"])
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    return bundle


def timed(argv: list[str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def wait_stopped(runtime: list[str], cid: str) -> None:
    """kill only sends the signal: delete needs the init gone, as any caller of runc waits."""
    while True:
        out = subprocess.run([*runtime, "state", cid], check=True, capture_output=True).stdout
        if json.loads(out)["status"] == "stopped":
            return
        time.sleep(0.002)


def cycle(runtime: list[str], bundle: str, cid: str) -> dict[str, float]:
    times = {"create": timed([*runtime, "create", "--bundle", bundle, cid], bundle),
             "start": timed([*runtime, "start", cid], bundle),
             "state": timed([*runtime, "state", cid], bundle),
             "kill": timed([*runtime, "kill", cid, "KILL"], bundle)}
    wait_stopped(runtime, cid)
    times["delete"] = timed([*runtime, "delete", cid], bundle)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    add_runtime_options(parser)
    args = parser.parse_args()
    check_runc(args.runc)
    print(f"before: {load()}")
    with tempfile.TemporaryDirectory() as top:
        bundle = make_bundle(top)
        runtimes = {
            "runc": [args.runc, "--root", os.path.join(top, "runc-state")],
            "pycontainer": [args.pycontainer, "--root", os.path.join(top, "pyc-state")],
        }
        samples: dict[str, dict[str, list[float]]] = {
            name: {verb: [] for verb in (*VERBS, "cycle")} for name in runtimes}
        for i in range(args.runs + WARMUP):
            for name, runtime in runtimes.items():
                cid = f"bench-{name}-{os.getpid()}-{i}"
                # An absolute cgroupsPath for both: without one, runc nests the container's v1
                # cgroups under the caller's own.
                with open(os.path.join(bundle, "config.json")) as f:
                    config = json.load(f)
                config["linux"]["cgroupsPath"] = f"/pycontainer/{cid}"
                with open(os.path.join(bundle, "config.json"), "w") as f:
                    json.dump(config, f)
                times = cycle(runtime, bundle, cid)
                if i >= WARMUP:  # page cache, bytecode, the cgroup parents
                    for verb, t in times.items():
                        samples[name][verb].append(t)
                    samples[name]["cycle"].append(sum(times.values()))
    print(f"after:  {load()}")
    print(f"{'verb':8s} {'pycontainer median/p90 ms':>26s} {'runc median/p90 ms':>20s} {'ratio':>6s}")
    for verb in (*VERBS, "cycle"):
        row = []
        for name in ("pycontainer", "runc"):
            s = sorted(samples[name][verb])
            row.append((statistics.median(s), s[int(len(s) * 0.9)]))
        (pm, pp), (rm, rp) = row
        print(f"{verb:8s} {1000 * pm:14.1f} / {1000 * pp:6.1f}   {1000 * rm:9.1f} / {1000 * rp:6.1f}"
              f" {pm / rm:6.2f}")
    print(f"({args.runs} cycles each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
