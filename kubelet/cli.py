"""`pykubelet`: the kubelet's flags (the real kubelet's names), then KubeletConfiguration from
--config with the flags on top, then the Kubelet until SIGTERM or SIGINT. Without --kubeconfig
it runs standalone: no API server, no Node, pods only from static manifests (issue 9)."""
from __future__ import annotations

import argparse
import os
import sys
import threading

from kubeapi.component.logs import setup_logging
from kubeapi.kubeconfig import KubeconfigError, load as load_kubeconfig
from kubeapi.status import ApiError
from kubelet import VERSION, bootstrap, machine
from kubelet.config import ConfigError, KubeletConfig, load_file, parse_bytes
from kubelet.durations import parse_duration
from linux.signals import on_stop_signals


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pykubelet", description="The pycontainer kubelet.")
    p.add_argument("--config", help="a KubeletConfiguration file (YAML)")
    p.add_argument("--kubeconfig", help="how to reach the API server; none: standalone mode")
    p.add_argument("--bootstrap-kubeconfig",
                   help="credentials (a bootstrap token) to request a client certificate with "
                   "when --kubeconfig is missing or its certificate expired; --kubeconfig is "
                   "then written")
    p.add_argument("--cert-dir", help="where the client certificates go (default "
                   "<root-dir>/pki)")
    p.add_argument("--rotate-certificates", type=_bool, nargs="?", const=True, default=False,
                   help="request a new client certificate before the current one expires")
    p.add_argument("--rotate-server-certificates", type=_bool, nargs="?", const=True,
                   default=False, help="request the serving certificate from the cluster "
                   "(signer kubernetes.io/kubelet-serving; someone approves it) and renew it")
    p.add_argument("--hostname-override", help="the node name (default: the hostname)")
    p.add_argument("--node-ip", help="the node's address (default: the default route's)")
    p.add_argument("--node-labels", help="key=value,... labels of the Node at registration")
    p.add_argument("--register-node", type=_bool, help="register the Node (default true)")
    p.add_argument("--root-dir", help="the kubelet's state (default /var/lib/pykubelet)")
    p.add_argument("--pod-manifest-path", help="static pod manifests: a directory of YAML or "
                   "JSON pods, or one file")
    p.add_argument("--file-check-frequency", help="how often the manifests are read (20s)")
    p.add_argument("--max-pods", type=int, help="pods this node runs at most (default 110)")
    p.add_argument("--cni-conf-dir", help="CNI network configurations (default /etc/cni/net.d)")
    p.add_argument("--cni-bin-dir", help="CNI plugin directories, comma separated "
                   "(default /opt/cni/bin)")
    p.add_argument("--cni-cache-dir", help="CNI results cache (default /var/lib/cni/cache)")
    p.add_argument("--image-root", help="the image store (default $PYCONTAINER_IMAGE_ROOT or "
                   "/var/lib/pycontainer, as `pycontainer image`)")
    p.add_argument("--container-runtime-endpoint",
                   help="a CRI runtime's socket, unix:///path (default: pycontainer's CRI "
                   "service in this process)")
    p.add_argument("--image-service-endpoint",
                   help="a CRI image service's socket (default: the runtime's)")
    p.add_argument("--cgroup-root", help="parent of the pods' cgroups (default /pycontainer)")
    p.add_argument("--address", help="address of the HTTPS server (default 0.0.0.0)")
    p.add_argument("--port", type=int, help="port of the HTTPS server (default 10250; 0: any)")
    p.add_argument("--tls-cert-file", help="serving certificate (default: self-signed)")
    p.add_argument("--tls-private-key-file", help="its key")
    p.add_argument("--client-ca-file", help="CA of the client certificates to accept "
                   "(default: the kubeconfig's CA)")
    p.add_argument("--sync-frequency", help="the periodic resync of each pod (default 1m)")
    p.add_argument("--container-log-max-size", help="rotate a container log above this (10Mi)")
    p.add_argument("--container-log-max-files", type=int, help="log files kept per container (5)")
    p.add_argument("--maximum-dead-containers-per-container", type=int,
                   help="dead containers kept per pod container (default 1)")
    p.add_argument("--resolv-conf", help="the DNS settings pods with dnsPolicy Default get "
                   "(default /etc/resolv.conf; \"\": none)")
    p.add_argument("--cluster-dns", help="cluster DNS server addresses, comma separated")
    p.add_argument("--cluster-domain", help="the cluster's DNS domain (e.g. cluster.local)")
    p.add_argument("--seccomp-default", type=_bool, nargs="?", const=True,
                   help="RuntimeDefault seccomp for containers whose pod names no profile")
    p.add_argument("-v", "--v", type=int, default=0, help="log verbosity (0-4)")
    p.add_argument("--version", action="version", version=f"pykubelet {VERSION}")
    return p


