"""Assembles the API server: storage, stores, watch hub, PKI, kubeconfig, HTTPS, scheduler,
and the namespace finalizer loop."""
from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass

from kubeapi.status import ApiError

from . import resources
from .rest.api import Api
from .auth.authn import Authenticator, User, load_token_file
from .http_server import ApiHTTPServer, tls_context
from .ipalloc import IPAllocator
from .kubernetes_service import ServiceFlags, advertise_address, reconcile as reconcile_kubernetes
from .pki.kubeconfig import write_admin_kubeconfig
from .metrics.rest import MetricsApi
from .registry.namespace_defaults import NamespaceDefaults
from .pki.certificates import ensure_pki
from .nodeproxy.logs import LogProxy
from .portalloc import PortAllocator
from .rangealloc import AllocationError
from .registry import disruption
from .registry.namespace_finalizer import finalize_namespace
from .registry.serviceaccounts import AdmittingPodStrategy, bound_checker
from .registry.services import ServiceStore
from .registry.store import Store, decode, stored_json
from .registry.volumes.claim_resize import ResizingClaimStrategy
from .scheduler import Scheduler
from .pki.serviceaccount_tokens import TokenIssuer, ensure_signing_key
from .storage import Storage, StorageError
from .storage.sqlite import SQLiteStorage
from .watch import Codec, WatchHub
from .watchcache import WatchCache

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
NAMESPACE_SWEEP_SECONDS = 5.0
# How often PodDisruptionBudgets' status follows their pods (evictions compute it afresh).
DISRUPTION_SYNC_SECONDS = 2.0
# How often ClusterIPs and NodePorts that no Service holds are looked for (kube: 3 min).
SERVICE_REPAIR_SECONDS = 60.0


@dataclass(frozen=True)
class ServiceAccountFlags:
    """kube-apiserver's service account flags; empty means its default."""
    signing_key_file: str = ""         # --service-account-signing-key-file (<pki>/sa.key)
    key_files: tuple[str, ...] = ()    # --service-account-key-file
    issuers: tuple[str, ...] = ()      # --service-account-issuer (the first one issues)
    api_audiences: tuple[str, ...] = ()  # --api-audiences (the first issuer)
    extend_token_expiration: bool = True  # --service-account-extend-token-expiration


