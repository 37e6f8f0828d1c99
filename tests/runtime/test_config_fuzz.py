"""Property-based fuzzing of everything that reads user-supplied JSON before a container exists:
config.json (and the validators it reaches: cgroup resources, seccomp, mount options),
`exec --process` files and state.json. Whatever the input, the only exceptions allowed are the
project's own errors, whose message is one line: no traceback ever reaches a user.

Pure: nothing is started or mounted; the files live in a temporary directory. Derandomized, so a
CI run finds what a developer's run finds.
"""
from __future__ import annotations

import copy
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cgroups.errors import CgroupError
from runtime import config, fastjson, state
from runtime.cli import main
from runtime.default_spec import default_spec
from runtime.errors import PycontainerError

OWN_ERRORS = (PycontainerError, CgroupError)


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def rich_spec() -> dict:
    """runc's default spec with every part the validators read filled in, so that mutations
    reach each of them."""
    spec = default_spec(unified_cgroups=False)
    process = spec["process"]
    process["user"].update(umask=0o22, additionalGids=[5, 10])
    process["consoleSize"] = {"height": 24, "width": 80}
    process["oomScoreAdj"] = 100
    process["capabilities"]["ambient"] = ["CAP_KILL"]
    process["capabilities"]["inheritable"] = ["CAP_KILL"]
    process["rlimits"].append({"type": "RLIMIT_NPROC", "soft": 10, "hard": 20})
    spec["domainname"] = "example.org"
    spec["mounts"].append({"destination": "/data", "type": "bind", "source": "/tmp",
                           "options": ["rbind", "ro", "rprivate", "nosymfollow"]})
    spec["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                           "options": ["tmpcopyup", "size=1m"]})
    spec["hooks"] = {
        "prestart": [{"path": "/bin/true", "args": ["true"], "env": ["A=1"], "timeout": 5}],
        "poststop": [{"path": "/bin/true"}],
    }
    spec["annotations"] = {"org.example.key": "value"}
    linux = spec["linux"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                         "fileMode": 0o666, "uid": 0, "gid": 0}]
    linux["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000000"}
    linux["cgroupsPath"] = "/pycontainer/fuzz"
    linux["rootfsPropagation"] = "rslave"
    linux["resources"].update(
        memory={"limit": 2**30, "reservation": 2**29, "swap": 2**31, "swappiness": 10,
                "disableOOMKiller": False},
        cpu={"shares": 512, "quota": 50000, "period": 100000, "burst": 1000, "idle": 0,
             "cpus": "0-1", "mems": "0"},
        pids={"limit": 100},
    )
    linux["resources"]["devices"].append(
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"})
    linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64"], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": 1, "valueTwo": 0}]}],
    }
    return spec


def paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON value: the key or index path to each node, the root included."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(paths(child, prefix + (key,)))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found.extend(paths(child, prefix + (i,)))
    return found


EDGE_INTS = [0, 1, -1, -2, 255, 256, 0o7777, 0o10000, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1,
             2**32, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -2**63, -2**63 - 1, 10**30, -10**30]
ODD_STRINGS = ["", " ", "/", "//", ".", "..", "/..", "../..", "relative", "\x00", "/a\x00b",
               "\ud800", "\udcff", "é", "\n", "a" * 65, "a" * 300, "/" + "a" * 5000, "-1", "0",
               "NaN", "true", "null", "=", "A=", "=B", "rbind", "bind", "ro", "mode=0", "size=",
               "SCMP_ACT_ALLOW", "SCMP_ACT_NOTIFY", "CAP_SYS_ADMIN", "CAP_", "RLIMIT_", "pid",
               "mount", "user", "time", "private", "0-", "1-0", "0,,1", "memory.", ".max",
               "memory.high", "kernel.hostname", "net.", "/proc/self/fd/7", "/dev/null"]

scalars = st.one_of(
    st.none(), st.booleans(), st.sampled_from(EDGE_INTS), st.integers(),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(ODD_STRINGS), st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8) | st.sampled_from(ODD_STRINGS),
                                            inner, max_size=4)),
    max_leaves=12,
)


def nested(depth: int) -> object:
    value: object = 1
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


deep_values = st.integers(min_value=1, max_value=400).map(nested)

MUTATIONS = ("replace", "delete", "add key", "wrap", "append", "empty", "null", "deep")


@st.composite
def mutated(draw: st.DrawFn, base: object, max_mutations: int = 4) -> object:
    """`base` with a few random changes at random places: wrong types, missing and extra keys,
    huge and negative numbers, odd strings, nesting."""
    value = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=max_mutations))):
        path = draw(st.sampled_from(paths(value)))
        kind = draw(st.sampled_from(MUTATIONS))
        if not path:
            if kind == "replace":
                value = draw(json_values)
            continue
        parent = value
        for step in path[:-1]:
            parent = parent[step]
        key = path[-1]
        node = parent[key]
        if kind == "replace":
            parent[key] = draw(json_values)
        elif kind == "delete":
            del parent[key]
        elif kind == "add key" and isinstance(node, dict):
            node[draw(st.text(max_size=8) | st.sampled_from(ODD_STRINGS))] = draw(json_values)
        elif kind == "wrap":
            parent[key] = draw(st.sampled_from([[node], {"x": node}]))
        elif kind == "append" and isinstance(node, list):
            node.append(draw(json_values | st.sampled_from(node or [None])))
        elif kind == "empty":
            parent[key] = type(node)() if isinstance(node, (dict, list, str)) else 0
        elif kind == "null":
            parent[key] = None
        elif kind == "deep":
            parent[key] = draw(deep_values)
    return value


