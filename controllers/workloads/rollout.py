"""One sync of one Deployment, as kube's deployment controller's sync.go, rolling.go,
recreate.go and progress.go: find or create the new ReplicaSet (named `<deployment>-<hash>`,
with the next revision), scale the ReplicaSets (rolling update within maxSurge and
maxUnavailable, Recreate once every old pod is gone, proportional scaling of a rollout in
flight), delete ReplicaSets beyond revisionHistoryLimit, and write the status with the
Progressing and Available conditions."""
from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kubeapi import label_selector, timefmt
from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError

from ..events import EventRecorder
from . import deployment_util as du
from .controller_ref import owner_reference
from .pod_util import controller_ref

log = logging.getLogger("deployment-controller")


def rs_path(namespace: str, name: str = "") -> str:
    base = f"/apis/apps/v1/namespaces/{namespace}/replicasets"
    return f"{base}/{name}" if name else base


def deployment_path(namespace: str, name: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"


@dataclass
class Rollout:
    """`d` is a private copy of the Deployment, refreshed after each of its writes; `rss` are
    the ReplicaSets it controls; `cached_rs(key)` reads the ReplicaSet cache; `pods_of(uid)`
    gives the pods (terminating too) of a ReplicaSet; `requeue_after(seconds)` asks for another
    sync."""
    client: ApiClient
    recorder: EventRecorder
    d: dict
    rss: list[dict]
    cached_rs: Callable[[str], dict | None]
    pods_of: Callable[[str], list[dict]]
    requeue_after: Callable[[float], None]
    now: float = field(default_factory=time.time)

    def event(self, type_: str, reason: str, message: str) -> None:
        self.recorder.event(self.d, type_, reason, message)

    # -- the entry point -------------------------------------------------------------------

    def run(self) -> None:
        d = self.d
        if d["metadata"].get("deletionTimestamp"):
            new, old = self.replica_sets(create=False)
            self.sync_status(old + ([new] if new else []), new)
            return
        self.check_paused()
        if d["spec"].get("paused") or self.scaling_event():
            self.sync_scale()
            return
        if du.is_rolling(d):
            self.rolling()
        else:
            self.recreate()

    # -- ReplicaSets -----------------------------------------------------------------------

    def replica_sets(self, create: bool) -> tuple[dict | None, list[dict]]:
        """getAllReplicaSetsAndSyncRevision: (new or None, old ones)."""
        existing = du.find_new(self.d, self.rss)
        old = [rs for rs in self.rss if existing is None or
               rs["metadata"]["uid"] != existing["metadata"]["uid"]]
        new = self.new_replica_set(existing, old, create)
        return new, old

    def new_replica_set(self, existing: dict | None, old: list[dict],
                        create: bool) -> dict | None:
        d = self.d
        new_revision = str(max((du.revision(rs) for rs in old), default=0) + 1)
        if existing is not None:
            rs = copy.deepcopy(existing)
            changed = du.set_new_rs_annotations(d, rs, new_revision, True)
            min_ready = d["spec"].get("minReadySeconds") or 0
            if changed or (rs["spec"].get("minReadySeconds") or 0) != min_ready:
                rs["spec"]["minReadySeconds"] = min_ready
                return self.client.request("PUT", rs_path(rs["metadata"]["namespace"],
                                                          rs["metadata"]["name"]), rs)
            needs_update = self.set_revision(rs["metadata"]["annotations"].get(du.REVISION, ""))
            if du.has_deadline(d) and du.condition(d.get("status") or {}, "Progressing") is None:
                du.set_condition(d.setdefault("status", {}), du.new_condition(
                    "Progressing", "True", du.FOUND_NEW_RS,
                    f'Found new replica set "{rs["metadata"]["name"]}"'))
                needs_update = True
            if needs_update:
                self.write_status()
            return rs
        if not create:
            return None
        return self.create_replica_set(old, new_revision)

    def create_replica_set(self, old: list[dict], new_revision: str) -> dict:
        d = self.d
        meta = d["metadata"]
        template = copy.deepcopy(d["spec"]["template"])
        hash_ = du.compute_hash(template, (d.get("status") or {}).get("collisionCount"))
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), du.HASH_LABEL: hash_}
        selector = copy.deepcopy(d["spec"]["selector"])
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), du.HASH_LABEL: hash_}
        name = f"{meta['name']}-{hash_}"
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": name, "namespace": meta["namespace"],
                           "labels": dict(tmeta["labels"]),
                           "ownerReferences": [owner_reference(d)]},
              "spec": {"replicas": 0, "minReadySeconds": d["spec"].get("minReadySeconds") or 0,
                       "selector": selector, "template": template}}
        rs["spec"]["replicas"] = du.new_rs_new_replicas(d, old + [rs], rs)
        du.set_new_rs_annotations(d, rs, new_revision, False)
        already = False
        try:
            created = self.client.create(rs_path(meta["namespace"]), rs)
        except ApiError as e:
            if e.code == 409 and e.reason == "AlreadyExists":
                found = self.cached_rs(f"{meta['namespace']}/{name}")
                if found is None:
                    raise  # our own creation the cache has not seen yet: try again later
                ref = controller_ref(found)
                if ref and ref.get("uid") == meta["uid"] and \
                        du.equal_ignore_hash(d["spec"]["template"], found["spec"]["template"]):
                    created, already = found, True
                else:
                    status = d.setdefault("status", {})
                    status["collisionCount"] = (status.get("collisionCount") or 0) + 1
                    self.write_status()
                    raise
            else:
                if e.code != 403 or "being terminated" not in e.message:
                    msg = f'Failed to create new replica set "{name}": {e.message}'
                    if du.has_deadline(d):
                        du.set_condition(d.setdefault("status", {}), du.new_condition(
                            "Progressing", "False", du.FAILED_RS_CREATE, msg))
                        self.write_status()
                    self.event("Warning", du.FAILED_RS_CREATE, msg)
                raise
        if not already and du.replicas(created) > 0:
            self.event("Normal", "ScalingReplicaSet",
                       f"Scaled up replica set {name} from 0 to {du.replicas(created)}")
        needs_update = self.set_revision(new_revision)
        if not already and du.has_deadline(d):
            du.set_condition(d.setdefault("status", {}), du.new_condition(
                "Progressing", "True", du.NEW_RS_CREATED, f'Created new replica set "{name}"'))
            needs_update = True
        if needs_update:
            self.write_status()
        return created

    def set_revision(self, revision: str) -> bool:
        annotations = self.d["metadata"].setdefault("annotations", {})
        if annotations.get(du.REVISION) == revision:
            return False
        annotations[du.REVISION] = revision
        return True

    def write_status(self) -> None:
        """UpdateStatus of the Deployment (it carries the annotations too, as kube's)."""
        meta = self.d["metadata"]
        written = self.client.request(
            "PUT", deployment_path(meta["namespace"], meta["name"]) + "/status", self.d)
        self.d.clear()
        self.d.update(written)

    def scale_rs(self, rs: dict, size: int, operation: str = "") -> tuple[bool, dict]:
        """scaleReplicaSet: the size and the replica annotations; (scaled, the ReplicaSet)."""
        d = self.d
        copy_ = copy.deepcopy(rs)
        size_changed = du.replicas(rs) != size
        annotations_changed = du.set_replicas_annotations(
            copy_, d["spec"].get("replicas", 1), d["spec"].get("replicas", 1) + du.max_surge(d))
        if not size_changed and not annotations_changed:
            return False, rs
        old_size = du.replicas(rs)
        copy_["spec"]["replicas"] = size
        written = self.client.request("PUT", rs_path(rs["metadata"]["namespace"],
                                                     rs["metadata"]["name"]), copy_)
        if size_changed:
            operation = operation or ("up" if size > old_size else "down")
            self.event("Normal", "ScalingReplicaSet",
                       f"Scaled {operation} replica set {rs['metadata']['name']} from "
                       f"{old_size} to {size}")
        return size_changed, written

    # -- scaling (sync.go) -----------------------------------------------------------------

    def scaling_event(self) -> bool:
        new, old = self.replica_sets(create=False)
        desired = str(self.d["spec"].get("replicas", 1))
        for rs in [r for r in old + ([new] if new else []) if du.replicas(r) > 0]:
            annotated = (rs["metadata"].get("annotations") or {}).get(du.DESIRED_REPLICAS)
            if annotated is not None and annotated != desired:
                return True
        return False

    def sync_scale(self) -> None:
        new, old = self.replica_sets(create=False)
        self.scale(new, old)
        if self.d["spec"].get("paused"):
            self.cleanup(old)
        self.sync_status(old + ([new] if new else []), new)

    def scale(self, new: dict | None, old: list[dict]) -> None:
        d = self.d
        desired = d["spec"].get("replicas", 1)
        olds = sorted(old, key=du.created, reverse=True)
        active = [rs for rs in ([new] if new else []) + olds if du.replicas(rs) > 0]
        if len(active) <= 1:
            target = active[0] if active else (new or (olds[0] if olds else None))
            if target is not None and du.replicas(target) != desired:
                self.scale_rs(target, desired)
            return
        if du.is_saturated(d, new):
            for rs in [r for r in old if du.replicas(r) > 0]:
                self.scale_rs(rs, 0)
            return
        if not du.is_rolling(d):
            return
        allowed = desired + du.max_surge(d) if desired > 0 else 0
        to_add = allowed - sum(du.replicas(rs) for rs in active)
        # The largest first (it takes the leftovers); among equals the newer when adding
        # (ReplicaSetsBySizeNewer), the older when removing (ReplicaSetsBySizeOlder).
        active.sort(key=du.created, reverse=to_add > 0)
        active.sort(key=lambda rs: -du.replicas(rs))
        added = 0
        sizes = {}
        for rs in active:
            share = du.proportion(rs, d, to_add, added) if to_add else 0
            sizes[rs["metadata"]["name"]] = du.replicas(rs) + share
            added += share
        for i, rs in enumerate(active):
            name = rs["metadata"]["name"]
            if i == 0 and to_add:
                sizes[name] = max(0, sizes[name] + to_add - added)
            self.scale_rs(rs, sizes[name], "up" if to_add > 0 else "down")

    # -- rolling update (rolling.go) -------------------------------------------------------

    def rolling(self) -> None:
        new, old = self.replica_sets(create=True)
        all_rss = old + [new]
        if self.reconcile_new(new):
            self.sync_rollout_status(all_rss, new)
            return
        if self.reconcile_old(all_rss, [rs for rs in old if du.replicas(rs) > 0], new):
            self.sync_rollout_status(all_rss, new)
            return
        if du.complete(self.d, self.d.get("status") or {}):
            self.cleanup(old)
        self.sync_rollout_status(all_rss, new)

    def reconcile_new(self, new: dict) -> bool:
        desired = self.d["spec"].get("replicas", 1)
        if du.replicas(new) == desired:
            return False
        if du.replicas(new) > desired:
            return self.scale_rs(new, desired)[0]
        size = du.new_rs_new_replicas(self.d, self.rss_now(new), new)
        return self.scale_rs(new, size)[0]

    def rss_now(self, new: dict) -> list[dict]:
        return [rs for rs in self.rss if rs["metadata"]["uid"] != new["metadata"]["uid"]] + [new]

    def reconcile_old(self, all_rss: list[dict], old: list[dict], new: dict) -> bool:
        if sum(du.replicas(rs) for rs in old) == 0:
            return False
        d = self.d
        min_available = d["spec"].get("replicas", 1) - du.max_unavailable(d)
        new_unavailable = du.replicas(new) - du.status_of(new, "availableReplicas")
        max_scaled_down = sum(du.replicas(rs) for rs in all_rss) - min_available - \
            new_unavailable
        if max_scaled_down <= 0:
            return False
        old, cleaned = self.cleanup_unhealthy(old, max_scaled_down)
        scaled = self.scale_down_old(old + [new], old)
        return cleaned + scaled > 0

    def cleanup_unhealthy(self, old: list[dict], max_cleanup: int) -> tuple[list[dict], int]:
        old = sorted(old, key=du.created)
        total = 0
        for i, rs in enumerate(old):
            if total >= max_cleanup:
                break
            unhealthy = du.replicas(rs) - du.status_of(rs, "availableReplicas")
            if du.replicas(rs) == 0 or unhealthy <= 0:
                continue
            count = min(max_cleanup - total, unhealthy)
            _, old[i] = self.scale_rs(rs, du.replicas(rs) - count)
            total += count
        return old, total

    def scale_down_old(self, all_rss: list[dict], old: list[dict]) -> int:
        d = self.d
        min_available = d["spec"].get("replicas", 1) - du.max_unavailable(d)
        available = sum(du.status_of(rs, "availableReplicas") for rs in all_rss)
        if available <= min_available:
            return 0
        goal = available - min_available
        total = 0
        for rs in sorted(old, key=du.created):
            if total >= goal:
                break
            if du.replicas(rs) == 0:
                continue
            count = min(du.replicas(rs), goal - total)
            self.scale_rs(rs, du.replicas(rs) - count)
            total += count
        return total

    # -- recreate (recreate.go) ------------------------------------------------------------

    def recreate(self) -> None:
        new, old = self.replica_sets(create=False)
        all_rss = old + ([new] if new else [])
        scaled = False
        for rs in old:
            if du.replicas(rs) != 0:
                scaled = self.scale_rs(rs, 0)[0] or scaled
        if scaled or self.old_pods_running(new, old):
            self.sync_rollout_status(all_rss, new)
            return
        if new is None:
            new, old = self.replica_sets(create=True)
            all_rss = old + [new]
        if du.replicas(new) != self.d["spec"].get("replicas", 1):
            self.scale_rs(new, self.d["spec"].get("replicas", 1))
        if du.complete(self.d, self.d.get("status") or {}):
            self.cleanup(old)
        self.sync_rollout_status(all_rss, new)

    def old_pods_running(self, new: dict | None, old: list[dict]) -> bool:
        """Any old ReplicaSet with replicas, or any pod of one not finished, terminating pods
        included: Recreate never runs old and new pods together."""
        if sum(du.status_of(rs, "replicas") for rs in old) > 0:
            return True
        for rs in self.rss:
            if new is not None and rs["metadata"]["uid"] == new["metadata"]["uid"]:
                continue
            for pod in self.pods_of(rs["metadata"]["uid"]):
                if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                    return True
        return False

    # -- history ---------------------------------------------------------------------------

    def cleanup(self, old: list[dict]) -> None:
        """cleanupDeployment: delete the oldest revisions beyond revisionHistoryLimit that have
        no replicas left."""
        limit = self.d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        alive = [rs for rs in old if not rs["metadata"].get("deletionTimestamp")]
        diff = len(alive) - limit
        if diff <= 0:
            return
        for rs in sorted(alive, key=lambda r: (du.revision(r), du.created(r)))[:diff]:
            meta = rs["metadata"]
            if du.status_of(rs, "replicas") != 0 or du.replicas(rs) != 0 or \
                    (meta.get("generation") or 0) > du.status_of(rs, "observedGeneration"):
                continue
            try:
                self.client.delete(rs_path(meta["namespace"], meta["name"]),
                                   {"preconditions": {"uid": meta["uid"]}})
            except ApiError as e:
                if e.code != 404:
                    raise

    # -- status (progress.go) --------------------------------------------------------------

    def check_paused(self) -> None:
        d = self.d
        if not du.has_deadline(d):
            return
        status = d.setdefault("status", {})
        cond = du.condition(status, "Progressing")
        if cond is not None and cond.get("reason") == du.TIMED_OUT:
            return
        paused_cond = cond is not None and cond.get("reason") == du.PAUSED
        if d["spec"].get("paused") and not paused_cond:
            du.set_condition(status, du.new_condition("Progressing", "Unknown", du.PAUSED,
                                                      "Deployment is paused"))
        elif not d["spec"].get("paused") and paused_cond:
            du.set_condition(status, du.new_condition("Progressing", "Unknown", du.RESUMED,
                                                      "Deployment is resumed"))
        else:
            return
        self.write_status()

    def sync_status(self, all_rss: list[dict], new: dict | None) -> None:
        status = du.calculate_status(self.d, all_rss, new)
        if status != (self.d.get("status") or {}):
            self.d["status"] = status
            self.write_status()

    def sync_rollout_status(self, all_rss: list[dict], new: dict | None) -> None:
        d = self.d
        status = du.calculate_status(d, all_rss, new)
        if not du.has_deadline(d):
            du.remove_condition(status, "Progressing")
        current = du.condition(d.get("status") or {}, "Progressing")
        done = status.get("replicas", 0) == status.get("updatedReplicas", 0) and \
            current is not None and current.get("reason") == du.NEW_RS_AVAILABLE
        what = f'ReplicaSet "{new["metadata"]["name"]}"' if new else \
            f'Deployment "{d["metadata"]["name"]}"'
        if du.has_deadline(d) and not done:
            if du.complete(d, status):
                du.set_condition(status, du.new_condition(
                    "Progressing", "True", du.NEW_RS_AVAILABLE,
                    f"{what} has successfully progressed.", self.now))
            elif du.progressing(d, status):
                cond = du.new_condition("Progressing", "True", du.RS_UPDATED,
                                        f"{what} is progressing.", self.now)
                if current is not None:
                    if current["status"] == "True":
                        cond["lastTransitionTime"] = current["lastTransitionTime"]
                    du.remove_condition(status, "Progressing")
                du.set_condition(status, cond)
            elif du.timed_out(d, status, self.now):
                du.set_condition(status, du.new_condition(
                    "Progressing", "False", du.TIMED_OUT, f"{what} has timed out progressing.",
                    self.now))
        failures = [c for rs in all_rss for c in (rs.get("status") or {}).get("conditions") or []
                    if c.get("type") == "ReplicaFailure"]
        if failures:
            f = failures[0]
            du.set_condition(status, du.new_condition("ReplicaFailure", f.get("status", "True"),
                                                      f.get("reason", ""), f.get("message", "")))
        else:
            du.remove_condition(status, "ReplicaFailure")
        if status == (d.get("status") or {}):
            self.requeue_stuck(status)
            return
        d["status"] = status
        self.write_status()

    def requeue_stuck(self, status: dict) -> None:
        d = self.d
        cond = du.condition(status, "Progressing")
        if not du.has_deadline(d) or cond is None or du.complete(d, status) or \
                cond.get("reason") == du.TIMED_OUT:
            return
        after = timefmt.parse(cond["lastUpdateTime"]) + d["spec"]["progressDeadlineSeconds"] - \
            self.now
        self.requeue_after(max(after, 0) + 1)


def selects(deployment: dict, obj: dict) -> bool:
    selector = deployment["spec"].get("selector")
    return not label_selector.is_empty(selector) and \
        label_selector.matches(selector, obj["metadata"].get("labels"))
