"""pykubelet: the node agent. Registers the Node, renews its Lease, lists and watches the pods
bound to it, runs them through the CRI runtime service (cri.api; cri.service in this process),
and writes their status back, through the Kubernetes REST API only.

Its folders follow the real kubelet's seams, roughly in the order a pod passes through them:
sources/ (API, static and mirror pods) -> sync/ (one worker per pod, what to do, doing it
through the CRI) -> prober/ (probes and hooks) -> status/ (the API status and writing it);
beside them volumes/, cm/ (QoS cgroups, admission, eviction), nodestatus/ (Node and Lease) and
server/ (the HTTPS endpoint). kubelet.py puts them together; the modules at the top are what
they share (pods: the typed Pod every part is handed, labels, pod_runtime, machine, events,
config) and the node-wide loops (gc, logs, supervisor)."""

VERSION = "0.1.0"
# What the Node reports as kubeletVersion: the Kubernetes API level we follow, and who we are.
KUBELET_VERSION = "v1.37.0-pykubelet"
