"""CVE-2019-5736 (overwrite the runtime's executable): a container program `#!/proc/self/exe`
makes the kernel run the runtime's own binary inside the container; it keeps an O_PATH fd of it
and, once no process runs the file, reopens it for writing. Also: a scanner in the container that
opens /proc/PID/exe of every process the runtime puts there (exec, the created init).
The runtime is run by a private copy of the interpreter, which is what the attacks hit."""
from __future__ import annotations

import os

import pytest

from seclib import CopyRuntime, detached, result, sandboxed, sha256, wait_for, wait_gone

pytestmark = pytest.mark.root

EVIL = """#!/proc/self/exe
import os, sys
out = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.dup2(out, 1)
os.dup2(out, 2)
fd = os.open("/proc/self/exe", os.O_PATH)
os.set_inheritable(fd, True)
print("running", os.readlink("/proc/self/exe"), flush=True)
os.execv("/attack", ["/attack", "reopen", str(fd), "250"])
"""


def python_capable(bundle) -> None:
    """The host's shared libraries and standard library, read-only, at their own paths, so that
    the runtime's interpreter can run in the container as it would in a real image."""
    rootfs = bundle.rootfs
    for lib in ("usr/lib", "usr/lib64"):
        os.makedirs(os.path.join(rootfs, lib), exist_ok=True)
        bundle.config["mounts"].append({"destination": f"/{lib}", "type": "bind",
                                        "source": f"/{lib}", "options": ["rbind", "ro"]})
    os.symlink("usr/lib", os.path.join(rootfs, "lib"))
    os.symlink("usr/lib64", os.path.join(rootfs, "lib64"))
    with open(os.path.join(rootfs, "evil"), "w") as f:
        f.write(EVIL)
    os.chmod(os.path.join(rootfs, "evil"), 0o755)


def _output(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def scenario_entrypoint(root: str, python: str, bundle: str, rootfs: str) -> dict:
    rt = CopyRuntime(root, python)
    cid = rt.new_id()
    try:
        steps = {"create": detached(rt, "create", "-b", bundle, cid)}
        pid = rt.state(cid)["pid"]
        steps["start"] = result(rt.run("start", cid))
        wait_gone(pid)
        return {"steps": steps, "attack": _output(os.path.join(rootfs, "out-entry"))}
    finally:
        rt.cleanup()


def scenario_exec(root: str, python: str, bundle: str, rootfs: str) -> dict:
    rt = CopyRuntime(root, python)
    cid = rt.new_id()
    pid_file = os.path.join(rootfs, "..", "exec.pid")
    try:
        steps = {"run": detached(rt, "run", "-d", "-b", bundle, cid)}
        # Detached: a foreground `exec` would run the interpreter until the attack ends.
        steps["exec"] = result(rt.run("exec", "-d", "--pid-file", pid_file, cid,
                                      "/evil", "/out-exec"))
        if steps["exec"]["rc"] == 0:
            with open(pid_file) as f:
                wait_gone(int(f.read()))
        return {"steps": steps, "attack": _output(os.path.join(rootfs, "out-exec"))}
    finally:
        rt.cleanup()


def scenario_scanner(root: str, python: str, bundle: str, rootfs: str) -> dict:
    rt = CopyRuntime(root, python)
    cid = rt.new_id()
    out = os.path.join(rootfs, "out-watch")
    try:
        steps = {"create": detached(rt, "create", "-b", bundle, cid)}
        steps["watch"] = result(rt.run("exec", "-d", cid, "sh", "-c",
                                       "/attack watch /tmp/stop write > /out-watch 2>&1"))
        wait_for(out, "ready")
        # Each exec puts a runtime process in the container for a moment: the scanner's prey.
        steps["execs"] = [result(rt.run("exec", cid, "true"))["rc"] for _ in range(3)]
        steps["start"] = result(rt.run("start", cid))
        open(os.path.join(rootfs, "tmp", "stop"), "w").close()
        return {"steps": steps, "attack": wait_for(out, "done")}
    finally:
        rt.cleanup()


def run_attack(scenario, runtime, hostile_bundle, interpreter_copy) -> dict:
    python, digest = interpreter_copy
    python_capable(hostile_bundle)
    hostile_bundle.write()
    found = sandboxed(scenario, root=runtime.root, python=python, bundle=hostile_bundle.path,
                      rootfs=hostile_bundle.rootfs)
    found["overwritten"] = sha256(python) != digest
    return found


def assert_exe_safe(found: dict) -> None:
    successes = [line for line in found["attack"].splitlines()
                 if line.startswith(("ok write", "ok openw"))]
    assert not found["overwritten"] and not successes, \
        f"the runtime's interpreter (a copy) was opened for writing from the container: {found}"


# With the entrypoint or exec'd program `#!/proc/self/exe`, the kernel runs whatever the runtime
# last executed from. If that is the interpreter, the script runs as Python in the container
# ("running ..." in its output) and its write must fail; if it is something sealed that cannot
# run the script, the process just fails. Against the runtime of 7643b94, both wrote the copy.
def test_entrypoint_shebang_proc_self_exe(runtime, hostile_bundle, interpreter_copy):
    hostile_bundle.process("/evil", "/out-entry")
    found = run_attack(scenario_entrypoint, runtime, hostile_bundle, interpreter_copy)
    assert found["steps"]["start"]["rc"] == 0, found
    assert_exe_safe(found)


def test_exec_shebang_proc_self_exe(runtime, hostile_bundle, interpreter_copy):
    hostile_bundle.process("sleep", "1000")
    found = run_attack(scenario_exec, runtime, hostile_bundle, interpreter_copy)
    assert found["steps"]["exec"]["rc"] == 0, found
    assert_exe_safe(found)


def test_scanner_opens_exe_of_runtime_processes(runtime, hostile_bundle, interpreter_copy):
    """The created init (PID 1) and every entering exec: /proc/PID/exe not writable, now or
    through a kept O_PATH fd once they are gone."""
    hostile_bundle.process("sleep", "1000")
    found = run_attack(scenario_scanner, runtime, hostile_bundle, interpreter_copy)
    assert "done" in found["attack"], f"the scanner did not finish: {found}"
    assert_exe_safe(found)
