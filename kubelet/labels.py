"""What the kubelet writes on sandboxes and containers (CRI labels and annotations, with the
real kubelet's keys) and reads back after a restart: which pod and container an object is,
its restart count, the hash of the container spec it was made from."""
from __future__ import annotations

import hashlib
import json

from kubelet.pods import Pod

POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
POD_UID = "io.kubernetes.pod.uid"
CONTAINER_NAME = "io.kubernetes.container.name"
CONTAINER_HASH = "io.kubernetes.container.hash"
RESTART_COUNT = "io.kubernetes.container.restartCount"
TERMINATION_MESSAGE_PATH = "io.kubernetes.container.terminationMessagePath"
TERMINATION_MESSAGE_POLICY = "io.kubernetes.container.terminationMessagePolicy"
GRACE_PERIOD = "io.kubernetes.pod.terminationGracePeriod"
INIT_CONTAINER = "io.pykubelet.container.init"


def pod_labels(pod: Pod) -> dict[str, str]:
    return {POD_NAME: pod.name, POD_NAMESPACE: pod.namespace, POD_UID: pod.uid}


def container_labels(pod: Pod, container: dict) -> dict[str, str]:
    return {**pod_labels(pod), CONTAINER_NAME: container["name"]}


def container_annotations(pod: Pod, container: dict, restart_count: int,
                          init: bool) -> dict[str, str]:
    return {
        CONTAINER_HASH: container_hash(container),
        RESTART_COUNT: str(restart_count),
        TERMINATION_MESSAGE_PATH: container.get("terminationMessagePath", ""),
        TERMINATION_MESSAGE_POLICY: container.get("terminationMessagePolicy", "File"),
        GRACE_PERIOD: str(pod.termination_grace_period),
        INIT_CONTAINER: "true" if init else "false",
    }


def container_hash(container: dict) -> str:
    """Changes when the container's spec does (only its image may change in a running pod),
    which restarts the container."""
    text = json.dumps(container, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def restart_count(annotations: dict[str, str]) -> int:
    try:
        return int(annotations.get(RESTART_COUNT, "0"))
    except ValueError:
        return 0
