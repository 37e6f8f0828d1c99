"""The minimal scheduler, as kube-scheduler does it: fit (filters and score), recorder
(events and the PodScheduled condition), loop (the thread that watches and binds through the
pod registry). The API server starts one Scheduler."""
from .loop import Scheduler

__all__ = ["Scheduler"]
