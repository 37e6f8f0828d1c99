"""The plugin side of the CNI protocol, shared by our plugins: reads and validates the
parameters and the configuration, checks the version, calls the plugin's handler for the
command and turns its result or error into the JSON on stdout. `dispatch` does the work without
touching the process (environment in, bytes out) so the kubelet can call our plugins in-process
through exactly the same path as an exec.

A plugin process is started for every command on every pod, so this module imports only what
VERSION and the checks need; a plugin's own module (and with it netlink, nftables, ipaddress)
is imported once the command is known to need it."""
from __future__ import annotations

import os
import sys

from . import jsonio, names, version
from .errors import (DECODING_FAILURE, INTERNAL, INVALID_CONFIG, INVALID_ENVIRONMENT,
                     INCOMPATIBLE_VERSION, IO_FAILURE, CNIError)

# Our plugins: executable name -> the module whose HANDLERS map commands to functions.
PLUGINS = {
    "pycni-bridge": "cni.bridge",
    "pycni-host-local": "cni.host_local",
    "pycni-loopback": "cni.loopback",
    "pycni-portmap": "cni.portmap",
}
COMMANDS = ("ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION")
# Which parameters each command requires (spec section 2).
_REQUIRED = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME"),
    "GC": (),
    "STATUS": (),
    "VERSION": (),
}
# The first spec version that has the command.
_SINCE = {"CHECK": "0.4.0", "GC": "1.1.0", "STATUS": "1.1.0"}


class Args:
    """The parameters of one invocation, and how to run a delegated plugin from it."""

    __slots__ = ("command", "container_id", "netns", "ifname", "args", "path", "env", "runner",
                 "stdin")

    def __init__(self, env, runner) -> None:
        self.command: str = env.get("CNI_COMMAND", "")
        self.container_id: str = env.get("CNI_CONTAINERID", "")
        self.netns: str = env.get("CNI_NETNS", "")
        self.ifname: str = env.get("CNI_IFNAME", "")
        self.args: str = env.get("CNI_ARGS", "")
        self.path: list[str] = [p for p in env.get("CNI_PATH", "").split(":") if p]
        self.env = env
        self.runner = runner
        self.stdin = b""  # the configuration bytes as received, handed on to delegates

    def cni_args(self) -> dict[str, str]:
        """CNI_ARGS ("K1=V1;K2=V2") as a dict."""
        out = {}
        for pair in self.args.split(";"):
            if not pair:
                continue
            key, sep, value = pair.partition("=")
            if not sep:
                raise CNIError(INVALID_ENVIRONMENT, f"CNI_ARGS: {pair!r} is not KEY=VALUE")
            out[key] = value
        return out

    def delegate(self, plugin_type: str, command: str) -> dict | None:
        """Runs a delegated plugin (IPAM) with this invocation's parameters and configuration,
        for `command`."""
        env = dict(self.env)
        env["CNI_COMMAND"] = command
        return self.runner(plugin_type, self.path, env, self.stdin)


def _validate_env(args: Args) -> None:
    missing = [name for name in _REQUIRED[args.command] if not args.env.get(name)]
    if missing:
        raise CNIError(INVALID_ENVIRONMENT, f"required env variables [{','.join(missing)}] "
                       "missing")
    if args.container_id and not names.valid(args.container_id):
        raise CNIError(INVALID_ENVIRONMENT, "CNI_CONTAINERID: invalid characters",
                       args.container_id)
    if args.ifname and (len(args.ifname) > 15 or args.ifname in (".", "..") or any(
            c in args.ifname for c in "/: \t\n")):
        raise CNIError(INVALID_ENVIRONMENT, f"CNI_IFNAME: invalid interface name {args.ifname!r}",
                       "at most 15 characters, no '/', ':' or whitespace")


def _load_config(stdin: bytes) -> dict:
    try:
        conf = jsonio.loads(stdin)
    except ValueError as exc:
        raise CNIError(DECODING_FAILURE, f"error decoding network config: {exc}") from None
    if not isinstance(conf, dict):
        raise CNIError(DECODING_FAILURE, "network config is not a JSON object")
    name = conf.get("name")
    if not name:
        raise CNIError(INVALID_CONFIG, "missing network name")
    if not isinstance(name, str) or not names.valid(name):
        raise CNIError(INVALID_CONFIG, "invalid characters found in network name", str(name))
    cni_version = conf.get("cniVersion", "")
    if not isinstance(cni_version, str) or not cni_version:
        raise CNIError(INCOMPATIBLE_VERSION, "missing cniVersion in network config")
    version.check_supported(cni_version)
    return conf


