"""Only here to hand the cffi modules to setuptools; metadata lives in pyproject.toml."""

from setuptools import setup

setup(cffi_modules=["csrc/build_shim.py:ffibuilder", "csrc/build_seccomp.py:ffibuilder"])
