"""Build-time description of mount(2) and umount2(2) for cffi (API mode, compiled at install)."""
from cffi import FFI

ffibuilder = FFI()
ffibuilder.cdef(
    """
    int mount(const char *source, const char *target, const char *filesystemtype,
              unsigned long mountflags, const void *data);
    int umount2(const char *target, int flags);
    """
)
ffibuilder.set_source("overlay._mount", "#include <sys/mount.h>")

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
