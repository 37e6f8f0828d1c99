"""Validation of the workload APIs with kube-apiserver's texts: apps/v1 (Deployment,
ReplicaSet, DaemonSet, StatefulSet, ControllerRevision), batch/v1 (Job, CronJob) and policy/v1
PodDisruptionBudget; pod templates are checked as pods are (pod_validation)."""
from __future__ import annotations

import re
import zoneinfo

from kubeapi import cron, field_value, label_selector, validation
from kubeapi.pod_validation import validate_pod_spec
from kubeapi.status import field_error, forbidden_field, not_supported, required

NO_MATCH = "`selector` does not match template `labels`"
IMMUTABLE = "field is immutable"
_PERCENT = re.compile(r"^[0-9]+%$")
PERCENT_MSG = ("a valid percent string must be a numeric string followed by an ending '%' "
               "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")
CONCURRENCY_POLICIES = ["Allow", "Forbid", "Replace"]
COMPLETION_MODES = ["NonIndexed", "Indexed"]
UNHEALTHY_POD_EVICTION_POLICIES = ["AlwaysAllow", "IfHealthyBudget"]
CRONJOB_NAME_MAX = 52


def invalid(path: str, rendered: str, detail: str) -> dict:
    """field.Invalid with the value already rendered as Go prints it."""
    return field_error("FieldValueInvalid", path, f"Invalid value: {rendered}: {detail}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def nonnegative(value: object, path: str) -> list[dict]:
    if value is None:
        return []
    if not _is_int(value):
        return [invalid(path, field_value.render(value), "must be an integer")]
    if value < 0:
        return [invalid(path, str(value), "must be greater than or equal to 0")]
    return []


def int_or_percent(value: object, path: str, at_most_100: bool = True) -> list[dict]:
    """ValidatePositiveIntOrPercent (and IsNotMoreThan100Percent unless told not to)."""
    if value is None:
        return []
    if _is_int(value):
        return nonnegative(value, path)
    if not isinstance(value, str) or not _PERCENT.match(value):
        return [invalid(path, field_value.render(value), PERCENT_MSG)]
    return _at_most_100(value, path) if at_most_100 else []


def _at_most_100(value: object, path: str) -> list[dict]:
    if isinstance(value, str) and _PERCENT.match(value) and int(value[:-1]) > 100:
        return [invalid(path, field_value.render(value), "must not be greater than 100%")]
    return []


def _int_or_percent_value(value: object) -> int:
    """getIntOrPercentValue: the number, of a percent too; 0 for what is neither."""
    if isinstance(value, str) and _PERCENT.match(value):
        return int(value[:-1])
    return value if _is_int(value) else 0


def _reprefix(errors: list[dict], prefix: str) -> list[dict]:
    """Pod errors name spec.*; in a template they sit under prefix (spec.template.spec.*)."""
    out = []
    for e in errors:
        f = e["field"]
        if f == "spec" or f.startswith("spec."):
            f = prefix + f[len("spec"):]
        out.append({**e, "field": f})
    return out


def pod_template(template: object, path: str, creating: bool) -> list[dict]:
    """ValidatePodTemplateSpec: its labels and annotations, and its spec as a pod's."""
    if not isinstance(template, dict):
        return [required(path)]
    meta = template.get("metadata") or {}
    if not isinstance(meta, dict):
        return [field_error("FieldValueInvalid", f"{path}.metadata", "Invalid value: must be "
                            "an object")]
    errors = validation.labels(meta.get("labels"), f"{path}.labels")
    errors += validation.string_map(meta.get("annotations"), f"{path}.annotations")
    return errors + _reprefix(validate_pod_spec(template.get("spec"), creating), f"{path}.spec")


def _template_labels(template: object) -> dict | None:
    """The template's labels as sent (None when it has none)."""
    if not isinstance(template, dict) or not isinstance(template.get("metadata"), dict):
        return None
    labels = template["metadata"].get("labels")
    return labels if isinstance(labels, dict) else None


def _selector_and_template(spec: dict, kind_word: str, creating: bool,
                           path: str = "spec") -> list[dict]:
    """The selector (required, valid, not empty) and a template whose labels it matches."""
    errors = []
    sel = spec.get("selector")
    if sel is None:
        errors.append(required(f"{path}.selector"))
    else:
        errors += label_selector.validate(sel, f"{path}.selector")
        if not errors and label_selector.is_empty(sel):
            errors.append(invalid(f"{path}.selector", field_value.label_selector(sel),
                                  f"empty selector is invalid for {kind_word}"))
    template = spec.get("template")
    if isinstance(template, dict) and sel is not None and not label_selector.is_empty(sel) \
            and not label_selector.validate(sel, "") and \
            not label_selector.matches(sel, _template_labels(template)):
        errors.append(invalid(f"{path}.template.metadata.labels",
                              field_value.render(_template_labels(template)), NO_MATCH))
    return errors + pod_template(template, f"{path}.template", creating)


def _always_restart(spec: dict, kind: str) -> list[dict]:
    """Controllers that keep pods running take only restartPolicy Always."""
    pod = (spec.get("template") or {}).get("spec") if isinstance(spec.get("template"), dict) \
        else None
    if not isinstance(pod, dict):
        return []
    errors = []
    if pod.get("restartPolicy") not in (None, "Always"):
        errors.append(not_supported("spec.template.spec.restartPolicy", pod["restartPolicy"],
                                    ["Always"]))
    if pod.get("activeDeadlineSeconds") is not None:
        errors.append(forbidden_field("spec.template.spec.activeDeadlineSeconds",
                                      f"activeDeadlineSeconds in {kind} is not Supported"))
    return errors


def _spec_of(obj: dict) -> dict | None:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else None


def _selector_immutable(new: dict, old: dict) -> list[dict]:
    sel = (new.get("spec") or {}).get("selector")
    if sel != (old.get("spec") or {}).get("selector"):
        return [invalid("spec.selector", field_value.label_selector(sel), IMMUTABLE)]
    return []


def _status_counts(obj: dict, fields: tuple[str, ...]) -> list[dict]:
    status = obj.get("status")
    if not isinstance(status, dict):
        return []
    errors = []
    for f in fields:
        errors += nonnegative(status.get(f), f"status.{f}")
    return errors


# apps/v1

def _unsupported_struct(path: str, rendered: str, allowed: list[str]) -> dict:
    choices = ", ".join(f'"{a}"' for a in allowed)
    return field_error("FieldValueNotSupported", path,
                       f"Unsupported value: {rendered}: supported values: {choices}")


_INTERNAL_STRATEGY = ("type", ("rollingUpdate", ("maxUnavailable", "maxSurge")))


def _rolling_update_deployment(strategy: dict) -> list[dict]:
    """ValidateDeploymentStrategy."""
    path = "spec.strategy"
    kind = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            return [forbidden_field(f"{path}.rollingUpdate", "may not be specified when "
                                    "strategy `type` is 'Recreate'")]
        return []
    if kind != "RollingUpdate":
        return [_unsupported_struct(path, field_value.go_struct(strategy, _INTERNAL_STRATEGY),
                                    ["Recreate", "RollingUpdate"])]
    if not isinstance(rolling, dict):
        return [required(f"{path}.rollingUpdate", "this should be defaulted and never be nil")]
    errors = int_or_percent(rolling.get("maxUnavailable"), f"{path}.rollingUpdate.maxUnavailable",
                            at_most_100=False)
    errors += int_or_percent(rolling.get("maxSurge"), f"{path}.rollingUpdate.maxSurge",
                             at_most_100=False)
    if _int_or_percent_value(rolling.get("maxUnavailable")) == 0 and \
            _int_or_percent_value(rolling.get("maxSurge")) == 0:
        errors.append(invalid(f"{path}.rollingUpdate.maxUnavailable",
                              field_value.render(rolling.get("maxUnavailable")),
                              "may not be 0 when `maxSurge` is 0"))
    return errors + _at_most_100(rolling.get("maxUnavailable"),
                                 f"{path}.rollingUpdate.maxUnavailable")


def validate_deployment(obj: dict, creating: bool = True) -> list[dict]:
    spec = _spec_of(obj)
    if spec is None:
        return [required("spec")]
    errors = nonnegative(spec.get("replicas"), "spec.replicas")
    errors += _selector_and_template(spec, "deployment", creating)
    errors += _always_restart(spec, "ReplicaSet")
    strategy = spec.get("strategy")
    errors += _rolling_update_deployment(strategy if isinstance(strategy, dict) else {})
    errors += nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    errors += nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    pds = spec.get("progressDeadlineSeconds")
    if pds is not None:
        errors += nonnegative(pds, "spec.progressDeadlineSeconds")
        if _is_int(pds) and pds <= (spec.get("minReadySeconds") or 0):
            errors.append(invalid("spec.progressDeadlineSeconds", str(pds),
                                  "must be greater than minReadySeconds"))
    return errors + _status_counts(obj, ("replicas", "updatedReplicas", "readyReplicas",
                                         "availableReplicas", "unavailableReplicas",
                                         "observedGeneration", "collisionCount"))


def validate_deployment_update(new: dict, old: dict) -> list[dict]:
    return validate_deployment(new, False) + _selector_immutable(new, old)


def validate_replicaset(obj: dict, creating: bool = True) -> list[dict]:
    spec = _spec_of(obj)
    if spec is None:
        return [required("spec")]
    errors = nonnegative(spec.get("replicas"), "spec.replicas")
    errors += nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    errors += _selector_and_template(spec, "deployment", creating)
    errors += _always_restart(spec, "ReplicaSet")
    return errors + _status_counts(obj, ("replicas", "fullyLabeledReplicas", "readyReplicas",
                                         "availableReplicas", "observedGeneration"))


def validate_replicaset_update(new: dict, old: dict) -> list[dict]:
    return validate_replicaset(new, False) + _selector_immutable(new, old)


def _daemonset_strategy(strategy: dict) -> list[dict]:
    """ValidateDaemonSetUpdateStrategy: exactly one of maxSurge and maxUnavailable non-zero."""
    path = "spec.updateStrategy"
    kind = strategy.get("type")
    if kind == "OnDelete":
        return []
    if kind != "RollingUpdate":
        return [_unsupported_struct(path, field_value.go_struct(strategy, (
            "type", ("rollingUpdate", ("maxUnavailable", "maxSurge")))),
            ["RollingUpdate", "OnDelete"])]
    rolling = strategy.get("rollingUpdate")
    if not isinstance(rolling, dict):
        return [required(f"{path}.rollingUpdate")]
    path += ".rollingUpdate"
    errors = int_or_percent(rolling.get("maxUnavailable"), f"{path}.maxUnavailable")
    errors += int_or_percent(rolling.get("maxSurge"), f"{path}.maxSurge")
    unavailable = _int_or_percent_value(rolling.get("maxUnavailable")) != 0
    surge = _int_or_percent_value(rolling.get("maxSurge")) != 0
    if unavailable and surge:
        errors.append(invalid(f"{path}.maxSurge", field_value.render(rolling.get("maxSurge")),
                              "may not be set when maxUnavailable is non-zero"))
    elif not unavailable and not surge:
        errors.append(required(f"{path}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    return errors


def validate_daemonset(obj: dict, creating: bool = True) -> list[dict]:
    """ValidateDaemonSetSpec: a missing selector shows as template labels it cannot match."""
    spec = _spec_of(obj)
    if spec is None:
        return [required("spec")]
    sel = spec.get("selector")
    errors = label_selector.validate(sel, "spec.selector")
    labels = _template_labels(spec.get("template"))
    if not errors and not label_selector.matches(sel, labels):
        errors.append(invalid("spec.template.metadata.labels", field_value.render(labels),
                              NO_MATCH))
    if sel is not None and label_selector.is_empty(sel):
        errors.append(invalid("spec.selector", field_value.label_selector(sel),
                              "empty selector is invalid for daemonset"))
    errors += pod_template(spec.get("template"), "spec.template", creating)
    errors += _always_restart(spec, "DaemonSet")
    errors += nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    strategy = spec.get("updateStrategy")
    errors += _daemonset_strategy(strategy if isinstance(strategy, dict) else {})
    errors += nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    return errors + _status_counts(obj, ("currentNumberScheduled", "numberMisscheduled",
                                         "desiredNumberScheduled", "numberReady",
                                         "updatedNumberScheduled", "numberAvailable",
                                         "numberUnavailable", "observedGeneration"))


def validate_daemonset_update(new: dict, old: dict) -> list[dict]:
    return validate_daemonset(new, False) + _selector_immutable(new, old)


_STS_STRATEGY = ("type", ("rollingUpdate", ("partition", "maxUnavailable")))
RETENTION_POLICIES = ["Retain", "Delete"]


def _statefulset_strategy(strategy: dict) -> list[dict]:
    path = "spec.updateStrategy"
    kind, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    if not kind:
        return [required(path)]
    if kind == "OnDelete":
        if rolling is not None:
            return [invalid(f"{path}.rollingUpdate", field_value.go_struct(
                rolling, _STS_STRATEGY[1][1]), "only allowed for updateStrategy 'RollingUpdate'")]
        return []
    if kind != "RollingUpdate":
        return [invalid(path, field_value.go_struct(strategy, _STS_STRATEGY),
                        "must be 'RollingUpdate' or 'OnDelete'")]
    if not isinstance(rolling, dict):
        return []
    path += ".rollingUpdate"
    errors = nonnegative(rolling.get("partition"), f"{path}.partition")
    unavailable = rolling.get("maxUnavailable")
    if unavailable is not None:
        errors += int_or_percent(unavailable, f"{path}.maxUnavailable", at_most_100=False)
        if _int_or_percent_value(unavailable) == 0:
            errors.append(invalid(f"{path}.maxUnavailable", field_value.render(unavailable),
                                  "cannot be 0"))
        errors += _at_most_100(unavailable, f"{path}.maxUnavailable")
    return errors


def validate_statefulset(obj: dict, creating: bool = True) -> list[dict]:
    """ValidateStatefulSetSpec; of the template only labels and annotations are checked, as
    kube does."""
    spec = _spec_of(obj)
    if spec is None:
        return [required("spec")]
    errors = []
    policy = spec.get("podManagementPolicy")
    if not policy:
        errors.append(required("spec.podManagementPolicy"))
    elif policy not in ("OrderedReady", "Parallel"):
        errors.append(invalid("spec.podManagementPolicy", field_value.render(policy),
                              "must be 'OrderedReady' or 'Parallel'"))
    strategy = spec.get("updateStrategy")
    errors += _statefulset_strategy(strategy if isinstance(strategy, dict) else {})
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if isinstance(retention, dict):
        for when in ("whenDeleted", "whenScaled"):
            if retention.get(when) not in RETENTION_POLICIES:
                errors.append(not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{when}",
                                            retention.get(when) or "", RETENTION_POLICIES))
    errors += nonnegative(spec.get("replicas"), "spec.replicas")
    errors += nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    ordinals = spec.get("ordinals")
    if isinstance(ordinals, dict):
        errors += nonnegative(ordinals.get("start"), "spec.ordinals.start")
    sel = spec.get("selector")
    if sel is None:
        errors.append(required("spec.selector"))
    else:
        errors += label_selector.validate(sel, "spec.selector")
        if label_selector.is_empty(sel):
            errors.append(invalid("spec.selector", field_value.label_selector(sel),
                                  "empty selector is invalid for statefulset"))
    template = spec.get("template")
    if not isinstance(template, dict):
        errors.append(required("spec.template"))
    else:
        labels = _template_labels(template)
        if sel is not None and not label_selector.is_empty(sel) and \
                not label_selector.validate(sel, "") and not label_selector.matches(sel, labels):
            errors.append(invalid("spec.template.metadata.labels", field_value.render(labels),
                                  NO_MATCH))
        meta = template.get("metadata") if isinstance(template.get("metadata"), dict) else {}
        errors += validation.labels(meta.get("labels"), "spec.template.labels")
        errors += validation.string_map(meta.get("annotations"), "spec.template.annotations")
    errors += _always_restart(spec, "StatefulSet")
    return errors + _status_counts(obj, ("replicas", "readyReplicas", "currentReplicas",
                                         "updatedReplicas", "availableReplicas",
                                         "observedGeneration", "collisionCount"))


_STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy",
                "persistentVolumeClaimRetentionPolicy", "minReadySeconds")


def validate_statefulset_update(new: dict, old: dict) -> list[dict]:
    errors = validate_statefulset(new, False)
    rest = {k: v for k, v in (new.get("spec") or {}).items() if k not in _STS_MUTABLE}
    old_rest = {k: v for k, v in (old.get("spec") or {}).items() if k not in _STS_MUTABLE}
    if rest != old_rest:
        errors.append(forbidden_field("spec", "updates to statefulset spec for fields other "
                                      "than 'replicas', 'ordinals', 'template', "
                                      "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' "
                                      "and 'minReadySeconds' are forbidden"))
    return errors


def validate_controller_revision(obj: dict) -> list[dict]:
    errors = []
    if obj.get("data") is None:
        errors.append(required("data", "data is mandatory"))
    return errors + nonnegative(obj.get("revision", 0), "revision")


def validate_controller_revision_update(new: dict, old: dict) -> list[dict]:
    errors = validate_controller_revision(new)
    if new.get("data") != old.get("data"):
        errors.append(invalid("data", field_value.render(new.get("data")), IMMUTABLE))
    return errors


# batch/v1

def _job_spec(spec: dict, path: str, creating: bool) -> list[dict]:
    """validateJobSpec: counts, completion mode and a template whose pods end."""
    errors = []
    for f in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
              "ttlSecondsAfterFinished", "backoffLimitPerIndex", "maxFailedIndexes"):
        errors += nonnegative(spec.get(f), f"{path}.{f}")
    mode = spec.get("completionMode")
    if mode is not None and mode not in COMPLETION_MODES:
        errors.append(not_supported(f"{path}.completionMode", mode, COMPLETION_MODES))
    if mode == "Indexed" and spec.get("completions") is None:
        errors.append(required(f"{path}.completions", "when completion mode is Indexed"))
    errors += pod_template(spec.get("template"), f"{path}.template", creating)
    pod = (spec.get("template") or {}).get("spec") if isinstance(spec.get("template"), dict) \
        else None
    if isinstance(pod, dict) and pod.get("restartPolicy") not in ("OnFailure", "Never"):
        errors.append(not_supported(f"{path}.template.spec.restartPolicy",
                                    pod.get("restartPolicy", ""), ["OnFailure", "Never"]))
    return errors


