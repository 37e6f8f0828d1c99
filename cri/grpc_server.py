"""runtime.v1.RuntimeService and runtime.v1.ImageService over gRPC (pycontainer-cri): each RPC
mapped onto the RuntimeService / ImageService of cri.api, with containerd's CRI plugin as the
reference for what is answered and with which status code: NotFound for an unknown ID (IDs may
be abbreviated to a unique prefix, as containerd's truncindex allows), InvalidArgument for a
config the runtime cannot take, Unknown for a runtime failure, Unimplemented where containerd
has no implementation either.

What the CRI carries beyond the service's dataclasses (the whole sandbox and container configs,
the runtime handler) is kept beside each object's record, in cri.pb, so that status and inspect
answer it and a restarted daemon still has it."""
from __future__ import annotations

import base64
import contextlib
import functools
import json
import logging
import os
import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
from google.protobuf import json_format

import cgroups
from cgroups import usage as cgroup_usage
from cni import conf as cni_conf
from cni.errors import CNIError
from overlay import reference, snapshots
from overlay.errors import ImageError

from cri import etc_files, pod_pid, proto_convert as convert, usage
from cri.api import (CONTAINER_CREATED, CONTAINER_RUNNING, SANDBOX_READY, ContainerEvent,
                     CRIError, ImageNotFound, NotFound)
from cri.daemon_config import DaemonConfig
from cri.images import Images
from cri.proto import api_pb2 as pb, api_pb2_grpc as pb_grpc
from cri.service import PycontainerRuntime
from cri.streaming_server import (AttachRequest, ExecRequest, PortForwardRequest,
                                  StreamingServer, TooManyRequests)

log = logging.getLogger("pycontainer-cri")

