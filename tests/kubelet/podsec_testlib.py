"""Helpers of the securityContext, resources and hosts tests: a pod that runs a shell command to
its end, and what it printed."""
from __future__ import annotations

from kubelet_testlib import pod_manifest, wait_for


def run_to_end(api, namespace: str, node: str, name: str, command: str, **spec) -> dict:
    """Runs `command` in a restartPolicy Never pod with these spec fields (a "container" key
    is merged into its container); returns the finished pod."""
    pod = pod_manifest(name, node, command, restart_policy="Never", grace=1)
    container = spec.pop("container", {})
    pod["spec"]["containers"][0].update(container)
    pod["spec"].update(spec)
    api.create_pod(namespace, pod)
    return wait_for(lambda: (p := api.pod(namespace, name)) and
                    p["status"].get("phase") in ("Succeeded", "Failed") and p,
                    timeout=60, what=lambda: f"pod {name} finished: {api.pod(namespace, name)}")


def logs(api, namespace: str, name: str) -> str:
    result = api.kubectl("logs", "-n", namespace, name)
    assert result.returncode == 0, result.stderr
    return result.stdout


def waiting_reason(api, namespace: str, name: str) -> tuple[str, str] | None:
    state = api.container_status(namespace, name).get("state") or {}
    waiting = state.get("waiting")
    return (waiting["reason"], waiting.get("message", "")) if waiting else None
