"""The controller manager (`pycontroller-manager`), as kube-controller-manager: controllers that
watch the API through shared informers (kubeapi.informer) and act through the REST client,
started only on the leader (kubeapi.leaderelection) of the Lease
kube-system/kube-controller-manager.

Modules: cli (flags, signals, leader election), manager (starts the selected controllers),
registry (name -> start function: add a controller there in one line), context (what a start
function receives), durations (Go duration flags), healthz (--secure-port), events (the event
recorder), workers (the worker threads of a keyed queue), indexes (index functions that
controllers sharing an informer share). The controllers, one subpackage per family as
kube-controller-manager groups them: workloads (ReplicaSet, Deployment, DaemonSet, StatefulSet,
Job, CronJob, TTL after finished), nodes (node lifecycle, taint eviction), endpoints
(EndpointSlice, Endpoints, EndpointSlice mirroring), gc (the garbage collector), volumes (the
local provisioner).

A controller is a function `start(ctx: ControllerContext) -> None` that asks
ctx.informers.informer(path) for the informers it needs, registers handlers that put keys on a
kubeapi.workqueue.RateLimitingQueue, starts its worker threads and returns at once; its threads
end when ctx.stop is set (the manager then also stops the informers). Workers call
ctx.wait_for_sync(informer, ...) before their first key. See nodes.node_lifecycle for a small
example.
"""
