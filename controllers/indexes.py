"""Index functions controllers share: the same function under the same name may be added to a
shared informer by each controller that needs it (kubeapi.informer.Store.add_indexer)."""
from __future__ import annotations

POD_NODE = "spec.nodeName"


def pod_node(pod: dict) -> list[str]:
    return [(pod.get("spec") or {}).get("nodeName") or ""]
