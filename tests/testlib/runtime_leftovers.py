"""What a CRI runtime (pycontainer-cri, or a pykubelet's in-process one) leaves in its state
directory when it was stopped or killed with pods still there, removed by its own code, and
the one cleanup loop of the tests' daemons: every step runs even if an earlier one failed."""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Callable, Iterable

from netns import links, named, rtnl

BIN = os.path.dirname(sys.executable)


def run_steps(steps: Iterable[Callable[[], object]]) -> list[BaseException]:
    """Runs every step; the errors they raised, in order."""
    errors: list[BaseException] = []
    for step in steps:
        try:
            step()
        except Exception as e:  # noqa: BLE001 - the next steps must run all the same
            errors.append(e)
    return errors


def remove_runtime_objects(state: str, image_root: str, cni_conf: str, cni_cache: str) -> None:
    """Every container and sandbox the runtime of `state` still records, removed by it."""
    if not os.path.isdir(state):
        return
    from cri.images import Images
    from cri.service import PycontainerRuntime

    runtime = PycontainerRuntime(state, Images(image_root), cni_conf, [BIN, "/usr/lib/cni"],
                                 cni_cache)
    try:
        runtime.adopt()
        for c in runtime.list_containers():
            runtime.remove_container(c.id)
        for s in runtime.list_pod_sandboxes():
            runtime.remove_pod_sandbox(s.id)
    finally:
        runtime.close()


def release_namespaces(state: str) -> None:
    """The sandboxes' network namespaces (bind-mounted files) and pinned namespaces."""
    from cri import pinns

    netns_dir = os.path.join(state, "netns")
    for name in named.list_names(netns_dir):
        named.delete(name, netns_dir)
    if os.path.isdir(netns_dir):
        named.release_dir(netns_dir)
    if os.path.isdir(os.path.join(state, "sandboxes")):
        pinns.release_shared_dir(os.path.join(state, "sandboxes"))


def unmount_below(directory: str) -> None:
    """Every mount below directory, deepest first, lazily (a process may still hold one)."""
    prefix = directory + "/"
    with open("/proc/self/mountinfo") as f:
        points = {line.split()[4].replace("\\040", " ") for line in f}
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def remove_link(name: str) -> None:
    with rtnl.RtnlSocket() as host:
        link = links.get_link(host, name)
        if link is not None:
            links.delete_link(host, link.index)


if __name__ == "__main__":
    # The cluster tests run it inside a node's network namespace (its bridge and CNI state):
    # python runtime_leftovers.py STATE IMAGE_ROOT CNI_CONF CNI_CACHE
    remove_runtime_objects(*sys.argv[1:])
