"""Pod volumes (the kubelet's volume manager and its plugins): emptyDir, hostPath, configMap,
secret, downwardAPI, projected and persistentVolumeClaim volumes made and torn down per pod
(manager), their files written atomically as the kubelet's AtomicWriter does (atomic_writer),
fsGroup ownership (fs_group), the service account tokens of projected volumes
(token_manager), and a claim's PersistentVolume path (claims)."""
