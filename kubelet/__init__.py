"""pykubelet: the node agent. Registers the Node, renews its Lease, lists and watches the pods
bound to it, runs them through a CRI-like runtime service built on runtime + shim + overlay +
cni, and writes their status back, through the Kubernetes REST API only.

The modules, roughly in the order a pod passes through them: pod_sources (list+watch) ->
pod_workers (one worker per pod) -> pod_actions (what to do) -> pod_sync (doing it through
runtime_service) -> pod_status (the API status) -> status_manager (writing it)."""

VERSION = "0.1.0"
# What the Node reports as kubeletVersion: the Kubernetes API level we follow, and who we are.
KUBELET_VERSION = "v1.37.0-pykubelet"
