"""The controller manager (`pycontroller-manager`), as kube-controller-manager: controllers that
watch the API through shared informers (kubeapi.informer) and act through the REST client,
started only on the leader (kubeapi.leaderelection) of the Lease
kube-system/kube-controller-manager.

Modules: cli (flags, signals, leader election), manager (starts the selected controllers),
registry (name -> start function: add a controller there in one line), context (what a start
function receives), durations (Go duration flags), healthz (--secure-port), events (the event
recorder), indexes (index functions that controllers sharing an informer share), discovery (what
the server serves), taints (taint and toleration rules), and one module per controller:
garbage_collector, node_lifecycle, taint_eviction, replicaset, deployment (its sync in rollout,
its arithmetic in deployment_util), daemonset, statefulset, job (its podFailurePolicy in
job_failure_policy), ttl_after_finished, cronjob, local_provisioner (PersistentVolumes for
claims). Shared by the workload controllers: controller_ref (adoption and release of
dependents), expectations, pod_util (readiness, availability, deletion order), workers (the
worker threads of a keyed queue), history (ControllerRevisions), workload_status (status
writes).

A controller is a function `start(ctx: ControllerContext) -> None` that asks
ctx.informers.informer(path) for the informers it needs, registers handlers that put keys on a
kubeapi.workqueue.RateLimitingQueue, starts its worker threads and returns at once; its threads
end when ctx.stop is set (the manager then also stops the informers). Workers call
ctx.wait_for_sync(informer, ...) before their first key. See node_lifecycle for a small example.
"""
