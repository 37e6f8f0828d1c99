"""CVE-2024-21626 (runc "Leaky Vessels"): a host directory fd the runtime leaks into the container
(its state dir, a cgroup dir) is reachable as /proc/self/fd/N or /proc/1/fd/N; a cwd there, or a
`cd -P` through it, walks `..` up to the host's root. Tried as process.cwd, as `exec --cwd`, and
from `exec` against a created container's waiting init, with and without a user namespace."""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from typing import Iterator

import pytest

from seclib import (ROOTFS_MARKER, Runtime, add_user_namespace, detached, one_line_error, result,
                    sandboxed, up)

pytestmark = pytest.mark.root

FDS = range(3, 11)


def probe(canary_path: str) -> str:
    """sh that reports where its cwd leads: inside (the rootfs marker is at the top of the `..`
    climb) or outside, and tries to read and change the host canary through it."""
    canary_dir = os.path.dirname(canary_path)
    return (f"if [ -e {up()}{ROOTFS_MARKER} ]; then echo root:inside; else echo root:outside; fi; "
            f"cat {up()}{canary_path} 2>/dev/null; "
            f"echo pwned >> {up()}{canary_path} 2>/dev/null; "
            f"touch {up()}{canary_dir}/pwned 2>/dev/null; "
            f"for i in $(seq 24); do cd -P .. 2>/dev/null; done; "
            f"cat .{canary_path} 2>/dev/null; echo pwned >> .{canary_path} 2>/dev/null; true")


def scenario_process_cwd(root: str, bundle: str, config: dict, canary: str) -> dict:
    rt = Runtime(root)
    results = {}
    try:
        for n in ["control", *FDS]:
            config["process"]["cwd"] = "/" if n == "control" else f"/proc/self/fd/{n}"
            config["process"]["args"] = ["sh", "-c", probe(canary)]
            with open(os.path.join(bundle, "config.json"), "w") as f:
                json.dump(config, f)
            results[n] = result(rt.run("run", "-b", bundle, rt.new_id()))
    finally:
        rt.cleanup()
    return results


@contextmanager
def created(root: str, bundle: str) -> Iterator[tuple[Runtime, str, dict]]:
    """(runtime, container id, the result of `create`) of a container created from bundle;
    the runtime cleaned up after."""
    rt = Runtime(root)
    cid = rt.new_id()
    try:
        yield rt, cid, detached(rt, "create", "-b", bundle, cid)
    finally:
        rt.cleanup()


def scenario_exec_through_init_fds(root: str, bundle: str, canary: str) -> dict:
    with created(root, bundle) as (rt, cid, create):
        if create["rc"] != 0:
            return {"create": create}
        listed = rt.run("exec", cid, "ls", "/proc/1/fd")
        fds = set(range(0, 21)) | {int(n) for n in listed.stdout.split() if n.isdigit()}
        results = {"control": result(rt.run("exec", cid, "sh", "-c", probe(canary)))}
        for n in sorted(fds):
            script = f"cd -P /proc/1/fd/{n} 2>/dev/null || exit 0; {probe(canary)}"
            results[n] = result(rt.run("exec", cid, "sh", "-c", script))
    return results


def scenario_exec_cwd(root: str, bundle: str, canary: str, start: bool) -> dict:
    with created(root, bundle) as (rt, cid, create):
        if create["rc"] != 0:
            return {"create": create}
        if start:
            rt.run("start", cid)
        results = {}
        for n in ["control", *FDS]:
            cwd = "/" if n == "control" else f"/proc/self/fd/{n}"
            results[n] = result(rt.run("exec", "--cwd", cwd, cid, "sh", "-c", probe(canary)))
    return results


def assert_no_escape(results: dict, canary, refusals_allowed: bool) -> None:
    assert "create" not in results, f"the container did not start: {results.get('create')}"
    # The same probe from an honest cwd: the container works and the probe tells inside.
    control = results.pop("control")
    assert control["rc"] == 0 and "root:inside" in control["stdout"], control
    for n, r in results.items():
        where = f"fd {n}: {r}"
        assert canary.token not in r["stdout"], f"host canary read through {where}"
        assert "root:outside" not in r["stdout"], f"cwd outside the rootfs through {where}"
        if r["rc"] != 0:
            assert refusals_allowed and one_line_error(r["stderr"]), \
                f"refused without one clear line: {where}"
    assert canary.damage() == []


def _prepare(hostile_bundle, userns: bool) -> None:
    if userns:
        add_user_namespace(hostile_bundle.config)
    hostile_bundle.process("sleep", "60")


@pytest.mark.parametrize("userns", [False, True], ids=["root", "userns"])
def test_process_cwd_in_a_leaked_fd(runtime, hostile_bundle, canary, userns):
    """process.cwd /proc/self/fd/N: the start is refused with one line, or the cwd is inside."""
    _prepare(hostile_bundle, userns)
    results = sandboxed(scenario_process_cwd, root=runtime.root, bundle=hostile_bundle.path,
                        config=hostile_bundle.config, canary=canary.path)
    assert_no_escape(results, canary, refusals_allowed=True)


@pytest.mark.parametrize("userns", [False, True], ids=["root", "userns"])
def test_exec_cd_through_the_created_inits_fds(runtime, hostile_bundle, canary, userns):
    """`exec ID sh -c 'cd -P /proc/1/fd/N/..'` while PID 1 is the runtime's init waiting for
    start: no fd of it leads out of the rootfs."""
    _prepare(hostile_bundle, userns)
    results = sandboxed(scenario_exec_through_init_fds, root=runtime.root,
                        bundle=hostile_bundle.path, canary=canary.path)
    # `cd` itself is the attack: the exec must run, so no refusal is allowed.
    assert_no_escape(results, canary, refusals_allowed=False)


@pytest.mark.parametrize("start", [False, True], ids=["created", "running"])
@pytest.mark.parametrize("userns", [False, True], ids=["root", "userns"])
def test_exec_cwd_in_a_leaked_fd(runtime, hostile_bundle, canary, userns, start):
    """`exec --cwd /proc/self/fd/N`: refused with one line, or the cwd is inside the rootfs."""
    _prepare(hostile_bundle, userns)
    results = sandboxed(scenario_exec_cwd, root=runtime.root, bundle=hostile_bundle.path,
                        canary=canary.path, start=start)
    assert_no_escape(results, canary, refusals_allowed=True)
