"""The Services' environment variables as the kubelet injects them (pure: Services as the API
server returns them, the container's env as env_vars builds it)."""
import pytest

from kubelet import downward
from kubelet.config_objects import ConfigObjects
from kubelet.pods import Pod
from kubelet.sync import service_env
from kubelet.sync.env_vars import ConfigError, environment


def svc(namespace: str, name: str, ip: str, *ports: dict) -> dict:
    return {"metadata": {"namespace": namespace, "name": name},
            "spec": {"clusterIP": ip, "ports": list(ports)}}


KUBERNETES = svc("default", "kubernetes", "198.19.0.1",
                 {"name": "https", "port": 443, "protocol": "TCP"})
WEB = svc("shop", "web-front", "198.19.0.20", {"name": "http", "port": 80, "protocol": "TCP"},
          {"name": "dns-udp", "port": 53, "protocol": "UDP"})
HEADLESS = svc("shop", "db", "None", {"port": 5432})
OTHER = svc("elsewhere", "web-front", "198.19.0.30", {"port": 8080})
DEFAULT_OTHER = svc("default", "api", "198.19.0.40", {"port": 81})
V6 = svc("shop", "six", "fd00::10", {"port": 80})


def test_a_service_gives_kube_and_docker_link_variables():
    assert dict(service_env.variables(WEB)) == {
        "WEB_FRONT_SERVICE_HOST": "198.19.0.20",
        "WEB_FRONT_SERVICE_PORT": "80",
        "WEB_FRONT_SERVICE_PORT_HTTP": "80",
        "WEB_FRONT_SERVICE_PORT_DNS_UDP": "53",
        "WEB_FRONT_PORT": "tcp://198.19.0.20:80",
        "WEB_FRONT_PORT_80_TCP": "tcp://198.19.0.20:80",
        "WEB_FRONT_PORT_80_TCP_PROTO": "tcp",
        "WEB_FRONT_PORT_80_TCP_PORT": "80",
        "WEB_FRONT_PORT_80_TCP_ADDR": "198.19.0.20",
        "WEB_FRONT_PORT_53_UDP": "udp://198.19.0.20:53",
        "WEB_FRONT_PORT_53_UDP_PROTO": "udp",
        "WEB_FRONT_PORT_53_UDP_PORT": "53",
        "WEB_FRONT_PORT_53_UDP_ADDR": "198.19.0.20"}
    assert dict(service_env.variables(V6))["SIX_PORT"] == "tcp://[fd00::10]:80"


def test_a_pod_sees_its_namespace_and_always_the_kubernetes_service():
    every = [KUBERNETES, WEB, HEADLESS, OTHER, DEFAULT_OTHER]
    env = service_env.for_pod(every, "shop", True)
    assert env["WEB_FRONT_SERVICE_HOST"] == "198.19.0.20"        # its own, not elsewhere's
    assert env["KUBERNETES_SERVICE_HOST"] == "198.19.0.1"
    assert env["KUBERNETES_PORT_443_TCP"] == "tcp://198.19.0.1:443"
    assert not any(k.startswith(("DB_", "API_")) for k in env)   # headless; other namespace
    without = service_env.for_pod(every, "shop", False)
    assert {k.split("_")[0] for k in without} == {"KUBERNETES"}
    in_default = service_env.for_pod(every, "default", True)
    assert in_default["API_SERVICE_HOST"] == "198.19.0.40" and "KUBERNETES_PORT" in in_default


class _Cache:
    def __init__(self, services: list[dict], synced: bool = True) -> None:
        self.synced = synced
        self.store = type("Store", (), {"list": lambda _: list(services)})()

    def has_synced(self) -> bool:
        return self.synced


def _pod(static: bool = False, **spec) -> Pod:
    meta = {"namespace": "shop", "name": "p", "uid": "u"}
    if static:
        meta["annotations"] = {"kubernetes.io/config.source": "file"}
    return Pod({"metadata": meta, "spec": spec})


INFO = downward.PodInfo([], [], 1, 0)


def test_env_wins_over_services_and_may_name_them():
    container = {"name": "c", "env": [
        {"name": "WEB_FRONT_SERVICE_PORT", "value": "8080"},
        {"name": "URL", "value": "http://$(WEB_FRONT_SERVICE_HOST):$(WEB_FRONT_SERVICE_PORT)"}]}
    env = environment(_pod(), container, ConfigObjects(None, _Cache([WEB])), INFO)
    names = [k for k, _ in env]
    assert len(names) == len(set(names))
    got = dict(env)
    assert got["WEB_FRONT_SERVICE_PORT"] == "8080"
    assert got["URL"] == "http://198.19.0.20:8080"
    assert got["WEB_FRONT_PORT"] == "tcp://198.19.0.20:80"
    assert names[:2] == ["WEB_FRONT_SERVICE_PORT", "URL"]       # env first, then services


def test_until_the_services_are_listed_only_static_pods_start():
    objects = ConfigObjects(None, _Cache([KUBERNETES], synced=False))
    with pytest.raises(ConfigError) as e:
        environment(_pod(), {"name": "c"}, objects, INFO)
    assert str(e.value) == ("services have not yet been read at least once, cannot construct "
                            "envvars")
    static = dict(environment(_pod(static=True), {"name": "c"}, objects, INFO))
    assert static["KUBERNETES_SERVICE_HOST"] == "198.19.0.1"     # what the cache has so far
    assert environment(_pod(), {"name": "c"}, ConfigObjects(None), INFO) == []
