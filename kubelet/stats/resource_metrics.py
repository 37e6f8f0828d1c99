"""/metrics/resource: the kubelet's resource metrics (pkg/kubelet/metrics/collectors
resource_metrics.go), what metrics-server scrapes: node, pod and container CPU time and
working set stamped with the time they were read, container start times, swap, and
scrape_error / resource_scrape_error (1 when the stats could not be read)."""
from __future__ import annotations

import logging
from collections.abc import Callable

from kubelet.stats.prometheus import Family, Sample, render
from kubelet.stats.provider import Snapshot
from cgroups.usage import Usage

log = logging.getLogger("kubelet.stats")

_SCRAPE_HELP = "1 if there was an error while getting container metrics, 0 otherwise"
_SWAP = "Reported only on non-windows systems"


def _ms(usage: Usage) -> int:
    return usage.timestamp // 1_000_000


def families(snap: Snapshot | None) -> list[Family]:
    """The families for a snapshot; None: the stats could not be read (scrape_error 1)."""
    error = 1.0 if snap is None else 0.0
    out = [Family("scrape_error", _SCRAPE_HELP, "gauge", [Sample(error)]),
           Family("resource_scrape_error", _SCRAPE_HELP, "gauge", [Sample(error)], "STABLE")]
    if snap is None:
        return out
    fam: dict[str, Family] = {}

    def add(name: str, help_text: str, kind: str, stability: str, sample: Sample) -> None:
        fam.setdefault(name, Family(name, help_text, kind, stability=stability)) \
            .samples.append(sample)

    n = snap.node
    add("node_cpu_usage_seconds_total", "Cumulative cpu time consumed by the node in "
        "core-seconds", "counter", "STABLE", Sample(n.cpu_ns / 1e9, {}, _ms(n)))
    add("node_memory_working_set_bytes", "Current working set of the node in bytes", "gauge",
        "STABLE", Sample(n.working_set, {}, _ms(n)))
    add("node_swap_usage_bytes", f"Current swap usage of the node in bytes. {_SWAP}", "gauge",
        "ALPHA", Sample(n.swap, {}, _ms(n)))
    for pod in snap.pods:
        ref = {"pod": pod.name, "namespace": pod.namespace}
        for c in pod.containers:
            labels = {"container": c.name, **ref}
            u = c.usage
            if c.start_time > 0:
                add("container_start_time_seconds", "Start time of the container since unix "
                    "epoch in seconds", "gauge", "STABLE", Sample(c.start_time, labels))
            add("container_cpu_usage_seconds_total", "Cumulative cpu time consumed by the "
                "container in core-seconds", "counter", "STABLE",
                Sample(u.cpu_ns / 1e9, labels, _ms(u)))
            add("container_memory_working_set_bytes", "Current working set of the container "
                "in bytes", "gauge", "STABLE", Sample(u.working_set, labels, _ms(u)))
            add("container_swap_usage_bytes", "Current amount of the container swap usage in "
                f"bytes. {_SWAP}", "gauge", "ALPHA", Sample(u.swap, labels, _ms(u)))
        if pod.usage is not None:
            u = pod.usage
            add("pod_cpu_usage_seconds_total", "Cumulative cpu time consumed by the pod in "
                "core-seconds", "counter", "STABLE", Sample(u.cpu_ns / 1e9, ref, _ms(u)))
            add("pod_memory_working_set_bytes", "Current working set of the pod in bytes",
                "gauge", "STABLE", Sample(u.working_set, ref, _ms(u)))
            add("pod_swap_usage_bytes", "Current amount of the pod swap usage in bytes. "
                f"{_SWAP}", "gauge", "ALPHA", Sample(u.swap, ref, _ms(u)))
    return out + list(fam.values())


def text(snapshot: Callable[[], Snapshot]) -> str:
    """The endpoint's body; a snapshot that fails is reported as scrape_error 1, as the
    kubelet does, not as an HTTP error."""
    try:
        snap = snapshot()
    except Exception:  # noqa: BLE001 - reported in the metrics themselves
        log.exception("reading the resource metrics failed")
        snap = None
    return render(families(snap))
