"""A pod's volumes on this node, laid out as the kubelet does:
<root-dir>/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>.

- emptyDir: a directory (0777); medium Memory: a tmpfs sized by sizeLimit, else by the node's
  memory. A sizeLimit on disk is enforced by evicting the pod (over_limit, checked periodically).
- hostPath: the host's path itself, after its type check (DirectoryOrCreate and FileOrCreate
  make what is missing); persistentVolumeClaim: the hostPath or local path of the bound
  PersistentVolume (claims.py), resolved once per pod and volume.
- configMap (on disk), secret, downwardAPI and projected (on a tmpfs, as the kubelet wraps them
  in a Memory emptyDir): written with the atomic writer, again at every pod sync, so updates of
  the objects and of the pod's labels reach the files. A projected serviceAccountToken is the
  token manager's (token_manager): a TokenRequest bound to the pod, refreshed when it ages.

setup() is idempotent; teardown() unmounts what is mounted and removes the pod's directory."""
from __future__ import annotations

import logging
import os
import shutil
import stat

from kubeapi.quantity import parse_quantity
from linux.constants import MNT_DETACH, MS_NODEV, MS_NOSUID
from linux.syscalls import Syscalls

from kubelet import downward
from kubelet.config_objects import ConfigObjects, ObjectMissing, ObjectUnavailable
from kubelet.pods import Pod
from kubelet.volumes import atomic_writer, claims
from kubelet.volumes.atomic_writer import File
from kubelet.volumes.fs_group import apply_fs_group
from kubelet.volumes.token_manager import TokenManager, projection_key

log = logging.getLogger("kubelet.volumes")

PLUGIN_DIRS = {"emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
               "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
               "projected": "kubernetes.io~projected"}
ON_TMPFS = ("secret", "downwardAPI", "projected")
DEFAULT_MODE = 0o644


class VolumeError(Exception):
    """A volume could not be set up; the message is the kubelet's FailedMount text."""

    def __init__(self, volume: str, cause: str) -> None:
        super().__init__(f'MountVolume.SetUp failed for volume "{volume}" : {cause}')
        self.volume = volume


