"""`pycontroller-manager`: kube-controller-manager's flags (those that apply here), leader
election on the Lease kube-system/kube-controller-manager, the controllers of registry.py, and a
clean stop on SIGTERM/SIGINT (exit 0). Losing the lease exits 1, as kube-controller-manager
does: its controllers cannot be stopped half-way safely, a restart starts them clean."""
from __future__ import annotations

import argparse
import logging
import random
import ssl
import sys
import threading

from kubeapi import kubeconfig
from kubeapi.leaderelection import LeaderElectionConfig, LeaderElector, default_identity
from kubeapi.restclient import ApiClient
from linux.signals import on_stop_signals

from . import durations, healthz, manager, registry
from .context import Options, Thresholds
from .events import EventRecorder

log = logging.getLogger("controller-manager")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and exit 1, not usage and exit 2
        print(f"{self.prog}: {message}", file=sys.stderr)
        sys.exit(1)


def _bool(text: str) -> bool:
    value = text.lower()
    if value in ("true", "t", "1"):
        return True
    if value in ("false", "f", "0"):
        return False
    raise argparse.ArgumentTypeError(f'invalid boolean "{text}"')


def _duration(text: str) -> float:
    try:
        value = durations.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f'negative duration "{text}"')
    return value


def _signed_duration(text: str) -> float:
    try:
        return durations.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'invalid number "{text}"') from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f'must not be negative, not "{text}"')
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'invalid integer "{text}"') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1, not "{text}"')
    return value


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pycontroller-manager",
                description="Runs the controllers of a pycontainer cluster, as "
                            "kube-controller-manager.")
    p.add_argument("--kubeconfig", required=True,
                   help="kubeconfig with the API server and the credentials to use")
    p.add_argument("--controllers", action="append", default=None, metavar="NAMES",
                   help="comma-separated controllers: '*' all on by default, 'foo' enables, "
                        "'-foo' disables; known: " +
                        ", ".join(c.name for c in registry.CONTROLLERS) + " (default: *)")
    p.add_argument("--leader-elect", type=_bool, nargs="?", const=True, default=True,
                   help="run controllers only while holding the leader lease (default true)")
    p.add_argument("--leader-elect-lease-duration", type=_duration, default=15.0,
                   metavar="DURATION", help="how long a lease is valid unrenewed (15s)")
    p.add_argument("--leader-elect-renew-deadline", type=_duration, default=10.0,
                   metavar="DURATION", help="how long the leader retries renewing (10s)")
    p.add_argument("--leader-elect-retry-period", type=_duration, default=2.0,
                   metavar="DURATION", help="wait between attempts to acquire or renew (2s)")
    p.add_argument("--leader-elect-resource-lock", default="leases",
                   help="the lock's resource type; only leases (default)")
    p.add_argument("--leader-elect-resource-name", default="kube-controller-manager")
    p.add_argument("--leader-elect-resource-namespace", default="kube-system")
    p.add_argument("--node-monitor-grace-period", type=_duration, default=40.0,
                   metavar="DURATION",
                   help="how long a node may go without a heartbeat before it is Unknown (40s)")
    p.add_argument("--node-monitor-period", type=_duration, default=5.0, metavar="DURATION",
                   help="how often node health is checked (5s)")
    p.add_argument("--node-startup-grace-period", type=_duration, default=60.0,
                   metavar="DURATION",
                   help="how long a new node may go without a status before it is Unknown (1m)")
    p.add_argument("--node-eviction-rate", type=_rate, default=0.1, metavar="RATE",
                   help="nodes per second per zone to taint NoExecute (0.1)")
    p.add_argument("--secondary-node-eviction-rate", type=_rate, default=0.01, metavar="RATE",
                   help="that rate in a large zone in partial disruption (0.01)")
    p.add_argument("--unhealthy-zone-threshold", type=_rate, default=0.55, metavar="FRACTION",
                   help="share of not-ready nodes (at least 3) that disrupts a zone (0.55)")
    p.add_argument("--large-cluster-size-threshold", type=_positive_int, default=50,
                   metavar="NODES", help="a zone larger than this is tainted at the "
                   "secondary rate when disrupted, a smaller one not at all (50)")
    p.add_argument("--concurrent-gc-syncs", type=_positive_int, default=20,
                   help="garbage collector workers (20)")
    p.add_argument("--concurrent-deployment-syncs", type=_positive_int, default=5,
                   help="Deployments synced at once (5)")
    p.add_argument("--concurrent-replicaset-syncs", type=_positive_int, default=5,
                   help="ReplicaSets synced at once (5)")
    p.add_argument("--local-pv-root", default="", metavar="DIR",
                   help="where the local provisioner makes the directories of "
                        "PersistentVolumes (/var/lib/pycontainer/local-volumes)")
    p.add_argument("--cronjob-clock-offset", type=_signed_duration, default=0.0,
                   metavar="DURATION",
                   help="test hook: the CronJob controller's clock runs this far ahead (0s)")
    p.add_argument("--job-pod-failure-backoff", type=_duration, default=10.0,
                   metavar="DURATION",
                   help="the Job controller's delay before replacing a failed pod, doubled "
                        "per failure in a row (kube's fixed 10s)")
    p.add_argument("--min-resync-period", type=_duration, default=12 * 3600.0,
                   metavar="DURATION", help="informers resync every 1-2 times this (12h)")
    p.add_argument("--secure-port", type=int, default=0,
                   help="HTTPS port of /healthz, /livez, /readyz; 0 (the default here, "
                        "kube-controller-manager's is 10257) serves none")
    p.add_argument("--bind-address", default="0.0.0.0",
                   help="address of --secure-port (default 0.0.0.0)")
    p.add_argument("--tls-cert-file", default="",
                   help="serving certificate (PEM); without it a self-signed one is made")
    p.add_argument("--tls-private-key-file", default="", help="its key (PEM)")
    p.add_argument("-v", "--v", type=int, default=0, dest="verbosity",
                   help="log verbosity: 4 and up logs every sync")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        selected = registry.select([s.strip() for spec in (args.controllers or ["*"])
                                    for s in spec.split(",") if s.strip()])
    except ValueError as e:
        print(f"pycontroller-manager: --controllers: {e}", file=sys.stderr)
        return 1
    if args.leader_elect_resource_lock != "leases":
        print("pycontroller-manager: --leader-elect-resource-lock: only \"leases\" is "
              "supported", file=sys.stderr)
        return 1
    election = LeaderElectionConfig(
        args.leader_elect_resource_namespace, args.leader_elect_resource_name,
        default_identity(), args.leader_elect_lease_duration,
        args.leader_elect_renew_deadline, args.leader_elect_retry_period)
    problem = election.check()
    if args.leader_elect and problem:
        print(f"pycontroller-manager: --leader-elect: {problem}", file=sys.stderr)
        return 1
    if not 0 <= args.secure_port <= 65535:
        print("pycontroller-manager: --secure-port: must be between 0 and 65535",
              file=sys.stderr)
        return 1
    if bool(args.tls_cert_file) != bool(args.tls_private_key_file):
        print("pycontroller-manager: --tls-cert-file and --tls-private-key-file go together",
              file=sys.stderr)
        return 1
    try:
        conn = kubeconfig.load(args.kubeconfig)
    except kubeconfig.KubeconfigError as e:
        print(f"pycontroller-manager: {e}", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.DEBUG if args.verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname).1s %(name)s: %(message)s",
                        stream=sys.stderr)
    options = Options(node_monitor_grace_period=args.node_monitor_grace_period,
                      node_monitor_period=args.node_monitor_period,
                      node_startup_grace_period=args.node_startup_grace_period,
                      zones=Thresholds(args.unhealthy_zone_threshold,
                                       args.large_cluster_size_threshold,
                                       args.node_eviction_rate,
                                       args.secondary_node_eviction_rate),
                      concurrent_gc_syncs=args.concurrent_gc_syncs,
                      concurrent_deployment_syncs=args.concurrent_deployment_syncs,
                      concurrent_replicaset_syncs=args.concurrent_replicaset_syncs,
                      extra={"local_pv_root": args.local_pv_root,
                             "cronjob_clock_offset": args.cronjob_clock_offset,
                             "job_pod_failure_backoff": args.job_pod_failure_backoff})
    client = ApiClient(conn, "pycontroller-manager/v0.1.0")
    # The elector's own connections, each request bounded by the renew deadline as
    # client-go's: a hung request must not outlast the lease.
    election_client = ApiClient(conn, "pycontroller-manager/v0.1.0 leader-election",
                                timeout=args.leader_elect_renew_deadline)
    elector = LeaderElector(election_client, election) if args.leader_elect else None
    try:
        health = _serve_health(args, elector)
    except (OSError, ssl.SSLError) as e:
        print(f"pycontroller-manager: --secure-port {args.secure_port}: {e}", file=sys.stderr)
        client.close()
        election_client.close()
        return 1
    resync = args.min_resync_period * random.uniform(1.0, 2.0)
    stop = threading.Event()
    on_stop_signals(stop.set)
    log.info("pycontroller-manager: identity %s, controllers %s", election.identity,
             ",".join(c.name for c in selected) or "(none)")
    try:
        if not args.leader_elect:
            manager.run(client, selected, options, stop, resync)
            return 0
        recorder = EventRecorder(client, "kube-controller-manager")

        def lead(leading: threading.Event) -> None:
            # As kube's resource lock records it: kubectl get events -n kube-system.
            recorder.event({"kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
                            **elector.lease}, "Normal", "LeaderElection",
                           f"{election.identity} became leader")
            manager.run(client, selected, options, leading, resync)
        elector.run(lead, lambda: log.info("stopped leading"), stop)
        if not stop.is_set():
            log.error("leaderelection lost")
            return 1
        return 0
    finally:
        if health is not None:
            health.stop()
        client.close()
        election_client.close()
        log.info("pycontroller-manager: exiting")


def _serve_health(args: argparse.Namespace,
                  elector: LeaderElector | None) -> healthz.HealthServer | None:
    """/healthz on --secure-port, served whether or not this manager leads."""
    if not args.secure_port:
        return None
    context = healthz.file_context(args.tls_cert_file, args.tls_private_key_file) \
        if args.tls_cert_file else healthz.self_signed_context()
    health = healthz.HealthServer(args.bind_address, args.secure_port, context,
                                  {"leaderElection": elector.check} if elector else {})
    health.start()
    log.info("Serving securely on %s:%d", args.bind_address, health.port)
    return health


if __name__ == "__main__":
    sys.exit(main())
