"""A resource type: its group, version, names and kind, and the strategy its store applies."""
from __future__ import annotations

from dataclasses import dataclass, field

from .strategy import Strategy


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    strategy: Strategy
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> verbs
    deprecation: str = ""  # the Warning every request of it gets, as kube's deprecated APIs

    @property
    def namespaced(self) -> bool:
        return self.strategy.namespaced

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """"pods" or "leases.coordination.k8s.io", as errors name resources."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def key_prefix(self, namespace: str = "") -> str:
        base = f"/registry/{self.group + '/' if self.group else ''}{self.plural}/"
        return base + namespace + "/" if namespace else base

    def key(self, namespace: str, name: str) -> str:
        return self.key_prefix(namespace if self.namespaced else "") + name