class Volumes:
    def __init__(self, root_dir: str, objects: ConfigObjects, node_cpus: int,
                 node_memory: int, syscalls: Syscalls | None = None) -> None:
        self.syscalls = syscalls or Syscalls()  # linux.fake.RecordingSyscalls in unit tests
        self.pods_dir = os.path.join(root_dir, "pods")
        self.objects = objects
        self.node_memory = node_memory
        # resourceFieldRef in a volume: no addresses, the node's capacity for missing limits
        self.info = downward.PodInfo([], [], node_cpus, node_memory)
        self.tokens = TokenManager(objects.client)
        self._claimed: dict[tuple[str, str], str] = {}  # (pod uid, volume) -> the PV's path

    def pod_dir(self, uid: str) -> str:
        return os.path.join(self.pods_dir, uid)

    def path(self, pod: Pod, volume: dict) -> str:
        """Where the volume is on the host."""
        if "hostPath" in volume:
            return volume["hostPath"].get("path", "")
        if "persistentVolumeClaim" in volume:
            return self._claimed.get((pod.uid, volume["name"]), "")
        kind = _kind(volume)
        return os.path.join(self.pod_dir(pod.uid), "volumes", PLUGIN_DIRS[kind],
                            volume["name"])

    def setup(self, pod: Pod) -> dict[str, str]:
        """Makes (or refreshes) every volume of the pod; volume name -> host path."""
        paths = {}
        for volume in pod.volumes:
            name = volume.get("name", "")
            try:
                paths[name] = self._setup_one(pod, volume)
            except (OSError, ValueError, ObjectMissing, ObjectUnavailable,
                    downward.FieldError) as e:
                raise VolumeError(name, _cause(e)) from None
        return paths

    def _setup_one(self, pod: Pod, volume: dict) -> str:
        if "hostPath" in volume:
            source = volume["hostPath"]
            check_host_path(source.get("path", ""), source.get("type") or "")
            return source["path"]
        if "persistentVolumeClaim" in volume:
            key = (pod.uid, volume["name"])
            if key not in self._claimed:
                path, kind = claims.volume_path(self.objects.client, pod.namespace,
                                                volume["persistentVolumeClaim"].get("claimName",
                                                                                    ""))
                check_host_path(path, kind)
                self._claimed[key] = path
            return self._claimed[key]
        kind = _kind(volume)
        if kind is None:
            raise ValueError(f"volume type {_sources(volume)} is not supported by pykubelet")
        target = self.path(pod, volume)
        fs_group = pod.security_context.get("fsGroup")
        if kind == "emptyDir":
            source = volume.get("emptyDir") or {}
            fresh = not os.path.isdir(target)
            if source.get("medium") == "Memory":
                limit = source.get("sizeLimit")
                self._tmpfs(target, int(parse_quantity(limit)) if limit else self.node_memory)
            elif source.get("medium") not in (None, ""):
                raise ValueError(f"unsupported medium {source['medium']!r}")
            else:
                _directory(target)
            if fs_group is not None and fresh:
                apply_fs_group(target, int(fs_group), readonly=False)
            return target
        if kind in ON_TMPFS:
            self._tmpfs(target, self.node_memory)
        else:
            _directory(target)
        atomic_writer.write(target, self._payload(pod, kind, volume[kind]))
        if fs_group is not None:
            # rewritten payloads get it again, as the kubelet sets ownership on every SetUp
            apply_fs_group(target, int(fs_group), readonly=True)
        return target

    def _tmpfs(self, target: str, size: int) -> None:
        if os.path.ismount(target):
            return
        os.makedirs(target, exist_ok=True)
        self.syscalls.mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size}")

    # -- payloads -------------------------------------------------------------------------------

    def _payload(self, pod: Pod, kind: str, source: dict) -> dict[str, File]:
        default = source.get("defaultMode", DEFAULT_MODE)
        namespace = pod.namespace
        if kind == "configMap":
            return _keys(self._read(self.objects.config_map, namespace, source), source,
                         default, "configmap references non-existent config key")
        if kind == "secret":
            return _keys(self._read(self.objects.secret, namespace,
                                    dict(source, name=source.get("secretName", ""))),
                         source, default, "references non-existent secret key")
        if kind == "downwardAPI":
            return _downward(pod, source.get("items") or [], default, self.info)
        payload: dict[str, File] = {}
        for projection in source.get("sources") or []:
            if "configMap" in projection:
                sub = projection["configMap"]
                payload.update(_keys(self._read(self.objects.config_map, namespace, sub), sub,
                                     default, "configmap references non-existent config key"))
            elif "secret" in projection:
                sub = projection["secret"]
                payload.update(_keys(self._read(self.objects.secret, namespace, sub), sub,
                                     default, "references non-existent secret key"))
            elif "downwardAPI" in projection:
                payload.update(_downward(pod, projection["downwardAPI"].get("items") or [],
                                         default, self.info))
            elif "serviceAccountToken" in projection:
                sub = projection["serviceAccountToken"] or {}
                token = self.tokens.token(projection_key(pod, sub))
                # as the kubelet: readable by the pod's one user (and fsGroup) only, when the
                # pod names them
                fs_user = fs_user_of(pod)
                fs_group = pod.security_context.get("fsGroup")
                mode = 0o600 if fs_user is not None or fs_group is not None else default
                payload[sub.get("path", "")] = File(token.encode(), mode, fs_user)
            else:
                log.warning("projected volume of %s: source %s is not supported by pykubelet; "
                            "left out", pod.full_name, sorted(projection))
        return payload

    @staticmethod
    def _read(read, namespace: str, ref: dict) -> dict[str, bytes]:
        try:
            return read(namespace, ref.get("name", ""))
        except ObjectMissing:
            if ref.get("optional"):
                return {}
            raise

    # -- disk use -------------------------------------------------------------------------------

    def over_limit(self, pod: Pod) -> str | None:
        """The eviction message if an emptyDir on disk holds more than its sizeLimit."""
        for volume in pod.volumes:
            source = volume.get("emptyDir")
            if source is None or source.get("medium") or not source.get("sizeLimit"):
                continue
            limit = source["sizeLimit"]
            if disk_usage(self.path(pod, volume)) > parse_quantity(limit):
                return f'Usage of EmptyDir volume "{volume["name"]}" exceeds the limit ' \
                       f'"{limit}". '
        return None

    # -- removal --------------------------------------------------------------------------------

    def teardown(self, uid: str) -> None:
        """Unmounts every volume of the pod (deepest first), then removes its directory."""
        directory = self.pod_dir(uid)
        self.tokens.forget_pod(uid)
        for key in [k for k in self._claimed if k[0] == uid]:
            del self._claimed[key]
        for target in sorted(_mounts_below(directory), key=len, reverse=True):
            self.syscalls.umount2(target, MNT_DETACH)
        shutil.rmtree(directory, ignore_errors=True)
        if os.path.exists(directory):
            raise OSError(f"{directory} could not be removed")

    def pod_uids(self) -> list[str]:
        try:
            return os.listdir(self.pods_dir)
        except FileNotFoundError:
            return []


