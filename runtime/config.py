"""config.json -> a checked model of the container (OCI runtime spec 1.x, Linux).

Everything that can be judged without touching the system is judged here, before anything is
created, so that bad input fails with one line naming the field and leaves nothing behind.
"""
from __future__ import annotations

import os

from linux.constants import MS_BIND
from runtime import capabilities, fastjson, mount_options
from runtime.errors import ConfigError

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")

RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

PROPAGATIONS = ("shared", "slave", "private", "unbindable",
                "rshared", "rslave", "rprivate", "runbindable")

HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer",
              "poststart", "poststop")

UINT32_MAX = 2**32 - 1
# The highest user or group ID a process can have: (uid_t)-1 tells setresuid(2), setresgid(2)
# and chown(2) to leave the ID unchanged, so 4294967295 would leave the process root.
ID_MAX = UINT32_MAX - 1
# setgroups(2) takes at most this many groups (the kernel's NGROUPS_MAX).
GROUPS_MAX = 65536
# mknod(2) packs a device number into 32 bits: 12 for the major, 20 for the minor.
MAJOR_MAX = 2**12 - 1
MINOR_MAX = 2**20 - 1
# A hook's timeout in seconds: past this, waiting on it overflows the clock's range.
HOOK_TIMEOUT_MAX = 2**31 - 1

# sethostname(2) and setdomainname(2) take at most this many bytes (the kernel's __NEW_UTS_LEN).
UTS_NAME_MAX = 64


# --- typed getters: each failure names the field -------------------------------------------

def _obj(raw: object, field: str) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError(field, f"must be an object, got {_kind(raw)}")
    return raw


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def _get(obj: dict, key: str, typ: type | tuple, field: str, default: object = None,
         required: bool = False) -> object:
    if key not in obj or obj[key] is None:
        if required:
            raise ConfigError(field, "is required")
        return default
    value = obj[key]
    # bool is an int in Python; JSON keeps them apart and so do we.
    if isinstance(value, bool) and typ is not bool and bool not in (typ if isinstance(typ, tuple) else (typ,)):
        raise ConfigError(field, f"must be {_expected(typ)}, got a boolean")
    if not isinstance(value, typ):
        raise ConfigError(field, f"must be {_expected(typ)}, got {_kind(value)}")
    if isinstance(value, str):
        _check_text(value, field)
    return value


def _check_text(value: str, field: str) -> None:
    """Strings go to the kernel as UTF-8 C strings: a NUL would cut them short, and a lone
    surrogate (a JSON "\\ud800" escape) has no UTF-8 form."""
    if "\0" in value:
        raise ConfigError(field, "must not contain a NUL character")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ConfigError(field, "is not valid Unicode text (a lone surrogate)") from None


def _expected(typ: type | tuple) -> str:
    names = {bool: "a boolean", int: "an integer", str: "a string", list: "an array",
             dict: "an object", float: "a number"}
    if isinstance(typ, tuple):
        return " or ".join(names.get(t, t.__name__) for t in typ)
    return names.get(typ, typ.__name__)


def _strings(obj: dict, key: str, field: str, required: bool = False) -> list[str]:
    values = _get(obj, key, list, field, [], required)
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise ConfigError(f"{field}[{i}]", f"must be a string, got {_kind(v)}")
        _check_text(v, f"{field}[{i}]")
    return values


def _uint(obj: dict, key: str, field: str, default: int | None = None, required: bool = False,
          maximum: int = 2**64 - 1) -> int | None:
    value = _get(obj, key, int, field, default, required)
    if value is not None and not 0 <= value <= maximum:
        raise ConfigError(field, f"must be between 0 and {maximum}, got {value}")
    return value


def _abs_path(obj: dict, key: str, field: str, required: bool = True) -> str | None:
    value = _get(obj, key, str, field, None, required)
    if value is not None and not value.startswith("/"):
        raise ConfigError(field, f"must be an absolute path, got {value!r}")
    return value


# --- the model ------------------------------------------------------------------------------

class User:
    __slots__ = ("uid", "gid", "umask", "additional_gids")

    def __init__(self, uid: int, gid: int, umask: int | None, additional_gids: list[int]) -> None:
        self.uid = uid
        self.gid = gid
        self.umask = umask
        self.additional_gids = additional_gids


