"""ServiceAccounts: the resource, its `token` subresource (TokenRequest), the checks that keep a
bound token valid only while its pod and service account live, and the ServiceAccount
admission of pods (kube's plugin/pkg/admission/serviceaccount): every pod runs as a service
account that exists, and gets the `kube-api-access-<random>` projected volume (token, ca.crt,
namespace) mounted in each container unless automounting is turned off."""
from __future__ import annotations

import base64
import copy
import secrets
import time
from typing import Callable

from kubeapi import status, timefmt
from kubeapi.status import ApiError

from ..pki.serviceaccount_tokens import DELETED_POD_GRACE, Claims, Ref, TokenIssuer
from .pods import PodStrategy
from .strategy import Strategy

TOKEN_GROUP, TOKEN_VERSION = "authentication.k8s.io", "v1"
DEFAULT_NAME = "default"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
# The kube-api-access token's lifetime: kube-apiserver extends exactly this value (see
# serviceaccount_tokens.WARN_ONLY_SECONDS).
KUBE_API_ACCESS_SECONDS = 3607
DEFAULT_TOKEN_SECONDS = 3600
MIN_TOKEN_SECONDS = 600
MAX_TOKEN_SECONDS = 1 << 32
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # utilrand.String's alphabet
# The admission looks the default service account up this many times, 100-200 ms apart,
# since the controller that makes it may not have yet (as kube's admission plugin).
DEFAULT_LOOKUPS = 10


class ServiceAccountStrategy(Strategy):
    kind = "ServiceAccount"

    def validate(self, obj: dict) -> list[dict]:
        errors = []
        auto = obj.get("automountServiceAccountToken")
        if auto is not None and not isinstance(auto, bool):
            errors.append(status.invalid_value("automountServiceAccountToken", auto,
                                               "must be a boolean"))
        for field in ("secrets", "imagePullSecrets"):
            refs = obj.get(field)
            if refs is not None and not isinstance(refs, list):
                errors.append(status.invalid_value(field, refs, "must be a list"))
        return errors


# -- TokenRequest --------------------------------------------------------------------------------

def _token_request_invalid(name: str, causes: list[dict]) -> ApiError:
    error = status.invalid("TokenRequest", name, causes, TOKEN_GROUP)
    error.message = f"TokenRequest.{TOKEN_GROUP}{error.message[len('TokenRequest'):]}"
    return error


def create_token(stores: dict, issuer: TokenIssuer, namespace: str, name: str,
                 body: object, node: str = "") -> dict:
    """POST serviceaccounts/<name>/token: the TokenRequest with status.token, in the order of
    kube's TokenREST.Create (the account is looked up before the spec is validated). `node`
    names the kubelet asking (NodeRestriction: only for pods bound to it)."""
    if not isinstance(body, dict):
        raise status.bad_request("the body of a TokenRequest must be an object")
    if node:
        _restrict_node(stores, namespace, name, body, node)
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if kind and kind != "TokenRequest":
        raise status.bad_request(f"the kind in the data ({kind}) does not match the expected "
                                 "kind (TokenRequest)")
    if api_version and api_version != f"{TOKEN_GROUP}/{TOKEN_VERSION}":
        raise status.bad_request(f"the API version in the data ({api_version}) does not match "
                                 f"the expected API version ({TOKEN_GROUP}/{TOKEN_VERSION})")
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    for field, here, what in (("name", name, "name"), ("namespace", namespace, "namespace")):
        if meta.get(field) and meta[field] != here:
            raise _token_request_invalid(name, [status.invalid_value(
                f"metadata.{field}", meta[field],
                f"must match the service account {what} if specified")])
    account = stores["serviceaccounts"].get(namespace, name)  # 404 as kube
    if meta.get("uid") and meta["uid"] != account["metadata"]["uid"]:
        raise status.conflict("TokenRequest", name, f"the UID in the token request "
                              f"({meta['uid']}) does not match the UID of the service account "
                              f"({account['metadata']['uid']})", TOKEN_GROUP)
    spec = copy.deepcopy(body.get("spec")) if isinstance(body.get("spec"), dict) else {}
    spec.setdefault("expirationSeconds", DEFAULT_TOKEN_SECONDS)
    if not spec.get("audiences"):
        spec["audiences"] = list(issuer.api_audiences)
    now = time.time()
    causes = _token_spec_errors(spec)
    if causes:
        raise _token_request_invalid("", causes)
    pod = node = secret = None
    ref = spec.get("boundObjectRef")
    if ref:
        pod, node, secret = _bound_refs(stores, namespace, name, ref)
    token, issued = issuer.issue(namespace, Ref(name, account["metadata"]["uid"]),
                                 spec["audiences"], int(spec["expirationSeconds"]), pod, node,
                                 secret)
    out_meta = {"name": name, "namespace": namespace, "uid": account["metadata"]["uid"],
                "creationTimestamp": timefmt.rfc3339(now)}
    return {"kind": "TokenRequest", "apiVersion": f"{TOKEN_GROUP}/{TOKEN_VERSION}",
            "metadata": out_meta, "spec": spec,
            "status": {"token": token, "expirationTimestamp": timefmt.rfc3339(
                issued + int(spec["expirationSeconds"]))}}


