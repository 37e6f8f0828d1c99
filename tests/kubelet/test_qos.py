"""Requests and limits as OCI linux.resources, QoS classes, pod cgroup limits and OOM scores."""
import pytest

from kubelet import container_config
from kubelet.qos import container_resources as linux_resources


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
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": {}}
    with pytest.raises(container_config.ConfigError,
                       match=r"^resources.limits.memory: 'lots' is not a quantity$"):
        container_config.build(pod, container(limits={"memory": "lots"}), 0, False)
    built = container_config.build(pod, container(limits={"memory": "1Gi"}), 0, False)
    assert built.linux.resources["memory"] == {"limit": 1 << 30}
