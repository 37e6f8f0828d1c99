"""This node's place behind the `kube-dns` Service: an EndpointSlice of kube-system/kube-dns
holding the node's address and name, so that the service proxy (the Service has
`internalTrafficPolicy: Local`) sends each pod's DNS to the daemon of its own node. Written when
the server starts (retried in the background while the API server cannot be reached), deleted
when it stops."""
from __future__ import annotations

import ipaddress
import logging
import threading
from dataclasses import dataclass, field

from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError

log = logging.getLogger("clusterdns")

NAMESPACE = "kube-system"
SERVICE = "kube-dns"
MANAGED_BY = "pykube-dns"
RETRY = 5.0   # seconds between attempts while the API server is away
SLICES = f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices"


@dataclass
class Registration:
    client: ApiClient
    node_name: str
    address: str
    port: int
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return f"{SERVICE}-{self.node_name}"

    def body(self) -> dict:
        family = "IPv6" if ipaddress.ip_address(self.address).version == 6 else "IPv4"
        return {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": self.name, "namespace": NAMESPACE,
                         "labels": {"kubernetes.io/service-name": SERVICE,
                                    "endpointslice.kubernetes.io/managed-by": MANAGED_BY}},
            "addressType": family,
            "endpoints": [{"addresses": [self.address], "nodeName": self.node_name,
                           "conditions": {"ready": True, "serving": True,
                                          "terminating": False}}],
            "ports": [{"name": "dns", "port": self.port, "protocol": "UDP"},
                      {"name": "dns-tcp", "port": self.port, "protocol": "TCP"}],
        }

    def start(self) -> None:
        """Registers now, or keeps trying in the background until it could."""
        self._thread = threading.Thread(target=self._run, name="dns-registration", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops trying and withdraws the slice (best effort: the API server may be gone)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        try:
            self.client.delete(f"{SLICES}/{self.name}")
        except ApiError as e:
            if e.code != 404:
                log.warning("withdrawing EndpointSlice %s/%s: %s", NAMESPACE, self.name, e)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._put()
                return
            except ApiError as e:
                log.warning("registering EndpointSlice %s/%s: %s", NAMESPACE, self.name, e)
            self._stop.wait(RETRY)

    def _put(self) -> None:
        try:
            current = self.client.get(f"{SLICES}/{self.name}")
        except ApiError as e:
            if e.code != 404:
                raise
            self.client.create(SLICES, self.body())
            return
        body = self.body()
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        self.client.request("PUT", f"{SLICES}/{self.name}", body)
