"""The Kubelet: puts the parts together and implements what they call back. Pods arrive from the
sources (sources/) and go to their workers (sync/workers), whose syncs go through sync/syncer to
the runtime service (the interface cri.api: cri.service in this process, or any CRI runtime
over its socket, runtime_connect); each sync's
result becomes the pod's status (pod_status), written by the status manager. Beside them: the
Node and its Lease, container exit events, log rotation, garbage collection and the HTTPS
server."""
from __future__ import annotations

import logging
import os
import threading
import time

from cri.api import CONTAINER_RUNNING, NotFound
from cri.service import check_root_dir
from kubeapi.informer import Informer
from kubeapi.kubeconfig import Connection
from kubeapi.quantity import parse_quantity
from kubeapi.restclient import ApiClient
from kubelet import VERSION, machine, runtime_connect
from kubelet.cm import admission, eviction
from kubelet.cm.eviction import EvictionManager
from kubelet.cm.pod_cgroups import PodCgroups
from kubelet.config import KubeletConfig
from kubelet.config_objects import ConfigObjects
from kubelet.events import WARNING, EventRecorder
from kubelet.gc import GarbageCollector
from kubelet.logs import LogRotator
from kubelet.nodestatus import node_status
from kubelet.nodestatus.lease import LeaseRenewer
from kubelet.nodestatus.node_status import NodeStatus
from kubelet.object_cache import ObjectCache
from kubelet.pod_runtime import PodRuntime
from kubelet.pods import TERMINAL_PHASES, Pod
from kubelet.prober.manager import ProbeManager
from kubelet.server import serving_cert
from kubelet.server.metrics import MetricsEndpoints
from kubelet.server.streaming import Streaming, StreamLookupError
from kubelet.server.server import KubeletServer, LogNotFound, TokenReviewer
from kubelet.sources.api import ApiPodSource
from kubelet.sources.mirror import MirrorPods
from kubelet.sources.static import FilePodSource
from kubelet.stats.provider import StatsProvider
from kubelet.status import pod_status
from kubelet.status.manager import StatusManager
from kubelet.supervisor import supervise
from kubelet.sync.etc_files import PodEtcFiles
from kubelet.sync.security_context import SeccompSettings
from kubelet.sync.syncer import PodSyncer
from kubelet.sync.workers import PodWorkers
from kubelet.volumes.manager import Volumes

log = logging.getLogger("kubelet")

HOUSEKEEPING_INTERVAL = 2.0
SERVICES_SYNC_WAIT = 5.0    # seconds the pod sources wait for the first list of Services
GC_INTERVAL = 60.0
EVICTION_INTERVAL = 10.0        # the eviction manager's monitoring period
# A watch of a pod's ConfigMap or Secret that nobody read for this many sync periods stops
# (env-only objects are read at container starts only); the reference's figures.
OBJECT_IDLE_SYNC_PERIODS = 5
OBJECT_IDLE_MIN = 60.0


