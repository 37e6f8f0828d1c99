"""A pod's /etc/hostname, /etc/hosts and /etc/resolv.conf, as containerd's CRI makes them: written
once per sandbox (the sandbox's hostname, else the host's; a copy of the host's /etc/hosts; the
pod's DNS config, else a copy of the host's resolv.conf) and bind-mounted into each container
that does not mount that path itself, read-only when its root filesystem is."""
from __future__ import annotations

import os
import shutil
import socket

from cri.api import ContainerConfig, Mount
from cri.proto import api_pb2 as pb

FILES = {"hostname": "/etc/hostname", "hosts": "/etc/hosts", "resolv.conf": "/etc/resolv.conf"}


def resolv_conf(dns: pb.DNSConfig) -> str:
    """containerd's parseDNSOptions: search, then nameservers, then options."""
    text = ""
    if dns.searches:
        text += f"search {' '.join(dns.searches)}\n"
    if dns.servers:
        text += "".join(f"nameserver {server}\n" for server in dns.servers)
    if dns.options:
        text += f"options {' '.join(dns.options)}\n"
    return text


def write(directory: str, config: pb.PodSandboxConfig) -> None:
    """The three files into the sandbox's directory."""
    with open(os.path.join(directory, "hostname"), "w") as f:
        f.write((config.hostname or socket.gethostname()) + "\n")
    shutil.copyfile("/etc/hosts", os.path.join(directory, "hosts"))
    resolv = os.path.join(directory, "resolv.conf")
    if config.HasField("dns_config"):
        with open(resolv, "w") as f:
            f.write(resolv_conf(config.dns_config))
    else:
        shutil.copyfile("/etc/resolv.conf", resolv)
    for name in FILES:
        os.chmod(os.path.join(directory, name), 0o644)


def mounts(directory: str, config: ContainerConfig) -> list[Mount]:
    """Those of the files the container does not mount itself (and that exist)."""
    taken = {m.container_path for m in config.mounts}
    return [Mount(target, os.path.join(directory, name), config.linux.readonly_rootfs)
            for name, target in FILES.items()
            if target not in taken and os.path.exists(os.path.join(directory, name))]
