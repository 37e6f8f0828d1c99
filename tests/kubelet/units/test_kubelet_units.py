"""The kubelet's pure logic, no root needed: back-off, durations and configuration, the pod
actions (restart policies, init containers, sandbox changes), the pod status (phase, container
states, conditions), $(VAR) expansion, the CRI log format."""
from __future__ import annotations

import pytest

from cri.api import (CONTAINER_EXITED, CONTAINER_RUNNING, SANDBOX_NOTREADY, SANDBOX_READY,
                     ContainerMetadata, ContainerStatus, PodSandboxMetadata, PodSandboxStatus)
from kubelet import config as config_mod, labels
from kubelet.durations import parse_duration
from kubelet.pod_runtime import PodRuntime
from kubelet.pods import Pod
from kubelet.server import log_reader
from kubelet.status import pod_status
from kubelet.sync import container_config, pod_actions
from kubelet.sync.backoff import Backoff


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_to_the_maximum_and_resets_after_quiet_time():
    clock = Clock()
    b = Backoff(clock=clock)
    assert b.remaining("k", clock.now) == 0          # first failure: restart at once
    b.next("k", clock.now)
    delays = []
    for _ in range(7):
        clock.now += 1                               # the restarted container fails again
        delays.append(b.remaining("k", clock.now))
        clock.now += b.remaining("k", clock.now)
        b.next("k", clock.now)
    assert delays == [10, 20, 40, 80, 160, 300, 300]
    clock.now += 601                                 # ran cleanly for more than 10 minutes
    b.next("k", clock.now)
    assert b.delay("k") == 10


def test_durations():
    assert parse_duration("1m0s", "f") == 60
    assert parse_duration("300ms", "f") == 0.3
    assert parse_duration("1h30m", "f") == 5400
    with pytest.raises(ValueError, match="syncFrequency"):
        parse_duration("10 s", "syncFrequency")


def test_config_file_fields_defaults_and_errors(tmp_path):
    path = tmp_path / "k.yaml"
    path.write_text("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
                    "containerLogMaxSize: 1Mi\nsyncFrequency: 30s\nmaxPods: 20\n"
                    "authentication: {x509: {clientCAFile: /ca.pem}}\nfoo: 1\n"
                    "seccompDefault: true\n")
    c = config_mod.KubeletConfig()
    warnings = config_mod.load_file(str(path), c)
    assert (c.container_log_max_size, c.sync_frequency, c.max_pods) == (1 << 20, 30, 20)
    assert c.seccomp_default
    assert c.client_ca_file == "/ca.pem"
    assert c.container_log_max_files == 5 and c.node_lease_duration_seconds == 40
    assert warnings == ["--config: field foo is not supported by pykubelet; ignored"]
    from kubelet.cli import build_config, parser

    flags = parser().parse_args(["--config", str(path), "--seccomp-default=false"])
    assert not build_config(flags)[0].seccomp_default          # the flag over the file
    assert build_config(parser().parse_args(["--seccomp-default"]))[0].seccomp_default
    path.write_text("kind: KubeletConfiguration\nmaxPods: many\n")
    with pytest.raises(config_mod.ConfigError, match="^maxPods: 'many' must be an integer$"):
        config_mod.load_file(str(path), config_mod.KubeletConfig())


def container(name: str, **extra) -> dict:
    return {"name": name, "image": "busybox:1.36", **extra}


def make_pod(containers: list[dict], init: list[dict] | None = None, policy: str = "Always",
             deleted: bool = False, phase: str = "Pending") -> Pod:
    meta = {"name": "p", "namespace": "ns", "uid": "u1"}
    if deleted:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    spec = {"containers": containers, "restartPolicy": policy}
    if init:
        spec["initContainers"] = init
    return Pod({"metadata": meta, "spec": spec, "status": {"phase": phase}})


