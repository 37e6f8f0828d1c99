"""batch/v1: Jobs (with their generated selector) and CronJobs."""
from __future__ import annotations

from kubeapi import workload_defaulting as defaults, workload_validation as checks

from .workload import WorkloadStrategy


class JobStrategy(WorkloadStrategy):
    kind = "Job"
    # batch/v1 Jobs orphan their pods unless the client asks otherwise (kube keeps this for
    # old clients; kubectl sends propagationPolicy=Background).
    default_propagation = "Orphan"
    field_labels = frozenset({"metadata.name", "metadata.namespace", "status.successful"})

    def prepare_create(self, obj: dict) -> None:
        super().prepare_create(obj)
        defaults.generate_job_selector(obj)

    def default(self, obj: dict) -> None:
        defaults.default_job(obj)

    def validate(self, obj: dict) -> list[dict]:
        return checks.validate_job(obj)

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        return checks.validate_job_update(new, old)

    def fields(self, obj: dict) -> dict[str, str]:
        return {**super().fields(obj),
                "status.successful": str((obj.get("status") or {}).get("succeeded", 0))}


class CronJobStrategy(WorkloadStrategy):
    kind = "CronJob"

    def default(self, obj: dict) -> None:
        defaults.default_cronjob(obj)

    def validate(self, obj: dict) -> list[dict]:
        return checks.validate_cronjob(obj)

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        return checks.validate_cronjob_update(new, old)
