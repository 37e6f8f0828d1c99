"""What the Deployment controller computes without the API, as kube's deployment/util: the
pod-template-hash, template equality ignoring it, revisions and the annotations a ReplicaSet
carries, maxSurge/maxUnavailable from ints or percentages, the new ReplicaSet's size in a
rolling update, proportional scaling, the status and its conditions."""
from __future__ import annotations

import copy
import json
import math
import re
import struct

from kubeapi import timefmt

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Deployment annotations that are not copied to its ReplicaSets (kube's annotationsToSkip).
SKIPPED_ANNOTATIONS = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS,
                                 MAX_REPLICAS, ROLLBACK_TO})
MAX_REV_HISTORY_CHARS = 2000
NO_DEADLINE = 2147483647

# Condition reasons (kube's deployment util names).
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
FAILED_RS_CREATE = "ReplicaSetCreateError"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery rand's alphanums


def _fnv32a(data: bytes, h: int = 0x811C9DC5) -> int:
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """rand.SafeEncodeString: every byte mapped onto consonants and digits that spell no words."""
    return "".join(_SAFE[b % len(_SAFE)] for b in text.encode())


def compute_hash(template: dict, collision_count: int | None) -> str:
    """controller.ComputeHash: FNV-32a of the template (here its canonical JSON; kube hashes
    Go's spew dump of the struct), then the collision count as 8 little-endian bytes, written
    as decimal and safe-encoded: names as web-6d4b8f9c7."""
    h = _fnv32a(json.dumps(template, sort_keys=True, separators=(",", ":")).encode())
    if collision_count is not None:
        h = _fnv32a(struct.pack("<I", collision_count & 0xFFFFFFFF) + b"\0" * 4, h)
    return safe_encode(str(h))


def _without_hash(template: dict | None) -> dict:
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if labels is not None:
        labels.pop(HASH_LABEL, None)
        if not labels:
            t["metadata"].pop("labels")
    return t


def equal_ignore_hash(a: dict | None, b: dict | None) -> bool:
    return _without_hash(a) == _without_hash(b)


def created(obj: dict) -> tuple:
    return (obj["metadata"].get("creationTimestamp") or "", obj["metadata"].get("name", ""))


def revision(obj: dict) -> int:
    try:
        return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def replicas(rs: dict | None) -> int:
    return 0 if rs is None else (rs.get("spec") or {}).get("replicas", 1)


def status_of(rs: dict | None, field: str) -> int:
    return 0 if rs is None else (rs.get("status") or {}).get(field) or 0


def find_new(deployment: dict, rss: list[dict]) -> dict | None:
    """The oldest ReplicaSet whose template is the Deployment's."""
    for rs in sorted(rss, key=created):
        if equal_ignore_hash(rs["spec"].get("template"), deployment["spec"].get("template")):
            return rs
    return None


def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent; ValueError for anything but an int or "N%"."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"(\d+)%", str(value))
    if not m:
        raise ValueError(f"invalid value for IntOrString: invalid value {value!r}")
    scaled = int(m.group(1)) * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)


def is_rolling(d: dict) -> bool:
    return ((d["spec"].get("strategy") or {}).get("type") or "RollingUpdate") == "RollingUpdate"


def fenceposts(d: dict) -> tuple[int, int]:
    """ResolveFenceposts: (maxSurge rounded up, maxUnavailable rounded down); both 0 is
    impossible, so maxUnavailable becomes 1."""
    rolling = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    desired = d["spec"].get("replicas", 1)
    surge = scaled_value(rolling.get("maxSurge", "25%"), desired, True)
    unavailable = scaled_value(rolling.get("maxUnavailable", "25%"), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: dict) -> int:
    return fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: dict) -> int:
    desired = d["spec"].get("replicas", 1)
    if not is_rolling(d) or desired == 0:
        return 0
    return min(fenceposts(d)[1], desired)


def new_rs_new_replicas(d: dict, all_rss: list[dict], new_rs: dict) -> int:
    """NewRSNewReplicas: how far the new ReplicaSet may grow now."""
    desired = d["spec"].get("replicas", 1)
    if not is_rolling(d):
        return desired
    current = sum(replicas(rs) for rs in all_rss)
    max_total = desired + max_surge(d)
    if current >= max_total:
        return replicas(new_rs)
    return replicas(new_rs) + min(max_total - current, desired - replicas(new_rs))


def set_replicas_annotations(rs: dict, desired: int, max_replicas: int) -> bool:
    annotations = rs["metadata"].setdefault("annotations", {})
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(max_replicas))):
        if annotations.get(key) != value:
            annotations[key] = value
            changed = True
    return changed


def set_new_rs_annotations(d: dict, rs: dict, new_revision: str, exists: bool) -> bool:
    """SetNewReplicaSetAnnotations: the Deployment's own annotations, the revision (the old one
    kept in revision-history when a ReplicaSet comes back), and for a new one the replica
    annotations."""
    annotations = rs["metadata"].setdefault("annotations", {})
    changed = False
    for key, value in (d["metadata"].get("annotations") or {}).items():
        if key not in SKIPPED_ANNOTATIONS and annotations.get(key) != value:
            annotations[key] = value
            changed = True
    old = annotations.get(REVISION, "")
    try:
        old_number = int(old) if old else 0
    except ValueError:
        old_number = 0
    if old_number < int(new_revision):
        annotations[REVISION] = new_revision
        changed = True
        if old:
            history = annotations.get(REVISION_HISTORY)
            history = f"{history},{old}" if history else old
            annotations[REVISION_HISTORY] = history[-MAX_REV_HISTORY_CHARS:].lstrip(",")
    if not exists and set_replicas_annotations(rs, d["spec"].get("replicas", 1),
                                               d["spec"].get("replicas", 1) + max_surge(d)):
        changed = True
    return changed


