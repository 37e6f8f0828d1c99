"""What every exec into a container needs that depends only on the container: its namespaces,
the cgroup files a new process joins, its process's user, capabilities, rlimits,
no_new_privs, environment and cwd, and its seccomp program. `create` writes it once into the
container's state directory (<root>/<id>/exec-plan.json); an exec through a shim reads it and has
the process made from it in C (runtime.exec_process.spawn_planned), with nothing computed or
compiled again per exec (issue 26: exec probes run every few seconds in every pod).
"""
from __future__ import annotations

import os

from runtime import capabilities, fastjson, seccomp
from runtime.config import Process
from runtime.errors import PycontainerError

FILE = "exec-plan.json"


class ExecPlan:
    __slots__ = ("namespaces", "cgroup_files", "cgroup_path", "cgroup_hierarchies", "env", "cwd",
                 "uid", "gid", "additional_gids", "umask", "capabilities", "last_cap", "rlimits",
                 "no_new_privileges", "seccomp")

    def __init__(self, namespaces: dict[str, str], cgroup_files: list[tuple[str, bool]],
                 cgroup_path: str, cgroup_hierarchies: dict | None, env: list[str], cwd: str,
                 uid: int, gid: int, additional_gids: list[int], umask: int | None,
                 capabilities: capabilities.CapabilitySets | None, last_cap: int,
                 rlimits: list[tuple[int, int, int]], no_new_privileges: bool,
                 seccomp: seccomp.Program | None) -> None:
        self.namespaces = namespaces  # kind -> the init's /proc/PID/ns file
        self.cgroup_files = cgroup_files  # Cgroup.self_join_files()
        self.cgroup_path = cgroup_path  # with the hierarchies: to tell a paused container
        self.cgroup_hierarchies = cgroup_hierarchies
        self.env = env
        self.cwd = cwd
        self.uid = uid
        self.gid = gid
        self.additional_gids = additional_gids
        self.umask = umask
        self.capabilities = capabilities
        self.last_cap = last_cap
        self.rlimits = rlimits
        self.no_new_privileges = no_new_privileges
        self.seccomp = seccomp

    def cgroup(self):  # -> cgroups.Cgroup; loosely annotated, as Container.cgroup
        import cgroups

        known = self.cgroup_hierarchies
        return cgroups.open_cgroup(self.cgroup_path,
                                   cgroups.Hierarchies.from_dict(known) if known else None)

    def to_dict(self) -> dict:
        caps = self.capabilities
        return {
            "namespaces": self.namespaces, "cgroup_files": self.cgroup_files,
            "cgroup_path": self.cgroup_path, "cgroup_hierarchies": self.cgroup_hierarchies,
            "env": self.env, "cwd": self.cwd, "uid": self.uid, "gid": self.gid,
            "additional_gids": self.additional_gids, "umask": self.umask,
            "capabilities": None if caps is None else {
                "bounding": caps.bounding, "effective": caps.effective,
                "inheritable": caps.inheritable, "permitted": caps.permitted,
                "ambient": caps.ambient},
            "last_cap": self.last_cap, "rlimits": self.rlimits,
            "no_new_privileges": self.no_new_privileges,
            "seccomp": None if self.seccomp is None else self.seccomp.to_dict(),
        }

    @classmethod
    def from_dict(cls, raw: dict) -> ExecPlan:
        caps = raw["capabilities"]
        program = raw["seccomp"]
        return cls(
            namespaces=raw["namespaces"],
            cgroup_files=[(path, required) for path, required in raw["cgroup_files"]],
            cgroup_path=raw["cgroup_path"], cgroup_hierarchies=raw["cgroup_hierarchies"],
            env=raw["env"], cwd=raw["cwd"], uid=raw["uid"], gid=raw["gid"],
            additional_gids=raw["additional_gids"], umask=raw["umask"],
            capabilities=None if caps is None else capabilities.CapabilitySets(**caps),
            last_cap=raw["last_cap"], rlimits=[tuple(r) for r in raw["rlimits"]],
            no_new_privileges=raw["no_new_privileges"],
            seccomp=None if program is None else seccomp.Program.from_dict(program))


def build(process: Process, namespace_paths: dict[str, str], cgroup, cgroup_path: str,
          cgroup_hierarchies: dict | None, program: seccomp.Program | None) -> ExecPlan:
    """The plan of a container whose init runs; `cgroup` is its cgroups.Cgroup."""
    user = process.user
    return ExecPlan(
        namespaces=dict(namespace_paths), cgroup_files=cgroup.self_join_files(),
        cgroup_path=cgroup_path, cgroup_hierarchies=cgroup_hierarchies, env=list(process.env),
        cwd=process.cwd, uid=user.uid, gid=user.gid, additional_gids=list(user.additional_gids),
        umask=user.umask, capabilities=process.capabilities,
        last_cap=capabilities.last_cap() if process.capabilities is not None else 0,
        rlimits=list(process.rlimits), no_new_privileges=process.no_new_privileges,
        seccomp=program)


def write(state_dir: str, plan: ExecPlan) -> None:
    """Replaces the plan in the container's state directory in one rename."""
    tmp = os.path.join(state_dir, FILE + ".tmp")
    with open(tmp, "w") as f:
        f.write(fastjson.dumps(plan.to_dict()))
    os.rename(tmp, os.path.join(state_dir, FILE))


def load(root: str, container_id: str) -> ExecPlan:
    """The plan of a container in runtime root `root`; made now (and kept) for a container
    created by a pycontainer that wrote none."""
    state_dir = os.path.join(root, container_id)
    path = os.path.join(state_dir, FILE)
    try:
        with open(path, "rb") as f:
            return ExecPlan.from_dict(fastjson.loads(f.read()))
    except FileNotFoundError:
        pass
    except (ValueError, KeyError, TypeError) as e:
        raise PycontainerError(f"container {container_id}: exec plan {path} is damaged: "
                               f"{e!r}") from None
    from runtime.config import parse_process
    from runtime.container import Container

    container = Container.load(root, container_id, lock=False)
    state = container.state
    profile = (state.config.get("linux") or {}).get("seccomp")
    plan = build(parse_process(state.config.get("process") or {}, "process"),
                 state.namespace_paths, container.cgroup(), state.cgroup_path,
                 state.cgroup_hierarchies,
                 seccomp.compile_profile(seccomp.parse(profile)) if profile else None)
    write(state_dir, plan)
    return plan
