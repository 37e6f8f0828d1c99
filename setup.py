# The cffi extensions need setup.py's cffi_modules; everything else is in pyproject.toml.
import os
import subprocess

from setuptools import setup
from setuptools.command.build_ext import build_ext


class BuildExtAndExecStub(build_ext):
    """Also links runtime/exec_stub, a static executable rather than a Python extension: the
    last hop into a container's process (runtime/exec_stub.py)."""

    def run(self) -> None:
        super().run()
        out_dir = "runtime" if self.inplace else os.path.join(self.build_lib, "runtime")
        os.makedirs(out_dir, exist_ok=True)
        # No C library (the stub makes its few system calls itself), so nothing that needs one:
        # no stack protector (its canary lives in the TLS the C library would set up), no
        # position-independent start, no memcpy/memset calls made up by the optimizer.
        subprocess.run([os.environ.get("CC", "cc"), "-O2", "-static", "-nostdlib", "-no-pie",
                        "-ffreestanding", "-fno-stack-protector",
                        "-fno-tree-loop-distribute-patterns", "-s", "-o",
                        os.path.join(out_dir, "exec_stub"), "runtime/exec_stub.c"], check=True)


setup(cffi_modules=["linux/_build.py:ffibuilder"],
      cmdclass={"build_ext": BuildExtAndExecStub})
