"""A container's securityContext as the runtime gets it (the kubelet's
determineEffectiveSecurityContext and convertToRuntimeSecurityContext): the container's fields
over the pod's, noNewPrivileges from allowPrivilegeEscalation, the masked and read-only /proc
paths from procMount, the seccomp profile from seccompProfile, and the runAsNonRoot check
against the image's user, which refuses to create the container (CreateContainerConfigError)."""
from __future__ import annotations

import os
from dataclasses import dataclass

from cri.api import Image, LinuxContainerConfig, SecurityProfile
from kubelet.pods import Pod

# Fields a container's securityContext shares with the pod's; the container's win.
_SHARED = ("runAsUser", "runAsGroup", "runAsNonRoot", "seLinuxOptions", "seccompProfile",
           "windowsOptions", "appArmorProfile")

# The kubelet's own lists (pkg/securitycontext), sent whatever the runtime's defaults are:
# procMount Default masks these, Unmasked none.
DEFAULT_MASKED_PATHS = ("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
                        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                        "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                        "/sys/devices/virtual/powercap")
DEFAULT_READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                          "/proc/sysrq-trigger")


@dataclass(frozen=True)
class SeccompSettings:
    profile_root: str           # <root-dir>/seccomp: where Localhost profiles are
    default: bool = False       # seccompDefault: RuntimeDefault where a pod names none


class NonRootError(ValueError):
    """runAsNonRoot cannot be honoured (the kubelet's message)."""


def effective(pod: Pod, container: dict) -> dict:
    pod_sc = pod.security_context
    result = {k: pod_sc[k] for k in _SHARED if pod_sc.get(k) is not None}
    result.update({k: v for k, v in (container.get("securityContext") or {}).items()
                   if v is not None})
    return result


def verify_run_as_non_root(pod: Pod, container: dict, image: Image | None) -> None:
    """The kubelet's verifyRunAsNonRoot: with runAsNonRoot, a runAsUser of 0, an image user
    of 0 (or none: root) or a user name that cannot be checked is refused."""
    sc = effective(pod, container)
    if not sc.get("runAsNonRoot"):
        return
    where = f'(pod: "{pod.full_name}", container: {container["name"]})'
    if sc.get("runAsUser") is not None:
        if int(sc["runAsUser"]) == 0:
            raise NonRootError(f"container's runAsUser breaks non-root policy {where}")
        return
    uid, username = (image.uid, image.username) if image is not None else (None, "")
    if uid is None and username:
        raise NonRootError(f"container has runAsNonRoot and image has non-numeric user "
                           f"({username}), cannot verify user is non-root {where}")
    if not uid:
        raise NonRootError(f"container has runAsNonRoot and image will run as root {where}")


def no_new_privileges(sc: dict) -> bool:
    """The kubelet's AddNoNewPrivileges: only an explicit allowPrivilegeEscalation: false sets
    it, and never for a privileged container or one given CAP_SYS_ADMIN."""
    if sc.get("privileged"):
        return False
    added = (sc.get("capabilities") or {}).get("add") or []
    if any(c.upper().removeprefix("CAP_") == "SYS_ADMIN" for c in added):
        return False
    return sc.get("allowPrivilegeEscalation") is False


def seccomp_profile(sc: dict, settings: SeccompSettings) -> SecurityProfile | None:
    """The kubelet's getSeccompProfile: the effective seccompProfile, else RuntimeDefault with
    seccompDefault, else Unconfined (None); a Localhost profile is a path under the root."""
    profile = sc.get("seccompProfile") or {}
    kind = profile.get("type") or ("RuntimeDefault" if settings.default else "Unconfined")
    if kind == "RuntimeDefault":
        return SecurityProfile("RuntimeDefault")
    if kind == "Localhost":
        return SecurityProfile("Localhost", os.path.join(settings.profile_root,
                                                         profile.get("localhostProfile", "")))
    return None


def apply(pod: Pod, container: dict, linux: LinuxContainerConfig,
          seccomp: SeccompSettings) -> None:
    """Fills the security fields of the container's runtime config."""
    sc = effective(pod, container)
    pod_sc = pod.security_context
    if sc.get("runAsUser") is not None:
        linux.run_as_user = int(sc["runAsUser"])
    if sc.get("runAsGroup") is not None:
        linux.run_as_group = int(sc["runAsGroup"])
    groups = [int(g) for g in pod_sc.get("supplementalGroups") or []]
    if pod_sc.get("fsGroup") is not None:
        groups.append(int(pod_sc["fsGroup"]))      # the kubelet adds fsGroup to the groups
    linux.supplemental_groups = sorted(set(groups))
    linux.readonly_rootfs = bool(sc.get("readOnlyRootFilesystem"))
    linux.privileged = bool(sc.get("privileged"))
    caps = sc.get("capabilities") or {}
    linux.add_capabilities = [str(c) for c in caps.get("add") or []]
    linux.drop_capabilities = [str(c) for c in caps.get("drop") or []]
    linux.no_new_privs = no_new_privileges(sc)
    linux.sysctls = {s["name"]: str(s.get("value", ""))
                     for s in pod_sc.get("sysctls") or []}
    linux.seccomp = seccomp_profile(sc, seccomp)
    if sc.get("procMount") != "Unmasked":
        linux.masked_paths = list(DEFAULT_MASKED_PATHS)
        linux.readonly_paths = list(DEFAULT_READONLY_PATHS)
