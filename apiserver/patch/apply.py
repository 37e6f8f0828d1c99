"""Server-side apply (application/apply-patch+yaml), as structured-merge-diff does it: the
applied configuration is merged into the live object by the type's schema (associative lists
by their keys, sets by value, atomic values whole); the applier then owns exactly the fields
of its configuration. A field another manager owns and the apply would change is a conflict
(409) unless forced, when ownership moves. A field the applier applied before and no longer
applies is removed unless some manager still owns it. Equal values are owned jointly."""
from __future__ import annotations

import copy
import dataclasses

from kubeapi import status

from . import last_applied
from . import managed_fields as mf
from .field_manager import (APPLY, BEFORE_FIRST_APPLY, Entry, Request, changes,
                            conflict_error, empty_object, live_entries, owned, set_entries,
                            update_entries, without_entries)
from .typed_schema import Type, shape_of


def check_target(config: dict, name: str, namespace: str) -> None:
    """400 unless the configuration names the object of the URL, as kube-apiserver checks a
    patched object."""
    meta = config.get("metadata") if isinstance(config.get("metadata"), dict) else {}
    if meta.get("name") and meta["name"] != name:
        raise status.bad_request(f"the name of the object ({meta['name']}) does not match the "
                                 f"name on the URL ({name})")
    if namespace and meta.get("namespace") and meta["namespace"] != namespace:
        raise status.bad_request(f"the namespace of the object ({meta['namespace']}) does not "
                                 f"match the namespace on the request ({namespace})")


def apply(live: dict | None, config: dict, req: Request, now: str, *,
          force: bool = False) -> dict:
    """The object after req.manager applies config to live (None: the object is created)."""
    api_version, kind = str(config.get("apiVersion") or ""), str(config.get("kind") or "")
    if (api_version, kind) != (req.api_version, req.kind):
        group, _, version = api_version.rpartition("/")
        raise status.bad_request(f"invalid object type: {group}/{version}, Kind={kind}")
    meta = config.get("metadata")
    if isinstance(meta, dict) and meta.get("managedFields") is not None:
        raise status.bad_request("metadata.managedFields must be nil")
    t = req.schema
    config = _drop_nulls(config)
    # The result shares what the apply leaves alone with base: a copy, so live stays as it was.
    base = copy.deepcopy(without_entries(live)) if live is not None else {}
    entries = _entries_before(live, base, req, now)
    mine = next((e for e in entries if e.same_manager(req.manager, APPLY, req.subresource,
                                                      req.api_version)), None)
    if mine is None:
        mine = Entry(req.manager, APPLY, req.api_version, set(), subresource=req.subresource)
        entries.append(mine)
    last = mine.fields
    mine.fields, mine.api_version = owned(mf.from_object(config, t), req), req.api_version
    merged = merge(base, config, t)
    if last:
        owners = set().union(*(e.fields for e in entries))
        merged = prune(merged, last, owners | mf.from_object(config, t), t)
    if live is not None:
        _take_ownership(entries, mine, base, merged, req, force)
    if live is None or merged != base:
        # As kube-apiserver, an apply that changes nothing leaves the time as it was.
        mine.time = now
    if req.manager == last_applied.KUBECTL:
        last_applied.sync_annotation(merged, config)
    set_entries(merged, entries)
    return merged


def _entries_before(live: dict | None, base: dict, req: Request, now: str) -> list[Entry]:
    """The live object's entries; for one written before anyone tracked it, what it holds
    belongs to a manager of its own."""
    entries = live_entries(live)
    if live is not None and not entries:
        before = dataclasses.replace(req, manager=BEFORE_FIRST_APPLY)
        entries = update_entries([], *changes(empty_object(req.schema), base, before), before,
                                 now)
    return entries


def _take_ownership(entries: list[Entry], mine: Entry, base: dict, merged: dict,
                    req: Request, force: bool) -> None:
    """The other managers lose what the apply changed or removed; a changed field one of
    them owned is a conflict unless forced."""
    changed, removed = changes(base, merged, req)
    conflicts = [(e, p) for e in entries if e is not mine for p in sorted(e.fields & changed)]
    if conflicts and not force and req.manager == last_applied.KUBECTL:
        # kubectl moving from client-side to server-side apply keeps what it set before.
        allowed = last_applied.allowed_conflicts(base, req.schema, req.api_version)
        conflicts = [(e, p) for e, p in conflicts if p not in allowed]
    if conflicts and not force:
        raise conflict_error(conflicts)
    for entry in entries:
        if entry is not mine:
            entry.fields -= changed | removed


