"""ConfigMaps and Secrets as the pods' env and volumes need them: read from the API server when
they are needed (the kubelet's "Get" change detection strategy: every pod sync reads them again,
so an update reaches the volumes within a sync period). Secret values come back decoded."""
from __future__ import annotations

import base64

from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError


class ObjectMissing(LookupError):
    """The object does not exist (the API server said 404)."""


class ObjectUnavailable(RuntimeError):
    """It could not be read: no API server in standalone mode, or it did not answer."""


class ConfigObjects:
    def __init__(self, client: ApiClient | None) -> None:
        self.client = client

    def config_map(self, namespace: str, name: str) -> dict[str, bytes]:
        """data and binaryData of the ConfigMap, as bytes."""
        obj = self._get("configmaps", "configMap", namespace, name)
        result = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
        for k, v in (obj.get("binaryData") or {}).items():
            result[k] = base64.b64decode(v)
        return result

    def secret(self, namespace: str, name: str) -> dict[str, bytes]:
        obj = self._get("secrets", "secret", namespace, name)
        result = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        # stringData is folded into data by the API server; a server that keeps it still counts
        for k, v in (obj.get("stringData") or {}).items():
            result[k] = str(v).encode()
        return result

    def _get(self, resource: str, kind: str, namespace: str, name: str) -> dict:
        if self.client is None:
            raise ObjectUnavailable(f"couldn't get {kind} {namespace}/{name}, no kubeClient "
                                    "defined")
        try:
            return self.client.get(f"/api/v1/namespaces/{namespace}/{resource}/{name}")
        except ApiError as e:
            if e.code == 404:
                raise ObjectMissing(f'{resource} "{name}" not found') from None
            raise ObjectUnavailable(f"couldn't get {kind} {namespace}/{name}: {e}") from None
