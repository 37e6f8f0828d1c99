"""What runs inside the new container before the user process: the init (container_init), its
root filesystem (rootfs: mounts, masks, pivot_root), devices, capabilities, seccomp and the
process it execs; with the path and mount-descriptor helpers they share."""
