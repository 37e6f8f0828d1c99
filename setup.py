# The cffi extension needs setup.py's cffi_modules; everything else is in pyproject.toml.
from setuptools import setup

setup(cffi_modules=["overlay/mount_build.py:ffibuilder", "runtime/syscalls_build.py:ffibuilder"])
