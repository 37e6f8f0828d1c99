"""pykubelet: the node agent. Registers the Node, renews its Lease, lists and watches the pods
bound to it, runs them through a CRI-like runtime service built on runtime + shim + overlay +
cni, and writes their status back, through the Kubernetes REST API only.

The modules, roughly in the order a pod passes through them: sources/api (list+watch) ->
sync/workers (one worker per pod) -> sync/pod_actions (what to do) -> sync/syncer (doing it
through the CRI, cri.api) -> status/pod_status (the API status) -> status/manager (writing
it)."""

VERSION = "0.1.0"
# What the Node reports as kubeletVersion: the Kubernetes API level we follow, and who we are.
KUBELET_VERSION = "v1.37.0-pykubelet"
