"""Service account tokens for projected volumes, as the kubelet's token manager gets them: a
TokenRequest (serviceaccounts/<name>/token) bound to the pod by name and uid, for the
audience and lifetime the volume asks, kept and handed out again until it must be refreshed:
when 80 % of its lifetime has passed, or 24 hours after it was issued, less a random jitter
of up to 10 s so that the pods of a node do not all ask at once. A refresh that fails while
the token still has time left returns the token held.

The clock and the jitter are injectable, so that the timing is tested without waiting."""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from kubeapi import timefmt
from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError

from kubelet.config_objects import ObjectUnavailable
from kubelet.pods import Pod

MAX_TTL = 24 * 3600.0
MAX_JITTER = 10.0
# The refresh begins this share of the lifetime before the token expires.
REFRESH_SHARE = 0.2
DEFAULT_EXPIRATION_SECONDS = 3600  # the API's default for a projected token


@dataclass(frozen=True)
class TokenKey:
    namespace: str
    service_account: str
    pod_name: str
    pod_uid: str
    audiences: tuple[str, ...]
    expiration_seconds: int


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires: float             # status.expirationTimestamp
    expiration_seconds: int    # what was asked: the lifetime the refresh is measured by

    @property
    def issued(self) -> float:
        return self.expires - self.expiration_seconds


@dataclass
class TokenManager:
    client: ApiClient | None
    clock: Callable[[], float] = time.time
    jitter: Callable[[], float] = field(default=lambda: random.uniform(0, MAX_JITTER))
    _tokens: dict[TokenKey, IssuedToken] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def token(self, key: TokenKey) -> str:
        """The token for this pod and projection: the one held while it is fresh, else a new
        one from the API server."""
        with self._lock:
            held = self._tokens.get(key)
        if held is not None and not self.requires_refresh(held):
            return held.token
        try:
            fresh = self._request(key)
        except ObjectUnavailable:
            if held is not None and self.clock() < held.expires:
                return held.token
            raise
        with self._lock:
            self._tokens[key] = fresh
        return fresh.token

    def requires_refresh(self, held: IssuedToken) -> bool:
        now, jitter = self.clock(), self.jitter()
        if now > held.issued + MAX_TTL - jitter:
            return True
        return now > held.expires - held.expiration_seconds * REFRESH_SHARE - jitter

    def forget_pod(self, uid: str) -> None:
        """Drops the tokens of a pod that is gone from this node."""
        with self._lock:
            for key in [k for k in self._tokens if k.pod_uid == uid]:
                del self._tokens[key]

    def _request(self, key: TokenKey) -> IssuedToken:
        if self.client is None:
            raise ObjectUnavailable("failed to fetch token: no kubeClient defined")
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": list(key.audiences),
                         "expirationSeconds": key.expiration_seconds,
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                            "name": key.pod_name, "uid": key.pod_uid}}}
        try:
            answer = self.client.create(f"/api/v1/namespaces/{key.namespace}/serviceaccounts/"
                                        f"{key.service_account}/token", body)
            status = answer["status"]
            return IssuedToken(status["token"], timefmt.parse(status["expirationTimestamp"]),
                               int(answer["spec"].get("expirationSeconds",
                                                      key.expiration_seconds)))
        except ApiError as e:
            raise ObjectUnavailable(f"failed to fetch token: {e}") from None
        except (KeyError, TypeError, ValueError) as e:
            raise ObjectUnavailable(f"failed to fetch token: malformed TokenRequest answer: "
                                    f"{e}") from None


def projection_key(pod: Pod, source: dict) -> TokenKey:
    """The TokenKey of a projected volume's serviceAccountToken source for this pod."""
    audience = source.get("audience") or ""
    return TokenKey(pod.namespace, pod.service_account_name or "default", pod.name, pod.uid,
                    (audience,) if audience else (),
                    int(source.get("expirationSeconds") or DEFAULT_EXPIRATION_SECONDS))
