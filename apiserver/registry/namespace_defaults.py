"""What pyapiserver keeps up itself, as kube-controller-manager's serviceaccount controller,
root-ca-cert-publisher and token controller do: the `default` ServiceAccount and the
kube-root-ca.crt ConfigMap (the server's CA) in every namespace, made as soon as a namespace
appears and again when deleted or changed, so that a pod created right after its namespace
finds its service account (the admission also waits a little for it, as kube's does); and the
token, ca.crt and namespace of every kubernetes.io/service-account-token Secret, once its
account exists. Driven by the server's own watch hub.

pyapiserver runs this itself, as it runs the scheduler and the namespace finalizer, so that it
works without a controller manager; against kube-apiserver, kube-controller-manager does it."""
from __future__ import annotations

import logging
import threading

from kubeapi.status import ApiError

from ..pki.serviceaccount_tokens import TokenIssuer
from ..watch import WatchEvent, WatchHub
from .serviceaccounts import (DEFAULT_NAME, ROOT_CA_CONFIGMAP, SA_NAME_ANNOTATION,
                              TOKEN_SECRET_TYPE, ensure_namespace_defaults,
                              populate_token_secret)
from .store import Store

log = logging.getLogger("apiserver.namespace_defaults")

# How long the loop waits for a namespace event before it looks at the other watches.
WAIT_SECONDS = 0.5
_WATCHED = ("namespaces", "serviceaccounts", "configmaps", "secrets")


class NamespaceDefaults:
    def __init__(self, stores: dict[str, Store], hub: WatchHub, ca_pem: str,
                 issuer: TokenIssuer):
        self._stores = stores
        self._hub = hub
        self._ca_pem = ca_pem
        self._issuer = issuer
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
        for secret in self._stores["secrets"].list("").items:
            self._populate(secret)

    def _ensure(self, namespace: str) -> None:
        try:
            ensure_namespace_defaults(self._stores, namespace, self._ca_pem)
        except ApiError as e:
            log.warning("namespace %s: %s", namespace, e)

    def _populate(self, secret: dict) -> None:
        try:
            populate_token_secret(self._stores, self._issuer, secret, self._ca_pem)
        except ApiError as e:
            log.warning("secret %s/%s: %s", secret["metadata"].get("namespace"),
                        secret["metadata"].get("name"), e)

    def _run(self) -> None:
        while not self._stop.is_set():
            watchers = [self._hub.open(self._stores[r].rtype.key_prefix()) for r in _WATCHED]
            try:
                self.sync_all()  # after opening: nothing falls between list and watch
                while not self._stop.is_set() and not any(w.overflowed for w in watchers):
                    first = watchers[0].next(WAIT_SECONDS)
                    events = [first] if first is not None else []
                    for w in watchers[1:]:
                        while (ev := w.next(0)) is not None:
                            events.append(ev)
                    for ev in events:
                        self._handle(ev)
            except ApiError as e:
                log.warning("namespace defaults: %s", e)
                self._stop.wait(1)
            finally:
                for w in watchers:
                    w.close()

    def _handle(self, ev: WatchEvent) -> None:
        meta = ev.obj.get("metadata") or {}
        kind, name, namespace = ev.obj.get("kind"), meta.get("name", ""), meta.get("namespace", "")
        if kind == "Namespace" and ev.type != "DELETED":
            self._ensure(name)
        elif kind == "ServiceAccount" and ev.type == "DELETED" and name == DEFAULT_NAME:
            self._ensure(namespace)
        elif kind == "ServiceAccount" and ev.type == "ADDED":
            # token Secrets made before their account
            for secret in self._stores["secrets"].list(namespace).items:
                if (secret["metadata"].get("annotations") or {}).get(SA_NAME_ANNOTATION) == name:
                    self._populate(secret)
        elif kind == "ConfigMap" and name == ROOT_CA_CONFIGMAP and ev.type != "ADDED":
            self._ensure(namespace)
        elif kind == "Secret" and ev.type != "DELETED" and ev.obj.get("type") == TOKEN_SECRET_TYPE:
            self._populate(ev.obj)