def handlers_of(plugin: str) -> dict:
    """The HANDLERS of our plugin named `plugin` (its executable name), imported now."""
    __import__(PLUGINS[plugin])
    return sys.modules[PLUGINS[plugin]].HANDLERS


def dispatch(plugin: str, env, read_stdin, runner) -> tuple[int, bytes]:
    """Runs one CNI command of our plugin named `plugin`: returns (exit status, stdout bytes).
    Its handlers take (Args, config dict); ADD's returns the result dict."""
    args = Args(env, runner)
    cni_version = version.LATEST
    try:
        if not args.command:
            raise CNIError(INVALID_ENVIRONMENT, "required env variables [CNI_COMMAND] missing")
        if args.command not in COMMANDS:
            raise CNIError(INVALID_ENVIRONMENT, f"unknown CNI_COMMAND: {args.command}")
        _validate_env(args)
        try:
            stdin = args.stdin = read_stdin()
        except OSError as exc:
            raise CNIError(IO_FAILURE, f"error reading from stdin: {exc}") from None
        if args.command == "VERSION":
            return 0, _version_reply(stdin)
        conf = _load_config(stdin)
        cni_version = conf["cniVersion"]
        since = _SINCE.get(args.command)
        if since and not version.at_least(cni_version, since):
            raise CNIError(INCOMPATIBLE_VERSION,
                           f"config version {cni_version} does not allow {args.command}")
        handler = handlers_of(plugin).get(args.command)
        if handler is None:  # the plugin has nothing to do for this command
            return 0, b""
        result = handler(args, conf)
        if args.command == "ADD":
            return 0, jsonio.dumps(version.convert_result(result, cni_version)).encode()
        return 0, b""
    except CNIError as exc:
        return 1, jsonio.dumps(exc.to_json(cni_version)).encode()
    except Exception as exc:  # anything unexpected still answers with an error result
        detail = f"{type(exc).__name__}: {exc}"
        return 1, jsonio.dumps(CNIError(INTERNAL, str(exc) or detail, detail).to_json(
            cni_version)).encode()


def _version_reply(stdin: bytes) -> bytes:
    asked = version.LATEST
    try:
        conf = jsonio.loads(stdin) if stdin.strip() else {}
        if isinstance(conf, dict) and isinstance(conf.get("cniVersion"), str):
            asked = conf["cniVersion"]
    except ValueError:
        pass
    return jsonio.dumps({"cniVersion": asked, "supportedVersions": list(version.SUPPORTED)}
                        ).encode()


def exec_runner(plugin_type: str, paths: list[str], env: dict, stdin: bytes) -> dict | None:
    """Runs a delegated plugin as an executable found in `paths`."""
    from .exec import find_plugin, run_plugin

    return run_plugin(find_plugin(plugin_type, paths), env, stdin)


def in_process_runner(plugin_type: str, paths: list[str], env: dict,
                      stdin: bytes) -> dict | None:
    """A delegation runner (see Args.delegate) that runs our own plugins inside the calling
    process (the kubelet; our bridge plugin delegating to our host-local) through the same
    dispatch as their executables, and any other plugin by exec: no interpreter start and no
    import for ours, the CNI protocol for everyone else."""
    if plugin_type not in PLUGINS:
        return exec_runner(plugin_type, paths, env, stdin)
    from .exec import parse_reply

    code, out = dispatch(plugin_type, env, lambda: stdin, in_process_runner)
    return parse_reply(plugin_type, code, out)


def main(plugin: str) -> None:
    """The entry point of the executable of our plugin named `plugin` (bin/pycni-*)."""
    if not os.environ.get("CNI_COMMAND"):
        sys.stderr.write(f"{plugin}: a CNI plugin; CNI protocol versions supported: "
                         f"{', '.join(version.SUPPORTED)}\n")
        sys.exit(0)
    # A delegate that is one of ours (pycni-host-local) runs in this process, as it does in the
    # kubelet's: one interpreter start less on every ADD and DEL; any other one by exec.
    status, out = dispatch(plugin, os.environ, sys.stdin.buffer.read, in_process_runner)
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    sys.exit(status)
