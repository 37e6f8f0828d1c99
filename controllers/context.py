"""What every controller's start function receives."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from kubeapi.informer import Informer, InformerFactory
from kubeapi.restclient import ApiClient


@dataclass(frozen=True)
class Thresholds:
    """How the node lifecycle controller taints per disruption zone (nodes.zones):
    kube-controller-manager's --unhealthy-zone-threshold, --large-cluster-size-threshold,
    --node-eviction-rate and --secondary-node-eviction-rate."""
    unhealthy_zone: float = 0.55
    large_cluster: int = 50
    eviction_rate: float = 0.1
    secondary_eviction_rate: float = 0.01


@dataclass
class Options:
    """The flags controllers read (kube-controller-manager's names, in seconds)."""
    node_monitor_grace_period: float = 40.0
    node_monitor_period: float = 5.0
    node_startup_grace_period: float = 60.0
    zones: Thresholds = field(default_factory=Thresholds)   # NoExecute tainting per zone
    concurrent_gc_syncs: int = 20
    concurrent_deployment_syncs: int = 5
    concurrent_replicaset_syncs: int = 5
    gc_discovery_period: float = 30.0
    extra: dict = field(default_factory=dict)  # flags of controllers added later


@dataclass
class ControllerContext:
    client: ApiClient
    informers: InformerFactory
    stop: threading.Event        # set when the manager stops or loses leadership
    options: Options

    def wait_for_sync(self, *informers: Informer) -> bool:
        """Starts the factory's informers and waits until these have listed; False when the
        manager stops first."""
        self.informers.start()
        for informer in informers:
            while not informer.wait_for_sync(0.2):
                if self.stop.is_set():
                    return False
        return not self.stop.is_set()
