"""Liveness, readiness and startup probes (the kubelet's prober manager and workers): one
thread per probe of each running container, asleep between periods. Results follow the
kubelet's rules: readiness starts failed and liveness succeeded until the thresholds say
otherwise; startup gates the other two; a liveness or startup failure asks the pod's next sync
to kill the container, which the restart policy then restarts. Every change wakes the pod's
worker so that its status is written at once."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from cri.api import CONTAINER_RUNNING, RuntimeService
from kubelet.events import WARNING, EventRecorder
from kubelet.pod_runtime import PodRuntime
from kubelet.pods import Pod
from kubelet.prober.handlers import Target, run
from kubelet.prober.metrics import ProbeCounts

log = logging.getLogger("kubelet.probes")

LIVENESS, READINESS, STARTUP = "Liveness", "Readiness", "Startup"
FIELDS = {LIVENESS: "livenessProbe", READINESS: "readinessProbe", STARTUP: "startupProbe"}


class ProbeSpec:
    """A probe with the API's defaults."""

    __slots__ = ("handler", "initial_delay", "period", "timeout", "success_threshold",
                 "failure_threshold", "grace")

    def __init__(self, raw: dict, kind: str) -> None:
        self.handler = raw
        self.initial_delay = int(raw.get("initialDelaySeconds") or 0)
        self.period = max(int(raw.get("periodSeconds") or 10), 1)
        self.timeout = max(int(raw.get("timeoutSeconds") or 1), 1)
        # Liveness and startup need one success to count as healthy (the API enforces 1).
        self.success_threshold = 1 if kind != READINESS else \
            max(int(raw.get("successThreshold") or 1), 1)
        self.failure_threshold = max(int(raw.get("failureThreshold") or 3), 1)
        self.grace = raw.get("terminationGracePeriodSeconds")


class _Worker:
    """Probes one container one way until stopped."""

    def __init__(self, manager: ProbeManager, pod: Pod, kind: str, container: dict,
                 container_id: str, target: Target) -> None:
        self.manager = manager
        self.pod = pod
        self.uid = pod.uid
        self.pod_name = pod.full_name
        self.kind = kind
        self.name = container["name"]
        self.container_id = container_id
        self.spec = ProbeSpec(container[FIELDS[kind]], kind)
        self.target = target
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"probe-{kind[0].lower()}-{container_id[:8]}")

    def _run(self) -> None:
        successes = failures = 0
        if self.stop.wait(self.spec.initial_delay):
            return
        while True:
            if self.kind == STARTUP or self.manager.started(self.container_id):
                ok, message = run(self.spec.handler, self.target, self.spec.timeout)
                if self.stop.is_set():
                    return
                self.manager.counts.add(self.kind, ok, self.name, self.pod)
                successes, failures = (successes + 1, 0) if ok else (0, failures + 1)
                if not ok:
                    log.info("%s probe failed for %s of %s: %s", self.kind, self.name,
                             self.pod_name, message)
                    self.manager.events.pod(self.pod, WARNING, "Unhealthy",
                                            f"{self.kind} probe failed: {message}", self.name)
                if successes >= self.spec.success_threshold:
                    self.manager.record(self, True, message)
                    if self.kind == STARTUP:
                        return  # once started, a container stays started
                elif failures >= self.spec.failure_threshold:
                    self.manager.record(self, False, message)
                    if self.kind != READINESS:
                        return  # the container is to be killed: nothing more to learn
            if self.stop.wait(self.spec.period):
                return


