"""Requests and limits as OCI linux.resources, QoS classes, pod cgroup limits and OOM scores."""
import pytest

from kubelet.cm.qos import container_resources as linux_resources
from kubelet.pods import Pod
from kubelet.sync import container_config


def container(**resources):
    return {"name": "main", "image": "busybox", "resources": resources}


@pytest.mark.parametrize("resources, expected", [
    ({}, {"cpu": {"shares": 2}}),
    ({"limits": {"memory": "64Mi", "cpu": "500m"}},
     {"cpu": {"shares": 512, "quota": 50_000, "period": 100_000}, "memory": {"limit": 64 << 20}}),
    ({"requests": {"cpu": "250m"}, "limits": {"cpu": 2}},
     {"cpu": {"shares": 256, "quota": 200_000, "period": 100_000}}),
    ({"requests": {"cpu": "1m", "memory": "1Gi"}, "limits": {"cpu": "1m"}},
     {"cpu": {"shares": 2, "quota": 1_000, "period": 100_000}}),
])
def test_requests_and_limits_become_shares_quota_and_memory_limit(resources, expected):
    assert linux_resources(container(**resources)) == expected


def test_bad_quantity_is_a_config_error_naming_the_field():
    pod = Pod({"metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": {}})
    with pytest.raises(container_config.ConfigError,
                       match=r"^resources.limits.memory: 'lots' is not a quantity$"):
        container_config.build(pod, container(limits={"memory": "lots"}), 0, False)
    built = container_config.build(pod, container(limits={"memory": "1Gi"}), 0, False)
    assert built.linux.resources["memory"] == {"limit": 1 << 30}


def _pod(*containers, init=(), annotations=None, security_context=None) -> Pod:
    meta = {"name": "p", "namespace": "d", "uid": "u"}
    if annotations:
        meta["annotations"] = annotations
    spec = {"containers": list(containers), "initContainers": list(init)}
    if security_context:
        spec["securityContext"] = security_context
    return Pod({"metadata": meta, "spec": spec})


def test_qos_classes_and_pod_cgroup_limits():
    from kubelet.cm import qos

    guaranteed = _pod(container(limits={"cpu": "1", "memory": "1Gi"}),
                      container(limits={"cpu": "500m", "memory": "512Mi"}))
    assert guaranteed.qos_class == "Guaranteed"
    assert qos.pod_resources(guaranteed, 100) == {
        "cpu": {"shares": 1536, "quota": 150_000, "period": 100_000},
        "memory": {"limit": 3 << 29}, "pids": {"limit": 100}}
    # one container without a memory limit: no pod memory limit, as the kubelet does
    burstable = _pod(container(requests={"memory": "64Mi"}, limits={"memory": "128Mi"}),
                     container(requests={"cpu": "250m"}))
    assert burstable.qos_class == "Burstable"
    assert qos.pod_resources(burstable, -1) == {"cpu": {"shares": 256}}
    assert qos.pod_resources(_pod(container()), -1) == {"cpu": {"shares": 2}}
    # a big init container sets the pod's request
    assert qos.pod_requests(_pod(container(requests={"cpu": "100m"}),
                                 init=[container(requests={"cpu": "2"})]), "cpu") == 2000


def test_oom_score_adj_per_the_kubelets_policy():
    from kubelet.cm import qos

    gib = 1 << 30
    assert qos.oom_score_adj(_pod(container(limits={"cpu": "1", "memory": "1Gi"})),
                             container(limits={"cpu": "1", "memory": "1Gi"}), 8 * gib) == -997
    assert qos.oom_score_adj(_pod(container()), container(), 8 * gib) == 1000
    half = container(requests={"memory": "4Gi"})
    assert qos.oom_score_adj(_pod(half), half, 8 * gib) == 500
    tiny = container(requests={"memory": "1"})
    assert qos.oom_score_adj(_pod(tiny), tiny, 8 * gib) == 999       # never BestEffort's
    huge = container(requests={"memory": "16Gi"})
    assert qos.oom_score_adj(_pod(huge), huge, 8 * gib) == 3         # never Guaranteed's


def test_admission_sysctls_then_pods_then_cpu_and_memory_then_apparmor():
    from kubelet.cm import admission

    node = admission.Node(cpu=2000, memory=1 << 30, max_pods=3, allowed_unsafe_sysctls=[],
                          apparmor_enabled=False)
    running = [_pod(container(requests={"cpu": "1500m", "memory": "512Mi"}))]
    verdict = admission.admit(_pod(container(requests={"cpu": "600m"})), running, node)
    assert (verdict.admit, verdict.reason) == (False, "OutOfcpu")
    assert verdict.message == ("Node didn't have enough resource: cpu, requested: 600, used: "
                               "1500, capacity: 2000")
    verdict = admission.admit(_pod(container(requests={"memory": "600Mi"})), running, node)
    assert verdict.reason == "OutOfmemory"
    assert admission.admit(_pod(container(requests={"cpu": "500m"})), running, node).admit
    unsafe = _pod(container(), security_context={
        "sysctls": [{"name": "kernel.msgmax", "value": "1"}]})
    assert admission.admit(unsafe, running, node).reason == "SysctlForbidden"
    allowed = admission.Node(2000, 1 << 30, 3, ["kernel.msg*"], False)
    assert admission.admit(unsafe, running, allowed).admit
    # AppArmor last: a profile cannot be enforced, whether or not the host has AppArmor.
    confined = _pod(dict(container(), securityContext={
        "appArmorProfile": {"type": "RuntimeDefault"}}))
    verdict = admission.admit(confined, running, node)
    assert (verdict.reason, verdict.message) == (
        "AppArmor", "Cannot enforce AppArmor: AppArmor is not enabled on the host")
    verdict = admission.admit(confined, running, admission.Node(2000, 1 << 30, 3, [], True))
    assert verdict.message == ("Cannot enforce AppArmor: the pycontainer runtime does not "
                               "apply AppArmor profiles")
    annotated = _pod(container(), annotations={
        "container.apparmor.security.beta.kubernetes.io/c": "runtime/default"})
    assert admission.admit(annotated, running, node).reason == "AppArmor"
    unconfined = _pod(dict(container(), securityContext={
        "appArmorProfile": {"type": "Unconfined"}}), annotations={
        "container.apparmor.security.beta.kubernetes.io/c": "unconfined"})
    assert admission.admit(unconfined, running, node).admit
