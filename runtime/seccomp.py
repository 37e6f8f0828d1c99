"""linux.seccomp: the OCI profile checked at config time, compiled with libseccomp once per
container (by `create`, kept in its exec plan for every exec: runtime/exec_plan.py) and loaded
just before exec (or, without no_new_privs, while the process still holds CAP_SYS_ADMIN, as
runc does).
"""
from __future__ import annotations

import os

from runtime.errors import ConfigError

EPERM = 1

# libseccomp's action values (seccomp.h); ERRNO and TRACE carry their data in the low 16 bits.
_ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
}
_WITH_DATA = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")

_OPERATORS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
              "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")

_ARCHES = ("x86", "x86_64", "x32", "arm", "aarch64", "mips", "mips64", "mips64n32", "mipsel",
           "mipsel64", "mipsel64n32", "ppc", "ppc64", "ppc64le", "s390", "s390x", "parisc",
           "parisc64", "riscv64", "loongarch64", "m68k", "sh", "sheb")

# OCI flag -> seccomp(2)'s flag (linux/seccomp.h)
_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
}


class Rule:
    __slots__ = ("names", "action", "args")

    def __init__(self, names: list[str], action: int, args: list[tuple[int, int, int, int]]) -> None:
        self.names = names
        self.action = action
        self.args = args  # (index, op, value, valueTwo)


class Profile:
    __slots__ = ("default_action", "architectures", "flags", "rules")

    def __init__(self, default_action: int, architectures: list[str], flags: int,
                 rules: list[Rule]) -> None:
        self.default_action = default_action
        self.architectures = architectures
        self.flags = flags
        self.rules = rules


def _action(name: object, errno_ret: object, field: str) -> int:
    if name == "SCMP_ACT_NOTIFY":
        raise ConfigError(field, "SCMP_ACT_NOTIFY needs a seccomp agent, which pycontainer "
                                 "does not support")
    if not isinstance(name, str) or name not in _ACTIONS:
        raise ConfigError(field, f"unknown action {name!r}")
    value = _ACTIONS[name]
    if name in _WITH_DATA:
        data = EPERM if errno_ret is None else errno_ret
        if not isinstance(data, int) or isinstance(data, bool) or not 0 <= data <= 0xFFFF:
            raise ConfigError(field, f"errnoRet must be a number from 0 to 65535, got {data!r}")
        value |= data
    return value


def _list(raw: dict, key: str, field: str) -> list:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(field, "must be an array")
    return value


