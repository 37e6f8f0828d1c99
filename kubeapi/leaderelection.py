"""Leader election through a coordination.k8s.io/v1 Lease, as client-go's leaderelection.

    elector = LeaderElector(client, LeaderElectionConfig(
        namespace="kube-system", name="kube-controller-manager", identity=default_identity()))
    elector.run(on_started_leading=start, on_stopped_leading=stop, stop=stop_event)

run() blocks: it tries to acquire the Lease every retry_period (jittered by 1.2) until it
holds it, then calls on_started_leading(leading) in a thread of its own, where `leading` is a
threading.Event set when leadership ends; it renews every retry_period, and when a renewal has not
succeeded for renew_deadline (or `stop` is set) it sets `leading`, calls on_stopped_leading() and
returns. With release_on_cancel, a stop (not a lost lease) first gives the Lease up (holder "",
duration 1 s) so that a successor does not wait for it to expire.

The rules of client-go's tryAcquireOrRenew: a Lease held by someone else is free once it was
not renewed for its leaseDurationSeconds, measured on our own clock from when we last saw its
record change (clocks of different machines are never compared); taking it over increments
leaseTransitions and sets acquireTime; every write is an update on the resourceVersion read, so
that of two candidates only one wins.
"""
from __future__ import annotations

import copy
import logging
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from kubeapi import timefmt
from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError

log = logging.getLogger("leaderelection")
JITTER = 1.2


def default_identity() -> str:
    """hostname_<uuid>, as kube-controller-manager's."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


@dataclass
class LeaderElectionConfig:
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True

    def check(self) -> str:
        """"" or the one line saying what is wrong (as client-go's NewLeaderElector)."""
        if self.lease_duration <= self.renew_deadline:
            return "leaseDuration must be greater than renewDeadline"
        if self.renew_deadline <= JITTER * self.retry_period:
            return "renewDeadline must be greater than retryPeriod*JitterFactor"
        if self.retry_period < 1e-3 or self.lease_duration < 1e-3:
            return "leaseDuration and retryPeriod must be greater than zero"
        if not self.identity:
            return "Lock identity is empty"
        return ""


class LeaderElector:
    def __init__(self, client: ApiClient, config: LeaderElectionConfig) -> None:
        problem = config.check()
        if problem:
            raise ValueError(problem)
        self.client = client
        self.config = config
        self.path = (f"/apis/coordination.k8s.io/v1/namespaces/{config.namespace}"
                     f"/leases/{config.name}")
        self._observed: dict | None = None      # the Lease's spec as last read
        self._observed_at = 0.0                 # our monotonic clock when it last changed
        self._leader = False
        self.lease: dict = {}                   # the Lease as we last wrote it

    def is_leader(self) -> bool:
        return self._leader

    def check(self, tolerance: float = 20.0) -> str:
        """"" when healthy, as client-go's HealthzAdaptor: a leader whose lease has been
        expired for more than `tolerance` seconds without a renewal is not."""
        if self._leader and \
                time.monotonic() > self._observed_at + self.config.lease_duration + tolerance:
            return f"failed election to renew leadership on lease {self.config.name}"
        return ""

    def run(self, on_started_leading: Callable[[threading.Event], None],
            on_stopped_leading: Callable[[], None], stop: threading.Event) -> None:
        if not self._acquire(stop):
            return
        leading = threading.Event()
        worker = threading.Thread(target=on_started_leading, args=(leading,), daemon=True,
                                  name="leader")
        worker.start()
        try:
            self._renew(stop)
        finally:
            self._leader = False
            leading.set()
            # The controllers stop before the lease is given up or the caller exits.
            worker.join(self.config.renew_deadline)
            if stop.is_set() and self.config.release_on_cancel:
                self._release()
            on_stopped_leading()

    # -- the loops --------------------------------------------------------------------------

    def _acquire(self, stop: threading.Event) -> bool:
        log.info("attempting to acquire leader lease %s/%s...", self.config.namespace,
                 self.config.name)
        while not stop.is_set():
            if self._try_acquire_or_renew():
                log.info("successfully acquired lease %s/%s", self.config.namespace,
                         self.config.name)
                return True
            stop.wait(self.config.retry_period * random.uniform(1.0, JITTER))
        return False

    def _renew(self, stop: threading.Event) -> None:
        last_renew = time.monotonic()
        while not stop.wait(self.config.retry_period):
            if self._try_acquire_or_renew():
                last_renew = time.monotonic()
                continue
            if time.monotonic() - last_renew >= self.config.renew_deadline:
                log.error("failed to renew lease %s/%s: timed out waiting for the condition",
                          self.config.namespace, self.config.name)
                return

    # -- one attempt ------------------------------------------------------------------------

    def _try_acquire_or_renew(self) -> bool:
        cfg = self.config
        now_wall = timefmt.micro()
        mine = {"holderIdentity": cfg.identity,
                "leaseDurationSeconds": max(1, int(round(cfg.lease_duration))),
                "acquireTime": now_wall, "renewTime": now_wall, "leaseTransitions": 0}
        try:
            lease = self.client.get(self.path)
        except ApiError as e:
            if e.code != 404:
                log.warning("error retrieving resource lock %s/%s: %s", cfg.namespace,
                            cfg.name, e.message)
                return False
            return self._write("POST", {"metadata": {"name": cfg.name,
                                                     "namespace": cfg.namespace},
                                        "spec": mine})
        spec = lease.get("spec") or {}
        if spec != self._observed:
            self._observed = copy.deepcopy(spec)
            self._observed_at = time.monotonic()
        holder = spec.get("holderIdentity") or ""
        duration = spec.get("leaseDurationSeconds") or cfg.lease_duration
        if holder and holder != cfg.identity and \
                time.monotonic() < self._observed_at + duration:
            self._leader = False
            return False
        transitions = spec.get("leaseTransitions") or 0
        if holder == cfg.identity:
            mine["acquireTime"] = spec.get("acquireTime") or now_wall
            mine["leaseTransitions"] = transitions
        else:
            mine["leaseTransitions"] = transitions + 1
        lease = copy.deepcopy(lease)
        lease["spec"] = mine
        return self._write("PUT", lease)

    def _write(self, method: str, lease: dict) -> bool:
        collection = self.path.rsplit("/", 1)[0]
        try:
            out = self.client.request(method, collection if method == "POST" else self.path,
                                      lease)
        except ApiError as e:
            if e.code not in (404, 409):
                log.warning("error writing lease %s/%s: %s", self.config.namespace,
                            self.config.name, e.message)
            self._leader = False
            return False
        self.lease = out or lease
        self._observed = copy.deepcopy(self.lease.get("spec") or {})
        self._observed_at = time.monotonic()
        self._leader = True
        return True

    def _release(self) -> None:
        """Gives the Lease up, if still ours, as client-go's release()."""
        try:
            lease = self.client.get(self.path)
            if (lease.get("spec") or {}).get("holderIdentity") != self.config.identity:
                return
            now = timefmt.micro()
            lease["spec"] = {"leaseDurationSeconds": 1, "acquireTime": now, "renewTime": now,
                             "leaseTransitions": lease["spec"].get("leaseTransitions") or 0}
            self.client.request("PUT", self.path, lease)
            log.info("released lease %s/%s", self.config.namespace, self.config.name)
        except ApiError as e:
            log.warning("failed to release lease %s/%s: %s", self.config.namespace,
                        self.config.name, e.message)
