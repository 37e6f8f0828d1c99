"""What the API server serves, from its discovery documents (/api, /apis and each
group-version's APIResourceList): the resources a controller can list, watch and delete."""
from __future__ import annotations

from dataclasses import dataclass

from kubeapi.informer import resource_path
from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    def path(self, namespace: str = "") -> str:
        return resource_path(self.group, self.version, self.plural,
                             namespace if self.namespaced else "")

    def object_path(self, namespace: str, name: str) -> str:
        return f"{self.path(namespace)}/{name}"


def _group_versions(client: ApiClient) -> list[tuple[str, str]]:
    """Every served group-version: the preferred one of each group first."""
    out = [("", v) for v in (client.get("/api").get("versions") or [])]
    for group in client.get("/apis").get("groups") or []:
        preferred = (group.get("preferredVersion") or {}).get("version")
        versions = [v["version"] for v in group.get("versions") or []]
        versions.sort(key=lambda v: v != preferred)
        out += [(group["name"], v) for v in versions]
    return out


def resources(client: ApiClient, verbs: tuple[str, ...] = ("list", "watch", "delete")
              ) -> list[Resource]:
    """The top-level resources (no subresources) that allow all these verbs, one version per
    group and kind (the preferred one). A group-version whose list fails is skipped."""
    found: dict[tuple[str, str], Resource] = {}
    for group, version in _group_versions(client):
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            listing = client.get(path)
        except ApiError:
            continue
        for entry in listing.get("resources") or []:
            if "/" in entry.get("name", "") or not set(verbs) <= set(entry.get("verbs") or []):
                continue
            res = Resource(group, version, entry["name"], entry["kind"],
                           bool(entry.get("namespaced")))
            found.setdefault((group, res.kind), res)
    return list(found.values())
