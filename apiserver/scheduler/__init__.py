"""The minimal scheduler, as kube-scheduler does it: fit (filters and score), recorder
(events and the PodScheduled condition), loop (the thread that watches and binds through the
pod registry), election (kube-scheduler's Lease, so that of several servers on one storage one
schedules). The API server starts one Scheduler."""
from .loop import Scheduler

__all__ = ["Scheduler"]
