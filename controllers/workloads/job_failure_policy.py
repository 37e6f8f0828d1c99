"""A Job's spec.podFailurePolicy, as kube's matchPodFailurePolicy: the first rule that matches
a failed pod (by the exit codes of its terminated containers, or by its conditions) decides
whether the failure fails the whole job (FailJob), is not counted (Ignore), or counts against
backoffLimit (Count, and FailIndex where indexes have no limits of their own)."""
from __future__ import annotations


def _exit_code_matches(rule: dict, pod: dict) -> tuple[str, int] | None:
    """(container, exit code) of the first terminated container the rule matches."""
    status = pod.get("status") or {}
    statuses = (status.get("initContainerStatuses") or []) + \
        (status.get("containerStatuses") or [])
    name = rule.get("containerName")
    values = rule.get("values") or []
    for cs in statuses:
        if name and cs.get("name") != name:
            continue
        terminated = (cs.get("state") or {}).get("terminated")
        if not terminated:
            continue
        code = terminated.get("exitCode", 0)
        if code == 0:  # kube never matches a container that succeeded
            continue
        if (rule.get("operator") == "In") == (code in values):
            return cs.get("name", ""), code
    return None


def _condition_matches(patterns: list[dict], pod: dict) -> str | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        for pattern in patterns:
            if cond.get("type") == pattern.get("type") and \
                    cond.get("status") == pattern.get("status", "True"):
                return cond["type"]
    return None


def match(job: dict, pod: dict) -> tuple[str, str]:
    """(action, FailJob message) for a failed pod; ("Count", "") when no rule matches."""
    rules = ((job["spec"].get("podFailurePolicy") or {}).get("rules")) or []
    meta = pod["metadata"]
    who = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    for index, rule in enumerate(rules):
        action = rule.get("action", "Count")
        if rule.get("onExitCodes"):
            hit = _exit_code_matches(rule["onExitCodes"], pod)
            if hit is not None:
                return action, (f"Container {hit[0]} for pod {who} failed with exit code "
                                f"{hit[1]} matching {action} rule at index {index}")
        elif rule.get("onPodConditions"):
            kind = _condition_matches(rule["onPodConditions"], pod)
            if kind is not None:
                return action, (f"Pod {who} has condition {kind} matching {action} rule at "
                                f"index {index}")
    return "Count", ""
