"""pods/log: proxied to the kubelet of the pod's node (kubelet_client.py), as kube-apiserver
does; the request is the kubelet's
GET /containerLogs/{namespace}/{pod}/{container}?follow=&previous=&tailLines=..."""
from __future__ import annotations

import http.client
import urllib.parse
from typing import Iterator

from kubeapi import status
from kubeapi.status import ApiError

from ..registry.store import Store
from .kubelet_client import client_tls, kubelet_endpoint

CONNECT_TIMEOUT = 10.0
# Passed through to the kubelet unchanged (PodLogOptions).
LOG_OPTIONS = ("follow", "previous", "tailLines", "timestamps", "sinceSeconds", "sinceTime",
               "limitBytes", "insecureSkipTLSVerifyBackend")


class LogProxy:
    def __init__(self, pods: Store, nodes: Store, client_cert: str, client_key: str):
        self._pods = pods
        self._nodes = nodes
        self.tls = client_tls(client_cert, client_key)

    def container(self, pod: dict, requested: str) -> str:
        name = pod["metadata"]["name"]
        spec = pod.get("spec") or {}
        names = [c.get("name") for c in (spec.get("containers") or [])]
        all_names = [c.get("name") for c in (spec.get("initContainers") or [])] + names + \
            [c.get("name") for c in (spec.get("ephemeralContainers") or [])]
        if not requested:
            if len(names) == 1:
                return names[0]
            if not names:
                raise status.bad_request(f"a container name must be specified for pod {name}")
            raise status.bad_request(f"a container name must be specified for pod {name}, "
                                     f"choose one of: [{' '.join(all_names)}]")
        if requested not in all_names:
            raise status.bad_request(f"container {requested} is not valid for pod {name}")
        return requested

    def kubelet_address(self, node_name: str) -> tuple[str, int]:
        endpoint = kubelet_endpoint(self._nodes.get("", node_name))
        if endpoint is None:
            raise ApiError(503, "ServiceUnavailable", f'node "{node_name}" has no address in '
                           "status.addresses to reach its kubelet")
        return endpoint

    def open(self, namespace: str, name: str,
             query: dict[str, str]) -> tuple[int, str, Iterator[bytes]]:
        """Returns (HTTP code, content type, body chunks) streamed from the kubelet."""
        pod = self._pods.get(namespace, name)
        container = self.container(pod, query.get("container", ""))
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            raise status.bad_request(f"pod {name} does not have a host assigned")
        host, port = self.kubelet_address(node_name)
        params = urllib.parse.urlencode({k: query[k] for k in LOG_OPTIONS
                                         if k in query and k != "insecureSkipTLSVerifyBackend"})
        path = "/containerLogs/" + "/".join(urllib.parse.quote(p, safe="")
                                             for p in (namespace, name, container))
        if params:
            path += "?" + params
        conn = http.client.HTTPSConnection(host, port, timeout=CONNECT_TIMEOUT,
                                           context=self.tls)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise ApiError(503, "ServiceUnavailable", f'unable to reach the kubelet of node '
                           f'"{node_name}" at {host}:{port}: {e}')
        if resp.status != 200:
            detail = resp.read(4096).decode(errors="replace").strip()
            conn.close()
            reason = {400: "BadRequest", 403: "Forbidden", 404: "NotFound"}.get(resp.status)
            raise ApiError(resp.status if reason else 502, reason or "InternalError",
                           f'the kubelet of node "{node_name}" answered {resp.status}: {detail}')
        if conn.sock is not None:
            conn.sock.settimeout(None)  # follow=true streams for as long as the pod logs

        def chunks() -> Iterator[bytes]:
            try:
                while True:
                    data = resp.read1(65536)
                    if not data:
                        return
                    yield data
            except (OSError, http.client.HTTPException):
                return
            finally:
                conn.close()
        return 200, resp.getheader("Content-Type", "text/plain"), chunks()