def _restrict_node(stores: dict, namespace: str, name: str, body: dict, node: str) -> None:
    """kube's NodeRestriction admission of a kubelet's TokenRequest: bound to a pod, by uid,
    that is scheduled on that node."""
    def forbidden(why: str) -> ApiError:
        return ApiError(403, "Forbidden", f'serviceaccounts "{name}" is forbidden: {why}',
                        kind="serviceaccounts", name=name)
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    ref = spec.get("boundObjectRef") if isinstance(spec.get("boundObjectRef"), dict) else {}
    if ref.get("apiVersion") != "v1" or ref.get("kind") != "Pod" or not ref.get("name"):
        raise forbidden("node requested token not bound to a pod")
    if not ref.get("uid"):
        raise forbidden("node requested token with a pod binding without a uid")
    pod = stores["pods"].get(namespace, str(ref["name"]))  # 404 as kube
    if pod["metadata"]["uid"] != ref["uid"]:
        raise forbidden(f"the UID in the bound object reference ({ref['uid']}) does not match "
                        "the UID in record. The object might have been deleted and then "
                        "recreated")
    if (pod.get("spec") or {}).get("nodeName") != node:
        raise forbidden("node requested token bound to a pod scheduled on a different node")


def _token_spec_errors(spec: dict) -> list[dict]:
    errors = []
    audiences = spec.get("audiences")
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        errors.append(status.invalid_value("spec.audiences", audiences,
                                           "must be a list of strings"))
    seconds = spec.get("expirationSeconds")
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        errors.append(status.invalid_value("spec.expirationSeconds", seconds,
                                           "must be an integer"))
    elif seconds < MIN_TOKEN_SECONDS:
        errors.append(status.invalid_value("spec.expirationSeconds", seconds,
                                           "may not specify a duration less than 10 minutes"))
    elif seconds > MAX_TOKEN_SECONDS:
        errors.append(status.invalid_value("spec.expirationSeconds", seconds,
                                           "may not specify a duration larger than 2^32 "
                                           "seconds"))
    ref = spec.get("boundObjectRef")
    if ref is not None and not isinstance(ref, dict):
        errors.append(status.invalid_value("spec.boundObjectRef", ref, "must be an object"))
    return errors


def _bound_refs(stores: dict, namespace: str, account: str, ref: dict
                ) -> tuple[Ref | None, Ref | None, Ref | None]:
    kind, api_version = ref.get("kind", ""), ref.get("apiVersion", "")
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    name = str(ref.get("name") or "")
    pod = node = secret = None
    if group == "" and kind == "Pod":
        obj = stores["pods"].get(namespace, name)
        if (obj.get("spec") or {}).get("serviceAccountName") != account:
            raise status.bad_request(f'cannot bind token for serviceaccount "{account}" to pod '
                                     "running with different serviceaccount name.")
        pod = Ref(name, obj["metadata"]["uid"])
        uid = pod.uid
        node_name = (obj.get("spec") or {}).get("nodeName")
        if node_name:
            try:
                node = Ref(node_name, stores["nodes"].get("", node_name)["metadata"]["uid"])
            except ApiError as e:
                if e.code != 404:
                    raise
                node = Ref(node_name, "")  # still says where the pod runs, as kube's
    elif group == "" and kind == "Node":
        obj = stores["nodes"].get("", name)
        node = Ref(name, obj["metadata"]["uid"])
        uid = node.uid
    elif group == "" and kind == "Secret":
        obj = stores["secrets"].get(namespace, name)
        secret = Ref(name, obj["metadata"]["uid"])
        uid = secret.uid
    else:
        version = api_version.rpartition("/")[2] if api_version else ""
        raise status.bad_request(f"cannot bind token to object of type {group}/{version}, "
                                 f"Kind={kind}")
    if ref.get("uid") and ref["uid"] != uid:
        raise status.conflict(kind, name, f"the UID in the bound object reference "
                              f"({ref['uid']}) does not match the UID in record. The object "
                              "might have been deleted and then recreated", group)
    return pod, node, secret


