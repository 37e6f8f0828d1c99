"""Nodes: cluster-scoped, written by the kubelet (object on registration, then /status)."""
from __future__ import annotations

from kubeapi import validation
from kubeapi.quantity import parse_quantity
from kubeapi.status import invalid_value, not_supported, required

from .strategy import Strategy

TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
# NodeSystemInfo's fields are plain strings in Go: kube-apiserver always sends all of them,
# and clients (the official Python client) refuse a Node where one is missing or null.
NODE_INFO_FIELDS = ("machineID", "systemUUID", "bootID", "kernelVersion", "osImage",
                    "containerRuntimeVersion", "kubeletVersion", "kubeProxyVersion",
                    "operatingSystem", "architecture")


class NodeStrategy(Strategy):
    kind = "Node"
    namespaced = False
    has_status = True
    field_labels = frozenset({"metadata.name", "spec.unschedulable"})

    def default(self, obj: dict) -> None:
        obj.setdefault("spec", {})
        status = obj.setdefault("status", {})
        if not isinstance(status, dict):
            return  # validation names it
        # nodeInfo and daemonEndpoints are structs, not pointers, in Go: always encoded
        info = status.setdefault("nodeInfo", {})
        if isinstance(info, dict):
            for field in NODE_INFO_FIELDS:
                value = info.get(field)
                info[field] = "" if value is None else str(value)
        endpoints = status.setdefault("daemonEndpoints", {})
        if isinstance(endpoints, dict):
            kubelet = endpoints.setdefault("kubeletEndpoint", {})
            if isinstance(kubelet, dict) and kubelet.get("Port") is None:
                kubelet["Port"] = 0

    def validate(self, obj: dict) -> list[dict]:
        errors = []
        for i, taint in enumerate(obj.get("spec", {}).get("taints") or []):
            path = f"spec.taints[{i}]"
            if not taint.get("key"):
                errors.append(required(path + ".key"))
            else:
                errors += validation.qualified_name(taint["key"], path + ".key")
            if taint.get("effect") not in TAINT_EFFECTS:
                errors.append(not_supported(path + ".effect", taint.get("effect", ""),
                                            TAINT_EFFECTS))
        status = obj.get("status", {})
        for field in ("capacity", "allocatable"):
            for name, value in (status.get(field) or {}).items():
                try:
                    parse_quantity(value)
                except ValueError as e:
                    errors.append(invalid_value(f"status.{field}[{name}]", value, str(e)))
        return errors

    def fields(self, obj: dict) -> dict[str, str]:
        return {"metadata.name": obj["metadata"].get("name", ""),
                "spec.unschedulable": str(bool(obj.get("spec", {}).get("unschedulable"))).lower()}
