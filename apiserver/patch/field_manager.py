"""metadata.managedFields bookkeeping, as kube-apiserver's field manager keeps it: one entry
per (manager, operation, subresource, and for updates apiVersion), each with the fields that
manager owns. A create, update or patch gives its manager the fields it added or changed and
takes them from everyone else; fields it removed leave every set; empty entries are dropped.
Server-side apply (apply.py) uses the same entries and adds conflicts."""
from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass

from kubeapi import status
from kubeapi.status import ApiError

from . import managed_fields as mf
from .typed_schema import Type, root_type

APPLY, UPDATE = "Apply", "Update"
MAX_MANAGER_LENGTH = 128
# More Update entries than this: the oldest merge into "ancient-changes" (one per apiVersion).
MAX_UPDATE_MANAGERS = 10
ANCIENT_CHANGES = "ancient-changes"
# The Update entry that takes the fields of an object first applied after it was written
# without managedFields.
BEFORE_FIRST_APPLY = "before-first-apply"
# Fields nobody owns (kube's stripMetaManager): identity and server-set metadata.
_STRIPPED: mf.FieldSet = {(("f", "apiVersion"),), (("f", "kind"),), (("f", "metadata"),)} | {
    (("f", "metadata"), ("f", name)) for name in (
        "name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName",
        "generation", "managedFields", "resourceVersion")}
_STATUS: mf.FieldSet = {(("f", "status"),)}
_SPEC: mf.FieldSet = {(("f", "spec"),)}


