"""Scraping the kubelets: every Ready node's /metrics/resource, at the node's address
(InternalIP, then Hostname, then ExternalIP) and status.daemonEndpoints port, presenting the
API server's kubelet client certificate, all nodes at once with a timeout below the
resolution. Scraping runs on demand: the first metrics request starts a loop that scrapes at
once and then every resolution, and stops after IDLE_AFTER seconds without a request (an API
server nobody asks for metrics sends no traffic to its nodes)."""
from __future__ import annotations

import http.client
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from apiserver.metrics.exposition import ExpositionError
from apiserver.metrics.points import Batch, decode
from apiserver.metrics.storage import MetricsStorage
from apiserver.nodeproxy.kubelet_client import client_tls, kubelet_endpoint
from apiserver.registry.store import Store

log = logging.getLogger("apiserver.metrics")

IDLE_AFTER = 600.0
MAX_PARALLEL = 8


def ready(node: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


class Scraper:
    def __init__(self, nodes: Store, storage: MetricsStorage, client_cert: str,
                 client_key: str) -> None:
        self.nodes = nodes
        self.storage = storage
        self._context = client_tls(client_cert, client_key)
        self._last_demand = 0.0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def demand(self) -> None:
        """Someone asked for metrics: keep scraping (start if idle)."""
        with self._lock:
            self._last_demand = time.monotonic()
            if self._stop.is_set() or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._loop, name="metrics-scraper",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join()

    def _loop(self) -> None:
        resolution = self.storage.resolution
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.scrape_all(resolution * 0.9)
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("scraping the kubelets failed")
            with self._lock:
                if time.monotonic() - self._last_demand > IDLE_AFTER:
                    self._thread = None
                    return
            self._stop.wait(max(resolution - (time.monotonic() - started), 0.0))

    def scrape_all(self, timeout: float) -> None:
        nodes = [n for n in self.nodes.list("").items if ready(n)]
        batches: dict[str, Batch] = {}
        if nodes:
            with ThreadPoolExecutor(min(len(nodes), MAX_PARALLEL)) as pool:
                for name, batch in zip([n["metadata"]["name"] for n in nodes],
                                       pool.map(lambda n: self.scrape(n, timeout), nodes)):
                    if batch is not None:
                        batches[name] = batch
        self.storage.store(batches)

    def scrape(self, node: dict, timeout: float) -> Batch | None:
        name = node["metadata"]["name"]
        endpoint = kubelet_endpoint(node)
        if endpoint is None:
            log.info("node %s has no address to scrape", name)
            return None
        host, port = endpoint
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=self._context)
        requested = time.time()
        try:
            conn.request("GET", "/metrics/resource", headers={"Accept": "text/plain"})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                log.info("scraping node %s: the kubelet answered %d", name, resp.status)
                return None
            return decode(body.decode(), requested)
        except (OSError, http.client.HTTPException, ExpositionError, UnicodeDecodeError) as e:
            log.info("scraping node %s at %s:%d failed: %s", name, host, port, e)
            return None
        finally:
            conn.close()
