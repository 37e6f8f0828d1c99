"""Writing a workload's status subresource as kube's controllers do: a PUT of the whole object
with the new status, only when it differs. A conflict is raised for the worker to sync again
from a fresh cache: a status computed from a stale object must not overwrite a newer one."""
from __future__ import annotations

from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError


def put_status(client: ApiClient, path: str, obj: dict, status: dict) -> dict | None:
    """The object as written (or unchanged); None when it is gone. `path` is the object's URL."""
    if (obj.get("status") or {}) == status:
        return obj
    try:
        return client.request("PUT", f"{path}/status", {**obj, "status": status})
    except ApiError as e:
        if e.code == 404:
            return None
        raise
