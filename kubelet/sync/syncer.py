"""Doing what pod_actions decided (the kubelet's SyncPod, killPod and pod removal): the
sandbox, image pulls per imagePullPolicy with their back-off, init containers one at a time,
app containers with CrashLoopBackOff, graceful kills. Each container that cannot start leaves
its reason (ErrImagePull, CrashLoopBackOff, ...) for pod_status."""
from __future__ import annotations

import logging
import os
import shutil
import threading
import time

from cri.api import (CONTAINER_EXITED, CONTAINER_RUNNING, CRIError, ImageService, PodSandboxConfig,
                     PodSandboxMetadata, PortMapping, RuntimeService)
from kubelet import downward, labels, machine
from kubelet.cm import qos
from kubelet.cm.pod_cgroups import PodCgroups
from kubelet.events import NORMAL, WARNING, EventRecorder
from kubelet.pod_runtime import PodRuntime
from kubelet.pods import Pod
from kubelet.prober import handlers
from kubelet.sync import container_config, pod_actions, pod_dns, security_context
from kubelet.sync.backoff import Backoff
from kubelet.sync.etc_files import PodEtcFiles
from kubelet.volumes.manager import VolumeError, Volumes

log = logging.getLogger("kubelet.sync")

MINIMUM_GRACE_PERIOD = 2        # seconds a container gets at least, unless a deletion says less
ERROR_RETRY = 10.0              # the kubelet's backOffPeriod: retry a failed sync after this
# Volume setup retries as the kubelet's volume operations (nestedpendingoperations): 0.5 s,
# doubling to 2 min 2 s. A first mount can fail for a moment only (the Node authorizer's 403
# for a ConfigMap until it has seen the pod bound here): a 10 s wait would start pods late.
MOUNT_RETRY_INITIAL = 0.5
MOUNT_RETRY_MAXIMUM = 122.0
PULL_FAILURE_RESYNC = 1.0


class StartFailure(Exception):
    def __init__(self, reason: str, message: str, retry_after: float = ERROR_RETRY) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


