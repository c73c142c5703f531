/* test_config.c: settings defaults, flags and the JSON loader. */
#include "gateway.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static void test_defaults_are_safe(void **state)
{
    (void)state;
    gw_config c;
    gw_config_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:8080"); /* loopback unless configured */
    assert_int_equal(c.max_body_bytes, 1 << 20);
    assert_string_equal(c.access_log, "-");
    assert_int_equal(c.log_level, GW_LOG_INFO);
    assert_true(c.drain_timeout_s > 0);
    assert_true(c.request_timeout_s > 0);
}

static void test_flags_apply_and_validate(void **state)
{
    (void)state;
    gw_config c;
    gw_config_defaults(&c);
    char err[256];
    assert_int_equal(gw_config_apply_flag(&c, "--listen", "[::1]:9000", err, sizeof(err)), 0);
    assert_string_equal(c.listen, "[::1]:9000");
    assert_int_equal(gw_config_apply_flag(&c, "--request-timeout", "2.5", err, sizeof(err)), 0);
    assert_true(c.request_timeout_s == 2.5);
    assert_int_equal(gw_config_apply_flag(&c, "--log-level", "warn", err, sizeof(err)), 0);
    assert_int_equal(c.log_level, GW_LOG_WARN);
    assert_int_equal(gw_config_apply_flag(&c, "--workers", "3", err, sizeof(err)), 0);
    assert_int_equal(c.workers, 3);

    assert_int_equal(gw_config_apply_flag(&c, "--workers", "3.5", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--workers: expected an integer"));
    assert_int_equal(c.workers, 3);
    assert_int_equal(gw_config_apply_flag(&c, "--max-connections", "1e9", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "out of range"));
    assert_int_equal(gw_config_apply_flag(&c, "--listen", "", err, sizeof(err)), -1);
    assert_int_equal(gw_config_apply_flag(&c, "--listen", NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "needs a value"));
    assert_int_equal(gw_config_apply_flag(&c, "--no-such-flag", "1", err, sizeof(err)), 1);

    /* the short forms generate and bench take: -m, -c, -t */
    assert_int_equal(gw_config_apply_flag(&c, "-m", "/models/x.gguf", err, sizeof(err)), 0);
    assert_string_equal(c.model, "/models/x.gguf");
    assert_int_equal(gw_config_apply_flag(&c, "-c", "2048", err, sizeof(err)), 0);
    assert_int_equal(c.ctx_size, 2048);
    assert_int_equal(gw_config_apply_flag(&c, "-t", "2", err, sizeof(err)), 0);
    assert_int_equal(c.threads, 2);
    assert_int_equal(gw_config_apply_flag(&c, "-t", "two", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "-t: expected a number"));
    assert_int_equal(gw_config_apply_flag(&c, "-x", "1", err, sizeof(err)), 1);
}

static void test_file_applies_every_key(void **state)
{
    (void)state;
    char path[] = "/tmp/junction-unit-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "{\"listen\":\"0.0.0.0:81\",\"log_level\":\"error\",\"access_log\":\"off\","
                       "\"max_body_bytes\":10,\"max_connections\":7,\"request_timeout_s\":1.5,"
                       "\"drain_timeout_s\":0,\"workers\":2}";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    gw_config c;
    gw_config_defaults(&c);
    char err[256];
    assert_int_equal(gw_config_load_file(&c, path, err, sizeof(err)), 0);
    unlink(path);
    assert_string_equal(c.listen, "0.0.0.0:81");
    assert_int_equal(c.log_level, GW_LOG_ERROR);
    assert_string_equal(c.access_log, "off");
    assert_int_equal(c.max_body_bytes, 10);
    assert_int_equal(c.max_connections, 7);
    assert_true(c.request_timeout_s == 1.5);
    assert_true(c.drain_timeout_s == 0);
    assert_int_equal(c.workers, 2);
}

static void test_large_file_refused(void **state)
{
    (void)state;
    char path[] = "/tmp/junction-unit-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputc('{', f);
    for (int i = 0; i < (1 << 20); i++) fputc(' ', f);
    fputc('}', f);
    fclose(f);
    gw_config c;
    gw_config_defaults(&c);
    char err[256];
    assert_int_equal(gw_config_load_file(&c, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "larger than"));
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_safe),
        cmocka_unit_test(test_flags_apply_and_validate),
        cmocka_unit_test(test_file_applies_every_key),
        cmocka_unit_test(test_large_file_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
