"""Pod volumes (the kubelet's volume manager and its plugins): emptyDir, hostPath, configMap,
secret, downwardAPI and projected volumes made and torn down per pod (manager), their files
written atomically as the kubelet's AtomicWriter does (atomic_writer), fsGroup ownership
(fs_group), and the service account tokens of projected volumes (token_manager)."""