class PodSyncer:
    def __init__(self, runtime: RuntimeService, images: ImageService, cgroups: PodCgroups,
                 pod_logs_dir: str, volumes: Volumes, host_ip: str, events: EventRecorder,
                 etc_files: PodEtcFiles, memory_capacity: int,
                 seccomp: security_context.SeccompSettings) -> None:
        self.runtime = runtime
        self.volumes = volumes
        self.host_ip = host_ip
        self.events = events
        self.images = images
        self.cgroups = cgroups
        self.etc_files = etc_files
        self.memory_capacity = memory_capacity    # bytes, for the OOM score of Burstable pods
        self.seccomp = seccomp
        self.lowest_oom_score_adj = machine.lowest_oom_score_adj()
        self.pod_logs_dir = pod_logs_dir
        self.backoff = Backoff()          # crash loops, per pod and container
        self.image_backoff = Backoff()    # pulls, per pod and image
        self.mount_backoff = Backoff(MOUNT_RETRY_INITIAL, MOUNT_RETRY_MAXIMUM)  # per pod
        self._reasons: dict[str, dict[str, tuple[str, str]]] = {}
        self._lock = threading.Lock()

    def reasons(self, uid: str) -> dict[str, tuple[str, str]]:
        with self._lock:
            return dict(self._reasons.get(uid, {}))

    def _set_reason(self, uid: str, name: str, reason: str | None, message: str = "") -> None:
        with self._lock:
            if reason is None:
                self._reasons.get(uid, {}).pop(name, None)
            else:
                self._reasons.setdefault(uid, {})[name] = (reason, message)

    # -- SyncPod ------------------------------------------------------------------------------

    def sync(self, pod: Pod) -> float | None:
        """Brings the pod's runtime state to what its spec asks; returns when to try again (in
        seconds) if something has to wait, else None."""
        uid = pod.uid
        # Every sync writes the configMap, secret and downward API volumes again: updates of
        # the objects (and of the pod's labels) reach the files within a sync period.
        try:
            volume_paths = self.volumes.setup(pod)
            mount_error = None
            self.mount_backoff.forget(f"{uid}/volumes")
        except VolumeError as e:
            log.warning("volumes of %s: %s", pod.full_name, e)
            self.events.pod(pod, WARNING, "FailedMount", str(e))
            volume_paths, mount_error = {}, e
            self.mount_backoff.next(f"{uid}/volumes", self.mount_backoff.clock())
        runtime = PodRuntime.read(self.runtime, uid)
        actions = pod_actions.compute(pod, runtime)
        if actions.empty():
            return None
        if actions.kill_pod:
            self.kill_pod(pod, runtime, grace_override=None)
            if not actions.create_sandbox:
                return None
            self._purge_init_containers(pod, runtime)
        else:
            for container_id, (name, why) in actions.containers_to_kill.items():
                log.info("killing %s of %s: %s", name, pod.full_name, why)
                self.stop_container(pod, container_id, name, None)
        if actions.kill_pod or actions.containers_to_kill:
            runtime = PodRuntime.read(self.runtime, uid)
        if self._prune_init_containers(pod, runtime):
            runtime = PodRuntime.read(self.runtime, uid)
        # Ephemeral containers first, so that one can debug a pod whose init containers fail.
        to_start = [(c, False) for c in actions.ephemeral_to_start]
        if actions.next_init_container:
            to_start.append((actions.next_init_container, True))
        to_start += [(c, False) for c in actions.containers_to_start]
        ephemeral = {c["name"] for c in actions.ephemeral_to_start}
        if mount_error is not None:
            # the containers wait as ContainerCreating, as the kubelet's do
            for container, _ in to_start:
                self._set_reason(uid, container["name"], "ContainerCreating", str(mount_error))
            return self.mount_backoff.delay(f"{uid}/volumes")
        sandbox_id = actions.sandbox_id
        sandbox_config = self.sandbox_config(pod, actions.attempt)
        if actions.create_sandbox or to_start:
            try:
                self.cgroups.ensure(pod)
            except (OSError, ValueError) as e:
                log.warning("failed to make the cgroup of %s: %s", pod.full_name, e)
                return ERROR_RETRY
        if actions.create_sandbox:
            try:
                _refuse_user_namespaces(pod)
                sandbox_id = self.runtime.run_pod_sandbox(sandbox_config)
            except (CRIError, OSError, ValueError) as e:
                log.warning("failed to create the sandbox of %s: %s", pod.full_name, e)
                self.events.pod(pod, WARNING, "FailedCreatePodSandBox",
                                f"Failed to create pod sandbox: {e}")
                return ERROR_RETRY
        if to_start:
            self.etc_files.write(pod, self.runtime.pod_sandbox_status(sandbox_id).ips)
        retry: float | None = None
        ctx = self._context(pod, sandbox_id, volume_paths) if to_start else None
        for container, init in to_start:
            try:
                self._start(pod, container, init, sandbox_id, sandbox_config, runtime, ctx,
                            container["name"] in ephemeral)
                self._set_reason(uid, container["name"], None)
            except StartFailure as e:
                self._set_reason(uid, container["name"], e.reason, e.message)
                self._failure_event(pod, container["name"], e)
                retry = e.retry_after if retry is None else min(retry, e.retry_after)
                if init:
                    break
        return retry

    def sandbox_config(self, pod: Pod, attempt: int) -> PodSandboxConfig:
        hostname = pod_dns.hostname_and_domain(pod, "")[0]
        mappings = [PortMapping(p["containerPort"], p["hostPort"], p.get("protocol", "TCP"),
                                p.get("hostIP", ""))
                    for c in pod.containers for p in c.get("ports") or []
                    if p.get("hostPort") and not pod.host_network]
        return PodSandboxConfig(
            metadata=PodSandboxMetadata(pod.name, pod.uid, pod.namespace,
                                        attempt),
            hostname=hostname, log_directory=pod.log_directory(self.pod_logs_dir),
            labels={**pod.labels, **labels.pod_labels(pod)},
            annotations=dict(pod.annotations),
            host_network=pod.host_network, host_ipc=pod.host_ipc,
            host_pid=pod.host_pid, cgroup_parent=self.cgroups.parent_of(pod),
            port_mappings=mappings,
            sysctls={s["name"]: str(s.get("value", ""))
                     for s in pod.security_context.get("sysctls") or []},
            privileged=any((c.get("securityContext") or {}).get("privileged") for c in
                           pod.all_containers))

    def _context(self, pod: Pod, sandbox_id: str, volume_paths: dict[str, str]
                 ) -> container_config.PodContext:
        if pod.host_network:
            ips = [self.host_ip]
        else:
            try:
                ips = self.runtime.pod_sandbox_status(sandbox_id).ips
            except CRIError:
                ips = []
        node = self.volumes.info
        return container_config.PodContext(
            self.volumes.objects,
            downward.PodInfo([self.host_ip], ips, node.node_cpus, node.node_memory),
            volume_paths)

    def _start(self, pod: Pod, container: dict, init: bool, sandbox_id: str,
               sandbox_config: PodSandboxConfig, runtime: PodRuntime,
               ctx: container_config.PodContext, ephemeral: bool = False) -> None:
        uid, name = pod.uid, container["name"]
        latest = runtime.latest(name)
        if latest is not None and latest.state == CONTAINER_EXITED:
            key = f"{uid}/{name}"
            finished = latest.finished_at / 1e9
            wait = self.backoff.remaining(key, finished)
            if wait > 0:
                raise StartFailure(
                    "CrashLoopBackOff",
                    f"back-off {_seconds(self.backoff.delay(key))} restarting failed "
                    f"container={name} pod={pod.full_name}", wait)
            self.backoff.next(key, finished)
        self._ensure_image(pod, container)
        if latest is not None:
            restart_count = runtime.restart_count(name) + 1
        else:
            restart_count = _restart_count_from_logs(self.pod_logs_dir, pod, name)
        try:
            config = container_config.build(pod, container, restart_count, init, ctx,
                                            _pid_target(container, runtime) if ephemeral else "")
            security_context.verify_run_as_non_root(pod, container,
                                                    self.images.image_status(container["image"]))
        except (container_config.ConfigError, security_context.NonRootError, OSError) as e:
            raise StartFailure("CreateContainerConfigError", str(e)) from None
        security_context.apply(pod, container, config.linux, self.seccomp)
        config.linux.oom_score_adj = max(qos.oom_score_adj(pod, container, self.memory_capacity),
                                         self.lowest_oom_score_adj)
        config.mounts += self.etc_files.mounts(pod, container, config.linux.readonly_rootfs)
        try:
            container_id = self.runtime.create_container(sandbox_id, config, sandbox_config)
        except CRIError as e:
            raise StartFailure("CreateContainerError", str(e)) from None
        self.events.pod(pod, NORMAL, "Created", f"Created container {name}", name)
        try:
            self.runtime.start_container(container_id)
        except CRIError as e:
            raise StartFailure("RunContainerError", str(e)) from None
        self.events.pod(pod, NORMAL, "Started", f"Started container {name}", name)
        hook = (container.get("lifecycle") or {}).get("postStart")
        if hook:
            ok, message = handlers.run(hook, self._target(pod, container, container_id),
                                             self._grace(pod, None))
            if not ok:
                log.warning("PostStartHook of %s in %s failed: %s", name, pod.full_name,
                            message)
                self.events.pod(pod, WARNING, "FailedPostStartHook",
                                f"PostStartHook failed: {message}", name)
                self.stop_container(pod, container_id, name, None, run_pre_stop=False)
                raise StartFailure("PostStartHookError", f"PostStartHook failed: {message}")

    def _ensure_image(self, pod: Pod, container: dict) -> None:
        image = container.get("image") or ""
        if not image:
            raise StartFailure("InvalidImageName", "container image is empty")
        policy = container.get("imagePullPolicy") or "IfNotPresent"
        try:
            present = self.images.image_status(image) is not None
        except CRIError as e:
            raise StartFailure("InvalidImageName",
                               f'Failed to apply default image tag "{image}": {e}') from None
        if present and policy != "Always":
            self.events.pod(pod, NORMAL, "Pulled", f'Container image "{image}" already present '
                            "on machine", container["name"])
            return
        if policy == "Never":
            raise StartFailure("ErrImageNeverPull", f'Container image "{image}" is not '
                               "present with pull policy of Never")
        key = f"{pod.uid}_{image}"
        wait = self.image_backoff.remaining_since_update(key)
        if wait > 0:
            raise StartFailure("ImagePullBackOff", f'Back-off pulling image "{image}"', wait)
        self.events.pod(pod, NORMAL, "Pulling", f'Pulling image "{image}"', container["name"])
        started = time.monotonic()
        try:
            self.images.pull_image(image)
            self.events.pod(pod, NORMAL, "Pulled", f'Successfully pulled image "{image}" in '
                            f"{time.monotonic() - started:.3f}s", container["name"])
        except CRIError as e:
            self.image_backoff.next(key, time.time())
            # Looked at again soon, to show ImagePullBackOff for the rest of the wait, as the
            # kubelet's early requeue does.
            raise StartFailure("ErrImagePull", f'Failed to pull image "{image}": {e}',
                               PULL_FAILURE_RESYNC) from None

    # -- killing ------------------------------------------------------------------------------

    def kill_pod(self, pod: Pod, runtime: PodRuntime, grace_override: int | None) -> None:
        """Stops every running container (in parallel, each with its grace period), then every
        sandbox of the pod."""
        threads = []
        errors: list[Exception] = []
        for c in runtime.running():
            def stop(c=c) -> None:
                try:
                    self.stop_container(pod, c.id, c.metadata.name, grace_override)
                except CRIError as e:
                    errors.append(e)
            t = threading.Thread(target=stop, name=f"kill-{c.id[:8]}")
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        for s in runtime.sandboxes:
            self.runtime.stop_pod_sandbox(s.id)

    def stop_container(self, pod: Pod, container_id: str, name: str,
                       grace_override: int | None, run_pre_stop: bool = True,
                       why: str = "") -> None:
        """The preStop hook within the grace period, then the stop signal with what is left
        of it (at least MINIMUM_GRACE_PERIOD, as the kubelet gives)."""
        log.info("stopping container %s of %s", name, pod.full_name)
        self.events.pod(pod, NORMAL, "Killing", why or f"Stopping container {name}", name)
        grace = self._grace(pod, grace_override)
        container = next((c for c in pod.containers + pod.init_containers
                          if c["name"] == name), {})
        hook = (container.get("lifecycle") or {}).get("preStop")
        if hook and run_pre_stop and grace > 0:
            started = time.monotonic()
            ok, message = handlers.run(hook, self._target(pod, container, container_id),
                                             grace)
            if not ok:
                log.warning("PreStopHook of %s in %s failed: %s", name, pod.full_name,
                            message)
                self.events.pod(pod, WARNING, "FailedPreStopHook",
                                f"PreStopHook failed: {message}", name)
            grace = max(grace - (time.monotonic() - started), MINIMUM_GRACE_PERIOD)
        self.runtime.stop_container(container_id, grace)

    def _failure_event(self, pod: Pod, name: str, failure: StartFailure) -> None:
        """The events the kubelet records for a container that could not start."""
        if failure.reason == "CrashLoopBackOff":
            self.events.pod(pod, WARNING, "BackOff", "Back-off restarting failed container "
                            f"{name} in pod {pod.full_name}", name)
        elif failure.reason in ("ImagePullBackOff", "ErrImageNeverPull"):
            self.events.pod(pod, NORMAL if failure.reason == "ImagePullBackOff" else WARNING,
                            "BackOff" if failure.reason == "ImagePullBackOff" else
                            failure.reason, failure.message, name)
        else:
            self.events.pod(pod, WARNING, "Failed", failure.message, name)
            if failure.reason == "ErrImagePull":
                self.events.pod(pod, WARNING, "Failed", "Error: ErrImagePull", name)

    @staticmethod
    def _grace(pod: Pod, grace_override: int | None) -> float:
        if grace_override is not None:
            return grace_override
        return max(pod.termination_grace_period, MINIMUM_GRACE_PERIOD)

    def _target(self, pod: Pod, container: dict, container_id: str) -> handlers.Target:
        ips = ["127.0.0.1"] if pod.host_network else \
            PodRuntime.read(self.runtime, pod.uid).ips
        return handlers.Target(self.runtime, container_id, container, (ips or [""])[0])

    def _purge_init_containers(self, pod: Pod, runtime: PodRuntime) -> None:
        """A new sandbox runs the init containers again: the old ones go."""
        names = {c["name"] for c in pod.init_containers}
        for c in runtime.containers:
            if c.metadata.name in names:
                self._remove_container(c.id, c.log_path)

    def _prune_init_containers(self, pod: Pod, runtime: PodRuntime) -> bool:
        """Keeps only the newest exited container of each init container. True if it removed
        one."""
        names = {c["name"] for c in pod.init_containers}
        seen: set[str] = set()
        removed = False
        for c in runtime.containers:           # newest first
            name = c.metadata.name
            if name not in names or c.state == CONTAINER_RUNNING:
                continue
            if name in seen:
                self._remove_container(c.id, c.log_path)
                removed = True
            seen.add(name)
        return removed

    def _remove_container(self, container_id: str, log_path: str) -> None:
        self.runtime.remove_container(container_id)
        if log_path:
            try:
                os.unlink(log_path)
            except FileNotFoundError:
                pass

    # -- removal ------------------------------------------------------------------------------

    def remove_pod(self, pod: Pod) -> None:
        """Everything the pod had on this node: containers, their logs, sandboxes, its log
        directory, its cgroup, and what the kubelet remembers of it."""
        uid = pod.uid
        runtime = PodRuntime.read(self.runtime, uid)
        for c in runtime.containers:
            self._remove_container(c.id, c.log_path)
        for s in runtime.sandboxes:
            self.runtime.remove_pod_sandbox(s.id)
        shutil.rmtree(pod.log_directory(self.pod_logs_dir), ignore_errors=True)
        self.volumes.teardown(uid)
        self.cgroups.destroy(uid)
        self.forget(uid)

    def forget(self, uid: str) -> None:
        with self._lock:
            self._reasons.pop(uid, None)
        self.backoff.forget(f"{uid}/")
        self.image_backoff.forget(f"{uid}_")
        self.mount_backoff.forget(f"{uid}/")


