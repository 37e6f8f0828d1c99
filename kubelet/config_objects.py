"""ConfigMaps, Secrets and Services as the pods' env and volumes need them. ConfigMaps and
Secrets come from the object cache, which watches each one a pod references (object_cache);
Secret values come back decoded. Services come from an informer, as the kubelet's service
lister."""
from __future__ import annotations

import base64

from kubeapi.informer import Informer
from kubeapi.restclient import ApiClient
from kubelet.object_cache import CacheNotReady, ObjectCache


class ObjectMissing(LookupError):
    """The object does not exist (the API server said 404)."""


class ObjectUnavailable(RuntimeError):
    """It could not be read: no API server in standalone mode, or it did not answer."""


class ConfigObjects:
    def __init__(self, client: ApiClient | None, service_cache: Informer | None = None,
                 cache: ObjectCache | None = None) -> None:
        """service_cache: the kubelet's informer of every Service (for the pods' service
        environment variables); cache: the pods' ConfigMaps and Secrets; all None without an
        API server."""
        self.client = client
        self.service_cache = service_cache
        self.cache = cache

    def services(self, wait_for_sync: bool = True) -> list[dict]:
        """Every Service of the cluster as the kubelet's cache has it ([] without an API
        server). Until the first list is in, a pod of the API server cannot be given its
        variables (KUBERNETES_SERVICE_HOST would silently be missing); a static pod, which
        may run before the API server does, gets what there is."""
        if self.service_cache is None:
            return []
        if wait_for_sync and not self.service_cache.has_synced():
            raise ObjectUnavailable("services have not yet been read at least once, cannot "
                                    "construct envvars")
        return self.service_cache.store.list()

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
        if self.cache is None:
            raise ObjectUnavailable(f"couldn't get {kind} {namespace}/{name}, no kubeClient "
                                    "defined")
        try:
            obj = self.cache.get(resource, namespace, name)
        except CacheNotReady as e:
            raise ObjectUnavailable(f"couldn't get {kind} {namespace}/{name}: {e}") from None
        if obj is None:
            raise ObjectMissing(f'{resource} "{name}" not found')
        return obj
