"""Namespace types as the OCI spec names them, their clone(2) flags and their /proc/PID/ns files."""
from __future__ import annotations

from runtime import syscalls as s

CLONE_FLAGS = {"mount": s.CLONE_NEWNS, "uts": s.CLONE_NEWUTS, "ipc": s.CLONE_NEWIPC,
               "user": s.CLONE_NEWUSER, "pid": s.CLONE_NEWPID, "network": s.CLONE_NEWNET,
               "cgroup": s.CLONE_NEWCGROUP}
PROC_FILES = {"user": "user", "ipc": "ipc", "uts": "uts", "network": "net", "cgroup": "cgroup",
              "mount": "mnt", "pid": "pid"}
# setns order: the user namespace first (it grants the rights for the others), the mount
# namespace last (it changes what the other paths mean).
JOIN_ORDER = ("user", "ipc", "uts", "network", "cgroup", "mount")
