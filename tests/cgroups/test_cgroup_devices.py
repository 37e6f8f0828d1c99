"""OCI device rules -> v1 lines, their v1 meaning, and the v2 eBPF filter (no root needed).

The filter is run here by a tiny interpreter of the few eBPF instructions it uses, so its verdict
can be checked for every kind of access without loading it into a kernel (the v2 VM stage does).
"""
import struct

import pytest

from cgroups.devices import v1_lines, v1_semantics
from cgroups.devices_bpf import program

DENY_ALL = {"allow": False, "access": "rwm"}
NULL = {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
PTS_RW = {"allow": True, "type": "c", "major": 136, "minor": -1, "access": "rw"}


def test_v1_lines():
    assert v1_lines([DENY_ALL, NULL, PTS_RW]) == [
        (0, "devices.deny", "a"),
        (1, "devices.allow", "c 1:3 rwm"),
        (2, "devices.allow", "c 136:* rw"),
    ]


def test_narrow_type_a_rule_is_spelled_out_for_block_and_char():
    # "a 1:3 r" would mean "everything" to the kernel.
    assert v1_lines([{"allow": True, "type": "a", "major": 1, "minor": 3, "access": "r"}]) == [
        (0, "devices.allow", "b 1:3 r"), (0, "devices.allow", "c 1:3 r")]


def test_v1_semantics():
    assert v1_semantics([]) == (True, [])
    assert v1_semantics([DENY_ALL, NULL, PTS_RW]) == (False, [("c", 1, 3, "mrw"), ("c", 136, -1, "rw")])
    # a deny takes access away from the exactly matching allow
    assert v1_semantics([DENY_ALL, NULL, {"allow": False, "type": "c", "major": 1, "minor": 3,
                                          "access": "m"}]) == (False, [("c", 1, 3, "rw")])
    # an allow-all resets everything
    assert v1_semantics([DENY_ALL, NULL, {"allow": True, "access": "rwm"}]) == (True, [])
    assert v1_semantics([{"allow": False, "type": "b", "major": 8, "access": "w"}]) == (True, [("b", 8, -1, "w")])


def run(code: bytes, kind: str, major: int, minor: int, access: str) -> int:
    """Interpret the filter for one access: BPF_DEVCG_DEV_* | BPF_DEVCG_ACC_* << 16."""
    ctx = ({"b": 1, "c": 2}[kind] | sum({"m": 1, "r": 2, "w": 4}[a] for a in access) << 16, major, minor)
    regs = [0] * 11
    pc = 0
    while True:
        op, regbyte, off, imm = struct.unpack_from("<BBhi", code, pc * 8)
        dst, src = regbyte & 0xF, regbyte >> 4
        pc += 1
        if op == 0x61:
            assert src == 1
            regs[dst] = ctx[off // 4]
        elif op == 0x54:
            regs[dst] &= imm & 0xFFFFFFFF
        elif op == 0x74:
            regs[dst] >>= imm
        elif op == 0xB4:
            regs[dst] = imm
        elif op == 0xBC:
            regs[dst] = regs[src]
        elif op == 0x55:
            pc += off if regs[dst] != imm else 0
        elif op == 0x5D:
            pc += off if regs[dst] != regs[src] else 0
        elif op == 0x95:
            return regs[0]
        else:
            pytest.fail(f"unexpected opcode {op:#x}")


def test_filter_denies_all_but_the_allowed_devices():
    code = program([DENY_ALL, NULL, PTS_RW])
    assert run(code, "c", 1, 3, "r") == 1
    assert run(code, "c", 1, 3, "m") == 1
    assert run(code, "c", 1, 5, "r") == 0       # /dev/zero
    assert run(code, "b", 1, 3, "r") == 0       # same numbers, block device
    assert run(code, "c", 136, 7, "w") == 1     # any pts
    assert run(code, "c", 136, 7, "m") == 0     # ...but no mknod
    assert run(code, "b", 8, 0, "r") == 0


def test_filter_allows_all_but_the_denied_devices():
    code = program([{"allow": False, "type": "b", "major": 8, "access": "w"}])
    assert run(code, "b", 8, 1, "w") == 0
    assert run(code, "b", 8, 1, "r") == 1
    assert run(code, "c", 8, 1, "w") == 1
    assert run(program([]), "c", 1, 5, "rwm") == 1
