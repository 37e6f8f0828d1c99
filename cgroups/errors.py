"""The errors the cgroups package raises: one line naming the field or file and the problem."""
from __future__ import annotations


class CgroupError(ValueError):
    """Bad input or a cgroup operation the kernel refused; the message is one line for the user."""


class SystemdUnavailable(CgroupError):
    """A cgroupsPath in systemd form ("slice:prefix:name") where we have no systemd driver."""

