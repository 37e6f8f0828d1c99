"""The kubelet server's metrics and stats endpoints: /metrics/resource (what metrics-server
scrapes), /metrics (the kubelet's own metrics), /metrics/probes (every probe run, by result)
and /stats/summary (the Summary API, with
?only_cpu_and_memory=true for the reduced form). Callers are authenticated as for logs; the
kubelet authorizes them as nodes/metrics and nodes/stats, for which a bearer token's holder
must be able to read this Node."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from cri.api import RuntimeService

from kubelet.stats import kubelet_metrics, resource_metrics
from kubelet.stats.kubelet_metrics import PodStartDurations
from kubelet.prober.metrics import ProbeCounts
from kubelet.stats.prometheus import CONTENT_TYPE, render
from kubelet.stats.provider import StatsProvider
from kubelet.stats.summary import summary

log = logging.getLogger("kubelet.server")

PATHS = (("metrics",), ("metrics", "resource"), ("metrics", "probes"), ("stats", "summary"))


@dataclass
class Reply:
    status: int
    content_type: str
    body: bytes


class MetricsEndpoints:
    def __init__(self, provider: StatsProvider, runtime: RuntimeService,
                 probe_counts: ProbeCounts) -> None:
        self.provider = provider
        self.runtime = runtime
        self.probe_counts = probe_counts
        self.pod_starts = PodStartDurations()

    @property
    def node_path(self) -> str:
        """The API path a bearer token must be allowed to GET to read this node's stats."""
        return f"/api/v1/nodes/{self.provider.node_name}"

    def serve(self, parts: list[str], query: dict[str, list[str]]) -> Reply:
        """parts is one of PATHS. A failure to read the stats is a 500 with one line (the
        resource metrics report it as scrape_error instead, as the kubelet's do)."""
        try:
            return self._serve(parts, query)
        except Exception as e:  # noqa: BLE001 - the caller gets the cause, the log the trace
            log.exception("serving /%s failed", "/".join(parts))
            return Reply(500, "text/plain; charset=utf-8",
                         f"Internal Error: failed to get stats: {e}\n".encode())

    def _serve(self, parts: list[str], query: dict[str, list[str]]) -> Reply:
        if parts == ["metrics", "resource"]:
            return Reply(200, CONTENT_TYPE,
                         resource_metrics.text(self.provider.snapshot).encode())
        if parts == ["metrics", "probes"]:
            return Reply(200, CONTENT_TYPE, render([self.probe_counts.family()]).encode())
        if parts == ["metrics"]:
            return Reply(200, CONTENT_TYPE, kubelet_metrics.text(
                self.provider.node_name, self.runtime, self.provider.known_pods,
                self.pod_starts).encode())
        reduced = (query.get("only_cpu_and_memory") or ["false"])[-1].lower() == "true"
        doc = summary(self.provider.snapshot(full=not reduced))
        return Reply(200, "application/json", json.dumps(doc, indent=2).encode())