def assert_own_error(error: BaseException) -> None:
    assert isinstance(error, OWN_ERRORS), f"{type(error).__name__}: {error}"
    # As the CLI prints it: a field name from the input may hold a line break.
    assert len(main.one_line(error).splitlines()) == 1, repr(str(error))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("fuzz-bundle"))
    os.mkdir(os.path.join(path, "rootfs"))
    return path


def load_config(bundle: str, text: str | bytes) -> None:
    with open(os.path.join(bundle, "config.json"), "wb") as f:
        f.write(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    try:
        config.load(bundle)
    except BaseException as e:  # noqa: B036 - anything but our own errors is the finding
        assert_own_error(e)


def dumps(value: object) -> str:
    # allow_nan: a huge number in JSON reads as infinity, which the loader must refuse too.
    return json.dumps(value, allow_nan=True)


def test_the_rich_spec_is_valid(bundle):
    """The base of the mutations passes, so that refusals come from the mutations."""
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(rich_spec(), f)
    assert config.load(bundle).process.args == ["sh"]


@pytest.mark.slow
@fuzz_settings(2500)
@given(spec=mutated(rich_spec()))
def test_mutated_configs_give_only_our_errors(bundle, spec):
    load_config(bundle, dumps(spec))


@fuzz_settings(500)
@given(spec=mutated(default_spec(unified_cgroups=False), max_mutations=2))
def test_mutated_default_specs_give_only_our_errors(bundle, spec):
    load_config(bundle, dumps(spec))


@st.composite
def broken_text(draw: st.DrawFn, base: object) -> str:
    """The JSON of `base`, cut short or with a character dropped, changed or added."""
    text = json.dumps(base, indent=draw(st.sampled_from([None, 1])))
    at = draw(st.integers(min_value=0, max_value=len(text)))
    how = draw(st.sampled_from(("truncate", "drop", "insert", "replace")))
    char = draw(st.sampled_from(list(',:{}[]" \\\n\x00\ud800') + ["tru", "-", "1e999", "NaN"]))
    if how == "truncate":
        return text[:at]
    if how == "drop":
        return text[:at] + text[at + 1:]
    if how == "insert":
        return text[:at] + char + text[at:]
    return text[:at] + char + text[at + 1:]


@fuzz_settings(1000)
@given(text=broken_text(rich_spec()))
def test_broken_json_gives_only_our_errors(bundle, text):
    load_config(bundle, text)


@fuzz_settings(300)
@given(data=st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_any_bytes_give_only_our_errors(bundle, data):
    load_config(bundle, data)


def test_syntax_errors_name_line_and_column(bundle):
    with open(os.path.join(bundle, "config.json"), "w") as f:
        f.write('{\n "ociVersion": "1.0.2"\n "root": {}\n}')
    with pytest.raises(config.ConfigError) as caught:
        config.load(bundle)
    assert str(caught.value) == ("config.json: is not valid JSON: "
                                 "expecting ',' delimiter at line 3, column 2")


@pytest.mark.parametrize("depth", [1000, 200_000])
def test_deep_nesting_is_a_json_error(bundle, depth):
    with open(os.path.join(bundle, "config.json"), "w") as f:
        f.write("[" * depth + "]" * depth)
    with pytest.raises(config.ConfigError, match="nested too deeply"):
        config.load(bundle)


def test_nan_is_refused(bundle):
    with open(os.path.join(bundle, "config.json"), "w") as f:
        f.write('{"ociVersion": NaN}')
    with pytest.raises(config.ConfigError, match="NaN"):
        config.load(bundle)


# --- exec --process: the same process parser, on the object alone ---------------------------

@fuzz_settings(1500)
@given(process=mutated(rich_spec()["process"]))
def test_mutated_process_files_give_only_our_errors(process):
    try:
        config.parse_process(fastjson.loads(dumps(process)), "process")
    except BaseException as e:  # noqa: B036
        assert_own_error(e)


# --- state.json -----------------------------------------------------------------------------

STATE = {"id": "fuzz", "pid": 1234, "pid_start": 5678, "bundle": "/b", "rootfs": "/b/rootfs",
         "created": "2026-01-01T00:00:00.000000000Z", "owner": "", "annotations": {},
         "cgroup_path": "/pycontainer/fuzz", "config": {"ociVersion": "1.2.0"},
         "namespace_paths": {"pid": "/proc/1234/ns/pid"}, "cgroup_hierarchies": None,
         "host_mounts": ["/b/rootfs/proc"]}


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> state.StateDir:
    directory = state.StateDir(str(tmp_path_factory.mktemp("fuzz-state")), "fuzz")
    directory.create()
    return directory


def load_state(directory: state.StateDir, text: str) -> None:
    with open(os.path.join(directory.path, state.STATE_FILE), "wb") as f:
        f.write(text.encode("utf-8", "surrogatepass"))
    try:
        directory.load()
    except BaseException as e:  # noqa: B036
        assert_own_error(e)


def test_a_good_state_loads(state_dir):
    state_dir.save(state.State.from_dict(STATE))
    assert state_dir.load().to_dict() == STATE


@fuzz_settings(800)
@given(raw=mutated(STATE))
def test_mutated_state_files_give_only_our_errors(state_dir, raw):
    load_state(state_dir, dumps(raw))


@fuzz_settings(400)
@given(text=broken_text(STATE))
def test_broken_state_files_give_only_our_errors(state_dir, text):
    load_state(state_dir, text)


def test_a_damaged_state_file_names_the_file_and_the_field(state_dir):
    load_state(state_dir, dumps({**STATE, "pid": "1234"}))
    with pytest.raises(PycontainerError) as caught:
        state_dir.load()
    message = str(caught.value)
    assert state_dir.path in message and "pid" in message
