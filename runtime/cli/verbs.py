"""The `pycontainer` command line as data: runc's verbs, flags and arguments.

Two readers share this one definition: the lean parser (runtime.cli.lean_parser) that handles every
well-formed command without importing click, and the click application (runtime.cli.click_app) that
renders help and usage errors. Keep it plain data so that importing it costs nothing.
"""
from __future__ import annotations

from runtime.state import DEFAULT_ROOT

FLAG, VALUE, MULTI, INT = "flag", "value", "multi", "int"


class Opt:
    __slots__ = ("names", "dest", "kind", "default", "help", "choices", "metavar")

    def __init__(self, names: tuple[str, ...], kind: str, help: str, default: object = None,
                 choices: tuple[str, ...] | None = None, metavar: str = "VALUE") -> None:
        self.names = names
        self.dest = names[0].lstrip("-").replace("-", "_")
        self.kind = kind
        self.default = default if default is not None else (
            False if kind == FLAG else [] if kind == MULTI else None)
        self.help = help
        self.choices = choices
        self.metavar = metavar


class Verb:
    """`args`: names of positional arguments; "?name" is optional, "*name" takes the rest.
    `module`: the runtime.cli.commands module that runs it (default: the name)."""

    __slots__ = ("name", "help", "options", "args", "interspersed", "aliases", "module")

    def __init__(self, name: str, help: str, options: tuple[Opt, ...] = (),
                 args: tuple[str, ...] = (), interspersed: bool = True,
                 aliases: tuple[str, ...] = (), module: str | None = None) -> None:
        self.name = name
        self.help = help
        self.options = options
        self.args = args
        self.interspersed = interspersed
        self.aliases = aliases
        self.module = module or name


class Group:
    """A verb with verbs of its own (`pycontainer image pull ...`)."""

    __slots__ = ("name", "help", "verbs", "verbs_by_name")

    def __init__(self, name: str, help: str, verbs: tuple[Verb, ...]) -> None:
        self.name = name
        self.help = help
        self.verbs = verbs
        self.verbs_by_name = {n: v for v in verbs for n in (v.name, *v.aliases)}


GLOBAL_OPTIONS = (
    Opt(("--root",), VALUE, "root directory for storage of container state", DEFAULT_ROOT,
        metavar="DIR"),
    Opt(("--log",), VALUE, "write the runtime's log to FILE (default: stderr)", metavar="FILE"),
    Opt(("--log-format",), VALUE, "log format", "text", choices=("text", "json")),
    Opt(("--debug",), FLAG, "log debug messages too"),
    Opt(("--systemd-cgroup",), FLAG, "use systemd to create and manage cgroups"),
    Opt(("--rootless",), VALUE, "accepted for compatibility with runc; pycontainer runs as root",
        "auto", choices=("true", "false", "auto")),
    Opt(("--image-root",), VALUE, "directory of the image store (default: $PYCONTAINER_IMAGE_ROOT "
        "or /var/lib/pycontainer)", metavar="DIR"),
)

_BUNDLE = Opt(("--bundle", "-b"), VALUE, "path to the bundle directory (default: current "
              "directory)", metavar="DIR")
_PID_FILE = Opt(("--pid-file",), VALUE, "write the process's PID to FILE", metavar="FILE")
_CONSOLE = Opt(("--console-socket",), VALUE, "unix socket that receives the pty master of the "
               "process's terminal", metavar="PATH")
_PRESERVE = Opt(("--preserve-fds",), INT, "pass N extra descriptors (from 3 up) to the process",
                0, metavar="N")
_CREATE_OPTIONS = (
    _BUNDLE, _CONSOLE, _PID_FILE,
    Opt(("--no-pivot",), FLAG, "do not use pivot_root to jail the process (for ramfs roots)"),
    Opt(("--no-new-keyring",), FLAG, "do not create a new session keyring for the container"),
    _PRESERVE,
)
_FORMAT = Opt(("--format", "-f"), VALUE, "output format", "table", choices=("table", "json"))