def cs(pod: Pod, spec: dict, state: str, exit_code: int = 0, created: int = 1,
       restarts: int = 0) -> ContainerStatus:
    return ContainerStatus(
        id=f"{spec['name']}-{created}", pod_sandbox_id="s1",
        metadata=ContainerMetadata(spec["name"], restarts), state=state, created_at=created,
        started_at=created, finished_at=created + 1 if state == CONTAINER_EXITED else 0,
        exit_code=exit_code, image="docker.io/library/busybox:1.36", image_ref="ref",
        reason=("Completed" if exit_code == 0 else "Error") if state == CONTAINER_EXITED
        else "", annotations=labels.container_annotations(pod, spec, restarts, False))


def ready_sandbox() -> PodSandboxStatus:
    return PodSandboxStatus("s1", PodSandboxMetadata("p", "u1", "ns"), SANDBOX_READY, 1,
                            ips=["198.18.0.5"])


def runtime(*containers: ContainerStatus, sandbox: PodSandboxStatus | None = None) -> PodRuntime:
    return PodRuntime("u1", [sandbox or ready_sandbox()],
                      sorted(containers, key=lambda c: c.created_at, reverse=True))


def test_new_pod_gets_a_sandbox_and_first_init_container_only():
    init = [container("i1"), container("i2")]
    pod = make_pod([container("c")], init)
    a = pod_actions.compute(pod, PodRuntime("u1"))
    assert a.create_sandbox and a.next_init_container["name"] == "i1"
    assert a.containers_to_start == []


def test_init_containers_run_in_order_and_gate_app_containers():
    c, i1, i2 = container("c"), container("i1"), container("i2")
    pod = make_pod([c], [i1, i2])
    a = pod_actions.compute(pod, runtime(cs(pod, i1, CONTAINER_RUNNING)))
    assert a.empty()
    a = pod_actions.compute(pod, runtime(cs(pod, i1, CONTAINER_EXITED)))
    assert a.next_init_container["name"] == "i2" and not a.containers_to_start
    a = pod_actions.compute(pod, runtime(cs(pod, i1, CONTAINER_EXITED),
                                         cs(pod, i2, CONTAINER_EXITED, created=2)))
    assert a.next_init_container is None and [x["name"] for x in a.containers_to_start] == ["c"]
    # a failed init container is retried, unless the pod never restarts
    failed = runtime(cs(pod, i1, CONTAINER_EXITED, exit_code=1))
    assert pod_actions.compute(pod, failed).next_init_container["name"] == "i1"
    never = make_pod([c], [i1, i2], policy="Never")
    a = pod_actions.compute(never, runtime(cs(never, i1, CONTAINER_EXITED, exit_code=1)))
    assert a.kill_pod and a.next_init_container is None


@pytest.mark.parametrize("policy,exit_code,restart", [
    ("Always", 0, True), ("Always", 1, True), ("OnFailure", 0, False), ("OnFailure", 1, True),
    ("Never", 0, False), ("Never", 1, False)])
def test_restart_policy(policy, exit_code, restart):
    c = container("c")
    pod = make_pod([c], policy=policy)
    a = pod_actions.compute(pod, runtime(cs(pod, c, CONTAINER_EXITED, exit_code)))
    assert bool(a.containers_to_start) == restart
    assert a.kill_pod == (not restart)      # nothing left to run: the sandbox goes


def test_running_container_kept_unless_its_spec_changed():
    c = container("c")
    pod = make_pod([c])
    assert pod_actions.compute(pod, runtime(cs(pod, c, CONTAINER_RUNNING))).empty()
    changed = make_pod([container("c", image="busybox:1.37")])
    a = pod_actions.compute(changed, runtime(cs(pod, c, CONTAINER_RUNNING)))
    assert list(a.containers_to_kill) == ["c-1"] and a.containers_to_start


