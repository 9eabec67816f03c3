"""cffi build script for pyrt._seccomp (libseccomp, out-of-line API mode), run by setuptools."""

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent

ffibuilder = FFI()
ffibuilder.cdef((HERE / "seccomp.cdef").read_text().split("*/", 1)[1])
ffibuilder.set_source(
    "pyrt._seccomp",
    '#include <seccomp.h>\nint pyrt_seccomp_set_filter(unsigned int flags, '
    "const void *insns, unsigned int count);",
    sources=[str(Path("csrc") / "seccomp_shim.c")],
    libraries=["seccomp"],
    extra_compile_args=["-O2", "-Wall", "-Werror"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
