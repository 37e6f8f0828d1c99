"""Discovery documents: /version, /api, /apis, /apis/<group> and the APIResourceLists."""
from __future__ import annotations

import platform

from ..auth import reviews
from ..metrics import rest as metrics_rest
from ..resources import ALL_VERBS, GROUP_VERSIONS, RESOURCES, SUBRESOURCE_KINDS

# The Kubernetes API level this server speaks; kubectl warns when it is far from its own.
KUBE_MAJOR, KUBE_MINOR = "1", "37"


def version() -> dict:
    return {"major": KUBE_MAJOR, "minor": KUBE_MINOR,
            "gitVersion": f"v{KUBE_MAJOR}.{KUBE_MINOR}.0-pyapiserver",
            "gitCommit": "", "gitTreeState": "clean", "buildDate": "",
            "goVersion": f"python{platform.python_version()}", "compiler": "cpython",
            "platform": f"linux/{platform.machine()}"}


def api_versions(server_address: str) -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                            "serverAddress": server_address}]}


def _group(name: str) -> dict:
    versions = [{"groupVersion": f"{g}/{v}", "version": v} for g, v in GROUP_VERSIONS if g == name]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def api_group_list() -> dict:
    groups = sorted({g for g, _ in GROUP_VERSIONS if g})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(g) for g in groups]}


def api_group(name: str) -> dict | None:
    if not any(g == name for g, _ in GROUP_VERSIONS if g):
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name)}


def api_resource_list(group: str, version: str) -> dict | None:
    if (group, version) not in GROUP_VERSIONS:
        return None
    if group == metrics_rest.GROUP:
        return metrics_rest.resource_list()
    if reviews.serves(group, version):
        return reviews.resource_list(group, version)
    resources = []
    for r in RESOURCES:
        if r.group != group or r.version != version:
            continue
        entry = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                 "kind": r.kind, "verbs": list(ALL_VERBS)}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        resources.append(entry)
        for sub, verbs in r.subresources.items():
            kind = {"binding": "Binding", "log": "Pod", "exec": "PodExecOptions",
                    "attach": "PodAttachOptions",
                    "portforward": "PodPortForwardOptions"}.get(sub, r.kind)
            entry = {"name": f"{r.plural}/{sub}", "singularName": "",
                     "namespaced": r.namespaced, "kind": kind, "verbs": list(verbs)}
            if sub in SUBRESOURCE_KINDS:
                entry["group"], entry["version"], entry["kind"] = SUBRESOURCE_KINDS[sub]
            resources.append(entry)
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": resources}
