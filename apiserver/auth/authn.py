"""Authentication: bearer tokens from kube-apiserver's token CSV, service account tokens, and
client certificates signed by our CA; anonymous requests are refused."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field

from kubeapi.status import ApiError

from ..pki.serviceaccount_tokens import DEFAULT_ISSUER, BoundChecker, Claims, TokenIssuer


@dataclass(frozen=True)
class User:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = field(default_factory=tuple)
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()  # UserInfo.extra, as pairs


def service_account_user(claims: Claims) -> User:
    """The user of a service account token, as kube's serviceaccount authenticator names it."""
    extra = [("authentication.kubernetes.io/credential-id", (f"JTI={claims.jti}",))] \
        if claims.jti else []
    for kind, ref in (("node", claims.node), ("pod", claims.pod)):
        if ref is not None:
            extra += [(f"authentication.kubernetes.io/{kind}-name", (ref.name,)),
                      (f"authentication.kubernetes.io/{kind}-uid", (ref.uid,))]
    return User(claims.username, claims.service_account.uid,
                ("system:serviceaccounts", f"system:serviceaccounts:{claims.namespace}",
                 "system:authenticated"), tuple(extra))


class TokenFileError(ValueError):
    pass


def load_token_file(path: str) -> dict[str, User]:
    """token,user,uid[,"group1,group2"] per line, as kube-apiserver's --token-auth-file."""
    tokens: dict[str, User] = {}
    with open(path, newline="") as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if len(row) < 3:
                raise TokenFileError(f"{path}:{lineno}: need at least token,user,uid "
                                     f"(got {len(row)} columns)")
            token, name, uid = (c.strip() for c in row[:3])
            if not token or not name:
                raise TokenFileError(f"{path}:{lineno}: token and user name must not be empty")
            groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) \
                if len(row) > 3 else ()
            tokens[token] = User(name, uid, groups + ("system:authenticated",))
    return tokens


def user_from_certificate(peercert: dict | None) -> User | None:
    """CN is the user name, O the groups, as kube-apiserver reads x509 client certificates."""
    if not peercert:
        return None
    name, groups = "", []
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                name = value
            elif key == "organizationName":
                groups.append(value)
    return User(name, "", tuple(groups) + ("system:authenticated",)) if name else None


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


class Authenticator:
    def __init__(self, tokens: dict[str, User], service_accounts: TokenIssuer | None = None,
                 bound: BoundChecker | None = None):
        self._tokens = tokens
        self._service_accounts = service_accounts
        self._bound = bound

    @property
    def api_audiences(self) -> tuple[str, ...]:
        """What tokens must be meant for to be accepted here (--api-audiences)."""
        if self._service_accounts is None:
            return (DEFAULT_ISSUER,)
        return self._service_accounts.api_audiences

    def authenticate_token(self, token: str) -> User | None:
        found = self.review_token(token, self.api_audiences)
        return found[0] if found else None

    def review_token(self, token: str, audiences: tuple[str, ...] | list[str]
                     ) -> tuple[User, tuple[str, ...]] | None:
        """The user and the audiences among `audiences` the token is valid for. A static token
        is valid for the server's own audiences (kube's audience-agnostic wrapper)."""
        token = token.strip()
        user = self._tokens.get(token)
        if user is not None:
            matched = tuple(a for a in self.api_audiences if a in audiences)
            return (user, matched) if matched else None
        if self._service_accounts is None or token.count(".") != 2:
            return None
        claims, _ = self._service_accounts.verify(token, audiences, self._bound)
        return (service_account_user(claims), claims.audiences) if claims else None

    def authenticate(self, authorization: str | None, peercert: dict | None) -> User:
        if authorization:
            scheme, _, token = authorization.partition(" ")
            user = self.authenticate_token(token) if scheme.lower() == "bearer" else None
            if user is None:
                raise unauthorized()
            return user
        user = user_from_certificate(peercert)
        if user is None:
            raise unauthorized()  # anonymous requests are refused
        return user
