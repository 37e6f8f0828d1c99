"""Turns etcd's api/*.proto into the plain protos committed here (run by hand; see README.md).

etcd annotates its protos for gogoproto, grpc-gateway, OpenAPI and its own version checks; none
of that changes the wire format, and protoc would need all those imports. This drops them and
points the imports at this package, so that the stubs import `apiserver.storage.etcdpb.*_pb2`.

    python strip.py api/etcdserverpb/rpc.proto v3.6.14 < upstream.proto > rpc.proto
"""
from __future__ import annotations

import re
import sys

_HERE = "apiserver/storage/etcdpb/"
_DROPPED_IMPORTS = ("gogoproto/", "google/api/", "protoc-gen-openapiv2/", "etcd/api/versionpb/")
# An option naming an extension: `option (x.y) = ...;`, possibly a { } block over many lines.
_EXT_OPTION = re.compile(r"^\s*option \(")
_FIELD_OPTIONS = re.compile(r"\s*\[\((?:versionpb|gogoproto)\.[^\]]*\]")


_HEADER = """// {path} of etcd {tag} (https://github.com/etcd-io/etcd), Copyright The etcd Authors,
// licensed under the Apache License, Version 2.0. Annotations stripped by strip.py.
"""


def strip(text: str, path: str, tag: str) -> str:
    out: list[str] = [_HEADER.format(path=path, tag=tag).rstrip("\n")]
    depth = 0  # inside a dropped option block: its open braces
    for line in text.splitlines():
        if depth:
            depth += line.count("{") - line.count("}")
            continue
        if _EXT_OPTION.match(line):
            depth = line.count("{") - line.count("}")
            continue
        if line.startswith("import ") and any(p in line for p in _DROPPED_IMPORTS) \
                or line == "// for grpc-gateway":
            continue
        line = line.replace('import "etcd/api/mvccpb/', f'import "{_HERE}')
        line = line.replace('import "etcd/api/authpb/', f'import "{_HERE}')
        out.append(_FIELD_OPTIONS.sub("", line))
    # An rpc whose only content was an http option is left as `{\n  }`: make it `{}`.
    text = re.sub(r"\{\n\s*\}", "{}", "\n".join(out) + "\n")
    return re.sub(r"\n{3,}", "\n\n", text)


if __name__ == "__main__":
    sys.stdout.write(strip(sys.stdin.read(), sys.argv[1], sys.argv[2]))
