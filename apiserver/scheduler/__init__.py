"""The scheduler, in kube-scheduler's shape: cache (nodes and the room their pods take, kept
from the watch, assumed pods included), queue (active, backoff, unschedulable), quantities
(requests as integers), fit (filters and score), recorder (events and the PodScheduled
condition), loop (the thread that watches, decides and binds through the pod registry),
election (kube-scheduler's Lease, so that of several servers on one storage one schedules).
The API server starts one Scheduler."""
from .loop import Scheduler

__all__ = ["Scheduler"]