class ApiServer:
    def __init__(self, data_dir: str, bind_address: str, port: int,
                 token_file: str | None = None,
                 service_accounts: ServiceAccountFlags | None = None,
                 services: ServiceFlags | None = None, storage: Storage | None = None,
                 listener: socket.socket | None = None, worker: str = "",
                 singletons: bool = True):
        """`listener`, `worker`: see ApiHTTPServer. `singletons`: whether this process does
        the work that must happen once per cluster (system namespaces and their defaults, the
        kubernetes Service, the scheduler and the sweeps); of several workers, the first."""
        svc_flags = services or ServiceFlags()
        cluster_ips = IPAllocator.parse(svc_flags.cluster_ip_range)
        node_ports = PortAllocator.parse(svc_flags.node_port_range)
        advertised = advertise_address(svc_flags.advertise_address, bind_address)
        os.makedirs(data_dir, mode=0o700, exist_ok=True)
        tokens: dict[str, User] = load_token_file(token_file) if token_file else {}
        self.pki = ensure_pki(os.path.join(data_dir, "pki"), bind_address, cluster_ips.first())
        sa = service_accounts or ServiceAccountFlags()
        self.token_issuer = TokenIssuer.from_files(
            sa.signing_key_file or ensure_signing_key(self.pki.directory), list(sa.key_files),
            list(sa.issuers), list(sa.api_audiences), sa.extend_token_expiration)
        # etcd (--etcd-servers) when given, else the embedded SQLite file behind the watch cache
        # (which needs a backend that publishes writes before acknowledging them: watchcache).
        self.storage = storage or WatchCache(SQLiteStorage(os.path.join(data_dir, "state.db")))
        self.hub = WatchHub(self.storage, Codec(decode, stored_json))
        self.stores: dict[str, Store] = {}
        for rtype in resources.RESOURCES:
            self.stores[rtype.plural] = Store(self.storage, rtype, self._check_namespace)
        services_store = ServiceStore(self.storage, resources.find("", "v1", "services"),
                                      self._check_namespace, ips=cluster_ips, ports=node_ports)
        services_store.rebuild()
        self.stores["services"] = services_store
        self.stores["pods"].strategy = AdmittingPodStrategy(self.stores["serviceaccounts"],
                                                            self._check_namespace)
        self.stores["persistentvolumeclaims"].strategy = ResizingClaimStrategy(
            self.stores["storageclasses"])
        self.singletons = singletons
        if singletons:
            self._ensure_namespaces()
        with open(self.pki.ca_cert) as f:
            self.namespace_defaults = NamespaceDefaults(self.stores, self.hub, f.read(),
                                                        self.token_issuer)
        if singletons:
            self.namespace_defaults.sync_all()
        log_proxy = LogProxy(self.stores["pods"], self.stores["nodes"],
                             self.pki.kubelet_client_cert, self.pki.kubelet_client_key)
        self.httpd = ApiHTTPServer((bind_address, port), Api(
            self.stores, self.hub, Authenticator(tokens, self.token_issuer,
                                                 bound_checker(self.stores)), log_proxy, ""),
            tls_context(self.pki.server_cert, self.pki.server_key, self.pki.ca_cert),
            listener, worker)
        self.httpd.api.metrics = MetricsApi(self.stores["pods"], self.stores["nodes"],
                                            self.pki.kubelet_client_cert,
                                            self.pki.kubelet_client_key)
        self.port = self.httpd.server_address[1]
        if singletons:
            reconcile_kubernetes(self.stores, cluster_ips.first(), advertised, self.port)
        host = "127.0.0.1" if bind_address in ("0.0.0.0", "", "::") else bind_address
        host = f"[{host}]" if ":" in host else host
        self.url = f"https://{host}:{self.port}"
        self.httpd.api.server_address = f"{host}:{self.port}"
        self.httpd.api.token_issuer = self.token_issuer
        self.kubeconfig = os.path.join(data_dir, "admin.kubeconfig")
        if singletons:
            write_admin_kubeconfig(self.kubeconfig, self.url, self.pki)
        self.scheduler = Scheduler(self.stores["pods"], self.stores["nodes"],
                                   self.stores["events"], self.hub)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _check_namespace(self, namespace: str, creating: bool) -> None:
        # 404 when missing; a cached state will do, as kube's NamespaceLifecycle admission
        # reads its informer's
        ns = self.stores["namespaces"].get("", namespace, recent=True)
        if creating and (ns.get("status") or {}).get("phase") == "Terminating":
            raise ApiError(403, "Forbidden", f"unable to create new content in namespace "
                           f"{namespace} because it is being terminated", kind="namespaces",
                           name=namespace)

    def _ensure_namespaces(self) -> None:
        for name in SYSTEM_NAMESPACES:
            try:
                self.stores["namespaces"].create("", {"metadata": {"name": name}})
            except ApiError as e:
                if e.code != 409:
                    raise

    def _sweep_namespaces(self) -> None:
        """Finishes deleting Terminating namespaces once their pods are gone."""
        while not self._stop.wait(NAMESPACE_SWEEP_SECONDS):
            try:
                for ns in self.stores["namespaces"].list("").items:
                    if (ns.get("status") or {}).get("phase") == "Terminating":
                        finalize_namespace(self.stores, ns["metadata"]["name"])
            except ApiError:
                continue

    def _sync_disruption_budgets(self) -> None:
        """Keeps PodDisruptionBudgets' status current, as kube's disruption controller."""
        while not self._stop.wait(DISRUPTION_SYNC_SECONDS):
            try:
                disruption.refresh_all(self.stores)
            except ApiError:
                continue

    def _repair_service_ranges(self) -> None:
        """Gives back what a server that died between reserving and writing left taken."""
        while not self._stop.wait(SERVICE_REPAIR_SECONDS):
            try:
                self.stores["services"].repair()
            except (ApiError, StorageError, AllocationError):
                continue

    def start(self) -> None:
        loops = [(self.httpd.serve_forever, "https")]
        if self.singletons:
            self.scheduler.start()
            self.namespace_defaults.start()
            loops += [(self._sweep_namespaces, "namespaces"),
                      (self._sync_disruption_budgets, "disruption"),
                      (self._repair_service_ranges, "service-ranges")]
        for target, name in loops:
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.singletons:
            self.scheduler.stop()
            self.namespace_defaults.stop()
        self.httpd.api.metrics.stop()
        for t in self._threads:  # the sweeps finish their round before storage goes
            t.join(timeout=10)
        self.storage.close()
