/* fuzz.c: helpers shared by the fuzz targets (see fuzz.h). */
#include "fuzz.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef JUNCTION_SHARED_DIR
#error "build with -DJUNCTION_SHARED_DIR=\"...\" (the ../shared reference folder)"
#endif

int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t pathlen)
{
    int fd = memfd_create("fuzz-input", MFD_CLOEXEC);
    if (fd < 0) fuzz_fail("memfd_create failed: this kernel cannot hold the input as a file");
    for (size_t done = 0; done < size;) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) fuzz_fail("writing %zu bytes to a memfd failed", size);
        done += (size_t)n;
    }
    snprintf(path, pathlen, "/proc/self/fd/%d", fd);
    return fd;
}

const char *fuzz_shared_path(const char *rel)
{
    static char path[4096];
    const char *dir = getenv("JUNCTION_SHARED_DIR");
    snprintf(path, sizeof(path), "%s/%s", dir && dir[0] ? dir : JUNCTION_SHARED_DIR, rel);
    return path;
}

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}
