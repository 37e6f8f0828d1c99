"""A small etcd v3 client over gRPC: the KV, Watch and compaction calls the storage needs.

Built on stubs generated from etcd's own protos (etcdpb/README.md says why not a PyPI client).
One channel carries all endpoints: gRPC's pick_first balancer connects to the first member that
answers and moves to another when it goes away, and every call waits for a ready connection
(wait_for_ready) up to its deadline, so a member's death costs a retry, not an error.
"""
from __future__ import annotations

import ipaddress
import os
import queue
import socket
import time
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlsplit

# Before grpc loads, which reads it once: its core would print its own lines (TLS failures,
# reconnects) to the server's stderr, where the storage reports what matters in one line.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import grpc  # noqa: E402

from .etcdpb import kv_pb2, rpc_pb2, rpc_pb2_grpc  # noqa: E402

# Unary calls: long enough for a leader election in a 3-member cluster.
CALL_TIMEOUT = 15.0
# The etcd v3 "range_end" that, with key "\0", means every key.
ALL_KEYS = b"\x00"

DELETE = kv_pb2.Event.DELETE


class EtcdError(OSError):
    """etcd could not be reached or refused a call; the message names the endpoints."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None, details: str = ""):
        super().__init__(message)
        self.code = code
        self.details = details or message

    def __str__(self) -> str:
        return self.args[0]


@dataclass(frozen=True)
class EtcdConfig:
    """kube-apiserver's --etcd-servers, --etcd-cafile, --etcd-certfile, --etcd-keyfile."""
    servers: tuple[str, ...]
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    @staticmethod
    def parse_servers(text: str) -> tuple[str, ...]:
        """`http://127.0.0.1:2379,https://...` -> the URLs; ValueError names the bad one."""
        servers = tuple(s.strip() for s in text.split(",") if s.strip())
        for url in servers:
            parts = urlsplit(url)
            try:
                port = parts.port
            except ValueError:
                port = None
            if parts.scheme not in ("http", "https") or not parts.hostname or not port:
                raise ValueError(f"--etcd-servers: {url!r} is not an http(s)://host:port URL")
        if not servers:
            raise ValueError("--etcd-servers: no server given")
        return servers


def prefix_end(prefix: bytes) -> bytes:
    """The range_end that selects every key starting with prefix (etcd's GetPrefixRangeEnd)."""
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[:i + 1])
    return ALL_KEYS


def _target(servers: tuple[str, ...]) -> tuple[str, str]:
    """A gRPC target naming every member's address, and the TLS host name to check."""
    addrs: list[str] = []
    family = "ipv4"
    for url in servers:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
        try:
            ips = [str(ipaddress.ip_address(host))]
        except ValueError:
            ips = sorted({str(info[4][0]) for info in socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM)})
        for ip in ips:
            if ":" in ip:
                family = "ipv6"
                addrs.append(f"[{ip}]:{port}")
            else:
                addrs.append(f"{ip}:{port}")
    if family == "ipv6":  # one scheme per target: write IPv4 ones as mapped addresses
        addrs = [a if a.startswith("[") else f"[::ffff:{a.rsplit(':', 1)[0]}]:"
                 f"{a.rsplit(':', 1)[1]}" for a in addrs]
    return f"{family}:{','.join(addrs)}", urlsplit(servers[0]).hostname or ""


def _read(path: str) -> bytes | None:
    if not path:
        return None
    with open(path, "rb") as f:
        return f.read()


class WatchStream:
    """One etcd Watch call with one watcher; iterate for WatchResponses, cancel() to end it."""

    def __init__(self, client: "EtcdClient", stub: rpc_pb2_grpc.WatchStub,
                 create: rpc_pb2.WatchCreateRequest, timeout: float | None):
        self._client = client
        self._requests: queue.Queue[rpc_pb2.WatchRequest | None] = queue.Queue()
        self._requests.put(rpc_pb2.WatchRequest(create_request=create))
        self._call = stub.Watch(iter(self._requests.get, None), wait_for_ready=True,
                                timeout=timeout)

    def __iter__(self) -> Iterator[rpc_pb2.WatchResponse]:
        """Raises EtcdError when the stream breaks (or is cancelled)."""
        try:
            yield from self._call
        except grpc.RpcError as e:
            raise self._client.error(e) from e

    def cancel(self) -> None:
        self._requests.put(None)
        self._call.cancel()


