"""The kubelet dies and comes back: SIGKILL with 20 pods running and a restart adopts every
container from its shim (no restart, same IDs, same start times); the API server away for 30 s
and back: the pods keep running and their statuses catch up."""
from __future__ import annotations

import signal
import time

import pytest

from kubelet_testlib import pod_manifest, wait_for

pytestmark = pytest.mark.root


def container_facts(api, namespace: str) -> dict[str, tuple]:
    facts = {}
    for pod in api.pods(namespace):
        s = pod["status"]["containerStatuses"][0]
        facts[pod["metadata"]["name"]] = (s["containerID"], s["restartCount"],
                                          s["state"].get("running", {}).get("startedAt"))
    return facts


def test_sigkilled_kubelet_adopts_its_20_pods_without_restarting_them(api, start_kubelet,
                                                                      namespace):
    kubelet = start_kubelet()
    for i in range(20):
        api.create_pod(namespace, pod_manifest(f"p{i}", kubelet.node, "exec sleep 1000"))
    wait_for(lambda: all(api.running(namespace, f"p{i}") for i in range(20)), timeout=60,
             what="20 pods Running")
    before = container_facts(api, namespace)
    shims_before = set(kubelet.shim_processes())
    kubelet.kill(signal.SIGKILL)
    # Meanwhile the containers run on, under their shims.
    assert set(kubelet.shim_processes()) == shims_before
    kubelet.start()
    # The restarted kubelet syncs every pod, and a new pod starts next to the old ones.
    api.create_pod(namespace, pod_manifest("after", kubelet.node, "exec sleep 1000"))
    wait_for(lambda: api.running(namespace, "after"), what="a new pod Running")
    time.sleep(3)
    after = container_facts(api, namespace)
    assert {k: v for k, v in after.items() if k != "after"} == before
    assert all(v[1] == 0 and v[2] for v in before.values())
    assert shims_before <= set(kubelet.shim_processes())
    # It still controls them: a delete goes through.
    api.delete_pod(namespace, "p0", grace=1)
    wait_for(lambda: api.pod(namespace, "p0") is None, what="p0 deleted")


@pytest.mark.slow
def test_api_server_down_30s_pods_kept_and_statuses_caught_up(api, start_kubelet, namespace):
    kubelet = start_kubelet()
    api.create_pod(namespace, pod_manifest("steady", kubelet.node, "exec sleep 1000"))
    api.create_pod(namespace, pod_manifest("finisher", kubelet.node, "sleep 5; exit 0",
                                           restart_policy="Never"))
    wait_for(lambda: api.running(namespace, "steady") and api.running(namespace, "finisher"))
    steady = container_facts(api, namespace)["steady"]
    api.server.stop()
    try:
        time.sleep(30)      # the finisher ends meanwhile, with nobody to tell
        assert kubelet.proc.poll() is None
    finally:
        api.server.start()
    api.client.close()      # its kept-alive connections went with the old server
    wait_for(lambda: api.phase(namespace, "finisher") == "Succeeded", timeout=30,
             what="the finisher's status caught up")
    assert container_facts(api, namespace)["steady"] == steady
    assert api.running(namespace, "steady")
    node = api.get(f"/api/v1/nodes/{kubelet.node}")
    assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"
    # And it works as before: a new pod, a deletion.
    api.create_pod(namespace, pod_manifest("new", kubelet.node, "exec sleep 1000"))
    wait_for(lambda: api.running(namespace, "new"), what="a new pod after the outage")
    api.delete_pod(namespace, "steady", grace=1)
    wait_for(lambda: api.pod(namespace, "steady") is None, what="steady deleted")
