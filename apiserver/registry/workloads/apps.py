"""apps/v1: Deployments, ReplicaSets, DaemonSets, StatefulSets and ControllerRevisions."""
from __future__ import annotations

from kubeapi import validation, workload_defaulting as defaults, workload_validation as checks

from ..strategy import Strategy
from .workload import WorkloadStrategy


class DeploymentStrategy(WorkloadStrategy):
    kind = "Deployment"

    def default(self, obj: dict) -> None:
        defaults.default_deployment(obj)

    def validate(self, obj: dict) -> list[dict]:
        return checks.validate_deployment(obj)

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        return checks.validate_deployment_update(new, old)


class ReplicaSetStrategy(WorkloadStrategy):
    kind = "ReplicaSet"
    initial_status = {"replicas": 0}

    def default(self, obj: dict) -> None:
        defaults.default_replicaset(obj)

    def validate(self, obj: dict) -> list[dict]:
        return checks.validate_replicaset(obj)

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        return checks.validate_replicaset_update(new, old)


class DaemonSetStrategy(WorkloadStrategy):
    kind = "DaemonSet"
    initial_status = {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                      "desiredNumberScheduled": 0, "numberReady": 0}

    def default(self, obj: dict) -> None:
        defaults.default_daemonset(obj)

    def validate(self, obj: dict) -> list[dict]:
        return checks.validate_daemonset(obj)

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        return checks.validate_daemonset_update(new, old)


class StatefulSetStrategy(WorkloadStrategy):
    kind = "StatefulSet"
    initial_status = {"replicas": 0, "availableReplicas": 0}

    def name_errors(self, name: str, field: str) -> list[dict]:
        return validation.dns1123_label(name, field)  # its pods' hostnames are <name>-<i>

    def default(self, obj: dict) -> None:
        defaults.default_statefulset(obj)

    def validate(self, obj: dict) -> list[dict]:
        return checks.validate_statefulset(obj)

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        return checks.validate_statefulset_update(new, old)


class ControllerRevisionStrategy(Strategy):
    kind = "ControllerRevision"

    def default(self, obj: dict) -> None:
        obj.setdefault("revision", 0)

    def validate(self, obj: dict) -> list[dict]:
        return checks.validate_controller_revision(obj)

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        return checks.validate_controller_revision_update(new, old)
