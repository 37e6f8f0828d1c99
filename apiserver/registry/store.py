"""The generic store: CRUD over storage for one resource type, applying its strategy.

Objects are stored as compact JSON without metadata.resourceVersion, metadata before any other
object-valued field; the storage revision of the record becomes the resourceVersion on the way
out, spliced into the stored bytes (stored_json) for LISTs and watch events in JSON, so that
those serve an object without decoding and encoding it again.
"""
from __future__ import annotations

import base64
import binascii
import copy
import functools
import json
import secrets
import threading
import time
import uuid
from typing import Callable

from kubeapi import status, timefmt, validation
from kubeapi.selector_strings import parse_field_selector, parse_label_selector
from kubeapi.status import ApiError

from ..patch.field_manager import Request as FieldRequest, record_update
from ..request import Encoded
from ..storage import Compacted, KeyExists, KeyNotFound, Record, RevisionConflict, Storage
from ..watch import everything
from .owner_references import validate as owner_references
from .propagation import finalizers_after_delete
from .resource_type import ResourceType

# Retries of read-modify-write when another writer got in between (patch, binding, delete).
UPDATE_RETRIES = 16
# Distinct selector pairs whose matchers a store keeps.
MATCHERS = 256
# Distinct creates (by content) whose managedFields a store keeps.
FIELDS_MEMO = 64
# Metadata whose values no managedFields entry names (only whether they are set).
_VALUE_FREE = ("name", "uid", "creationTimestamp")
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # generateName's alphabet, as in kube


_METADATA = b'"metadata":{'
_SCALARS = frozenset((str, int, float, bool, type(None)))


def _clone(value: object) -> object:
    """A deep copy of JSON data, about twice as fast as copy.deepcopy (no memo, no dispatch
    by type); anything that is not JSON's is deep-copied as before."""
    kind = type(value)
    if kind is dict:
        return {k: _clone(v) for k, v in value.items()}  # type: ignore[union-attr]
    if kind is list:
        return [_clone(v) for v in value]  # type: ignore[union-attr]
    if kind in _SCALARS:
        return value
    return copy.deepcopy(value)


def _metadata_early(obj: dict) -> dict:
    """obj, or a copy with metadata first if an object or list came before it: stored_json
    finds metadata as the first '"metadata":{' after the only '{' that precedes it."""
    for key, value in obj.items():
        if key == "metadata":
            return obj
        if isinstance(value, (dict, list)):
            return {"metadata": obj["metadata"], **obj}
    return obj


def encode(obj: dict) -> bytes:
    meta = obj.get("metadata", {})
    rv = meta.pop("resourceVersion", None)
    try:
        return json.dumps(_metadata_early(obj), separators=(",", ":")).encode()
    finally:
        if rv is not None:
            meta["resourceVersion"] = rv


def decode(value: bytes, rev: int) -> dict:
    obj = json.loads(value)
    if rev:
        obj.setdefault("metadata", {})["resourceVersion"] = str(rev)
    return obj


def stored_json(value: bytes, rev: int) -> bytes:
    """The JSON of decode(value, rev), from the stored bytes with the resourceVersion spliced
    in after the top-level '"metadata":{'; decoded and encoded again only for a value where
    that is not plainly the top level's (an object before it, as in an old database's rows)
    or that carries a resourceVersion anywhere (an Event's involvedObject), which the splice
    could not tell from the object's own."""
    if not rev:
        return value
    at = value.find(_METADATA)
    if at > 0 and value.count(b"{", 0, at) == 1 and b'"resourceVersion":' not in value:
        at += len(_METADATA)
        comma = b"" if value[at:at + 1] == b"}" else b","
        return b'%s"resourceVersion":"%d"%s%s' % (value[:at], rev, comma, value[at:])
    return json.dumps(decode(value, rev), separators=(",", ":")).encode()


class ListResult:
    """A LIST's items: dicts (Store.list) or each item's JSON (Store.list_json)."""
    __slots__ = ("items", "revision", "continue_token")

    def __init__(self, items: list, revision: int, continue_token: str):
        self.items = items
        self.revision = revision
        self.continue_token = continue_token


