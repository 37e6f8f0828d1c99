"""What pyapiserver keeps in every namespace, as kube-controller-manager's serviceaccount
controller and root-ca-cert-publisher do: the `default` ServiceAccount and the kube-root-ca.crt
ConfigMap (the server's CA). Made as soon as a namespace appears and again when deleted or
changed, from the server's own watch hub, so that a pod created right after its namespace
finds its service account (the admission also waits a little for it, as kube's does).

pyapiserver runs this itself, as it runs the scheduler and the namespace finalizer, so that it
works without a controller manager; against kube-apiserver, kube-controller-manager does it."""
from __future__ import annotations

import logging
import threading

from kubeapi.status import ApiError

from .registry.serviceaccounts import DEFAULT_NAME, ROOT_CA_CONFIGMAP, ensure_namespace_defaults
from .registry.store import Store
from .watch import WatchHub

log = logging.getLogger("apiserver.namespace_defaults")

# How long the loop waits for a namespace event before it looks at the other two watches.
WAIT_SECONDS = 0.5


class NamespaceDefaults:
    def __init__(self, stores: dict[str, Store], hub: WatchHub, ca_pem: str):
        self._stores = stores
        self._hub = hub
        self._ca_pem = ca_pem
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="namespace-defaults",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def sync_all(self) -> None:
        for ns in self._stores["namespaces"].list("").items:
            self._ensure(ns["metadata"]["name"])

    def _ensure(self, namespace: str) -> None:
        try:
            ensure_namespace_defaults(self._stores, namespace, self._ca_pem)
        except ApiError as e:
            log.warning("namespace %s: %s", namespace, e)

    def _run(self) -> None:
        while not self._stop.is_set():
            rtypes = (self._stores["namespaces"].rtype, self._stores["serviceaccounts"].rtype,
                      self._stores["configmaps"].rtype)
            watchers = [self._hub.open(r.key_prefix()) for r in rtypes]
            try:
                self.sync_all()  # after opening: nothing falls between list and watch
                while not self._stop.is_set() and not any(w.overflowed for w in watchers):
                    first = watchers[0].next(WAIT_SECONDS)
                    events = [first] if first is not None else []
                    for w in watchers[1:]:
                        while (ev := w.next(0)) is not None:
                            events.append(ev)
                    for ev in events:
                        namespace = self._affected(ev)
                        if namespace:
                            self._ensure(namespace)
            except ApiError as e:
                log.warning("namespace defaults: %s", e)
                self._stop.wait(1)
            finally:
                for w in watchers:
                    w.close()

    @staticmethod
    def _affected(ev) -> str:
        """The namespace to look at again after this event, "" for none."""
        meta = ev.obj.get("metadata") or {}
        kind = ev.obj.get("kind")
        if kind == "Namespace":
            return meta.get("name", "") if ev.type != "DELETED" else ""
        if kind == "ServiceAccount" and meta.get("name") == DEFAULT_NAME and \
                ev.type == "DELETED":
            return meta.get("namespace", "")
        if kind == "ConfigMap" and meta.get("name") == ROOT_CA_CONFIGMAP and \
                ev.type != "ADDED":
            return meta.get("namespace", "")
        return ""