def parse(raw: object) -> Profile:
    """Checks linux.seccomp; every refusal names the field."""
    if not isinstance(raw, dict):
        raise ConfigError("linux.seccomp", "must be an object")
    default = _action(raw.get("defaultAction"), raw.get("defaultErrnoRet"),
                      "linux.seccomp.defaultAction")
    if raw.get("listenerPath"):
        raise ConfigError("linux.seccomp.listenerPath", "seccomp agents are not supported")
    arches = []
    for i, arch in enumerate(_list(raw, "architectures", "linux.seccomp.architectures")):
        name = arch.removeprefix("SCMP_ARCH_").lower() if isinstance(arch, str) else None
        if name not in _ARCHES:
            raise ConfigError(f"linux.seccomp.architectures[{i}]", f"unknown architecture {arch!r}")
        arches.append(name)
    flags = 0
    for i, flag in enumerate(_list(raw, "flags", "linux.seccomp.flags")):
        if not isinstance(flag, str) or flag not in _FLAGS:
            raise ConfigError(f"linux.seccomp.flags[{i}]", f"unsupported flag {flag!r}")
        flags |= _FLAGS[flag]
    rules = []
    for i, entry in enumerate(_list(raw, "syscalls", "linux.seccomp.syscalls")):
        field = f"linux.seccomp.syscalls[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(field, "must be an object")
        names = entry.get("names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"{field}.names", "must be a non-empty array of syscall names")
        action = _action(entry.get("action"), entry.get("errnoRet"), f"{field}.action")
        args = []
        for j, arg in enumerate(_list(entry, "args", f"{field}.args")):
            af = f"{field}.args[{j}]"
            if not isinstance(arg, dict):
                raise ConfigError(af, "must be an object")
            index, op = arg.get("index"), arg.get("op")
            if not isinstance(index, int) or not 0 <= index <= 5:
                raise ConfigError(f"{af}.index", f"must be 0 to 5, got {index!r}")
            if op not in _OPERATORS:
                raise ConfigError(f"{af}.op", f"unknown operator {op!r}")
            value, value_two = arg.get("value", 0), arg.get("valueTwo", 0)
            for key, number in (("value", value), ("valueTwo", value_two)):
                if not isinstance(number, int) or not 0 <= number < 2**64:
                    raise ConfigError(f"{af}.{key}", f"must be an unsigned 64-bit number, got {number!r}")
            args.append((index, _OPERATORS.index(op) + 1, value, value_two))
        rules.append(Rule(names, action, args))
    return Profile(default, arches, flags, rules)


class Program:
    """A profile compiled to the kernel's BPF (struct sock_filter[], 8 bytes an instruction)
    with seccomp(2)'s flags: compiled once per container, loaded as is by its init and by
    every exec (libseccomp's compile costs milliseconds; the load, one system call)."""

    __slots__ = ("bpf", "flags")

    def __init__(self, bpf: bytes, flags: int) -> None:
        self.bpf = bpf
        self.flags = flags

    def to_dict(self) -> dict:
        return {"bpf": self.bpf.hex(), "flags": self.flags}

    @classmethod
    def from_dict(cls, raw: dict) -> Program:
        return cls(bytes.fromhex(raw["bpf"]), raw["flags"])

    def load(self, syscalls) -> None:
        """Into the calling thread; it needs no_new_privs or CAP_SYS_ADMIN."""
        try:
            syscalls.seccomp_set_filter(self.bpf, self.flags)
        except OSError as e:
            raise OSError(e.errno, f"seccomp: load: {os.strerror(e.errno)}") from None


def timing(program: Program | None,
           no_new_privileges: bool) -> tuple[Program | None, Program | None]:
    """(program to load before the user switch, program to load just before execve).

    With no_new_privs the kernel lets an unprivileged process load a filter, so it goes last and
    filters nothing of ours; without, it must go in while we still hold CAP_SYS_ADMIN (runc's
    order)."""
    if program is None:
        return None, None
    return (None, program) if no_new_privileges else (program, None)


def compile_profile(profile: Profile) -> Program:
    """The profile as libseccomp compiles it for this machine's architectures."""
    from linux._native import ffi, lib

    ctx = lib.seccomp_init(profile.default_action)
    if ctx == ffi.NULL:
        raise OSError("seccomp_init failed")
    try:
        for arch in profile.architectures:
            token = lib.seccomp_arch_resolve_name(arch.encode())
            ret = lib.seccomp_arch_add(ctx, token)
            if ret < 0 and ret != -17:  # EEXIST: the native one is always there
                _check(ret, f"seccomp: architecture {arch}")
        for rule in profile.rules:
            if rule.action == profile.default_action:
                continue  # libseccomp refuses a rule that changes nothing
            conditions = _conditions(ffi, rule.args)
            for name in rule.names:
                number = lib.seccomp_syscall_resolve_name(name.encode())
                if number < 0:
                    continue  # a syscall this libseccomp does not know: as runc, skip it
                for group in conditions:
                    _check(lib.seccomp_rule_add_array(ctx, rule.action, number, len(group),
                                                      group or ffi.NULL), f"seccomp: rule for {name}")
        out = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            _check(lib.seccomp_export_bpf(ctx, out), "seccomp: export")
            size = os.lseek(out, 0, os.SEEK_END)
            return Program(os.pread(out, size, 0), profile.flags)
        finally:
            os.close(out)
    finally:
        lib.seccomp_release(ctx)


def _conditions(ffi, args: list[tuple[int, int, int, int]]) -> list:
    """libseccomp ANDs the conditions of one rule; several on one argument could never all hold,
    so (as runc does) each of those becomes a rule of its own."""
    def array(items):
        cmp = ffi.new("struct scmp_arg_cmp[]", len(items))
        for k, (index, op, value, value_two) in enumerate(items):
            cmp[k].arg, cmp[k].op, cmp[k].datum_a, cmp[k].datum_b = index, op, value, value_two
        return cmp

    if not args:
        return [[]]
    if len({a[0] for a in args}) < len(args):
        return [array([a]) for a in args]
    return [array(args)]


def _check(ret: int, what: str) -> None:
    if ret < 0:
        raise OSError(-ret, f"{what}: {os.strerror(-ret)}")
