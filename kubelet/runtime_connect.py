"""The runtime the kubelet drives: pycontainer's CRI service in this process (the default), or
any CRI runtime over its socket (--container-runtime-endpoint, --image-service-endpoint), with
what differs between the two: only the in-process one has shims to adopt at start, leftovers of
a crash to sweep, and an image store on this host's disk to measure."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cni import conf as cni_conf
from cni.errors import CNIError
from cri.api import CRIError, ImageService, RuntimeService
from cri.client.connection import EndpointError
from cri.client.images import RemoteImages
from cri.client.runtime import RemoteRuntime
from cri.images import Images
from cri.service import PycontainerRuntime
from kubelet.config import KubeletConfig
from overlay.store import Store


@dataclass
class Runtime:
    service: RuntimeService
    images: ImageService
    image_store: Store | None               # None: the runtime's images are not ours to read
    adopt: Callable[[], None]               # at start: take over what a previous run left
    remove_leftovers: Callable[[], None]    # a crash's half-made objects
    network_ready: Callable[[], tuple[bool, str, str]]      # (ready, reason, message)
    close: Callable[[], None]


def connect(config: KubeletConfig) -> Runtime:
    """ValueError naming the flag when a remote runtime cannot be reached."""
    if not config.container_runtime_endpoint:
        return _in_process(config)
    return _remote(config.container_runtime_endpoint,
                   config.image_service_endpoint or config.container_runtime_endpoint)


def _in_process(config: KubeletConfig) -> Runtime:
    images = Images(config.image_store_root, config.serialize_image_pulls)
    runtime = PycontainerRuntime(config.root_dir, images, config.cni_conf_dir,
                                 config.cni_bin_dirs, config.cni_cache_dir)

    def network_ready() -> tuple[bool, str, str]:
        try:
            cni_conf.load(config.cni_conf_dir)
        except (CNIError, OSError):
            return False, "NetworkPluginNotReady", ("Network plugin returns error: cni plugin "
                                                    "not initialized")
        return True, "", ""
    return Runtime(runtime, images, images.store, runtime.adopt, runtime.remove_leftovers,
                   network_ready, runtime.close)


def _remote(runtime_endpoint: str, image_endpoint: str) -> Runtime:
    try:
        runtime = RemoteRuntime(runtime_endpoint)
    except EndpointError as e:
        raise ValueError(f"--container-runtime-endpoint: {e}") from None
    try:
        images = RemoteImages(image_endpoint)
    except EndpointError as e:
        runtime.close()
        raise ValueError(f"--image-service-endpoint: {e}") from None
    try:
        runtime.version()
    except CRIError as e:
        runtime.close()
        images.close()
        raise ValueError(f"--container-runtime-endpoint: {runtime_endpoint}: {e}") from None

    def close() -> None:
        runtime.close()
        images.close()
    return Runtime(runtime, images, None, lambda: None, lambda: None, runtime.network_ready,
                   close)
