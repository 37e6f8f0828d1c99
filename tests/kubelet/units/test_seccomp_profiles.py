"""Seccomp profiles as the container's OCI config gets them: which seccompProfile wins, the
default profile's deny list and the capabilities that lift its groups, and Docker-format
Localhost files resolved for this host (archMap, includes, excludes) or refused in one line."""
import json
import platform

import pytest

from cri import seccomp_profiles
from cri.api import SecurityProfile
from kubelet.pods import Pod
from kubelet.sync import security_context

NATIVE = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}[platform.machine()]
GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]


def denied(profile: dict) -> set[str]:
    return {n for rule in profile["syscalls"] if not rule.get("args") for n in rule["names"]}


def test_the_container_profile_wins_then_the_pods_then_seccomp_default():
    settings = security_context.SeccompSettings("/var/lib/k/seccomp")
    pick = security_context.seccomp_profile
    pod = Pod({"metadata": {"name": "p", "uid": "u"},
               "spec": {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}})
    container = {"securityContext": {"seccompProfile": {"type": "Localhost",
                                                        "localhostProfile": "a/b.json"}}}
    assert pick(security_context.effective(pod, container), settings) == \
        SecurityProfile("Localhost", "/var/lib/k/seccomp/a/b.json")
    assert pick(security_context.effective(pod, {}), settings) == \
        SecurityProfile("RuntimeDefault")
    assert pick({}, settings) is None
    assert pick({}, security_context.SeccompSettings("/s", default=True)) == \
        SecurityProfile("RuntimeDefault")
    assert pick({"seccompProfile": {"type": "Unconfined"}},
                security_context.SeccompSettings("/s", default=True)) is None


def test_runtime_default_denies_groups_unless_their_capability_is_held():
    plain = seccomp_profiles.runtime_default(["CAP_CHOWN"])
    assert plain["defaultAction"] == "SCMP_ACT_ALLOW" and NATIVE in plain["architectures"]
    assert {"mount", "unshare", "setns", "bpf", "keyctl", "init_module", "reboot",
            "clock_settime", "perf_event_open", "open_by_handle_at"} <= denied(plain)
    clone_rules = [r for r in plain["syscalls"] if r["names"] == ["clone"]]
    assert len(clone_rules) == 7 and all(r["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"
                                         for r in clone_rules)
    assert [r["errnoRet"] for r in plain["syscalls"] if r["names"] == ["clone3"]] == [38]

    admin = seccomp_profiles.runtime_default(["CAP_SYS_ADMIN"])
    assert not {"mount", "unshare", "bpf", "perf_event_open", "clone", "clone3"} & denied(admin)
    assert not [r for r in admin["syscalls"] if r["names"][0].startswith("clone")]
    assert "keyctl" in denied(admin)            # no capability lifts the keyring group
    perfmon = seccomp_profiles.runtime_default(["CAP_PERFMON"])
    assert "perf_event_open" not in denied(perfmon) and "mount" in denied(perfmon)


def write(tmp_path, profile) -> str:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(profile) if not isinstance(profile, str) else profile)
    return str(path)


def test_a_docker_profile_is_resolved_for_this_host_and_the_capabilities(tmp_path):
    path = write(tmp_path, {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "archMap": [{"architecture": NATIVE, "subArchitectures": ["SCMP_ARCH_X86"]},
                    {"architecture": "SCMP_ARCH_S390X"}],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"name": "getpid", "action": "SCMP_ACT_ALLOW"},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW",
             "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
            {"names": ["s390_pci_mmio_read"], "action": "SCMP_ACT_ALLOW",
             "includes": {"arches": ["s390x"]}},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW",
             "includes": {"arches": [GOARCH]}},
            {"names": ["chown"], "action": "SCMP_ACT_ALLOW",
             "excludes": {"caps": ["CAP_CHOWN"]}}]})
    profile = seccomp_profiles.localhost(path, ["CAP_CHOWN"])
    assert profile["architectures"] == [NATIVE, "SCMP_ARCH_X86"]
    assert profile["defaultErrnoRet"] == 1
    assert [r["names"] for r in profile["syscalls"]] == [
        ["read", "write"], ["getpid"], ["ptrace"], ["arch_prctl"]]
    with_admin = seccomp_profiles.localhost(path, ["CAP_SYS_ADMIN"])
    assert ["mount"] in [r["names"] for r in with_admin["syscalls"]]
    assert ["chown"] in [r["names"] for r in with_admin["syscalls"]]
    assert seccomp_profiles.linux_seccomp(SecurityProfile("Localhost", path), []) is not None
    assert seccomp_profiles.linux_seccomp(None, []) is None


@pytest.mark.parametrize("content, message", [
    (None, r'cannot load seccomp profile ".*/p.json": open .*/p.json: no such file or '
           r'directory$'),
    ("{not json", r'decoding seccomp profile failed ".*/p.json": Expecting property name'),
    ("[]", r'decoding seccomp profile failed ".*/p.json": not a JSON object$'),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "NOPE"}]},
     r'seccomp profile ".*/p.json": linux.seccomp.syscalls\[0\].action: unknown action'),
])
def test_a_bad_profile_file_is_one_line(tmp_path, content, message):
    path = str(tmp_path / "p.json") if content is None else write(tmp_path, content)
    with pytest.raises(seccomp_profiles.ProfileError, match=message):
        seccomp_profiles.localhost(path, [])
