"""Bringing each pod to its spec (pod workers and the kuberuntime manager's SyncPod): one worker
per pod (workers), what a pod needs now (pod_actions) and doing it through the CRI (syncer), with
the restart and pull back-offs (backoff); each container's CRI config from its spec
(container_config, env_vars, volume_mounts, security_context) and the pod's DNS and /etc files
(pod_dns, etc_files)."""
