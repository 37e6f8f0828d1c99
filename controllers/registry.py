"""Every controller the manager knows: its --controllers name, older names it also answers to,
and its start function. Add a controller here in one line."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .context import ControllerContext
from .endpoints import endpoints, endpointslice, endpointslice_mirroring
from .gc import garbage_collector
from .nodes import node_lifecycle, taint_eviction
from .volumes import local_provisioner
from .workloads import (cronjob, daemonset, deployment, job, replicaset, statefulset,
                        ttl_after_finished)


@dataclass(frozen=True)
class Controller:
    name: str
    start: Callable[[ControllerContext], None]
    aliases: tuple[str, ...] = ()
    enabled_by_default: bool = True


CONTROLLERS: tuple[Controller, ...] = (
    Controller("garbage-collector-controller", garbage_collector.start, ("garbagecollector",)),
    Controller("node-lifecycle-controller", node_lifecycle.start, ("nodelifecycle",)),
    Controller("taint-eviction-controller", taint_eviction.start),
    Controller("endpointslice-controller", endpointslice.start, ("endpointslice",)),
    Controller("endpoints-controller", endpoints.start, ("endpoint",)),
    Controller("endpointslice-mirroring-controller", endpointslice_mirroring.start,
               ("endpointslicemirroring",)),
    Controller("deployment-controller", deployment.start, ("deployment",)),
    Controller("replicaset-controller", replicaset.start, ("replicaset",)),
    Controller("daemonset-controller", daemonset.start, ("daemonset",)),
    Controller("statefulset-controller", statefulset.start, ("statefulset",)),
    Controller("job-controller", job.start, ("job",)),
    Controller("cronjob-controller", cronjob.start, ("cronjob",)),
    Controller("ttl-after-finished-controller", ttl_after_finished.start, ("ttl-after-finished",)),
    Controller("persistentvolume-provisioner-controller", local_provisioner.start,
               ("local-provisioner",)),
)


def select(specs: list[str]) -> list[Controller]:
    """kube-controller-manager's --controllers: '*' is every controller on by default, 'name'
    turns one on, '-name' off; ValueError naming an unknown controller."""
    known = {c.name: c for c in CONTROLLERS}
    for c in CONTROLLERS:
        known.update({alias: c for alias in c.aliases})
    on: set[str] = set()
    off: set[str] = set()
    star = False
    for spec in specs:
        if spec == "*":
            star = True
            continue
        name = spec[1:] if spec.startswith("-") else spec
        if name not in known:
            raise ValueError(f'"{name}" is not in the list of known controllers')
        (off if spec.startswith("-") else on).add(known[name].name)
    return [c for c in CONTROLLERS
            if c.name not in off and (c.name in on or (star and c.enabled_by_default))]