def _refuse_user_namespaces(pod: Pod) -> None:
    """hostUsers: false asks for a pod user namespace with ID-mapped volume mounts, which this
    kubelet does not make; the kubelet's answer for a runtime handler without them."""
    if not pod.host_users:
        raise ValueError('RuntimeClass handler "" does not support user namespaces')


def _pid_target(container: dict, runtime: PodRuntime) -> str:
    """The running container whose PID namespace an ephemeral container shares, by ID ("" for
    none): the kubelet's getTargetID."""
    target = container.get("targetContainerName")
    if not target:
        return ""
    status = runtime.latest(target)
    if status is None or status.state != CONTAINER_RUNNING:
        raise container_config.ConfigError(f"unable to find target container {target}")
    return status.id


def _seconds(delay: float) -> str:
    """As Go prints a time.Duration of whole seconds: 10s, 5m0s."""
    total = int(delay)
    minutes, seconds = divmod(total, 60)
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"


def _restart_count_from_logs(pod_logs_dir: str, pod: Pod, name: str) -> int:
    """After the runtime lost a container (a reboot), the next log file name continues the
    count, so that <n>.log is never written twice (calcRestartCountByLogDir)."""
    directory = os.path.join(pod.log_directory(pod_logs_dir), name)
    try:
        counts = [int(f[:-4]) for f in os.listdir(directory)
                  if f.endswith(".log") and f[:-4].isdigit()]
    except FileNotFoundError:
        return 0
    return max(counts) + 1 if counts else 0
