"""The CronJob controller's sync driven by a fake clock against the real pyapiserver (its
informers running, no worker threads: the test calls sync), so that no case waits for a
minute: a job `<cj>-<unix minutes>` per schedule time with the scheduled-timestamp annotation
and active/lastScheduleTime, not twice for one time; Forbid skips while a job runs, Replace
deletes it; startingDeadlineSeconds misses a late time; suspend; lastSuccessfulTime and the
successful history limit; and the schedule arithmetic (time zones, missed times) as pure
functions."""
from __future__ import annotations

import threading
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from controllers.context import ControllerContext, Options
from controllers.workloads.cronjob import (SCHEDULED_TIMESTAMP, CronJobController,
                                          most_recent_schedule)
from controllers_testlib import wait_for
from kubeapi import cron, timefmt
from kubeapi.informer import InformerFactory
from kubeapi.status import ApiError

CRONJOBS = "/apis/batch/v1/namespaces/{ns}/cronjobs"
JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def controller(client):
    stop = threading.Event()
    factory = InformerFactory(client)
    clock = FakeClock()
    ctrl = CronJobController(ControllerContext(client, factory, stop, Options()), clock=clock)
    factory.start()
    assert factory.wait_for_sync(15)
    yield ctrl, clock
    stop.set()
    factory.stop()


@pytest.fixture
def ns(client, namespace):
    yield namespace
    for job in client.get(JOBS.format(ns=namespace))["items"]:
        try:
            client.delete(f"{JOBS.format(ns=namespace)}/{job['metadata']['name']}",
                          {"propagationPolicy": "Background"})
        except ApiError:
            pass


def make_cronjob(client, ns: str, name: str = "tick", **spec) -> dict:
    return client.create(CRONJOBS.format(ns=ns), {
        "metadata": {"name": name},
        "spec": {"schedule": "* * * * *", **spec, "jobTemplate": {
            "metadata": {"labels": {"from": name}},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "c", "image": "busybox"}]}}}}}})


