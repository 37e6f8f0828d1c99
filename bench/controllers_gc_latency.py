"""How fast the informer and the garbage collector follow the API: the time from a ConfigMap's
creation to an informer's on_add, and from an owner's DELETE to its last dependent being gone
(background) or to the owner itself being gone (foreground, kubectl's --cascade=foreground).

Starts a real pyapiserver on 127.0.0.1 (temp data dir) and runs the garbage collector in this
process, as pycontroller-manager does. Run:
    .venv/bin/python bench/controllers_gc_latency.py [--rounds N] [--dependents N]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from controllers import manager, registry  # noqa: E402
from controllers.context import Options  # noqa: E402
from kubeapi import kubeconfig  # noqa: E402
from kubeapi.informer import Informer, resource_path  # noqa: E402
from kubeapi.restclient import ApiClient  # noqa: E402
from kubeapi.status import ApiError  # noqa: E402

NS = "default"
CMS = resource_path("", "v1", "configmaps", NS)


def ms(values: list[float]) -> str:
    values = sorted(values)
    return (f"median {statistics.median(values) * 1000:.1f} ms, "
            f"p90 {values[int(len(values) * 0.9)] * 1000:.1f} ms")


def wait_gone(client: ApiClient, names: list[str], deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    for name in names:
        while True:
            try:
                client.get(f"{CMS}/{name}")
            except ApiError as e:
                if e.code == 404:
                    break
                raise
            if time.monotonic() > end:
                raise SystemExit(f"{name} not collected in {deadline} s")
            time.sleep(0.005)


def family(client: ApiClient, prefix: str, dependents: int) -> list[str]:
    owner = client.create(CMS, {"metadata": {"name": prefix}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": prefix,
           "uid": owner["metadata"]["uid"], "blockOwnerDeletion": True}
    names = [f"{prefix}-{i}" for i in range(dependents)]
    for name in names:
        client.create(CMS, {"metadata": {"name": name, "ownerReferences": [ref]}})
    return names


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--dependents", type=int, default=10)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="pyapiserver-bench-")
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "pyapiserver"),
                             "--bind-address", "127.0.0.1", "--port", "0", "--data-dir",
                             data_dir], stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()
    client = ApiClient(kubeconfig.load(os.path.join(data_dir, "admin.kubeconfig")), "bench")
    stop = threading.Event()
    gc = [c for c in registry.CONTROLLERS if c.name == "garbage-collector-controller"]
    runner = threading.Thread(target=manager.run, args=(client, gc, Options(), stop, 0.0))
    runner.start()
    try:
        seen: dict[str, float] = {}
        informer = Informer(client, CMS)
        informer.add_event_handler(on_add=lambda o: seen.setdefault(o["metadata"]["name"],
                                                                    time.monotonic()))
        informer.start()
        informer.wait_for_sync(30)
        adds = []
        for i in range(args.rounds * 5):
            name = f"probe-{i}"
            t0 = time.monotonic()
            client.create(CMS, {"metadata": {"name": name}})
            while name not in seen:
                time.sleep(0.0005)
            adds.append(seen[name] - t0)
        informer.stop()
        print(f"informer on_add after create:      {ms(adds)}")
        background, foreground = [], []
        for r in range(args.rounds):
            names = family(client, f"bg{r}", args.dependents)
            t0 = time.monotonic()
            client.delete(f"{CMS}/bg{r}", {"propagationPolicy": "Background"})
            wait_gone(client, names)
            background.append(time.monotonic() - t0)
            family(client, f"fg{r}", args.dependents)
            t0 = time.monotonic()
            client.delete(f"{CMS}/fg{r}", {"propagationPolicy": "Foreground"})
            wait_gone(client, [f"fg{r}"])
            foreground.append(time.monotonic() - t0)
        print(f"background, {args.dependents} dependents gone:   {ms(background)}")
        print(f"foreground, owner gone:            {ms(foreground)}")
        print(f"load average: {os.getloadavg()[0]:.2f}")
    finally:
        stop.set()
        runner.join(30)
        client.close()
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