def bound_checker(stores: dict, clock: Callable[[], float] = time.time
                  ) -> Callable[[Claims], str | None]:
    """Whether the objects a token names still exist with the same uid, as kube's
    serviceaccount validator (the token's own signature and times are checked already)."""
    def gone(resource: str, namespace: str, ref: Ref, what: str) -> str | None:
        """Why the object is no longer the one the token names; None when it still is."""
        try:
            obj = stores[resource].get(namespace, ref.name)
        except ApiError as e:
            if e.code == 404:
                return f"{what} has been deleted"
            raise
        uid = obj["metadata"].get("uid")
        if ref.uid and uid != ref.uid:
            return f"{what} uid ({uid}) does not match the claim ({ref.uid})"
        deleted = obj["metadata"].get("deletionTimestamp")
        # a pod keeps its token for a minute of its graceful deletion, as kube's validator
        leeway = DELETED_POD_GRACE if resource == "pods" else 0
        if deleted and timefmt.parse(deleted) < clock() - leeway:
            return f"{what} has been deleted"
        return None

    def check(claims: Claims) -> str | None:
        ns = claims.namespace
        checks = [("serviceaccounts", ns, claims.service_account,
                   f"service account {ns}/{claims.service_account.name}")]
        if claims.pod is not None:
            checks.append(("pods", ns, claims.pod, f"pod {ns}/{claims.pod.name}"))
        if claims.secret is not None:
            checks.append(("secrets", ns, claims.secret, f"secret {ns}/{claims.secret.name}"))
        if claims.node is not None and claims.pod is None:  # a pod's node is informative
            checks.append(("nodes", "", claims.node, f"node {claims.node.name}"))
        why = next((why for c in checks if (why := gone(*c))), None)
        if why is None and claims.legacy_token:
            why = _secret_token_mismatch(stores["secrets"].get(ns, claims.secret.name), claims)
        return why
    return check


def _secret_token_mismatch(secret: dict, claims: Claims) -> str | None:
    """Why a Secret no longer vouches for its legacy token (kube's legacy validator)."""
    annotations = secret["metadata"].get("annotations") or {}
    if secret.get("type") != TOKEN_SECRET_TYPE or \
            annotations.get(SA_NAME_ANNOTATION) != claims.service_account.name:
        return f"referenced secret {claims.namespace}/{claims.secret.name} is not a token of " \
               f"service account {claims.service_account.name}"
    try:
        held = base64.b64decode((secret.get("data") or {}).get("token", "")).decode()
    except (ValueError, UnicodeDecodeError):
        held = ""
    if held != claims.legacy_token:
        return "token does not match server's copy"
    return None


