from netkit import bridge_name, namespaces, restore_host_networking  # noqa: F401
