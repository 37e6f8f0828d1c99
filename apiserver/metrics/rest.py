"""The metrics.k8s.io/v1beta1 REST endpoints: NodeMetrics (/nodes, /nodes/{name}) and
PodMetrics (/pods, /namespaces/{ns}/pods, /namespaces/{ns}/pods/{name}), get and list with
label and field selectors applied to the Nodes and Pods they describe, as metrics-server
serves them: only Running pods, only what has two scrapes; a Table on request (Name, the
usage columns, Window). Asking starts the scraping (scraper.py)."""
from __future__ import annotations

from kubeapi import timefmt
from kubeapi.quantity import parse_quantity
from kubeapi.status import ApiError

from apiserver.auth.authz import authorize
from apiserver.metrics.formats import cpu_quantity, go_duration, memory_quantity
from apiserver.metrics.points import Usage
from apiserver.metrics.scraper import Scraper
from apiserver.metrics.storage import MetricsStorage
from apiserver.registry.store import Store
from apiserver.request import Request, no_route

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
RESOLUTION = 15.0            # seconds between scrapes (metrics-server's --metric-resolution)


def resource_list() -> dict:
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": API_VERSION,
            "resources": [
                {"name": "nodes", "singularName": "", "namespaced": False,
                 "kind": "NodeMetrics", "verbs": ["get", "list"]},
                {"name": "pods", "singularName": "", "namespaced": True,
                 "kind": "PodMetrics", "verbs": ["get", "list"]}]}


def _usage(u: Usage) -> dict:
    return {"cpu": cpu_quantity(u.nano_cores), "memory": memory_quantity(u.memory),
            "swap": memory_quantity(u.swap)}


class MetricsApi:
    def __init__(self, pods: Store, nodes: Store, client_cert: str, client_key: str,
                 resolution: float = RESOLUTION) -> None:
        self.pods = pods
        self.nodes = nodes
        self.storage = MetricsStorage(resolution)
        self.scraper = Scraper(nodes, self.storage, client_cert, client_key)

    def stop(self) -> None:
        self.scraper.stop()

    def handle(self, rest: list[str], req: Request, table: bool) -> tuple[int, dict]:
        """rest: the path after /apis/metrics.k8s.io; (HTTP code, body) or ApiError."""
        if not rest or rest[0] != VERSION:
            raise no_route()
        rest = rest[1:]
        if not rest:
            return 200, resource_list()
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 2 or rest[0] not in ("nodes", "pods") or \
                (rest[0] == "nodes" and namespace):
            raise no_route()
        plural, name = rest[0], rest[1] if len(rest) == 2 else ""
        if req.method != "GET":
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on "
                           "the requested resource")
        if req.query.get("watch", "").lower() in ("1", "true"):
            raise ApiError(405, "MethodNotAllowed", "watch is not supported on "
                           f"{plural}.{GROUP}")
        verb = "get" if name else "list"
        authorize(req.user, verb, plural, "", namespace, GROUP)
        self.scraper.demand()
        if plural == "nodes":
            items = self._nodes(name, req.query)
            kind = "NodeMetrics"
        else:
            items = self._pods(namespace, name, req.query)
            kind = "PodMetrics"
        if name:
            if not items:
                what = f"{namespace}/{name}" if namespace else name
                raise ApiError(404, "NotFound", f'{kind.lower()}.{GROUP} "{what}" not found',
                               kind=kind.lower(), name=what)
            return 200, _table(items) if table else items[0]
        if table:
            return 200, _table(items)
        return 200, {"kind": f"{kind}List", "apiVersion": API_VERSION, "metadata": {},
                     "items": items}

    def _nodes(self, name: str, query: dict[str, str]) -> list[dict]:
        if name:
            found = [self.nodes.get("", name)]      # 404 for a node that does not exist
        else:
            found = self.nodes.list("", label_selector=query.get("labelSelector", ""),
                                    field_selector=query.get("fieldSelector", "")).items
        items = []
        for node in found:
            meta = node["metadata"]
            u = self.storage.node(meta["name"])
            if u is None:
                continue
            items.append({"kind": "NodeMetrics", "apiVersion": API_VERSION,
                          "metadata": {"name": meta["name"],
                                       "creationTimestamp": timefmt.rfc3339(),
                                       "labels": meta.get("labels") or {}},
                          "timestamp": timefmt.rfc3339(u.timestamp),
                          "window": go_duration(u.window), "usage": _usage(u)})
        return items

    def _pods(self, namespace: str, name: str, query: dict[str, str]) -> list[dict]:
        if name:
            found = [self.pods.get(namespace, name)]
        else:
            found = self.pods.list(namespace, label_selector=query.get("labelSelector", ""),
                                   field_selector=query.get("fieldSelector", "")).items
        items = []
        for pod in found:
            meta = pod["metadata"]
            if (pod.get("status") or {}).get("phase") != "Running":
                continue
            got = self.storage.pod((meta["namespace"], meta["name"]))
            if got is None:
                continue
            timestamp, window, containers = got
            items.append({"kind": "PodMetrics", "apiVersion": API_VERSION,
                          "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                                       "creationTimestamp": timefmt.rfc3339(),
                                       "labels": meta.get("labels") or {}},
                          "timestamp": timefmt.rfc3339(timestamp), "window": go_duration(window),
                          "containers": [{"name": c, "usage": _usage(u)}
                                         for c, u in sorted(containers.items())]})
        return items


def _sum(usages: list[dict]) -> dict:
    total: dict = {}
    for usage in usages:
        for key, value in usage.items():
            total[key] = total.get(key, 0) + parse_quantity(value)
    return total


def _table(items: list[dict]) -> dict:
    """metrics-server's table: Name, one column per resource (sorted), Window."""
    rows, columns = [], None
    for item in items:
        if "usage" in item:
            usage = item["usage"]
        else:
            summed = _sum([c["usage"] for c in item["containers"]])
            usage = {k: cpu_quantity(int(v * 10 ** 9)) if k == "cpu" else memory_quantity(int(v))
                     for k, v in summed.items()}
        names = sorted(usage)
        if columns is None:
            columns = [{"name": "Name", "type": "string", "format": "name",
                        "description": "Name of the resource", "priority": 0}]
            columns += [{"name": n, "type": "string", "format": "quantity", "description": "",
                         "priority": 0} for n in names]
            columns.append({"name": "Window", "type": "string", "format": "duration",
                            "description": "", "priority": 0})
        rows.append({"cells": [item["metadata"]["name"], *(usage.get(n, "0") for n in names),
                               item["window"]], "object": item})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
            "columnDefinitions": columns or [], "rows": rows}
