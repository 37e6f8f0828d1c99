#!/usr/bin/env python3
"""Memory of idle shims, ours beside the references, in one run: PSS per shim process for 1, 10
and 50 idle containers (busybox `sleep`) each under

    pycontainer-shim          shim.start() (forked by the zygote; its own PSS shown apart)
    containerd-shim-runc-v2   a private containerd driven by ctr (runc underneath)
    conmon                    podman with private storage (its default runtime underneath)

PSS (/proc/PID/smaps_rollup) splits shared pages among their sharers, so it is the memory a
process really costs. Ours is measured twice: just started, and after one `state` and one
`exec` request each (the steady state of a shim with exec probes). Also prints the start
latency: from the library call (or `ctr run -d` / `podman run -d`) to "container running".

As root:   .venv/bin/python bench/shim_memory.py [--counts 1,10,50] [--skip containerd,conmon]
                                                     [--baseline TREE]
--baseline: the shims of another checkout beside ours, e.g. the code before a change:
`git archive COMMIT | tar -x -C TREE`, the built linux/_native.abi3.so and runtime/exec_stub copied
in, and `python -m compileall -q TREE` first (a package directory that gets its __pycache__ during
the run changes the code's fingerprint under the zygote's feet). Ours are this script's checkout.
Needs the apt packages containerd and podman (with conmon) for the references; a missing one is
skipped with a note.
"""
from __future__ import annotations

import argparse
import errno
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import shim  # noqa: E402
from runtime.default_spec import default_spec  # noqa: E402

SLEEP = ["sleep", "100000"]


