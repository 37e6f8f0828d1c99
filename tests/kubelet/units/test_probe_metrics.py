"""prober_probe_total as /metrics/probes serves it: counted by kind and result per container,
rendered as the kubelet writes it, and gone with the container's probe worker."""
from kubelet.pods import Pod
from kubelet.prober.metrics import ProbeCounts
from kubelet.stats.prometheus import render

POD = Pod({"metadata": {"name": "web", "namespace": "ns", "uid": "u1"}, "spec": {}})


def test_runs_are_counted_by_kind_and_result_and_rendered_as_the_kubelets():
    counts = ProbeCounts()
    for ok in (True, True, False):
        counts.add("Liveness", ok, "c", POD)
    counts.add("Readiness", True, "c", POD)
    assert render([counts.family()]).splitlines() == [
        "# HELP prober_probe_total [ALPHA] Cumulative number of a liveness, readiness or "
        "startup probe for a container by result.",
        "# TYPE prober_probe_total counter",
        'prober_probe_total{container="c",namespace="ns",pod="web",pod_uid="u1",'
        'probe_type="Liveness",result="failed"} 1',
        'prober_probe_total{container="c",namespace="ns",pod="web",pod_uid="u1",'
        'probe_type="Liveness",result="successful"} 2',
        'prober_probe_total{container="c",namespace="ns",pod="web",pod_uid="u1",'
        'probe_type="Readiness",result="successful"} 1',
    ]


def test_a_stopped_worker_takes_its_series_with_it():
    counts = ProbeCounts()
    counts.add("Liveness", True, "c", POD)
    counts.add("Readiness", False, "c", POD)
    counts.forget("Liveness", "c", "u1")
    assert [s.labels["probe_type"] for s in counts.family().samples] == ["Readiness"]
