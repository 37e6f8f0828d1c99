"""Authentication (bearer tokens from kube-apiserver's token CSV, client certificates signed by
our CA) and a small fixed authorization policy in place of RBAC:

- group system:masters (the admin kubeconfig, or a token line with that group): everything;
- group system:nodes (kubelets): read everything, write nodes, nodes/status, leases, events,
  pods/status, and create/delete pods (mirror pods, finishing graceful deletion);
- any other authenticated user: discovery, /version and /openapi only (403 elsewhere).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field

from kubeapi.status import ApiError


@dataclass(frozen=True)
class User:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = field(default_factory=tuple)


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
    def __init__(self, tokens: dict[str, User]):
        self._tokens = tokens

    def authenticate(self, authorization: str | None, peercert: dict | None) -> User:
        if authorization:
            scheme, _, token = authorization.partition(" ")
            user = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
            if user is None:
                raise unauthorized()
            return user
        user = user_from_certificate(peercert)
        if user is None:
            raise unauthorized()  # anonymous requests are refused
        return user


_NODE_READ = {"get", "list", "watch"}
_NODE_WRITES = {
    ("nodes", ""): {"create", "update", "patch", "delete"},
    ("nodes", "status"): {"update", "patch"},
    ("leases", ""): {"create", "update", "patch", "delete"},
    ("events", ""): {"create", "update", "patch"},
    ("pods", ""): {"create", "delete"},
    ("pods", "status"): {"update", "patch"},
}


def authorize(user: User, verb: str, resource: str, subresource: str, namespace: str,
              group: str) -> None:
    """Raises 403 Forbidden when the policy above does not allow the request."""
    if "system:masters" in user.groups:
        return
    if "system:nodes" in user.groups:
        if verb in _NODE_READ and subresource != "log":
            return
        if verb in _NODE_WRITES.get((resource, subresource), ()):
            return
    what = f"{resource}/{subresource}" if subresource else resource
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    raise ApiError(403, "Forbidden",
                   f'{what}{"." + group if group else ""} is forbidden: User "{user.name}" cannot '
                   f'{verb} resource "{what}" in API group "{group}"{where}', kind=resource)
