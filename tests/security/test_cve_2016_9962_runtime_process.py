"""CVE-2016-9962 (the runtime's process reachable from the container): while a container is
created but not started, PID 1 is the runtime's init, and during `exec` the runtime's process
enters the container; from inside, their /proc files (the fd links, environ, mem, exe, cwd, root)
must be closed to us and ptrace must fail. (The names in /proc/1/fd may be listed, as with runc:
the links behind them are what matters.)"""
from __future__ import annotations

import os

import pytest

from seclib import Runtime, add_user_namespace, detached, result, sandboxed, wait_for

pytestmark = pytest.mark.root

PROBES = """
for n in 0 1 2 $(ls /proc/1/fd 2>/dev/null); do
  readlink /proc/1/fd/$n >/dev/null 2>&1 && echo "ok readlink fd $n" || echo "err EACCES fd $n"
done
/attack open /proc/1/environ ro
/attack open /proc/1/mem ro
/attack open /proc/1/exe path
/attack open /proc/1/cwd path
/attack open /proc/1/root path
/attack ptrace 1
true
"""


def scenario_created_init(root: str, bundle: str, rootfs: str) -> dict:
    rt = Runtime(root)
    cid = rt.new_id()
    out = os.path.join(rootfs, "tmp", "out-watch")
    try:
        steps = {"create": detached(rt, "create", "-b", bundle, cid)}
        steps["probes"] = result(rt.run("exec", cid, "sh", "-c", PROBES))
        # No `write`: this scanner only looks; the interpreter here is the host's own.
        steps["watch"] = result(rt.run("exec", "-d", cid, "sh", "-c",
                                       "/attack watch /tmp/stop > /tmp/out-watch 2>&1"))
        wait_for(out, "ready")
        steps["execs"] = [result(rt.run("exec", cid, "true"))["rc"] for _ in range(5)]
        open(os.path.join(rootfs, "tmp", "stop"), "w").close()
        steps["watcher"] = wait_for(out, "done")
        return steps
    finally:
        rt.cleanup()


@pytest.mark.parametrize("userns", [False, True], ids=["root", "userns"])
def test_runtime_processes_are_out_of_reach(runtime, hostile_bundle, userns):
    if userns:
        add_user_namespace(hostile_bundle.config)
    hostile_bundle.process("sleep", "1000")
    steps = sandboxed(scenario_created_init, root=runtime.root, bundle=hostile_bundle.path,
                      rootfs=hostile_bundle.rootfs)
    assert steps["create"]["rc"] == 0 and steps["probes"]["rc"] == 0, steps
    probes = steps["probes"]["stdout"].splitlines()
    assert len(probes) >= 9, steps
    reached = [line for line in probes if not line.startswith(("err EACCES", "err EPERM"))]
    assert reached == [], f"the created container's init (PID 1) is reachable: {reached}"
    assert "done" in steps["watcher"], steps
    caught = [line for line in steps["watcher"].splitlines()
              if line.startswith("ok ") and line != "ok"]
    # The exec stub (runtime/exec_stub.py) runs between the runtime's last execve and the
    # container's: for those microseconds it is already the container's process, with the
    # container's credentials, descriptors and environment, and its exe is a sealed anonymous
    # copy. Seeing it is no way out; writing to it (checked by the CVE-2019-5736 tests) would be.
    stub = {line.split()[2] for line in caught
            if line.startswith("ok grab ") and line.endswith("/memfd:pycontainer-exec (deleted)")}
    caught = [line for line in caught
              if not (line.split()[1] in ("grab", "environ", "ptrace") and line.split()[2] in stub)]
    assert caught == [], f"a runtime process entering the container was reachable: {caught}"
