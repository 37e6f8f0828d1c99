"""The REST layer: turns a parsed HTTP request into store calls and a response. Routing of
/api and /apis paths, verbs (get, list, watch, create, update, patch, delete,
deletecollection), content negotiation (JSON, YAML bodies, Table output) and Status errors."""
from __future__ import annotations

import json
import random
import time
from typing import Iterator

import yaml

from kubeapi import (protobuf, protobuf_node, protobuf_services, protobuf_workloads, status,
                     timefmt)
from kubeapi.status import ApiError

from .. import resources
from ..auth import review_protobuf, reviews
from ..auth.authn import Authenticator
from ..auth.authz import authorize, node_of, permitting_path, restrict_to_own_object
from ..metrics import rest as metrics_rest
from ..nodeproxy.logs import LogProxy
from ..nodeproxy.streams import SUBRESOURCES as STREAM_SUBRESOURCES, StreamProxy
from ..openapi import documents as openapi
from ..patch.apply import apply, check_target
from ..patch.field_manager import manager_for
from ..patch.json_merge import merge_patch
from ..patch.json_patch import json_patch
from ..patch.strategic_merge import strategic_merge
from ..pki.serviceaccount_tokens import TokenIssuer, openid_configuration
from ..registry import eviction, propagation
from ..registry.binding import bind_pod
from ..registry.namespace_finalizer import finalize_namespace
from ..registry.resource_type import ResourceType
from ..registry.serviceaccounts import create_token
from ..registry.store import Store
from ..registry.workloads import scale
from ..request import Request, Response, json_response, no_route, wants_table
from ..storage import Compacted
from ..fanout import BOOKMARK_SECONDS, LIVENESS_SECONDS, FanOut, LiveStream, Sink
from ..watch import WatchHub, filtered, stream
from . import discovery
from .tables.table import to_table

# Watches without timeoutSeconds end after a random 30-60 minutes, as kube-apiserver's do.
MIN_WATCH_TIMEOUT = 1800


def status_success(code: int = 200, details: dict | None = None) -> dict:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "code": code}
    if details:
        body["details"] = details
    return body


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


def parse_body(req: Request) -> object:
    """JSON or YAML by Content-Type; a 400 Status for anything unparsable or too deep."""
    ctype = req.headers.get("content-type", "application/json").split(";")[0].strip()
    if ctype == "application/vnd.kubernetes.protobuf":
        try:
            obj = protobuf.decode(req.body) or review_protobuf.decode(req.body) or \
                protobuf_workloads.decode(req.body) or \
                protobuf_services.decode(req.body) or protobuf_node.decode(req.body)
        except (protobuf.ProtobufError, UnicodeDecodeError) as e:
            raise status.bad_request(f"the protobuf request body is not valid: {e}")
        if obj is not None:
            return obj
    if ctype not in ("application/json", "application/yaml", "application/apply-patch+yaml",
                     "text/yaml", "application/x-yaml", ""):
        # client-go retries with JSON after a 415 on protobuf or CBOR.
        raise ApiError(415, "UnsupportedMediaType",
                       f'the body of the request was in an unknown format - accepted media '
                       f'types include: application/json, application/yaml (got "{ctype}")')
    text = req.body
    if not text.strip():
        raise status.bad_request("the request body is empty")
    try:
        if ctype.endswith("yaml"):
            return yaml.safe_load(text)
        return json.loads(text)
    except RecursionError:
        raise status.bad_request("the request body is nested too deeply")
    except yaml.YAMLError as e:
        raise status.bad_request(f"error converting YAML to JSON: {e}")
    except (ValueError, UnicodeDecodeError) as e:
        raise status.bad_request(f"the request body is not valid JSON: {e}")


def _manager(req: Request, options_kind: str, apply: bool = False) -> str:
    return manager_for(req.query, req.headers.get("user-agent", ""), options_kind,
                       apply=apply)


