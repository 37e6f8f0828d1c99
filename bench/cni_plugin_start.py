"""What one CNI plugin process costs before it does any work: VERSION answered by our plugins
and by the reference plugins (containernetworking-plugins, Go), alternating call by call in one
run, beside the interpreter's own floor. The invoker's exec path (cni/exec.py: posix_spawn,
config on stdin, reply parsed) runs every side, so the caller's overhead is the same for all.

    .venv/bin/python bench/cni_plugin_start.py [--rounds 100]

Prints medians, p90, the ratio of medians of each plugin to its reference, and the load.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.stats import load, median, ms, p90  # noqa: E402
from cni.exec import run_plugin  # noqa: E402

VENV_BIN = os.path.dirname(sys.executable)
REFERENCE_DIR = "/usr/lib/cni"
PLUGINS = ("bridge", "host-local", "portmap", "loopback")
WARM_UP = 5


def sides() -> dict[str, tuple[list[str], dict]]:
    """label -> (argv, environment) of everything timed."""
    version = dict(os.environ, CNI_COMMAND="VERSION")
    out = {}
    for plugin in PLUGINS:
        out[f"reference {plugin}"] = ([os.path.join(REFERENCE_DIR, plugin)], version)
        out[f"pycni-{plugin}"] = ([os.path.join(VENV_BIN, f"pycni-{plugin}")], version)
    # The floor: the interpreter that runs nothing, without and with the venv's site work.
    out["python -I -S -c pass"] = ([sys.executable, "-I", "-S", "-c", "pass"], version)
    out["python -I -c pass"] = ([sys.executable, "-I", "-c", "pass"], version)
    return out


def spawn(argv: list[str], env: dict, stdin: bytes) -> None:
    if len(argv) == 1:
        reply = run_plugin(argv[0], env, stdin)
        if not reply or "supportedVersions" not in reply:
            raise SystemExit(f"{argv[0]}: not a VERSION reply: {reply!r}")
        return
    pid = os.posix_spawn(argv[0], argv, env)
    _, status = os.waitpid(pid, 0)
    if status:
        raise SystemExit(f"{argv}: exit status {status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    rounds = parser.parse_args().rounds
    stdin = json.dumps({"cniVersion": "1.0.0"}).encode()
    todo = sides()
    times: dict[str, list[float]] = {label: [] for label in todo}
    load_before = load()
    for i in range(WARM_UP + rounds):
        for label, (argv, env) in todo.items():
            t0 = time.perf_counter()
            spawn(argv, env, stdin)
            if i >= WARM_UP:
                times[label].append(time.perf_counter() - t0)
    print(f"One plugin process answering VERSION, {rounds} rounds, sides alternating")
    print(f"before: {load_before}\nafter:  {load()}")
    print(f"{'ms':24} {'median':>7} {'p90':>7}  ratio to reference (medians)")
    for label, samples in times.items():
        ratio = ""
        if label.startswith("pycni-"):
            ratio = f"{median(samples) / median(times['reference ' + label[6:]]):6.2f}"
        print(f"{label:24} {ms(median(samples))} {ms(p90(samples))}  {ratio}")


if __name__ == "__main__":
    main()
