"""cffi build script for pyrt's C shim (out-of-line API mode), run by setuptools."""

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent

ffibuilder = FFI()
ffibuilder.cdef((HERE / "shim.h").read_text().split("*/", 1)[1])
ffibuilder.set_source(
    "pyrt._shim",
    '#include "shim.h"',
    sources=[str(Path("csrc") / "shim.c"), str(Path("csrc") / "fork.c")],
    include_dirs=["csrc"],
    extra_compile_args=["-O2", "-Wall", "-Werror"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
