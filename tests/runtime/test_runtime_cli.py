"""The lean parser and the click application read every command line the same way."""
from __future__ import annotations

import subprocess
import sys

import pytest

from runtime.cli import click_app, lean_parser

SAMPLES = [
    ["create", "--bundle", "/b", "--pid-file", "/p", "--console-socket", "/s", "c1"],
    ["--root", "/r", "--log", "/l", "--log-format", "json", "create", "-b", "/b", "c1"],
    ["--log-format=json", "--debug", "run", "-d", "--keep", "--preserve-fds", "2", "c1"],
    ["start", "c1"],
    ["state", "c1"],
    ["kill", "c1"],
    ["kill", "--all", "c1", "9"],
    ["kill", "c1", "SIGTERM"],
    ["delete", "--force", "c1"],
    ["delete", "c1", "--force"],
    ["list", "-q"],
    ["ls", "--format", "json"],
    ["ps", "--format", "json", "c1"],
    ["ps", "c1", "-o", "pid,args"],
    ["exec", "--pid-file", "/p", "--process", "/proc.json", "--detach", "c1"],
    ["exec", "-t", "-e", "A=1", "-e", "B=2", "--cwd", "/tmp", "-u", "1000:1000", "c1", "ls", "-la"],
    ["exec", "--cap", "CAP_SYS_ADMIN", "--no-new-privs", "c1", "--", "sh", "-c", "x"],
    ["pause", "c1"],
    ["resume", "c1"],
    ["spec", "--bundle", "/b"],
    ["features"],
    ["events", "--stats", "c1"],
    ["events", "--interval", "1s", "c1"],
    ["--systemd-cgroup", "create", "c1"],
    ["--image-root", "/i", "run", "--image", "busybox", "--rm", "-e", "A=1", "--memory", "64m",
     "--cpus", "0.5", "--network", "host", "-t", "--", "sh", "-c", "echo hi"],
    ["run", "--image", "busybox", "--name", "c1", "-d", "echo", "hi"],
    ["image", "pull", "--insecure", "--authfile", "/a.json", "localhost:5000/x:1"],
    ["image", "import", "--name", "bb:1", "/tmp/bb.tar"],
    ["image", "ls", "--format", "json"],
    ["image", "list", "-q"],
    ["image", "rm", "a", "b"],
    ["image", "inspect", "busybox"],
]


def parse_with_click(argv: list[str]) -> lean_parser.Parsed:
    seen = []

    def dispatch(parsed: lean_parser.Parsed) -> int:
        seen.append(parsed)
        return 0

    click_app.build(dispatch).main(argv, prog_name="pycontainer", standalone_mode=False)
    return seen[0]


@pytest.mark.parametrize("argv", SAMPLES, ids=[" ".join(a) for a in SAMPLES])
def test_lean_parser_agrees_with_click(argv):
    lean = lean_parser.parse(argv)
    assert lean is not None
    full = parse_with_click(argv)
    assert lean.verb is full.verb
    assert lean.options == full.options
    assert lean.args == full.args
    assert {k: lean.globals[k] for k in full.globals} == full.globals


@pytest.mark.parametrize("argv", [
    [], ["--help"], ["create"], ["create", "-h", "c1"], ["kill", "--bogus", "c1"],
    ["nosuchverb"], ["--log-format", "xml", "state", "c1"], ["state", "a", "b"],
    ["create", "--preserve-fds", "x", "c1"], ["exec", "--env"],
    ["image"], ["image", "nosuch"], ["image", "pull"], ["run", "--network", "bridge", "c1"],
])
def test_lean_parser_hands_over_what_it_would_have_to_explain(argv):
    assert lean_parser.parse(argv) is None


def test_help_and_version():
    exe = [sys.executable, "-m", "runtime.cli.main"]
    out = subprocess.run([*exe, "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "create" in out.stdout and "exec" in out.stdout
    out = subprocess.run([*exe, "exec", "--help"], capture_output=True, text=True)
    assert "--console-socket" in out.stdout and "--preserve-fds" in out.stdout
    out = subprocess.run([*exe, "--version"], capture_output=True, text=True)
    assert out.stdout.startswith("pycontainer version ")


def test_start_path_stays_lean():
    """Importing what `run` needs must not pull in click, the HTTP stack, pyroute2..."""
    code = ("import sys; import runtime.cli.main, runtime.cli.commands.run, runtime.launcher, "
            "runtime.init.container_init, runtime.container; "
            "heavy = {'click', 'dataclasses', 'typing', 'pathlib', 'subprocess', 'pyroute2', "
            "'http', 'urllib', 'asyncio', 'socket', 'threading', 'prctl'}; "
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
