/* test_fuzz_regressions.c: every input that ever broke a fuzz target, and
 * every seed, replayed in the normal (gcc, ASan+UBSan) suite.
 *
 * The fuzz targets (tests/fuzz/fuzz_<target>.c) are compiled in here with
 * -DFUZZ_REPLAY, which turns each LLVMFuzzerTestOneInput into
 * fuzz_<target>_one, so an input replays through exactly the code and the
 * checks the fuzzer ran. Inputs live in tests/fuzz/regressions/<target>/
 * (one file per finding, named after the bug) and tests/fuzz/corpus/<target>/
 * (the seeds). A target's checks abort on a broken promise and the
 * sanitizers abort on memory errors and undefined behaviour, so a bug that
 * comes back fails this test, naming the file being replayed.
 * Usage: test_fuzz_regressions [TARGET].
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define TARGET(name) int fuzz_##name##_one(const uint8_t *data, size_t size);
#define TARGETS(X) X(gguf) X(tokenizer) X(config) X(chat_request) X(chat_template) X(sse) X(openai) X(anthropic) X(detect) X(rules) X(pull) X(pull_headers) X(hub_listing)
TARGETS(TARGET)
#undef TARGET

typedef struct {
    const char *name;
    int (*one)(const uint8_t *data, size_t size);
} target;

#define ROW(name) {#name, fuzz_##name##_one},
static const target targets[] = {TARGETS(ROW)};
#undef ROW

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            uint8_t *b = realloc(buf, cap * 2);
            if (!b) { free(buf); buf = NULL; break; }
            buf = b;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Replay every file of tests/fuzz/<kind>/<target>/; returns how many. */
static int replay_dir(const target *t, const char *kind)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/tests/fuzz/%s/%s", JUNCTION_SOURCE_DIR, kind, t->name);
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        size_t len = 0;
        uint8_t *data = slurp(path, &len);
        assert_non_null(data);
        fprintf(stderr, "replaying %s/%s/%s\n", kind, t->name, e->d_name);
        assert_int_equal(t->one(data, len), 0);
        free(data);
        n++;
    }
    closedir(d);
    return n;
}

static void test_replay(void **state)
{
    const target *t = *state;
    int seeds = replay_dir(t, "corpus");
    replay_dir(t, "regressions");
    assert_true(seeds > 0); /* every target has seeds: a missing folder is a mistake */
}

/* With an argument, only that target (meson runs one test per target, so
 * one target's regression does not hide another's). */
int main(int argc, char **argv)
{
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    struct CMUnitTest tests[sizeof(targets) / sizeof(targets[0])];
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
        tests[i] = (struct CMUnitTest){targets[i].name, test_replay, NULL, NULL, (void *)&targets[i]};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
