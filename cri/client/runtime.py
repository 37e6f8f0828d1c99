"""RuntimeService over CRI v1 gRPC: the kubelet's calls made to any runtime's socket. Exec,
Attach and PortForward give the URL of the runtime's streaming server (the kubelet proxies its
clients there) instead of running the streams in this process."""
from __future__ import annotations

from collections.abc import Callable

import grpc

from cri import api
from cri.client import from_proto, to_proto
from cri.client.connection import call, channel, error
from cri.client.events import ContainerEvents
from cri.proto import api_pb2 as pb, api_pb2_grpc as pb_grpc

# A grace period for a call beyond the time the runtime itself may take (StopContainer's
# timeout, ExecSync's), so that its own answer arrives before our deadline.
_MARGIN = 30.0


class RemoteRuntime(api.RuntimeService):
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._channel = channel(endpoint)
        self._stub = pb_grpc.RuntimeServiceStub(self._channel)
        self._events = ContainerEvents(self._stub)

    def version(self) -> pb.VersionResponse:
        return call(self._stub.Version, pb.VersionRequest(), "Version", timeout=10)

    def network_ready(self) -> tuple[bool, str, str]:
        """The runtime's NetworkReady condition: (status, reason, message)."""
        try:
            status = call(self._stub.Status, pb.StatusRequest(), "Status", timeout=10).status
        except api.CRIError as e:
            return False, "RuntimeUnavailable", str(e)
        for c in status.conditions:
            if c.type == "NetworkReady":
                return c.status, c.reason, c.message
        return False, "NetworkReadyMissing", "the runtime reports no NetworkReady condition"

    def close(self) -> None:
        self._events.close()
        self._channel.close()

    # -- sandboxes ----------------------------------------------------------------------------

    def run_pod_sandbox(self, config: api.PodSandboxConfig) -> str:
        response = call(self._stub.RunPodSandbox,
                        pb.RunPodSandboxRequest(config=to_proto.sandbox_config(config)),
                        "RunPodSandbox")
        return response.pod_sandbox_id

    def stop_pod_sandbox(self, sandbox_id: str) -> None:
        call(self._stub.StopPodSandbox, pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id),
             "StopPodSandbox")

    def remove_pod_sandbox(self, sandbox_id: str) -> None:
        try:
            call(self._stub.RemovePodSandbox,
                 pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id), "RemovePodSandbox")
        except api.NotFound:
            pass

    def pod_sandbox_status(self, sandbox_id: str) -> api.PodSandboxStatus:
        response = call(self._stub.PodSandboxStatus,
                        pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id), "PodSandboxStatus")
        return from_proto.sandbox_status(response.status)

    def _sandboxes(self) -> list[pb.PodSandbox]:
        return list(call(self._stub.ListPodSandbox, pb.ListPodSandboxRequest(),
                         "ListPodSandbox").items)

    def list_pod_sandboxes(self, pod_uid: str | None = None) -> list[api.PodSandboxStatus]:
        """With their IPs and network mode: a status of each, as the kubelet's relist reads."""
        found = []
        for s in self._sandboxes():
            if pod_uid is not None and s.metadata.uid != pod_uid:
                continue
            try:
                found.append(self.pod_sandbox_status(s.id))
            except api.NotFound:
                continue        # removed meanwhile
        return found

    # -- containers ---------------------------------------------------------------------------

    def create_container(self, sandbox_id: str, config: api.ContainerConfig,
                         sandbox_config: api.PodSandboxConfig) -> str:
        request = pb.CreateContainerRequest(
            pod_sandbox_id=sandbox_id, config=to_proto.container_config(config, sandbox_config),
            sandbox_config=to_proto.sandbox_config(sandbox_config))
        return call(self._stub.CreateContainer, request, "CreateContainer").container_id

    def start_container(self, container_id: str) -> None:
        call(self._stub.StartContainer, pb.StartContainerRequest(container_id=container_id),
             "StartContainer")

    def stop_container(self, container_id: str, timeout: float) -> None:
        call(self._stub.StopContainer,
             pb.StopContainerRequest(container_id=container_id, timeout=int(timeout)),
             "StopContainer", timeout=timeout + _MARGIN)

    def remove_container(self, container_id: str) -> None:
        try:
            call(self._stub.RemoveContainer, pb.RemoveContainerRequest(container_id=container_id),
                 "RemoveContainer")
        except api.NotFound:
            pass

    def _status(self, container_id: str, sandbox_id: str) -> api.ContainerStatus:
        response = call(self._stub.ContainerStatus,
                        pb.ContainerStatusRequest(container_id=container_id), "ContainerStatus")
        return from_proto.container_status(response.status, sandbox_id)

    def container_status(self, container_id: str) -> api.ContainerStatus:
        listed = call(self._stub.ListContainers, pb.ListContainersRequest(
            filter=pb.ContainerFilter(id=container_id)), "ListContainers").containers
        exact = [c for c in listed if c.id == container_id]
        if not exact:
            raise api.NotFound(f"container {container_id!r} not found")
        return self._status(container_id, exact[0].pod_sandbox_id)

    def list_containers(self, pod_uid: str | None = None,
                        sandbox_id: str | None = None) -> list[api.ContainerStatus]:
        """A status of each (exit codes, times, log paths), as the kubelet's relist reads."""
        sandboxes = None
        if pod_uid is not None:
            sandboxes = {s.id for s in self._sandboxes() if s.metadata.uid == pod_uid}
        listed = call(self._stub.ListContainers, pb.ListContainersRequest(
            filter=pb.ContainerFilter(pod_sandbox_id=sandbox_id or "")),
            "ListContainers").containers
        found = []
        for c in listed:
            if sandboxes is not None and c.pod_sandbox_id not in sandboxes:
                continue
            try:
                found.append(self._status(c.id, c.pod_sandbox_id))
            except api.NotFound:
                continue
        return found

    def exec_sync(self, container_id: str, cmd: list[str], timeout: float) -> api.ExecResult:
        request = pb.ExecSyncRequest(container_id=container_id, cmd=cmd, timeout=int(timeout))
        try:
            response = self._stub.ExecSync(request,
                                           timeout=timeout + _MARGIN if timeout else None)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return api.ExecResult(-1, "", "", timed_out=True)
            raise error(e, "ExecSync") from None
        return api.ExecResult(response.exit_code, response.stdout.decode(errors="replace"),
                              response.stderr.decode(errors="replace"))

    def reopen_container_log(self, container_id: str) -> None:
        call(self._stub.ReopenContainerLog,
             pb.ReopenContainerLogRequest(container_id=container_id), "ReopenContainerLog")

    def subscribe(self, handler: Callable[[api.ContainerEvent], None]) -> None:
        self._events.subscribe(handler)

    # -- streaming: URLs of the runtime's server ----------------------------------------------

    def exec_url(self, container_id: str, cmd: list[str], tty: bool, stdin: bool,
                 stdout: bool, stderr: bool) -> str:
        return call(self._stub.Exec, pb.ExecRequest(
            container_id=container_id, cmd=cmd, tty=tty, stdin=stdin, stdout=stdout,
            stderr=stderr), "Exec").url

    def attach_url(self, container_id: str, tty: bool, stdin: bool, stdout: bool,
                   stderr: bool) -> str:
        return call(self._stub.Attach, pb.AttachRequest(
            container_id=container_id, tty=tty, stdin=stdin, stdout=stdout, stderr=stderr),
            "Attach").url

    def port_forward_url(self, sandbox_id: str, ports: list[int]) -> str:
        return call(self._stub.PortForward, pb.PortForwardRequest(
            pod_sandbox_id=sandbox_id, port=ports), "PortForward").url