class EtcdClient:
    def __init__(self, config: EtcdConfig):
        self.config = config
        target, host = _target(config.servers)
        options = [("grpc.max_receive_message_length", 64 << 20),
                   ("grpc.lb_policy_name", "pick_first"),
                   ("grpc.initial_reconnect_backoff_ms", 200),
                   ("grpc.max_reconnect_backoff_ms", 2000)]
        if any(s.startswith("https://") for s in config.servers):
            creds = grpc.ssl_channel_credentials(_read(config.ca_file), _read(config.key_file),
                                                 _read(config.cert_file))
            options.append(("grpc.ssl_target_name_override", host))
            self._channel = grpc.secure_channel(target, creds, options)
        else:
            self._channel = grpc.insecure_channel(target, options)
        self._kv = rpc_pb2_grpc.KVStub(self._channel)
        self._watch = rpc_pb2_grpc.WatchStub(self._channel)

    def _call(self, method, request, timeout: float = CALL_TIMEOUT):
        """Retries while etcd answers UNAVAILABLE ("leader changed", "no leader", a member
        going away) until the deadline. A write may then run twice: the storage's Txns compare
        revisions, so a second run fails where the first succeeded, and the storage tells
        that case apart by the value it finds (see EtcdStorage.create)."""
        deadline = time.monotonic() + timeout
        pause = 0.05
        while True:
            try:
                return method(request, timeout=max(deadline - time.monotonic(), 0.01),
                              wait_for_ready=True)
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE or \
                        time.monotonic() + pause >= deadline:
                    raise self.error(e) from e
            time.sleep(pause)  # a new leader takes an election timeout or so
            pause = min(pause * 2, 1.0)

    def error(self, e: grpc.RpcError) -> EtcdError:
        code = e.code() if hasattr(e, "code") else None
        details = e.details() if hasattr(e, "details") else str(e)
        return EtcdError(f"etcd {','.join(self.config.servers)}: {details}", code, details)

    def range(self, key: bytes, range_end: bytes = b"", *, limit: int = 0, revision: int = 0,
              count_only: bool = False, timeout: float = CALL_TIMEOUT) -> rpc_pb2.RangeResponse:
        return self._call(self._kv.Range, rpc_pb2.RangeRequest(
            key=key, range_end=range_end, limit=limit, revision=revision,
            count_only=count_only), timeout)

    def txn(self, compare: list[rpc_pb2.Compare], success: list[rpc_pb2.RequestOp],
            failure: list[rpc_pb2.RequestOp]) -> rpc_pb2.TxnResponse:
        return self._call(self._kv.Txn, rpc_pb2.TxnRequest(
            compare=compare, success=success, failure=failure))

    def compact(self, revision: int) -> None:
        self._call(self._kv.Compact, rpc_pb2.CompactionRequest(revision=revision))

    def watch(self, key: bytes, range_end: bytes, start_revision: int, prev_kv: bool = True,
              timeout: float | None = None) -> WatchStream:
        """A watch from start_revision; timeout None: until cancelled."""
        return WatchStream(self, self._watch, rpc_pb2.WatchCreateRequest(
            key=key, range_end=range_end, start_revision=start_revision, prev_kv=prev_kv),
            timeout)

    def close(self) -> None:
        self._channel.close()


# Builders of the Txn parts the storage uses.

def compare_mod(key: bytes, revision: int) -> rpc_pb2.Compare:
    return rpc_pb2.Compare(key=key, target=rpc_pb2.Compare.MOD,
                           result=rpc_pb2.Compare.EQUAL, mod_revision=revision)


def compare_version(key: bytes, version: int,
                    result: int = rpc_pb2.Compare.EQUAL) -> rpc_pb2.Compare:
    return rpc_pb2.Compare(key=key, target=rpc_pb2.Compare.VERSION, result=result,
                           version=version)


def op_put(key: bytes, value: bytes) -> rpc_pb2.RequestOp:
    return rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=value))


def op_get(key: bytes) -> rpc_pb2.RequestOp:
    return rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=key))


def op_delete(key: bytes) -> rpc_pb2.RequestOp:
    return rpc_pb2.RequestOp(request_delete_range=rpc_pb2.DeleteRangeRequest(
        key=key, prev_kv=True))
