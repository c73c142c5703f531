/* test_cli.c: the junction binary's command line and --check-config. */
#include "testlib.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static char config_path[64];

static void write_config(const char *text)
{
    snprintf(config_path, sizeof(config_path), "/tmp/junction-cfg-XXXXXX");
    int fd = mkstemp(config_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void test_version_names_kernels(void **state)
{
    (void)state;
    const char *args[] = {"--version", NULL};
    char *out;
    assert_int_equal(run_junction(args, &out), 0);
    assert_int_equal(strncmp(out, "junction ", 9), 0);
    assert_non_null(strstr(out, "kernels: "));
    free(out);
}

static void test_help_lists_subcommands(void **state)
{
    (void)state;
    const char *args[] = {"--help", NULL};
    char *out;
    assert_int_equal(run_junction(args, &out), 0);
    assert_non_null(strstr(out, "serve"));
    free(out);
    const char *serve_help[] = {"serve", "--help", NULL};
    assert_int_equal(run_junction(serve_help, &out), 0);
    assert_non_null(strstr(out, "--listen"));
    assert_non_null(strstr(out, "--max-body-bytes"));
    assert_non_null(strstr(out, "--drain-timeout"));
    free(out);
}

static void test_unknown_subcommand(void **state)
{
    (void)state;
    const char *args[] = {"frobnicate", NULL};
    char *out;
    assert_int_equal(run_junction(args, &out), 2);
    assert_non_null(strstr(out, "unknown subcommand 'frobnicate'"));
    free(out);
}

static void test_check_config_prints_effective_settings(void **state)
{
    (void)state;
    write_config("{\n  \"listen\": \"127.0.0.1:9999\",\n  \"max_body_bytes\": 2048,\n  \"log_level\": \"debug\"\n}\n");
    /* The flag beats the file. */
    const char *args[] = {"serve", "--config", config_path, "--max-body-bytes=4096", "--check-config", NULL};
    char *out;
    assert_int_equal(run_junction(args, &out), 0);
    assert_non_null(strstr(out, "\"listen\":\t\"127.0.0.1:9999\""));
    assert_non_null(strstr(out, "\"max_body_bytes\":\t4096"));
    assert_non_null(strstr(out, "\"log_level\":\t\"debug\""));
    assert_non_null(strstr(out, "configuration OK"));
    free(out);
    unlink(config_path);
}

typedef struct {
    const char *name, *file, *expect;
} config_case;

static const config_case bad_configs[] = {
    {"unknown_key", "{\n  \"listen\": \"127.0.0.1:1\",\n  \"lisen\": \"x\"\n}", ":3:3: 'lisen': unknown key"},
    {"wrong_type", "{\"max_body_bytes\": \"big\"}", ":1:2: 'max_body_bytes': expected a number"},
    {"out_of_range", "{\n\"max_connections\": 0}", ":2:1: 'max_connections': 0 is out of range"},
    {"not_integer", "{\"workers\": 1.5}", "'workers': expected an integer"},
    {"bad_log_level", "{\"log_level\": \"loud\"}", "'log_level': unknown log level 'loud'"},
    {"invalid_json", "{\n  \"listen\": \"x\",,\n}", ":2:18: invalid JSON"},
    {"duplicate_key", "{\"workers\": 1, \"workers\": 2}", ":1:16: 'workers': duplicate key"},
    {"not_object", "[1]", "must be a JSON object"},
    {"nested_key_skipped", "{\"x\": {\"listen\": 1}}", ":1:2: 'x': unknown key"},
    {"upstream_unknown_key", "{\"upstreams\": [\n  {\"name\": \"a\", \"base_url\": \"http://h/v1\"},\n  {\"name\": \"b\", \"base_url\": \"http://h/v1\", \"tmeout\": 1}\n]}",
     ":3:44: upstreams[1]: 'tmeout': unknown upstream key"},
    {"upstream_bad_provider", "{\"upstreams\": [{\"name\": \"a\", \"provider\": \"gemini\", \"base_url\": \"http://h\"}]}",
     ":1:30: upstreams[0]: 'provider': expected \"openai\" or \"anthropic\""},
    {"upstream_duplicate_name", "{\"upstreams\": [{\"name\": \"a\", \"base_url\": \"http://h\"}, {\"name\": \"a\", \"base_url\": \"http://h\"}]}",
     "upstreams[1]: two upstreams are named 'a'"},
    {"upstream_bad_url", "{\"upstreams\": [{\"name\": \"a\", \"base_url\": \"ftp://h\"}]}",
     "base_url must start with http:// or https://"},
    {"upstream_reserved_name", "{\"upstreams\": [{\"name\": \"local\", \"base_url\": \"http://h\"}]}",
     "upstream name 'local' is reserved"},
    {"upstreams_not_array", "{\"upstreams\": {}}", "'upstreams': expected an array of upstream objects"},
};

static void test_bad_config(void **state)
{
    const config_case *c = *state;
    write_config(c->file);
    const char *args[] = {"serve", "--config", config_path, "--check-config", NULL};
    char *out;
    assert_int_equal(run_junction(args, &out), 2);
    if (!strstr(out, c->expect)) fprintf(stderr, "%s: got: %s\n", c->name, out);
    assert_non_null(strstr(out, config_path));
    assert_non_null(strstr(out, c->expect));
    free(out);
    unlink(config_path);
}

/* A key's environment variable that is not set stops the daemon before it
 * starts, and --check-config says so too; neither prints any key. */
static void test_upstream_key_env_unset(void **state)
{
    (void)state;
    const char *up = "{\"name\": \"a\", \"base_url\": \"http://h\", \"api_key_env\": \"JT_SURELY_UNSET_VAR\"}";
    const char *check[] = {"serve", "--upstream", up, "--check-config", NULL};
    const char *serve[] = {"serve", "--upstream", up, "--listen", "127.0.0.1:0", NULL};
    const char *const *cases[] = {check, serve};
    for (int i = 0; i < 2; i++) {
        char *out;
        assert_int_equal(run_junction(cases[i], &out), 2);
        assert_non_null(strstr(out, "upstream 'a': environment variable JT_SURELY_UNSET_VAR is not set"));
        free(out);
    }
}

static void test_missing_config_file(void **state)
{
    (void)state;
    const char *args[] = {"serve", "--config", "/nonexistent/junction.json", "--check-config", NULL};
    char *out;
    assert_int_equal(run_junction(args, &out), 2);
    assert_non_null(strstr(out, "cannot open config file /nonexistent/junction.json"));
    free(out);
}

static void test_bad_flags(void **state)
{
    (void)state;
    const char *cases[][4] = {
        {"serve", "--max-body-bytes", "lots", "expected a number, got 'lots'"},
        {"serve", "--listen", "nocolon", NULL},
        {"serve", "--bogus", "1", "unknown option '--bogus'"},
        {"serve", "--drain-timeout", "-1", "out of range"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *args[] = {cases[i][0], cases[i][1], cases[i][2], "--check-config", NULL};
        char *out;
        int rc = run_junction(args, &out);
        if (cases[i][3]) {
            assert_int_equal(rc, 2);
            assert_non_null(strstr(out, cases[i][3]));
        } else {
            assert_int_equal(rc, 0); /* the address is only parsed when serving */
        }
        free(out);
    }
    const char *args[] = {"serve", "--listen", "nocolon", NULL};
    char *out;
    assert_int_equal(run_junction(args, &out), 1);
    assert_non_null(strstr(out, "is not host:port"));
    free(out);
}

int main(void)
{
    enum { N_BAD = sizeof(bad_configs) / sizeof(bad_configs[0]) };
    struct CMUnitTest tests[N_BAD + 7];
    size_t n = 0;
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_version_names_kernels),
        cmocka_unit_test(test_help_lists_subcommands),
        cmocka_unit_test(test_unknown_subcommand),
        cmocka_unit_test(test_check_config_prints_effective_settings),
        cmocka_unit_test(test_missing_config_file),
        cmocka_unit_test(test_upstream_key_env_unset),
        cmocka_unit_test(test_bad_flags),
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) tests[n++] = fixed[i];
    for (size_t i = 0; i < N_BAD; i++) {
        struct CMUnitTest t = cmocka_unit_test_prestate(test_bad_config, (void *)&bad_configs[i]);
        t.name = bad_configs[i].name;
        tests[n++] = t;
    }
    return _cmocka_run_group_tests("cli", tests, n, NULL, NULL);
}