def _drop_nulls(value: object) -> object:
    """The configuration less its null fields: a typed object has no nulls."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def merge(live: object, config: object, t: Type) -> object:
    """config merged into live: maps and structs field by field, associative lists and sets
    item by item, everything else replaced. Neither argument is modified."""
    t = shape_of(t, config)
    if isinstance(config, dict) and isinstance(live, dict) and \
            t.kind in ("struct", "map") and not t.atomic:
        out = dict(live)
        for name, value in config.items():
            sub = mf.child_type(t, name)[0]
            out[name] = merge(live[name], value, sub) if name in live else copy.deepcopy(value)
        return out
    if isinstance(config, list) and isinstance(live, list) and t.kind == "list" and \
            t.list_type != "atomic":
        merged = _merge_items(live, config, t)
        if merged is not None:
            return merged
    return copy.deepcopy(config)


def _merge_items(live: list, config: list, t: Type) -> list | None:
    """The items of both lists, merged where their keys match: live's order, with the shared
    items in config's order and config's new items where config puts them. None if an item
    has no key."""
    live_keys = [mf.item_element(t, item) for item in live]
    config_keys = [mf.item_element(t, item) for item in config]
    if None in live_keys or None in config_keys:
        return None
    live_by = dict(zip(reversed(live_keys), reversed(live)))
    config_by = dict(zip(reversed(config_keys), reversed(config)))
    shared = iter([k for k in config_keys if k in live_by])
    next_shared = next(shared, None)
    out: list = []
    done: set = set()
    i = j = 0
    while i < len(live) or j < len(config):
        if i < len(live) and j < len(config):
            key = live_keys[i]
            if key == config_keys[j]:
                if key not in done:
                    out.append(merge(live_by[key], config_by[key], t.elem()))
                    done.add(key)
                i, j = i + 1, j + 1
                next_shared = next(shared, None)
                continue
            if key in config_by and next_shared is not None and next_shared != key:
                i += 1
                continue
        if i < len(live):
            key = live_keys[i]
            if key not in config_by:
                out.append(copy.deepcopy(live[i]))
                i += 1
                continue
            if key in done:
                i += 1
                continue
        if j < len(config):
            key = config_keys[j]
            if key not in done:
                out.append(merge(live_by[key], config_by[key], t.elem()) if key in live_by
                           else copy.deepcopy(config_by[key]))
                done.add(key)
            j += 1
            if key == next_shared:
                next_shared = next(shared, None)
    return out


def prune(merged: dict, last: mf.FieldSet, owners: mf.FieldSet, t: Type) -> dict:
    """merged less the fields of the applier's last configuration that nobody owns now. A
    struct's named field on the way to one goes too when nothing under it is owned, and so
    does a map or list that this leaves empty."""
    keep = mf.named_prefixes(owners, t) | {(("f", "metadata"),)}
    drop = mf.named_prefixes(last, t) - keep
    if not drop:
        return merged
    out = copy.deepcopy(merged)
    _remove(out, t, (), drop, mf.prefixes(drop))
    return out


def _remove(value: object, t: Type, path: mf.Path, drop: mf.FieldSet,
            inner: mf.FieldSet) -> None:
    t = shape_of(t, value)
    if isinstance(value, dict):
        for name in list(value):
            child = path + (("f", name),)
            if child in drop:
                del value[name]
            elif child in inner:
                _remove(value[name], mf.child_type(t, name)[0], child, drop, inner)
                if value[name] in ({}, []):
                    # structured-merge-diff leaves a null where it emptied a map or list.
                    del value[name]
    elif isinstance(value, list) and t.kind == "list" and t.list_type != "atomic":
        kept = []
        for item in value:
            element = mf.item_element(t, item)
            child = path + (element,) if element is not None else None
            if child in drop:
                continue
            if child in inner:
                _remove(item, t.elem(), child, drop, inner)
            kept.append(item)
        value[:] = kept
