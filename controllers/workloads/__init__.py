"""The workload controllers, as kube-controller-manager's apps and batch families: replicaset,
deployment (its sync in rollout, its arithmetic in deployment_util), daemonset, statefulset,
job (its podFailurePolicy in job_failure_policy), cronjob and ttl_after_finished. What they
share: controller_ref (adoption and release of dependents), expectations, pod_util (readiness,
availability, deletion order), history (ControllerRevisions) and workload_status (status
writes)."""
