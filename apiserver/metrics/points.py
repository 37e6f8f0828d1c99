"""Metric points decoded from one scrape of a kubelet, and the usage two points of the same
node or container give (metrics-server's MetricsPoint, decodeBatch and resourceUsage): CPU is
the cumulative CPU time's rate between the points in nanocores, memory the later working set;
the timestamp is the later point's and the window the time between them."""
from __future__ import annotations

from dataclasses import dataclass, field

from apiserver.metrics.exposition import parse


@dataclass
class Point:
    timestamp: float = 0.0        # seconds since the epoch, when the kubelet read it
    cpu_ns: int = 0               # cumulative CPU time, core-nanoseconds
    memory: int = 0               # working set, bytes
    start_time: float = 0.0       # the container's start; 0 for a node
    swap: int = 0


@dataclass
class Batch:
    """One node's scrape: its own point (None if incomplete) and its pods' containers'."""
    node: Point | None
    pods: dict[tuple[str, str], dict[str, Point]] = field(default_factory=dict)


@dataclass
class Usage:
    nano_cores: int
    memory: int
    swap: int
    timestamp: float
    window: float                 # seconds


def decode(text: str, scrape_time: float) -> Batch:
    """A batch from /metrics/resource text; samples without a timestamp are stamped with
    the time of the request. Raises ExpositionError for malformed text."""
    node = Point()
    pods: dict[tuple[str, str], dict[str, Point]] = {}
    for s in parse(text):
        when = s.timestamp_ms / 1000 if s.timestamp_ms is not None else scrape_time
        if s.name.startswith("node_"):
            target = node
        elif s.name.startswith("container_"):
            key = (s.labels.get("namespace", ""), s.labels.get("pod", ""))
            target = pods.setdefault(key, {}).setdefault(s.labels.get("container", ""),
                                                         Point())
        else:
            continue
        if s.name in ("node_cpu_usage_seconds_total", "container_cpu_usage_seconds_total"):
            target.cpu_ns, target.timestamp = int(s.value * 1e9), when
        elif s.name in ("node_memory_working_set_bytes", "container_memory_working_set_bytes"):
            target.memory, target.timestamp = int(s.value), when
        elif s.name in ("node_swap_usage_bytes", "container_swap_usage_bytes"):
            target.swap, target.timestamp = int(s.value), when
        elif s.name == "container_start_time_seconds":
            target.start_time = s.value
    batch = Batch(node if node.timestamp and node.cpu_ns and node.memory else None)
    for ref, containers in pods.items():
        # A container without CPU time or memory makes its whole pod incomplete.
        if containers and all(c.cpu_ns and c.memory for c in containers.values()):
            batch.pods[ref] = containers
    return batch


def usage(last: Point, prev: Point) -> Usage | None:
    """None when the points do not follow each other (a restart, a counter going back)."""
    if last.start_time < prev.start_time or last.cpu_ns < prev.cpu_ns:
        return None
    # Microseconds at most: the timestamps are milliseconds (a fresh container's start has
    # microseconds), and float noise must not show in the printed window.
    window = round(last.timestamp - prev.timestamp, 6)
    if window <= 0:
        return None
    return Usage(int((last.cpu_ns - prev.cpu_ns) / window), last.memory, last.swap,
                 last.timestamp, window)
