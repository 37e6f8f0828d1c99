"""apiserver/storage/etcdpb: the committed stubs are what grpcio-tools makes of the committed
protos, and the protos are etcd's, with the calls the storage makes."""
from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import pytest

CHECKOUT = pathlib.Path(__file__).resolve().parents[3]
PB = "apiserver/storage/etcdpb"


def test_generated_stubs_match_the_protos(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("grpc_tools")
    (tmp_path / PB).mkdir(parents=True)
    for name in ("rpc.proto", "kv.proto", "auth.proto"):
        shutil.copy(CHECKOUT / PB / name, tmp_path / PB / name)
    # The commands of etcdpb/README.md, run in a copy of the checkout's layout.
    protoc = [sys.executable, "-m", "grpc_tools.protoc", "-I", ".", "--python_out=."]
    subprocess.run(protoc + [f"{PB}/kv.proto", f"{PB}/auth.proto"], cwd=tmp_path, check=True)
    subprocess.run(protoc + ["--grpc_python_out=.", f"{PB}/rpc.proto"], cwd=tmp_path,
                   check=True)
    for name in ("rpc_pb2.py", "rpc_pb2_grpc.py", "kv_pb2.py", "auth_pb2.py"):
        fresh = (tmp_path / PB / name).read_bytes()
        assert fresh == (CHECKOUT / PB / name).read_bytes(), \
            f"{PB}/{name} differs from what grpcio-tools generates: rerun its README's commands"


def test_protos_name_their_origin_and_licence() -> None:
    for name, package in (("rpc.proto", "etcdserverpb"), ("kv.proto", "mvccpb"),
                          ("auth.proto", "authpb")):
        text = (CHECKOUT / PB / name).read_text()
        assert "of etcd v3.6.14" in text.splitlines()[0]
        assert "Apache License, Version 2.0" in text
        assert f"\npackage {package};\n" in text
        assert "gogoproto" not in text and "google.api" not in text


def test_stubs_have_the_calls_the_storage_makes() -> None:
    from apiserver.storage.etcdpb import rpc_pb2, rpc_pb2_grpc
    kv = rpc_pb2.DESCRIPTOR.services_by_name["KV"]
    assert {"Range", "Txn", "Compact"} <= set(kv.methods_by_name)
    assert "Watch" in rpc_pb2.DESCRIPTOR.services_by_name["Watch"].methods_by_name
    assert hasattr(rpc_pb2_grpc, "KVStub") and hasattr(rpc_pb2_grpc, "WatchStub")


def test_strip_drops_annotations_only() -> None:
    from apiserver.storage.etcdpb.strip import strip
    upstream = ('syntax = "proto3";\nimport "gogoproto/gogo.proto";\n'
                'import "etcd/api/mvccpb/kv.proto";\n'
                'option (gogoproto.marshaler_all) = true;\n'
                'service KV {\n  rpc Range(RangeRequest) returns (RangeResponse) {\n'
                '      option (google.api.http) = {\n        post: "/v3/kv/range"\n'
                '        body: "*"\n    };\n  }\n}\n'
                'message M {\n  bool prev_kv = 4 [(versionpb.etcd_version_field)="3.1"];\n}\n')
    out = strip(upstream, "api/x.proto", "v9")
    assert out.startswith("// api/x.proto of etcd v9 ")
    assert 'import "apiserver/storage/etcdpb/kv.proto";' in out
    assert "rpc Range(RangeRequest) returns (RangeResponse) {}" in out
    assert "  bool prev_kv = 4;" in out
    assert "gogoproto" not in out and "google.api" not in out and "versionpb" not in out