VERBS = (
    Verb("create", "create a container from a bundle; start runs its process",
         _CREATE_OPTIONS, ("container-id",)),
    Verb("start", "run the process of a created container", (), ("container-id",)),
    Verb("run", "create and start a container, wait for it and delete it. With --image, run an "
         "image instead of a bundle: the words after the options are the command (after --), the "
         "container is kept after it exits (`delete` removes it and its root filesystem) unless "
         "--rm is given",
         _CREATE_OPTIONS + (
             Opt(("--detach", "-d"), FLAG, "return once the container runs"),
             Opt(("--keep",), FLAG, "do not delete the container after it exits"),
             Opt(("--image",), VALUE, "run this image from the store (see `image pull`, "
                 "`image import`) in a new overlayfs snapshot", metavar="REF"),
             Opt(("--name",), VALUE, "with --image: the container ID (default: generated)",
                 metavar="ID"),
             Opt(("--rm",), FLAG, "with --image: delete the container and its snapshot after it "
                 "exits"),
             Opt(("--env", "-e"), MULTI, "with --image: set an environment variable (NAME=VALUE)"),
             Opt(("--memory", "-m"), VALUE, "with --image: memory limit (e.g. 64m, 1g)",
                 metavar="BYTES"),
             Opt(("--cpus",), VALUE, "with --image: CPU limit in CPUs (e.g. 0.5)", metavar="N"),
             Opt(("--network",), VALUE, "with --image: a network namespace of its own with "
                 "loopback only, or the host's", "none", choices=("none", "host")),
             Opt(("--tty", "-t"), FLAG, "with --image: give the process a terminal"),
         ), ("?container-id", "*command")),
    Verb("state", "print the state of a container as JSON", (), ("container-id",)),
    Verb("kill", "send a signal (default SIGTERM) to a container's init",
         (Opt(("--all", "-a"), FLAG, "send it to every process in the container"),),
         ("container-id", "?signal")),
    Verb("delete", "delete a stopped container and its resources",
         (Opt(("--force", "-f"), FLAG, "kill the container first if it still runs"),),
         ("container-id",)),
    Verb("list", "list the containers", (
        _FORMAT, Opt(("--quiet", "-q"), FLAG, "print only the container IDs"),
    ), (), aliases=("ls",)),
    Verb("ps", "list the processes of a container", (_FORMAT,),
         ("container-id", "*ps-options"), interspersed=False),
    Verb("exec", "run a new process in a running container", (
        _CONSOLE,
        Opt(("--cwd",), VALUE, "working directory in the container", metavar="DIR"),
        Opt(("--env", "-e"), MULTI, "set an environment variable (NAME=VALUE)"),
        Opt(("--tty", "-t"), FLAG, "allocate a terminal"),
        Opt(("--user", "-u"), VALUE, "UID[:GID] to run as", metavar="UID[:GID]"),
        Opt(("--additional-gids", "-g"), MULTI, "additional group IDs", metavar="GID"),
        Opt(("--process", "-p"), VALUE, "the process as an OCI process JSON file", metavar="FILE"),
        Opt(("--detach", "-d"), FLAG, "return once the process runs"),
        _PID_FILE,
        Opt(("--process-label",), VALUE, "SELinux label (refused: not available here)"),
        Opt(("--apparmor",), VALUE, "AppArmor profile (refused: not available here)"),
        Opt(("--no-new-privs",), FLAG, "set no_new_privs for the process"),
        Opt(("--cap", "-c"), MULTI, "add a capability to the process", metavar="CAP"),
        _PRESERVE,
    ), ("container-id", "*command"), interspersed=False),
    Verb("pause", "freeze every process of a container", (), ("container-id",)),
    Verb("resume", "thaw a paused container", (), ("container-id",)),
    Verb("spec", "write a default config.json", (
        _BUNDLE,
        Opt(("--rootless",), FLAG, "a spec for a rootless container (not supported)"),
    )),
    Verb("features", "print the features this runtime supports as JSON"),
    Verb("events", "print a container's statistics and events as JSON lines", (
        Opt(("--stats",), FLAG, "print the statistics once and exit"),
        Opt(("--interval",), VALUE, "interval between statistics (e.g. 5s, 500ms)", "5s",
            metavar="DURATION"),
    ), ("container-id",)),
)

IMAGE = Group("image", "manage the images of the store (--image-root)", (
    Verb("pull", "pull an image from a registry", (
        Opt(("--insecure",), FLAG, "allow plain HTTP or unverified TLS for this image's registry"),
        Opt(("--authfile",), VALUE, "docker config.json with the registry's credentials "
            "(default: $DOCKER_CONFIG/config.json or ~/.docker/config.json)", metavar="FILE"),
    ), ("ref",), module="image_pull"),
    Verb("import", "import an OCI image layout (directory or tar) or a `docker save` archive", (
        Opt(("--name",), VALUE, "the image's name (when the archive holds one image)",
            metavar="REF"),
    ), ("file",), module="image_import"),
    Verb("ls", "list the images", (
        _FORMAT, Opt(("--quiet", "-q"), FLAG, "print only the image names"),
    ), aliases=("list",), module="image_ls"),
    Verb("rm", "remove images; their layers go when no other image or container uses them",
         (), ("image", "*more"), aliases=("remove",), module="image_rm"),
    Verb("inspect", "print an image's record, manifest and config as JSON", (), ("image",),
         module="image_inspect"),
))
GROUPS_BY_NAME = {IMAGE.name: IMAGE}

VERBS_BY_NAME = {name: verb for verb in VERBS for name in (verb.name, *verb.aliases)}