def memory(pid: int) -> dict[str, int]:
    """Pss, Rss, Private_Dirty... of a process, in KiB."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[0].endswith(":"):
                fields[parts[0][:-1]] = int(parts[1])
    return fields


def summary(pids: list[int]) -> dict[str, float]:
    rows = [memory(p) for p in pids]
    return {k: statistics.mean(r[k] for r in rows) for k in ("Pss", "Rss", "Private_Dirty")}


def processes(comm: str, needle: str) -> list[int]:
    """PIDs whose comm is `comm` and whose command line mentions `needle` (ours, not others')."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/comm") as f:
                if f.read().strip() != comm:
                    continue
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if needle.encode() in f.read():
                    found.append(int(name))
        except OSError:
            pass
    return found


def busybox_tree(path: str) -> None:
    subprocess.run([os.path.join(REPO, "scripts", "busybox-rootfs.sh"), path], check=True)


# -- ours ----------------------------------------------------------------------------------------

def bench_ours(top: str, counts: list[int], trees: dict[str, str]) -> list[tuple]:
    """Our shims from each code tree (name -> checkout), the trees alternating count by count."""
    bundle = os.path.join(top, "bundle")
    os.mkdir(bundle)
    busybox_tree(os.path.join(bundle, "rootfs"))
    config = default_spec(unified_cgroups=False)
    config["process"].update(terminal=False, args=SLEEP)
    config["root"] = {"path": "rootfs", "readonly": True}
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    rows = []
    runtime_root = os.path.join(top, "rt")
    for n in counts:
        for index, (name, tree) in enumerate(trees.items()):
            rows += _shims_of_tree(name, tree, os.path.join(top, f"t{index}-{n}"), bundle,
                                   runtime_root, n)
    rows.append(("  bare create+start", 10, _bare_runtime(bundle, runtime_root), None))
    return rows


# Starts N shims with the code of one tree (its zygote too: the installed package may be another
# checkout), prints their PIDs and start times as a JSON line; on a line from stdin sends each a
# `state` and an `exec`; on the next one shuts them down and stops the zygote.
_SHIMS_PROGRAM = """
import json, os, signal, subprocess, sys, time
tree, bundle, root, runtime_root, n = sys.argv[1:6]
sys.path.insert(0, tree)
import shim
from shim import launch

def spawn_zygote(root):
    # As `python -I -m shim.zygote ROOT` runs it (shim.launch; the zygote's memory depends on
    # it: the shims' pages are its pages), from the tree.
    code = (f"import runpy, sys; sys.path.insert(0, {tree!r}); sys.argv[1:] = [{root!r}]; "
            "runpy._run_module_as_main('shim.zygote')")
    subprocess.run([sys.executable, "-I", "-c", code], cwd="/", env={"PATH": os.environ["PATH"]},
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True,
                   start_new_session=True)

launch._spawn_zygote = spawn_zygote
infos, times = [], []
try:
    for i in range(int(n)):
        begin = time.perf_counter()
        infos.append(shim.start(shim.ShimConfig(
            f"b{n}-{i}", bundle, log_path=os.path.join(root, "logs", f"{i}.log"),
            shim_root=root, runtime_root=runtime_root)))
        times.append(time.perf_counter() - begin)
    zygote = [int(open(os.path.join(root, "@zygote", f)).read())
              for f in os.listdir(os.path.join(root, "@zygote")) if f.endswith(".pid")]
    print(json.dumps({"pids": [i.pid for i in infos], "times": times, "zygote": zygote[0]}),
          flush=True)
    sys.stdin.readline()
    for info in infos:
        with shim.connect(info.id, root) as c:
            c.state()
            c.exec(["true"])
    print("{}", flush=True)
    sys.stdin.readline()
finally:
    for info in infos:
        try:
            with shim.connect(info.id, root) as c:
                c.shutdown()
        except shim.ShimError:
            pass
    for name in os.listdir(os.path.join(root, "@zygote")):
        if name.endswith(".pid"):
            os.kill(int(open(os.path.join(root, "@zygote", name)).read()), signal.SIGKILL)
"""


def _shims_of_tree(name: str, tree: str, root: str, bundle: str, runtime_root: str,
                   n: int) -> list[tuple]:
    proc = subprocess.Popen([sys.executable, "-c", _SHIMS_PROGRAM, tree, bundle, root,
                             runtime_root, str(n)], cwd="/", stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        started = json.loads(proc.stdout.readline())
        pids, times, zygote = started["pids"], started["times"], started["zygote"]
        time.sleep(1.0)
        rows = [(name, n, summary(pids), memory(zygote)["Pss"])]
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.stdout.readline()
        time.sleep(0.5)
        rows.append(("  after state+exec", n, summary(pids), memory(zygote)["Pss"]))
        rows.append(("  start latency", n, {
            "cold": times[0], "warm": statistics.median(times[1:]) if n > 1 else None}, None))
        return rows
    finally:
        proc.stdin.close()
        proc.wait()


# Python's floor for a shim: children forked from an interpreter that loaded what the zygote
# loads (and froze it as the zygote does), each blocked in select() and doing nothing else. What
# such a child keeps private is what CPython itself writes after a fork (its runtime state,
# reference counts of what the fork touches), below anything the shim's code could save.
_FLOOR_PROGRAM = """
import gc, os, select, sys
sys.path.insert(0, sys.argv[2])
from shim import runtime_cli, zygote
for name in runtime_cli.IN_PROCESS_MODULES:
    __import__(name)
gc.collect()
gc.freeze()
pids = []
for _ in range(int(sys.argv[1])):
    pid = os.fork()
    if pid == 0:
        select.select([sys.stdin], [], [])   # until the bench closes our stdin
        os._exit(0)
    pids.append(pid)
print(" ".join(map(str, pids)), flush=True)
select.select([sys.stdin], [], [])
"""


def python_floor(counts: list[int]) -> list[tuple]:
    rows = []
    for n in counts:
        proc = subprocess.Popen([sys.executable, "-I", "-c", _FLOOR_PROGRAM, str(n), REPO], cwd="/",
                                env={"PATH": os.environ["PATH"]},
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            pids = [int(p) for p in proc.stdout.readline().split()]
            time.sleep(1.0)
            rows.append(("  Python floor (idle fork)", n, summary(pids), memory(proc.pid)["Pss"]))
        finally:
            proc.stdin.close()   # the children and their parent see EOF and exit
            proc.wait()
    return rows


def _bare_runtime(bundle: str, runtime_root: str) -> dict:
    """What the runtime alone takes: `pycontainer create` + `start` (the shim's floor)."""
    runtime = shim.ShimConfig("x", bundle).runtime
    times = []
    for i in range(10):
        argv = [runtime, "--root", runtime_root]
        begin = time.perf_counter()
        subprocess.run([*argv, "create", "--bundle", bundle, f"bare{i}"], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        subprocess.run([*argv, "start", f"bare{i}"], check=True)
        times.append(time.perf_counter() - begin)
        subprocess.run([*argv, "delete", "--force", f"bare{i}"], check=True)
    return {"cold": times[0], "warm": statistics.median(times[1:])}


# -- containerd-shim-runc-v2 ---------------------------------------------------------------------

def _oci_archive(top: str, name: str) -> str:
    """A one-layer OCI image archive of a busybox tree, for `ctr image import`."""
    tree = os.path.join(top, "ctr-rootfs")
    busybox_tree(tree)
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        t.add(tree, arcname=".")
    blobs = {}

    def blob(data: bytes) -> tuple[str, int]:
        import hashlib

        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return f"sha256:{digest}", len(data)

    layer_digest, layer_size = blob(layer.getvalue())
    config_digest, config_size = blob(json.dumps({
        "architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}).encode())
    manifest_digest, manifest_size = blob(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": layer_size}]}).encode())
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
        "size": manifest_size, "annotations": {"io.containerd.image.name": name}}]}).encode()
    path = os.path.join(top, "image.tar")
    with tarfile.open(path, "w") as t:
        for member, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                             ("index.json", index),
                             *((f"blobs/sha256/{d}", b) for d, b in blobs.items())]:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def bench_containerd(top: str, counts: list[int]) -> list[tuple]:
    work = os.path.join(top, "containerd")
    os.mkdir(work)
    sock = os.path.join(work, "containerd.sock")
    with open(os.path.join(work, "config.toml"), "w") as f:
        f.write(f'version = 2\nroot = "{work}/root"\nstate = "{work}/state"\n'
                'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                f'[grpc]\n  address = "{sock}"\n[ttrpc]\n  address = "{sock}.ttrpc"\n')
    log = open(os.path.join(work, "containerd.log"), "w")
    daemon = subprocess.Popen(["containerd", "--config", os.path.join(work, "config.toml")],
                              stdout=log, stderr=log)
    ctr = ["ctr", "-a", sock, "-n", "shimbench"]
    image = "docker.io/local/shimbench:latest"
    rows = []
    try:
        for _ in range(100):
            if subprocess.run([*ctr, "version"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        subprocess.run([*ctr, "image", "import", _oci_archive(top, image)], check=True,
                       capture_output=True)
        for n in counts:
            ids, times = [], []
            try:
                for i in range(n):
                    cid = f"b{n}-{i}"
                    begin = time.perf_counter()
                    subprocess.run([*ctr, "run", "-d", "--runtime", "io.containerd.runc.v2", image,
                                    cid, *SLEEP], check=True, capture_output=True)
                    times.append(time.perf_counter() - begin)
                    ids.append(cid)
                time.sleep(1.0)
                pids = processes("containerd-shim", sock)
                rows.append(("containerd-shim-runc-v2", n, summary(pids),
                             memory(daemon.pid)["Pss"]))
                rows.append(("  ctr run -d latency", n,
                             {"cold": times[0], "warm": statistics.median(times[1:]) if n > 1
                              else None}, None))
            finally:
                for cid in ids:
                    subprocess.run([*ctr, "task", "kill", "-s", "KILL", cid], capture_output=True)
                for cid in ids:
                    for _ in range(50):
                        if subprocess.run([*ctr, "task", "rm", "-f", cid],
                                          capture_output=True).returncode == 0:
                            break
                        time.sleep(0.1)
                    subprocess.run([*ctr, "container", "rm", cid], capture_output=True)
    finally:
        daemon.terminate()
        daemon.wait()
        log.close()
        _unmount_under(work)
        for hierarchy in os.listdir("/sys/fs/cgroup"):
            try:
                os.rmdir(os.path.join("/sys/fs/cgroup", hierarchy, "shimbench"))
            except OSError:
                pass
    return rows


# -- conmon --------------------------------------------------------------------------------------

def bench_conmon(top: str, counts: list[int]) -> list[tuple]:
    work = os.path.join(top, "podman")
    os.makedirs(os.path.join(work, "tmp"))
    env = dict(os.environ, CONTAINERS_CONF=os.path.join(work, "containers.conf"),
               CONTAINERS_STORAGE_CONF=os.path.join(work, "storage.conf"))
    with open(env["CONTAINERS_CONF"], "w") as f:
        # podman's default nofile rlimit needs CAP_SYS_RESOURCE; no systemd here.
        f.write('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n[engine]\n'
                f'cgroup_manager = "cgroupfs"\nevents_logger = "file"\ntmp_dir = "{work}/tmp"\n')
    with open(env["CONTAINERS_STORAGE_CONF"], "w") as f:
        f.write(f'[storage]\ndriver = "overlay"\ngraphroot = "{work}/root"\n'
                f'runroot = "{work}/run"\n')
    tree = os.path.join(work, "rootfs")
    busybox_tree(tree)
    image = "localhost/shimbench:latest"
    # The containers' and conmon's cgroups under a parent of this run's own (podman's default,
    # libpod_parent, stays behind after `podman rm`), removed at the end.
    parent = f"shimbench-{os.getpid()}"
    rows = []

    def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["podman", *args], env=env, capture_output=True, check=check)

    try:
        with tarfile.open(os.path.join(work, "rootfs.tar"), "w") as t:
            t.add(tree, arcname=".")
        podman("import", "-q", os.path.join(work, "rootfs.tar"), image)
        for n in counts:
            times = []
            try:
                for i in range(n):
                    begin = time.perf_counter()
                    podman("run", "-d", "--network", "none", "--cgroup-parent", f"/{parent}",
                           "--name", f"b{n}-{i}", image, *SLEEP)
                    times.append(time.perf_counter() - begin)
                time.sleep(1.0)
                pids = processes("conmon", work)
                rows.append(("conmon", n, summary(pids), None))
                rows.append(("  podman run -d latency", n,
                             {"cold": times[0], "warm": statistics.median(times[1:]) if n > 1
                              else None}, None))
            finally:
                podman("rm", "-af", "-t", "0", check=False)
    finally:
        podman("rmi", "-af", check=False)
        _unmount_under(work)
        _remove_cgroup_trees(parent)
    return rows


def _remove_cgroup_trees(name: str) -> None:
    """/sys/fs/cgroup/*/NAME and the cgroups under it, deepest first. A cgroup is busy until the
    last of its processes is reaped (conmons end after `podman rm` returns): retried for 30 s."""
    directories = []
    for hierarchy in os.listdir("/sys/fs/cgroup"):
        top = os.path.join("/sys/fs/cgroup", hierarchy, name)
        directories += sorted((d for d, _, _ in os.walk(top)), key=len, reverse=True)
    deadline = time.monotonic() + 30
    for directory in directories:
        while True:
            try:
                os.rmdir(directory)
                break
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    print(f"(left {directory}: {e.strerror})", file=sys.stderr)
                    break
                time.sleep(0.2)


def _unmount_under(path: str) -> None:
    with open("/proc/self/mounts") as f:
        mounts = [line.split()[1] for line in f if line.split()[1].startswith(path + "/")]
    for mount in sorted(mounts, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)


def report(rows: list[tuple]) -> None:
    print(f"{'':28} {'N':>3} {'PSS/shim':>10} {'RSS/shim':>10} {'private':>10} {'parent PSS':>11}")
    for name, n, figures, parent in rows:
        if "cold" in figures:
            warm = f"{figures['warm'] * 1000:.0f} ms" if figures["warm"] is not None else "-"
            print(f"{name:28} {n:>3}   first {figures['cold'] * 1000:.0f} ms, median of the "
                  f"rest {warm}")
            continue
        parent_text = f"{parent:>8} KiB" if parent is not None else ""
        print(f"{name:28} {n:>3} {figures['Pss']:>6.0f} KiB {figures['Rss']:>6.0f} KiB "
              f"{figures['Private_Dirty']:>6.0f} KiB {parent_text:>11}")
    ours = {n: f["Pss"] for name, n, f, _ in rows if name == "pycontainer-shim"}
    for ref in ("containerd-shim-runc-v2", "conmon"):
        theirs = {n: f["Pss"] for name, n, f, _ in rows if name == ref}
        ratios = [f"N={n}: {ours[n] / theirs[n]:.2f}" for n in ours if theirs.get(n)]
        if ratios:
            print(f"PSS ratio pycontainer-shim / {ref}: {', '.join(ratios)}")
    print("parent PSS: the zygote (ours) or containerd (daemon); conmon has none.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1,10,50")
    parser.add_argument("--skip", default="", help="comma-separated: containerd, conmon")
    parser.add_argument("--baseline", metavar="TREE",
                        help="another checkout (e.g. `git worktree add /tmp/before COMMIT`) whose "
                             "shims are measured in the same run, alternating with ours")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("shim_memory.py: run as root")
    counts = [int(c) for c in args.counts.split(",")]
    skip = set(filter(None, args.skip.split(",")))
    rows = []
    top = tempfile.mkdtemp(prefix="shimbench", dir="/tmp")
    try:
        trees = {"pycontainer-shim": REPO}
        if args.baseline:
            trees["  baseline shim"] = os.path.abspath(args.baseline)
        rows += bench_ours(top, counts, trees)
        rows += python_floor(counts)
        for name, binary, bench in (("containerd", "containerd", bench_containerd),
                                    ("conmon", "podman", bench_conmon)):
            if name in skip:
                continue
            if not shutil.which(binary):
                print(f"({name}: {binary} not installed, skipped: apt-get install {binary})")
                continue
            rows += bench(top, counts)
    finally:
        _unmount_under(top)
        shutil.rmtree(top, ignore_errors=True)
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
