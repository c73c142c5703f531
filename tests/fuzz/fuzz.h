/* fuzz.h: what every fuzz target shares.
 *
 * Each tests/fuzz/fuzz_<target>.c feeds untrusted bytes to one parser. Built
 * for libFuzzer (meson -Dfuzz=true, clang) its entry point is
 * LLVMFuzzerTestOneInput; built with -DFUZZ_REPLAY into the normal test
 * suite (tests/unit/test_fuzz_regressions.c) the same body is an ordinary
 * function, fuzz_<target>_one, so every input that once crashed is replayed
 * through exactly the code the fuzzer ran. Targets set themselves up on
 * their first input, since the replay has no LLVMFuzzerInitialize.
 *
 * A target returns 0 for every input; a broken promise (a parser that fails
 * without saying why, a round trip that loses bytes) calls fuzz_fail, which
 * aborts so that libFuzzer saves the input as a crash.
 */
#ifndef JUNCTION_FUZZ_H
#define JUNCTION_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#ifdef FUZZ_REPLAY
#define FUZZ_TARGET(name) int fuzz_##name##_one(const uint8_t *data, size_t size)
#else
#define FUZZ_TARGET(name) \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
#endif

/* The bytes as a file that path-taking loaders can open: an anonymous
 * in-memory file (memfd) named "/proc/self/fd/N" in `path`. Returns the fd
 * (close it when done); aborts if the kernel refuses, since no input could
 * then be tested. */
int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t pathlen);

/* A file in the shared reference folder (../shared), e.g. "models/x.gguf":
 * $JUNCTION_SHARED_DIR if set, else the build's default. Static storage. */
const char *fuzz_shared_path(const char *rel);

/* Report a broken promise about `what` and abort (libFuzzer keeps the input). */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
