"""`pycontainer-cri`: the CRI v1 runtime and image services of pycontainer over gRPC on a unix
socket, for crictl, critest and any kubelet, until SIGTERM or SIGINT.

    pycontainer-cri --listen unix:///run/pycontainer/cri.sock --root /var/lib/pycontainer \\
        --state /run/pycontainer/cri --cni-conf-dir /etc/cni/net.d --cni-bin-dir /opt/cni/bin
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading

from cri.daemon_config import DaemonConfig, ConfigError
from linux.signals import on_stop_signals


def parser() -> argparse.ArgumentParser:
    d = DaemonConfig()
    p = argparse.ArgumentParser(prog="pycontainer-cri",
                                description="CRI v1 over gRPC, on pycontainer.")
    p.add_argument("--listen", default=d.listen, help=f"the socket (default {d.listen})")
    p.add_argument("--root", default=d.root, help=f"images (default {d.root})")
    p.add_argument("--state", default=d.state,
                   help=f"sandboxes, containers, shims (default {d.state})")
    p.add_argument("--cni-conf-dir", default=d.cni_conf_dir,
                   help=f"CNI network configurations (default {d.cni_conf_dir})")
    p.add_argument("--cni-bin-dir", default=",".join(d.cni_bin_dirs),
                   help="CNI plugin directories, comma separated (default /opt/cni/bin)")
    p.add_argument("--cni-cache-dir", default=d.cni_cache_dir,
                   help=f"CNI results cache (default {d.cni_cache_dir})")
    p.add_argument("--sandbox-image", default="",
                   help="an image kept pinned (no pause container runs: namespaces are pinned)")
    p.add_argument("--pinned-image", action="append", default=[],
                   help="an image ListImages reports as pinned (repeatable)")
    p.add_argument("--registry-config", default="",
                   help="a docker config.json with registry credentials")
    p.add_argument("--insecure-registry", action="append", default=[],
                   help="host[:port] of a registry that may serve plain HTTP; a host alone: on any "
                        "port (repeatable)")
    p.add_argument("--stream-server-address", default=d.stream_server_address,
                   help=f"address of the exec/attach/port-forward server "
                        f"(default {d.stream_server_address})")
    p.add_argument("--stream-server-port", type=int, default=d.stream_server_port,
                   help="its port (default 0: any free port)")
    p.add_argument("--serialize-image-pulls", choices=("true", "false"), default="true",
                   help="one image pull at a time (default true)")
    p.add_argument("--log-level", default="info",
                   choices=("debug", "info", "warning", "error"), help="(default info)")
    return p


def config_from(args: argparse.Namespace) -> DaemonConfig:
    config = DaemonConfig(
        listen=args.listen, root=args.root, state=args.state, cni_conf_dir=args.cni_conf_dir,
        cni_bin_dirs=[d for d in args.cni_bin_dir.split(",") if d],
        cni_cache_dir=args.cni_cache_dir, sandbox_image=args.sandbox_image,
        pinned_images=args.pinned_image, registry_config=args.registry_config,
        insecure_registries=args.insecure_registry,
        stream_server_address=args.stream_server_address,
        stream_server_port=args.stream_server_port,
        serialize_image_pulls=args.serialize_image_pulls == "true")
    config.check()
    return config


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from(args)
    except ConfigError as e:
        print(f"pycontainer-cri: {e}", file=sys.stderr)
        return 2
    from cri.daemon import Daemon, DaemonError   # grpc and the runtime: after the flags
    stop = threading.Event()
    on_stop_signals(stop.set)
    try:
        daemon = Daemon(config)
    except DaemonError as e:
        print(f"pycontainer-cri: {e}", file=sys.stderr)
        return 1
    try:
        daemon.start()
        logging.getLogger("pycontainer-cri").info(
            "serving CRI v1 on %s, streams on %s (pid %d)", config.listen,
            daemon.streaming.base_url, os.getpid())
        stop.wait()
    finally:
        daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
