"""A gRPC server for the probe tests, run inside a pod's network namespace:

    nsenter --net=NETNS python grpc_health_server.py HEALTH_PORT BARE_PORT STATUS_FILE

HEALTH_PORT serves grpc.health.v1.Health/Check with the statuses STATUS_FILE holds at each call
(JSON, service name -> SERVING / NOT_SERVING / ...; a service it lacks is NOT_FOUND, as the
health protocol says; HANG answers SERVING 3 s late). BARE_PORT is a gRPC server with no
services at all. Prints "listening" once both accept calls, then serves until killed."""
from __future__ import annotations

import json
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

NUMBERS = {"UNKNOWN": 0, "SERVING": 1, "NOT_SERVING": 2, "SERVICE_UNKNOWN": 3}


def main() -> None:
    health_port, bare_port, status_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

    def check(request: bytes, context: grpc.ServicerContext) -> bytes:
        # HealthCheckRequest: field 1 (service), length-delimited; short names only here.
        service = request[2:2 + request[1]].decode() if request else ""
        with open(status_file) as f:
            statuses = json.load(f)
        if service not in statuses:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {service!r}")
        if statuses[service] == "HANG":
            time.sleep(3)
            return bytes([0x08, NUMBERS["SERVING"]])
        return bytes([0x08, NUMBERS[statuses[service]]])

    handler = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(check)})
    servers = []
    for port, handlers in ((health_port, [handler]), (bare_port, [])):
        server = grpc.server(ThreadPoolExecutor(max_workers=2), handlers=handlers)
        server.add_insecure_port(f"0.0.0.0:{port}")
        server.start()
        servers.append(server)
    print("listening", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    for server in servers:
        server.stop(0)


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    main()