class Process:
    __slots__ = ("terminal", "console_size", "user", "args", "env", "cwd", "capabilities",
                 "rlimits", "no_new_privileges", "oom_score_adj")

    def __init__(self, terminal: bool, console_size: tuple[int, int] | None, user: User,
                 args: list[str], env: list[str], cwd: str,
                 capabilities: capabilities.CapabilitySets | None,
                 rlimits: list[tuple[int, int, int]], no_new_privileges: bool,
                 oom_score_adj: int | None) -> None:
        self.terminal = terminal
        self.console_size = console_size
        self.user = user
        self.args = args
        self.env = env
        self.cwd = cwd
        self.capabilities = capabilities
        self.rlimits = rlimits
        self.no_new_privileges = no_new_privileges
        self.oom_score_adj = oom_score_adj


class Mount:
    __slots__ = ("destination", "type", "source", "options", "flags", "propagation", "data",
                 "field")

    def __init__(self, destination: str, type: str, source: str, options: list[str],
                 flags: int, propagation: list[int], data: str, field: str) -> None:
        self.destination = destination
        self.type = type
        self.source = source
        self.options = options
        self.flags = flags
        self.propagation = propagation
        self.data = data
        self.field = field

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & MS_BIND)


class Device:
    __slots__ = ("path", "type", "major", "minor", "file_mode", "uid", "gid")

    def __init__(self, path: str, type: str, major: int, minor: int, file_mode: int, uid: int,
                 gid: int) -> None:
        self.path = path
        self.type = type
        self.major = major
        self.minor = minor
        self.file_mode = file_mode
        self.uid = uid
        self.gid = gid


class Hook:
    __slots__ = ("path", "args", "env", "timeout")

    def __init__(self, path: str, args: list[str], env: list[str], timeout: int | None) -> None:
        self.path = path
        self.args = args
        self.env = env
        self.timeout = timeout


class IDMapping:
    __slots__ = ("container_id", "host_id", "size")

    def __init__(self, container_id: int, host_id: int, size: int) -> None:
        self.container_id = container_id
        self.host_id = host_id
        self.size = size


class Config:
    __slots__ = ("raw", "bundle", "oci_version", "root_path", "root_readonly", "process",
                 "hostname", "domainname", "mounts", "hooks", "annotations", "namespaces",
                 "uid_mappings", "gid_mappings", "devices", "resources", "cgroups_path",
                 "sysctl", "masked_paths", "readonly_paths", "rootfs_propagation", "seccomp")

    def __init__(self, **fields: object) -> None:
        for name in self.__slots__:
            setattr(self, name, fields[name])

    def has_namespace(self, kind: str) -> bool:
        return kind in self.namespaces

    def new_namespace(self, kind: str) -> bool:
        """True when the container gets a namespace of its own of this type (not joined by path)."""
        return kind in self.namespaces and not self.namespaces[kind]


# --- parsing --------------------------------------------------------------------------------

