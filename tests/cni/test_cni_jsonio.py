"""cni/jsonio.py gives what the json package gives, results and errors alike, also in a process
that has not imported json (as a plugin process starts): each document is read in a fresh
interpreter by jsonio first, then by json."""
import json
import subprocess
import sys

import pytest

CHILD = r"""
import sys
from cni import jsonio
data = sys.stdin.buffer.read()
def outcome(loads):
    try:
        return ("ok", loads(data))
    except Exception as exc:
        return (type(exc).__name__, str(exc))
assert "json" not in sys.modules
ours = outcome(jsonio.loads)
import json
print(repr(ours))
print(repr(outcome(json.loads)))
"""

DOCUMENTS = [
    b'{"cniVersion": "1.0.0", "ips": [{"address": "198.18.0.2/24"}], "n": [1.5, -2e3, null]}',
    b'  {"a": true}\n', b"[]", b'"text"', b"12", b'{"\xc3\xa9": "\\u00fc"}',
    b'\xef\xbb\xbf{"bom": 1}', '{"wide": 1}'.encode("utf-16"), b'{"a": NaN}',
    # errors: each must read exactly as json's
    b"", b"   ", b"{", b"{not json", b'{"a": 1} trailing', b'{"a": 01}', b"\xff\xfe\xfd",
]


@pytest.mark.parametrize("data", DOCUMENTS, ids=range(len(DOCUMENTS)))
def test_loads_is_json_loads(data):
    run = subprocess.run([sys.executable, "-I", "-c", CHILD], input=data, capture_output=True)
    assert run.returncode == 0, run.stderr
    ours, theirs = run.stdout.decode().splitlines()
    assert ours == theirs


@pytest.mark.parametrize("value", [
    {"cniVersion": "1.1.0", "code": 7, "msg": "bad \"field\"\n", "details": "é"},
    {"a": [1, 2.5, float("nan"), None, True, {}], 3: "int key"}, "text", 3, None, [],
])
def test_dumps_is_json_dumps(value):
    from cni import jsonio

    assert jsonio.dumps(value) == json.dumps(value)


@pytest.mark.parametrize("value", [{"a": object()}, {1, 2}])
def test_dumps_refuses_what_json_refuses(value):
    from cni import jsonio

    with pytest.raises(TypeError) as ours:
        jsonio.dumps(value)
    with pytest.raises(TypeError) as theirs:
        json.dumps(value)
    assert str(ours.value) == str(theirs.value)
