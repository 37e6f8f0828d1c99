"""The DNS server's sockets: UDP and TCP on one address and port.

UDP: one thread receives and answers whatever it can from memory (the cluster's names, cached
forwarded ones) itself, which is most queries; a query that needs an upstream goes to a pool of
workers so that a slow upstream never holds the others up. TCP (RFC 7766): a thread per
connection, several queries per connection (length-prefixed), closed after an idle time."""
from __future__ import annotations

import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from clusterdns.handler import Handler
from clusterdns.zone import NeedsNetwork

log = logging.getLogger("clusterdns")

WORKERS = 32             # concurrent upstream lookups
MAX_TCP_CONNECTIONS = 256
TCP_IDLE = 10.0          # seconds a TCP connection may stay silent
BIND_ATTEMPTS = 20       # port 0: the kernel's UDP port may be taken for TCP; try another


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> "ListenAddress":
        """address:port, [v6]:port; ValueError with the flag's message otherwise."""
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"--listen: {text!r} is not address:port")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        try:
            socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
        except socket.gaierror:
            raise ValueError(f"--listen: {host!r} is not an IP address") from None
        return cls(host, int(port))

    @property
    def family(self) -> int:
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET


class DNSServer:
    def __init__(self, handler: Handler, listen: ListenAddress) -> None:
        self.handler = handler
        self.udp, self.tcp = _bind(listen)
        self.address = ListenAddress(listen.host, self.udp.getsockname()[1])
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="dns-forward")
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._threads = [threading.Thread(target=self._serve_udp, name="dns-udp", daemon=True),
                         threading.Thread(target=self._serve_tcp, name="dns-tcp", daemon=True)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        """Stops receiving, ends open TCP connections, waits for the threads."""
        self._stop.set()
        for sock in (self.udp, self.tcp):
            try:
                sock.shutdown(socket.SHUT_RDWR)   # wakes the blocked recvfrom/accept
            except OSError:
                pass
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            if thread.ident is not None:
                thread.join(5)
        self._pool.shutdown(wait=True)
        self.udp.close()
        self.tcp.close()

    # -- UDP ----------------------------------------------------------------------------------

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self.udp.recvfrom(65535)
            except OSError:
                if self._stop.is_set():
                    return
                continue
            if not wire and self._stop.is_set():
                return
            try:
                self._answer_udp(wire, peer, network=False)
            except NeedsNetwork:
                try:
                    self._pool.submit(self._answer_udp, wire, peer, True)
                except RuntimeError:   # shutting down
                    return

    def _answer_udp(self, wire: bytes, peer: tuple, network: bool) -> None:
        try:
            reply = self.handler.handle(wire, udp=True, network=network)
        except NeedsNetwork:
            raise
        except Exception:  # a bug answering one query must not end the server
            log.exception("answering a query from %s", peer)
            return
        if reply is not None:
            self._send(reply, peer)

    def _send(self, wire: bytes, peer: tuple) -> None:
        try:
            self.udp.sendto(wire, peer)
        except OSError as e:
            log.debug("udp reply to %s: %s", peer, e)

    # -- TCP ----------------------------------------------------------------------------------

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                if self._stop.is_set():
                    return
                continue
            with self._lock:
                if self._stop.is_set() or len(self._conns) >= MAX_TCP_CONNECTIONS:
                    conn.close()
                    continue
                self._conns.add(conn)
            threading.Thread(target=self._serve_conn, args=(conn,), name="dns-tcp-conn",
                             daemon=True).start()

    def _serve_conn(self, conn: socket.socket) -> None:
        conn.settimeout(TCP_IDLE)
        try:
            while not self._stop.is_set():
                head = _read(conn, 2)
                if head is None:
                    return
                wire = _read(conn, int.from_bytes(head, "big"))
                if wire is None:
                    return
                reply = self.handler.handle(wire, udp=False, network=True)
                if reply is None:
                    return
                conn.sendall(len(reply).to_bytes(2, "big") + reply)
        except OSError:
            pass
        except Exception:
            log.exception("tcp connection")
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()


def _read(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _bind(listen: ListenAddress) -> tuple[socket.socket, socket.socket]:
    for _ in range(BIND_ATTEMPTS):
        udp = socket.socket(listen.family, socket.SOCK_DGRAM)
        tcp = socket.socket(listen.family, socket.SOCK_STREAM)
        try:
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            udp.bind((listen.host, listen.port))
            tcp.bind((listen.host, udp.getsockname()[1]))
            tcp.listen(128)
            return udp, tcp
        except OSError as e:
            udp.close()
            tcp.close()
            if listen.port != 0:
                raise OSError(e.errno, f"--listen: cannot listen on "
                                       f"{listen.host}:{listen.port}: {e.strerror}") from None
    raise OSError(f"--listen: no port free for both UDP and TCP on {listen.host}")
