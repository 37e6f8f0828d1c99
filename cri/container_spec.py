"""The OCI config.json of a pod's container (the runtime's side of CreateContainer, as
containerd's CRI builds it): runc's default spec, the Kubernetes command rules against the
image's Entrypoint and Cmd, the image's Env under the pod's, WorkingDir, User; the sandbox's
network, IPC and UTS namespaces joined by path and its /dev/shm; a PID namespace of its own or
its target's (an ephemeral container's), a mount namespace of its own; the container's cgroup
under the pod's."""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from overlay import image_config
from runtime import capabilities as caps_mod
from runtime.default_spec import default_spec
from runtime.image_bundle import read_in_root

from cri import seccomp_profiles
from cri.api import ContainerConfig

# containerd's default capability set for CRI containers (docker's, too).
DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


class SpecError(ValueError):
    """The container cannot be built from this config and image (CreateContainerError)."""


@dataclass
class SandboxNamespaces:
    """What a container shares with its sandbox: namespace paths ("" = the host's), /dev/shm."""
    netns: str
    ipc: str
    uts: str
    shm_dir: str
    hostname: str
    cgroup_parent: str
    host_pid: bool = False
    pid: str = ""           # another container's PID namespace to join, by path


def command(config: ContainerConfig, image: dict) -> tuple[list[str], list[str]]:
    """(entrypoint, arguments): the pod's command replaces the image's Entrypoint and then its
    Cmd is dropped too; the pod's args alone replace only Cmd."""
    c = image.get("config") or {}
    entrypoint, args = list(config.command), list(config.args)
    if not entrypoint:
        if not args:
            args = list(c.get("Cmd") or [])
        image_entrypoint = list(c.get("Entrypoint") or [])
        if image_entrypoint != [""]:
            entrypoint = image_entrypoint
    if not entrypoint and not args:
        raise SpecError("no command specified")
    return entrypoint, args


def build(container_id: str, config: ContainerConfig, image: dict, rootfs: str,
          sandbox: SandboxNamespaces, unified_cgroups: bool) -> dict:
    entrypoint, args = command(config, image)
    c = image.get("config") or {}
    # The image's process with our argv (Entrypoint = everything, no Cmd) and env on top.
    resolved_image = dict(image, config=dict(c, Entrypoint=entrypoint + args, Cmd=None))
    if config.linux.run_as_username:
        resolved_image["config"]["User"] = config.linux.run_as_username
    env = [f"{k}={v}" for k, v in config.envs]
    if sandbox.hostname:
        env.insert(0, f"HOSTNAME={sandbox.hostname}")
    try:
        process = image_config.process(resolved_image, [], env,
                                       read_in_root(rootfs, "/etc/passwd"),
                                       read_in_root(rootfs, "/etc/group"))
    except ValueError as e:
        raise SpecError(str(e)) from None
    spec = default_spec(unified_cgroups)
    p = spec["process"]
    if config.tty and not any(e.startswith("TERM=") for e in process.env):
        process.env.append("TERM=xterm")    # containerd's WithTTY
    p.update(terminal=config.tty, args=process.args, env=process.env,
             cwd=config.working_dir or process.cwd, noNewPrivileges=config.linux.no_new_privs)
    p.pop("rlimits", None)  # the container inherits the shim's, as under containerd
    uid, gid = process.uid, process.gid
    if config.linux.run_as_user is not None:
        # containerd's WithUserID: the group is that of the uid's passwd entry, else 0
        uid = config.linux.run_as_user
        gid = _passwd_gid(read_in_root(rootfs, "/etc/passwd"), uid)
    if config.linux.run_as_group is not None:
        gid = config.linux.run_as_group
    p["user"] = {"uid": uid, "gid": gid}
    groups = sorted(set(process.additional_gids) | set(config.linux.supplemental_groups))
    if groups:
        p["user"]["additionalGids"] = groups
    caps = capabilities(config.linux.add_capabilities, config.linux.drop_capabilities,
                        config.linux.privileged)
    p["capabilities"] = {"bounding": caps, "effective": list(caps), "permitted": list(caps)}
    if config.linux.oom_score_adj is not None:
        p["oomScoreAdj"] = config.linux.oom_score_adj
    spec["root"] = {"path": rootfs, "readonly": config.linux.readonly_rootfs}
    spec.pop("hostname", None)      # the sandbox's UTS namespace has it already
    spec["annotations"] = dict(config.annotations)
    spec["mounts"] = _mounts(spec["mounts"], config, sandbox)
    linux = spec["linux"]
    root_propagation = _root_propagation(config)
    if root_propagation:
        linux["rootfsPropagation"] = root_propagation
    linux["namespaces"] = _namespaces(linux["namespaces"], sandbox)
    linux["cgroupsPath"] = f"{sandbox.cgroup_parent.rstrip('/')}/{container_id}"
    resources = dict(linux["resources"])
    resources.update(config.linux.resources)
    linux["resources"] = resources
    if config.linux.sysctls:
        linux["sysctl"] = dict(config.linux.sysctls)
    linux["maskedPaths"] = list(config.linux.masked_paths)
    linux["readonlyPaths"] = list(config.linux.readonly_paths)
    if config.linux.privileged:
        _privileged(spec)     # containerd gives a privileged container no seccomp profile
        return spec
    try:
        profile = seccomp_profiles.linux_seccomp(config.linux.seccomp, caps)
    except seccomp_profiles.ProfileError as e:
        raise SpecError(str(e)) from None
    if profile is not None:
        linux["seccomp"] = profile
    return spec