def test_sandbox_gone_not_ready_restarts_everything_but_not_a_finished_never_pod():
    c = container("c")
    pod = make_pod([c])
    dead = PodSandboxStatus("s1", PodSandboxMetadata("p", "u1", "ns", 0), SANDBOX_NOTREADY, 1)
    a = pod_actions.compute(pod, runtime(cs(pod, c, CONTAINER_EXITED), sandbox=dead))
    assert a.create_sandbox and a.attempt == 1 and a.containers_to_start
    never = make_pod([c], policy="Never")
    a = pod_actions.compute(never, runtime(cs(never, c, CONTAINER_EXITED), sandbox=dead))
    assert a.kill_pod and not a.create_sandbox


def test_deleted_pod_starts_nothing():
    c = container("c")
    pod = make_pod([c], deleted=True)
    assert not pod_actions.compute(pod, runtime(cs(pod, c, CONTAINER_EXITED, 1))
                                   ).containers_to_start


def generate(pod, rt, reasons=None, old=None, terminal=False):
    return pod_status.generate(pod, rt, old or {}, reasons or {}, "10.0.0.1", terminal)


def test_status_of_a_running_pod():
    c = container("c")
    pod = make_pod([c])
    s = generate(pod, runtime(cs(pod, c, CONTAINER_RUNNING)))
    assert s["phase"] == "Running" and s["podIP"] == "198.18.0.5" and s["hostIP"] == "10.0.0.1"
    assert s["qosClass"] == "BestEffort"
    cond = {c["type"]: c["status"] for c in s["conditions"]}
    assert cond == {"PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
                    "ContainersReady": "True", "PodScheduled": "True"}
    st = s["containerStatuses"][0]
    assert (st["ready"], st["started"], st["restartCount"]) == (True, True, 0)
    assert st["containerID"] == "pycontainer://c-1" and "running" in st["state"]


def test_status_of_a_crash_loop_shows_waiting_reason_and_last_state():
    c = container("c")
    pod = make_pod([c])
    rt = runtime(cs(pod, c, CONTAINER_EXITED, 3, created=1, restarts=0),
                 cs(pod, c, CONTAINER_EXITED, 3, created=5, restarts=1))
    s = generate(pod, rt, {"c": ("CrashLoopBackOff", "back-off 10s restarting failed")})
    st = s["containerStatuses"][0]
    assert st["state"] == {"waiting": {"reason": "CrashLoopBackOff",
                                       "message": "back-off 10s restarting failed"}}
    assert st["lastState"]["terminated"]["exitCode"] == 3 and st["restartCount"] == 1
    assert s["phase"] == "Running"       # restartPolicy Always: it is restarting


@pytest.mark.parametrize("policy,code,phase", [("Never", 0, "Succeeded"), ("Never", 2, "Failed"),
                                               ("OnFailure", 0, "Succeeded")])
def test_terminal_phases(policy, code, phase):
    c = container("c")
    pod = make_pod([c], policy=policy)
    s = generate(pod, runtime(cs(pod, c, CONTAINER_EXITED, code)))
    assert s["phase"] == phase
    reason = s["containerStatuses"][0]["state"]["terminated"]["reason"]
    assert reason == ("Completed" if code == 0 else "Error")


