"""securityContext, sysctls and the host namespaces, end to end through the real API server and
pykubelet: what a process in the container sees (`id`, /proc/1/status, a refused write or
syscall, the namespaces it shares with the host) and what the kubelet refuses (runAsNonRoot,
unsafe sysctls, a missing seccomp profile, pod user namespaces, AppArmor on a host without
it)."""
from __future__ import annotations

import json
import os

import pytest

from kubeapi.status import ApiError
from kubelet import machine
from kubelet_testlib import wait_for
from podsec_testlib import logs, run_to_end, waiting_reason

pytestmark = pytest.mark.root

STATUS = "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/1/status"
DEFAULT_CAPS = "00000000a80425fb"     # containerd's default set


def _status_fields(text: str) -> dict[str, str]:
    return dict(line.split(":\t") for line in text.splitlines() if ":\t" in line)


def test_users_and_groups_container_over_pod(api, kubelet, namespace):
    pod = run_to_end(api, namespace, kubelet.node, "ids", "id -u; id -g; id -G",
                     securityContext={"runAsUser": 1000, "runAsGroup": 3000,
                                      "supplementalGroups": [4000], "fsGroup": 5000},
                     container={"securityContext": {"runAsUser": 2000}})
    assert pod["status"]["phase"] == "Succeeded"
    uid, gid, groups = logs(api, namespace, "ids").splitlines()
    assert (uid, gid) == ("2000", "3000")
    assert set(groups.split()) == {"3000", "4000", "5000"}


def test_run_as_non_root_refuses_root_with_the_kubelets_message(api, kubelet, namespace):
    for name, sc in (("img-root", {"runAsNonRoot": True}),
                     ("uid-zero", {"runAsNonRoot": True, "runAsUser": 0})):
        api.create_pod(namespace, {"metadata": {"name": name}, "spec": {
            "nodeName": kubelet.node, "securityContext": sc, "containers": [
                {"name": "c", "image": "busybox:1.36", "imagePullPolicy": "Never",
                 "command": ["sleep", "1000"]}]}})
    for name, text in (("img-root", "container has runAsNonRoot and image will run as root"),
                       ("uid-zero", "container's runAsUser breaks non-root policy")):
        reason, message = wait_for(
            lambda: (w := waiting_reason(api, namespace, name)) and
            w[0] != "ContainerCreating" and w, what=f"{name} waiting")
        uid = api.pod(namespace, name)["metadata"]["uid"]
        assert reason == "CreateContainerConfigError"
        assert message == f'{text} (pod: "{name}_{namespace}({uid})", container: c)'
        assert api.phase(namespace, name) == "Pending"
    ok = run_to_end(api, namespace, kubelet.node, "nonroot", "id -u",
                    securityContext={"runAsNonRoot": True, "runAsUser": 1000})
    assert ok["status"]["phase"] == "Succeeded" and logs(api, namespace, "nonroot") == "1000\n"


def test_read_only_root_filesystem_refuses_a_write(api, kubelet, namespace):
    pod = run_to_end(api, namespace, kubelet.node, "ro",
                     "touch /new 2>&1; echo rc=$?; touch /dev/shm/ok && echo shm-ok",
                     container={"securityContext": {"readOnlyRootFilesystem": True}})
    out = logs(api, namespace, "ro")
    assert "Read-only file system" in out and "rc=1" in out and "shm-ok" in out
    assert pod["status"]["phase"] == "Succeeded"