@dataclass
class Entry:
    manager: str
    operation: str
    api_version: str
    fields: mf.FieldSet
    time: str = ""
    subresource: str = ""

    def same_manager(self, manager: str, operation: str, subresource: str,
                     api_version: str) -> bool:
        """Whether this entry is the one of that manager (appliers' across API versions)."""
        return (self.manager, self.operation, self.subresource) == \
            (manager, operation, subresource) and \
            (operation == APPLY or self.api_version == api_version)

    def describe(self) -> str:
        """The manager as kube-apiserver names it in a conflict."""
        out = json.dumps(self.manager, ensure_ascii=False)
        if self.subresource:
            out += f' with subresource "{self.subresource}"'
        if self.operation == UPDATE:
            out += f" using {self.api_version}"
        return out

    def to_json(self) -> dict:
        # As kube's ManagedFieldsEntry, empty strings are left out.
        out = {k: v for k, v in (("manager", self.manager), ("operation", self.operation),
                                 ("apiVersion", self.api_version)) if v}
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = mf.to_json(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out


@dataclass(frozen=True)
class Request:
    """Who writes and where: the manager, the resource's API version and kind, the
    subresource, and whether the resource has a status that only /status writes."""
    manager: str
    api_version: str
    kind: str
    subresource: str = ""
    has_status: bool = False

    @property
    def schema(self) -> Type:
        return root_type(self.api_version, self.kind)


def manager_for(query: dict[str, str], user_agent: str, options_kind: str, *,
                apply: bool = False) -> str:
    """The request's manager: its fieldManager, else the User-Agent up to its first "/"
    (printable characters, at most 128 bytes), as kube-apiserver derives it. Options it
    rejects (options_kind: CreateOptions, UpdateOptions, PatchOptions) are a 422."""
    field_manager = query.get("fieldManager") or ""
    causes = []
    if options_kind == "PatchOptions" and not apply and "force" in query:
        causes.append(status.forbidden_field("force",
                                             "may not be specified for non-apply patch"))
    if apply and not field_manager:
        causes.append(status.required("fieldManager", "is required for apply patch"))
    if len(field_manager.encode()) > MAX_MANAGER_LENGTH:
        causes.append(status.field_error(
            "FieldValueTooLong", "fieldManager",
            f"Too long: may not be more than {MAX_MANAGER_LENGTH} bytes"))
    position = 0
    for c in field_manager:
        if not _printable(c):
            causes.append(status.invalid_value(
                "fieldManager", field_manager,
                f"invalid character U+{ord(c):04X} (at position {position})"))
        position += len(c.encode())
    if causes:
        error = status.invalid(options_kind, "", causes, "meta.k8s.io")
        error.message = error.message.replace(options_kind, options_kind + ".meta.k8s.io", 1)
        raise error
    if field_manager:
        return field_manager
    out = ""
    for c in user_agent.split("/")[0]:
        if not _printable(c):
            continue
        if len((out + c).encode()) > MAX_MANAGER_LENGTH:
            break
        out += c
    return out


def _printable(c: str) -> bool:
    return c == " " or unicodedata.category(c)[0] in "LMNPS"


def owned(paths: mf.FieldSet, req: Request) -> mf.FieldSet:
    """paths less what no manager owns: identity metadata, and the fields a write through
    this (sub)resource cannot change (status on the main resource, spec on /status)."""
    paths = paths - _STRIPPED
    if req.has_status:
        paths = mf.without(paths, _SPEC if req.subresource == "status" else _STATUS)
    return paths


def decode(entries: object) -> list[Entry]:
    """The entries of metadata.managedFields; ValueError naming what is wrong."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ValueError("metadata.managedFields must be a list")
    out = []
    for i, raw in enumerate(entries):
        where = f"metadata.managedFields[{i}]"
        if not isinstance(raw, dict):
            raise ValueError(f"{where} must be an object")
        if raw.get("operation") not in (APPLY, UPDATE):
            raise ValueError(f"{where}.operation must be Apply or Update")
        if raw.get("fieldsType", "FieldsV1") != "FieldsV1":
            raise ValueError(f"{where}.fieldsType must be FieldsV1")
        out.append(Entry(str(raw.get("manager", "")), raw["operation"],
                         str(raw.get("apiVersion", "")),
                         mf.from_json(raw.get("fieldsV1") or {}), str(raw.get("time") or ""),
                         str(raw.get("subresource") or "")))
    return out


def encode(entries: list[Entry]) -> list[dict]:
    """The non-empty entries in kube-apiserver's order: appliers first, then by time, manager,
    apiVersion and subresource."""
    kept = [e for e in entries if e.fields]
    kept.sort(key=lambda e: (e.operation, e.time, e.manager, e.api_version, e.subresource))
    return [e.to_json() for e in kept]


def live_entries(live: dict | None) -> list[Entry]:
    """The entries of the stored object; ones it cannot decode are dropped, as kube does."""
    try:
        return decode(((live or {}).get("metadata") or {}).get("managedFields"))
    except ValueError:
        return []


def request_entries(live: dict | None, new: dict, subresource: str) -> list[Entry]:
    """The entries an update starts from: those the request carries when it carries any
    (clients may edit them; [] or [{}] resets them), else the stored ones. Writes to a
    subresource cannot change them."""
    sent = (new.get("metadata") or {}).get("managedFields")
    if subresource or sent is None:
        return live_entries(live)
    if sent in ([], [{}]):
        return []
    try:
        entries = decode(sent)
    except ValueError:
        return live_entries(live)
    return entries or live_entries(live)


def empty_object(t: Type) -> dict:
    """The object kube-apiserver compares a create with: the type's zero value, in which
    metadata, spec and status exist and required lists (a pod's containers) are null."""
    out: dict = {"metadata": {}}
    for name in ("spec", "status"):
        sub = t.field(name) if t.kind == "struct" else None
        if sub is not None and sub.kind == "struct":
            required = sub.node.get("required") or ()
            out[name] = {r: None for r in required
                         if (sub.field(r) or sub).kind == "list"}
    return out


def set_entries(obj: dict, entries: list[Entry]) -> None:
    set_raw_entries(obj, encode(entries))


def set_raw_entries(obj: dict, encoded: list[dict] | None) -> None:
    meta = obj.setdefault("metadata", {})
    if encoded:
        meta["managedFields"] = encoded
    else:
        meta.pop("managedFields", None)


def without_entries(obj: dict) -> dict:
    """obj with no metadata.managedFields (a shallow copy where it had them)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


def record_update(live: dict | None, new: dict, req: Request, now: str) -> None:
    """Sets new's managedFields after a create (live None), update or non-apply patch by
    req.manager. An object that exists without managedFields stays without, as in kube,
    until it is applied to."""
    before = without_entries(live) if live is not None else empty_object(req.schema)
    changed, removed = changes(before, without_entries(new), req)
    sent = (new.get("metadata") or {}).get("managedFields")
    if live is not None and not (changed or removed) and (req.subresource or sent is None):
        # Nothing to record (a status write that changed nothing of its own, say): the stored
        # entries stay as they are, not decoded and encoded again.
        set_raw_entries(new, (live.get("metadata") or {}).get("managedFields"))
        return
    entries = request_entries(live, new, req.subresource)
    if live is not None and not entries:
        set_entries(new, [])
        return
    set_entries(new, update_entries(entries, changed, removed, req, now))


def changes(before: dict, after: dict, req: Request) -> tuple[mf.FieldSet, mf.FieldSet]:
    """The fields a write from before to after added or changed, and those it removed, less
    what nobody owns."""
    diff = mf.compare(before, after, req.schema)
    return owned(diff.changed(), req), owned(diff.removed, req)


def update_entries(entries: list[Entry], changed: mf.FieldSet, removed: mf.FieldSet,
                   req: Request, now: str) -> list[Entry]:
    """entries after req.manager's write: it owns what it added or changed, the others lose
    that and what it removed; at most MAX_UPDATE_MANAGERS Update entries."""
    for entry in entries:
        entry.fields -= changed | removed
    entries = [e for e in entries if e.fields]
    if changed:
        mine = next((e for e in entries if e.same_manager(
            req.manager, UPDATE, req.subresource, req.api_version)), None)
        if mine is None:
            entries.append(Entry(req.manager, UPDATE, req.api_version, set(changed), now,
                                 req.subresource))
        else:
            mine.fields |= changed
            mine.time = now
    return _cap_updaters(entries)


def _cap_updaters(entries: list[Entry]) -> list[Entry]:
    """Merges the oldest Update entries, per apiVersion, into an "ancient-changes" entry
    until at most MAX_UPDATE_MANAGERS are left, as kube-apiserver's capManagersManager."""
    updaters = sorted((e for e in entries if e.operation == UPDATE),
                      key=lambda e: (e.time, e.manager, e.api_version, e.subresource))
    count = len(updaters)
    first: dict[str, Entry] = {}
    for entry in updaters:
        if count <= MAX_UPDATE_MANAGERS:
            break
        if entry.api_version not in first:
            first[entry.api_version] = entry
            continue
        bucket = next((e for e in entries if e.same_manager(
            ANCIENT_CHANGES, UPDATE, "", entry.api_version)), None)
        if bucket is None:
            bucket = first[entry.api_version]
            bucket.manager, bucket.subresource = ANCIENT_CHANGES, ""
        if bucket is entry:
            continue
        bucket.fields |= entry.fields
        bucket.time = entry.time
        entries = [e for e in entries if e is not entry]
        count -= 1
    return entries


def conflict_error(conflicts: list[tuple[Entry, mf.Path]]) -> ApiError:
    """409 with kube-apiserver's message and FieldManagerConflict causes."""
    causes = [{"type": "FieldManagerConflict", "message": f"conflict with {e.describe()}",
               "field": mf.path_string(p)} for e, p in conflicts]
    if len(conflicts) == 1:
        entry, path = conflicts[0]
        message = (f"Apply failed with 1 conflict: conflict with {entry.describe()}: "
                   f"{mf.path_string(path)}")
    else:
        lines = []
        for name in sorted({e.describe() for e, _ in conflicts}):
            lines.append(f"conflicts with {name}:")
            lines += [f"- {mf.path_string(p)}" for e, p in conflicts if e.describe() == name]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, causes=causes)
