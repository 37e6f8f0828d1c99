"""CPU of one exec (`true`) into a running busybox container, ours beside runc's, alternating
round by round in one run:

    ours   the shim's exec op (what a kubelet exec probe costs below the kubelet): the shim,
           what it forks, and what runs in the container's cgroup
    runc   `runc exec CONTAINER true`: runc's processes and what runs in the container's cgroup

    sudo .venv/bin/python bench/shim_exec_cpu.py [--rounds 6] [--execs 100] [--seccomp]

Ours is counted from a cpuacct cgroup holding this process (so the zygote and the shim it forks
for the container are in it) minus this process's own CPU, plus the container's cgroup; runc's
from the CPU of the children this process reaped, plus its container's cgroup. Per exec, each
round; the medians of the rounds and their ratio (issue 26's target: ours ≤ 0.2 of runc's
with the kubelet's share included). --seccomp gives both containers the RuntimeDefault profile
pods get from the kubelet's seccompDefault.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import shim  # noqa: E402
from runtime_start import add_runtime_options, busybox_bundle, check_runc  # noqa: E402
from stats import load, median  # noqa: E402

CPUACCT = "/sys/fs/cgroup/cpuacct"


def cgroup_ms(path: str) -> float:
    with open(f"{CPUACCT}{path}/cpuacct.usage") as f:
        return int(f.read()) / 1e6


def own_ms(who: int) -> float:
    usage = resource.getrusage(who)
    return (usage.ru_utime + usage.ru_stime) * 1000


def write_config(bundle: str, config: dict, cgroup: str) -> None:
    config["linux"]["cgroupsPath"] = cgroup
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)


def ours_per_exec(client: shim.ShimClient, shims_cgroup: str, container_cgroup: str,
                  execs: int) -> float:
    before = cgroup_ms(shims_cgroup) - own_ms(resource.RUSAGE_SELF) + cgroup_ms(container_cgroup)
    for _ in range(execs):
        result = client.exec(["true"], timeout=10)
        if result.exit_code != 0:
            raise SystemExit(f"exec true through the shim: {result}")
    after = cgroup_ms(shims_cgroup) - own_ms(resource.RUSAGE_SELF) + cgroup_ms(container_cgroup)
    return (after - before) / execs


def runc_per_exec(runc: list[str], container_cgroup: str, execs: int) -> float:
    before = own_ms(resource.RUSAGE_CHILDREN) + cgroup_ms(container_cgroup)
    for _ in range(execs):
        subprocess.run([*runc, "exec", "probe", "true"], check=True)
    return (own_ms(resource.RUSAGE_CHILDREN) + cgroup_ms(container_cgroup) - before) / execs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--execs", type=int, default=100, help="execs per side and round")
    parser.add_argument("--seccomp", action="store_true",
                        help="both containers with the RuntimeDefault seccomp profile")
    add_runtime_options(parser)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: containers need namespaces, cgroups and mounts")
    check_runc(args.runc)
    tag = f"execbench-{os.getpid()}"
    shims_cgroup, ours_cgroup, runc_cgroup = (f"/pycontainer/{tag}-{n}"
                                              for n in ("shims", "ours", "runc"))
    top = tempfile.mkdtemp(prefix="shim-exec-cpu-")
    os.makedirs(CPUACCT + shims_cgroup)
    with open(f"{CPUACCT}{shims_cgroup}/cgroup.procs", "w") as f:
        f.write(str(os.getpid()))  # the zygote this process starts, and its shims, count there
    runc = [args.runc, "--root", os.path.join(top, "runc-root")]
    shim_root = os.path.join(top, "shims")
    started = []
    try:
        bundle, config = busybox_bundle(top, ["sleep", "100000"])
        if args.seccomp:
            from cri.seccomp_profiles import runtime_default

            config["linux"]["seccomp"] = runtime_default(
                config["process"]["capabilities"]["bounding"])
        write_config(bundle, config, runc_cgroup)
        subprocess.run([*runc, "run", "-d", "-b", bundle, "probe"], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        started.append("runc")
        write_config(bundle, config, ours_cgroup)
        shim.start(shim.ShimConfig("probe", bundle, shim_root=shim_root,
                                   runtime_root=os.path.join(top, "runtime-root")))
        started.append("ours")
        ours, theirs = [], []
        with shim.connect("probe", shim_root) as client:
            ours_per_exec(client, shims_cgroup, ours_cgroup, 10)  # warm
            runc_per_exec(runc, runc_cgroup, 3)
            for _ in range(args.rounds):
                ours.append(ours_per_exec(client, shims_cgroup, ours_cgroup, args.execs))
                theirs.append(runc_per_exec(runc, runc_cgroup, args.execs))
        profile = ", RuntimeDefault seccomp profile" if args.seccomp else ""
        print(f"CPU per exec of `true`{profile}, {args.rounds} rounds of {args.execs} each, "
              f"{load()}")
        print(f"  ours (shim exec op)  median {median(ours):6.2f} ms  rounds "
              f"{' '.join(f'{x:.2f}' for x in ours)}")
        print(f"  runc exec            median {median(theirs):6.2f} ms  rounds "
              f"{' '.join(f'{x:.2f}' for x in theirs)}")
        print(f"  ratio ours/runc {median(ours) / median(theirs):.2f}")
    finally:
        if "ours" in started:
            with shim.connect("probe", shim_root) as client:
                client.shutdown()
        if "runc" in started:
            subprocess.run([*runc, "delete", "--force", "probe"])
        _stop_zygote(shim_root)
        with open(f"{CPUACCT}/cgroup.procs", "w") as f:
            f.write(str(os.getpid()))
        for cgroup in (shims_cgroup, ours_cgroup, runc_cgroup):
            try:
                os.rmdir(CPUACCT + cgroup)
            except OSError:
                pass
        shutil.rmtree(top, ignore_errors=True)
    return 0


def _stop_zygote(shim_root: str) -> None:
    directory = os.path.join(shim_root, "@zygote")
    for name in os.listdir(directory) if os.path.isdir(directory) else []:
        if name.endswith(".pid"):
            try:
                with open(os.path.join(directory, name)) as f:
                    pid = int(f.read())
                os.kill(pid, signal.SIGKILL)
                while os.path.exists(f"/proc/{pid}"):
                    time.sleep(0.05)
            except (OSError, ValueError):
                pass


if __name__ == "__main__":
    sys.exit(main())