def test_capabilities_default_add_drop_and_no_new_privileges(api, kubelet, namespace):
    cases = {
        "default": ({}, DEFAULT_CAPS),
        "drop-all": ({"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                      "allowPrivilegeEscalation": False}, "0000000000000400"),
        "add-admin": ({"capabilities": {"add": ["NET_ADMIN"], "drop": ["KILL"]}},
                      f"{(0xa80425fb | 1 << 12) & ~(1 << 5):016x}"),
    }
    for name, (sc, _) in cases.items():
        run_to_end(api, namespace, kubelet.node, name, STATUS, container={"securityContext": sc})
    for name, (_, caps) in cases.items():
        fields = _status_fields(logs(api, namespace, name))
        assert fields["CapEff"] == caps, name
        assert fields["NoNewPrivs"] == ("1" if name == "drop-all" else "0"), name


def test_privileged_gets_every_capability_and_the_host_devices(api, kubelet, namespace):
    with open("/proc/self/status") as f:     # every capability we hold, as containerd gives
        everything = f"{int(next(l for l in f if l.startswith('CapBnd:')).split()[1], 16):016x}"
    script = (f"{STATUS}; test -c /dev/kmsg && echo kmsg; grep -q ' /proc/keys ' /proc/self/mounts"
              " || echo keys-unmasked; grep ' /sys ' /proc/self/mounts | grep -q 'rw,' "
              "&& echo sys-rw")
    run_to_end(api, namespace, kubelet.node, "priv", script,
               container={"securityContext": {"privileged": True}})
    run_to_end(api, namespace, kubelet.node, "plain", script)
    priv = logs(api, namespace, "priv")
    assert _status_fields(priv)["CapEff"] == everything
    assert _status_fields(priv)["Seccomp"] == "0"
    assert {"kmsg", "keys-unmasked", "sys-rw"} <= set(priv.splitlines())
    plain = logs(api, namespace, "plain")
    assert not {"kmsg", "keys-unmasked", "sys-rw"} & set(plain.splitlines())


def test_proc_mount_default_masks_and_unmasked_needs_a_user_namespace(api, kubelet, namespace):
    script = ("grep -q ' /proc/keys ' /proc/self/mounts && echo keys-masked; "
              "grep ' /proc/sys ' /proc/self/mounts | grep -q 'ro,' && echo sys-ro")
    run_to_end(api, namespace, kubelet.node, "default", script,
               container={"securityContext": {"procMount": "Default"}})
    assert logs(api, namespace, "default").split() == ["keys-masked", "sys-ro"]
    unmasked = {"metadata": {"name": "unmasked"}, "spec": {
        "nodeName": kubelet.node, "containers": [
            {"name": "c", "image": "busybox:1.36", "imagePullPolicy": "Never",
             "command": ["true"], "securityContext": {"procMount": "Unmasked"}}]}}
    with pytest.raises(ApiError) as refused:
        api.create_pod(namespace, unmasked)
    assert refused.value.code == 422
    assert ('spec.containers[0].securityContext.procMount: Invalid value: "Unmasked": '
            '`hostUsers` must be false to use `Unmasked`') in refused.value.message
    # With hostUsers: false the API takes it, and the kubelet, which makes no pod user
    # namespaces, refuses the sandbox as the kubelet does for a runtime without them.
    unmasked["spec"]["hostUsers"] = False
    uid = api.create_pod(namespace, unmasked)["metadata"]["uid"]
    event = wait_for(lambda: next((e for e in api.events(namespace, "unmasked")
                                   if e["reason"] == "FailedCreatePodSandBox"), None),
                     what="FailedCreatePodSandBox event")
    assert event["message"] == ('Failed to create pod sandbox: RuntimeClass handler "" does '
                                'not support user namespaces')
    assert api.phase(namespace, "unmasked") == "Pending"
    assert not kubelet.sandbox_records(uid)
    assert not kubelet.container_records(uid)


def test_seccomp_profiles_runtime_default_localhost_and_unconfined(api, kubelet, namespace):
    script = ("grep '^Seccomp:' /proc/1/status | cut -f2; unshare -U true 2>/dev/null "
              "&& echo unshared || echo unshare-refused; mkdir /tmp/d 2>/dev/null "
              "&& echo made || echo mkdir-refused")
    profiles = os.path.join(kubelet.root, "seccomp", "profiles")
    os.makedirs(profiles, exist_ok=True)
    with open(os.path.join(profiles, "no-mkdir.json"), "w") as f:
        json.dump({"defaultAction": "SCMP_ACT_ALLOW",
                   "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                                "subArchitectures": ["SCMP_ARCH_X86"]},
                               {"architecture": "SCMP_ARCH_AARCH64"}],
                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
                                {"names": ["unshare"], "action": "SCMP_ACT_ERRNO",
                                 "excludes": {"caps": ["CAP_SYS_ADMIN"]}}]}, f)
    # The pod's profile, the container's over it, and none at all.
    run_to_end(api, namespace, kubelet.node, "default", script,
               securityContext={"seccompProfile": {"type": "RuntimeDefault"}})
    run_to_end(api, namespace, kubelet.node, "local", script,
               securityContext={"seccompProfile": {"type": "RuntimeDefault"}},
               container={"securityContext": {"seccompProfile": {
                   "type": "Localhost", "localhostProfile": "profiles/no-mkdir.json"}}})
    run_to_end(api, namespace, kubelet.node, "unconfined", script)
    assert logs(api, namespace, "default").split() == ["2", "unshare-refused", "made"]
    assert logs(api, namespace, "local").split() == ["2", "unshare-refused", "mkdir-refused"]
    assert logs(api, namespace, "unconfined").split() == ["0", "unshared", "made"]
    # A profile that is not there: CreateContainerError, and no container is left.
    api.create_pod(namespace, {"metadata": {"name": "missing"}, "spec": {
        "nodeName": kubelet.node, "securityContext": {"seccompProfile": {
            "type": "Localhost", "localhostProfile": "missing.json"}},
        "containers": [{"name": "c", "image": "busybox:1.36", "imagePullPolicy": "Never",
                        "command": ["true"]}]}})
    reason, message = wait_for(
        lambda: (w := waiting_reason(api, namespace, "missing")) and
        w[0] != "ContainerCreating" and w, what="missing waiting")
    path = os.path.join(kubelet.root, "seccomp", "missing.json")
    assert reason == "CreateContainerError"
    assert message == (f'cannot load seccomp profile "{path}": open {path}: '
                       "no such file or directory")
    assert not kubelet.container_records(api.pod(namespace, "missing")["metadata"]["uid"])


