"""Pod sandboxes on our own parts: a named network namespace set up by CNI (none for
hostNetwork), pinned IPC and UTS namespaces (pinns.py), the pod's shared /dev/shm (a tmpfs), and
a record of all of it under <root>/sandboxes/<id>/ so that a restarted kubelet finds them.

No process runs for a sandbox: its namespaces are held by bind mounts."""
from __future__ import annotations

import base64
import errno
import os
import secrets
import threading
import time
from dataclasses import asdict

from cni import cache as cni_cache, conf as cni_conf
from cni.errors import CNIError
from cni.invoker import CNI, RuntimeConf
from netns import links, named
from netns.rtnl import open_in
from linux.constants import MNT_DETACH, MS_NODEV, MS_NOEXEC, MS_NOSUID
from linux.syscalls import Syscalls

from cri import pinns
from cri.api import (SANDBOX_NOTREADY, SANDBOX_READY, CRIError, NotFound, PodSandboxConfig,
                     PodSandboxMetadata, PodSandboxStatus)
from cri.checkpoint import Records

SHM_SIZE = 64 << 20   # containerd's default /dev/shm size for a pod
IFNAME = "eth0"


class Sandboxes:
    def __init__(self, root: str, netns_dir: str, cni: CNI, cni_conf_dir: str) -> None:
        self.records = Records(os.path.join(root, "sandboxes"), "sandbox.json")
        pinns.make_shared_dir(self.records.root)
        self.netns_dir = netns_dir
        self.cni = cni
        self.cni_conf_dir = cni_conf_dir
        self._lock = threading.Lock()
        records, self._broken = self.records.load_all()
        self._by_id: dict[str, dict] = records
        self._by_pod: dict[str, set[str]] = {}
        for record in records.values():
            self._by_pod.setdefault(record["uid"], set()).add(record["id"])

    # -- queries ------------------------------------------------------------------------------

    def get(self, sandbox_id: str) -> dict:
        with self._lock:
            record = self._by_id.get(sandbox_id)
        if record is None:
            raise NotFound(f"pod sandbox {sandbox_id} not found")
        return record

    def status(self, sandbox_id: str) -> PodSandboxStatus:
        return _status(self.get(sandbox_id))

    def list(self, pod_uid: str | None = None) -> list[PodSandboxStatus]:
        with self._lock:
            if pod_uid is None:
                records = list(self._by_id.values())
            else:
                records = [self._by_id[i] for i in self._by_pod.get(pod_uid, ())]
        return [_status(r) for r in records]

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._by_id)

    # -- lifecycle ----------------------------------------------------------------------------

    def run(self, config: PodSandboxConfig) -> str:
        net = None if config.host_network else _load_network(self.cni_conf_dir)
        sandbox_id = secrets.token_hex(32)
        d = self.records.dir(sandbox_id)
        m = config.metadata
        # Every path it will have is recorded before anything exists: whatever a crash leaves
        # halfway, tearing down finds it.
        record = {"id": sandbox_id, "name": m.name, "uid": m.uid, "namespace": m.namespace,
                  "attempt": m.attempt, "created_at": time.time_ns(), "state": SANDBOX_NOTREADY,
                  "hostname": config.hostname, "log_directory": config.log_directory,
                  "labels": config.labels, "annotations": config.annotations,
                  "host_network": config.host_network, "host_ipc": config.host_ipc,
                  "host_pid": config.host_pid, "cgroup_parent": config.cgroup_parent,
                  "port_mappings": [asdict(p) for p in config.port_mappings],
                  "netns": "" if net is None else named.path_of(sandbox_id, self.netns_dir),
                  "network": "" if net is None else net.name,
                  "pins": {kind: os.path.join(d, "ns", kind) for kind, shared in
                           (("ipc", config.host_ipc), ("uts", config.host_network)) if not shared},
                  "shm": "" if config.host_ipc else os.path.join(d, "shm"), "ips": []}
        self.records.create(sandbox_id, record)
        with self._lock:
            self._by_id[sandbox_id] = record
            self._by_pod.setdefault(m.uid, set()).add(sandbox_id)
        try:
            self._set_up(record, net)
        except BaseException as e:
            try:
                self._tear_down(record)
            finally:
                self._forget(sandbox_id)
            if isinstance(e, CRIError):
                raise
            if isinstance(e, (OSError, CNIError, ValueError)):
                raise CRIError(f"failed to set up sandbox: {e}") from None
            raise
        return sandbox_id

    def _set_up(self, record: dict, net) -> None:
        if record["log_directory"]:
            os.makedirs(record["log_directory"], mode=0o755, exist_ok=True)
        pins = record["pins"]
        if pins:
            pinns.pin(os.path.dirname(next(iter(pins.values()))), ipc="ipc" in pins,
                      uts="uts" in pins, hostname=record["hostname"])
        if record["shm"]:
            os.mkdir(record["shm"], 0o755)
            Syscalls().mount("shm", record["shm"], "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                             f"mode=1777,size={SHM_SIZE}")
        if net is not None:
            named.create(record["id"], self.netns_dir)
            _loopback_up(record["netns"])
            result = self.cni.add(net, self._runtime_conf(record))
            record["ips"] = [ip["address"].split("/")[0] for ip in result.get("ips") or []]
        record["state"] = SANDBOX_READY
        self.records.save(record["id"], record)

    def _runtime_conf(self, record: dict) -> RuntimeConf:
        args = [("IgnoreUnknown", "1"), ("K8S_POD_NAMESPACE", record["namespace"]),
                ("K8S_POD_NAME", record["name"]), ("K8S_POD_INFRA_CONTAINER_ID", record["id"]),
                ("K8S_POD_UID", record["uid"])]
        caps = {}
        if record["port_mappings"]:
            caps["portMappings"] = [
                {"hostPort": p["host_port"], "containerPort": p["container_port"],
                 "protocol": p["protocol"].lower(), "hostIP": p["host_ip"]}
                for p in record["port_mappings"]]
        return RuntimeConf(record["id"], record["netns"], IFNAME, args, caps)

    def _network(self, record: dict):
        """The network the sandbox was added to: from the conf dir, else from the CNI cache
        (the file may have changed or gone since)."""
        try:
            return cni_conf.load(self.cni_conf_dir, record["network"])
        except CNIError:
            entry = cni_cache.read(self.cni.cache_dir, record["network"], record["id"], IFNAME)
            if entry is None:
                return None
            return cni_conf.parse(base64.b64decode(entry["config"]))

    def stop(self, sandbox_id: str) -> None:
        """Network down, namespaces unpinned, /dev/shm unmounted; its containers must be
        stopped already. Repeatable."""
        record = self.get(sandbox_id)
        try:
            self._tear_down(record)
        except (OSError, CNIError) as e:
            raise CRIError(f"failed to stop sandbox {sandbox_id}: {e}") from None
        record["state"] = SANDBOX_NOTREADY
        self.records.save(sandbox_id, record)

    def _tear_down(self, record: dict) -> None:
        """Undoes whatever of the sandbox exists; what does not is skipped."""
        if record["netns"]:
            attached = cni_cache.read(self.cni.cache_dir, record["network"], record["id"],
                                      IFNAME) is not None
            if attached or os.path.exists(record["netns"]):
                net = self._network(record)
                if net is not None:
                    self.cni.delete(net, self._runtime_conf(record))
            named.delete(record["id"], self.netns_dir)
            record["ips"] = []
        pinns.unpin(record["pins"])
        if record["shm"]:
            try:
                Syscalls().umount2(record["shm"], MNT_DETACH)
            except OSError as e:
                if e.errno not in (errno.EINVAL, errno.ENOENT):
                    raise

    def remove(self, sandbox_id: str) -> None:
        with self._lock:
            record = self._by_id.get(sandbox_id)
        if record is None:
            return
        self.stop(sandbox_id)
        self._forget(sandbox_id)

    def _forget(self, sandbox_id: str) -> None:
        self.records.remove(sandbox_id)
        with self._lock:
            record = self._by_id.pop(sandbox_id, None)
            of_pod = self._by_pod.get(record["uid"]) if record else None
            if of_pod is not None:
                of_pod.discard(sandbox_id)
                if not of_pod:
                    del self._by_pod[record["uid"]]

    def remove_leftovers(self) -> None:
        """Directories a crash left without a record (found at start), with whatever they may
        hold, and named network namespaces of no sandbox."""
        while self._broken:
            self._remove_broken(self._broken.pop())
        sandboxes = set(self.ids())
        for name in named.list_names(self.netns_dir):
            if name not in sandboxes:
                named.delete(name, self.netns_dir)

    def _remove_broken(self, sandbox_id: str) -> None:
        d = self.records.dir(sandbox_id)
        pinns.unpin({"ipc": os.path.join(d, "ns", "ipc"), "uts": os.path.join(d, "ns", "uts")})
        try:
            Syscalls().umount2(os.path.join(d, "shm"), MNT_DETACH)
        except OSError:
            pass
        named.delete(sandbox_id, self.netns_dir)
        self.records.remove(sandbox_id)


def _load_network(conf_dir: str):
    try:
        return cni_conf.load(conf_dir)
    except CNIError as e:
        raise CRIError(f"network plugin not ready: {e}") from None


def _status(r: dict) -> PodSandboxStatus:
    return PodSandboxStatus(
        id=r["id"], metadata=PodSandboxMetadata(r["name"], r["uid"], r["namespace"],
                                                r["attempt"]),
        state=r["state"], created_at=r["created_at"], ips=list(r["ips"]),
        netns_path=r["netns"] if r["state"] == SANDBOX_READY else "",
        labels=r["labels"], annotations=r["annotations"], host_network=r["host_network"],
        log_directory=r["log_directory"], cgroup_parent=r["cgroup_parent"])


def _loopback_up(netns_path: str) -> None:
    """The pod's lo up whatever the CNI chain holds, as containerd's CRI always adds the
    loopback network: localhost in the pod works (port-forward dials it)."""
    rtnl = open_in(netns_path)
    try:
        links.set_up(rtnl, links.get_link(rtnl, "lo").index)
    finally:
        rtnl.close()
