"""`pyapiserver`: runs the API server until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import sys
import threading
from typing import TYPE_CHECKING, Callable

from linux.signals import on_stop_signals

from .controller_manager_child import ControllerManagerChild
from .storage.etcd_keys import REGISTRY
from .workers.supervisor import Supervisor, WorkerFailed, WorkerRole, listen

if TYPE_CHECKING:
    from .server import ApiServer
    from .storage import Storage

# The parent of --workers imports only the storage owner and the supervisor: the API server
# (and etcd's client, and the PKI) are imported where a process serves (_serve, _run_worker),
# so the parent stays ~16 MiB where the whole server is ~55.

# Their modules' own defaults, named here so that the parser needs neither module.
_DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
_DEFAULT_COMPACTION_INTERVAL = 300.0

_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


def _duration(text: str) -> float:
    """A Go duration (5m, 1m30s, 0) in seconds, as kube-apiserver's duration flags take."""
    if text == "0":
        return 0.0
    parts = list(_DURATION_PART.finditer(text))
    if not parts or "".join(m.group(0) for m in parts) != text:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (e.g. 5m, 30s)")
    return sum(float(m.group(1)) * _UNIT_SECONDS[m.group(2)] for m in parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pyapiserver", description="A small Kubernetes API server backed by SQLite or etcd.")
    parser.add_argument("--bind-address", default="0.0.0.0",
                        help="address to serve HTTPS on (default: %(default)s)")
    parser.add_argument("--port", "--secure-port", type=int, default=6443, dest="port",
                        help="HTTPS port, 0 for any free port (default: %(default)s)")
    parser.add_argument("--data-dir", default="/var/lib/pyapiserver",
                        help="database, PKI and admin.kubeconfig (default: %(default)s)")
    parser.add_argument("--token-auth-file", default=None,
                        help='bearer tokens, one "token,user,uid,\\"group1,group2\\"" per line')
    parser.add_argument("--service-account-signing-key-file", default="",
                        help="PEM private key (RSA or P-256) that signs service account tokens "
                        "(default: <data-dir>/pki/sa.key, generated)")
    parser.add_argument("--service-account-key-file", action="append", default=[],
                        help="PEM file of further public keys that verify service account "
                        "tokens (repeatable)")
    parser.add_argument("--service-account-issuer", action="append", default=[],
                        help="the tokens' iss; the first issues, all are accepted (default: "
                        f"{_DEFAULT_ISSUER})")
    parser.add_argument("--api-audiences", default="",
                        help="comma-separated audiences tokens must name (default: the first "
                        "issuer)")
    parser.add_argument("--service-account-extend-token-expiration",
                        type=_boolean, default=True, metavar="BOOL",
                        help="give pods' kube-api-access tokens a year of life, warning after "
                        "the hour they asked for (default: %(default)s)")
    parser.add_argument("--service-cluster-ip-range", default="10.96.0.0/12",
                        help="CIDR of Services' ClusterIPs (default: %(default)s)")
    parser.add_argument("--service-node-port-range", default="30000-32767",
                        help="ports of NodePort Services (default: %(default)s)")
    parser.add_argument("--advertise-address", default="",
                        help="the address the kubernetes Service's endpoints name (default: "
                        "--bind-address, or the host's outgoing address)")
    parser.add_argument("--controllers", default="",
                        help="also run pycontroller-manager with these --controllers ('*' for "
                        "all) as a child process, as k3s does (default: none)")
    parser.add_argument("--kube-controller-manager-arg", action="append", default=[],
                        metavar="FLAG", help="a further flag for that controller manager, e.g. "
                        "--kube-controller-manager-arg=--node-monitor-grace-period=20s")
    parser.add_argument("--etcd-servers", default="",
                        help="comma-separated etcd URLs (http(s)://host:port) to store objects "
                        "in, instead of <data-dir>/state.db")
    parser.add_argument("--etcd-cafile", default="", help="CA bundle that verifies etcd")
    parser.add_argument("--etcd-certfile", default="", help="client certificate for etcd")
    parser.add_argument("--etcd-keyfile", default="", help="its private key")
    parser.add_argument("--etcd-prefix", default=REGISTRY,
                        help="the prefix of every key in etcd (default: %(default)s)")
    parser.add_argument("--etcd-compaction-interval", type=_duration,
                        default=_DEFAULT_COMPACTION_INTERVAL, metavar="DURATION",
                        help="how often to compact etcd's history, 0 never (default: 5m)")
    parser.add_argument("--workers", type=_positive, default=1, metavar="N",
                        help="serve from N processes, one storage owner feeding them all "
                        "(default: %(default)s)")
    parser.add_argument("--worker", type=WorkerRole.parse, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return _run_worker(args, args.worker)
    if args.workers > 1:
        return _run_workers(args, sys.argv[1:] if argv is None else argv)
    return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    from .auth.authn import TokenFileError
    try:
        server = _api_server(args, _etcd_storage(args))
    except (OSError, TokenFileError, ValueError) as e:
        print(f"pyapiserver: {e}", file=sys.stderr)
        return 1
    done = _stop_event()
    server.start()
    print(f"pyapiserver: serving {server.url}, kubeconfig {server.kubeconfig}", flush=True)
    controllers = _start_controllers(args, server.kubeconfig)
    _wait(done)
    if controllers:
        controllers.stop()
    server.stop()
    return 0


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return int(text)


def _etcd_storage(args: argparse.Namespace) -> Storage | None:
    # etcd first: an unreachable etcd fails before anything is written to --data-dir.
    if not args.etcd_servers:
        return None
    from .storage.etcd import EtcdStorage
    from .storage.etcd_client import EtcdConfig
    from .watchcache import WatchCache
    etcd = EtcdStorage(EtcdConfig(EtcdConfig.parse_servers(args.etcd_servers), args.etcd_cafile,
                                  args.etcd_certfile, args.etcd_keyfile),
                       args.etcd_prefix, args.etcd_compaction_interval)
    try:
        # Reads from memory, consistent through EtcdStorage.current_revision (issue 25).
        return WatchCache(etcd)
    except BaseException:
        etcd.close()
        raise


def _api_server(args: argparse.Namespace, storage: Storage | None, **worker) -> ApiServer:
    from .kubernetes_service import ServiceFlags
    from .server import ApiServer, ServiceAccountFlags
    flags = ServiceAccountFlags(args.service_account_signing_key_file,
                                tuple(args.service_account_key_file),
                                tuple(args.service_account_issuer),
                                tuple(a for a in args.api_audiences.split(",") if a),
                                args.service_account_extend_token_expiration)
    return ApiServer(args.data_dir, args.bind_address, args.port, args.token_auth_file,
                     flags, services=ServiceFlags(args.service_cluster_ip_range,
                                                  args.service_node_port_range,
                                                  args.advertise_address),
                     storage=storage, **worker)


def _stop_event() -> threading.Event:
    done = threading.Event()
    on_stop_signals(done.set)
    return done


def _wait(done: threading.Event, every: Callable[[], None] = lambda: None) -> None:
    while not done.wait(0.5):
        every()


def _start_controllers(args: argparse.Namespace,
                       kubeconfig: str) -> ControllerManagerChild | None:
    if not args.controllers:
        return None
    controllers = ControllerManagerChild(args.controllers, kubeconfig,
                                         args.kube_controller_manager_arg)
    controllers.start()
    return controllers


def _run_workers(args: argparse.Namespace, argv: list[str]) -> int:
    """The parent of --workers: the storage owner (unless etcd is the storage) and the
    supervisor of the workers."""
    try:
        listener = listen(args.bind_address, args.port)
    except OSError as e:
        print(f"pyapiserver: --port {args.port}: {e}", file=sys.stderr)
        return 1
    owner = None
    # A bad flag, found by the first worker, leaves no data directory behind, as with one
    # process (which checks its flags before it creates one).
    created = not os.path.exists(args.data_dir)
    if not args.etcd_servers:
        from .storage.sqlite import SQLiteStorage
        from .workers.owner import STORAGE_SOCKET, StorageOwner
        os.makedirs(args.data_dir, mode=0o700, exist_ok=True)
        owner = StorageOwner(os.path.join(args.data_dir, STORAGE_SOCKET),
                             SQLiteStorage(os.path.join(args.data_dir, "state.db")))
        owner.start()
    supervisor = Supervisor(argv, args.workers, listener, owner.path if owner else "")
    done = _stop_event()
    try:
        url, kubeconfig = supervisor.start().split(" ", 1)
    except WorkerFailed as e:
        print(f"pyapiserver: {e}", file=sys.stderr)
        url = ""
    if url:
        print(f"pyapiserver: serving {url}, kubeconfig {kubeconfig}", flush=True)
        controllers = _start_controllers(args, kubeconfig)
        _wait(done, supervisor.restart_dead)
        if controllers:
            controllers.stop()
    supervisor.stop()
    if owner:
        owner.stop()
        owner.storage.close()
    if not url and created:
        shutil.rmtree(args.data_dir, ignore_errors=True)
    return 0 if url else 1


def _run_worker(args: argparse.Namespace, role: WorkerRole) -> int:
    role.die_with_parent()
    done = _stop_event()
    from .auth.authn import TokenFileError
    from .storage import StorageError
    from .watchcache import WatchCache
    from .workers.remote import RemoteStorage
    try:
        storage = _etcd_storage(args) or WatchCache(RemoteStorage(role.storage_socket))
        server = _api_server(args, storage, listener=socket.socket(fileno=role.listen_fd),
                             worker=str(role.index), singletons=role.index == 0)
    except (OSError, TokenFileError, ValueError, StorageError) as e:
        role.report_failure(str(e))
        return 1
    server.start()
    role.report_ready(f"{server.url} {server.kubeconfig}")
    _wait(done)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