def populate_token_secret(stores: dict, issuer: TokenIssuer, secret: dict, ca_pem: str) -> None:
    """What kube's token controller does for a kubernetes.io/service-account-token Secret that
    names an existing account: its token, ca.crt and namespace, and the account's uid."""
    meta = secret.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    name, namespace = meta.get("name", ""), meta.get("namespace", "")
    account_name = annotations.get(SA_NAME_ANNOTATION)
    if secret.get("type") != TOKEN_SECRET_TYPE or not account_name or \
            (secret.get("data") or {}).get("token") or meta.get("deletionTimestamp"):
        return
    try:
        account = stores["serviceaccounts"].get(namespace, account_name)
    except ApiError as e:
        if e.code == 404:
            return  # it may come later: the account's creation brings the secret back here
        raise
    uid = account["metadata"]["uid"]
    if annotations.get(SA_UID_ANNOTATION, uid) != uid:
        return  # a token of an account that was deleted: it stays empty
    token = issuer.issue_legacy(namespace, Ref(account_name, uid), name)

    def fill(old: dict) -> dict:
        if (old.get("data") or {}).get("token"):
            return old  # filled meanwhile (another server)
        data = dict(old.get("data") or {})
        data.update({key: base64.b64encode(value.encode()).decode() for key, value in
                     (("token", token), ("ca.crt", ca_pem), ("namespace", namespace))})
        old["data"] = data
        old["metadata"].setdefault("annotations", {})[SA_UID_ANNOTATION] = uid
        return old
    try:
        stores["secrets"].guaranteed_update(namespace, name, fill)
    except ApiError as e:
        if e.code != 404:
            raise


# -- admission -----------------------------------------------------------------------------------

def _not_found_forbidden(pod_name: str, namespace: str, account: str) -> ApiError:
    return ApiError(403, "Forbidden", f'pods "{pod_name}" is forbidden: error looking up '
                    f'service account {namespace}/{account}: serviceaccount "{account}" not '
                    "found", kind="pods", name=pod_name)


def admit_pod(pod: dict, namespace: str, accounts, sleep: Callable[[float], None] = time.sleep
              ) -> None:
    """The ServiceAccount admission on pod create: serviceAccountName (default `default`),
    the account must exist, its imagePullSecrets, and the kube-api-access volume."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    if MIRROR_POD_ANNOTATION in (meta.get("annotations") or {}):
        # left as it is: the kubelet deletes a mirror pod whose spec differs from its file
        why = _mirror_pod_refusal(spec)
        if why:
            raise ApiError(403, "Forbidden", f'pods "{meta.get("name", "")}" is forbidden: '
                           f"{why}", kind="pods", name=meta.get("name", ""))
        return
    name = spec.get("serviceAccountName") or spec.get("serviceAccount") or DEFAULT_NAME
    if not isinstance(name, str):
        return  # validation names the field
    account = _lookup(accounts, namespace, name, sleep)
    if account is None:
        raise _not_found_forbidden(meta.get("name") or meta.get("generateName", ""), namespace,
                                   name)
    spec["serviceAccountName"] = spec["serviceAccount"] = name
    if not spec.get("imagePullSecrets") and account.get("imagePullSecrets"):
        spec["imagePullSecrets"] = copy.deepcopy(account["imagePullSecrets"])
    automount = spec.get("automountServiceAccountToken")
    if automount is None:
        automount = account.get("automountServiceAccountToken")
    if automount is False:
        return
    _mount_token(spec)


class AdmittingPodStrategy(PodStrategy):
    """The pod strategy of a server that runs the ServiceAccount admission on create. The
    namespace is checked first, as kube's NamespaceLifecycle admission comes before it."""

    def __init__(self, accounts, namespace_check: Callable[[str, bool], None] | None = None):
        self._accounts = accounts
        self._namespace_check = namespace_check

    def prepare_create(self, obj: dict) -> None:
        namespace = (obj.get("metadata") or {}).get("namespace", "")
        if self._namespace_check is not None:
            self._namespace_check(namespace, True)
        super().prepare_create(obj)
        admit_pod(obj, namespace, self._accounts)


def _mirror_pod_refusal(spec: dict) -> str:
    """Why a mirror pod may not be created (it may reference neither service accounts nor
    secrets, as kube's admission says); "" when it may."""
    if spec.get("serviceAccountName") or spec.get("serviceAccount"):
        return "a mirror pod may not reference service accounts"
    containers = [c for field in ("initContainers", "containers", "ephemeralContainers")
                  for c in spec.get(field) or [] if isinstance(c, dict)]
    volumes = [v for v in spec.get("volumes") or [] if isinstance(v, dict)]
    sources = [s for v in volumes for s in (v.get("projected") or {}).get("sources") or []
               if isinstance(s, dict)]
    if spec.get("imagePullSecrets") or any("secret" in v for v in volumes) or \
            any("secret" in s for s in sources) or \
            any(((e.get("valueFrom") or {}).get("secretKeyRef") if isinstance(e, dict) else None)
                for c in containers for e in c.get("env") or []) or \
            any(isinstance(e, dict) and e.get("secretRef") for c in containers
                for e in c.get("envFrom") or []):
        return "a mirror pod may not reference secrets"
    if any("serviceAccountToken" in s for s in sources):
        return "a mirror pod may not use ServiceAccountToken volume projections"
    return ""


