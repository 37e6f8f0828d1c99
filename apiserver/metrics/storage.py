"""The last two points of every node and container, kept as metrics-server's storage keeps
them: a new point moves the stored one to "previous" if it is newer; an older or equal one
keeps the stored previous if that is still older; a container that restarted starts over. A
container first seen between 10 s and one resolution after its start gets a synthetic
previous point (its start, no CPU) so that it has usage after a single scrape."""
from __future__ import annotations

import threading

from apiserver.metrics.points import Batch, Point, Usage, usage

FRESH_CONTAINER_MIN = 10.0       # seconds: closer to the start, the rate is too inaccurate

PodRef = tuple[str, str]         # (namespace, name)


def _keep_previous(new: Point, last: Point | None, prev: Point | None) -> Point | None:
    if last is None:
        return None
    if new.timestamp > last.timestamp:
        return last
    if prev is not None and prev.timestamp < new.timestamp:
        return prev
    return None


class MetricsStorage:
    def __init__(self, resolution: float) -> None:
        self.resolution = resolution
        self._nodes: dict[str, tuple[Point, Point | None]] = {}
        self._pods: dict[PodRef, dict[str, tuple[Point, Point | None]]] = {}
        self._lock = threading.Lock()

    def store(self, batches: dict[str, Batch]) -> None:
        """Replaces what is stored with the points of one scrape of every node (nodes and
        pods not in it are forgotten)."""
        with self._lock:
            nodes: dict[str, tuple[Point, Point | None]] = {}
            for name, batch in batches.items():
                if batch.node is None:
                    continue
                last, prev = self._nodes.get(name, (None, None))
                nodes[name] = (batch.node, _keep_previous(batch.node, last, prev))
            pods: dict[PodRef, dict[str, tuple[Point, Point | None]]] = {}
            for batch in batches.values():
                for ref, containers in batch.pods.items():
                    if ref in pods:
                        continue            # the same pod from two nodes: keep the first
                    stored = self._pods.get(ref, {})
                    pods[ref] = {name: (point, self._container_previous(point,
                                                                         stored.get(name)))
                                 for name, point in containers.items()}
            self._nodes, self._pods = nodes, pods

    def _container_previous(self, new: Point,
                            stored: tuple[Point, Point | None] | None) -> Point | None:
        age = new.timestamp - new.start_time
        if new.start_time and FRESH_CONTAINER_MIN <= age < self.resolution:
            return Point(new.start_time, 0, new.memory, new.start_time, new.swap)
        if stored is None:
            return None
        last, prev = stored
        if not new.start_time < last.timestamp:
            return None                     # restarted since the stored point
        return _keep_previous(new, last, prev)

    def node(self, name: str) -> Usage | None:
        with self._lock:
            last, prev = self._nodes.get(name, (None, None))
        return usage(last, prev) if last is not None and prev is not None else None

    def pod(self, ref: PodRef) -> tuple[float, float, dict[str, Usage]] | None:
        """(timestamp, window, usage by container) of a pod all of whose containers have
        two points; the earliest container's timestamp and window speak for the pod."""
        with self._lock:
            containers = self._pods.get(ref)
        if not containers:
            return None
        found: dict[str, Usage] = {}
        earliest: Usage | None = None
        for name, (last, prev) in containers.items():
            if prev is None:
                return None
            u = usage(last, prev)
            if u is None:
                continue
            found[name] = u
            if earliest is None or u.timestamp < earliest.timestamp:
                earliest = u
        if earliest is None:
            return None
        return earliest.timestamp, earliest.window, found