def test_safe_sysctls_are_set_unsafe_ones_are_refused(api, kubelet, namespace):
    pod = run_to_end(api, namespace, kubelet.node, "safe",
                     "cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/ip_local_port_range",
                     securityContext={"sysctls": [
                         {"name": "kernel.shm_rmid_forced", "value": "1"},
                         {"name": "net.ipv4.ip_local_port_range", "value": "2000 3000"}]})
    assert pod["status"]["phase"] == "Succeeded"
    assert logs(api, namespace, "safe").split() == ["1", "2000", "3000"]
    pod = run_to_end(api, namespace, kubelet.node, "unsafe", "true",
                     securityContext={"sysctls": [{"name": "kernel.msgmax", "value": "9000"}]})
    assert pod["status"]["reason"] == "SysctlForbidden"
    assert pod["status"]["message"] == 'forbidden sysctl: "kernel.msgmax" not allowlisted'
    assert not kubelet.container_records(pod["metadata"]["uid"])


def test_an_apparmor_profile_that_cannot_be_enforced_refuses_the_pod(api, kubelet, namespace):
    pod = run_to_end(api, namespace, kubelet.node, "confined", "true",
                     securityContext={"appArmorProfile": {"type": "RuntimeDefault"}})
    why = ("the pycontainer runtime does not apply AppArmor profiles"
           if machine.apparmor_enabled() else "AppArmor is not enabled on the host")
    assert pod["status"]["reason"] == "AppArmor"
    assert pod["status"]["message"] == f"Cannot enforce AppArmor: {why}"
    assert not kubelet.container_records(pod["metadata"]["uid"])
    assert not kubelet.sandbox_records(pod["metadata"]["uid"])


def test_host_pid_ipc_and_network_namespaces(api, kubelet, namespace):
    script = "for k in pid ipc net; do readlink /proc/self/ns/$k; done; cat /proc/1/comm"
    run_to_end(api, namespace, kubelet.node, "hostns", script,
               hostPID=True, hostIPC=True, hostNetwork=True)
    run_to_end(api, namespace, kubelet.node, "ownns", script)
    host = [os.readlink(f"/proc/self/ns/{kind}") for kind in ("pid", "ipc", "net")]
    with open("/proc/1/comm") as f:
        host.append(f.read().strip())
    assert logs(api, namespace, "hostns").split() == host
    own = logs(api, namespace, "ownns").split()
    assert all(a != b for a, b in zip(own, host))


def test_fs_group_owns_the_volumes_the_kubelet_makes(api, kubelet, namespace):
    api.client.create(f"/api/v1/namespaces/{namespace}/configmaps", {
        "metadata": {"name": "cfg"}, "data": {"key": "value"}})
    pod = run_to_end(
        api, namespace, kubelet.node, "fsgroup",
        "stat -c '%g %a' /data; touch /data/new; stat -c %g /data/new; stat -L -c %g /cfg/key",
        securityContext={"runAsUser": 1000, "fsGroup": 5000},
        volumes=[{"name": "data", "emptyDir": {}},
                 {"name": "cfg", "configMap": {"name": "cfg"}}],
        container={"volumeMounts": [{"name": "data", "mountPath": "/data"},
                                    {"name": "cfg", "mountPath": "/cfg"}]})
    assert pod["status"]["phase"] == "Succeeded", logs(api, namespace, "fsgroup")
    # the emptyDir setgid to the group, so what the container creates there is the group's
    assert logs(api, namespace, "fsgroup").split("\n") == ["5000 2777", "5000", "5000", ""]