def boundary(cj: dict, minutes: int) -> float:
    """The start of the minute `minutes` after the one the CronJob was created in."""
    created = timefmt.parse(cj["metadata"]["creationTimestamp"])
    return (int(created) // 60 + minutes) * 60.0


def sync(ctrl, key: str) -> None:
    """One sync as a worker runs it: a conflict (a cache behind the server) is tried again
    once the cache has caught up."""
    def attempt() -> bool:
        try:
            ctrl.sync(key)
        except ApiError as e:
            if e.code != 409:
                raise
            return False
        return True
    wait_for(attempt, what=f"a sync of {key} without conflict")


def synced(ctrl, ns: str, name: str, predicate) -> None:
    """Waits until the controller's caches show what the test just wrote, then syncs."""
    wait_for(lambda: predicate(ctrl), what="the informer caught up")
    sync(ctrl, f"{ns}/{name}")


def cached_cj(ctrl, ns: str, name: str = "tick") -> dict:
    return ctrl.cronjobs.store.get(f"{ns}/{name}") or {}


def jobs(client, ns: str) -> list[dict]:
    return sorted((j for j in client.get(JOBS.format(ns=ns))["items"]
                   if not j["metadata"].get("deletionTimestamp")),
                  key=lambda j: j["metadata"]["name"])


def status(client, ns: str, name: str = "tick") -> dict:
    return client.get(f"{CRONJOBS.format(ns=ns)}/{name}").get("status") or {}


def complete(client, ns: str, job: dict, at: float) -> None:
    stamp = timefmt.rfc3339(at)
    conds = [{"type": t, "status": "True", "lastProbeTime": stamp,
              "lastTransitionTime": stamp, "reason": "CompletionsReached",
              "message": "Reached expected number of succeeded pods"}
             for t in ("SuccessCriteriaMet", "Complete")]
    client.patch(f"{JOBS.format(ns=ns)}/{job['metadata']['name']}/status", {"status": {
        "startTime": stamp, "completionTime": stamp, "succeeded": 1, "conditions": conds}})


def events(client, ns: str, reason: str) -> list[dict]:
    return [e for e in client.get(f"/api/v1/namespaces/{ns}/events")["items"]
            if e["reason"] == reason]


def test_a_job_per_schedule_time(client, ns, controller):
    ctrl, clock = controller
    cj = make_cronjob(client, ns)
    b1 = boundary(cj, 1)
    clock.now = b1 - 5
    synced(ctrl, ns, "tick", lambda c: cached_cj(c, ns))
    assert jobs(client, ns) == []
    clock.now = b1 + 5
    sync(ctrl, f"{ns}/tick")
    [job] = jobs(client, ns)
    assert job["metadata"]["name"] == f"tick-{int(b1) // 60}"
    assert job["metadata"]["labels"]["from"] == "tick"
    assert job["metadata"]["annotations"][SCHEDULED_TIMESTAMP] == \
        datetime.fromtimestamp(b1).astimezone().replace(microsecond=0).isoformat() \
        .replace("+00:00", "Z")
    ref = job["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["controller"]) == ("CronJob", "tick", True)
    st = status(client, ns)
    assert st["lastScheduleTime"] == timefmt.rfc3339(b1)
    assert [a["name"] for a in st["active"]] == [job["metadata"]["name"]]
    # the same time again creates nothing
    synced(ctrl, ns, "tick", lambda c: (cached_cj(c, ns).get("status") or {}).get("active"))
    assert len(jobs(client, ns)) == 1
    assert events(client, ns, "SuccessfulCreate")


def test_forbid_waits_for_the_running_job(client, ns, controller):
    ctrl, clock = controller
    cj = make_cronjob(client, ns, concurrencyPolicy="Forbid")
    clock.now = boundary(cj, 1) + 5
    synced(ctrl, ns, "tick", lambda c: cached_cj(c, ns))
    [first] = jobs(client, ns)
    clock.now = boundary(cj, 2) + 5
    synced(ctrl, ns, "tick", lambda c: c.jobs.store.get(f"{ns}/{first['metadata']['name']}"))
    assert len(jobs(client, ns)) == 1
    assert events(client, ns, "JobAlreadyActive")[0]["message"] == (
        "Not starting job because prior execution is running and concurrency policy is "
        "Forbid")
    complete(client, ns, first, boundary(cj, 2) + 1)
    synced(ctrl, ns, "tick", lambda c: ((c.jobs.store.get(
        f"{ns}/{first['metadata']['name']}") or {}).get("status") or {}).get("completionTime"))
    st = status(client, ns)
    assert st["lastSuccessfulTime"] == timefmt.rfc3339(boundary(cj, 2) + 1)
    names = [j["metadata"]["name"] for j in jobs(client, ns)]
    assert names == sorted([first["metadata"]["name"], f"tick-{int(boundary(cj, 2)) // 60}"])
    assert [a["name"] for a in st["active"]] == [f"tick-{int(boundary(cj, 2)) // 60}"]


def test_replace_deletes_the_running_job(client, ns, controller):
    ctrl, clock = controller
    cj = make_cronjob(client, ns, concurrencyPolicy="Replace")
    clock.now = boundary(cj, 1) + 5
    synced(ctrl, ns, "tick", lambda c: cached_cj(c, ns))
    [first] = jobs(client, ns)
    clock.now = boundary(cj, 2) + 5
    synced(ctrl, ns, "tick", lambda c: (cached_cj(c, ns).get("status") or {}).get("active"))
    assert [j["metadata"]["name"] for j in jobs(client, ns)] == \
        [f"tick-{int(boundary(cj, 2)) // 60}"]
    assert first["metadata"]["name"] not in [a["name"] for a in status(client, ns)["active"]]


def test_starting_deadline_and_suspend(client, ns, controller):
    ctrl, clock = controller
    cj = make_cronjob(client, ns, startingDeadlineSeconds=10)
    clock.now = boundary(cj, 1) + 30
    synced(ctrl, ns, "tick", lambda c: cached_cj(c, ns))
    assert jobs(client, ns) == []
    make_cronjob(client, ns, "paused", suspend=True)
    synced(ctrl, ns, "paused", lambda c: cached_cj(c, ns, "paused"))
    assert jobs(client, ns) == []
    clock.now = boundary(cj, 2) + 5
    sync(ctrl, f"{ns}/tick")
    assert [j["metadata"]["name"] for j in jobs(client, ns)] == \
        [f"tick-{int(boundary(cj, 2)) // 60}"]


def test_history_limit(client, ns, controller):
    ctrl, clock = controller
    cj = make_cronjob(client, ns, successfulJobsHistoryLimit=1)
    for minute in (1, 2):
        clock.now = boundary(cj, minute) + 5
        name = f"tick-{int(boundary(cj, minute)) // 60}"
        synced(ctrl, ns, "tick", lambda c: cached_cj(c, ns))
        job = client.get(f"{JOBS.format(ns=ns)}/{name}")
        complete(client, ns, job, clock.now)
        wait_for(lambda: ((ctrl.jobs.store.get(f"{ns}/{name}") or {}).get("status") or {})
                 .get("completionTime"), what="the completion seen")
    sync(ctrl, f"{ns}/tick")
    assert [j["metadata"]["name"] for j in jobs(client, ns)] == \
        [f"tick-{int(boundary(cj, 2)) // 60}"]


def test_schedule_arithmetic():
    every_hour = cron.parse("@hourly")
    utc = timezone.utc
    cj = {"metadata": {"creationTimestamp": "2026-01-01T10:20:00Z"}, "spec": {}, "status": {}}
    latest, missed = most_recent_schedule(cj, every_hour, datetime(2026, 1, 1, 13, 5, tzinfo=utc))
    assert latest == datetime(2026, 1, 1, 13, 0, tzinfo=utc) and missed == 2
    latest, _ = most_recent_schedule(cj, every_hour, datetime(2026, 1, 1, 10, 59, tzinfo=utc))
    assert latest is None
    cj["spec"]["startingDeadlineSeconds"] = 60
    latest, _ = most_recent_schedule(cj, every_hour, datetime(2026, 1, 1, 13, 5, tzinfo=utc))
    assert latest is None
    # 9:00 in Tokyo is 0:00 UTC
    tokyo = ZoneInfo("Asia/Tokyo")
    nine = cron.parse("0 9 * * *")
    cj = {"metadata": {"creationTimestamp": "2026-01-01T12:00:00Z"}, "spec": {}, "status": {}}
    now = datetime(2026, 1, 2, 0, 30, tzinfo=utc).astimezone(tokyo)
    latest, _ = most_recent_schedule(cj, nine, now)
    assert latest.timestamp() == datetime(2026, 1, 2, 0, 0, tzinfo=utc).timestamp()
