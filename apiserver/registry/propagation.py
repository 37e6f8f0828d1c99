"""Delete propagation (DeleteOptions.propagationPolicy / orphanDependents): which of the
garbage collector's finalizers a DELETE leaves on the object, as kube's generic registry
store decides in deletionFinalizersForGarbageCollection."""
from __future__ import annotations

from kubeapi import status

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
POLICIES = ["Foreground", "Background", "Orphan"]


def requested_policy(options: dict) -> str | None:
    """Foreground, Background, Orphan or None (the resource's default); 422 for bad options."""
    policy, orphan = options.get("propagationPolicy"), options.get("orphanDependents")
    causes = []
    if policy is not None and orphan is not None:
        causes.append(status.invalid_value("propagationPolicy", policy, "orphanDependents and "
                                           "deletionPropagation cannot be both set"))
    if policy is not None and policy not in POLICIES:
        causes.append(status.not_supported("propagationPolicy", policy, POLICIES + ["nil"]))
    if causes:
        error = status.invalid("DeleteOptions", "", causes, "meta.k8s.io")
        error.message = error.message.replace("DeleteOptions", "DeleteOptions.meta.k8s.io", 1)
        raise error
    if orphan is not None:
        return "Orphan" if orphan else "Background"
    return policy


def finalizers_after_delete(current: list[str] | None, options: dict,
                            default_policy: str) -> list[str]:
    """The object's finalizers once this DELETE is accepted."""
    finalizers = list(current or [])
    policy = requested_policy(options)
    if policy is None:
        # Without a request, an orphan finalizer the object already carries decides.
        if ORPHAN in finalizers or FOREGROUND in finalizers:
            return finalizers
        policy = default_policy
    wanted = {"Foreground": FOREGROUND, "Orphan": ORPHAN}.get(policy)
    finalizers = [f for f in finalizers if f not in (FOREGROUND, ORPHAN) or f == wanted]
    if wanted and wanted not in finalizers:
        finalizers.append(wanted)
    return finalizers


def query_options(query: dict[str, str]) -> dict:
    """DeleteOptions' propagation fields given as query parameters (the Python client's
    propagation_policy=...), as the body would carry them."""
    out: dict = {}
    if "propagationPolicy" in query:
        out["propagationPolicy"] = query["propagationPolicy"]
    if "orphanDependents" in query:
        out["orphanDependents"] = query["orphanDependents"].lower() in ("1", "true")
    return out
