"""The review APIs, create-only and never stored, answered by this server's own authenticator
and authorizer (authn.py, authz.py):

- authorization.k8s.io/v1: SelfSubjectAccessReview, SelfSubjectRulesReview,
  SubjectAccessReview, LocalSubjectAccessReview (kubectl auth can-i, can-i --list);
- authentication.k8s.io/v1: SelfSubjectReview (kubectl auth whoami) and TokenReview."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from kubeapi import status
from kubeapi.status import ApiError

from .authn import Authenticator, User
from .authz import authorize, permitting, permitting_path, rules_for

AUTHZ, AUTHN = "authorization.k8s.io", "authentication.k8s.io"
GROUP_VERSIONS = ((AUTHN, "v1"), (AUTHZ, "v1"))


@dataclass(frozen=True)
class Review:
    group: str
    plural: str
    kind: str
    namespaced: bool = False

    @property
    def singular(self) -> str:
        return self.plural[:-1]


REVIEWS = (
    Review(AUTHN, "selfsubjectreviews", "SelfSubjectReview"),
    Review(AUTHN, "tokenreviews", "TokenReview"),
    Review(AUTHZ, "localsubjectaccessreviews", "LocalSubjectAccessReview", namespaced=True),
    Review(AUTHZ, "selfsubjectaccessreviews", "SelfSubjectAccessReview"),
    Review(AUTHZ, "selfsubjectrulesreviews", "SelfSubjectRulesReview"),
    Review(AUTHZ, "subjectaccessreviews", "SubjectAccessReview"),
)


def serves(group: str, version: str) -> bool:
    return (group, version) in GROUP_VERSIONS


def resource_list(group: str, version: str) -> dict:
    """The APIResourceList of a review group: create is the only verb."""
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}",
            "resources": [{"name": r.plural, "singularName": r.singular,
                           "namespaced": r.namespaced, "kind": r.kind, "verbs": ["create"]}
                          for r in REVIEWS if r.group == group]}


def _find(group: str, rest: list[str]) -> tuple[Review, str] | None:
    namespace = ""
    if len(rest) == 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if len(rest) != 1:
        return None
    review = next((r for r in REVIEWS if r.group == group and r.plural == rest[0]), None)
    if review is None or review.namespaced != bool(namespace):
        return None
    return review, namespace


class Reviews:
    def __init__(self, authenticator: Authenticator):
        self._authenticator = authenticator

    def handle(self, group: str, version: str, rest: list[str], method: str, user: User,
               read_body: Callable[[], object]) -> tuple[int, dict] | None:
        """(201, the review with its status); None when the path names no review."""
        found = _find(group, rest)
        if found is None:
            return None
        review, namespace = found
        if method != "POST":
            raise ApiError(405, "MethodNotAllowed", f"{review.plural}.{group} can only be "
                           "created")
        authorize(user, "create", review.plural, "", namespace, group)
        body = read_body()
        if not isinstance(body, dict):
            raise status.bad_request(f"the body of a {review.kind} must be an object")
        spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
        meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        if namespace:
            meta["namespace"] = namespace
        obj = {"kind": review.kind, "apiVersion": f"{group}/{version}", "metadata": meta,
               "spec": spec}
        answer = getattr(self, "_" + review.plural)
        obj["status"] = answer(review, namespace, user, spec)
        if review.kind == "SelfSubjectReview":
            del obj["spec"]  # the only review without one
        return 201, obj

    # authentication.k8s.io

    def _selfsubjectreviews(self, review: Review, namespace: str, user: User,
                            spec: dict) -> dict:
        return {"userInfo": user_info(user)}

    def _tokenreviews(self, review: Review, namespace: str, user: User, spec: dict) -> dict:
        token = spec.get("token")
        if not isinstance(token, str) or not token:
            raise status.bad_request("token is required for TokenReview in authentication")
        wanted = spec.get("audiences") or list(self._authenticator.api_audiences)
        if not isinstance(wanted, list) or not all(isinstance(a, str) for a in wanted):
            raise status.bad_request("spec.audiences must be a list of strings")
        # static tokens are valid for the server's own audiences only, service account
        # tokens for those they were issued for
        found = self._authenticator.review_token(token, wanted)
        if found is None:
            return {"authenticated": False, "user": {}}
        return {"authenticated": True, "user": user_info(found[0]),
                "audiences": list(found[1])}

    # authorization.k8s.io

    def _selfsubjectaccessreviews(self, review: Review, namespace: str, user: User,
                                  spec: dict) -> dict:
        _check_attributes(review, spec, namespace)
        return _decide(user, spec)

    def _subjectaccessreviews(self, review: Review, namespace: str, user: User,
                              spec: dict) -> dict:
        _check_attributes(review, spec, namespace)
        groups = tuple(g for g in spec.get("groups") or () if isinstance(g, str))
        return _decide(User(str(spec.get("user") or ""), str(spec.get("uid") or ""), groups),
                       spec)

    _localsubjectaccessreviews = _subjectaccessreviews

    def _selfsubjectrulesreviews(self, review: Review, namespace: str, user: User,
                                 spec: dict) -> dict:
        if not spec.get("namespace"):
            raise status.bad_request("no namespace on request")
        rules = rules_for(user)
        return {"resourceRules": [r.to_dict() for r in rules if not r.non_resource_urls],
                "nonResourceRules": [r.to_dict() for r in rules if r.non_resource_urls],
                "incomplete": False}


def user_info(user: User) -> dict:
    """A UserInfo without its empty fields, as kube-apiserver encodes it."""
    info: dict = {"username": user.name}
    if user.uid:
        info["uid"] = user.uid
    if user.groups:
        info["groups"] = list(user.groups)
    if user.extra:
        info["extra"] = {key: list(values) for key, values in user.extra}
    return info


def _check_attributes(review: Review, spec: dict, namespace: str) -> None:
    """kube-apiserver's validation of a (Self|Local)SubjectAccessReview spec."""
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    causes = []
    if resource is not None and non_resource is not None:
        causes.append(status.invalid_value("spec.nonResourceAttributes", non_resource,
                                           "cannot be specified in combination with "
                                           "resourceAttributes"))
    if resource is None and non_resource is None:
        causes.append(status.field_error(
            "FieldValueInvalid", "spec.resourceAttributes", "Invalid value: \"null\": exactly "
            "one of nonResourceAttributes or resourceAttributes must be specified"))
    if review.plural in ("subjectaccessreviews", "localsubjectaccessreviews") and \
            not spec.get("user") and not spec.get("groups"):
        causes.append(status.invalid_value("spec.user", "", "at least one of user or group "
                                           "must be specified"))
    if review.namespaced and non_resource is not None:
        causes.append(status.invalid_value("spec.nonResourceAttributes", non_resource,
                                           "disallowed on this kind of request"))
    if review.namespaced and (resource or {}).get("namespace", "") != namespace:
        causes.append(status.invalid_value("spec.resourceAttributes.namespace",
                                           (resource or {}).get("namespace", ""),
                                           "must match metadata.namespace"))
    if causes:
        raise status.invalid(review.kind, "", causes, AUTHZ)


def _decide(user: User, spec: dict) -> dict:
    resource = spec.get("resourceAttributes")
    if isinstance(resource, dict):
        rule = permitting(user, str(resource.get("verb") or ""),
                          str(resource.get("resource") or ""),
                          str(resource.get("subresource") or ""),
                          str(resource.get("group") or ""))
    else:
        attrs = spec.get("nonResourceAttributes") or {}
        rule = permitting_path(user, str(attrs.get("verb") or ""), str(attrs.get("path") or ""))
    if rule is None:
        return {"allowed": False}  # as RBAC: no opinion, no reason
    return {"allowed": True, "reason": f"allowed by the policy for {rule.granted_to}"}
