"""cri/proto: the committed stubs are what grpcio-tools makes of the committed api.proto, and the
proto is cri-api's, with the services and messages crictl and critest speak."""
from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import pytest

CHECKOUT = pathlib.Path(__file__).resolve().parents[2]
PROTO_DIR = CHECKOUT / "cri" / "proto"


def test_generated_stubs_match_the_proto(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("grpc_tools")
    (tmp_path / "cri" / "proto").mkdir(parents=True)
    shutil.copy(PROTO_DIR / "api.proto", tmp_path / "cri" / "proto" / "api.proto")
    # The command of cri/proto/README.md, run from a copy of the checkout's layout.
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", ".", "--python_out=.",
                    "--grpc_python_out=.", "cri/proto/api.proto"], cwd=tmp_path, check=True)
    for name in ("api_pb2.py", "api_pb2_grpc.py"):
        fresh = (tmp_path / "cri" / "proto" / name).read_bytes()
        assert fresh == (PROTO_DIR / name).read_bytes(), \
            f"cri/proto/{name} differs from what grpcio-tools generates: rerun the command " \
            "of cri/proto/README.md"


def test_proto_keeps_its_licence_and_package() -> None:
    text = (PROTO_DIR / "api.proto").read_text()
    assert text.startswith("/*\nCopyright 2020 The Kubernetes Authors.")
    assert "Licensed under the Apache License, Version 2.0" in text
    assert "\npackage runtime.v1;\n" in text


def test_stubs_serve_both_services() -> None:
    from cri.proto import api_pb2, api_pb2_grpc
    runtime = api_pb2.DESCRIPTOR.services_by_name["RuntimeService"]
    image = api_pb2.DESCRIPTOR.services_by_name["ImageService"]
    assert {"Version", "RunPodSandbox", "GetContainerEvents", "RuntimeConfig",
            "ListPodSandboxMetrics"} <= set(runtime.methods_by_name)
    assert set(image.methods_by_name) >= {"ListImages", "ImageStatus", "PullImage", "RemoveImage",
                                          "ImageFsInfo"}
    assert hasattr(api_pb2_grpc, "add_RuntimeServiceServicer_to_server")
