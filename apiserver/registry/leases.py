"""coordination.k8s.io/v1 Leases: node heartbeats and leader election."""
from __future__ import annotations

from kubeapi.status import invalid_value

from .strategy import Strategy


class LeaseStrategy(Strategy):
    kind = "Lease"

    def validate(self, obj: dict) -> list[dict]:
        spec = obj.get("spec") or {}
        errors = []
        for field in ("leaseDurationSeconds", "leaseTransitions"):
            value = spec.get(field)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 0 or \
                    (field == "leaseDurationSeconds" and value == 0):
                errors.append(invalid_value(f"spec.{field}", value, "must be greater than 0"
                                            if field == "leaseDurationSeconds"
                                            else "must be greater than or equal to 0"))
        return errors