class Api:
    def __init__(self, stores: dict[str, Store], hub: WatchHub, authenticator: Authenticator,
                 log_proxy: LogProxy, server_address: str):
        self.stores = stores
        self.hub = hub
        self.fanout = FanOut(hub)
        self.authenticator = authenticator
        self.log_proxy = log_proxy
        self.metrics: metrics_rest.MetricsApi | None = None   # set by the server
        self.token_issuer: TokenIssuer | None = None  # set by the server
        self.stream_proxy = StreamProxy(stores["pods"], log_proxy)
        self.reviews = reviews.Reviews(authenticator)
        self.server_address = server_address

    # entry point

    def handle(self, req: Request) -> Response:
        try:
            return self._handle(req)
        except ApiError as e:
            return json_response(e.code, e.status())
        except Compacted as e:
            err = status.gone(f"too old resource version: {e.requested} ({e.compacted})")
            return json_response(410, err.status())

    def _handle(self, req: Request) -> Response:
        parts = [p for p in req.path.split("/") if p]
        if not parts:
            return json_response(200, {"paths": ["/api", "/api/v1", "/apis", "/openapi/v2",
                                                 "/openapi/v3", "/version", "/healthz"]})
        head = parts[0]
        if head in ("healthz", "livez", "readyz") and len(parts) == 1:
            return Response(200, b"ok", "text/plain; charset=utf-8")
        if head == "version" and len(parts) == 1:
            return json_response(200, discovery.version())
        if head == "openapi":
            return self._openapi(parts[1:], req.headers.get("accept", ""))
        if parts in ([".well-known", "openid-configuration"], ["openid", "v1", "jwks"]):
            return self._issuer_discovery(req, parts[0] == "openid")
        if head == "api":
            if len(parts) == 1:
                return json_response(200, discovery.api_versions(self.server_address))
            return self._group_version("", parts[1], parts[2:], req)
        if head == "apis":
            if len(parts) == 1:
                return json_response(200, discovery.api_group_list())
            if len(parts) == 2:
                doc = discovery.api_group(parts[1])
                if doc is None:
                    raise no_route()
                return json_response(200, doc)
            if parts[1] == metrics_rest.GROUP and self.metrics is not None:
                return json_response(*self.metrics.handle(parts[2:], req, wants_table(req)))
            return self._group_version(parts[1], parts[2], parts[3:], req)
        raise no_route()

    def _issuer_discovery(self, req: Request, jwks: bool) -> Response:
        """The OIDC discovery documents of the service account issuer, as kube-apiserver serves
        them (to group system:serviceaccounts, and whom the policy lets in)."""
        if self.token_issuer is None:
            raise no_route()
        if permitting_path(req.user, "get", req.path) is None:
            raise ApiError(403, "Forbidden", f'forbidden: User "{req.user.name}" cannot get '
                           f'path "{req.path}"')
        if jwks:
            body = json.dumps(self.token_issuer.jwks(), separators=(",", ":")).encode()
            return Response(200, body, "application/jwk-set+json")
        keys = self.token_issuer.jwks()["keys"]
        doc = openid_configuration(self.token_issuer.issuer,
                                   f"https://{self.server_address}/openid/v1/jwks",
                                   [k["alg"] for k in keys])
        return Response(200, json.dumps(doc, separators=(",", ":")).encode())

    def _openapi(self, rest: list[str], accept: str) -> Response:
        if rest == ["v2"]:
            if openapi.V2_PROTOBUF_ASKED in accept:  # client-go's discovery asks for this one
                return Response(200, openapi.v2_protobuf(), openapi.V2_PROTOBUF)
            return Response(200, openapi.v2_bytes())
        if rest == ["v3"]:
            return json_response(200, openapi.v3_root())
        if len(rest) >= 3 and rest[0] == "v3":
            if rest[1] == "api" and len(rest) == 3:
                doc = openapi.v3_bytes("", rest[2])
            elif rest[1] == "apis" and len(rest) == 4:
                doc = openapi.v3_bytes(rest[2], rest[3])
            else:
                doc = None
            if doc is not None:
                return Response(200, doc)
        raise no_route()

    def _group_version(self, group: str, version: str, rest: list[str],
                       req: Request) -> Response:
        if not rest:
            doc = discovery.api_resource_list(group, version)
            if doc is None:
                raise no_route()
            return json_response(200, doc)
        if reviews.serves(group, version):
            answer = self.reviews.handle(group, version, rest, req.method, req.user,
                                         lambda: parse_body(req))
            if answer is None:
                raise no_route()
            return json_response(*answer)
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        rtype = resources.find(group, version, rest[0])
        if rtype is None or len(rest) > 3:
            raise no_route()
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if sub and sub not in rtype.subresources:
            raise no_route()
        if namespace and not rtype.namespaced:
            raise no_route()
        if name and rtype.namespaced and not namespace:
            raise no_route()
        verb = self._verb(req, name)
        authorize(req.user, verb, rtype.plural, sub, namespace, group)
        restrict_to_own_object(req.user, verb, rtype.plural, group, name, lambda: parse_body(req))
        store = self.stores[rtype.plural]
        if sub in STREAM_SUBRESOURCES:
            if verb != "create":
                # A WebSocket handshake is a GET: kube-apiserver (since 1.30) also requires
                # create, the verb of the SPDY POST, so that both grant the same access.
                authorize(req.user, "create", rtype.plural, sub, namespace, group)
            proxied = self.stream_proxy.connect(sub, namespace, name, req)
            return Response(proxied.code, proxied.body, proxied.content_type,
                            upgrade=proxied.take_over)
        if sub == "log":
            return self._log(namespace, name, req)
        if sub == "token":
            if req.method != "POST":
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method "
                               "on the requested resource")
            return json_response(201, create_token(self.stores, self.token_issuer, namespace,
                                                   name, parse_body(req), node_of(req.user)))
        if sub == "binding":
            if req.method != "POST":
                raise ApiError(405, "MethodNotAllowed", "only POST is allowed on pods/binding")
            return self._bind(store, namespace, name, parse_body(req))
        if sub and verb not in rtype.subresources[sub]:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on "
                           "the requested resource")
        if sub == "scale":
            return self._scale(store, namespace, name, verb, req)
        if sub == "eviction":
            return json_response(*eviction.evict(
                self.stores, namespace, name, parse_body(req),
                dry_run=req.query.get("dryRun") == "All"))
        response = self._dispatch(verb, store, rtype, namespace, name, sub, req)
        if rtype.deprecation:
            response.warnings.append(rtype.deprecation)
        return response

    @staticmethod
    def _verb(req: Request, name: str) -> str:
        method = req.method
        if method == "GET":
            if _truthy(req.query.get("watch")):
                return "watch"
            return "get" if name else "list"
        if method == "POST":
            return "create"
        if method == "PUT":
            return "update"
        if method == "PATCH":
            return "patch"
        if method == "DELETE":
            return "delete" if name else "deletecollection"
        raise ApiError(405, "MethodNotAllowed", f"method {method} is not allowed")

    def _dispatch(self, verb: str, store: Store, rtype: ResourceType, ns: str, name: str,
                  sub: str, req: Request) -> Response:
        q = req.query
        dry_run = q.get("dryRun") == "All"
        if verb == "watch":
            return self._watch(store, rtype, ns, name, req)
        if verb == "get":
            return self._object(req, rtype, store.get(ns, name))
        if verb == "list":
            return self._list(store, rtype, ns, req)
        if verb == "create":
            if name:
                raise ApiError(405, "MethodNotAllowed", "POST is not allowed on a named object")
            obj = store.create(ns, parse_body(req), dry_run=dry_run,
                               manager=_manager(req, "CreateOptions"))
            return self._object(req, rtype, obj, 201)
        if verb == "update":
            body = parse_body(req)
            return self._object(req, rtype, store.update(ns, name, body, subresource=sub,
                                                         dry_run=dry_run,
                                                         manager=_manager(req, "UpdateOptions")))
        if verb == "patch":
            return self._patch(store, rtype, ns, name, sub, req, dry_run)
        if verb == "delete":
            options = parse_body(req) if req.body.strip() else {}
            if not isinstance(options, dict):
                raise status.bad_request("DeleteOptions must be an object")
            if "gracePeriodSeconds" in q:
                options["gracePeriodSeconds"] = q["gracePeriodSeconds"]
            options.update(propagation.query_options(q))
            if rtype.plural == "namespaces":
                return self._object(req, rtype, self._delete_namespace(name, dry_run))
            return self._object(req, rtype, store.delete(ns, name, options, dry_run=dry_run))
        if verb == "deletecollection":
            listed = store.list(ns, label_selector=q.get("labelSelector", ""),
                                field_selector=q.get("fieldSelector", ""))
            options = {"gracePeriodSeconds": q["gracePeriodSeconds"]} \
                if "gracePeriodSeconds" in q else {}
            options.update(propagation.query_options(q))
            gone = []
            for obj in listed.items:
                meta = obj["metadata"]
                try:
                    gone.append(store.delete(meta.get("namespace", ""), meta["name"], options,
                                             dry_run=dry_run))
                except ApiError as e:
                    if e.code != 404:
                        raise
            return json_response(200, self._list_body(rtype, gone, str(listed.revision), ""))
        raise no_route()

    # reads

    def _object(self, req: Request, rtype: ResourceType, obj: dict, code: int = 200) -> Response:
        if wants_table(req):
            table = to_table(rtype.plural, [obj],
                                    resource_version=obj["metadata"].get("resourceVersion", ""),
                                    include_object=req.query.get("includeObject",
                                                                 "PartialObjectMetadata"))
            return json_response(code, table)
        return json_response(code, obj)

    @staticmethod
    def _list_body(rtype: ResourceType, items: list[dict], rv: str, token: str) -> dict:
        meta = {"resourceVersion": rv}
        if token:
            meta["continue"] = token
        return {"kind": rtype.kind + "List", "apiVersion": rtype.api_version, "metadata": meta,
                "items": items}

    def _list(self, store: Store, rtype: ResourceType, ns: str, req: Request) -> Response:
        q = req.query
        try:
            limit = int(q.get("limit") or 0)
        except ValueError:
            raise status.bad_request("limit must be an integer")
        table = wants_table(req)
        result = (store.list if table else store.list_json)(
            ns, label_selector=q.get("labelSelector", ""),
            field_selector=q.get("fieldSelector", ""), limit=max(limit, 0),
            continue_token=q.get("continue", ""), resource_version=q.get("resourceVersion", ""),
            resource_version_match=q.get("resourceVersionMatch", ""))
        if table:
            return json_response(200, to_table(
                rtype.plural, result.items, resource_version=str(result.revision),
                continue_token=result.continue_token,
                include_object=q.get("includeObject", "PartialObjectMetadata")))
        # The envelope (items last, empty) with the items' JSON joined in as they are.
        head = json.dumps(self._list_body(rtype, [], str(result.revision),
                                          result.continue_token), separators=(",", ":"))
        return Response(200, b"".join((head[:-len("]}")].encode(), b",".join(result.items),
                                       b"]}")))

    # writes

    def _patch(self, store: Store, rtype: ResourceType, ns: str, name: str, sub: str,
               req: Request, dry_run: bool) -> Response:
        ctype = req.headers.get("content-type", "").split(";")[0].strip()
        manager = _manager(req, "PatchOptions", apply=ctype == "application/apply-patch+yaml")
        if ctype == "application/apply-patch+yaml":
            who = store.field_request(manager, sub)
            force = _truthy(req.query.get("force"))
            req.headers["content-type"] = "application/yaml"
            config = parse_body(req)
            if not isinstance(config, dict):
                raise status.bad_request("the applied configuration must be an object")
            check_target(config, name, ns)
            if store.storage.get(rtype.key(ns, name)) is None and not sub:
                created = apply(None, config, who, timefmt.rfc3339())
                created.setdefault("metadata", {})["name"] = name
                return self._object(req, rtype, store.create(ns, created, dry_run=dry_run), 201)
            return self._object(req, rtype, store.guaranteed_update(
                ns, name, lambda old: apply(old, config, who, timefmt.rfc3339(), force=force),
                subresource=sub, dry_run=dry_run))
        if ctype == "application/json-patch+json":
            req.headers["content-type"] = "application/json"
            patch = parse_body(req)
            mutate = lambda old: json_patch(old, patch)  # noqa: E731
        elif ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            req.headers["content-type"] = "application/json"
            patch = parse_body(req)
            if not isinstance(patch, dict):
                raise status.bad_request("a merge patch must be a JSON object")
            fn = merge_patch if ctype == "application/merge-patch+json" else strategic_merge
            mutate = lambda old: fn(old, patch)  # noqa: E731
        else:
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted media "
                           f"types include: application/json-patch+json, application/merge-patch"
                           f"+json, application/apply-patch+yaml, application/strategic-merge-"
                           f"patch+json (got {ctype!r})")
        return self._object(req, rtype, store.guaranteed_update(
            ns, name, mutate, subresource=sub, dry_run=dry_run, manager=manager))

    def _scale(self, store: Store, ns: str, name: str, verb: str, req: Request) -> Response:
        """deployments|replicasets|statefulsets/scale as autoscaling/v1 Scale."""
        if verb == "get":
            return json_response(200, scale.to_scale(store.get(ns, name)))
        dry_run = req.query.get("dryRun") == "All"
        if verb == "update":
            body = parse_body(req)
            mutate = lambda old: scale.from_scale(old, body)  # noqa: E731
            manager = _manager(req, "UpdateOptions")
        else:
            ctype = req.headers.get("content-type", "").split(";")[0].strip()
            fn = {"application/json-patch+json": json_patch,
                  "application/merge-patch+json": merge_patch,
                  "application/strategic-merge-patch+json": strategic_merge}.get(ctype)
            if fn is None:
                raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an "
                               f"unknown format - accepted media types include: application/"
                               f"json-patch+json, application/merge-patch+json, application/"
                               f"strategic-merge-patch+json (got {ctype!r})")
            req.headers["content-type"] = "application/json"
            patch = parse_body(req)
            mutate = lambda old: scale.from_scale(  # noqa: E731
                old, fn(scale.to_scale(old), patch))
            manager = _manager(req, "PatchOptions")
        obj = store.guaranteed_update(ns, name, mutate, dry_run=dry_run, manager=manager)
        return json_response(200, scale.to_scale(obj))

    def _bind(self, pods: Store, ns: str, name: str, body: object) -> Response:
        if not isinstance(body, dict) or not isinstance(body.get("target"), dict) or \
                not body["target"].get("name"):
            raise status.invalid("Binding", name, [status.required("target.name")])
        if (body.get("metadata") or {}).get("name", name) != name:
            raise status.bad_request("the name of the binding does not match the pod name")
        node = body["target"]["name"]
        bind_pod(pods, ns, name, node)
        return json_response(201, status_success(201))

    def _delete_namespace(self, name: str, dry_run: bool) -> dict:
        namespaces = self.stores["namespaces"]
        ns = namespaces.get("", name)
        if dry_run:
            return ns
        if ns["status"].get("phase") != "Terminating":
            def terminate(obj: dict) -> dict:
                obj["metadata"].setdefault("deletionTimestamp", timefmt.rfc3339())
                obj["status"] = {**obj.get("status", {}), "phase": "Terminating"}
                return obj
            namespaces.guaranteed_update("", name, terminate, subresource="status")
        return finalize_namespace(self.stores, name) or namespaces.get("", name)

    # streams

    def _log(self, ns: str, name: str, req: Request) -> Response:
        code, ctype, chunks = self.log_proxy.open(ns, name, req.query)
        return Response(code, b"", ctype, chunks)

    def _watch(self, store: Store, rtype: ResourceType, ns: str, name: str,
               req: Request) -> Response:
        q = req.query
        field_selector = q.get("fieldSelector", "")
        if name:  # a watch on one object is a watch with metadata.name=<name>
            field_selector = ",".join(f for f in (field_selector, f"metadata.name={name}") if f)
        matches = store.matcher(q.get("labelSelector", ""), field_selector)
        rv = q.get("resourceVersion", "")
        send_initial = _truthy(q.get("sendInitialEvents"))
        bookmarks = _truthy(q.get("allowWatchBookmarks"))
        try:
            timeout = int(q.get("timeoutSeconds") or 0)
        except ValueError:
            raise status.bad_request("timeoutSeconds must be an integer")
        if send_initial and not bookmarks:
            raise status.invalid("ListOptions", "", [status.forbidden_field(
                "allowWatchBookmarks", "allowWatchBookmarks required when sendInitialEvents "
                "is true")])
        timeout = timeout or random.randint(MIN_WATCH_TIMEOUT, 2 * MIN_WATCH_TIMEOUT)
        deadline = time.monotonic() + timeout
        prefix = rtype.key_prefix(ns if rtype.namespaced else "")
        table = wants_table(req)
        watcher = self.hub.open(prefix)  # opened first so that nothing falls in a gap
        initial: list = []   # objects for Table output, else their JSON
        try:
            if send_initial or rv in ("", "0"):
                listed = (store.list if table else store.list_json)(
                    ns, label_selector=q.get("labelSelector", ""),
                    field_selector=field_selector)
                after = listed.revision
                initial = listed.items
                backlog = []
            else:
                after = store.parse_resource_version(rv)
                backlog = self.hub.replay(prefix, after)
        except Compacted as e:
            watcher.close()
            error = status.gone(f"too old resource version: {e.requested} ({e.compacted})")
            line = json.dumps({"type": "ERROR", "object": error.status()}).encode() + b"\n"
            return Response(200, b"", "application/json", iter([line]))
        except BaseException:
            watcher.close()
            raise
        include = q.get("includeObject", "PartialObjectMetadata")

        def encode(kind: str, obj: dict) -> bytes:
            if table and kind != "BOOKMARK":
                obj = to_table(rtype.plural, [obj], include_object=include)
            return json.dumps({"type": kind, "object": obj},
                              separators=(",", ":")).encode() + b"\n"

        def bookmark(rev: int, end_of_initial: bool = False) -> bytes:
            meta: dict = {"resourceVersion": str(rev)}
            if end_of_initial:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return encode("BOOKMARK", {"kind": rtype.kind, "apiVersion": rtype.api_version,
                                       "metadata": meta})

        if not table:
            lines = [b'{"type":"ADDED","object":%s}\n' % item for item in initial]
            if send_initial:
                lines.append(bookmark(after, True))
            sent = after
            for ev in backlog:
                if ev.rev > sent:
                    sent = ev.rev
                    kind = filtered(ev, matches)
                    if kind:
                        lines.append(ev.encoded(kind))
            sink = Sink(watcher, sent, matches, deadline, bookmark if bookmarks else None)
            return Response(200, b"", "application/json",
                            LiveStream([b"".join(lines)], self.fanout, sink))

        def chunks() -> Iterator[bytes]:
            try:
                yield b"".join(encode("ADDED", obj) for obj in initial)
                if send_initial:
                    yield bookmark(after, True)
                last_bookmark = time.monotonic()
                for item in stream(self.hub, watcher, backlog, after, matches,
                                   LIVENESS_SECONDS, lambda: time.monotonic() >= deadline):
                    if isinstance(item, int):
                        if req.peer_closed():
                            return
                        if bookmarks and time.monotonic() - last_bookmark >= BOOKMARK_SECONDS:
                            last_bookmark = time.monotonic()
                            yield bookmark(item)
                        continue
                    yield b"".join(encode(kind, ev.obj) for kind, ev in item)
            finally:
                watcher.close()
        return Response(200, b"", "application/json", chunks())

