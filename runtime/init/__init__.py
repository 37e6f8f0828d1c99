"""What runs inside the new container before the user process: the init (container_init), its
root filesystem (rootfs: mounts, masks, pivot_root), devices, the process it execs
(process_setup), and the path and mount-descriptor helpers they share (securejoin, mountfd,
procfs)."""
