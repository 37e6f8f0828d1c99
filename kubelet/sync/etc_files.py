"""The files the kubelet writes for a pod and bind-mounts into each of its containers:
<root>/pods/<uid>/etc-hosts, resolv.conf and hostname (pod_dns.py says what is in them). A
container that mounts a volume at one of those paths keeps its own. They go with the pod's
directory, which volumes/manager.py removes with the pod."""
from __future__ import annotations

import os
import socket

from cri.api import Mount
from kubelet.pods import Pod
from kubelet.sync import pod_dns

_FILES = (("etc-hosts", "/etc/hosts"), ("resolv.conf", "/etc/resolv.conf"),
          ("hostname", "/etc/hostname"))


def _read(path: str) -> str:
    if not path:
        return ""
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


class PodEtcFiles:
    def __init__(self, root_dir: str, resolv_conf: str, cluster_dns: list[str],
                 cluster_domain: str) -> None:
        self.pods_dir = os.path.join(root_dir, "pods")
        self.resolv_conf = resolv_conf
        self.cluster_dns = cluster_dns
        self.cluster_domain = cluster_domain

    def dir(self, pod_uid: str) -> str:
        return os.path.join(self.pods_dir, pod_uid)

    def write(self, pod: Pod, pod_ips: list[str]) -> None:
        """Writes (or rewrites, atomically) the pod's three files."""
        if pod.host_network:
            hostname = socket.gethostname()
        else:
            hostname = pod_dns.hostname_and_domain(pod, self.cluster_domain)[0]
        node = pod_dns.parse_resolv_conf(_read(self.resolv_conf))
        texts = {
            "etc-hosts": pod_dns.hosts_file(pod, pod_ips, self.cluster_domain,
                                            _read("/etc/hosts")),
            "resolv.conf": pod_dns.resolv_conf(pod_dns.pod_dns(pod, node, self.cluster_dns,
                                                               self.cluster_domain)),
            "hostname": hostname + "\n",
        }
        directory = self.dir(pod.uid)
        os.makedirs(directory, mode=0o750, exist_ok=True)
        for name, text in texts.items():
            path = os.path.join(directory, name)
            with open(path + ".tmp", "w") as f:
                f.write(text)
            os.chmod(path + ".tmp", 0o644)
            os.replace(path + ".tmp", path)

    def mounts(self, pod: Pod, container: dict, readonly: bool) -> list[Mount]:
        taken = {m.get("mountPath", "").rstrip("/") for m in container.get("volumeMounts") or []}
        directory = self.dir(pod.uid)
        return [Mount(target, os.path.join(directory, name), readonly)
                for name, target in _FILES if target not in taken]
