"""An HTTP server of a component's own (a /healthz, a metrics port) served from a daemon thread
until stopped."""
from __future__ import annotations

import socketserver
import threading


class ServerThread:
    def __init__(self, server: socketserver.BaseServer, name: str) -> None:
        self.server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