def validate_job(obj: dict, creating: bool = True) -> list[dict]:
    spec = _spec_of(obj)
    if spec is None:
        return [required("spec")]
    errors = _job_spec(spec, "spec", creating)
    sel = spec.get("selector")
    if sel is None:
        errors.append(required("spec.selector"))
    else:
        sel_errors = label_selector.validate(sel, "spec.selector")
        errors += sel_errors
        labels = _template_labels(spec.get("template"))
        if not sel_errors and not label_selector.matches(sel, labels):
            errors.append(invalid("spec.template.metadata.labels", field_value.render(labels),
                                  NO_MATCH))
    name = (obj.get("metadata") or {}).get("name") or ""
    completions = spec.get("completions")
    if spec.get("completionMode") == "Indexed" and _is_int(completions) and completions > 0:
        hostname = f"{name}-{completions - 1}"
        if validation.dns1123_label(hostname, "metadata.name"):
            errors.append(invalid("metadata.name", field_value.render(name), "will not able to "
                                  f"create pod with invalid DNS label: {hostname}"))
    return errors + _status_counts(obj, ("active", "succeeded", "failed", "ready",
                                         "terminating"))


def validate_job_update(new: dict, old: dict) -> list[dict]:
    errors = validate_job(new, False) + _selector_immutable(new, old)
    spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    if spec.get("completionMode") != old_spec.get("completionMode"):
        errors.append(invalid("spec.completionMode", field_value.render(spec.get("completionMode")),
                              IMMUTABLE))
    if spec.get("completionMode") != "Indexed" and \
            spec.get("completions") != old_spec.get("completions"):
        errors.append(invalid("spec.completions", field_value.render(spec.get("completions")),
                              IMMUTABLE))
    # A suspended Job that never started may change its pods' scheduling; nothing else may.
    if spec.get("template") != old_spec.get("template") and not (
            old_spec.get("suspend") and not (old.get("status") or {}).get("startTime")):
        errors.append(invalid("spec.template", field_value.render(spec.get("template")),
                              IMMUTABLE))
    return errors


