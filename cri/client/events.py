"""Container exits, told to the kubelet's handlers: from the runtime's GetContainerEvents
stream, or, where the runtime has none (containerd 1.6 answers Unimplemented), from a relist
every second that notices containers newly exited, as the kubelet's generic PLEG does."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import grpc

from cri.api import CONTAINER_EXITED, ContainerEvent
from cri.proto import api_pb2 as pb, api_pb2_grpc as pb_grpc

log = logging.getLogger("cri.client")

RELIST_PERIOD = 1.0      # the kubelet's PLEG relist period
RETRY_PERIOD = 1.0       # after the stream broke (the runtime restarted)

Handler = Callable[[ContainerEvent], None]


class ContainerEvents:
    def __init__(self, stub: pb_grpc.RuntimeServiceStub) -> None:
        self._stub = stub
        self._handlers: list[Handler] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stream: grpc.Future | None = None
        self._thread: threading.Thread | None = None

    def subscribe(self, handler: Handler) -> None:
        with self._lock:
            self._handlers.append(handler)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cri-events",
                                                daemon=True)
                self._thread.start()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            stream, thread = self._stream, self._thread
        if stream is not None:
            stream.cancel()
        if thread is not None:
            thread.join(5)

    def _tell(self, event: ContainerEvent) -> None:
        with self._lock:
            handlers = list(self._handlers)
        for handler in handlers:
            try:
                handler(event)
            except Exception:  # noqa: BLE001 - one handler's bug must not end the others' events
                log.exception("a container event handler failed")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow_stream()
                self._stop.wait(RETRY_PERIOD)       # the runtime ended it: again, not at once
            except grpc.RpcError as e:
                if self._stop.is_set():
                    return
                if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                    log.info("the runtime has no GetContainerEvents: relisting every %ss",
                             RELIST_PERIOD)
                    self._relist()
                    return
                log.warning("container events: %s; again in %ss", e.details(), RETRY_PERIOD)
                self._stop.wait(RETRY_PERIOD)

    def _follow_stream(self) -> None:
        stream = self._stub.GetContainerEvents(pb.GetEventsRequest())
        with self._lock:
            self._stream = stream
        for event in stream:
            if event.container_event_type != pb.CONTAINER_STOPPED_EVENT:
                continue
            sandbox = event.pod_sandbox_status
            self._tell(ContainerEvent(event.container_id, sandbox.id, sandbox.metadata.uid,
                                      CONTAINER_EXITED))

    def _relist(self) -> None:
        states: dict[str, int] | None = None
        while not self._stop.wait(RELIST_PERIOD if states is not None else 0):
            try:
                sandboxes = self._stub.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30)
                containers = self._stub.ListContainers(pb.ListContainersRequest(), timeout=30)
            except grpc.RpcError as e:
                log.warning("relisting containers: %s", e.details())
                continue
            uids = {s.id: s.metadata.uid for s in sandboxes.items}
            now = {c.id: c.state for c in containers.containers}
            if states is not None:
                for c in containers.containers:
                    if c.state == pb.CONTAINER_EXITED and states.get(c.id) != pb.CONTAINER_EXITED:
                        self._tell(ContainerEvent(c.id, c.pod_sandbox_id,
                                                  uids.get(c.pod_sandbox_id, ""),
                                                  CONTAINER_EXITED))
            states = now