def _lookup(accounts, namespace: str, name: str, sleep: Callable[[float], None]
            ) -> dict | None:
    attempts = DEFAULT_LOOKUPS if name == DEFAULT_NAME else 1
    for attempt in range(attempts):
        if attempt:
            sleep(0.1 + secrets.randbelow(100) / 1000)
        try:
            # a cached account will do, as kube's admission reads its informer's
            return accounts.get(namespace, name, recent=True)
        except ApiError as e:
            if e.code != 404:
                raise
    return None


def _mount_token(spec: dict) -> None:
    containers = [c for field in ("initContainers", "containers")
                  for c in spec.get(field) or [] if isinstance(c, dict)]
    volumes = spec.get("volumes") if isinstance(spec.get("volumes"), list) else []
    existing = {v.get("name") for v in volumes if isinstance(v, dict)}
    # a container that mounts something of its own at the path keeps it (kube skips it)
    wanting = [c for c in containers
               if not any(isinstance(m, dict) and m.get("mountPath") == MOUNT_PATH
                          for m in c.get("volumeMounts") or [])]
    if not wanting:
        return
    # a volume named like it is taken as it, as kube's admission does
    volume = next((v.get("name") for v in volumes if isinstance(v, dict) and
                   str(v.get("name", "")).startswith(VOLUME_PREFIX)), None)
    if volume is None:
        volume = VOLUME_PREFIX + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))
        while volume in existing:
            volume = VOLUME_PREFIX + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))
        volumes.append(kube_api_access_volume(volume))
        spec["volumes"] = volumes
    for c in wanting:
        mounts = c.get("volumeMounts") if isinstance(c.get("volumeMounts"), list) else []
        mounts.append({"name": volume, "readOnly": True, "mountPath": MOUNT_PATH})
        c["volumeMounts"] = mounts


def kube_api_access_volume(name: str) -> dict:
    return {"name": name, "projected": {"sources": [
        {"serviceAccountToken": {"expirationSeconds": KUBE_API_ACCESS_SECONDS,
                                 "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt",
                                                             "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
            "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}],
        "defaultMode": 420}}


# -- what every namespace holds ------------------------------------------------------------------

def ensure_namespace_defaults(stores: dict, namespace: str, ca_pem: str) -> None:
    """The `default` ServiceAccount and the kube-root-ca.crt ConfigMap (kube's serviceaccounts
    controller and root-ca-cert-publisher): created when missing, the CA put back when it
    differs. A namespace being deleted gets nothing new."""
    try:
        ns = stores["namespaces"].get("", namespace)
    except ApiError as e:
        if e.code == 404:
            return
        raise
    if (ns.get("status") or {}).get("phase") == "Terminating":
        return
    for resource, obj in (
            ("serviceaccounts", {"metadata": {"name": DEFAULT_NAME}}),
            ("configmaps", {"metadata": {"name": ROOT_CA_CONFIGMAP, "annotations": {
                "kubernetes.io/description": "Contains a CA bundle that can be used to verify "
                "the kube-apiserver when using internal endpoints such as the internal service "
                "IP or kubernetes.default.svc. No other usage is guaranteed across "
                "distributions of Kubernetes clusters."}}, "data": {"ca.crt": ca_pem}})):
        try:
            current = stores[resource].get(namespace, obj["metadata"]["name"])
        except ApiError as e:
            if e.code != 404:
                raise
            current = None
        try:
            if current is None:
                stores[resource].create(namespace, obj)
            elif resource == "configmaps" and (current.get("data") or {}).get("ca.crt") != \
                    ca_pem:
                stores[resource].guaranteed_update(
                    namespace, ROOT_CA_CONFIGMAP,
                    lambda old: {**old, "data": {**(old.get("data") or {}), "ca.crt": ca_pem}})
        except ApiError as e:
            if e.code not in (403, 404, 409):  # terminating, gone, or made meanwhile
                raise

