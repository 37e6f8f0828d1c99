"""kubeapi.leaderelection in-process against the real pyapiserver: two candidates, one leads;
a stop releases the lease and the other takes over; a holder that vanishes is replaced once its
lease expires; the Lease's fields as client-go writes them."""
from __future__ import annotations

import threading
import uuid

import pytest

from controllers_testlib import wait_for
from kubeapi import timefmt
from kubeapi.leaderelection import LeaderElectionConfig, LeaderElector


class Candidate:
    def __init__(self, client, lease: str, identity: str, release: bool = True) -> None:
        self.elector = LeaderElector(client, LeaderElectionConfig(
            "kube-system", lease, identity, lease_duration=2.0, renew_deadline=1.5,
            retry_period=0.2, release_on_cancel=release))
        self.stop = threading.Event()
        self.leading = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.elector.run, args=(
            self._lead, self.stopped.set, self.stop))

    def _lead(self, ended: threading.Event) -> None:
        self.leading.set()
        ended.wait()
        self.leading.clear()

    def start(self) -> "Candidate":
        self.thread.start()
        return self

    def end(self) -> None:
        self.stop.set()
        self.thread.join(10)


@pytest.fixture
def lease():
    return "le-" + uuid.uuid4().hex[:8]


def get_lease(client, name: str) -> dict:
    return client.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}")


def test_one_leads_stop_releases_other_takes_over(client, lease):
    a = Candidate(client, lease, "a").start()
    wait_for(a.leading.is_set, what="a leads")
    b = Candidate(client, lease, "b").start()
    try:
        spec = get_lease(client, lease)["spec"]
        assert spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 2
        assert spec["leaseTransitions"] == 0
        assert timefmt.parse(spec["renewTime"]) >= timefmt.parse(spec["acquireTime"])
        first_renew = spec["renewTime"]
        wait_for(lambda: get_lease(client, lease)["spec"]["renewTime"] != first_renew,
                 what="a renews")
        assert not b.leading.is_set() and not b.elector.is_leader()
        a.end()
        assert a.stopped.is_set() and not a.leading.is_set()
        wait_for(b.leading.is_set, timeout=5, what="b takes over the released lease")
        spec = get_lease(client, lease)["spec"]
        assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
    finally:
        a.end()
        b.end()
    assert get_lease(client, lease)["spec"].get("holderIdentity", "") == ""


def test_expired_holder_is_replaced(client, lease):
    path = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
    client.create(path, {"metadata": {"name": lease}, "spec": {
        "holderIdentity": "ghost", "leaseDurationSeconds": 1, "renewTime": timefmt.micro(),
        "acquireTime": timefmt.micro(), "leaseTransitions": 4}})
    b = Candidate(client, lease, "b").start()
    try:
        wait_for(b.leading.is_set, timeout=10, what="b after the ghost's lease expired")
        spec = get_lease(client, lease)["spec"]
        assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 5
    finally:
        b.end()


def test_lost_lease_ends_leadership(client, lease):
    a = Candidate(client, lease, "a", release=False).start()
    try:
        wait_for(a.leading.is_set, what="a leads")
        client.patch(f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{lease}",
                     {"spec": {"holderIdentity": "usurper", "leaseDurationSeconds": 3600}})
        wait_for(a.stopped.is_set, timeout=10, what="a stops leading")
        assert not a.leading.is_set()
        a.thread.join(5)
        assert not a.thread.is_alive()
        assert get_lease(client, lease)["spec"]["holderIdentity"] == "usurper"
    finally:
        a.end()


def test_config_checks():
    with pytest.raises(ValueError, match="leaseDuration must be greater than renewDeadline"):
        LeaderElector(None, LeaderElectionConfig("ns", "n", "id", 5, 10, 2))
    with pytest.raises(ValueError, match="renewDeadline must be greater than retryPeriod"):
        LeaderElector(None, LeaderElectionConfig("ns", "n", "id", 15, 2, 2))
    with pytest.raises(ValueError, match="identity is empty"):
        LeaderElector(None, LeaderElectionConfig("ns", "n", "", 15, 10, 2))
