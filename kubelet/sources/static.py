"""Static pods: the manifests in --pod-manifest-path (staticPodPath), a directory of *.yaml, *.yml
and *.json files (one pod each; names starting with '.' are ignored) or one file, read again
every fileCheckFrequency and handed to the kubelet as a complete set, as the API source hands
its lists. As the kubelet's file source does, each pod gets its UID from a hash of its content,
the node and the file (a changed manifest is a new pod: the old one stops, the new one starts),
its name suffixed with -<nodeName>, namespace default, spec.nodeName, the config.source, hash
and seen annotations, and the API's defaults and validation (a bad manifest is logged in one
line and skipped)."""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import threading

import yaml

from kubeapi import timefmt
from kubeapi.pod_defaulting import default_pod
from kubeapi.pod_validation import validate_pod_spec
from kubelet import pods
from kubelet.pods import Pod
from kubelet.sources.api import PodHandler

log = logging.getLogger("kubelet.static")

SOURCE = "file"
EXTENSIONS = (".yaml", ".yml", ".json")


class ManifestError(ValueError):
    pass


def _read(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            raw = yaml.safe_load(f)
    except OSError as e:
        raise ManifestError(f"{path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ManifestError(f"{path}: not YAML or JSON: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict) or raw.get("kind") != "Pod" or \
            raw.get("apiVersion", "v1") != "v1":
        raise ManifestError(f"{path}: must hold one v1 Pod")
    if not isinstance(raw.get("metadata"), dict) or not raw["metadata"].get("name"):
        raise ManifestError(f"{path}: metadata.name: Required value")
    return raw


def load_manifest(path: str, node_name: str) -> Pod:
    """The pod of one manifest file, as the file source makes it."""
    obj = copy.deepcopy(_read(path))
    obj.pop("status", None)
    default_pod(obj)
    errors = validate_pod_spec(obj.get("spec"))
    if errors:
        first = errors[0]
        raise ManifestError(f"{path}: {first['field']}: {first['message']}")
    meta = obj["metadata"]
    meta["namespace"] = meta.get("namespace") or "default"
    if not meta.get("uid"):
        digest = hashlib.md5(json.dumps(obj, sort_keys=True).encode())
        digest.update(f"host:{node_name}\nfile:{path}".encode())
        meta["uid"] = digest.hexdigest()
    meta["name"] = f"{meta['name']}-{node_name}"
    annotations = meta.setdefault("annotations", {})
    annotations[pods.CONFIG_HASH] = meta["uid"]
    annotations[pods.CONFIG_SOURCE] = SOURCE
    obj["spec"]["nodeName"] = node_name
    obj["status"] = {"phase": "Pending"}
    return Pod(obj)


def manifest_files(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path]
    try:
        names = sorted(os.listdir(path))
    except FileNotFoundError:
        return []
    return [os.path.join(path, n) for n in names
            if not n.startswith(".") and n.endswith(EXTENSIONS) and
            os.path.isfile(os.path.join(path, n))]


class FilePodSource:
    name = SOURCE

    def __init__(self, path: str, node_name: str, handler: PodHandler,
                 check_frequency: float) -> None:
        self.path = path
        self.node_name = node_name
        self.handler = handler
        self.check_frequency = check_frequency
        self.synced = threading.Event()
        self._seen: dict[str, str] = {}     # uid -> when first seen (config.seen)

    def scan(self) -> list[Pod]:
        """The pods of the manifests now; of two with the same name, the first file's."""
        result: list[Pod] = []
        names: dict[str, str] = {}
        for path in manifest_files(self.path):
            try:
                pod = load_manifest(path, self.node_name)
            except ManifestError as e:
                log.warning("could not process manifest file %s", e)
                continue
            key = f"{pod.namespace}/{pod.name}"
            if key in names:
                log.warning("static pod %s in %s is already defined in %s; ignored", key, path,
                            names[key])
                continue
            names[key] = path
            seen = self._seen.setdefault(pod.uid, timefmt.rfc3339())
            # the last touch before the pod leaves its source
            pod.obj["metadata"]["annotations"][pods.CONFIG_SEEN] = seen
            result.append(pod)
        live = {pod.uid for pod in result}
        self._seen = {uid: t for uid, t in self._seen.items() if uid in live}
        return result

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.handler.set_pods(self.name, self.scan())
                self.synced.set()
            except Exception:  # noqa: BLE001 - the next scan tries again
                log.exception("static pods from %s", self.path)
            stop.wait(self.check_frequency)

    def stop(self) -> None:
        """Nothing to interrupt: run() ends at its next wait."""