def test_pending_pod_with_init_containers_and_a_failed_one():
    c, i1 = container("c"), container("i1")
    pod = make_pod([c], [i1])
    s = generate(pod, PodRuntime("u1"))
    assert s["phase"] == "Pending"
    assert s["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert s["initContainerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    cond = {c["type"]: c for c in s["conditions"]}
    assert cond["Initialized"]["reason"] == "ContainersNotInitialized"
    assert cond["PodReadyToStartContainers"]["status"] == "False"
    never = make_pod([c], [i1], policy="Never")
    s = generate(never, runtime(cs(never, i1, CONTAINER_EXITED, 1)))
    assert s["phase"] == "Failed"


def test_terminal_phase_is_kept_and_transition_times_survive():
    c = container("c")
    pod = make_pod([c], phase="Failed")
    s = generate(pod, runtime(cs(pod, c, CONTAINER_RUNNING)))
    assert s["phase"] == "Failed"
    first = generate(make_pod([c]), runtime(cs(pod, c, CONTAINER_RUNNING)))
    old = {"conditions": [dict(x, lastTransitionTime="2020-01-01T00:00:00Z")
                          for x in first["conditions"]], "startTime": "2020-01-01T00:00:00Z"}
    again = generate(make_pod([c]), runtime(cs(pod, c, CONTAINER_RUNNING)), old=old)
    assert {x["lastTransitionTime"] for x in again["conditions"]} == {"2020-01-01T00:00:00Z"}
    assert again["startTime"] == "2020-01-01T00:00:00Z"


def test_expansion_rules():
    env = {"A": "x", "B": "y"}
    assert container_config.expand("$(A)-$(B)", env) == "x-y"
    assert container_config.expand("$$(A) $(C) $ $(", env) == "$(A) $(C) $ $("
    pod = make_pod([])
    spec = container("c", command=["echo", "$(GREETING)"], args=["$(NAME)!"],
                     env=[{"name": "NAME", "value": "kube"},
                          {"name": "GREETING", "value": "hi $(NAME)"}])
    cfg = container_config.build(pod, spec, 2, False)
    assert cfg.command == ["echo", "hi kube"] and cfg.args == ["kube!"]
    assert cfg.log_path == "c/2.log" and cfg.annotations[labels.RESTART_COUNT] == "2"


def test_cri_log_records():
    assert log_reader.parse(b"2024-01-01T00:00:00.5Z stdout F hello world\n") == \
        (b"2024-01-01T00:00:00.5Z", b"stdout", b"F", b"hello world")
    assert log_reader.parse(b"2024-01-01T00:00:00Z stderr P part")[2] == b"P"


def test_log_stream_joins_partials_tails_and_limits(tmp_path):
    path = tmp_path / "0.log"
    path.write_bytes(b"2024-01-01T00:00:01Z stdout F one\n"
                     b"2024-01-01T00:00:02Z stdout P tw\n"
                     b"2024-01-01T00:00:02Z stdout F o\n"
                     b"2024-01-01T00:00:03Z stderr F three\n")
    out = []
    log_reader.stream(str(path), log_reader.Options(), out.append, lambda: False)
    assert b"".join(out) == b"one\ntwo\nthree\n"
    out.clear()
    log_reader.stream(str(path), log_reader.Options(tail_lines=1, timestamps=True), out.append,
                      lambda: False)
    assert b"".join(out) == b"2024-01-01T00:00:03Z three\n"
    out.clear()
    log_reader.stream(str(path), log_reader.Options(limit_bytes=5), out.append, lambda: False)
    assert b"".join(out) == b"one\nt"


def test_command_rules_against_the_image():
    from cri.container_spec import SpecError, command
    from cri.api import ContainerConfig, ContainerMetadata

    image = {"config": {"Entrypoint": ["/entry"], "Cmd": ["default"]}}

    def cfg(command=(), args=()):
        return ContainerConfig(ContainerMetadata("c"), "img", list(command), list(args))
    assert command(cfg(), image) == (["/entry"], ["default"])
    assert command(cfg(args=["mine"]), image) == (["/entry"], ["mine"])
    assert command(cfg(command=["/bin/x"]), image) == (["/bin/x"], [])
    assert command(cfg(command=["/bin/x"], args=["a"]), image) == (["/bin/x"], ["a"])
    assert command(cfg(), {"config": {"Entrypoint": [""], "Cmd": ["sh"]}}) == ([], ["sh"])
    with pytest.raises(SpecError, match="^no command specified$"):
        command(cfg(), {"config": {}})


def test_oci_config_of_a_pod_container(tmp_path):
    from cri.container_spec import SandboxNamespaces, build
    from cri.api import ContainerConfig, ContainerMetadata, Mount

    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "passwd").write_text("app:x:1000:1001::/home/app:/bin/sh\n")
    image = {"config": {"Cmd": ["sh"], "Env": ["PATH=/bin", "MODE=image", "KEEP=1"],
                        "User": "app", "WorkingDir": "/srv"}}
    config = ContainerConfig(ContainerMetadata("c"), "img", command=["sh"], args=["-c", "true"],
                             envs=[("MODE", "pod")], mounts=[Mount("/data", "/host", True)])
    sandbox = SandboxNamespaces(netns="/run/netns/x", ipc="/s/ns/ipc", uts="/s/ns/uts",
                                shm_dir="/s/shm", hostname="web", cgroup_parent="/pyc/pod1")
    spec = build("cid", config, image, str(rootfs), sandbox, unified_cgroups=False)
    p = spec["process"]
    assert p["args"] == ["sh", "-c", "true"] and p["cwd"] == "/srv"
    assert p["user"] == {"uid": 1000, "gid": 1001}
    assert p["env"] == ["PATH=/bin", "MODE=pod", "KEEP=1", "HOSTNAME=web"]
    assert "hostname" not in spec and spec["root"] == {"path": str(rootfs), "readonly": False}
    ns = {n["type"]: n.get("path", "") for n in spec["linux"]["namespaces"]}
    assert ns == {"pid": "", "network": "/run/netns/x", "ipc": "/s/ns/ipc", "uts": "/s/ns/uts",
                  "mount": ""}
    assert spec["linux"]["cgroupsPath"] == "/pyc/pod1/cid"
    mounts = {m["destination"]: m for m in spec["mounts"]}
    assert mounts["/dev/shm"]["source"] == "/s/shm"
    assert mounts["/data"] == {"destination": "/data", "type": "bind", "source": "/host",
                               "options": ["rbind", "rprivate", "ro"]}
    # What issue 9's security context and resources set, the spec applies.
    from cri.api import LinuxContainerConfig, SecurityProfile

    config.linux = LinuxContainerConfig(
        resources={"memory": {"limit": 64 << 20}}, oom_score_adj=500, run_as_user=7,
        supplemental_groups=[20], readonly_rootfs=True, no_new_privs=True,
        add_capabilities=["CAP_NET_ADMIN"], drop_capabilities=["CAP_KILL"])
    spec = build("cid", config, image, str(rootfs), sandbox, unified_cgroups=False)
    p = spec["process"]
    # containerd's WithUser: a runAsUser without a passwd entry gets group 0
    assert p["user"] == {"uid": 7, "gid": 0, "additionalGids": [20]}
    assert p["oomScoreAdj"] == 500 and p["noNewPrivileges"] and spec["root"]["readonly"]
    assert "CAP_NET_ADMIN" in p["capabilities"]["bounding"]
    assert "CAP_KILL" not in p["capabilities"]["effective"]
    assert spec["linux"]["resources"]["memory"] == {"limit": 64 << 20}
    assert "seccomp" not in spec["linux"]            # Unconfined
    config.linux.seccomp = SecurityProfile("RuntimeDefault")
    seccomp = build("cid", config, image, str(rootfs), sandbox, False)["linux"]["seccomp"]
    assert seccomp["defaultAction"] == "SCMP_ACT_ALLOW"
    config.linux.privileged = True                   # containerd: no profile when privileged
    assert "seccomp" not in build("cid", config, image, str(rootfs), sandbox, False)["linux"]
    config.linux.privileged = False
    host = SandboxNamespaces(netns="", ipc="/s/ns/ipc", uts="", shm_dir="/s/shm", hostname="",
                             cgroup_parent="/pyc/pod1")
    ns = {n["type"] for n in build("cid", config, image, str(rootfs), host,
                                   unified_cgroups=False)["linux"]["namespaces"]}
    assert ns == {"pid", "ipc", "mount"}      # the host's network and UTS namespaces


def test_exit_watcher_stops_once_however_often_asked(tmp_path):
    from cri.exit_watcher import ExitWatcher

    watcher = ExitWatcher(str(tmp_path), lambda container_id, record: None)
    watcher.stop()
    watcher.stop()  # a runtime service closed twice (a test's teardown after a failure)
    assert not watcher.watch("c1")
