"""Which of the API servers on one storage schedules: the holder of kube-scheduler's Lease
(kube-system/kube-scheduler), elected with kubeapi's LeaderElector on this server's own lease
store rather than over HTTP. Every write is an update on the resourceVersion read, so of two
servers only one holds the Lease at a time."""
from __future__ import annotations

from kubeapi.leaderelection import LeaderElectionConfig, default_identity

from ..registry.store import Store

LEASE_NAMESPACE, LEASE_NAME = "kube-system", "kube-scheduler"


def lease_config() -> LeaderElectionConfig:
    """kube-scheduler's defaults: 15 s lease, 10 s renew deadline, 2 s retry; given up at
    a clean stop, so that another server takes over at once."""
    return LeaderElectionConfig(LEASE_NAMESPACE, LEASE_NAME, default_identity())


class StoreLeaseClient:
    """The calls a LeaderElector makes of an ApiClient (get, POST, PUT of one Lease), served
    by the lease store."""

    def __init__(self, leases: Store):
        self._leases = leases

    @staticmethod
    def _parse(path: str) -> tuple[str, str]:
        """(namespace, name) of `.../namespaces/<ns>/leases[/<name>]`."""
        parts = path.split("/")
        at = parts.index("namespaces")
        return parts[at + 1], parts[at + 3] if len(parts) > at + 3 else ""

    def get(self, path: str) -> dict:
        return self._leases.get(*self._parse(path))

    def request(self, method: str, path: str, body: dict) -> dict:
        namespace, name = self._parse(path)
        if method == "POST":
            return self._leases.create(namespace, body)
        return self._leases.update(namespace, name, body)
