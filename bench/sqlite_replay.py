"""Many watches resuming together from far behind on the SQLite log (issue 25): peak RSS and
wall time of N threads each replaying the last --behind changes of the pods prefix, taken as
the cursor gives them (each event dropped once seen, as the watch path does) against held as
one list (what events_since returned before), each side in a fresh process, alternating.

    .venv/bin/python bench/sqlite_replay.py --watches 200 --behind 10000 --rounds 2
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from apiserver.storage.sqlite import SQLiteStorage  # noqa: E402


def pod(i: int, round_: int) -> bytes:
    """A pod as the server stores it, ~2.5 KB of JSON (zlib: ~0.8 KB)."""
    return json.dumps({
        "metadata": {"name": f"p{i:05}", "namespace": "bench", "uid": f"{i:08x}-{round_:04x}",
                     "labels": {"app": "hollow"}, "creationTimestamp": "2026-12-07T06:00:00Z",
                     "managedFields": [{"manager": "hollow", "operation": "Update",
                                        "fieldsV1": {"f:status": {"f:phase": {}}}}]},
        "spec": {"nodeName": f"hollow-{i % 1000:04}", "containers": [{
            "name": "c", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
        "status": {"phase": "Running", "podIP": f"198.19.{i // 256 % 256}.{i % 256}",
                   "conditions": [{"type": t, "status": "True",
                                   "lastTransitionTime": "2026-12-07T06:00:00Z"}
                                  for t in ("Initialized", "Ready", "ContainersReady",
                                            "PodScheduled")] * 3,
                   "containerStatuses": [{"name": "c", "ready": True, "restartCount": round_,
                                          "containerID": f"hollow://{i:08x}/{round_}"}]},
    }).encode()


def fill(path: str, changes: int) -> int:
    """About `changes` updates of up to 2,000 pods, 16 writers at a time (group commits); the
    revision before them."""
    s = SQLiteStorage(path, history=changes + 2000)
    try:
        keys = [f"/registry/pods/bench/p{i:05}" for i in range(min(2000, changes))]
        revs = {k: s.create(k, pod(i, 0)).rev for i, k in enumerate(keys)}
        start = s.current_revision()

        def writer(part: list[str], rounds: int) -> None:
            for r in range(1, rounds + 1):
                for k in part:
                    revs[k] = s.update(k, pod(int(k[-5:]), r), revs[k]).rev
        rounds = -(-changes // len(keys))
        threads = [threading.Thread(target=writer, args=(keys[j::16], rounds))
                   for j in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return start
    finally:
        s.close()


def replay(path: str, since: int, watches: int, held: bool) -> dict:
    s = SQLiteStorage(path, history=10 ** 9)
    counts = []

    def one() -> None:
        events = s.events_since(since, "/registry/pods/")
        if held:
            events = list(events)
        n = 0
        for _ in events:
            n += 1
        counts.append(n)
    threads = [threading.Thread(target=one) for _ in range(watches)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    s.close()
    return {"wall_s": round(wall, 2), "peak_rss_mib": round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "events_each": counts[0] if counts else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watches", type=int, default=200)
    parser.add_argument("--behind", type=int, default=10000, help="changes each replays")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--side", choices=("stream", "list"), help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--since", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:   # one side, in a process of its own
        print(json.dumps(replay(args.db, args.since, args.watches, args.side == "list")))
        return
    for name in ("watches", "behind", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: must be at least 1")
    root = tempfile.mkdtemp(prefix="sqlite-replay-")
    try:
        db = os.path.join(root, "state.db")
        since = fill(db, args.behind)
        print(f"{args.watches} watches each replaying {args.behind} pod changes; "
              f"load {os.getloadavg()[0]:.1f} at start", flush=True)
        for r in range(args.rounds):
            for side in ("stream", "list"):
                out = subprocess.run(
                    [sys.executable, __file__, "--side", side, "--db", db, "--since", str(since),
                     "--watches", str(args.watches)], capture_output=True, text=True, check=True)
                print(f"round {r + 1} {side:6} {out.stdout.strip()}", flush=True)
        print(f"load {os.getloadavg()[0]:.1f} at end")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