class Store:
    def __init__(self, storage: Storage, rtype: ResourceType,
                 namespace_check: Callable[[str, bool], None] | None = None):
        self.storage = storage
        self.rtype = rtype
        self.strategy = rtype.strategy
        # Watches with the same selectors share one matcher, and so its result per event
        # (watch.filtered): 200 watches of one object test each change once.
        self._matchers = functools.lru_cache(maxsize=MATCHERS)(self._new_matcher)
        # Called with (namespace, creating) before writes to namespaced objects.
        self.namespace_check = namespace_check
        # managedFields of recent creates (_created_fields), oldest first
        self._fields_memo: dict[str, list[dict] | None] = {}
        self._fields_lock = threading.Lock()

    # helpers

    def _not_found(self, name: str) -> ApiError:
        return status.not_found(self.rtype.plural, name, self.rtype.group)

    def _conflict(self, name: str) -> ApiError:
        return status.conflict(self.rtype.plural, name, "the object has been modified; please "
                               "apply your changes to the latest version and try again",
                               self.rtype.group)

    def _invalid(self, name: str, causes: list[dict]) -> ApiError:
        error = status.invalid(self.rtype.kind, name, causes, self.rtype.group)
        if self.rtype.group:  # kube names the kind with its group: Deployment.apps "web"
            error.message = error.message.replace(
                self.rtype.kind, f"{self.rtype.kind}.{self.rtype.group}", 1)
        return error

    def _stamp(self, obj: dict) -> None:
        obj["apiVersion"] = self.rtype.api_version
        obj["kind"] = self.rtype.kind

    def _check_type(self, body: dict) -> None:
        if not isinstance(body, dict):
            raise status.bad_request("the request body must be a JSON or YAML object")
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if kind and kind != self.rtype.kind:
            raise status.bad_request(f"the kind in the data ({kind}) does not match the "
                                     f"expected kind ({self.rtype.kind})")
        if api_version and api_version != self.rtype.api_version:
            raise status.bad_request(f"the API version in the data ({api_version}) does not "
                                     f"match the expected API version ({self.rtype.api_version})")
        if not isinstance(body.get("metadata", {}), dict):
            raise status.bad_request("metadata must be an object")

    # reads

    def get(self, namespace: str, name: str, *, recent: bool = False) -> dict:
        """recent: any state at least as new as the object's creation will do (storage's
        get_recent), as for admission's lookups."""
        key = self.rtype.key(namespace, name)
        rec = self.storage.get_recent(key) if recent else self.storage.get(key)
        if rec is None:
            raise self._not_found(name)
        return decode(rec.value, rec.rev)

    def matcher(self, label_selector: str, field_selector: str) -> Callable[[dict], bool]:
        return self._matchers(label_selector, field_selector)

    def _new_matcher(self, label_selector: str, field_selector: str) -> Callable[[dict], bool]:
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector, set(self.strategy.field_labels))
        if not label_selector and not field_selector:
            return everything
        return lambda obj: labels(obj.get("metadata", {}).get("labels") or {}) and \
            fields(self.strategy.fields(obj))

    def list(self, namespace: str, *, label_selector: str = "", field_selector: str = "",
             limit: int = 0, continue_token: str = "", resource_version: str = "",
             resource_version_match: str = "") -> ListResult:
        chosen, revision, token = self._select(
            namespace, label_selector, field_selector, limit, continue_token, resource_version,
            resource_version_match)
        return ListResult([obj if obj is not None else decode(rec.value, rec.rev)
                           for rec, obj in chosen], revision, token)

    def list_json(self, namespace: str, *, label_selector: str = "", field_selector: str = "",
                  limit: int = 0, continue_token: str = "", resource_version: str = "",
                  resource_version_match: str = "") -> ListResult:
        """list() with each item as its JSON, built from the stored bytes (stored_json): an
        object is decoded only to test it against a selector."""
        chosen, revision, token = self._select(
            namespace, label_selector, field_selector, limit, continue_token, resource_version,
            resource_version_match)
        return ListResult([stored_json(rec.value, rec.rev) for rec, _ in chosen], revision,
                          token)

    def _select(self, namespace: str, label_selector: str, field_selector: str, limit: int,
                continue_token: str, resource_version: str, resource_version_match: str
                ) -> tuple[list[tuple[Record, dict | None]], int, str]:
        """The records a LIST returns, each with its decoded object if a selector needed it,
        the list's revision and its continue token."""
        matches = self.matcher(label_selector, field_selector)
        prefix = self.rtype.key_prefix(namespace if self.rtype.namespaced else "")
        after, revision = "", 0
        if continue_token:
            after, revision = self._parse_continue(continue_token, prefix)
        elif resource_version_match == "Exact" and resource_version:
            revision = self.parse_resource_version(resource_version)
        chosen: list[tuple[Record, dict | None]] = []
        # Page through storage until `limit` objects match, as kube's etcd3 store does.
        while True:
            batch = max(limit - len(chosen), 1) * 2 if limit else 0
            try:
                records, at = self.storage.list(prefix, after=after, limit=batch,
                                                revision=revision)
            except Compacted as e:
                raise status.gone(f"The provided continue parameter is too old to display a "
                                  f"consistent list result. The oldest available revision "
                                  f"is {e.compacted}.") from e
            revision = revision or at
            for rec in records:
                after = rec.key
                obj = None if matches is everything else decode(rec.value, rec.rev)
                if obj is None or matches(obj):
                    chosen.append((rec, obj))
                    if limit and len(chosen) == limit:
                        break
            full = not limit or len(chosen) == limit
            if not batch or len(records) < batch or full:
                break
        token = ""
        if limit and len(chosen) == limit:
            more, _ = self.storage.list(prefix, after=after, limit=1, revision=revision)
            if more:
                token = base64.urlsafe_b64encode(json.dumps(
                    {"v": "meta.k8s.io/v1", "rv": revision, "start": after[len(prefix):]}
                ).encode()).decode()
        return chosen, revision, token

    @staticmethod
    def parse_resource_version(rv: str) -> int:
        try:
            value = int(rv)
        except ValueError:
            raise status.bad_request(f"resourceVersion: Invalid value: \"{rv}\": must be an "
                                     "integer")
        if value < 0:
            raise status.bad_request(f"resourceVersion: Invalid value: \"{rv}\"")
        return value

    @staticmethod
    def _parse_continue(token: str, prefix: str) -> tuple[str, int]:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()))
            return prefix + data["start"], int(data["rv"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise status.bad_request("continue key is not valid: incorrect encoded start "
                                     "resourceVersion (version meta.k8s.io/v1)")

    # writes

    def field_request(self, manager: str, subresource: str = "") -> FieldRequest:
        """Who writes, for metadata.managedFields."""
        return FieldRequest(manager, self.rtype.api_version, self.rtype.kind, subresource,
                            self.strategy.has_status)

    def create(self, namespace: str, body: dict, *, dry_run: bool = False,
               manager: str | None = None) -> dict:
        """POST; a manager (None: an internal write) is recorded in managedFields."""
        self._check_type(body)
        obj: dict = _clone(body)  # type: ignore[assignment]
        meta = obj.setdefault("metadata", {})
        if self.rtype.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise status.bad_request("the namespace of the provided object does not match "
                                         "the namespace sent on the request")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                secrets.choice(_NAME_CHARS) for _ in range(5))
        for field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                      "selfLink"):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = timefmt.rfc3339()
        if self.strategy.has_generation:
            meta["generation"] = 1
        self._stamp(obj)
        if manager is not None:
            # The manager owns what it sent and its defaults, not what admission and the
            # strategy add next (a pod's tolerations, priority, status), as in kube.
            requested: dict = _clone(obj)  # type: ignore[assignment]
            self.strategy.default(requested)
            entries = self._created_fields(requested, manager, timefmt.rfc3339())
            meta.pop("managedFields", None)
            if entries:
                meta["managedFields"] = entries
        self.strategy.prepare_create(obj)
        self.strategy.default(obj)
        name = meta.get("name", "")
        causes = self._meta_errors(obj) + self.strategy.validate(obj)
        if causes:
            raise self._invalid(name, causes)
        if self.rtype.namespaced and self.namespace_check:
            self.namespace_check(namespace, True)
        undo = self.reserve(obj, None)
        if dry_run:
            undo()
            return obj
        value = encode(obj)
        try:
            rec = self.storage.create(self.rtype.key(namespace, name), value)
        except KeyExists:
            undo()
            raise status.already_exists(self.rtype.plural, name, self.rtype.group)
        except BaseException:
            undo()
            raise
        meta["resourceVersion"] = str(rec.rev)
        # the answer is the stored bytes, not a second encoding of the object
        return Encoded(obj, stored_json(value, rec.rev))

    def _created_fields(self, requested: dict, manager: str, now: str) -> list[dict] | None:
        """The managedFields of a create of `requested` by `manager` (record_update's), from a
        memo of recent creates: which fields a create sets depends on the object's content but
        not on the values of its name, uid and creationTimestamp, so the pods of one template
        (a ReplicaSet's, the bench's) share one result, and the field set's walk over the
        schema (about half of a pod create's CPU) runs once."""
        meta = requested["metadata"]
        if "managedFields" in meta:  # the client's own entries, which record_update merges
            record_update(None, requested, self.field_request(manager), now)
            return meta.get("managedFields")
        named = {f: meta[f] for f in _VALUE_FREE if f in meta}
        meta.update(dict.fromkeys(named, ""))
        key = manager + "\0" + json.dumps(requested, separators=(",", ":"))
        meta.update(named)
        entries = self._fields_memo.get(key, False)
        if entries is False:
            record_update(None, requested, self.field_request(manager), now)
            entries = meta.get("managedFields")
            with self._fields_lock:
                if len(self._fields_memo) >= FIELDS_MEMO:
                    del self._fields_memo[next(iter(self._fields_memo))]
                self._fields_memo[key] = _clone(entries)  # type: ignore[assignment]
            return entries
        if entries is None:
            return None
        # a create's entries are all its own write's, so all of this time
        return [{**e, "time": now, "fieldsV1": _clone(e["fieldsV1"])} if "time" in e
                else _clone(e) for e in entries]  # type: ignore[misc]

    def reserve(self, new: dict, old: dict | None) -> Callable[[], None]:
        """Takes what the object about to be written needs besides storage (a Service's IPs and
        ports), after validation; returns how to give it back if the write does not happen."""
        return lambda: None

    def released(self, old: dict, new: dict | None) -> None:
        """After a write replaced `old` by `new` (None: removed): gives back what only old held."""

    def _meta_errors(self, obj: dict) -> list[dict]:
        errs = validation.object_meta(obj, self.rtype.namespaced, lambda *_: [])
        errs += owner_references(obj["metadata"].get("ownerReferences"))
        generation = obj["metadata"].get("generation")
        # kube checks every kind's; the tracked kinds' was set to 1 before (an update keeps
        # the stored one), so only an untracked kind's create can carry a client's negative.
        if isinstance(generation, int) and generation < 0:
            errs.append(status.invalid_value("metadata.generation", generation,
                                             "must be greater than or equal to 0"))
        name = obj["metadata"].get("name")
        if name:
            errs += self.strategy.name_errors(name, "metadata.name")
        return errs

    def update(self, namespace: str, name: str, body: dict, *, subresource: str = "",
               dry_run: bool = False, manager: str | None = None) -> dict:
        """PUT: optimistic concurrency on metadata.resourceVersion when the body carries one."""
        self._check_type(body)
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise status.bad_request(f"the name of the object ({meta['name']}) does not match "
                                     f"the name on the URL ({name})")
        if self.rtype.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise status.bad_request("the namespace of the provided object does not match the "
                                     "namespace sent on the request")
        expected = meta.get("resourceVersion") or ""
        if expected:
            self.parse_resource_version(expected)
        return self.guaranteed_update(namespace, name, lambda old: copy.deepcopy(body),
                                      subresource=subresource, expected_rv=expected,
                                      dry_run=dry_run, manager=manager)

    def guaranteed_update(self, namespace: str, name: str, mutate: Callable[[dict], dict], *,
                          subresource: str = "", expected_rv: str = "",
                          dry_run: bool = False, manager: str | None = None) -> dict:
        """Reads, applies mutate(old) -> new, validates, writes; retries if another writer won,
        unless the caller named the resourceVersion it expects (then 409). A manager (None: an
        internal write, or one that keeps managedFields itself as apply does) is recorded."""
        key = self.rtype.key(namespace, name)
        strategy = self.strategy.for_subresource(subresource)
        # The first try starts from the cached record, unchecked (kube's GuaranteedUpdate
        # starts from its watch cache too): the write's revision compare checks it, and a
        # write that loses answers with the current record. What is decided without a write
        # (a refusal, no change, a dry run) waits for a consistent read first. None from
        # get_recent is a consistent read already.
        rec, fresh = self.storage.get_recent(key), False
        for _ in range(UPDATE_RETRIES):
            if rec is None:
                raise self._not_found(name)
            try:
                if expected_rv and expected_rv != str(rec.rev):
                    raise self._conflict(name)
                old = decode(rec.value, rec.rev)
                new = mutate(_clone(old))
                if not isinstance(new, dict):
                    raise status.bad_request("the request body must be a JSON or YAML object")
                new_rv = (new.get("metadata") or {}).get("resourceVersion")
                if new_rv and new_rv != str(rec.rev):
                    raise self._conflict(name)
                new = self._prepare_update(strategy.prepare_update(new, old), old, subresource)
                if manager is not None:
                    record_update(old, new, self.field_request(manager, subresource),
                                  timefmt.rfc3339())
                # A binding is the one write allowed to set the otherwise immutable
                # spec.nodeName.
                causes = self._meta_errors(new) + (
                    [] if subresource == "binding" else strategy.validate_update(new, old))
                if causes:
                    raise self._invalid(name, causes)
            except ApiError:
                if fresh:
                    raise
                rec, fresh = self.storage.get(key), True
                continue
            if not fresh and (dry_run or self._same(new, old)):
                rec, fresh = self.storage.get(key), True
                continue
            if dry_run:
                self.reserve(new, old)()  # refused as the write would be; nothing kept
                return new
            if self._same(new, old):
                return old
            finalized = self._finalized(new)
            undo = (lambda: None) if finalized else self.reserve(new, old)
            try:
                if finalized:
                    self.storage.delete(key, rec.rev)
                else:
                    out = self.storage.update(key, encode(new), rec.rev)
            except RevisionConflict as e:
                undo()
                if expected_rv and not finalized:
                    raise self._conflict(name)
                rec, fresh = e.current or self.storage.get(key), True
                continue
            except KeyNotFound:
                undo()
                raise self._not_found(name)
            except BaseException:
                undo()
                raise
            self.released(old, None if finalized else new)
            if not finalized:
                new["metadata"]["resourceVersion"] = str(out.rev)
            return new
        raise self._conflict(name)

    @staticmethod
    def _same(new: dict, old: dict) -> bool:
        a, b = dict(new), dict(old)
        a["metadata"] = {k: v for k, v in new["metadata"].items() if k != "resourceVersion"}
        b["metadata"] = {k: v for k, v in old["metadata"].items() if k != "resourceVersion"}
        return a == b

    @staticmethod
    def _finalized(obj: dict) -> bool:
        """An object whose deletion was waiting only on finalizers that are now gone."""
        meta = obj["metadata"]
        return bool(meta.get("deletionTimestamp")) and not meta.get("finalizers") and \
            meta.get("deletionGracePeriodSeconds", 0) == 0

    def _prepare_update(self, new: dict, old: dict, subresource: str) -> dict:
        if not isinstance(new.get("metadata"), dict):
            new["metadata"] = {}
        meta, old_meta = new["metadata"], old["metadata"]
        if subresource == "binding":
            new["metadata"] = old_meta
        elif subresource == "status":
            # /status changes status (and labels/annotations); spec and the rest stay.
            status = new.get("status")
            new = {**old, "status": status} if status is not None else dict(old)
            new["metadata"] = {**old_meta, "labels": meta.get("labels", old_meta.get("labels")),
                               "annotations": meta.get("annotations",
                                                       old_meta.get("annotations"))}
            new["metadata"] = {k: v for k, v in new["metadata"].items() if v is not None}
        else:
            if self.strategy.has_status:
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
            for field in ("uid", "creationTimestamp", "deletionTimestamp",
                          "deletionGracePeriodSeconds", "generation"):
                if field in old_meta:
                    meta[field] = old_meta[field]
                else:
                    meta.pop(field, None)
            meta["name"] = old_meta["name"]
            if self.rtype.namespaced:
                meta["namespace"] = old_meta["namespace"]
            else:
                meta.pop("namespace", None)
            if old_meta.get("managedFields") and "managedFields" not in meta:
                meta["managedFields"] = old_meta["managedFields"]
        self._stamp(new)
        self.strategy.default(new)
        if self.strategy.has_generation and self.strategy.generation_changed(new, old):
            new["metadata"]["generation"] = old_meta.get("generation", 0) + 1
        return new

    def delete(self, namespace: str, name: str, options: dict | None = None, *,
               dry_run: bool = False) -> dict:
        """Graceful for resources that have a grace period (pods on a node); finalizers delay
        removal; preconditions (uid, resourceVersion) give 409 when they do not hold."""
        options = options or {}
        key = self.rtype.key(namespace, name)
        for _ in range(UPDATE_RETRIES):
            rec = self.storage.get(key)
            if rec is None:
                raise self._not_found(name)
            obj = decode(rec.value, rec.rev)
            meta = obj["metadata"]
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != meta.get("uid"):
                raise status.conflict(self.rtype.plural, name,
                                      f"Precondition failed: UID in precondition: {pre['uid']}, "
                                      f"UID in object meta: {meta.get('uid')}", self.rtype.group)
            if pre.get("resourceVersion") and pre["resourceVersion"] != str(rec.rev):
                raise status.conflict(
                    self.rtype.plural, name, f"Precondition failed: ResourceVersion in "
                    f"precondition: {pre['resourceVersion']}, ResourceVersion in object meta: "
                    f"{rec.rev}", self.rtype.group)
            grace = self._grace(obj, options.get("gracePeriodSeconds"))
            finalizers = finalizers_after_delete(
                meta.get("finalizers"), options,
                getattr(self.strategy, "default_propagation", "Background"))
            changed = finalizers != (meta.get("finalizers") or [])
            if finalizers:
                meta["finalizers"] = finalizers
            else:
                meta.pop("finalizers", None)
            if grace > 0 or finalizers:
                if meta.get("deletionTimestamp") and not changed and \
                        grace >= meta.get("deletionGracePeriodSeconds", 0):
                    return obj  # already terminating at least this fast
                # a new finalizer leaves the time of a deletion already under way
                if not meta.get("deletionTimestamp") or \
                        grace < meta.get("deletionGracePeriodSeconds", 0):
                    meta["deletionTimestamp"] = timefmt.rfc3339(time.time() + grace)
                    meta["deletionGracePeriodSeconds"] = grace
                if dry_run:
                    return obj
                try:
                    out = self.storage.update(key, encode(obj), rec.rev)
                except RevisionConflict:
                    continue
                meta["resourceVersion"] = str(out.rev)
                return obj
            if dry_run:
                return obj
            try:
                out = self.storage.delete(key, rec.rev)
            except RevisionConflict:
                continue
            except KeyNotFound:
                raise self._not_found(name)
            self.released(obj, None)
            meta["resourceVersion"] = str(out.rev)
            return obj
        raise self._conflict(name)

    def _grace(self, obj: dict, requested: object) -> int:
        if requested is not None:
            try:
                requested = int(requested)
            except (TypeError, ValueError):
                raise status.bad_request("gracePeriodSeconds must be an integer")
        grace_period = getattr(self.strategy, "grace_period", None)
        if grace_period is None:
            return 0
        return grace_period(obj, requested)
