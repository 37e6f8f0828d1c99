"""The volume controllers: local_provisioner (PersistentVolumes for claims of its
StorageClass)."""
