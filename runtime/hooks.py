"""OCI hooks: each runs with the container's state JSON on stdin and its own timeout."""
from __future__ import annotations

from runtime import fastjson
from runtime.config import Hook
from runtime.errors import PycontainerError
from runtime.log import Log


class HookFailed(PycontainerError):
    pass


def run(kind: str, hooks: list[Hook], state: dict) -> None:
    """Runs `hooks` in order; the first failure stops them and raises HookFailed."""
    payload = fastjson.dumps(state).encode()
    for i, hook in enumerate(hooks):
        _run_one(f"hooks.{kind}[{i}]", hook, payload)


def run_warning_only(kind: str, hooks: list[Hook], state: dict, log: Log) -> None:
    """poststart and poststop: the spec makes a failure a warning; the lifecycle goes on."""
    payload = fastjson.dumps(state).encode()
    for i, hook in enumerate(hooks):
        try:
            _run_one(f"hooks.{kind}[{i}]", hook, payload)
        except HookFailed as e:
            log.warning(str(e))


def preload() -> None:
    """For hooks run where the host's Python library is out of sight (startContainer)."""
    import subprocess  # noqa: F401


def _run_one(field: str, hook: Hook, payload: bytes) -> None:
    # Hooks are rare; subprocess stays off the start path unless a config has some.
    import subprocess

    what = f"{field} ({hook.path})"
    try:
        done = subprocess.run(
            hook.args or [hook.path], executable=hook.path, input=payload,
            env=dict(e.split("=", 1) for e in hook.env), capture_output=True,
            timeout=hook.timeout,
        )
    except subprocess.TimeoutExpired:
        raise HookFailed(f"{what}: timed out after {hook.timeout}s") from None
    except OSError as e:
        raise HookFailed(f"{what}: {e.strerror or e}") from None
    if done.returncode != 0:
        output = (done.stderr or done.stdout).decode(errors="replace").strip()
        status = (f"killed by signal {-done.returncode}" if done.returncode < 0
                  else f"exit status {done.returncode}")
        raise HookFailed(f"{what}: {status}{': ' + output if output else ''}")
