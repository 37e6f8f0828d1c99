"""The workload kinds (apps/v1, batch/v1), their shared status rules and the scale subresource."""
