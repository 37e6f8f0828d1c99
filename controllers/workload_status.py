"""Writing a workload's status subresource as kube's controllers do: a PUT of the whole object
with the new status, only when it differs, once more from a fresh read on a conflict."""
from __future__ import annotations

from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError


def put_status(client: ApiClient, path: str, obj: dict, status: dict) -> dict | None:
    """The object as written (or unchanged); None when it is gone. `path` is the object's URL."""
    current = obj
    for attempt in range(2):
        if (current.get("status") or {}) == status:
            return current
        try:
            return client.request("PUT", f"{path}/status", {**current, "status": status})
        except ApiError as e:
            if e.code == 404:
                return None
            if e.code != 409 or attempt:
                raise
            try:
                current = client.get(path)
            except ApiError as e2:
                if e2.code == 404:
                    return None
                raise
    return None