def _bool(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0"):
        raise argparse.ArgumentTypeError(f"{text!r} is not true or false")
    return text.lower() in ("true", "1")


def build_config(args: argparse.Namespace) -> tuple[KubeletConfig, list[str]]:
    """The configuration: defaults, then the --config file, then the flags."""
    config = KubeletConfig()
    warnings = load_file(args.config, config) if args.config else []
    flags = {
        "kubeconfig": args.kubeconfig, "node_ip": args.node_ip, "root_dir": args.root_dir,
        "static_pod_path": args.pod_manifest_path, "max_pods": args.max_pods,
        "cni_conf_dir": args.cni_conf_dir, "cni_cache_dir": args.cni_cache_dir,
        "image_root": args.image_root, "cgroup_root": args.cgroup_root,
        "container_runtime_endpoint": args.container_runtime_endpoint,
        "image_service_endpoint": args.image_service_endpoint,
        "address": args.address, "port": args.port, "tls_cert_file": args.tls_cert_file,
        "tls_private_key_file": args.tls_private_key_file,
        "client_ca_file": args.client_ca_file, "register_node": args.register_node,
        "container_log_max_files": args.container_log_max_files,
        "max_per_pod_container": args.maximum_dead_containers_per_container,
        "resolv_conf": args.resolv_conf, "cluster_domain": args.cluster_domain,
        "seccomp_default": args.seccomp_default,
    }
    for attr, value in flags.items():
        if value is not None:
            setattr(config, attr, value)
    if args.cni_bin_dir:
        config.cni_bin_dirs = [d for d in args.cni_bin_dir.split(",") if d]
    if args.cluster_dns:
        config.cluster_dns = [a for a in args.cluster_dns.split(",") if a]
    if args.hostname_override:
        config.node_name = args.hostname_override.lower()
    if not config.node_name:
        config.node_name = machine.hostname()
    if args.node_labels:
        for pair in args.node_labels.split(","):
            key, eq, value = pair.partition("=")
            if not eq or not key:
                raise ConfigError(f"--node-labels: {pair!r} is not key=value")
            config.node_labels[key] = value
    if args.file_check_frequency:
        config.file_check_frequency = parse_duration(args.file_check_frequency,
                                                     "--file-check-frequency")
    if args.sync_frequency:
        config.sync_frequency = parse_duration(args.sync_frequency, "--sync-frequency")
    if args.container_log_max_size:
        config.container_log_max_size = parse_bytes(args.container_log_max_size,
                                                     "--container-log-max-size")
    config.validate()
    return config, warnings


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.v)
    try:
        config, warnings = build_config(args)
        for w in warnings:
            print(f"pykubelet: warning: {w}", file=sys.stderr)
        cert_dir = args.cert_dir or os.path.join(config.root_dir, "pki")
        if args.bootstrap_kubeconfig:
            if not config.kubeconfig:
                raise ConfigError("--bootstrap-kubeconfig: needs --kubeconfig, the file to write")
            bootstrap.bootstrap(args.bootstrap_kubeconfig, config.kubeconfig, cert_dir,
                                config.node_name, threading.Event())
        conn = load_kubeconfig(config.kubeconfig) if config.kubeconfig else None
        serving_files = bootstrap.CertFiles(cert_dir, "server")
        if args.rotate_server_certificates and not config.tls_cert_file and \
                serving_files.load() is not None:
            config.tls_cert_file = config.tls_private_key_file = serving_files.current
        host_ip = config.node_ip or machine.default_ip()
        from kubelet.kubelet import Kubelet

        kubelet = Kubelet(config, conn, host_ip)
    except (ConfigError, KubeconfigError, ValueError, OSError, bootstrap.BootstrapError,
            ApiError) as e:
        print(f"pykubelet: {e}", file=sys.stderr)
        return 1
    stop = threading.Event()
    on_stop_signals(stop.set)
    rotators = []
    if args.rotate_certificates and conn is not None:
        rotators.append(bootstrap.CertificateRotator(conn, cert_dir, config.node_name))
    if args.rotate_server_certificates and conn is not None:
        serving = bootstrap.Serving((config.node_name,), (host_ip,))
        rotators.append(bootstrap.CertificateRotator(conn, cert_dir, config.node_name, serving,
                                                     kubelet.server.context))
    for rotator in rotators:
        threading.Thread(target=rotator.run, args=(stop,), daemon=True,
                         name=f"{rotator.files.kind}-certificate-rotation").start()
    print(f"pykubelet: node {config.node_name} ({host_ip}), serving on port "
          f"{kubelet.server.port}, root {config.root_dir}", flush=True)
    kubelet.run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