class ProbeManager:
    def __init__(self, runtime: RuntimeService, wake: Callable[[str], None],
                 host_ip: str, events: EventRecorder) -> None:
        self.runtime = runtime
        self.events = events
        self.wake = wake
        self.host_ip = host_ip
        self.counts = ProbeCounts()
        self._lock = threading.Lock()
        self._workers: dict[tuple[str, str], _Worker] = {}       # (container ID, kind)
        self._results: dict[tuple[str, str], bool] = {}          # (container ID, kind)
        # pod UID -> container ID -> (container name, message, grace override)
        self._failed: dict[str, dict[str, tuple[str, str, int | None]]] = {}

    # -- what pod sync and pod status ask -----------------------------------------------------

    def update(self, pod: Pod, runtime: PodRuntime) -> None:
        """Probes every running app container of the pod that has probes, and forgets
        containers that stopped."""
        uid = pod.uid
        pod_ip = self.host_ip if pod.host_network else (runtime.ips or [""])[0]
        wanted: dict[tuple[str, str], tuple[dict, str]] = {}
        if not pod.is_deleted:
            for container in pod.containers:
                latest = runtime.latest(container["name"])
                if latest is None or latest.state != CONTAINER_RUNNING:
                    continue
                for kind, field in FIELDS.items():
                    if container.get(field):
                        wanted[(latest.id, kind)] = (container, latest.id)
        started: list[_Worker] = []
        with self._lock:
            for key, worker in list(self._workers.items()):
                if worker.uid == uid and key not in wanted:
                    self._drop(key)
            for key, (container, container_id) in wanted.items():
                if key not in self._workers:
                    worker = _Worker(self, pod, key[1], container, container_id,
                                     Target(self.runtime, container_id, container, pod_ip))
                    self._workers[key] = worker
                    started.append(worker)
            live = {cid for cid, _ in wanted}
            failed = self._failed.get(uid, {})
            for cid in list(failed):
                if cid not in live:
                    del failed[cid]
        for worker in started:
            worker.thread.start()

    def ready(self, pod: Pod, status: dict) -> bool:
        """A container's `ready`: running, started, and its readiness probe (if any) passed."""
        if "running" not in status["state"]:
            return False
        container_id = _runtime_id(status)
        if not self.started(container_id):
            return False
        container = next((c for c in pod.containers if c["name"] == status["name"]), {})
        if not container.get(FIELDS[READINESS]):
            return True
        with self._lock:
            return self._results.get((container_id, READINESS), False)

    def started_status(self, pod: Pod, status: dict) -> bool:
        """A container's `started`: running, and its startup probe (if any) passed."""
        return "running" in status["state"] and self.started(_runtime_id(status))

    def started(self, container_id: str) -> bool:
        with self._lock:
            if (container_id, STARTUP) not in self._workers and \
                    (container_id, STARTUP) not in self._results:
                return True
            return self._results.get((container_id, STARTUP), False)

    def failed(self, uid: str) -> dict[str, tuple[str, str, int | None]]:
        """Containers of the pod whose liveness or startup probe failed: ID -> (name, why,
        the probe's terminationGracePeriodSeconds)."""
        with self._lock:
            return dict(self._failed.get(uid, {}))

    def remove_pod(self, uid: str) -> None:
        with self._lock:
            for key, worker in list(self._workers.items()):
                if worker.uid == uid:
                    self._drop(key)
            self._failed.pop(uid, None)

    def stop(self) -> None:
        with self._lock:
            for key in list(self._workers):
                self._drop(key)

    # -- what the workers report --------------------------------------------------------------

    def record(self, worker: _Worker, ok: bool, message: str) -> None:
        key = (worker.container_id, worker.kind)
        with self._lock:
            if self._workers.get(key) is not worker:
                return  # dropped meanwhile
            changed = self._results.get(key) != ok
            self._results[key] = ok
            if not ok and worker.kind != READINESS:
                why = f"Container {worker.name} failed {worker.kind.lower()} probe, will be " \
                      "restarted"
                grace = worker.spec.grace
                self._failed.setdefault(worker.uid, {})[worker.container_id] = (
                    worker.name, why, None if grace is None else int(grace))
                log.info("%s: %s", worker.pod_name, why)
        if changed or (not ok and worker.kind != READINESS):
            self.wake(worker.uid)

    # -- inside ---------------------------------------------------------------------------------

    def _drop(self, key: tuple[str, str]) -> None:
        worker = self._workers.pop(key, None)
        if worker is not None:
            worker.stop.set()
            self.counts.forget(worker.kind, worker.name, worker.uid)
        self._results.pop(key, None)


def _runtime_id(status: dict) -> str:
    return (status.get("containerID") or "").split("://", 1)[-1]