class Kubelet:
    def __init__(self, config: KubeletConfig, conn: Connection | None, host_ip: str) -> None:
        """Whatever the configuration may get wrong fails here before anything is made: the
        client CA, the server's port and certificate, then the runtime's directories."""
        self.config = config
        self.host_ip = host_ip
        if not config.container_runtime_endpoint:     # a remote runtime's shims are its own
            check_root_dir(config.root_dir)
        client_ca = conn.ca_pem if conn is not None else b""
        if config.client_ca_file:
            with open(config.client_ca_file, "rb") as f:
                client_ca = f.read()
        reviewer = TokenReviewer(conn) if conn is not None and config.webhook_auth else None

        def certificate() -> tuple[str, str]:
            if config.tls_cert_file:
                return config.tls_cert_file, config.tls_private_key_file
            return serving_cert.ensure(f"{config.root_dir}/pki", config.node_name, host_ip)
        self.server = KubeletServer(config.address, config.port, certificate, client_ca,
                                    reviewer, config.anonymous_auth, self.find_log)
        self.client = ApiClient(conn, f"pykubelet/{VERSION}") if conn else None
        self.events = EventRecorder(self.client, config.node_name)
        self.cri = runtime_connect.connect(config)
        self.images = self.cri.images
        self.runtime = self.cri.service
        self.cgroups = PodCgroups(config.cgroup_root, config.pod_pids_limit)
        memory_total = machine.meminfo().get("MemTotal", 0)
        self._apparmor_enabled = machine.apparmor_enabled()
        # Every Service, for the pods' service environment variables (the service lister).
        self.service_cache = Informer(self.client, "/api/v1/services") if self.client else None
        self.object_cache = ObjectCache(self.client, max(
            OBJECT_IDLE_SYNC_PERIODS * config.sync_frequency, OBJECT_IDLE_MIN)) \
            if self.client else None
        self.volumes = Volumes(config.root_dir, ConfigObjects(self.client, self.service_cache,
                                                              self.object_cache),
                               os.cpu_count() or 1, memory_total)
        etc_files = PodEtcFiles(config.root_dir, config.resolv_conf, config.cluster_dns,
                                config.cluster_domain)
        seccomp = SeccompSettings(os.path.join(config.root_dir, "seccomp"),
                                  config.seccomp_default)
        self.syncer = PodSyncer(self.runtime, self.images, self.cgroups, config.pod_logs_dir,
                                self.volumes, host_ip, self.events, etc_files, memory_total,
                                seccomp)
        self.status = StatusManager(self.client)
        self.workers = PodWorkers(self, config.sync_frequency)
        self.probes = ProbeManager(self.runtime, self.workers.wake, host_ip, self.events)
        self.eviction = EvictionManager(config, self.runtime, self.cgroups,
                                        self.workers.active_pods, self.evict)
        self.rotator = LogRotator(self.runtime, config.container_log_max_size,
                                  config.container_log_max_files)
        self.sources: list[ApiPodSource | FilePodSource] = []
        self._by_source: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        if self.client is not None:
            self.sources.append(ApiPodSource(self.client, config.node_name, self))
        if config.static_pod_path:
            self.sources.append(FilePodSource(config.static_pod_path, config.node_name, self,
                                              config.file_check_frequency))
        self.gc = GarbageCollector(self.runtime, self.cri.remove_leftovers, self.cgroups,
                                   config.pod_logs_dir, config.max_per_pod_container,
                                   lambda: set(self.workers.known()), self.sources_ready)
        self.node_status = NodeStatus(self.client, config, host_ip, lambda: self.server.port,
                                      self.network_not_ready, self.images,
                                      self.events) if self.client \
            else None
        self.lease = LeaseRenewer(self.client, config.node_name,
                                  config.node_lease_duration_seconds,
                                  lambda: self.node_status.uid,
                                  self.node_status.registered) if self.client else None
        self.mirrors = MirrorPods(self.client, config.node_name, lambda: self.node_status.uid,
                                  self.status.resend) if self.client else None
        if self.mirrors is not None:
            self.status.mirror_uid = self.mirrors.uid
        self.runtime.subscribe(lambda event: self.workers.wake(event.pod_uid))
        self.server.metrics = MetricsEndpoints(StatsProvider(
            config.node_name, self.runtime, self.cgroups, self.workers.known, self.status.get,
            config.root_dir, config.pod_logs_dir, self.cri.image_store), self.runtime,
            self.probes.counts)
        self.server.streaming = Streaming(self.runtime, self.running_container,
                                          self.running_sandbox)

    # -- running ------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self.cri.adopt()
        if self.service_cache is not None:
            self.service_cache.start()
        self.server.start()
        log.info("kubelet %s serving on %s:%d", self.config.node_name, self.config.address,
                 self.server.port)
        loops = [self._housekeeping, self.eviction.run]
        if self.node_status is not None:
            loops += [self.node_status.run, self.lease.run]
        if self.mirrors is not None:
            loops.append(self.mirrors.run)
        for loop in loops:
            supervise(loop.__qualname__, loop, stop)
        if self.service_cache is not None:
            # A pod's containers cannot start before the first list of Services: the pod
            # sources wait for it (bounded: an API server that does not answer lists no pods).
            self.service_cache.wait_for_sync(SERVICES_SYNC_WAIT)
        for source in self.sources:
            supervise(source.run.__qualname__, source.run, stop)
        stop.wait()
        if self.service_cache is not None:
            self.service_cache.stop()
        for source in self.sources:
            source.stop()
        if self.object_cache is not None:
            self.object_cache.stop()
        if self.mirrors is not None:
            self.mirrors.stop()
        self.workers.stop()
        self.probes.stop()
        self.events.stop()
        self.status.stop()
        self.server.stop()
        self.cri.close()

    def sources_ready(self) -> bool:
        return all(s.synced.is_set() for s in self.sources)

    def _housekeeping(self, stop: threading.Event) -> None:
        next_gc = next_rotation = next_eviction = 0.0
        collected_once = False
        while not stop.wait(HOUSEKEEPING_INTERVAL):
            now = time.monotonic()
            try:
                if now >= next_eviction:
                    self._evict_over_local_storage()
                    next_eviction = now + EVICTION_INTERVAL
                if now >= next_rotation:
                    self.rotator.rotate_all()
                    next_rotation = now + self.config.container_log_monitor_interval
                # The first collection as soon as every source listed its pods: what a pod
                # deleted while the kubelet was down left goes right away.
                if now >= next_gc or (not collected_once and self.sources_ready()):
                    self.gc.collect()
                    self._remove_orphaned_volumes()
                    if self.object_cache is not None:
                        self.object_cache.stop_idle()
                    collected_once = collected_once or self.sources_ready()
                    next_gc = now + GC_INTERVAL
            except Exception:  # noqa: BLE001 - housekeeping goes on next round
                log.exception("housekeeping failed")

    def _evict_over_local_storage(self) -> None:
        """A pod whose emptyDir outgrew its sizeLimit fails with reason Evicted."""
        for pod in self.workers.known().values():
            status = self.status.get(pod.uid) or {}
            if status.get("phase") in TERMINAL_PHASES or pod.is_deleted or \
                    eviction.critical(pod):
                continue
            message = self.volumes.over_limit(pod)
            if message is None:
                continue
            log.warning("evicting %s: %s", pod.full_name, message)
            self.evict(pod, message)

    def _remove_orphaned_volumes(self) -> None:
        """Volumes of pods this kubelet no longer knows (removed while it was down)."""
        if not self.sources_ready():
            return
        on_disk = self.volumes.pod_uids()
        known = self.workers.known()
        for uid in on_disk:
            if uid not in known:
                log.info("removing the volumes of orphaned pod %s", uid)
                self.volumes.teardown(uid)

    def network_not_ready(self) -> str:
        ready, reason, message = self.cri.network_ready()
        if ready:
            return ""
        return (f"container runtime network not ready: NetworkReady=false reason:{reason} "
                f"message:{message}")

    # -- pods from the sources ----------------------------------------------------------------

    def set_pods(self, source: str, pod_list: list[Pod]) -> None:
        if self.mirrors is not None:
            if source == FilePodSource.name:
                self.mirrors.set_static(pod_list)
            else:
                self.mirrors.set_mirrors([pod for pod in pod_list if pod.is_mirror])
        pod_list = [pod for pod in pod_list if not pod.is_mirror]
        uids = {pod.uid for pod in pod_list}
        with self._lock:
            gone = self._by_source.get(source, set()) - uids
            self._by_source[source] = uids
        known = self.workers.known()
        for pod in pod_list:
            self._pod(pod)
        for uid in gone:
            if uid in known:
                self.workers.update(known[uid], removed=True)

    def pod_event(self, source: str, kind: str, pod: Pod) -> None:
        if pod.is_mirror:
            if self.mirrors is not None:
                self.mirrors.mirror_event(kind, pod)
            return
        uid = pod.uid
        with self._lock:
            uids = self._by_source.setdefault(source, set())
            if kind == "DELETED":
                uids.discard(uid)
            else:
                uids.add(uid)
        if kind == "DELETED":
            self.workers.update(pod, removed=True)
        else:
            self._pod(pod)

    def _pod(self, pod: Pod) -> None:
        if pod.uid not in self.workers.known():
            verdict = admission.admit(pod, self.workers.active_pods(), self._admission_node())
            if not verdict.admit and not pod.is_terminal:
                log.warning("pod %s rejected: %s", pod.full_name, verdict.message)
                status = self._generate(pod, PodRuntime(pod.uid), terminal=True)
                status.update(phase="Failed", reason=verdict.reason, message=verdict.message)
                self.status.set(pod, status)
                self.workers.reject(pod)
                return
        if self.object_cache is not None:
            # As the reference's pod manager: a pod in a terminal phase reads no more objects.
            if pod.is_terminal:
                self.object_cache.unregister(pod.uid)
            else:
                self.object_cache.register(pod)
        self.workers.update(pod)

    def _admission_node(self) -> admission.Node:
        allocatable = node_status.resources(self.config)[1]
        return admission.Node(
            cpu=int(parse_quantity(allocatable["cpu"]) * 1000),
            memory=int(parse_quantity(allocatable["memory"])), max_pods=self.config.max_pods,
            allowed_unsafe_sysctls=self.config.allowed_unsafe_sysctls,
            apparmor_enabled=self._apparmor_enabled)

    def evict(self, pod: Pod, message: str) -> None:
        """The pod ends Failed/Evicted, its containers killed at once (the kubelet's evictions,
        for memory pressure or an emptyDir over its sizeLimit, grant no grace period)."""
        status = self._generate(pod, PodRuntime.read(self.runtime, pod.uid), False)
        status.update(phase="Failed", reason="Evicted", message=message)
        self.status.set(pod, status)
        self.events.pod(pod, WARNING, "Evicted", message)
        self.workers.terminate(pod.uid, grace_override=0)

    # -- what the pod workers call ------------------------------------------------------------

    def _generate(self, pod: Pod, runtime: PodRuntime, terminal: bool) -> dict:
        old = self.status.get(pod.uid) or pod.status
        return pod_status.generate(pod, runtime, old, self.syncer.reasons(pod.uid),
                                   self.host_ip, terminal, self.probes.ready,
                                   self.probes.started_status)

    def _set_status(self, pod: Pod, terminal: bool) -> dict:
        runtime = PodRuntime.read(self.runtime, pod.uid)
        if not terminal:
            self.probes.update(pod, runtime)
        status = self._generate(pod, runtime, terminal)
        self.status.set(pod, status)
        return status

    def sync_pod(self, pod: Pod) -> tuple[bool, float | None]:
        status = self._set_status(pod, False)
        if status["phase"] in TERMINAL_PHASES:
            if status.get("reason") == pod_status.DEADLINE_EXCEEDED[0]:
                self.events.pod(pod, WARNING, *pod_status.DEADLINE_EXCEEDED)
            return True, None
        for container_id, (name, why, grace) in self.probes.failed(pod.uid).items():
            log.info("killing %s of %s: %s", name, pod.full_name, why)
            self.syncer.stop_container(pod, container_id, name, grace, why=why)
        retry = self.syncer.sync(pod)
        status = self._set_status(pod, False)
        if status["phase"] in TERMINAL_PHASES:
            if status.get("reason") == pod_status.DEADLINE_EXCEEDED[0]:
                self.events.pod(pod, WARNING, *pod_status.DEADLINE_EXCEEDED)
            return True, retry
        left = pod_status.past_active_deadline(pod, status["startTime"])
        if left != float("inf"):
            retry = left if retry is None else min(retry, left)
        return False, retry

    def sync_terminating_pod(self, pod: Pod, grace_override: int | None) -> None:
        self._set_status(pod, False)
        self.probes.remove_pod(pod.uid)
        self.syncer.kill_pod(pod, PodRuntime.read(self.runtime, pod.uid), grace_override)
        if PodRuntime.read(self.runtime, pod.uid).running():
            raise RuntimeError(f"pod {pod.full_name} still has running containers")
        self._set_status(pod, True)

    def sync_terminated_pod(self, pod: Pod) -> None:
        self.cgroups.destroy(pod.uid)
        self._set_status(pod, True)
        if pod.is_deleted:
            self.status.delete_when_written(pod)

    def remove_pod(self, pod: Pod) -> None:
        if self.object_cache is not None:
            self.object_cache.unregister(pod.uid)
        self.probes.remove_pod(pod.uid)
        self.syncer.remove_pod(pod)
        self.status.forget(pod.uid)
        self.eviction.forget(pod.uid)

    # -- the server's log lookup --------------------------------------------------------------

    def _pod_named(self, namespace: str, name: str) -> Pod | None:
        return next((pod for pod in self.workers.known().values()
                     if pod.namespace == namespace and pod.name == name), None)

    def _streaming_pod(self, namespace: str, name: str) -> Pod:
        pod = self._pod_named(namespace, name)
        if pod is None:
            raise StreamLookupError(404, "pod does not exist")
        return pod

    def running_container(self, namespace: str, name: str, uid: str, container: str) -> str:
        """The ID of the pod's running container of that name (for exec, attach, run), in
        the kubelet's words when there is none (it looks among running containers only, and
        a uid that is not the pod's finds none)."""
        pod = self._streaming_pod(namespace, name)
        latest = None
        if not uid or uid == pod.uid:
            latest = PodRuntime.read(self.runtime, pod.uid).latest(container)
        if latest is None or latest.state != CONTAINER_RUNNING:
            raise StreamLookupError(500, f'container not found ("{container}")')
        return latest.id

    def running_sandbox(self, namespace: str, name: str, uid: str) -> str:
        """The ID of the pod's ready sandbox (for port-forward), in the kubelet's words."""
        pod = self._streaming_pod(namespace, name)
        if uid and uid != pod.uid:
            raise StreamLookupError(404, "pod not found")
        sandbox = PodRuntime.read(self.runtime, pod.uid).ready_sandbox()
        if sandbox is None:
            raise StreamLookupError(500, f'pod not found ("{name}_{namespace}")')
        return sandbox.id

    def find_log(self, namespace: str, name: str, container: str, previous: bool):
        pod = self._pod_named(namespace, name)
        if pod is None:
            raise LogNotFound(404, f'pod "{name}" in namespace "{namespace}" not found')
        if container not in {c["name"] for c in pod.all_containers}:
            raise LogNotFound(400, f'container "{container}" in pod "{name}" is not available')
        of_name = PodRuntime.read(self.runtime, pod.uid).of_name(container)
        if previous:
            if len(of_name) < 2:
                raise LogNotFound(400, f'previous terminated container "{container}" in pod '
                                  f'"{name}" not found')
            chosen = of_name[1]
        else:
            if not of_name:
                reason = self.syncer.reasons(pod.uid).get(container, ("ContainerCreating",
                                                                            ""))[0]
                raise LogNotFound(400, f'container "{container}" in pod "{name}" is waiting to '
                                  f"start: {reason}")
            chosen = of_name[0]

        def running() -> bool:
            try:
                return self.runtime.container_status(chosen.id).state == CONTAINER_RUNNING
            except NotFound:
                return False
        return chosen.log_path, running
