"""The image config -> OCI runtime config conversion (image-spec conversion.md), as data: the
process fields (args, env, cwd, user) and the annotations. The runtime merges them into its
default spec with the user's overrides."""
from __future__ import annotations

from overlay.errors import ImageError

ANNOTATION_FIELDS = (
    ("os", "org.opencontainers.image.os"),
    ("architecture", "org.opencontainers.image.architecture"),
    ("variant", "org.opencontainers.image.variant"),
    ("os.version", "org.opencontainers.image.os.version"),
    ("author", "org.opencontainers.image.author"),
    ("created", "org.opencontainers.image.created"),
)
EXPOSED_PORTS = "org.opencontainers.image.exposedPorts"
STOP_SIGNAL = "org.opencontainers.image.stopSignal"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Process:
    __slots__ = ("args", "env", "cwd", "uid", "gid", "additional_gids")

    def __init__(self, args: list[str], env: list[str], cwd: str) -> None:
        self.args = args
        self.env = env
        self.cwd = cwd
        self.uid = 0
        self.gid = 0
        self.additional_gids: list[int] = []


def process(config: dict, command: list[str], env: list[str], passwd: str | None,
            group: str | None, user: str | None = None) -> Process:
    """The process of a container from image config `config`: Entrypoint + Cmd (`command`
    replaces Cmd, as in docker run), Env with `env` (NAME=VALUE) on top, WorkingDir, and User
    (or `user`) resolved through the image's /etc/passwd and /etc/group texts."""
    c = config.get("config") or {}
    entrypoint = _strings(c.get("Entrypoint"), "config.Entrypoint")
    args = entrypoint + (list(command) if command else _strings(c.get("Cmd"), "config.Cmd"))
    if not args:
        raise ImageError("the image has no Entrypoint or Cmd: give a command")
    merged = _merge_env(_strings(c.get("Env"), "config.Env"), env)
    if not any(e.startswith("PATH=") for e in merged):
        merged.insert(0, DEFAULT_PATH)
    p = Process(args=args, env=merged, cwd=c.get("WorkingDir") or "/")
    _resolve_user(p, user if user is not None else c.get("User") or "", passwd, group)
    return p


def annotations(config: dict) -> dict[str, str]:
    """The implicit annotations, then Config.Labels, which win on conflicts."""
    result: dict[str, str] = {}
    for name, key in ANNOTATION_FIELDS:
        value = config.get(name)
        if isinstance(value, str) and value:
            result[key] = value
    features = config.get("os.features")
    if isinstance(features, list) and features:
        result["org.opencontainers.image.os.features"] = ",".join(map(str, features))
    c = config.get("config") or {}
    if isinstance(c.get("StopSignal"), str) and c["StopSignal"]:
        result[STOP_SIGNAL] = c["StopSignal"]
    ports = c.get("ExposedPorts")
    if isinstance(ports, dict) and ports:
        result[EXPOSED_PORTS] = ",".join(sorted(ports))
    labels = c.get("Labels")
    if isinstance(labels, dict):
        result.update({str(k): str(v) for k, v in labels.items()})
    return result


def _strings(value: object, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ImageError(f"image {what}: must be a list of strings")
    return list(value)


def _merge_env(image_env: list[str], overrides: list[str]) -> list[str]:
    merged: dict[str, str] = {}
    for entry in image_env + list(overrides):
        name, eq, _ = entry.partition("=")
        if not name or not eq:
            raise ImageError(f"env {entry!r}: must be NAME=VALUE")
        merged[name] = entry
    return list(merged.values())


def _resolve_user(p: Process, spec: str, passwd: str | None, group: str | None) -> None:
    if not spec:
        return
    user, sep, grp = spec.partition(":")
    users = _table(passwd)
    groups = _table(group)
    if user.isdigit():
        p.uid = int(user)
        entry = next((u for u in users if u[2] == user), None)
        p.gid = int(entry[3]) if entry and entry[3].isdigit() else 0
    else:
        entry = next((u for u in users if u[0] == user), None)
        if entry is None or not entry[2].isdigit() or not entry[3].isdigit():
            raise ImageError(f"image config User {spec!r}: no user {user!r} in the image's "
                             "/etc/passwd")
        p.uid, p.gid = int(entry[2]), int(entry[3])
        if not sep:
            # conversion.md: a named user gets its group memberships (not when a group is given)
            p.additional_gids = sorted({int(g[2]) for g in groups
                                        if g[2].isdigit() and len(g) > 3 and
                                        user in g[3].split(",") and int(g[2]) != p.gid})
    if sep:
        if grp.isdigit():
            p.gid = int(grp)
        else:
            entry = next((g for g in groups if g[0] == grp), None)
            if entry is None or not entry[2].isdigit():
                raise ImageError(f"image config User {spec!r}: no group {grp!r} in the image's "
                                 "/etc/group")
            p.gid = int(entry[2])


def _table(text: str | None) -> list[list[str]]:
    rows = []
    for line in (text or "").splitlines():
        if line and not line.startswith("#"):
            fields = line.split(":")
            if len(fields) >= 3:
                rows.append(fields)
    return rows