def _cap_name(name: str) -> str:
    """Kubernetes names capabilities without the prefix (NET_ADMIN); the OCI config with."""
    name = name.upper()
    return name if name.startswith("CAP_") else "CAP_" + name


def _all_caps() -> list[str]:
    """Every capability this kubelet holds (containerd's WithAllCurrentCapabilities): a host
    whose bounding set lacks one cannot give it to a container either."""
    with open("/proc/self/status") as f:
        bounding = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    return [name for number, name in enumerate(caps_mod.NAMES[:caps_mod.last_cap() + 1])
            if bounding >> number & 1]


def capabilities(add: list[str], drop: list[str], privileged: bool) -> list[str]:
    """The container's capability set, as containerd makes it: every capability for a
    privileged container; else the default set, or all of them if add has ALL, or none if drop
    has ALL, then the other adds, then the other drops."""
    if privileged:
        return _all_caps()
    add_names = [_cap_name(c) for c in add]
    drop_names = [_cap_name(c) for c in drop]
    caps = list(DEFAULT_CAPS)
    if "CAP_ALL" in add_names:
        caps = _all_caps()
    if "CAP_ALL" in drop_names:
        caps = []
    caps += [c for c in add_names if c != "CAP_ALL" and c not in caps]
    return [c for c in caps if c not in drop_names]


def _passwd_gid(passwd: str | None, uid: int) -> int:
    for line in (passwd or "").splitlines():
        fields = line.split(":")
        if len(fields) > 3 and fields[2] == str(uid) and fields[3].isdigit():
            return int(fields[3])
    return 0


# Directories of /dev whose nodes a privileged container does not get (containerd's list).
_SKIPPED_DEV_DIRS = ("pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev")


def host_devices(root: str = "/dev") -> list[dict]:
    """The host's device nodes, as linux.devices entries."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == root:
            dirnames[:] = [d for d in dirnames if d not in _SKIPPED_DEV_DIRS]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if path == "/dev/console":
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode):
                kind = "c"
            elif stat.S_ISBLK(st.st_mode):
                kind = "b"
            else:
                continue
            found.append({"path": path, "type": kind, "major": os.major(st.st_rdev),
                          "minor": os.minor(st.st_rdev), "fileMode": stat.S_IMODE(st.st_mode),
                          "uid": st.st_uid, "gid": st.st_gid})
    return found


def _privileged(spec: dict) -> None:
    """What privileged adds (containerd): the host's devices, all allowed; /sys and the
    cgroup mount writable; no masked or read-only paths."""
    linux = spec["linux"]
    linux["devices"] = host_devices()
    linux["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
    linux.pop("maskedPaths", None)
    linux.pop("readonlyPaths", None)
    for m in spec["mounts"]:
        if m["destination"] in ("/sys", "/sys/fs/cgroup"):
            m["options"] = [o for o in m.get("options", []) if o != "ro"]


def stop_signal(image: dict) -> str:
    return (image.get("config") or {}).get("StopSignal") or "SIGTERM"


def _namespaces(defaults: list[dict], sandbox: SandboxNamespaces) -> list[dict]:
    shared = {"network": sandbox.netns, "ipc": sandbox.ipc, "uts": sandbox.uts}
    result = []
    for ns in defaults:
        kind = ns["type"]
        if kind in shared:
            if shared[kind]:
                result.append({"type": kind, "path": shared[kind]})
            # "": the host's namespace, which a container gets by not naming the type
        elif kind == "pid" and sandbox.pid:
            result.append({"type": kind, "path": sandbox.pid})
        elif kind == "pid" and sandbox.host_pid:
            continue
        else:
            result.append(ns)
    return result


def _root_propagation(config: ContainerConfig) -> str:
    """As containerd: a volume that propagates needs the container's root to pass events on too
    (rshared for a bidirectional one, else rslave), or it stops being a peer of the host's."""
    kinds = {m.propagation for m in config.mounts}
    return "rshared" if "rshared" in kinds else "rslave" if "rslave" in kinds else ""


def _mounts(defaults: list[dict], config: ContainerConfig, sandbox: SandboxNamespaces
            ) -> list[dict]:
    mounts = []
    for m in defaults:
        if m["destination"] == "/dev/shm" and sandbox.shm_dir:
            m = {"destination": "/dev/shm", "type": "bind", "source": sandbox.shm_dir,
                 "options": ["rbind", "nosuid", "nodev", "noexec"]}
        mounts.append(m)
    for m in config.mounts:
        options = ["rbind", {"private": "rprivate", "rslave": "rslave",
                             "rshared": "rshared"}.get(m.propagation, "rprivate")]
        if m.readonly:
            options.append("ro")
        mounts.append({"destination": m.container_path, "type": "bind",
                       "source": m.host_path, "options": options})
    return mounts
