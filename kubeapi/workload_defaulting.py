"""Defaults of the workload APIs, as kube's apps/v1, batch/v1 and policy/v1 SetDefaults_*
fill them in; pod templates get the defaults of the pods made from them."""
from __future__ import annotations

from kubeapi.pod_defaulting import default_pod

JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_JOB_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"


def _spec(obj: dict) -> dict | None:
    spec = obj.setdefault("spec", {})
    return spec if isinstance(spec, dict) else None


def default_template(template: object) -> None:
    if isinstance(template, dict):
        default_pod(template)


def _rolling_update(spec: dict, field: str, **rolling_defaults: object) -> None:
    """The update strategy under `field`: RollingUpdate unless set, then its rollingUpdate's
    defaults."""
    strategy = spec.setdefault(field, {})
    if isinstance(strategy, dict):
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            if isinstance(rolling, dict):
                for key, value in rolling_defaults.items():
                    rolling.setdefault(key, value)


def default_deployment(obj: dict) -> None:
    spec = _spec(obj)
    if spec is None:
        return
    spec.setdefault("replicas", 1)
    _rolling_update(spec, "strategy", maxUnavailable="25%", maxSurge="25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    default_template(spec.get("template"))


def default_replicaset(obj: dict) -> None:
    spec = _spec(obj)
    if spec is None:
        return
    spec.setdefault("replicas", 1)
    default_template(spec.get("template"))


def default_daemonset(obj: dict) -> None:
    spec = _spec(obj)
    if spec is None:
        return
    _rolling_update(spec, "updateStrategy", maxUnavailable=1, maxSurge=0)
    spec.setdefault("revisionHistoryLimit", 10)
    default_template(spec.get("template"))


def default_statefulset(obj: dict) -> None:
    spec = _spec(obj)
    if spec is None:
        return
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    _rolling_update(spec, "updateStrategy", partition=0)
    spec.setdefault("revisionHistoryLimit", 10)
    retention = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
    if isinstance(retention, dict):
        retention.setdefault("whenDeleted", "Retain")
        retention.setdefault("whenScaled", "Retain")
    for claim in spec.get("volumeClaimTemplates") or []:
        if isinstance(claim, dict):
            claim.setdefault("apiVersion", "v1")
            claim.setdefault("kind", "PersistentVolumeClaim")
            if isinstance(claim.get("spec"), dict):
                claim["spec"].setdefault("volumeMode", "Filesystem")
            claim.setdefault("status", {"phase": "Pending"})
    default_template(spec.get("template"))


def default_job_spec(spec: dict) -> None:
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None \
            else 6
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("manualSelector", False)
    spec.setdefault("podReplacementPolicy",
                    "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed")
    default_template(spec.get("template"))


def default_job(obj: dict) -> None:
    spec = _spec(obj)
    if spec is not None:
        default_job_spec(spec)


def generate_job_selector(obj: dict) -> None:
    """On create, unless spec.manualSelector: the selector on the Job's own uid and the labels
    that make its pods match it (kube's generateSelector)."""
    spec = obj.get("spec")
    if not isinstance(spec, dict) or spec.get("manualSelector") is True:
        return
    meta = obj["metadata"]
    template = spec.setdefault("template", {})
    if not isinstance(template, dict):
        return
    tmeta = template.setdefault("metadata", {})
    if not isinstance(tmeta, dict):
        return
    labels = tmeta.setdefault("labels", {})
    if not isinstance(labels, dict):
        return
    uid, name = meta.get("uid", ""), meta.get("name", "")
    for key, value in ((LEGACY_JOB_UID_LABEL, uid), (LEGACY_JOB_NAME_LABEL, name),
                       (JOB_UID_LABEL, uid), (JOB_NAME_LABEL, name)):
        labels.setdefault(key, value)
    if spec.get("selector") is None:
        spec["selector"] = {"matchLabels": {JOB_UID_LABEL: uid}}


def default_cronjob(obj: dict) -> None:
    spec = _spec(obj)
    if spec is None:
        return
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    job_template = spec.get("jobTemplate")
    if isinstance(job_template, dict) and isinstance(job_template.get("spec"), dict):
        default_template(job_template["spec"].get("template"))
