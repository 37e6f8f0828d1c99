"""pycontainer-cri's parts put together and run: the image store, the runtime service (adopting
what a previous daemon left running), the streaming server and the gRPC server on its socket."""
from __future__ import annotations

import os
import socket

from cri.daemon_config import DaemonConfig
from cri.grpc_server import CriServer, make_server
from cri.images import Images
from cri.service import PycontainerRuntime
from cri.streaming_server import StreamingServer


class DaemonError(Exception):
    """The daemon cannot start; one line."""


class Daemon:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        os.makedirs(config.state, mode=0o711, exist_ok=True)
        os.makedirs(os.path.dirname(config.socket_path), mode=0o711, exist_ok=True)
        _check_socket_free(config.socket_path)
        try:
            self.images = Images(config.root, config.serialize_image_pulls)
            self.runtime = PycontainerRuntime(config.state, self.images, config.cni_conf_dir,
                                              config.cni_bin_dirs, config.cni_cache_dir)
        except (OSError, ValueError) as e:
            raise DaemonError(str(e)) from None
        try:
            self.streaming = StreamingServer(self.runtime, config.stream_server_address,
                                             config.stream_server_port)
        except OSError as e:
            self.runtime.close()
            raise DaemonError(f"--stream-server-address/--stream-server-port: {e.strerror}") \
                from None
        self.cri = CriServer(config, self.runtime, self.images, self.streaming)
        self.grpc = make_server(self.cri)
        if self.grpc.add_insecure_port(f"unix://{config.socket_path}") == 0:
            self.streaming.stop()
            self.runtime.close()
            raise DaemonError(f"--listen: cannot listen on {config.socket_path}")

    def start(self) -> None:
        self.runtime.adopt()
        self.runtime.remove_leftovers()
        self.streaming.start()
        self.grpc.start()
        os.chmod(self.config.socket_path, 0o660)

    def stop(self) -> None:
        """Serving ends; the containers keep running under their shims, as with containerd."""
        self.grpc.stop(grace=2).wait()
        self.streaming.stop()
        self.runtime.close()
        try:
            os.unlink(self.config.socket_path)
        except FileNotFoundError:
            pass


def _check_socket_free(path: str) -> None:
    """A socket file nobody answers on is a dead daemon's: removed. One that answers is not."""
    if not os.path.exists(path):
        return
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(path)
        except OSError:
            os.unlink(path)
            return
    raise DaemonError(f"--listen: {path} is in use by another daemon")