def fs_user_of(pod: Pod) -> int | None:
    """The user every container and init container runs as, when they all name the same one
    (the kubelet's FsUserFrom); None otherwise."""
    pod_user = pod.security_context.get("runAsUser")
    users = {((c.get("securityContext") or {}).get("runAsUser", pod_user))
             for c in pod.init_containers + pod.containers}
    if len(users) != 1 or None in users:
        return None
    return int(users.pop())


def check_host_path(path: str, kind: str) -> None:
    """The hostPath type check, with the kubelet's messages."""
    def is_type(test) -> bool:
        try:
            return test(os.stat(path).st_mode)
        except OSError:
            return False
    if kind == "":
        return
    if kind == "DirectoryOrCreate":
        if not os.path.lexists(path):
            os.makedirs(path, mode=0o755)
            return
        kind = "Directory"
    elif kind == "FileOrCreate":
        if not os.path.lexists(path):
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
            return
        kind = "File"
    checks = {"Directory": (stat.S_ISDIR, "a directory"), "File": (stat.S_ISREG, "a file"),
              "Socket": (stat.S_ISSOCK, "a socket file"),
              "CharDevice": (stat.S_ISCHR, "a character device"),
              "BlockDevice": (stat.S_ISBLK, "a block device")}
    if kind not in checks:
        raise ValueError(f"{kind} is an invalid volume type")
    test, what = checks[kind]
    if not is_type(test):
        raise ValueError(f"hostPath type check failed: {path} is not {what}")


def disk_usage(path: str) -> int:
    """Bytes allocated below path, as du counts them."""
    total = 0
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                continue
    return total


def _kind(volume: dict) -> str | None:
    sources = _sources(volume)
    if not sources:
        return "emptyDir"
    return sources[0] if sources[0] in PLUGIN_DIRS else None


def _sources(volume: dict) -> list[str]:
    return [k for k in volume if k != "name" and volume[k] is not None]


def _directory(target: str) -> None:
    if not os.path.isdir(target):
        os.makedirs(target)
        os.chmod(target, 0o777)


def _keys(data: dict[str, bytes], source: dict, default: int, missing: str
          ) -> dict[str, File]:
    items = source.get("items")
    if not items:
        return {k: File(v, default) for k, v in data.items()}
    payload = {}
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if source.get("optional"):
                continue
            raise ValueError(f"{missing}: {key}")
        payload[item.get("path") or key] = File(data[key], item.get("mode", default))
    return payload


def _downward(pod: Pod, items: list[dict], default: int, info: downward.PodInfo
              ) -> dict[str, File]:
    payload = {}
    for item in items:
        if "fieldRef" in item:
            value = downward.field_value(pod, item["fieldRef"].get("fieldPath", ""))
        elif "resourceFieldRef" in item:
            ref = item["resourceFieldRef"]
            value = downward.resource_value(pod, ref.get("containerName", ""),
                                            ref.get("resource", ""), ref.get("divisor"), info)
        else:
            continue
        payload[item.get("path", "")] = File(value.encode(), item.get("mode", default))
    return payload


def _mounts_below(directory: str) -> list[str]:
    prefix = directory.rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            target = line.split()[4].replace("\\040", " ")
            if target.startswith(prefix):
                found.append(target)
    return found


def _cause(e: Exception) -> str:
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    return str(e)
