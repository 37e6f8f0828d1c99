"""Garbage collection (the kubelet's container GC, run every minute): dead containers beyond
the newest maxPerPodContainer of each pod's container (the newest is what the status shows as
its last state), every container and sandbox of pods that are gone, sandboxes that are neither
ready nor their pod's newest, and, once the pod sources have listed everything, what pods that
no longer exist left: log directories and pod cgroups. Also what a crash mid-create left: a
directory without its record, a netns without its sandbox."""
from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable

from cri.api import CONTAINER_RUNNING, SANDBOX_READY, CRIError, RuntimeService
from kubelet import labels
from kubelet.cm.pod_cgroups import PodCgroups

log = logging.getLogger("kubelet.gc")


class GarbageCollector:
    def __init__(self, runtime: RuntimeService, remove_leftovers: Callable[[], None],
                 cgroups: PodCgroups, pod_logs_dir: str, max_per_pod_container: int,
                 known_pods: Callable[[], set[str]], sources_ready: Callable[[], bool]) -> None:
        """remove_leftovers: the in-process runtime's own cleanup of what a crash left, which
        no CRI verb asks for."""
        self.runtime = runtime
        self.remove_leftovers = remove_leftovers
        self.cgroups = cgroups
        self.pod_logs_dir = pod_logs_dir
        self.max_per_pod_container = max_per_pod_container
        self.known_pods = known_pods
        self.sources_ready = sources_ready

    def collect(self) -> None:
        # What exists first, then which pods are known: a pod that arrives in between is
        # known, and nothing of it is in the lists.
        containers = self.runtime.list_containers()
        sandboxes = self.runtime.list_pod_sandboxes()
        ready = self.sources_ready()
        known = self.known_pods()
        self._containers(containers, known, ready)
        self._sandboxes(sandboxes, known, ready)
        self.remove_leftovers()
        if ready:
            self._pod_dirs(known)

    def _remove_container(self, container_id: str, log_path: str) -> None:
        log.info("gc: removing container %s", container_id)
        try:
            self.runtime.remove_container(container_id)
        except CRIError as e:
            log.warning("gc: container %s: %s", container_id, e)
            return
        if log_path:
            try:
                os.unlink(log_path)
            except FileNotFoundError:
                pass

    def _containers(self, containers: list, known: set[str], ready: bool) -> None:
        units: dict[tuple[str, str], list] = {}
        for c in containers:
            if c.state == CONTAINER_RUNNING:
                continue
            units.setdefault((c.labels.get(labels.POD_UID, ""), c.metadata.name), []).append(c)
        for (pod_uid, _), dead in units.items():
            dead.sort(key=lambda c: c.created_at, reverse=True)
            keep = self.max_per_pod_container if pod_uid in known or not ready else 0
            for c in dead[keep:]:
                self._remove_container(c.id, c.log_path)

    def _sandboxes(self, sandboxes: list, known: set[str], ready: bool) -> None:
        by_pod: dict[str, list] = {}
        for s in sandboxes:
            by_pod.setdefault(s.metadata.uid, []).append(s)
        for pod_uid, of_pod in by_pod.items():
            of_pod.sort(key=lambda s: s.created_at, reverse=True)
            gone = ready and pod_uid not in known
            for i, s in enumerate(of_pod):
                if s.state == SANDBOX_READY and not gone:
                    continue
                if i == 0 and not gone:
                    continue
                if self.runtime.list_containers(sandbox_id=s.id) and not gone:
                    continue
                try:
                    self.runtime.remove_pod_sandbox(s.id)
                except CRIError as e:
                    log.warning("gc: sandbox %s: %s", s.id, e)

    def _pod_dirs(self, known: set[str]) -> None:
        with_containers = {c.labels.get(labels.POD_UID)
                           for c in self.runtime.list_containers()}
        with_sandboxes = {s.metadata.uid for s in self.runtime.list_pod_sandboxes()}
        in_use = known | with_containers | with_sandboxes
        try:
            names = os.listdir(self.pod_logs_dir)
        except FileNotFoundError:
            names = []
        for name in names:
            uid = name.rsplit("_", 1)[-1]
            if name.count("_") >= 2 and uid not in in_use:
                shutil.rmtree(os.path.join(self.pod_logs_dir, name), ignore_errors=True)
        for uid in self.cgroups.pod_uids():
            if uid not in in_use:
                self.cgroups.destroy(uid)