RUNTIME_NAME = "pycontainer"
RUNTIME_API_VERSION = "v1"
KUBE_API_VERSION = "0.1.0"      # what containerd answers in VersionResponse.version
CONFIG_FILE = "cri.pb"


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def _rpc(fn: Callable) -> Callable:
    """The service's errors as gRPC statuses; a bug is Internal with one line (logged whole)."""
    @functools.wraps(fn)
    def wrapper(self, request, context: grpc.ServicerContext):
        try:
            return fn(self, request, context)
        except _Abort as e:
            context.abort(e.code, str(e))
        except (NotFound, ImageNotFound) as e:
            context.abort(grpc.StatusCode.NOT_FOUND, str(e))
        except convert.ConfigError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        except TooManyRequests as e:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(e))
        except CRIError as e:
            context.abort(grpc.StatusCode.UNKNOWN, str(e))
        except Exception as e:  # noqa: BLE001 - one line to the client, the trace to the log
            log.exception("%s failed", fn.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")
    return wrapper


def _resolve(ids: list[str], given: str, kind: str) -> str:
    """The full ID that `given` names (itself or a unique prefix)."""
    if not given:
        raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{kind} ID must not be empty")
    if given in ids:
        return given
    matches = [i for i in ids if i.startswith(given)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise _Abort(grpc.StatusCode.UNKNOWN, f"{kind} ID {given!r} is ambiguous")
    raise NotFound(f"an error occurred when try to find {kind} {given!r}: not found")


class EventBroker:
    """GetContainerEvents: every subscriber's queue gets every event from its subscription on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: list[queue.Queue] = []

    def subscribe(self) -> queue.Queue:
        q: queue.Queue = queue.Queue(maxsize=1000)
        with self._lock:
            self._queues.append(q)
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        with self._lock:
            self._queues.remove(q)

    def publish(self, event: pb.ContainerEventResponse) -> None:
        with self._lock:
            targets = list(self._queues)
        for q in targets:
            try:
                q.put_nowait(event)
            except queue.Full:
                log.warning("a container event subscriber is too slow; event dropped")


class CriServer:
    """The daemon's state: the runtime, images, streaming server and what the CRI adds."""

    def __init__(self, config: DaemonConfig, runtime: PycontainerRuntime, images: Images,
                 streaming: StreamingServer) -> None:
        self.config = config
        self.runtime = runtime
        self.images = images
        self.streaming = streaming
        self.events = EventBroker()
        self._names_lock = threading.Lock()
        self._pending: set[tuple[str, str]] = set()     # (kind, name) being made
        self._cpu_samples: dict[str, tuple[int, int]] = {}   # id -> (time ns, cpu ns)
        self._samples_lock = threading.Lock()
        runtime.subscribe(self._on_runtime_event)

    # -- stored CRI configs -------------------------------------------------------------------

    def _config_path(self, kind: str, object_id: str) -> str:
        records = self.runtime.sandboxes.records if kind == "sandbox" \
            else self.runtime.containers.records
        return os.path.join(records.dir(object_id), CONFIG_FILE)

    def save_config(self, kind: str, object_id: str, message) -> None:
        path = self._config_path(kind, object_id)
        with open(path + ".tmp", "wb") as f:
            f.write(message.SerializeToString())
        os.rename(path + ".tmp", path)

    def sandbox_config(self, sandbox_id: str) -> pb.RunPodSandboxRequest | None:
        return self._load(self._config_path("sandbox", sandbox_id), pb.RunPodSandboxRequest)

    def container_config(self, container_id: str) -> pb.ContainerConfig | None:
        return self._load(self._config_path("container", container_id), pb.ContainerConfig)

    @staticmethod
    def _load(path: str, kind):
        try:
            with open(path, "rb") as f:
                return kind.FromString(f.read())
        except OSError:
            return None

    # -- lookups ------------------------------------------------------------------------------

    def sandbox_id(self, given: str) -> str:
        return _resolve(self.runtime.sandboxes.ids(), given, "sandbox")

    def container_id(self, given: str) -> str:
        return _resolve([c.id for c in self.runtime.list_containers()], given, "container")

    def running_container(self, given: str) -> str:
        container_id = self.container_id(given)
        state = self.runtime.container_status(container_id).state
        if state != CONTAINER_RUNNING:
            raise _Abort(grpc.StatusCode.UNKNOWN, f"container is in {state} state")
        return container_id

    def image_id(self, name: str) -> str:
        status = self.images.image_status(name) if name else None
        return status.id if status is not None else ""

    def image_name(self, ref: str) -> str:
        """A name the store loads for ref: ref itself, or the tag of the image whose ID it is
        (the upstream kubelet creates containers by image ID, which containerd accepts)."""
        bare = ref.removeprefix("sha256:")
        if len(bare) != 64 or not all(ch in "0123456789abcdef" for ch in bare):
            return ref
        for image in self.images.list_images():
            if image.id.removeprefix("sha256:") == bare and image.repo_tags:
                return image.repo_tags[0]
        return ref

    # -- events -------------------------------------------------------------------------------

    def publish(self, container_id: str, sandbox_id: str, kind: int) -> None:
        event = pb.ContainerEventResponse(container_id=container_id, container_event_type=kind,
                                          created_at=time.time_ns())
        try:
            request = self.sandbox_config(sandbox_id)
            event.pod_sandbox_status.CopyFrom(convert.sandbox_status(
                self.runtime.pod_sandbox_status(sandbox_id),
                request.config if request else None, request.runtime_handler if request else ""))
            for c in self.runtime.list_containers(sandbox_id=sandbox_id):
                event.containers_statuses.append(convert.container_status(
                    c, self.container_config(c.id), self.image_id(c.image)))
        except NotFound:
            pass    # removed meanwhile: the event goes without them
        self.events.publish(event)

    def _on_runtime_event(self, event: ContainerEvent) -> None:
        self.publish(event.container_id, event.pod_sandbox_id, pb.CONTAINER_STOPPED_EVENT)

    # -- names --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def reserved(self, kind: str, name: str, taken_by: Callable[[], str]) -> Iterator[None]:
        """containerd's name index: `name` is held while its object is made (other names are
        made meanwhile); taken_by() is the ID of an existing object of that name, or ""."""
        key = (kind, name)
        with self._names_lock:
            holder = "a creation in progress" if key in self._pending else taken_by()
            if not holder:
                self._pending.add(key)
        if holder:
            raise CRIError(f'failed to reserve {kind} name "{name}": name "{name}" is '
                           f'reserved for "{holder}"')
        try:
            yield
        finally:
            with self._names_lock:
                self._pending.discard(key)

    def sandbox_name(self, config: pb.PodSandboxConfig):
        """The reservation of a sandbox's name: name_namespace_uid_attempt."""
        m = config.metadata

        def taken_by() -> str:
            return next((s.id for s in self.runtime.list_pod_sandboxes(m.uid)
                         if (s.metadata.name, s.metadata.namespace, s.metadata.attempt)
                         == (m.name, m.namespace, m.attempt)), "")
        return self.reserved("sandbox", f"{m.name}_{m.namespace}_{m.uid}_{m.attempt}", taken_by)

    def container_name(self, sandbox_id: str, config: pb.ContainerConfig,
                       sandbox: pb.PodSandboxConfig):
        """The reservation of a container's name: name_sandbox_namespace_uid_attempt."""
        m, s = config.metadata, sandbox.metadata

        def taken_by() -> str:
            return next((c.id for c in self.runtime.list_containers(sandbox_id=sandbox_id)
                         if (c.metadata.name, c.metadata.attempt) == (m.name, m.attempt)), "")
        return self.reserved("container", f"{m.name}_{s.name}_{s.namespace}_{s.uid}_{m.attempt}",
                             taken_by)

    # -- stats --------------------------------------------------------------------------------

    def cgroup_path(self, container_id: str) -> str:
        try:
            with open(os.path.join(self.runtime.containers.records.dir(container_id),
                                   "config.json")) as f:
                return json.load(f)["linux"]["cgroupsPath"]
        except (OSError, ValueError, KeyError):
            return ""

    def _nano_cores(self, key: str, sample: cgroup_usage.Usage) -> int:
        with self._samples_lock:
            previous = self._cpu_samples.get(key)
            self._cpu_samples[key] = (sample.timestamp, sample.cpu_ns)
        if previous is None or sample.timestamp <= previous[0]:
            return 0
        return max(sample.cpu_ns - previous[1], 0) * 10**9 // (sample.timestamp - previous[0])

    def _cpu_memory(self, key: str, u: cgroup_usage.Usage) -> tuple[pb.CpuUsage, pb.MemoryUsage]:
        cpu = pb.CpuUsage(timestamp=u.timestamp)
        cpu.usage_core_nano_seconds.value = u.cpu_ns
        cpu.usage_nano_cores.value = self._nano_cores(key, u)
        memory = pb.MemoryUsage(timestamp=u.timestamp)
        for name, value in (("working_set_bytes", u.working_set), ("usage_bytes", u.memory_usage),
                            ("rss_bytes", u.rss), ("page_faults", u.page_faults),
                            ("major_page_faults", u.major_page_faults),
                            ("available_bytes", u.available)):
            getattr(memory, name).value = value
        return cpu, memory

    def container_stats(self, container_id: str) -> pb.ContainerStats:
        c = self.runtime.container_status(container_id)
        stats = pb.ContainerStats(attributes=pb.ContainerAttributes(
            id=c.id, metadata=pb.ContainerMetadata(name=c.metadata.name,
                                                   attempt=c.metadata.attempt),
            labels=c.labels, annotations=c.annotations))
        u = cgroup_usage.read(self.cgroup_path(container_id)) \
            if c.state == CONTAINER_RUNNING else None
        if u is not None:
            cpu, memory = self._cpu_memory(container_id, u)
            stats.cpu.CopyFrom(cpu)
            stats.memory.CopyFrom(memory)
            stats.swap.timestamp = u.timestamp
            stats.swap.swap_usage_bytes.value = u.swap
        disk = usage.disk_usage(os.path.join(
            snapshots.path(self.images.store, container_id), "upper"))
        stats.writable_layer.timestamp = disk.timestamp
        stats.writable_layer.fs_id.mountpoint = snapshots.path(self.images.store, container_id)
        stats.writable_layer.used_bytes.value = disk.used_bytes
        stats.writable_layer.inodes_used.value = disk.inodes_used
        return stats

    def sandbox_stats(self, sandbox_id: str) -> pb.PodSandboxStats:
        s = self.runtime.pod_sandbox_status(sandbox_id)
        stats = pb.PodSandboxStats(attributes=pb.PodSandboxAttributes(
            id=s.id, metadata=pb.PodSandboxMetadata(name=s.metadata.name, uid=s.metadata.uid,
                                                    namespace=s.metadata.namespace,
                                                    attempt=s.metadata.attempt),
            labels=s.labels, annotations=s.annotations))
        containers = [c for c in self.runtime.list_containers(sandbox_id=sandbox_id)]
        linux = stats.linux
        for c in containers:
            linux.containers.append(self.container_stats(c.id))
        if s.state != SANDBOX_READY:
            return stats
        u = cgroup_usage.read(s.cgroup_parent) if s.cgroup_parent else None
        if u is None:
            # No pod cgroup of its own (crictl's sandboxes): the sum of its containers'.
            parts = [cgroup_usage.read(self.cgroup_path(c.id)) for c in containers
                     if c.state == CONTAINER_RUNNING]
            parts = [p for p in parts if p is not None]
            if parts:
                u = cgroup_usage.Usage(max(p.timestamp for p in parts),
                                       *(sum(getattr(p, f) for p in parts) for f in (
                                           "cpu_ns", "memory_usage", "working_set", "rss",
                                           "page_faults", "major_page_faults", "swap",
                                           "available", "processes")))
        if u is not None:
            cpu, memory = self._cpu_memory("sandbox:" + sandbox_id, u)
            linux.cpu.CopyFrom(cpu)
            linux.memory.CopyFrom(memory)
            linux.process.timestamp = u.timestamp
            linux.process.process_count.value = u.processes
        net = usage.network_usage(s.netns_path)
        linux.network.timestamp = net.timestamp
        for i in net.interfaces:
            iface = pb.NetworkInterfaceUsage(name=i.name)
            iface.rx_bytes.value, iface.rx_errors.value = i.rx_bytes, i.rx_errors
            iface.tx_bytes.value, iface.tx_errors.value = i.tx_bytes, i.tx_errors
            if i.name == "eth0":
                linux.network.default_interface.CopyFrom(iface)
            linux.network.interfaces.append(iface)
        return stats

    def forget_samples(self, key: str) -> None:
        with self._samples_lock:
            self._cpu_samples.pop(key, None)

    # -- network ------------------------------------------------------------------------------

    def network_ready(self) -> tuple[bool, str]:
        try:
            cni_conf.load(self.config.cni_conf_dir)
        except CNIError as e:
            return False, f"Network plugin returns error: cni plugin not initialized: {e}"
        return True, ""


def _tolerate_missing_hugetlb(resources: dict) -> None:
    """containerd's tolerate_missing_hugetlb_controller (true by default): on a host without
    the hugetlb controller, hugepage limits are dropped instead of refused (the kubelet sends
    one, of 0, for every page size the kernel has)."""
    if not resources.get("hugepageLimits"):
        return
    found = cgroups.hierarchies()
    if found.mode == "v2":
        try:
            with open(os.path.join(found.unified, "cgroup.controllers")) as f:
                available = "hugetlb" in f.read().split()
        except OSError:
            available = False
    else:
        available = "hugetlb" in found.v1
    if not available:
        del resources["hugepageLimits"]


def _labels_match(labels, selector) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


class RuntimeServicer(pb_grpc.RuntimeServiceServicer):
    def __init__(self, server: CriServer) -> None:
        self.s = server
        self.runtime = server.runtime

    @_rpc
    def Version(self, request, context):
        return pb.VersionResponse(version=KUBE_API_VERSION, runtime_name=RUNTIME_NAME,
                                  runtime_version=_package_version(),
                                  runtime_api_version=RUNTIME_API_VERSION)

    # -- sandboxes ----------------------------------------------------------------------------

    @_rpc
    def RunPodSandbox(self, request, context):
        if request.runtime_handler:
            # One runtime only, the default handler (containerd's wording for another).
            raise CRIError(f'no runtime for "{request.runtime_handler}" is configured')
        config = convert.sandbox_config(request.config)
        with self.s.sandbox_name(request.config):
            sandbox_id = self.runtime.run_pod_sandbox(config)
        directory = self.runtime.sandboxes.records.dir(sandbox_id)
        try:
            self.s.save_config("sandbox", sandbox_id, request)
            etc_files.write(directory, request.config)
            if request.config.linux.security_context.namespace_options.pid == pb.POD:
                pod_pid.start(directory)
        except (OSError, subprocess.SubprocessError, pod_pid.PodPidError) as e:
            pod_pid.stop(directory)
            self.runtime.remove_pod_sandbox(sandbox_id)
            raise CRIError(f"failed to set up sandbox {sandbox_id}: {e}") from None
        return pb.RunPodSandboxResponse(pod_sandbox_id=sandbox_id)

    @_rpc
    def StopPodSandbox(self, request, context):
        try:
            sandbox_id = self.s.sandbox_id(request.pod_sandbox_id)
        except NotFound:
            return pb.StopPodSandboxResponse()      # idempotent: nothing left to stop
        running = [c.id for c in self.runtime.list_containers(sandbox_id=sandbox_id)
                   if c.state == CONTAINER_RUNNING]
        self.runtime.stop_pod_sandbox(sandbox_id)
        pod_pid.stop(self.runtime.sandboxes.records.dir(sandbox_id))
        for container_id in running:
            self.s.forget_samples(container_id)
        return pb.StopPodSandboxResponse()

    @_rpc
    def RemovePodSandbox(self, request, context):
        try:
            sandbox_id = self.s.sandbox_id(request.pod_sandbox_id)
        except NotFound:
            return pb.RemovePodSandboxResponse()    # containerd: already gone is success
        containers = self.runtime.list_containers(sandbox_id=sandbox_id)
        pod_pid.stop(self.runtime.sandboxes.records.dir(sandbox_id))
        self.runtime.remove_pod_sandbox(sandbox_id)
        for c in containers:
            self.s.forget_samples(c.id)
            self.s.publish(c.id, sandbox_id, pb.CONTAINER_DELETED_EVENT)
        self.s.forget_samples("sandbox:" + sandbox_id)
        return pb.RemovePodSandboxResponse()

    @_rpc
    def PodSandboxStatus(self, request, context):
        sandbox_id = self.s.sandbox_id(request.pod_sandbox_id)
        status = self.runtime.pod_sandbox_status(sandbox_id)
        stored = self.s.sandbox_config(sandbox_id)
        config = stored.config if stored else None
        handler = stored.runtime_handler if stored else ""
        response = pb.PodSandboxStatusResponse(
            status=convert.sandbox_status(status, config, handler), timestamp=time.time_ns())
        if request.verbose:
            info = {"pid": pod_pid.init_pid(self.runtime.sandboxes.records.dir(sandbox_id)),
                    "processStatus": "running" if status.state == SANDBOX_READY
                    else "deleted", "netNamespaceClosed": not status.netns_path,
                    "runtimeHandler": handler, "runtimeType": RUNTIME_NAME,
                    "netNamespacePath": status.netns_path, "cgroupParent": status.cgroup_parent,
                    "image": self.s.config.sandbox_image,
                    "config": json_format.MessageToDict(config) if config else {}}
            response.info["info"] = json.dumps(info)
        return response

    @_rpc
    def ListPodSandbox(self, request, context):
        f = request.filter
        found = []
        for s in self.runtime.list_pod_sandboxes():
            if f.id and not s.id.startswith(f.id):
                continue
            if f.HasField("state") and pb.PodSandboxState.Value(s.state) != f.state.state:
                continue
            if not _labels_match(s.labels, f.label_selector):
                continue
            stored = self.s.sandbox_config(s.id)
            found.append(convert.sandbox(s, stored.runtime_handler if stored else ""))
        return pb.ListPodSandboxResponse(items=found)

    # -- containers ---------------------------------------------------------------------------

    @_rpc
    def CreateContainer(self, request, context):
        sandbox_id = self.s.sandbox_id(request.pod_sandbox_id)
        stored = self.s.sandbox_config(sandbox_id)
        sandbox_pb = request.sandbox_config if request.HasField("sandbox_config") \
            else (stored.config if stored else pb.PodSandboxConfig())
        config = convert.container_config(request.config, sandbox_pb)
        config.image = self.s.image_name(config.image)
        _tolerate_missing_hugetlb(config.linux.resources)
        directory = self.runtime.sandboxes.records.dir(sandbox_id)
        config.mounts += etc_files.mounts(directory, config)
        if request.config.linux.security_context.namespace_options.pid == pb.POD:
            config.linux.pid_namespace = pod_pid.namespace(directory)
        internal_sandbox = convert.sandbox_config(sandbox_pb) if sandbox_pb.HasField(
            "metadata") else None
        with self.s.container_name(sandbox_id, request.config, sandbox_pb):
            container_id = self.runtime.create_container(sandbox_id, config, internal_sandbox)
        self.s.save_config("container", container_id, request.config)
        self.s.publish(container_id, sandbox_id, pb.CONTAINER_CREATED_EVENT)
        return pb.CreateContainerResponse(container_id=container_id)

    @_rpc
    def StartContainer(self, request, context):
        container_id = self.s.container_id(request.container_id)
        status = self.runtime.container_status(container_id)
        if status.state != CONTAINER_CREATED:
            raise CRIError(f"container {container_id} is in {status.state} state, "
                           "not CONTAINER_CREATED")
        self.runtime.start_container(container_id)
        self.s.publish(container_id, status.pod_sandbox_id, pb.CONTAINER_STARTED_EVENT)
        return pb.StartContainerResponse()

    @_rpc
    def StopContainer(self, request, context):
        try:
            container_id = self.s.container_id(request.container_id)
        except NotFound:
            return pb.StopContainerResponse()       # idempotent: nothing left to stop
        self.runtime.stop_container(container_id, max(request.timeout, 0))
        self.s.forget_samples(container_id)
        return pb.StopContainerResponse()

    @_rpc
    def RemoveContainer(self, request, context):
        try:
            container_id = self.s.container_id(request.container_id)
        except NotFound:
            return pb.RemoveContainerResponse()
        sandbox_id = self.runtime.container_status(container_id).pod_sandbox_id
        self.runtime.remove_container(container_id)
        self.s.forget_samples(container_id)
        self.s.publish(container_id, sandbox_id, pb.CONTAINER_DELETED_EVENT)
        return pb.RemoveContainerResponse()

    @_rpc
    def ListContainers(self, request, context):
        f = request.filter
        found = []
        image_ids: dict[str, str] = {}
        for c in self.runtime.list_containers():
            if f.id and not c.id.startswith(f.id):
                continue
            if f.pod_sandbox_id and not c.pod_sandbox_id.startswith(f.pod_sandbox_id):
                continue
            if f.HasField("state") and pb.ContainerState.Value(c.state) != f.state.state:
                continue
            if not _labels_match(c.labels, f.label_selector):
                continue
            if c.image not in image_ids:
                image_ids[c.image] = self.s.image_id(c.image)
            found.append(convert.container(c, self.s.container_config(c.id),
                                           image_ids[c.image]))
        return pb.ListContainersResponse(containers=found)

    @_rpc
    def ContainerStatus(self, request, context):
        container_id = self.s.container_id(request.container_id)
        c = self.runtime.container_status(container_id)
        config = self.s.container_config(container_id)
        response = pb.ContainerStatusResponse(status=convert.container_status(
            c, config, self.s.image_id(c.image)))
        if request.verbose:
            response.info["info"] = json.dumps(self._verbose_info(c, config))
        return response

    def _verbose_info(self, c, config) -> dict:
        spec_path = os.path.join(self.runtime.containers.records.dir(c.id), "config.json")
        try:
            with open(spec_path) as f:
                spec = json.load(f)
        except (OSError, ValueError):
            spec = {}
        return {"sandboxID": c.pod_sandbox_id, "pid": self._pid(c), "removing": False,
                "snapshotKey": c.id, "snapshotter": "overlayfs", "runtimeType": RUNTIME_NAME,
                "config": json_format.MessageToDict(config) if config else {},
                "runtimeSpec": spec}

    def _pid(self, c) -> int:
        if c.state != CONTAINER_RUNNING:
            return 0
        import shim     # only for a verbose status of a running container
        try:
            with shim.connect(c.id, self.runtime.shim_root) as client:
                return client.state().pid
        except shim.ShimError:
            return 0

    @_rpc
    def UpdateContainerResources(self, request, context):
        container_id = self.s.container_id(request.container_id)
        status = self.runtime.container_status(container_id)
        if status.state not in (CONTAINER_CREATED, CONTAINER_RUNNING):
            raise CRIError(f"container {container_id} is in {status.state} state: only a "
                           "created or running container can be updated")
        oci = convert.resources(request.linux)
        spec_path = os.path.join(self.runtime.containers.records.dir(container_id),
                                 "config.json")
        with open(spec_path) as f:
            spec = json.load(f)
        merged = dict(spec["linux"].get("resources") or {})
        for key, value in oci.items():
            merged[key] = dict(merged.get(key) or {}, **value) if isinstance(value, dict) \
                else value
        if status.state == CONTAINER_RUNNING:
            cg = cgroups.open_cgroup(spec["linux"]["cgroupsPath"])
            try:
                cg.validate(merged)
                cg.apply(oci)
            except (ValueError, OSError) as e:
                raise CRIError(f"failed to update resources: {e}") from None
        spec["linux"]["resources"] = merged
        with open(spec_path + ".tmp", "w") as f:
            json.dump(spec, f)
        os.rename(spec_path + ".tmp", spec_path)
        config = self.s.container_config(container_id)
        if config is not None:
            config.linux.resources.MergeFrom(request.linux)
            self.s.save_config("container", container_id, config)
        return pb.UpdateContainerResourcesResponse()

    @_rpc
    def ReopenContainerLog(self, request, context):
        container_id = self.s.running_container(request.container_id)
        self.runtime.reopen_container_log(container_id)
        return pb.ReopenContainerLogResponse()

    @_rpc
    def ExecSync(self, request, context):
        container_id = self.s.running_container(request.container_id)
        if not request.cmd:
            raise convert.ConfigError("cmd: at least one argument is required")
        result = self.runtime.exec_sync(container_id, list(request.cmd), request.timeout)
        if result.timed_out:
            raise _Abort(grpc.StatusCode.DEADLINE_EXCEEDED,
                         f"command {' '.join(request.cmd)!r} timed out after "
                         f"{request.timeout}s")
        return pb.ExecSyncResponse(stdout=result.stdout.encode(), stderr=result.stderr.encode(),
                                   exit_code=result.exit_code)

    # -- streaming ----------------------------------------------------------------------------

    @staticmethod
    def _check_streams(request) -> None:
        # The kubelet streaming server's validation of an exec or attach request.
        if not (request.stdin or request.stdout or request.stderr):
            raise convert.ConfigError("one of stdin, stdout, or stderr must be set")
        if request.tty and request.stderr:
            raise convert.ConfigError("tty and stderr cannot both be true")

    @_rpc
    def Exec(self, request, context):
        container_id = self.s.running_container(request.container_id)
        if not request.cmd:
            raise convert.ConfigError("cmd: at least one argument is required")
        self._check_streams(request)
        url = self.s.streaming.url(ExecRequest(container_id, tuple(request.cmd), request.tty,
                                               request.stdin, request.stdout, request.stderr))
        return pb.ExecResponse(url=url)

    @_rpc
    def Attach(self, request, context):
        container_id = self.s.running_container(request.container_id)
        self._check_streams(request)
        url = self.s.streaming.url(AttachRequest(container_id, request.tty, request.stdin,
                                                 request.stdout, request.stderr))
        return pb.AttachResponse(url=url)

    @_rpc
    def PortForward(self, request, context):
        sandbox_id = self.s.sandbox_id(request.pod_sandbox_id)
        if self.runtime.pod_sandbox_status(sandbox_id).state != SANDBOX_READY:
            raise CRIError(f"sandbox container {sandbox_id} is not running")
        for port in request.port:
            if not 0 < port < 65536:
                raise convert.ConfigError(f"invalid port {port}")
        url = self.s.streaming.url(PortForwardRequest(sandbox_id, tuple(request.port)))
        return pb.PortForwardResponse(url=url)

    # -- stats --------------------------------------------------------------------------------

    @_rpc
    def ContainerStats(self, request, context):
        container_id = self.s.container_id(request.container_id)
        return pb.ContainerStatsResponse(stats=self.s.container_stats(container_id))

    @_rpc
    def ListContainerStats(self, request, context):
        f = request.filter
        found = []
        for c in self.runtime.list_containers():
            if c.state != CONTAINER_RUNNING:
                continue
            if f.id and not c.id.startswith(f.id):
                continue
            if f.pod_sandbox_id and not c.pod_sandbox_id.startswith(f.pod_sandbox_id):
                continue
            if not _labels_match(c.labels, f.label_selector):
                continue
            try:
                found.append(self.s.container_stats(c.id))
            except NotFound:
                continue    # removed meanwhile
        return pb.ListContainerStatsResponse(stats=found)

    @_rpc
    def PodSandboxStats(self, request, context):
        sandbox_id = self.s.sandbox_id(request.pod_sandbox_id)
        return pb.PodSandboxStatsResponse(stats=self.s.sandbox_stats(sandbox_id))

    @_rpc
    def ListPodSandboxStats(self, request, context):
        f = request.filter
        found = []
        for s in self.runtime.list_pod_sandboxes():
            if s.state != SANDBOX_READY:
                continue
            if f.id and not s.id.startswith(f.id):
                continue
            if not _labels_match(s.labels, f.label_selector):
                continue
            try:
                found.append(self.s.sandbox_stats(s.id))
            except NotFound:
                continue
        return pb.ListPodSandboxStatsResponse(stats=found)

    @_rpc
    def ListMetricDescriptors(self, request, context):
        # No metrics beyond the stats above: an empty list, as containerd without them.
        return pb.ListMetricDescriptorsResponse()

    @_rpc
    def ListPodSandboxMetrics(self, request, context):
        return pb.ListPodSandboxMetricsResponse()

    # -- runtime ------------------------------------------------------------------------------

    @_rpc
    def UpdateRuntimeConfig(self, request, context):
        # containerd writes a CNI config from its template only when one is configured; here
        # the CNI config is the administrator's, so the pod CIDR is noted and nothing else.
        cidr = request.runtime_config.network_config.pod_cidr
        if cidr:
            log.info("pod CIDR is %s", cidr)
        return pb.UpdateRuntimeConfigResponse()

    @_rpc
    def Status(self, request, context):
        ready, message = self.s.network_ready()
        conditions = [pb.RuntimeCondition(type="RuntimeReady", status=True),
                      pb.RuntimeCondition(type="NetworkReady", status=ready,
                                          reason="" if ready else "NetworkPluginNotReady",
                                          message=message)]
        response = pb.StatusResponse(status=pb.RuntimeStatus(conditions=conditions))
        response.runtime_handlers.append(pb.RuntimeHandler(
            name="", features=pb.RuntimeHandlerFeatures(recursive_read_only_mounts=False,
                                                        user_namespaces=False)))
        response.features.supplemental_groups_policy = False
        if request.verbose:
            response.info["config"] = json.dumps(self.s.config.summary())
        return response

    @_rpc
    def RuntimeConfig(self, request, context):
        return pb.RuntimeConfigResponse(linux=pb.LinuxRuntimeConfiguration(
            cgroup_driver=pb.CGROUPFS))

    def GetContainerEvents(self, request, context):
        events = self.s.events.subscribe()
        try:
            while context.is_active():
                try:
                    yield events.get(timeout=1.0)
                except queue.Empty:
                    continue
        finally:
            self.s.events.unsubscribe(events)


class ImageServicer(pb_grpc.ImageServiceServicer):
    def __init__(self, server: CriServer) -> None:
        self.s = server
        self.images = server.images
        self.pinned = {i for i in (server.config.sandbox_image, *server.config.pinned_images) if i}

    def _find(self, ref: str):
        """The image `ref` names: a name, a name@digest, its ID or a unique prefix of it."""
        if not ref:
            raise convert.ConfigError("image: must not be empty")
        try:
            found = self.images.image_status(ref)
        except CRIError:
            found = None    # not a name: an ID, perhaps
        if found is not None:
            return found
        every = self.images.list_images()
        bare = ref.removeprefix("sha256:")
        for image in every:
            if ref in image.repo_digests or ref in image.repo_tags:
                return image
        matches = {i.id: i for i in every if len(bare) >= 3
                   and i.id.removeprefix("sha256:").startswith(bare)}
        return next(iter(matches.values())) if len(matches) == 1 else None

    def _pb(self, image) -> pb.Image:
        pinned = bool(self.pinned & set(image.repo_tags)) or image.id in self.pinned
        return convert.image(image, pinned)

    @_rpc
    def ListImages(self, request, context):
        wanted = request.filter.image.image
        if wanted:
            found = self._find(wanted)
            return pb.ListImagesResponse(images=[self._pb(found)] if found else [])
        return pb.ListImagesResponse(images=[self._pb(i) for i in self.images.list_images()])

    @_rpc
    def ImageStatus(self, request, context):
        found = self._find(request.image.image)
        if found is None:
            return pb.ImageStatusResponse()
        response = pb.ImageStatusResponse(image=self._pb(found))
        if request.verbose:
            response.info["info"] = json.dumps({"id": found.id, "repoTags": found.repo_tags,
                                                "repoDigests": found.repo_digests})
        return response

    @_rpc
    def PullImage(self, request, context):
        ref = request.image.image
        try:
            parsed = reference.parse(ref)
        except ImageError as e:
            raise convert.ConfigError(f"failed to parse image reference {ref!r}: {e}") from None
        insecure = parsed.registry in self.s.config.insecure_registries or \
            parsed.registry.rsplit(":", 1)[0] in self.s.config.insecure_registries
        auth_file = self._auth_file(request.auth, parsed.registry)
        try:
            self.images.pull_image(ref, auth_file=auth_file or self.s.config.registry_config
                                   or None, insecure=insecure)
        finally:
            if auth_file:
                os.unlink(auth_file)
        found = self.images.image_status(ref)
        return pb.PullImageResponse(image_ref=found.id if found else "")

    def _auth_file(self, auth: pb.AuthConfig, registry: str) -> str:
        """A docker config.json (0600, in the state dir) with the request's credentials."""
        if auth.auth:
            encoded = auth.auth
        elif auth.username or auth.password:
            encoded = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
        else:
            return ""
        fd, path = tempfile.mkstemp(prefix="auth-", suffix=".json", dir=self.s.config.state)
        with os.fdopen(fd, "w") as f:
            json.dump({"auths": {registry: {"auth": encoded}}}, f)
        return path

    @_rpc
    def RemoveImage(self, request, context):
        found = self._find(request.image.image)
        if found is None:
            return pb.RemoveImageResponse()     # containerd: an absent image is removed
        for tag in found.repo_tags:
            self.images.remove_image(tag)
        return pb.RemoveImageResponse()

    @_rpc
    def ImageFsInfo(self, request, context):
        disk = usage.disk_usage(self.images.store.root)
        fs = pb.FilesystemUsage(timestamp=disk.timestamp,
                                fs_id=pb.FilesystemIdentifier(mountpoint=self.images.store.root))
        fs.used_bytes.value = disk.used_bytes
        fs.inodes_used.value = disk.inodes_used
        return pb.ImageFsInfoResponse(image_filesystems=[fs])


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("pycontainer")
    except PackageNotFoundError:
        return "0.0.0"


def make_server(cri: CriServer, max_workers: int = 32) -> grpc.Server:
    """A gRPC server with both services; the caller binds and starts it."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers,
                                                    thread_name_prefix="cri-grpc"),
                         options=[("grpc.max_receive_message_length", 16 << 20),
                                  ("grpc.max_send_message_length", 16 << 20)])
    pb_grpc.add_RuntimeServiceServicer_to_server(RuntimeServicer(cri), server)
    pb_grpc.add_ImageServiceServicer_to_server(ImageServicer(cri), server)
    return server

