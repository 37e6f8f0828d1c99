"""Reading pods: the Kubernetes JSON object (a dict, as the API server sends it) is the kubelet's
pod model; these helpers name what the other modules ask of it."""
from __future__ import annotations

import os

# The annotations the kubelet's config sources put on static pods, and the one that marks their
# mirror pods in the API server (its value is the static pod's config hash).
CONFIG_HASH = "kubernetes.io/config.hash"
CONFIG_SOURCE = "kubernetes.io/config.source"
CONFIG_SEEN = "kubernetes.io/config.seen"
CONFIG_MIRROR = "kubernetes.io/config.mirror"


def uid(pod: dict) -> str:
    return pod["metadata"]["uid"]


def name(pod: dict) -> str:
    return pod["metadata"]["name"]


def namespace(pod: dict) -> str:
    return pod["metadata"].get("namespace") or "default"


def full_name(pod: dict) -> str:
    """name_namespace(uid), as the kubelet's format.Pod prints a pod."""
    return f"{name(pod)}_{namespace(pod)}({uid(pod)})"


def desired(pod: dict) -> tuple:
    """What a pod asks of the kubelet: all but its status and bookkeeping (a change to these is
    no reason to sync)."""
    meta = {k: v for k, v in pod["metadata"].items()
            if k not in ("resourceVersion", "managedFields", "generation")}
    return meta, pod.get("spec")


def spec(pod: dict) -> dict:
    return pod.get("spec") or {}


def containers(pod: dict) -> list[dict]:
    return spec(pod).get("containers") or []


def init_containers(pod: dict) -> list[dict]:
    return spec(pod).get("initContainers") or []


def ephemeral_containers(pod: dict) -> list[dict]:
    return spec(pod).get("ephemeralContainers") or []


def restart_policy(pod: dict) -> str:
    return spec(pod).get("restartPolicy") or "Always"


def host_network(pod: dict) -> bool:
    return bool(spec(pod).get("hostNetwork"))


def is_deleted(pod: dict) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase", "")


def is_terminal(pod: dict) -> bool:
    return phase(pod) in ("Succeeded", "Failed")


def grace_period(pod: dict) -> int:
    """The seconds a deletion grants: deletionGracePeriodSeconds, else the spec's."""
    meta = pod["metadata"]
    if meta.get("deletionGracePeriodSeconds") is not None:
        return int(meta["deletionGracePeriodSeconds"])
    return int(spec(pod).get("terminationGracePeriodSeconds", 30))


def log_directory(pod_logs_dir: str, pod: dict) -> str:
    """<podLogsDir>/<namespace>_<name>_<uid>"""
    return os.path.join(pod_logs_dir, f"{namespace(pod)}_{name(pod)}_{uid(pod)}")


def annotations(pod: dict) -> dict:
    return pod["metadata"].get("annotations") or {}


def is_static(pod: dict) -> bool:
    """From a manifest file, not from the API server."""
    return annotations(pod).get(CONFIG_SOURCE, "api") != "api"


def is_mirror(pod: dict) -> bool:
    """The API server's copy of a static pod, which the kubelet never runs."""
    return CONFIG_MIRROR in annotations(pod)
