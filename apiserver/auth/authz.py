"""Authorization: a small fixed policy in place of RBAC, written as RBAC rules:

- group system:masters (the admin kubeconfig, or a token line with that group): everything;
- group system:nodes (kubelets): read everything but pods' logs and streams, write nodes,
  nodes/status, leases, events, pods/status, their own csinode, create/delete pods (mirror
  pods, finishing graceful deletion), create TokenReviews and SubjectAccessReviews;
- group system:serviceaccounts (service account tokens): the issuer discovery documents
  (/.well-known/openid-configuration, /openid/v1/jwks), as kube's
  system:service-account-issuer-discovery binding; nodes also create serviceaccounts/token
  (a kubelet asks for its pods' tokens: registry/serviceaccounts.py checks that the pod is
  on that node, as NodeRestriction);
- any authenticated user: discovery, /version, /openapi and the self-reviews (SelfSubject*);
  403 elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from kubeapi.status import ApiError

from ..resources import RESOURCES
from .authn import User


@dataclass(frozen=True)
class Rule:
    """An RBAC PolicyRule: a resource rule, or (with non_resource_urls) a URL rule."""
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()     # "pods", "pods/status", "*", "*/status"
    non_resource_urls: tuple[str, ...] = ()
    granted_to: str = "all authenticated users"  # a SubjectAccessReview's reason names it

    def allows(self, verb: str, group: str, resource: str) -> bool:
        if self.non_resource_urls or not ("*" in self.verbs or verb in self.verbs):
            return False
        if "*" not in self.api_groups and group not in self.api_groups:
            return False
        sub = resource.partition("/")[2]
        return any(r in ("*", resource) or (sub and r == "*/" + sub) for r in self.resources)

    def allows_path(self, verb: str, path: str) -> bool:
        if not ("*" in self.verbs or verb in self.verbs):
            return False
        return any(u == path or (u.endswith("*") and path.startswith(u[:-1]))
                   for u in self.non_resource_urls)

    def to_dict(self) -> dict:
        """The rule as SelfSubjectRulesReview lists it."""
        if self.non_resource_urls:
            return {"verbs": list(self.verbs), "nonResourceURLs": list(self.non_resource_urls)}
        return {"verbs": list(self.verbs), "apiGroups": list(self.api_groups),
                "resources": list(self.resources)}


# The policy as RBAC rules: the authorizer and SelfSubjectRulesReview read the same list.
_EVERYONE = (  # system:basic-user, system:discovery and system:public-info-viewer
    Rule(("create",), ("authorization.k8s.io",),
         ("selfsubjectaccessreviews", "selfsubjectrulesreviews")),
    Rule(("create",), ("authentication.k8s.io",), ("selfsubjectreviews",)),
    Rule(("get",), non_resource_urls=("/api", "/api/*", "/apis", "/apis/*", "/healthz",
                                      "/livez", "/openapi", "/openapi/*", "/readyz",
                                      "/version", "/version/")),
)
_MASTERS = (Rule(("*",), ("*",), ("*",), granted_to='group "system:masters"'),
            Rule(("*",), non_resource_urls=("*",), granted_to='group "system:masters"'))
_NODES = 'group "system:nodes"'
_NODE_WRITES = (
    Rule(("create", "update", "patch", "delete"), ("",), ("nodes",), granted_to=_NODES),
    Rule(("update", "patch"), ("",), ("nodes/status", "pods/status"), granted_to=_NODES),
    Rule(("create", "update", "patch", "delete"), ("coordination.k8s.io",), ("leases",),
         granted_to=_NODES),
    Rule(("create", "update", "patch"), ("",), ("events",), granted_to=_NODES),
    Rule(("create", "delete"), ("",), ("pods",), granted_to=_NODES),
    # a kubelet authenticates and authorizes its own clients through these
    Rule(("create",), ("authentication.k8s.io",), ("tokenreviews",), granted_to=_NODES),
    Rule(("create",), ("authorization.k8s.io",),
         ("subjectaccessreviews", "localsubjectaccessreviews"), granted_to=_NODES),
    Rule(("create",), ("",), ("serviceaccounts/token",), granted_to=_NODES),
    # the kubelet registers its node's CSI drivers (system:node's csinodes rule)
    Rule(("create", "update", "patch", "delete"), ("storage.k8s.io",), ("csinodes",),
         granted_to=_NODES),
)
_SERVICE_ACCOUNTS = (Rule(("get",), non_resource_urls=("/.well-known/openid-configuration",
                                                       "/.well-known/openid-configuration/",
                                                       "/openid/v1/jwks", "/openid/v1/jwks/"),
                          granted_to='group "system:serviceaccounts"'),)
# Subresources a node does not read: container output and streams are for the pod's users.
_NOT_NODE_READABLE = {"log", "exec", "attach", "portforward", "binding", "token"}


def _node_reads() -> tuple[Rule, ...]:
    """get, list and watch on every stored resource and its readable subresources."""
    by_group: dict[str, list[str]] = {}
    for r in RESOURCES:
        names = by_group.setdefault(r.group, [])
        names.append(r.plural)
        names += [f"{r.plural}/{sub}" for sub in r.subresources if sub not in _NOT_NODE_READABLE]
    return tuple(Rule(("get", "list", "watch"), (group,), tuple(names), granted_to=_NODES)
                 for group, names in by_group.items())


def rules_for(user: User) -> list[Rule]:
    """Every rule that applies to the user, the unconditional ones first."""
    rules = []
    if "system:masters" in user.groups:
        rules += _MASTERS
    if "system:nodes" in user.groups:
        rules += _node_reads() + _NODE_WRITES
    if "system:serviceaccounts" in user.groups:
        rules += _SERVICE_ACCOUNTS
    return rules + list(_EVERYONE)


def node_of(user: User) -> str:
    """The node a kubelet authenticates as (system:node:NAME in group system:nodes, and not
    also a master), "" for anyone else: what the NodeRestriction checks apply to."""
    if "system:nodes" not in user.groups or "system:masters" in user.groups or \
            not user.name.startswith("system:node:"):
        return ""
    return user.name[len("system:node:"):]


def permitting(user: User, verb: str, resource: str, subresource: str,
               group: str) -> Rule | None:
    """The rule that allows the request, None when none does."""
    what = f"{resource}/{subresource}" if subresource else resource
    return next((r for r in rules_for(user) if r.allows(verb, group, what)), None)


def permitting_path(user: User, verb: str, path: str) -> Rule | None:
    return next((r for r in rules_for(user) if r.allows_path(verb, path)), None)


def forbidden_message(user: User, verb: str, resource: str, subresource: str, namespace: str,
                      group: str) -> str:
    what = f"{resource}/{subresource}" if subresource else resource
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    return (f'{what}{"." + group if group else ""} is forbidden: User "{user.name}" cannot '
            f'{verb} resource "{what}" in API group "{group}"{where}')


# Kinds a node touches only under its own name: kube's Node authorizer (get, update, patch,
# delete) and NodeRestriction admission (create, whose name is in the body).
_OWN_NAME_ONLY = {"csinodes": "CSINode"}


def restrict_to_own_object(user: User, verb: str, resource: str, group: str, name: str,
                           body: Callable[[], object]) -> None:
    """Raises 403 Forbidden when a node asks for another node's object of those kinds."""
    node, kind = node_of(user), _OWN_NAME_ONLY.get(resource)
    if not node or kind is None or verb in ("list", "watch", "deletecollection"):
        return
    why = f"can only access {kind} with the same name as the requesting node"
    if verb == "create":
        obj = body()
        name = str(((obj.get("metadata") or {}).get("name") or "")) \
            if isinstance(obj, dict) else ""
        if name != node:
            raise ApiError(403, "Forbidden", f'{resource}.{group} "{name}" is forbidden: {why}',
                           kind=resource, name=name, group=group)
    elif name != node:
        raise ApiError(403, "Forbidden", f'{resource}.{group} "{name}" is forbidden: User '
                       f'"{user.name}" cannot {verb} resource "{resource}" in API group '
                       f'"{group}" at the cluster scope: {why}', kind=resource, name=name,
                       group=group)


def authorize(user: User, verb: str, resource: str, subresource: str, namespace: str,
              group: str) -> None:
    """Raises 403 Forbidden when the policy above does not allow the request."""
    if permitting(user, verb, resource, subresource, group) is None:
        raise ApiError(403, "Forbidden", forbidden_message(user, verb, resource, subresource,
                                                           namespace, group), kind=resource)
