"""The storage kinds: PersistentVolumes and their claims, and storage.k8s.io's CSINodes,
CSIDrivers and StorageClasses."""