def proportion(rs: dict, d: dict, to_add: int, added: int) -> int:
    """GetProportion: this ReplicaSet's share of a scaling, by its max-replicas annotation."""
    if replicas(rs) == 0 or to_add == added:
        return 0
    desired = d["spec"].get("replicas", 1)
    if desired == 0:
        fraction = -replicas(rs)
    else:
        total = desired + max_surge(d)
        try:
            annotated = int((rs["metadata"].get("annotations") or {})[MAX_REPLICAS])
        except (KeyError, ValueError):
            annotated = (d.get("status") or {}).get("replicas") or 0
        if annotated == 0:
            fraction = 0
        else:
            fraction = math.floor(replicas(rs) * total / annotated + 0.5) - replicas(rs)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def is_saturated(d: dict, rs: dict | None) -> bool:
    if rs is None:
        return False
    desired = d["spec"].get("replicas", 1)
    annotated = (rs["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS)
    return annotated == str(desired) and replicas(rs) == desired and \
        status_of(rs, "availableReplicas") == desired


def has_deadline(d: dict) -> bool:
    return d["spec"].get("progressDeadlineSeconds", 600) not in (None, NO_DEADLINE)


def condition(status: dict, type_: str) -> dict | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), None)


def new_condition(type_: str, status: str, reason: str, message: str,
                  now: float | None = None) -> dict:
    stamp = timefmt.rfc3339(now)
    return {"type": type_, "status": status, "lastUpdateTime": stamp,
            "lastTransitionTime": stamp, "reason": reason, "message": message}


def set_condition(status: dict, cond: dict) -> None:
    """SetDeploymentCondition: nothing when status and reason stay; lastTransitionTime kept
    when only the reason changes."""
    current = condition(status, cond["type"])
    if current and current["status"] == cond["status"] and current["reason"] == cond["reason"]:
        return
    if current and current["status"] == cond["status"]:
        cond = {**cond, "lastTransitionTime": current["lastTransitionTime"]}
    remove_condition(status, cond["type"])
    status.setdefault("conditions", []).append(cond)


def remove_condition(status: dict, type_: str) -> None:
    kept = [c for c in status.get("conditions") or [] if c.get("type") != type_]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)


def calculate_status(d: dict, all_rss: list[dict], new_rs: dict | None) -> dict:
    """calculateStatus: counts from the ReplicaSets' status, the Available condition; zero
    counts left out as Go's omitempty does."""
    available = sum(status_of(rs, "availableReplicas") for rs in all_rss)
    total = sum(replicas(rs) for rs in all_rss)
    old = d.get("status") or {}
    counts = {"observedGeneration": d["metadata"].get("generation") or 0,
              "replicas": sum(status_of(rs, "replicas") for rs in all_rss),
              "updatedReplicas": status_of(new_rs, "replicas"),
              "readyReplicas": sum(status_of(rs, "readyReplicas") for rs in all_rss),
              "availableReplicas": available,
              "unavailableReplicas": max(0, total - available)}
    status: dict = {k: v for k, v in counts.items() if v}
    terminating = [rs["status"]["terminatingReplicas"] for rs in all_rss
                   if rs is not None and (rs.get("status") or {}).get("terminatingReplicas")
                   is not None]
    if terminating:  # a pointer: absent only when no ReplicaSet reports it
        status["terminatingReplicas"] = sum(terminating)
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if old.get("conditions"):
        status["conditions"] = copy.deepcopy(old["conditions"])
    if available >= d["spec"].get("replicas", 1) - max_unavailable(d):
        set_condition(status, new_condition("Available", "True", MIN_AVAILABLE,
                                            "Deployment has minimum availability."))
    else:
        set_condition(status, new_condition("Available", "False", MIN_UNAVAILABLE,
                                            "Deployment does not have minimum availability."))
    return status


def complete(d: dict, status: dict) -> bool:
    """DeploymentComplete: every replica updated and available, and this generation seen."""
    desired = d["spec"].get("replicas", 1)
    return status.get("updatedReplicas", 0) == desired and \
        status.get("replicas", 0) == desired and \
        status.get("availableReplicas", 0) == desired and \
        status.get("observedGeneration", 0) >= (d["metadata"].get("generation") or 0)


def progressing(d: dict, status: dict) -> bool:
    """DeploymentProgressing: more updated, ready or available replicas, or fewer old ones."""
    old = d.get("status") or {}
    old_old = old.get("replicas", 0) - old.get("updatedReplicas", 0)
    new_old = status.get("replicas", 0) - status.get("updatedReplicas", 0)
    return status.get("updatedReplicas", 0) > old.get("updatedReplicas", 0) or \
        new_old < old_old or \
        status.get("readyReplicas", 0) > old.get("readyReplicas", 0) or \
        status.get("availableReplicas", 0) > old.get("availableReplicas", 0)


def timed_out(d: dict, status: dict, now: float) -> bool:
    if not has_deadline(d):
        return False
    cond = condition(status, "Progressing")
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    return timefmt.parse(cond["lastUpdateTime"]) + d["spec"]["progressDeadlineSeconds"] < now
