"""Pods: defaulting, validation, status and the graceful deletion rules of kube's pod strategy."""
from __future__ import annotations

import copy

from kubeapi.pod_defaulting import admit_pod, default_pod, qos_class
from kubeapi.pod_validation import (validate_ephemeral_containers_update, validate_pod_spec,
                                   validate_pod_status, validate_pod_update)

from .strategy import Strategy

TERMINAL_PHASES = ("Succeeded", "Failed")


class PodStrategy(Strategy):
    kind = "Pod"
    has_status = True
    has_generation = True
    field_labels = frozenset({
        "metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy",
        "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
        "status.podIP", "status.nominatedNodeName"})

    def default(self, obj: dict) -> None:
        default_pod(obj)

    def prepare_create(self, obj: dict) -> None:
        admit_pod(obj)
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        status = {"phase": "Pending"}
        try:
            status["qosClass"] = qos_class(spec)
        except (ValueError, TypeError, AttributeError):
            pass  # validation reports the bad quantity
        obj["status"] = status

    def validate(self, obj: dict) -> list[dict]:
        return validate_pod_spec(obj.get("spec")) + validate_pod_status(obj.get("status"))

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        return validate_pod_update(new, old) + validate_pod_status(new.get("status"))

    def for_subresource(self, subresource: str) -> Strategy:
        if subresource == "ephemeralcontainers":
            return EphemeralContainersStrategy()
        return self

    def grace_period(self, obj: dict, requested: int | None) -> int:
        """How long deletion waits for the kubelet: 0 when nothing runs the pod."""
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if not spec.get("nodeName") or status.get("phase") in TERMINAL_PHASES:
            return 0
        if requested is not None:
            return max(requested, 0)
        return int(spec.get("terminationGracePeriodSeconds", 30))

    def fields(self, obj: dict) -> dict[str, str]:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        return {
            **super().fields(obj),
            "spec.nodeName": spec.get("nodeName", ""),
            "spec.restartPolicy": spec.get("restartPolicy", ""),
            "spec.schedulerName": spec.get("schedulerName", ""),
            "spec.serviceAccountName": spec.get("serviceAccountName", ""),
            "spec.hostNetwork": str(bool(spec.get("hostNetwork"))).lower(),
            "status.phase": status.get("phase", ""),
            "status.podIP": status.get("podIP", ""),
            "status.nominatedNodeName": status.get("nominatedNodeName", ""),
        }


class EphemeralContainersStrategy(PodStrategy):
    """pods/ephemeralcontainers (kube's podEphemeralContainersStrategy): of what is sent only
    spec.ephemeralContainers counts, and it may only grow."""

    def prepare_update(self, new: dict, old: dict) -> dict:
        pod = copy.deepcopy(old)
        spec = new.get("spec") if isinstance(new.get("spec"), dict) else {}
        if spec.get("ephemeralContainers"):
            pod["spec"]["ephemeralContainers"] = spec["ephemeralContainers"]
        else:
            pod["spec"].pop("ephemeralContainers", None)
        return pod

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        return validate_ephemeral_containers_update(new, old)