def load(bundle: str) -> Config:
    """Reads and checks <bundle>/config.json."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = fastjson.loads(f.read())
    except FileNotFoundError:
        raise ConfigError("config.json", f"not found in bundle {bundle}") from None
    except ValueError as e:
        raise ConfigError("config.json", f"is not valid JSON: {e}") from None
    return parse(raw, bundle)


def parse(raw: object, bundle: str) -> Config:
    raw = _obj(raw, "config.json")
    oci_version = _get(raw, "ociVersion", str, "ociVersion", required=True)
    if not oci_version.startswith("1."):
        raise ConfigError("ociVersion", f"unsupported version {oci_version!r} (want 1.x)")

    root = _obj(_get(raw, "root", dict, "root", required=True), "root")
    root_rel = _get(root, "path", str, "root.path", required=True)
    if not root_rel:
        raise ConfigError("root.path", "must not be empty")
    root_path = os.path.normpath(os.path.join(bundle, root_rel))
    if not os.path.isdir(root_path):
        raise ConfigError("root.path", f"{root_path} is not a directory")

    linux = _obj(_get(raw, "linux", dict, "linux", {}), "linux")
    namespaces = _namespaces(linux)

    process = None
    if raw.get("process") is not None:
        process = parse_process(raw["process"], "process")

    hostname = _uts_name(raw, "hostname")
    domainname = _uts_name(raw, "domainname")
    if (hostname or domainname) and "uts" not in namespaces:
        raise ConfigError("hostname" if hostname else "domainname",
                          "needs a new UTS namespace (linux.namespaces has no \"uts\")")

    mounts = [_mount(m, f"mounts[{i}]") for i, m in enumerate(_get(raw, "mounts", list, "mounts", []))]

    uid_mappings = _mappings(linux, "uidMappings")
    gid_mappings = _mappings(linux, "gidMappings")
    if "user" in namespaces and not namespaces["user"] and not (uid_mappings and gid_mappings):
        raise ConfigError("linux.uidMappings", "a new user namespace needs uidMappings and gidMappings")
    if (uid_mappings or gid_mappings) and "user" not in namespaces:
        raise ConfigError("linux.uidMappings", "mappings given but linux.namespaces has no \"user\"")

    resources = _get(linux, "resources", dict, "linux.resources", {})
    import cgroups

    try:
        cgroups.validate_resources(resources)
    except cgroups.CgroupError as e:
        raise ConfigError(*_split_field(str(e), "linux.resources")) from None

    sysctl = _get(linux, "sysctl", dict, "linux.sysctl", {})
    for key, value in sysctl.items():
        if not isinstance(value, str):
            raise ConfigError(f"linux.sysctl.{key}", f"must be a string, got {_kind(value)}")
        _check_text(key, f"linux.sysctl.{key}")
        _check_text(value, f"linux.sysctl.{key}")
        _check_sysctl(key, namespaces)

    propagation = _get(linux, "rootfsPropagation", str, "linux.rootfsPropagation", "")
    if propagation and propagation not in PROPAGATIONS:
        raise ConfigError("linux.rootfsPropagation",
                          f"unknown propagation {propagation!r} (one of {', '.join(PROPAGATIONS)})")

    root_readonly = _get(root, "readonly", bool, "root.readonly", False)
    masked_paths = _paths(linux, "maskedPaths")
    readonly_paths = _paths(linux, "readonlyPaths")
    if "mount" not in namespaces:
        _check_without_mount_namespace(masked_paths, readonly_paths, root_readonly, propagation)

    for key in ("intelRdt", "personality", "timeOffsets"):
        if linux.get(key):
            raise ConfigError(f"linux.{key}", "is not supported by pycontainer")
    if linux.get("mountLabel"):
        raise ConfigError("linux.mountLabel", "SELinux labels are not supported on this host")
    seccomp = _get(linux, "seccomp", dict, "linux.seccomp")
    if seccomp is not None:
        from runtime import seccomp as seccomp_mod

        seccomp = seccomp_mod.parse(seccomp)

    annotations = _get(raw, "annotations", dict, "annotations", {})
    for key, value in annotations.items():
        if not isinstance(value, str):
            raise ConfigError(f"annotations.{key}", f"must be a string, got {_kind(value)}")

    return Config(
        raw=raw, bundle=bundle, oci_version=oci_version, root_path=root_path,
        root_readonly=root_readonly, process=process,
        hostname=hostname, domainname=domainname, mounts=mounts, hooks=parse_hooks(raw),
        annotations=annotations, namespaces=namespaces, uid_mappings=uid_mappings,
        gid_mappings=gid_mappings, devices=_devices(linux), resources=resources,
        cgroups_path=_get(linux, "cgroupsPath", str, "linux.cgroupsPath"), sysctl=sysctl,
        masked_paths=masked_paths, readonly_paths=readonly_paths,
        rootfs_propagation=propagation, seccomp=seccomp,
    )


def _uts_name(raw: dict, key: str) -> str:
    name = _get(raw, key, str, key, "")
    size = len(name.encode())
    if size > UTS_NAME_MAX:
        raise ConfigError(key, f"must be at most {UTS_NAME_MAX} characters (bytes), got {size}")
    return name


def _check_without_mount_namespace(masked_paths: list[str], readonly_paths: list[str],
                                   root_readonly: bool, propagation: str) -> None:
    """Without a mount namespace of its own the container shares its caller's mount table,
    which the runtime never changes (runc: "unable to restrict sys entries without a private
    MNT namespace"); these fields could only be honoured by changing it."""
    why = "needs a new mount namespace (linux.namespaces has no \"mount\")"
    if masked_paths:
        raise ConfigError("linux.maskedPaths", f"masking paths {why}")
    if readonly_paths:
        raise ConfigError("linux.readonlyPaths", f"making paths read-only {why}")
    if root_readonly:
        raise ConfigError("root.readonly", f"a read-only root {why}")
    if propagation:
        raise ConfigError("linux.rootfsPropagation", f"setting the root's propagation {why}")


def _split_field(message: str, default_field: str) -> tuple[str, str]:
    field, sep, problem = message.partition(": ")
    return (field, problem) if sep else (default_field, message)


def parse_process(raw: object, field: str) -> Process:
    """The `process` object of config.json, also the file `exec --process` reads."""
    p = _obj(raw, field)
    args = _strings(p, "args", f"{field}.args", required=True)
    if not args:
        raise ConfigError(f"{field}.args", "must not be empty")
    env = _strings(p, "env", f"{field}.env")
    for i, entry in enumerate(env):
        if "=" not in entry or entry.startswith("="):
            raise ConfigError(f"{field}.env[{i}]", f"must be NAME=VALUE, got {entry!r}")
    cwd = _get(p, "cwd", str, f"{field}.cwd", required=True)
    if not cwd.startswith("/"):
        raise ConfigError(f"{field}.cwd", f"must be an absolute path, got {cwd!r}")

    u = _obj(_get(p, "user", dict, f"{field}.user", {}), f"{field}.user")
    gids = _get(u, "additionalGids", list, f"{field}.user.additionalGids", [])
    if len(gids) > GROUPS_MAX:
        raise ConfigError(f"{field}.user.additionalGids",
                          f"must have at most {GROUPS_MAX} groups, got {len(gids)}")
    for i, gid in enumerate(gids):
        if isinstance(gid, bool) or not isinstance(gid, int) or not 0 <= gid <= ID_MAX:
            raise ConfigError(f"{field}.user.additionalGids[{i}]", f"must be a group ID, got {gid!r}")
    user = User(
        uid=_uint(u, "uid", f"{field}.user.uid", 0, maximum=ID_MAX),
        gid=_uint(u, "gid", f"{field}.user.gid", 0, maximum=ID_MAX),
        umask=_uint(u, "umask", f"{field}.user.umask", None, maximum=0o7777),
        additional_gids=gids,
    )

    console_size = None
    cs = _get(p, "consoleSize", dict, f"{field}.consoleSize")
    if cs is not None:
        console_size = (_uint(cs, "height", f"{field}.consoleSize.height", 0, maximum=65535),
                        _uint(cs, "width", f"{field}.consoleSize.width", 0, maximum=65535))

    rlimits = []
    for i, rl in enumerate(_get(p, "rlimits", list, f"{field}.rlimits", [])):
        rf = f"{field}.rlimits[{i}]"
        rl = _obj(rl, rf)
        kind = _get(rl, "type", str, f"{rf}.type", required=True)
        if kind not in RLIMITS:
            raise ConfigError(f"{rf}.type", f"unknown rlimit {kind!r}")
        soft = _uint(rl, "soft", f"{rf}.soft", required=True)
        hard = _uint(rl, "hard", f"{rf}.hard", required=True)
        if soft > hard:
            raise ConfigError(f"{rf}.soft", f"{soft} is above the hard limit {hard}")
        if any(r[0] == RLIMITS[kind] for r in rlimits):
            raise ConfigError(f"{rf}.type", f"{kind} is given twice")
        if kind == "RLIMIT_NOFILE":
            nr_open = _nr_open()
            if hard > nr_open:
                raise ConfigError(f"{rf}.hard", f"RLIMIT_NOFILE above the kernel's fs.nr_open "
                                                f"({nr_open}) is refused, got {hard}")
        rlimits.append((RLIMITS[kind], soft, hard))

    oom = _get(p, "oomScoreAdj", int, f"{field}.oomScoreAdj")
    if oom is not None and not -1000 <= oom <= 1000:
        raise ConfigError(f"{field}.oomScoreAdj", f"must be between -1000 and 1000, got {oom}")

    for key, what in (("apparmorProfile", "AppArmor"), ("selinuxLabel", "SELinux")):
        if p.get(key):
            raise ConfigError(f"{field}.{key}",
                              f"{what} is not available on this host; refusing to run unconfined")
    for key in ("scheduler", "ioPriority", "execCPUAffinity"):
        if p.get(key):
            raise ConfigError(f"{field}.{key}", "is not supported by pycontainer")

    return Process(
        terminal=_get(p, "terminal", bool, f"{field}.terminal", False),
        console_size=console_size, user=user, args=args, env=env, cwd=cwd,
        capabilities=_capabilities(p, field), rlimits=rlimits,
        no_new_privileges=_get(p, "noNewPrivileges", bool, f"{field}.noNewPrivileges", False),
        oom_score_adj=oom,
    )


def _nr_open() -> int:
    """The most open files the kernel lets any process have (not namespaced)."""
    try:
        with open("/proc/sys/fs/nr_open", "rb") as f:
            return int(f.read())
    except (OSError, ValueError):
        # No /proc to ask: the kernel judges at setrlimit.
        return 2**64 - 1


def _capabilities(p: dict, field: str) -> capabilities.CapabilitySets | None:
    raw = _get(p, "capabilities", dict, f"{field}.capabilities")
    if raw is None:
        return None
    known = capabilities.last_cap()
    sets = {}
    for key in ("bounding", "effective", "inheritable", "permitted", "ambient"):
        numbers = []
        for i, name in enumerate(_strings(raw, key, f"{field}.capabilities.{key}")):
            number = capabilities.NUMBERS.get(name)
            if number is None:
                raise ConfigError(f"{field}.capabilities.{key}[{i}]", f"unknown capability {name!r}")
            # As runc: a real capability this kernel predates is skipped, not fatal, so one
            # config serves old and new kernels.
            if number <= known:
                numbers.append(number)
        sets[key] = numbers
    return capabilities.CapabilitySets(**sets)


def _namespaces(linux: dict) -> dict[str, str]:
    """type -> path ("" for a new namespace)."""
    result: dict[str, str] = {}
    for i, ns in enumerate(_get(linux, "namespaces", list, "linux.namespaces", [])):
        nf = f"linux.namespaces[{i}]"
        ns = _obj(ns, nf)
        kind = _get(ns, "type", str, f"{nf}.type", required=True)
        if kind not in NAMESPACE_TYPES:
            raise ConfigError(f"{nf}.type",
                              f"unknown namespace type {kind!r} (one of {', '.join(NAMESPACE_TYPES)})")
        if kind in result:
            raise ConfigError(f"{nf}.type", f"namespace {kind!r} is given twice")
        if kind == "time":
            raise ConfigError(f"{nf}.type", "time namespaces are not supported by pycontainer")
        path = _get(ns, "path", str, f"{nf}.path", "")
        if path and not os.path.exists(path):
            raise ConfigError(f"{nf}.path", f"{path} does not exist")
        result[kind] = path
    return result


def _mappings(linux: dict, key: str) -> list[IDMapping]:
    result = []
    for i, m in enumerate(_get(linux, key, list, f"linux.{key}", [])):
        mf = f"linux.{key}[{i}]"
        m = _obj(m, mf)
        size = _uint(m, "size", f"{mf}.size", required=True, maximum=UINT32_MAX)
        if size == 0:
            raise ConfigError(f"{mf}.size", "must be at least 1")
        result.append(IDMapping(
            container_id=_uint(m, "containerID", f"{mf}.containerID", required=True, maximum=UINT32_MAX),
            host_id=_uint(m, "hostID", f"{mf}.hostID", required=True, maximum=UINT32_MAX),
            size=size,
        ))
    return result


def _mount(raw: object, field: str) -> Mount:
    m = _obj(raw, field)
    destination = _abs_path(m, "destination", f"{field}.destination")
    options = _strings(m, "options", f"{field}.options")
    fstype = _get(m, "type", str, f"{field}.type", "")
    is_bind = fstype == "bind" or "bind" in options or "rbind" in options
    if not fstype and not is_bind:
        raise ConfigError(f"{field}.type", "is required unless the mount is a bind mount")
    source = _get(m, "source", str, f"{field}.source", "")
    if is_bind:
        if not source:
            raise ConfigError(f"{field}.source", "a bind mount needs a source")
        if not os.path.exists(source):
            raise ConfigError(f"{field}.source", f"{source} does not exist")
    parsed = mount_options.parse(options, is_bind, f"{field}.options")
    if "tmpcopyup" in options and fstype != "tmpfs":
        raise ConfigError(f"{field}.options", "tmpcopyup is for tmpfs mounts only")
    if fstype == "bind":
        parsed.flags |= MS_BIND
    return Mount(destination=os.path.normpath(destination), type=fstype, source=source,
                 options=options, flags=parsed.flags, propagation=parsed.propagation,
                 data=parsed.data, field=field)


def _devices(linux: dict) -> list[Device]:
    result = []
    for i, d in enumerate(_get(linux, "devices", list, "linux.devices", [])):
        df = f"linux.devices[{i}]"
        d = _obj(d, df)
        kind = _get(d, "type", str, f"{df}.type", required=True)
        if kind not in ("c", "b", "u", "p"):
            raise ConfigError(f"{df}.type", f"must be one of c, b, u, p, got {kind!r}")
        needs_numbers = kind != "p"
        result.append(Device(
            path=_abs_path(d, "path", f"{df}.path"), type=kind,
            major=_uint(d, "major", f"{df}.major", 0, required=needs_numbers, maximum=MAJOR_MAX),
            minor=_uint(d, "minor", f"{df}.minor", 0, required=needs_numbers, maximum=MINOR_MAX),
            file_mode=_uint(d, "fileMode", f"{df}.fileMode", 0o666, maximum=0o7777),
            uid=_uint(d, "uid", f"{df}.uid", 0, maximum=ID_MAX),
            gid=_uint(d, "gid", f"{df}.gid", 0, maximum=ID_MAX),
        ))
    return result


def _paths(linux: dict, key: str) -> list[str]:
    paths = _strings(linux, key, f"linux.{key}")
    for i, path in enumerate(paths):
        if not path.startswith("/"):
            raise ConfigError(f"linux.{key}[{i}]", f"must be an absolute path, got {path!r}")
    return paths


def parse_hooks(raw: dict) -> dict[str, list[Hook]]:
    hooks = _get(raw, "hooks", dict, "hooks", {})
    result = {}
    for kind, entries in hooks.items():
        if kind not in HOOK_KINDS:
            raise ConfigError(f"hooks.{kind}", f"unknown hook kind (one of {', '.join(HOOK_KINDS)})")
        if not isinstance(entries, list):
            raise ConfigError(f"hooks.{kind}", f"must be an array, got {_kind(entries)}")
        parsed = []
        for i, h in enumerate(entries):
            hf = f"hooks.{kind}[{i}]"
            h = _obj(h, hf)
            timeout = _get(h, "timeout", int, f"{hf}.timeout")
            if timeout is not None and timeout <= 0:
                raise ConfigError(f"{hf}.timeout", f"must be greater than zero, got {timeout}")
            if timeout is not None and timeout > HOOK_TIMEOUT_MAX:
                raise ConfigError(f"{hf}.timeout",
                                  f"must be at most {HOOK_TIMEOUT_MAX} seconds, got {timeout}")
            parsed.append(Hook(path=_abs_path(h, "path", f"{hf}.path"),
                               args=_strings(h, "args", f"{hf}.args"),
                               env=_strings(h, "env", f"{hf}.env"), timeout=timeout))
        result[kind] = parsed
    return result


# sysctls the kernel namespaces, and the namespace each needs (as runc checks them).
_IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")


def _check_sysctl(key: str, namespaces: dict[str, str]) -> None:
    field = f"linux.sysctl.{key}"
    if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
        needed = "ipc"
    elif key.startswith("net."):
        needed = "network"
    elif key in ("kernel.hostname", "kernel.domainname"):
        needed = "uts"
    else:
        raise ConfigError(field, "is not namespaced: it would change the host")
    if needed not in namespaces:
        raise ConfigError(field, f"needs a {needed} namespace, which linux.namespaces does not have")
