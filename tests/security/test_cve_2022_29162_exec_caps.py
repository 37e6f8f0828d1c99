"""CVE-2022-29162 (exec --cap into the inheritable and ambient sets): a non-root process started
with `exec --user 1000 --cap CAP_DAC_OVERRIDE` must not keep the capability across its own execve:
what its shell runs has no inheritable, ambient or effective capabilities and cannot read a
root-only file. No escape is possible here, so the container runs outside the sandbox."""
from __future__ import annotations

import os
import subprocess

import pytest

pytestmark = pytest.mark.root


def caps(status: str) -> dict[str, int]:
    return {line.split(":")[0]: int(line.split()[1], 16)
            for line in status.splitlines() if line.startswith("Cap")}


def test_exec_cap_does_not_survive_a_users_execve(runtime, hostile_bundle):
    secret = os.path.join(hostile_bundle.rootfs, "secret")
    with open(secret, "w") as f:
        f.write("root-only\n")
    os.chmod(secret, 0o600)
    hostile_bundle.process("sleep", "1000")
    cid = runtime.new_id()
    assert runtime.run("run", "-d", "-b", hostile_bundle.path, cid, capture_output=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    out = runtime.run("exec", "--user", "1000", "--cap", "CAP_DAC_OVERRIDE", cid, "sh", "-c",
                      "id -u; cat /proc/self/status; cat /secret 2>&1; true")
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert text.splitlines()[0] == "1000"
    found = caps(text)
    assert found["CapInh"] == 0 and found["CapAmb"] == 0 and found["CapEff"] == 0, \
        f"the capability survived the user's execve: {found}"
    assert "root-only" not in text and "Permission denied" in text
