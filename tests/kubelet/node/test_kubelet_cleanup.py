"""50 pods created and deleted leave nothing behind: no netns, veth, IP allocation, cgroup,
mount, shim, runtime state, record, snapshot or log directory."""
from __future__ import annotations

import os
import signal

import pytest

import shim
from kubelet_testlib import pod_manifest, wait_for
from netns import links, named, rtnl
from overlay import snapshots
from overlay.store import Store

pytestmark = [pytest.mark.root, pytest.mark.slow]
PODS = 50


def mounts_below(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p.startswith(path + "/")]


def leftovers(kubelet) -> dict[str, object]:
    with rtnl.RtnlSocket() as host:
        bridge = links.get_link(host, kubelet.bridge)
        ports = links.ports_of(host, bridge.index) if bridge else []
    kubepods = f"/sys/fs/cgroup/memory{kubelet.cgroup_root}/kubepods"
    ipam = os.path.join(kubelet.ipam, kubelet.network)
    root = kubelet.root
    return {
        "veths on the bridge": ports,
        "IP allocations": [n for n in os.listdir(ipam) if n[0].isdigit()]
        if os.path.isdir(ipam) else [],
        "netns": os.listdir(os.path.join(root, "netns")),
        "pod cgroups": [n for level in ("", "/burstable", "/besteffort")
                        if os.path.isdir(kubepods + level)
                        for n in os.listdir(kubepods + level) if n.startswith("pod")],
        "pod dirs": os.listdir(os.path.join(root, "pods"))
        if os.path.isdir(os.path.join(root, "pods")) else [],
        "mounts": [m for m in mounts_below(root)
                   if m not in (f"{root}/netns", f"{root}/sandboxes")],
        "snapshots": [k for k in snapshots.list_keys(Store(kubelet.image_root))
                      if os.path.isdir(os.path.join(root, "containers", k))],
        "shims": [n for n in os.listdir(kubelet.shim_root) if not n.startswith("@")],
        "shim processes": len(kubelet.shim_processes()),
        "runtime state": os.listdir(os.path.join(root, "runtime"))
        if os.path.isdir(os.path.join(root, "runtime")) else [],
        "sandbox records": os.listdir(os.path.join(root, "sandboxes")),
        "container records": os.listdir(os.path.join(root, "containers")),
        "pod log dirs": os.listdir(kubelet.pod_logs) if os.path.isdir(kubelet.pod_logs) else [],
        "CNI cache": os.listdir(os.path.join(kubelet.dir, "cni-cache", "results"))
        if os.path.isdir(os.path.join(kubelet.dir, "cni-cache", "results")) else [],
    }


def test_50_pods_created_and_deleted_leave_nothing_behind(api, start_kubelet, namespace):
    kubelet = start_kubelet()
    for i in range(PODS):
        api.create_pod(namespace, pod_manifest(f"p{i}", kubelet.node,
                                               "echo started; exec sleep 1000", grace=1))
    wait_for(lambda: sum(1 for p in api.pods(namespace)
                         if p["status"].get("phase") == "Running") == PODS, timeout=120,
             interval=0.5, what=f"{PODS} pods Running")
    during = leftovers(kubelet)
    assert len(during["netns"]) == PODS and len(during["veths on the bridge"]) == PODS
    for i in range(PODS):
        api.delete_pod(namespace, f"p{i}")
    wait_for(lambda: not api.pods(namespace), timeout=120, interval=0.5, what="pods deleted")
    wait_for(lambda: not any(v for k, v in leftovers(kubelet).items() if k != "shim processes")
             and leftovers(kubelet)["shim processes"] <= 1, timeout=30,
             what=lambda: f"nothing left: {leftovers(kubelet)}")


def test_a_pod_whose_shims_were_killed_is_deleted_to_nothing(api, start_kubelet, namespace):
    """Shims killed under running containers: the containers are orphans, which the kubelet
    removes through the shim library (shim.remove_dead) once the pod is deleted."""
    kubelet = start_kubelet()
    api.create_pod(namespace, pod_manifest("orphaned", kubelet.node, "exec sleep 1000",
                                           restart_policy="Never", grace=1))
    wait_for(lambda: api.pod(namespace, "orphaned")["status"].get("phase") == "Running",
             timeout=60, what="the pod Running")
    killed = shim.list_shims(kubelet.shim_root)
    assert killed
    for info in killed:
        os.kill(info.pid, signal.SIGKILL)
    api.delete_pod(namespace, "orphaned")
    wait_for(lambda: not api.pods(namespace), timeout=60, what="the pod deleted")
    wait_for(lambda: not any(v for k, v in leftovers(kubelet).items() if k != "shim processes")
             and leftovers(kubelet)["shim processes"] <= 1, timeout=30,
             what=lambda: f"nothing left: {leftovers(kubelet)}")
    assert not [i.container_pid for i in killed if _running(i.container_pid)]
    assert "Traceback" not in kubelet.log()


def _running(pid: int) -> bool:
    """Not gone and not a zombie (one whose parent was its killed shim waits for init)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_what_a_crash_mid_create_left_is_collected(start_kubelet):
    """Directories without their record and a named netns without its sandbox, as a kubelet
    killed mid-create leaves them: the restarted kubelet's first collection removes them."""
    kubelet = start_kubelet()
    kubelet.kill()
    half_made = [os.path.join(kubelet.root, "containers", "c0ffee"),
                 os.path.join(kubelet.root, "sandboxes", "5a5a5a", "ns")]
    for path in half_made:
        os.makedirs(path)
    named.create("5a5a5a", os.path.join(kubelet.root, "netns"))
    kubelet.start()
    wait_for(lambda: not any(os.path.exists(p) for p in half_made) and
             "5a5a5a" not in os.listdir(os.path.join(kubelet.root, "netns")), timeout=60,
             what=lambda: f"nothing left: {leftovers(kubelet)}")
