"""Reading an object from the API rather than from an informer's cache, for the questions a
cache that lags must not answer: is an owner still there before it adopts, is a claim really
gone, has a Job's TTL changed."""
from __future__ import annotations

from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError


def fresh_read(client: ApiClient, path: str) -> dict | None:
    """The object at `path` as the API has it now; None when it is gone."""
    try:
        return client.get(path)
    except ApiError as e:
        if e.code == 404:
            return None
        raise
