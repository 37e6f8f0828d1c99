"""The last steps before execve without root, against linux.fake.RecordingSyscalls: the order of
the prctl and capset calls that make the user switch keep exactly the configured capabilities
(bounding set dropped while CAP_SETPCAP is still held, KEEPCAPS around setresuid, the sets,
the ambient ones, no_new_privs last)."""
from __future__ import annotations

import os

from linux import constants as lx
from linux.fake import RecordingSyscalls
from runtime.config import parse_process
from runtime.foreground import become_subreaper
from runtime import capabilities
from runtime.init import process_setup


def own_process(**extra: object):
    """A process config for this test's own user, so that the real setresuid changes nothing."""
    raw = {"args": ["/bin/true"], "cwd": "/", "user": {"uid": os.getuid(), "gid": os.getgid()}}
    raw.update(extra)
    return parse_process(raw, "process")


def prctls(kernel: RecordingSyscalls, option: int) -> list[tuple]:
    return [call for call in kernel.calls if call[:2] == ("prctl", option)]


def test_the_user_switch_keeps_exactly_the_configured_capabilities():
    kernel = RecordingSyscalls()
    caps = {"bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_KILL"],
            "permitted": ["CAP_CHOWN", "CAP_KILL"], "inheritable": [], "ambient": []}
    process_setup.switch_user(kernel, own_process(capabilities=caps, noNewPrivileges=True),
                              setgroups_allowed=False, warn=print)
    last = capabilities.last_cap()
    kept = {capabilities.NUMBERS["CAP_CHOWN"], capabilities.NUMBERS["CAP_KILL"]}
    dropped = [("prctl", lx.PR_CAPBSET_DROP, cap, 0) for cap in range(last + 1) if cap not in kept]
    assert kernel.calls == dropped + [
        ("prctl", lx.PR_SET_KEEPCAPS, 1, 0),
        ("prctl", lx.PR_SET_KEEPCAPS, 0, 0),
        ("set_caps", [capabilities.NUMBERS["CAP_KILL"]], sorted(kept), []),
        ("ambient_clear_all",),
        ("prctl", lx.PR_SET_NO_NEW_PRIVS, 1, 0),
    ]


def test_without_capabilities_or_no_new_privileges_only_keepcaps_is_touched():
    kernel = RecordingSyscalls()
    process = own_process()
    process.capabilities = None
    process_setup.switch_user(kernel, process, setgroups_allowed=False, warn=print)
    assert kernel.calls == [("prctl", lx.PR_SET_KEEPCAPS, 1, 0),
                            ("prctl", lx.PR_SET_KEEPCAPS, 0, 0)]
    assert prctls(kernel, lx.PR_SET_NO_NEW_PRIVS) == []


def test_an_ambient_capability_the_kernel_refuses_is_a_warning():
    kernel = RecordingSyscalls()
    kernel.fail("ambient_raise", 1)
    caps = {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
            "inheritable": [], "ambient": ["CAP_KILL"]}
    warnings: list[str] = []
    process_setup.switch_user(kernel, own_process(capabilities=caps), setgroups_allowed=False,
                              warn=warnings.append)
    assert kernel.calls[-2:] == [("ambient_clear_all",),
                                 ("ambient_raise", capabilities.NUMBERS["CAP_KILL"])]
    assert warnings == ["process.capabilities.ambient: CAP_KILL not raised (Operation not "
                        "permitted): an ambient capability must also be permitted and inheritable"]


def test_the_foreground_runtime_becomes_the_subreaper():
    kernel = RecordingSyscalls()
    become_subreaper(kernel)
    assert kernel.calls == [("prctl", lx.PR_SET_CHILD_SUBREAPER, 1, 0)]
