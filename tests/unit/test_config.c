/* test_config.c: settings defaults, flags, the JSON loader (nested objects
 * included), gw_config_check against real files, and which listen
 * addresses protected mode covers. */
#include "gateway.h"
#include "clients.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define MODELS JUNCTION_SHARED_DIR "/models/"

static char err[1024];

/* Write `text` to a new temporary file named into `path` (32 bytes). */
static void temp_file(char *path, const char *text)
{
    snprintf(path, 32, "/tmp/junction-unit-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* Load `text` as a config file on top of the defaults; returns the loader's rc. */
static int load_text(gw_config *c, const char *text)
{
    char path[32];
    temp_file(path, text);
    gw_config_defaults(c);
    int rc = gw_config_load_file(c, path, err, sizeof(err));
    unlink(path);
    return rc;
}

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
    assert_int_equal(c.max_output_buffer_bytes, 4 << 20);
    assert_false(c.allow_unauthenticated_remote);
    assert_string_equal(c.ledger.path, "");
    assert_int_equal(c.ledger.flush_ms, 200);
    assert_int_equal(c.ledger.retention_days, 90);
    assert_false(c.ledger.store_prompts);
    assert_string_equal(c.ledger.reference_upstream, "");
    assert_false(c.ledger.required);
    assert_string_equal(c.admin.keys_env, "JUNCTION_ADMIN_KEYS");
    assert_true(c.local.price_input_per_mtok == 0 && c.local.price_output_per_mtok == 0 &&
                c.local.price_per_engine_second == 0);
    assert_string_equal(c.classifier.difficulty_head, "");
    assert_string_equal(c.classifier.sensitivity_head, "");
    assert_string_equal(c.classifier.model_features, "auto");
    assert_int_equal(c.classifier.layer, 0);
    assert_int_equal(c.classifier.max_tokens, 512);
    assert_string_equal(c.classifier.detectors, "[]");
    assert_true(c.routing.sticky_idle_s == 3600);
    assert_true(c.routing.annotate_body);
}

static void test_flags_apply_and_validate(void **state)
{
    (void)state;
    gw_config c;
    gw_config_defaults(&c);
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
    assert_int_equal(gw_config_apply_flag(&c, "--log-level", "loud", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "use error, warn, info or debug"));

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

/* Ranges are printed as integers, never as 1.07374e+09. */
static void test_ranges_print_as_integers(void **state)
{
    (void)state;
    gw_config c;
    gw_config_defaults(&c);
    assert_int_equal(gw_config_apply_flag(&c, "--max-body-bytes", "2147483648", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "2147483648 is out of range; expected an integer from 1 to 1073741824"));
    assert_int_equal(gw_config_apply_flag(&c, "--max-output-buffer", "1", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "from 4096 to 1073741824"));
    assert_null(strstr(err, "e+"));
    assert_int_equal(load_text(&c, "{\"routing\": {\"sticky_idle_s\": 1e12}}"), -1);
    assert_non_null(strstr(err, "'routing.sticky_idle_s': 1000000000000 is out of range; expected a number from 0 to 2592000"));
}

/* Every new key from a flag, with the value landing in its field. */
static void test_new_keys_from_flags(void **state)
{
    (void)state;
    gw_config c;
    gw_config_defaults(&c);
    static const struct { const char *flag, *value; } cases[] = {
        {"--ledger", "/var/lib/junction/l.db"}, {"--ledger-flush-ms", "50"},
        {"--ledger-retention-days", "0"}, {"--ledger-store-prompts", NULL},
        {"--ledger-reference-upstream", "frontier"}, {"--ledger-required", "true"},
        {"--admin-keys-env", "MY_ADMIN_KEYS"}, {"--local-price-input-per-mtok", "0.5"},
        {"--local-price-output-per-mtok", "1.5"}, {"--local-price-per-engine-second", "0.0001"},
        {"--difficulty-head", "/etc/junction/d.json"}, {"--sensitivity-head", "/etc/junction/s.json"},
        {"--classifier-model-features", "off"}, {"--classifier-layer", "8"},
        {"--classifier-max-tokens", "256"}, {"--classifier-detectors", "[{\"name\": \"ticket\"}]"},
        {"--routing-sticky-idle", "60"}, {"--routing-annotate-body", "false"},
        {"--allow-unauthenticated-remote", NULL}, {"--max-output-buffer", "65536"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = gw_config_apply_flag(&c, cases[i].flag, cases[i].value, err, sizeof(err));
        if (rc != 0) fprintf(stderr, "%s: %s\n", cases[i].flag, err);
        assert_int_equal(rc, 0);
    }
    assert_string_equal(c.ledger.path, "/var/lib/junction/l.db");
    assert_int_equal(c.ledger.flush_ms, 50);
    assert_int_equal(c.ledger.retention_days, 0);
    assert_true(c.ledger.store_prompts);
    assert_string_equal(c.ledger.reference_upstream, "frontier");
    assert_true(c.ledger.required);
    assert_string_equal(c.admin.keys_env, "MY_ADMIN_KEYS");
    assert_true(c.local.price_input_per_mtok == 0.5);
    assert_true(c.local.price_output_per_mtok == 1.5);
    assert_true(c.local.price_per_engine_second == 0.0001);
    assert_string_equal(c.classifier.difficulty_head, "/etc/junction/d.json");
    assert_string_equal(c.classifier.sensitivity_head, "/etc/junction/s.json");
    assert_string_equal(c.classifier.model_features, "off");
    assert_int_equal(c.classifier.layer, 8);
    assert_int_equal(c.classifier.max_tokens, 256);
    assert_string_equal(c.classifier.detectors, "[{\"name\":\"ticket\"}]");
    assert_true(c.routing.sticky_idle_s == 60);
    assert_false(c.routing.annotate_body);
    assert_true(c.allow_unauthenticated_remote);
    assert_int_equal(c.max_output_buffer_bytes, 65536);

    /* bad values name the flag and what to give instead */
    static const struct { const char *flag, *value, *expect; } bad[] = {
        {"--ledger-flush-ms", "0", "--ledger-flush-ms: 0 is out of range; expected an integer from 1 to 60000"},
        {"--local-price-input-per-mtok", "-1", "expected a number from 0 to"},
        {"--classifier-model-features", "maybe", "unknown value 'maybe'; use auto, on or off"},
        {"--classifier-detectors", "{\"name\": 1}", "--classifier-detectors: expected an array of objects"},
        {"--classifier-detectors", "[1]", "element 0 is not an object"},
        {"--classifier-detectors", "[", "expected a JSON array of objects"},
        {"--admin-keys-env", "MY KEYS", "is not an environment variable name"},
        {"--ledger-store-prompts", "yes", "expected true or false"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(gw_config_apply_flag(&c, bad[i].flag, bad[i].value, err, sizeof(err)), -1);
        if (!strstr(err, bad[i].expect)) fprintf(stderr, "%s %s: got %s\n", bad[i].flag, bad[i].value, err);
        assert_non_null(strstr(err, bad[i].expect));
    }
}

static void test_boolean_flags(void **state)
{
    (void)state;
    assert_int_equal(gw_config_flag_takes_value("--ledger-store-prompts"), 0);
    assert_int_equal(gw_config_flag_takes_value("--listen"), 1);
    assert_int_equal(gw_config_flag_takes_value("-m"), 1);
    assert_int_equal(gw_config_flag_takes_value("--nope"), -1);
    gw_config c;
    gw_config_defaults(&c);
    assert_int_equal(gw_config_apply_flag(&c, "--routing-annotate-body", "false", err, sizeof(err)), 0);
    assert_false(c.routing.annotate_body);
    assert_int_equal(gw_config_apply_flag(&c, "--routing-annotate-body", NULL, err, sizeof(err)), 0);
    assert_true(c.routing.annotate_body);
    assert_int_equal(gw_config_apply_flag(&c, "--ledger-required", "1", err, sizeof(err)), -1);
    assert_false(c.ledger.required);
}

static void test_file_applies_every_key(void **state)
{
    (void)state;
    gw_config c;
    assert_int_equal(load_text(&c, "{\"listen\":\"0.0.0.0:81\",\"log_level\":\"error\",\"access_log\":\"off\","
                                   "\"max_body_bytes\":10,\"max_connections\":7,\"request_timeout_s\":1.5,"
                                   "\"drain_timeout_s\":0,\"workers\":2}"),
                     0);
    assert_string_equal(c.listen, "0.0.0.0:81");
    assert_int_equal(c.log_level, GW_LOG_ERROR);
    assert_string_equal(c.access_log, "off");
    assert_int_equal(c.max_body_bytes, 10);
    assert_int_equal(c.max_connections, 7);
    assert_true(c.request_timeout_s == 1.5);
    assert_true(c.drain_timeout_s == 0);
    assert_int_equal(c.workers, 2);
}

static const char nested_file[] =
    "{\n"
    "  \"max_output_buffer_bytes\": 8192,\n"
    "  \"allow_unauthenticated_remote\": true,\n"
    "  \"ledger\": {\"path\": \"off\", \"flush_ms\": 1000, \"retention_days\": 7, \"store_prompts\": true,\n"
    "             \"reference_upstream\": \"big\", \"required\": true},\n"
    "  \"admin\": {\"keys_env\": \"ADMINS\"},\n"
    "  \"local\": {\"price_input_per_mtok\": 0.1, \"price_output_per_mtok\": 0.2, \"price_per_engine_second\": 0.3},\n"
    "  \"classifier\": {\"difficulty_head\": \"d.json\", \"sensitivity_head\": \"s.json\", \"model_features\": \"on\",\n"
    "                 \"layer\": 4, \"max_tokens\": 128,\n"
    "                 \"detectors\": [{\"name\": \"ticket\", \"pattern\": \"T-[0-9]+\"}, {\"name\": \"x\"}]},\n"
    "  \"routing\": {\"sticky_idle_s\": 10, \"annotate_body\": false}\n"
    "}\n";

static void test_file_nested_objects(void **state)
{
    (void)state;
    gw_config c;
    assert_int_equal(load_text(&c, nested_file), 0);
    assert_int_equal(c.max_output_buffer_bytes, 8192);
    assert_true(c.allow_unauthenticated_remote);
    assert_string_equal(c.ledger.path, "off");
    assert_int_equal(c.ledger.flush_ms, 1000);
    assert_int_equal(c.ledger.retention_days, 7);
    assert_true(c.ledger.store_prompts);
    assert_string_equal(c.ledger.reference_upstream, "big");
    assert_true(c.ledger.required);
    assert_string_equal(c.admin.keys_env, "ADMINS");
    assert_true(c.local.price_input_per_mtok == 0.1);
    assert_true(c.local.price_output_per_mtok == 0.2);
    assert_true(c.local.price_per_engine_second == 0.3);
    assert_string_equal(c.classifier.difficulty_head, "d.json");
    assert_string_equal(c.classifier.sensitivity_head, "s.json");
    assert_string_equal(c.classifier.model_features, "on");
    assert_int_equal(c.classifier.layer, 4);
    assert_int_equal(c.classifier.max_tokens, 128);
    assert_string_equal(c.classifier.detectors, "[{\"name\":\"ticket\",\"pattern\":\"T-[0-9]+\"},{\"name\":\"x\"}]");
    assert_true(c.routing.sticky_idle_s == 10);
    assert_false(c.routing.annotate_body);
}

/* What --check-config prints loads back to the same settings. */
static void test_printed_json_loads_back(void **state)
{
    (void)state;
    gw_config c, again;
    assert_int_equal(load_text(&c, nested_file), 0);
    assert_int_equal(gw_config_apply_flag(&c, "--upstream",
                                          "{\"name\": \"big\", \"base_url\": \"https://api.example.com/v1\", "
                                          "\"headers\": {\"X-Org\": \"o1\"}, \"zone\": \"private\"}",
                                          err, sizeof(err)),
                     0);
    char *first = NULL, *second = NULL;
    size_t n1, n2;
    FILE *f = open_memstream(&first, &n1);
    gw_config_print_json(&c, f);
    fclose(f);
    assert_non_null(strstr(first, "\"ledger\":\t{"));
    assert_non_null(strstr(first, "\"store_prompts\":\ttrue"));
    assert_int_equal(load_text(&again, first), 0);
    f = open_memstream(&second, &n2);
    gw_config_print_json(&again, f);
    fclose(f);
    assert_string_equal(first, second);
    assert_string_equal(again.upstreams[0].headers[0].value, "o1");
    free(first);
    free(second);
}

static void test_file_errors_name_nested_keys(void **state)
{
    (void)state;
    static const struct { const char *text, *expect; } cases[] = {
        {"{\n  \"ledger\": {\n    \"pth\": \"x\"\n  }\n}", ":3:5: 'ledger.pth': unknown key"},
        {"{\"ledger\": 5}", ":1:2: 'ledger': expected an object of ledger.* keys"},
        {"{\"ledger\": {\"flush_ms\": 1, \"flush_ms\": 2}}", ":1:28: 'ledger.flush_ms': duplicate key"},
        {"{\"ledger\": {\"store_prompts\": \"yes\"}}", ":1:13: 'ledger.store_prompts': expected true or false"},
        {"{\"routing\": {\"annotate_body\": 1}}", "'routing.annotate_body': expected true or false"},
        {"{\"classifier\": {\"detectors\": {}}}", "'classifier.detectors': expected an array of objects"},
        {"{\"classifier\": {\"detectors\": [{}, 2]}}", "'classifier.detectors': element 1 is not an object"},
        {"{\"classifier\": {\"layer\": 1.5}}", "'classifier.layer': expected an integer"},
        {"{\"ledger.path\": \"x\"}", "'ledger.path': unknown key; a key a.b is written as \"a\": {\"b\": ...}"},
        {"{\"local\": {\"price_per_engine_second\": -0.5}}", "-0.5 is out of range"},
        {"{\"listen\": \"127.0.0.1:99999\"}", "'listen': listen address '127.0.0.1:99999': port 99999 is out of range"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gw_config c;
        int rc = load_text(&c, cases[i].text);
        if (rc != -1 || !strstr(err, cases[i].expect)) fprintf(stderr, "case %zu: rc %d, %s\n", i, rc, err);
        assert_int_equal(rc, -1);
        assert_non_null(strstr(err, cases[i].expect));
    }
}

static void test_listen_parse(void **state)
{
    (void)state;
    char host[64];
    unsigned short port;
    assert_int_equal(gw_listen_parse("[::1]:8080", host, sizeof(host), &port, err, sizeof(err)), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 8080);
    assert_int_equal(gw_listen_parse("localhost:0", host, sizeof(host), &port, err, sizeof(err)), 0);
    assert_string_equal(host, "localhost");
    assert_int_equal(port, 0);
    static const struct { const char *listen, *expect; } bad[] = {
        {"127.0.0.1:99999", "port 99999 is out of range; use 0 to 65535"},
        {"127.0.0.1:-1", "the port '-1' is not a number"},
        {"127.0.0.1:", "the port '' is not a number"},
        {"nocolon", "is not host:port"},
        {":80", "is not host:port"},
        {"::1:80", "put it in brackets"},
        {"[::1:80", "goes in brackets before the port"},
        {"[zz::1]:80", "host 'zz::1' is not an IPv6 address"},
        {"256.1.1.1:80", "host '256.1.1.1' is not an IPv4 address"},
        {"bad host:80", "host 'bad host' is not a host name"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(gw_listen_parse(bad[i].listen, host, sizeof(host), &port, err, sizeof(err)), -1);
        if (!strstr(err, bad[i].expect)) fprintf(stderr, "%s: got %s\n", bad[i].listen, err);
        assert_non_null(strstr(err, bad[i].expect));
    }
}

/* Protected mode covers every listen address but loopback's, unless allowed. */
static void test_protected_mode_addresses(void **state)
{
    (void)state;
    static const struct { const char *listen; bool loopback; } cases[] = {
        {"127.0.0.1:8080", true}, {"127.1.2.3:0", true},      {"localhost:80", true}, {"[::1]:8080", true},
        {"0.0.0.0:8080", false},  {"[::]:8080", false},       {"10.0.0.7:80", false}, {"example.com:80", false},
        {"128.0.0.1:80", false},  {"[::ffff:127.0.0.1]:80", false}, {"nocolon", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gw_config c;
        gw_config_defaults(&c);
        snprintf(c.listen, sizeof(c.listen), "%s", cases[i].listen);
        if (gw_listen_is_loopback(c.listen) != cases[i].loopback) fprintf(stderr, "%s\n", cases[i].listen);
        assert_int_equal(gw_listen_is_loopback(c.listen), cases[i].loopback);
        assert_int_equal(gw_protected_mode(&c), !cases[i].loopback);
        assert_int_equal(gw_protected_refuse(&c, 0, err, sizeof(err)), cases[i].loopback ? 0 : -1);
        assert_int_equal(gw_protected_refuse(&c, 1, err, sizeof(err)), 0);
        c.allow_unauthenticated_remote = true;
        assert_false(gw_protected_mode(&c));
        assert_int_equal(gw_protected_refuse(&c, 0, err, sizeof(err)), 0);
    }
}

static void test_model_id_and_ledger_path(void **state)
{
    (void)state;
    char id[64], path[256];
    gw_model_id("/srv/models/llama-2-7b.Q4_0.gguf", id, sizeof(id));
    assert_string_equal(id, "llama-2-7b.Q4_0");
    gw_model_id("plain", id, sizeof(id));
    assert_string_equal(id, "plain");

    gw_config c;
    gw_config_defaults(&c);
    char home[512];
    snprintf(home, sizeof(home), "%s", getenv("HOME") ? getenv("HOME") : "/");
    setenv("XDG_STATE_HOME", "/xdg/state", 1);
    assert_int_equal(gw_config_ledger_path(&c, path, sizeof(path), err, sizeof(err)), 0);
    assert_string_equal(path, "/xdg/state/junction/ledger.db");
    unsetenv("XDG_STATE_HOME");
    setenv("HOME", "/home/op", 1);
    assert_int_equal(gw_config_ledger_path(&c, path, sizeof(path), err, sizeof(err)), 0);
    assert_string_equal(path, "/home/op/.local/state/junction/ledger.db");
    unsetenv("HOME");
    assert_int_equal(gw_config_ledger_path(&c, path, sizeof(path), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--ledger PATH"));
    setenv("HOME", home, 1);
    snprintf(c.ledger.path, sizeof(c.ledger.path), "off");
    assert_int_equal(gw_config_ledger_path(&c, path, sizeof(path), err, sizeof(err)), 0);
    assert_string_equal(path, "");
}

/* gw_config_check against real files and what serve builds: each case is one problem. */
static void test_check(void **state)
{
    (void)state;
    char garbage[32], head[32];
    temp_file(garbage, "this is not a GGUF file at all, just text");
    temp_file(head, "{}");
    setenv("JT_CONFIG_KEY", "sk-test-0123456789abcdefWXYZ", 1);
    static const char up_key[] = "{\"name\": \"frontier\", \"base_url\": \"http://h/v1\", \"api_key_env\": \"JT_CONFIG_KEY\"}";
    static const char up_model[] = "{\"name\": \"stories260K\", \"base_url\": \"http://h/v1\"}";
    static const char up_unset[] = "{\"name\": \"u\", \"base_url\": \"http://h/v1\", \"api_key_env\": \"JT_SURELY_UNSET\"}";
    const struct { const char *flag, *value, *flag2, *value2, *expect; } cases[] = {
        {"--model", "/nonexistent/m.gguf", NULL, NULL, "model: cannot open /nonexistent/m.gguf"},
        {"--model", garbage, NULL, NULL, "model: "},
        {"--model", MODELS "stories260K.gguf", "--upstream", up_model, "upstream 'stories260K' is named like the local model"},
        {"--model", MODELS "stories260K.gguf", "--classifier-layer", "1000", "classifier.layer: 1000 is past the model's"},
        {"--upstream", up_unset, NULL, NULL, "environment variable JT_SURELY_UNSET is not set"},
        {"--ledger-reference-upstream", "nope", NULL, NULL, "ledger.reference_upstream: 'nope' is not an upstream"},
        {"--difficulty-head", "/nonexistent/d.json", NULL, NULL, "classifier.difficulty_head: cannot read /nonexistent/d.json"},
        {"--access-log", "/nonexistent/dir/access.log", NULL, NULL, "access_log: cannot create /nonexistent/dir/access.log: directory /nonexistent/dir does not exist"},
        {"--ledger", "/tmp", NULL, NULL, "ledger.path: /tmp exists but is not a file"},
        /* what the daemon builds at start: the heads' contents, the detectors, the rules, protected mode */
        {"--difficulty-head", head, NULL, NULL, "classifier.difficulty_head: "},
        {"--classifier-detectors", "[{\"kind\": \"ticket\", \"regex\": \"T-(\"}]", NULL, NULL,
         "classifier.detectors: custom_rules[0] (ticket): regex does not compile"},
        {"--routing-rules", "[{\"name\": \"out\", \"route\": \"frontier\"}]", NULL, NULL,
         "routing.rules[0] \"out\": route: unknown route \"frontier\""},
        {"--classifier-detectors", "[{\"kind\": \"ticket\", \"terms\": [\"T-1\"]}]", "--routing-rules",
         "[{\"name\": \"t\", \"when\": {\"kinds\": \"tickets\"}, \"route\": \"local\"}]", "routing.rules[0] \"t\": when.kinds"},
        {"--listen", "0.0.0.0:8080", NULL, NULL, "refusing to listen on 0.0.0.0:8080 without client keys"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gw_config c;
        gw_config_defaults(&c);
        snprintf(c.ledger.path, sizeof(c.ledger.path), "off");
        assert_int_equal(gw_config_apply_flag(&c, cases[i].flag, cases[i].value, err, sizeof(err)), 0);
        if (cases[i].flag2) assert_int_equal(gw_config_apply_flag(&c, cases[i].flag2, cases[i].value2, err, sizeof(err)), 0);
        assert_int_equal(gw_config_check(&c, NULL, err, sizeof(err)), -1);
        if (!strstr(err, cases[i].expect)) fprintf(stderr, "case %zu: got %s\n", i, err);
        assert_non_null(strstr(err, cases[i].expect));
    }

    /* all well: the report names the model and shows the key masked */
    gw_config c;
    gw_config_defaults(&c);
    const char *flags[][2] = {{"--model", MODELS "stories260K.gguf"}, {"--upstream", up_key},
                              {"--ledger-reference-upstream", "frontier"},
                              {"--difficulty-head", JUNCTION_SOURCE_DIR "/classifier/heads/difficulty.json"},
                              {"--classifier-detectors", "[{\"kind\": \"ticket\", \"regex\": \"T-[0-9]+\"}]"},
                              {"--routing-rules", "[{\"name\": \"tickets-stay\", \"when\": {\"kinds\": \"ticket\"}, "
                                                  "\"route\": \"local\"}, {\"name\": \"rest\", \"route\": [\"frontier\", \"local\"]}]"},
                              {"--ledger", "/tmp/junction-unit-ledger-dir/sub/ledger.db"}, {"--listen", "localhost:0"}};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        assert_int_equal(gw_config_apply_flag(&c, flags[i][0], flags[i][1], err, sizeof(err)), 0);
    char *report = NULL;
    size_t len;
    FILE *f = open_memstream(&report, &len);
    int rc = gw_config_check(&c, f, err, sizeof(err));
    fclose(f);
    if (rc != 0) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(report, "(id 'stories260K'): GGUF v3, llama"));
    assert_non_null(strstr(report, "key from $JT_CONFIG_KEY: ****WXYZ (28 characters)"));
    assert_null(strstr(report, "sk-test"));
    assert_non_null(strstr(report, "ledger: /tmp/junction-unit-ledger-dir/sub/ledger.db"));
    assert_non_null(strstr(report, "classifier: detectors and heads load"));
    assert_non_null(strstr(report, "routing: the configured rules load"));
    assert_null(strstr(report, "protected mode")); /* localhost */
    free(report);
    unlink(garbage);
    unlink(head);
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
    assert_int_equal(gw_config_load_file(&c, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "larger than"));
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_safe),
        cmocka_unit_test(test_flags_apply_and_validate),
        cmocka_unit_test(test_ranges_print_as_integers),
        cmocka_unit_test(test_new_keys_from_flags),
        cmocka_unit_test(test_boolean_flags),
        cmocka_unit_test(test_file_applies_every_key),
        cmocka_unit_test(test_file_nested_objects),
        cmocka_unit_test(test_printed_json_loads_back),
        cmocka_unit_test(test_file_errors_name_nested_keys),
        cmocka_unit_test(test_listen_parse),
        cmocka_unit_test(test_protected_mode_addresses),
        cmocka_unit_test(test_model_id_and_ledger_path),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_large_file_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
