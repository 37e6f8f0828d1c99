"""What the workload strategies share: status reset on create, and the fields a scale
subresource reads and writes (kube's apps and batch strategies)."""
from __future__ import annotations

import copy

from ..strategy import Strategy


class WorkloadStrategy(Strategy):
    """A resource with spec and status subresource; status starts as `initial_status`."""

    has_status = True
    has_generation = True
    # The status fields that Go encodes even when zero (no omitempty in the type).
    initial_status: dict = {}

    def prepare_create(self, obj: dict) -> None:
        obj["status"] = copy.deepcopy(self.initial_status)
