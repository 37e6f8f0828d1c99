"""The runtime's error types: each carries the one line a user sees."""
from __future__ import annotations


class PycontainerError(Exception):
    """A failure the CLI reports as one line and a non-zero exit."""


class ConfigError(PycontainerError, ValueError):
    """config.json (or a process.json) is malformed or asks the impossible.

    The message starts with the OCI field path, e.g. "process.args: must not be empty".
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class ContainerNotFound(PycontainerError):
    def __init__(self, container_id: str) -> None:
        super().__init__(f"container {container_id} does not exist")


class StateError(PycontainerError):
    """The operation does not fit the container's status (e.g. start on a running container)."""
