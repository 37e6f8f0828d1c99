"""cgroup v2 device rules: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE attached to the
cgroup (v2 has no devices.allow/deny files).

The program is assembled here from the rules' v1 meaning (cgroups.devices.v1_semantics): it
compares the access against each exception and returns the default otherwise, the same shape as
runc's devicefilter.go and crun's ebpf.c. Imported only when a v2 cgroup gets device rules: it
costs ctypes and struct.
"""
from __future__ import annotations

import ctypes
import errno
import os
import struct

from cgroups.devices import v1_semantics
from cgroups.errors import CgroupError

_FIELD = "linux.resources.devices"

_SYS_BPF = 321  # x86_64
_BPF_PROG_LOAD, _BPF_PROG_ATTACH, _BPF_PROG_DETACH = 5, 8, 9
_BPF_PROG_GET_FD_BY_ID, _BPF_PROG_QUERY = 13, 16
_BPF_PROG_TYPE_CGROUP_DEVICE = 15
_BPF_CGROUP_DEVICE = 6  # attach type
_BPF_F_ALLOW_MULTI = 2
_ATTR_SIZE = 128  # bigger than every attr we pass; the kernel wants the tail zeroed

# struct bpf_cgroup_dev_ctx { u32 access_type (access << 16 | type); u32 major; u32 minor; }
_DEV_TYPE = {"b": 1, "c": 2}  # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
_DEV_ACCESS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE

# Instruction opcodes (include/uapi/linux/bpf.h, bpf_common.h).
_LDX_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
_AND32_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
_RSH32_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K
_MOV32_K = 0xB4  # BPF_ALU | BPF_MOV | BPF_K
_MOV32_X = 0xBC  # BPF_ALU | BPF_MOV | BPF_X
_JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K
_JNE_X = 0x5D  # BPF_JMP | BPF_JNE | BPF_X
_EXIT = 0x95  # BPF_JMP | BPF_EXIT


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def program(rules: list[dict]) -> bytes:
    """The filter's instructions for OCI device rules (already validated)."""
    default_allow, exceptions = v1_semantics(rules)
    # r2 = type, r3 = requested access, r4 = major, r5 = minor
    code = [_insn(_LDX_W, 2, 1, 0), _insn(_AND32_K, 2, imm=0xFFFF),
            _insn(_LDX_W, 3, 1, 0), _insn(_RSH32_K, 3, imm=16),
            _insn(_LDX_W, 4, 1, 4), _insn(_LDX_W, 5, 1, 8)]
    for kind, major, minor, access in exceptions:
        mask = sum(_DEV_ACCESS[a] for a in access)
        # Each test jumps over the rest of this block (to the next one) when it does not match.
        tests = [(_JNE_K, 2, 0, _DEV_TYPE[kind])]
        if mask != 7:
            tests += [(_MOV32_X, 1, 3, 0), (_AND32_K, 1, 0, mask), (_JNE_X, 1, 3, 0)]
        if major != -1:
            tests.append((_JNE_K, 4, 0, major))
        if minor != -1:
            tests.append((_JNE_K, 5, 0, minor))
        block_end = len(tests) + 2  # the tests, then "r0 = verdict; exit"
        for i, (op, dst, src, imm) in enumerate(tests):
            jump = block_end - i - 1 if op in (_JNE_K, _JNE_X) else 0
            code.append(_insn(op, dst, src, jump, imm))
        code += [_insn(_MOV32_K, 0, imm=int(not default_allow)), _insn(_EXIT)]
    code += [_insn(_MOV32_K, 0, imm=int(default_allow)), _insn(_EXIT)]
    return b"".join(code)


def attach(directory: str, rules: list[dict]) -> None:
    """Load the filter for rules and make it the only one attached to the cgroup at directory."""
    libc = ctypes.CDLL(None, use_errno=True)

    def bpf(cmd: int, attr: ctypes.Array) -> int:
        result = libc.syscall(_SYS_BPF, cmd, attr, _ATTR_SIZE)
        if result < 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        return result

    code = ctypes.create_string_buffer(program(rules))
    license_ = ctypes.create_string_buffer(b"Apache")
    log = ctypes.create_string_buffer(65536)
    attr = _attr(struct.pack("<IIQQIIQII16s", _BPF_PROG_TYPE_CGROUP_DEVICE, len(code.raw) // 8,
                             ctypes.addressof(code), ctypes.addressof(license_), 1, len(log),
                             ctypes.addressof(log), 0, 0, b"pycontainer_dev"))
    try:
        prog = bpf(_BPF_PROG_LOAD, attr)
    except OSError as e:
        detail = log.value.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise CgroupError(f"{_FIELD}: cannot load the eBPF device filter: {e.strerror}"
                          f"{' (' + detail[0] + ')' if detail[0] else ''}") from None
    try:
        cgroup = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        os.close(prog)
        raise CgroupError(f"{_FIELD}: cannot open {directory}: {e.strerror}") from None
    try:
        old = _attached(bpf, cgroup)
        bpf(_BPF_PROG_ATTACH, _attr(struct.pack("<IIII", cgroup, prog, _BPF_CGROUP_DEVICE,
                                                _BPF_F_ALLOW_MULTI)))
        # With several programs attached every one must allow an access: detach the ones an
        # earlier apply() left, now that the new one is in place (no window without a filter).
        for prog_id in old:
            _detach(bpf, cgroup, prog_id)
    except OSError as e:
        raise CgroupError(f"{_FIELD}: cannot attach the eBPF device filter to {directory}:"
                          f" {e.strerror}") from None
    finally:
        os.close(cgroup)
        os.close(prog)  # the attachment holds its own reference


def _attr(data: bytes) -> ctypes.Array:
    return ctypes.create_string_buffer(data, _ATTR_SIZE)


def _attached(bpf, cgroup: int) -> list[int]:
    """Ids of the device programs attached directly to the cgroup."""
    ids = (ctypes.c_uint32 * 64)()
    attr = _attr(struct.pack("<IIIIQI", cgroup, _BPF_CGROUP_DEVICE, 0, 0, ctypes.addressof(ids), 64))
    bpf(_BPF_PROG_QUERY, attr)
    count = struct.unpack_from("<I", attr, 24)[0]
    return list(ids[:count])


def _detach(bpf, cgroup: int, prog_id: int) -> None:
    try:
        fd = bpf(_BPF_PROG_GET_FD_BY_ID, _attr(struct.pack("<I", prog_id)))
    except OSError as e:
        if e.errno == errno.ENOENT:
            return  # gone already
        raise
    try:
        bpf(_BPF_PROG_DETACH, _attr(struct.pack("<III", cgroup, fd, _BPF_CGROUP_DEVICE)))
    finally:
        os.close(fd)
