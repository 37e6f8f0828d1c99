"""Ephemeral containers in the kubelet's pod sync and status, against the in-memory CRI fake:
started once (before init containers are done), in their target's PID namespace, never
restarted, reported in ephemeralContainerStatuses. Real runs: test_kubelet_ephemeral.py."""
from __future__ import annotations

import copy

from test_pod_sync_units import IMAGE, Node, make_pod

from kubelet.pods import Pod
from kubelet.sync.syncer import ERROR_RETRY


def _debugged(pod: Pod, target: str = "c", name: str = "debugger") -> Pod:
    obj = copy.deepcopy(pod.obj)
    obj["spec"].setdefault("ephemeralContainers", []).append(
        {"name": name, "image": IMAGE, "imagePullPolicy": "IfNotPresent",
         "command": ["ps"], **({"targetContainerName": target} if target else {})})
    return Pod(obj)


def _recorded_configs(node: Node) -> list:
    """The ContainerConfigs the kubelet creates containers with, in order."""
    configs = []
    create = node.cri.create_container

    def recording(sandbox_id, config, sandbox_config):
        configs.append(config)
        return create(sandbox_id, config, sandbox_config)
    node.cri.create_container = recording
    return configs


def _ephemeral(status: dict) -> dict:
    [one] = status["ephemeralContainerStatuses"]
    return one


def test_started_once_in_the_targets_pid_namespace(tmp_path):
    node = Node(tmp_path, images=(IMAGE,))
    pod = make_pod()
    pod.obj["spec"]["containers"][0]["command"] = ["sleep", "1000"]
    node.syncer.sync(pod)
    target_id = node.running("c")
    configs = _recorded_configs(node)
    pod = _debugged(pod)
    assert node.syncer.sync(pod) is None
    assert [(c.metadata.name, c.linux.pid_target) for c in configs] == [("debugger", target_id)]
    assert node.events.reasons()[-2:] == ["Created", "Started"]
    running = _ephemeral(node.status(pod))
    assert "running" in running["state"] and running["ready"] is False
    assert "started" not in running
    node.cri.exit(node.running("debugger"), 1)
    node.syncer.sync(pod)
    assert len(configs) == 1                               # never restarted
    ended = _ephemeral(node.status(pod))
    assert ended["state"]["terminated"]["exitCode"] == 1 and ended["restartCount"] == 0
    assert node.status(pod)["phase"] == "Running"


def test_without_a_target_it_joins_no_namespace(tmp_path):
    node = Node(tmp_path, images=(IMAGE,))
    pod = make_pod()
    node.syncer.sync(pod)
    configs = _recorded_configs(node)
    node.syncer.sync(_debugged(pod, target=""))
    assert [c.linux.pid_target for c in configs if c.metadata.name == "debugger"] == [""]


def test_a_target_not_running_is_a_config_error_retried(tmp_path):
    node = Node(tmp_path, images=(IMAGE,))
    pod = make_pod(policy="Never")
    pod.obj["spec"]["containers"].append({"name": "other", "image": IMAGE,
                                          "imagePullPolicy": "IfNotPresent",
                                          "command": ["sleep", "1000"]})
    node.syncer.sync(pod)
    node.cri.exit(node.running("c"), 0)
    pod = _debugged(pod)
    assert node.syncer.sync(pod) == ERROR_RETRY
    assert _ephemeral(node.status(pod))["state"] == {"waiting": {
        "reason": "CreateContainerConfigError",
        "message": "unable to find target container c"}}


def test_started_while_init_containers_run_and_not_once_deleted(tmp_path):
    node = Node(tmp_path, images=(IMAGE,))
    pod = make_pod()
    pod.obj["spec"]["initContainers"] = [{"name": "init", "image": IMAGE,
                                          "imagePullPolicy": "IfNotPresent",
                                          "command": ["sleep", "1000"]}]
    node.syncer.sync(pod)
    node.running("init")
    node.syncer.sync(_debugged(pod, target="init"))
    assert "running" in _ephemeral(node.status(_debugged(pod, target="init")))["state"]
    deleted = _debugged(pod, name="late")
    deleted.obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    node.syncer.sync(deleted)
    assert node.runtime().latest("late") is None
