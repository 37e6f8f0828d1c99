"""kube-apiserver's etcd key layout, so that it and pyapiserver can share one etcd.

The registry names an object `/registry/<group>/<plural>/<namespace>/<name>` (no group for the
core API). kube-apiserver stores its built-in resources without the group, under the plural
or, for a few core resources, under the prefix its storage factory has kept from old releases
(nodes under `minions`, services under `services/specs` ...). Keys of anything else (kube's
RangeAllocations, resources this server does not serve) keep their path; `/registry` becomes
--etcd-prefix.
"""
from __future__ import annotations

from typing import Iterable

REGISTRY = "/registry"
# kube-apiserver's storage factory: resources whose etcd prefix is not their plural.
_LEGACY_PREFIXES = {("", "nodes"): "minions", ("", "services"): "services/specs",
                    ("", "endpoints"): "services/endpoints"}


class KeyLayout:
    def __init__(self, prefix: str, resources: Iterable[tuple[str, str]]):
        """resources: the (group, plural) pairs this server stores, all built into kube."""
        self.prefix = prefix.rstrip("/")
        # "<group>/<plural>/" (or "<plural>/") <-> kube's "<prefix>/", both relative to the root
        self._to_etcd: dict[str, str] = {}
        self._to_registry: dict[str, str] = {}
        for group, plural in resources:
            ours = f"{group}/{plural}/" if group else f"{plural}/"
            theirs = _LEGACY_PREFIXES.get((group, plural), plural) + "/"
            self._to_etcd[ours] = theirs
            self._to_registry[theirs] = ours

    @staticmethod
    def _resource(rest: str, table: dict[str, str]) -> str:
        """The entry of `table` that `rest` starts with: two path segments, then one."""
        parts = rest.split("/", 2)
        if len(parts) == 3 and f"{parts[0]}/{parts[1]}/" in table:
            return f"{parts[0]}/{parts[1]}/"
        if len(parts) >= 2 and f"{parts[0]}/" in table:
            return f"{parts[0]}/"
        return ""

    def etcd_key(self, key: str) -> bytes:
        """The etcd key of a registry key or key prefix (`/registry/...`)."""
        rest = key[len(REGISTRY) + 1:]
        head = self._resource(rest, self._to_etcd)
        if head:
            rest = self._to_etcd[head] + rest[len(head):]
        return f"{self.prefix}/{rest}".encode()

    def registry_key(self, ekey: bytes) -> str:
        rest = ekey.decode()[len(self.prefix) + 1:]
        head = self._resource(rest, self._to_registry)
        if head:
            rest = self._to_registry[head] + rest[len(head):]
        return f"{REGISTRY}/{rest}"
