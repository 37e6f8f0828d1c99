"""ControllerRevisions of DaemonSets and StatefulSets, as kube's controller/history: each
distinct pod template is kept as a revision named `<owner>-<hash>` whose data is the patch that
restores it ({"spec": {"template": {..., "$patch": "replace"}}}), numbered in order of use;
going back to an earlier template renumbers its revision instead of making a new one, and
revisions beyond revisionHistoryLimit that no pod uses are deleted."""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass

from kubeapi.informer import NAMESPACE_INDEX, Informer
from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError

from .controller_ref import owner_reference
from .deployment_util import compute_hash
from .pod_util import controller_ref

REVISION_HASH = "controller-revision-hash"


def revisions_path(ns: str, name: str = "") -> str:
    base = f"/apis/apps/v1/namespaces/{ns}/controllerrevisions"
    return f"{base}/{name}" if name else base


def revision_data(owner: dict) -> dict:
    template = copy.deepcopy(owner["spec"].get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def _of(owner: dict, revisions: list[dict]) -> list[dict]:
    """Those of `revisions` the owner controls, oldest revision number first."""
    uid = owner["metadata"]["uid"]
    return sorted((r for r in revisions if (controller_ref(r) or {}).get("uid") == uid),
                  key=lambda r: (r.get("revision", 0), r["metadata"]["name"]))


def _newest_and_same(owned: list[dict], data: dict) -> tuple[int, list[dict]]:
    """The highest revision number of `owned`, and those of them whose data is `data`."""
    wanted = _canonical(data)
    return (max((r.get("revision", 0) for r in owned), default=0),
            [r for r in owned if _canonical(r.get("data")) == wanted])


def _canonical(data: object) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


@dataclass
class History:
    client: ApiClient
    revisions: Informer

    def owned(self, owner: dict) -> list[dict]:
        """The owner's revisions in the informer's copy, oldest revision number first."""
        ns = owner["metadata"]["namespace"]
        return _of(owner, self.revisions.store.by_index(NAMESPACE_INDEX, ns))

    def current(self, owner: dict, owned: list[dict]) -> tuple[dict, list[dict]]:
        """The revision of the owner's template (created or renumbered to be the newest) and
        the owner's revisions after that."""
        data = revision_data(owner)
        ns = owner["metadata"]["namespace"]
        top, same = _newest_and_same(owned, data)
        if same and same[-1].get("revision", 0) >= top:
            return same[-1], owned
        # A revision number is about to be written. The informer may not have brought the
        # revisions of the last syncs yet (a template changed twice in quick succession, or
        # just after the first revision): numbered from its copy, two revisions would get the
        # same number, and kubectl's rollout history would show one of them.
        owned = _of(owner, self.client.get(revisions_path(ns))["items"])
        top, same = _newest_and_same(owned, data)
        if same:
            rev = same[-1]
            if rev.get("revision", 0) < top:
                rev = self.client.patch(revisions_path(ns, rev["metadata"]["name"]),
                                        {"revision": top + 1})
                owned = [r for r in owned if r["metadata"]["uid"] != rev["metadata"]["uid"]]
                owned.append(rev)
            return rev, owned
        collisions = (owner.get("status") or {}).get("collisionCount") or 0
        while True:
            digest = compute_hash(data, collisions or None)
            name = f"{owner['metadata']['name']}-{digest}"
            labels = dict(((owner["spec"].get("template") or {}).get("metadata") or {})
                          .get("labels") or {})
            labels[REVISION_HASH] = digest
            body = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                    "metadata": {"name": name, "namespace": ns, "labels": labels,
                                 "ownerReferences": [owner_reference(owner)]},
                    "data": data, "revision": top + 1}
            try:
                rev = self.client.create(revisions_path(ns), body)
                return rev, owned + [rev]
            except ApiError as e:
                if e.code != 409:
                    raise
            existing = self.client.get(revisions_path(ns, name))
            if (controller_ref(existing) or {}).get("uid") == owner["metadata"]["uid"] and \
                    _canonical(existing.get("data")) == _canonical(data):
                return existing, owned + [existing]
            collisions += 1

    def truncate(self, owner: dict, owned: list[dict], live: set[str]) -> None:
        """Deletes the oldest revisions past revisionHistoryLimit whose name is not in live."""
        limit = owner["spec"].get("revisionHistoryLimit", 10)
        unused = [r for r in owned if r["metadata"]["name"] not in live]
        ns = owner["metadata"]["namespace"]
        for rev in unused[:max(len(unused) - limit, 0)]:
            try:
                self.client.delete(revisions_path(ns, rev["metadata"]["name"]))
            except ApiError as e:
                if e.code != 404:
                    raise
