"""/stats/summary: the kubelet's Summary API (k8s.io/kubelet/pkg/apis/stats/v1alpha1) as JSON:
the node's cpu, memory, network, fs, runtime image fs, rlimit and swap; each pod's containers
(cpu, memory, rootfs, logs, swap), its cpu, memory, network, ephemeral storage and process
count. Times are metav1.Time (RFC 3339, seconds); absent figures are left out, as Go's
omitempty pointers are."""
from __future__ import annotations

import os

from kubeapi import timefmt

from kubelet import machine
from kubelet.stats.node import Interface
from kubelet.stats.provider import Filesystem, PodSample, Snapshot
from cgroups.usage import Usage


def _cpu(u: Usage, nano_cores: int | None) -> dict:
    out: dict = {"time": timefmt.rfc3339(u.time)}
    if nano_cores is not None:
        out["usageNanoCores"] = nano_cores
    out["usageCoreNanoSeconds"] = u.cpu_ns
    return out


def _memory(u: Usage, limit: int | None) -> dict:
    out: dict = {"time": timefmt.rfc3339(u.time)}
    if limit:
        out["availableBytes"] = max(limit - u.working_set, 0)
    out.update(usageBytes=u.memory_usage, workingSetBytes=u.working_set, rssBytes=u.rss,
               pageFaults=u.page_faults, majorPageFaults=u.major_page_faults)
    return out


def _swap(u: Usage) -> dict:
    return {"time": timefmt.rfc3339(u.time), "swapUsageBytes": u.swap}


def _network(when: float, interfaces: list[Interface]) -> dict | None:
    if not interfaces:
        return None
    listed = [{"name": i.name, "rxBytes": i.rx_bytes, "rxErrors": i.rx_errors,
               "txBytes": i.tx_bytes, "txErrors": i.tx_errors} for i in interfaces]
    # The default interface is named at the top level, as the kubelet does for eth0.
    default = next((i for i in listed if i["name"] == "eth0"), listed[0])
    return {"time": timefmt.rfc3339(when), **default, "interfaces": listed}


def _fs(when: float, fs: Filesystem | None, used: int | None = None) -> dict | None:
    if fs is None:
        return None
    return {"time": timefmt.rfc3339(when), "availableBytes": fs.available,
            "capacityBytes": fs.capacity, "usedBytes": fs.used if used is None else used,
            "inodesFree": fs.inodes_free, "inodes": fs.inodes, "inodesUsed": fs.inodes_used}


def _put(target: dict, key: str, value: dict | None) -> None:
    if value is not None:
        target[key] = value


def _pod(p: PodSample, snap: Snapshot) -> dict:
    out: dict = {"podRef": {"name": p.name, "namespace": p.namespace, "uid": p.uid},
                 "startTime": timefmt.rfc3339(p.start_time), "containers": []}
    used_total = 0       # ephemeral storage: the containers' writable layers and logs
    for c in p.containers:
        entry: dict = {"name": c.name, "startTime": timefmt.rfc3339(c.start_time),
                       "cpu": _cpu(c.usage, c.nano_cores), "memory": _memory(c.usage, None)}
        if c.rootfs_used is not None:
            used_total += c.rootfs_used
            _put(entry, "rootfs", _fs(c.usage.time, snap.root_fs, c.rootfs_used))
        if c.logs_used is not None:
            used_total += c.logs_used
            _put(entry, "logs", _fs(c.usage.time, snap.logs_fs, c.logs_used))
        entry["swap"] = _swap(c.usage)
        out["containers"].append(entry)
    if p.usage is not None:
        out["cpu"] = _cpu(p.usage, p.nano_cores)
        out["memory"] = _memory(p.usage, None)
        _put(out, "network", _network(p.usage.time, p.interfaces))
        _put(out, "ephemeral-storage", _fs(p.usage.time, snap.root_fs, used_total))
        out["swap"] = _swap(p.usage)
    return out


def summary(snap: Snapshot) -> dict:
    n = snap.node
    node: dict = {"nodeName": snap.node_name, "startTime": timefmt.rfc3339(snap.node_start),
                  "cpu": _cpu(n, snap.node_nano_cores),
                  "memory": _memory(n, machine.meminfo().get("MemTotal", 0))}
    _put(node, "network", _network(n.time, snap.interfaces))
    _put(node, "fs", _fs(n.time, snap.root_fs))
    image_fs = _fs(n.time, snap.root_fs)
    if image_fs is not None:
        node["runtime"] = {"imageFs": image_fs, "containerFs": image_fs}
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            pid_max = int(f.read())
        processes = sum(1 for name in os.listdir("/proc") if name.isdigit())
        node["rlimit"] = {"time": timefmt.rfc3339(n.time), "maxpid": pid_max,
                          "curproc": processes}
    except (OSError, ValueError):
        pass
    node["swap"] = {"time": timefmt.rfc3339(n.time), "swapUsageBytes": n.swap}
    return {"node": node, "pods": [_pod(p, snap) for p in snap.pods]}