def _schedule(spec: dict) -> list[dict]:
    schedule = spec.get("schedule")
    if not schedule:
        return [required("spec.schedule")]
    if not isinstance(schedule, str):
        return [invalid("spec.schedule", field_value.render(schedule), "must be a string")]
    if "TZ=" in schedule:
        return [invalid("spec.schedule", field_value.render(schedule), "cannot use TZ or CRON_TZ "
                        "in schedule, use timeZone field instead")]
    try:
        cron.parse(schedule)
    except cron.CronError as e:
        return [invalid("spec.schedule", field_value.render(schedule), str(e))]
    return []


def _time_zone(spec: dict) -> list[dict]:
    tz = spec.get("timeZone")
    if tz is None:
        return []
    bad = not isinstance(tz, str) or not tz or tz != tz.strip() or tz.lower() == "local"
    if not bad:
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            bad = True
    if bad:
        return [invalid("spec.timeZone", field_value.render(tz), f"unknown time zone {tz}")]
    return []


def validate_cronjob(obj: dict, creating: bool = True) -> list[dict]:
    spec = _spec_of(obj)
    if spec is None:
        return [required("spec")]
    errors = []
    name = (obj.get("metadata") or {}).get("name") or ""
    if creating and len(name) > CRONJOB_NAME_MAX:
        errors.append(invalid("metadata.name", field_value.render(name),
                              f"must be no more than {CRONJOB_NAME_MAX} characters"))
    errors += _schedule(spec) + _time_zone(spec)
    policy = spec.get("concurrencyPolicy")
    if policy not in CONCURRENCY_POLICIES:
        errors.append(not_supported("spec.concurrencyPolicy", policy or "",
                                    CONCURRENCY_POLICIES))
    for f in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        errors += nonnegative(spec.get(f), f"spec.{f}")
    template = spec.get("jobTemplate")
    job_spec = template.get("spec") if isinstance(template, dict) else None
    if not isinstance(job_spec, dict):
        return errors + [required("spec.jobTemplate.spec")]
    errors += _job_spec(job_spec, "spec.jobTemplate.spec", creating)
    if job_spec.get("selector") is not None:
        errors.append(invalid("spec.jobTemplate.spec.selector",
                              field_value.label_selector(job_spec["selector"]),
                              "`selector` will be auto-generated"))
    if job_spec.get("manualSelector") is True:
        errors.append(_unsupported_struct("spec.jobTemplate.spec.manualSelector", "true",
                                          ["nil", "false"]))
    return errors


def validate_cronjob_update(new: dict, old: dict) -> list[dict]:
    return validate_cronjob(new, False)


# policy/v1

def validate_pdb(obj: dict) -> list[dict]:
    spec = _spec_of(obj)
    if spec is None:
        return []
    errors = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        errors.append(invalid("spec", field_value.go_struct(spec, (
            "minAvailable", "selector", "maxUnavailable", "unhealthyPodEvictionPolicy")),
            "minAvailable and maxUnavailable cannot be both set"))
    errors += int_or_percent(spec.get("minAvailable"), "spec.minAvailable")
    errors += int_or_percent(spec.get("maxUnavailable"), "spec.maxUnavailable")
    errors += label_selector.validate(spec.get("selector"), "spec.selector")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in UNHEALTHY_POD_EVICTION_POLICIES:
        errors.append(not_supported("spec.unhealthyPodEvictionPolicy", policy,
                                    UNHEALTHY_POD_EVICTION_POLICIES))
    return errors + _status_counts(obj, ("disruptionsAllowed", "currentHealthy",
                                         "desiredHealthy", "expectedPods",
                                         "observedGeneration"))
