"""What a pod needs from the runtime right now (the kubelet's computePodActions): a new
sandbox or the one it has, the ephemeral containers not yet started, the next init container,
the app containers to (re)start per the restart policy, the containers to kill. Pure: it reads
the pod and its runtime state only, so each rule is tested on its own."""
from __future__ import annotations

from dataclasses import dataclass, field

from cri.api import (CONTAINER_CREATED, CONTAINER_EXITED, CONTAINER_RUNNING, CONTAINER_UNKNOWN,
                     SANDBOX_READY, ContainerStatus)
from kubelet import labels
from kubelet.pod_runtime import PodRuntime
from kubelet.pods import Pod


@dataclass
class PodActions:
    kill_pod: bool = False
    create_sandbox: bool = False
    sandbox_id: str = ""
    attempt: int = 0
    next_init_container: dict | None = None
    containers_to_start: list[dict] = field(default_factory=list)
    ephemeral_to_start: list[dict] = field(default_factory=list)
    # container ID -> (container name, why)
    containers_to_kill: dict[str, tuple[str, str]] = field(default_factory=dict)

    def empty(self) -> bool:
        return not (self.kill_pod or self.create_sandbox or self.next_init_container or
                    self.containers_to_start or self.ephemeral_to_start or
                    self.containers_to_kill)


def sandbox_changed(pod: Pod, runtime: PodRuntime) -> tuple[bool, int, str]:
    """(a new sandbox is needed, its attempt, the current sandbox's ID)."""
    if not runtime.sandboxes:
        return True, 0, ""
    newest = runtime.sandboxes[0]
    ready = sum(1 for s in runtime.sandboxes if s.state == SANDBOX_READY)
    if ready > 1 or newest.state != SANDBOX_READY:
        return True, newest.metadata.attempt + 1, newest.id
    if newest.host_network != pod.host_network:
        return True, newest.metadata.attempt + 1, newest.id
    if not pod.host_network and not newest.ips:
        return True, newest.metadata.attempt + 1, newest.id
    return False, newest.metadata.attempt, newest.id


def should_restart(container: dict, pod: Pod, runtime: PodRuntime) -> bool:
    """ShouldContainerBeRestarted: never once the pod is being deleted; a container that never
    ran or is in an unknown state starts; an exited one per the restart policy."""
    if pod.is_deleted:
        return False
    status = runtime.latest(container["name"])
    if status is None:
        return True
    if status.state == CONTAINER_RUNNING:
        return False
    if status.state in (CONTAINER_UNKNOWN, CONTAINER_CREATED):
        return True
    policy = pod.restart_policy
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return status.exit_code != 0
    return True


def succeeded(container: dict, runtime: PodRuntime) -> bool:
    status = runtime.latest(container["name"])
    return status is not None and status.state == CONTAINER_EXITED and status.exit_code == 0


def init_failed(status: ContainerStatus) -> bool:
    if status.state == CONTAINER_EXITED and status.exit_code != 0:
        return True
    return status.state == CONTAINER_UNKNOWN


def next_init_container(pod: Pod, runtime: PodRuntime
                        ) -> tuple[ContainerStatus | None, dict | None, bool]:
    """(status of the last failed init container, the init container to run next, all done)."""
    inits = pod.init_containers
    if not inits:
        return None, None, True
    # An app container that runs proves the init containers ran, even if GC removed them since.
    for c in pod.containers:
        status = runtime.latest(c["name"])
        if status is not None and status.state == CONTAINER_RUNNING:
            return None, None, True
    for c in reversed(inits):
        status = runtime.latest(c["name"])
        if status is not None and init_failed(status):
            return status, c, False
    for i in range(len(inits) - 1, -1, -1):
        status = runtime.latest(inits[i]["name"])
        if status is None:
            continue
        if status.state == CONTAINER_RUNNING:
            return None, None, False
        if status.state == CONTAINER_EXITED:
            if i == len(inits) - 1:
                return None, None, True
            return None, inits[i + 1], False
    return None, inits[0], False


def compute(pod: Pod, runtime: PodRuntime) -> PodActions:
    create, attempt, sandbox_id = sandbox_changed(pod, runtime)
    actions = PodActions(kill_pod=create, create_sandbox=create, sandbox_id=sandbox_id,
                         attempt=attempt)
    restart_on_failure = pod.restart_policy != "Never"
    if create:
        if not restart_on_failure and attempt != 0 and runtime.containers:
            # The pod ran once and must not run again: only make sure it is down.
            actions.create_sandbox = False
            return actions
        to_start = [c for c in pod.containers
                    if not (pod.restart_policy == "OnFailure" and succeeded(c, runtime))]
        if not to_start:
            actions.create_sandbox = False
            return actions
        if pod.init_containers:
            actions.next_init_container = pod.init_containers[0]
            return actions
        actions.containers_to_start = to_start
        return actions

    # Ephemeral containers start once, even before initialization is done, and never again.
    if not pod.is_deleted:
        actions.ephemeral_to_start = [c for c in pod.ephemeral_containers
                                      if runtime.latest(c["name"]) is None]
    last_failed, next_init, done = next_init_container(pod, runtime)
    if not done:
        if next_init is not None:
            if last_failed is not None and init_failed(last_failed) and not restart_on_failure:
                actions.kill_pod = True
            else:
                if last_failed is not None and last_failed.state == CONTAINER_UNKNOWN:
                    actions.containers_to_kill[last_failed.id] = (
                        last_failed.metadata.name, "Init container is in unknown state")
                actions.next_init_container = next_init
        return actions

    keep = 0
    for c in pod.containers:
        status = runtime.latest(c["name"])
        if status is None or status.state != CONTAINER_RUNNING:
            if should_restart(c, pod, runtime):
                actions.containers_to_start.append(c)
                if status is not None and status.state == CONTAINER_UNKNOWN:
                    actions.containers_to_kill[status.id] = (
                        c["name"], "Container is in unknown state, try killing it before "
                        "restart")
            continue
        if status.annotations.get(labels.CONTAINER_HASH) != labels.container_hash(c):
            actions.containers_to_start.append(c)
            actions.containers_to_kill[status.id] = (
                c["name"], f"Container {c['name']} definition changed, will be restarted")
            continue
        keep += 1
    if keep == 0 and not actions.containers_to_start:
        actions.kill_pod = True
    return actions
