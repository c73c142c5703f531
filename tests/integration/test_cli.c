/* test_cli.c: the junction binary's command line and --check-config.
 * Every command exits 2 for a usage error and 1 for a runtime error. */
#include "testlib.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define MODELS JUNCTION_SHARED_DIR "/models/"

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
    const char *args[] = {"serve", "--config", config_path, "--max-body-bytes=4096", "--check-config", "--ledger", "off", NULL};
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
        {"serve", "--listen", "nocolon", "is not host:port"},
        {"serve", "--listen", "127.0.0.1:99999", "port 99999 is out of range; use 0 to 65535"},
        {"serve", "--bogus", "1", "unknown option '--bogus'"},
        {"serve", "--drain-timeout", "-1", "out of range"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *args[] = {cases[i][0], cases[i][1], cases[i][2], "--check-config", NULL};
        char *out;
        int rc = run_junction(args, &out);
        assert_int_equal(rc, 2);
        assert_non_null(strstr(out, cases[i][3]));
        free(out);
    }
    /* serving refuses what --check-config refuses, with the same status */
    const char *args[] = {"serve", "--listen", "127.0.0.1:99999", NULL};
    char *out;
    assert_int_equal(run_junction(args, &out), 2);
    assert_non_null(strstr(out, "port 99999 is out of range"));
    assert_null(strstr(out, "not host:port"));
    free(out);
}

/* --check-config on each thing serve would refuse at start: one problem per case. */
typedef struct {
    const char *name;
    const char *args[6];
    const char *expect;
} check_case;

static char garbage_model[64];

static const check_case check_cases[] = {
    {"missing_model", {"--model", "/nonexistent/model.gguf"}, "model: cannot open /nonexistent/model.gguf"},
    {"garbage_model", {"--model", garbage_model}, "model: "},
    {"bad_listen_host", {"--listen", "256.0.0.1:8080"}, "host '256.0.0.1' is not an IPv4 address"},
    {"listen_port_range", {"--listen", "127.0.0.1:99999"}, "port 99999 is out of range"},
    {"upstream_named_like_model",
     {"--model", MODELS "stories260K.gguf", "--upstream", "{\"name\": \"stories260K\", \"base_url\": \"http://h/v1\"}"},
     "upstream 'stories260K' is named like the local model"},
    {"upstream_bad_url", {"--upstream", "{\"name\": \"a\", \"base_url\": \"h/v1\"}"}, "base_url must start with http://"},
    {"reference_upstream_unknown", {"--ledger-reference-upstream", "nope"}, "'nope' is not an upstream"},
    {"access_log_dir_missing", {"--access-log", "/nonexistent/dir/a.log"}, "directory /nonexistent/dir does not exist"},
    {"head_unreadable", {"--difficulty-head", "/nonexistent/head.json"}, "cannot read /nonexistent/head.json"},
    /* the routing rules, built against the configured routes, with the messages serve gives */
    {"rules_unknown_route", {"--routing-rules", "[{\"name\": \"a\", \"route\": \"gtp4\"}]"},
     "routing.rules[0] \"a\": route: unknown route \"gtp4\" (routes: local; zone classes: private, external)"},
    {"rules_upstream_route_known",
     {"--upstream", "{\"name\": \"gpt4\", \"base_url\": \"http://h/v1\"}", "--routing-rules",
      "[{\"name\": \"a\", \"route\": [\"gpt4\", \"claude\"]}]"},
     "routing.rules[0] \"a\": route: unknown route \"claude\" (routes: local, gpt4;"},
    {"rules_after_catch_all",
     {"--routing-rules", "[{\"name\": \"a\", \"route\": \"local\"}, {\"name\": \"b\", \"route\": \"local\"}]"},
     "routing.rules[1] \"b\": can never be reached: the rule before it, \"a\", has no \"when\""},
    {"rules_score_out_of_range",
     {"--routing-rules", "[{\"name\": \"h\", \"when\": {\"difficulty\": {\">\": 2}}, \"route\": \"local\"}]"},
     "routing.rules[0] \"h\": when.difficulty: \">\" needs a number between 0 and 1"},
    {"rules_unknown_kind",
     {"--routing-rules", "[{\"name\": \"k\", \"when\": {\"kinds\": [\"ticket\"]}, \"route\": \"local\"}]"},
     "routing.rules[0] \"k\": when.kinds"},
    {"pseudonymize_secret_kind", {"--routing-pseudonymize-kinds", "[\"private_key\"]"},
     "routing.pseudonymize_kinds: "},
    {"sensitive_zone_unknown", {"--routing-sensitive-zones", "[\"cloud\"]"},
     "routing.sensitive_zones: unknown zone \"cloud\""},
    /* the operator's detectors, compiled as the daemon compiles them */
    {"detector_regex", {"--classifier-detectors", "[{\"kind\": \"customer_id\", \"regex\": \"CUST-([0-9]{6}\"}]"},
     "classifier.detectors: custom_rules[0] (customer_id): regex does not compile at offset 14"},
    {"detector_kind", {"--classifier-detectors", "[{\"kind\": \"Customer ID\", \"terms\": [\"x\"]}]"},
     "classifier.detectors: custom_rules[0]: \"kind\" must be 1 to 63 characters of a-z, 0-9 and _"},
    /* protected mode: beyond loopback, not without a client key (the ledger is off here: none) */
    {"protected_mode", {"--listen", "0.0.0.0:0"}, "refusing to listen on 0.0.0.0:0 without client keys"},
    {"protected_mode_v6", {"--listen", "[::]:0"}, "refusing to listen on [::]:0 without client keys"},
};

static void test_check_config_refuses(void **state)
{
    const check_case *c = *state;
    const char *args[10] = {"serve", "--check-config", "--ledger", "off"};
    int n = 4;
    for (int i = 0; c->args[i]; i++) args[n++] = c->args[i];
    args[n] = NULL;
    char *out;
    int rc = run_junction(args, &out);
    if (rc != 2 || !strstr(out, c->expect)) fprintf(stderr, "%s: got %d: %s\n", c->name, rc, out);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, c->expect));
    assert_null(strstr(out, "configuration OK"));
    free(out);
}

/* A good configuration: the model's header is read, every setting printed
 * (nested keys included), and keys appear masked only. */
static void test_check_config_reports_masked(void **state)
{
    (void)state;
    setenv("JT_CLI_SECRET", "sk-cli-secret-value-0123456789-TAIL", 1);
    const char *args[] = {"serve", "--check-config", "--ledger", "off", "-m", MODELS "stories260K.gguf",
                          "--upstream", "{\"name\": \"frontier\", \"base_url\": \"https://api.example.com/v1\", "
                          "\"api_key_env\": \"JT_CLI_SECRET\"}",
                          "--ledger-store-prompts", "--routing-annotate-body=false", NULL};
    char *out;
    assert_int_equal(run_junction(args, &out), 0);
    assert_non_null(strstr(out, "model: " MODELS "stories260K.gguf (id 'stories260K'): GGUF v3, llama"));
    assert_non_null(strstr(out, "upstream 'frontier': openai at https://api.example.com/v1, zone external, "
                                "key from $JT_CLI_SECRET: ****TAIL (35 characters)"));
    assert_null(strstr(out, "sk-cli-secret"));
    assert_non_null(strstr(out, "\"store_prompts\":\ttrue"));
    assert_non_null(strstr(out, "\"annotate_body\":\tfalse"));
    assert_non_null(strstr(out, "\"keys_env\":\t\"JUNCTION_ADMIN_KEYS\""));
    assert_non_null(strstr(out, "\"max_output_buffer_bytes\":\t4194304"));
    assert_non_null(strstr(out, "ledger: off"));
    assert_non_null(strstr(out, "configuration OK"));
    free(out);
    unsetenv("JT_CLI_SECRET");
}

/* Protected mode against the ledger's real keys: with one, --check-config
 * lets a non-loopback address pass and says so; with the last revoked, it
 * refuses as serve does; allow_unauthenticated_remote lets it pass again. */
static void test_check_config_protected_mode_reads_keys(void **state)
{
    (void)state;
    char dir[] = "/tmp/junction-cli-XXXXXX", ledger[64];
    assert_non_null(mkdtemp(dir));
    snprintf(ledger, sizeof(ledger), "%s/ledger.db", dir);
    const char *add[] = {"keys", "add", "--db", ledger, "--tenant", "acme", NULL};
    char *out;
    assert_int_equal(run_junction(add, &out), 0);
    const char *id = strstr(out, "key_");
    assert_non_null(id);
    char key_id[32];
    snprintf(key_id, sizeof(key_id), "%.16s", id);
    free(out);
    const char *check[] = {"serve", "--check-config", "--ledger", ledger, "--listen", "0.0.0.0:0", NULL};
    assert_int_equal(run_junction(check, &out), 0);
    assert_non_null(strstr(out, "protected mode: 0.0.0.0:0 is beyond loopback; 1 client key(s) let clients in"));
    free(out);
    const char *revoke[] = {"keys", "revoke", "--db", ledger, key_id, NULL};
    assert_int_equal(run_junction(revoke, &out), 0);
    free(out);
    assert_int_equal(run_junction(check, &out), 2);
    assert_non_null(strstr(out, "refusing to listen on 0.0.0.0:0 without client keys"));
    free(out);
    const char *allowed[] = {"serve", "--check-config", "--ledger", ledger, "--listen", "0.0.0.0:0",
                             "--allow-unauthenticated-remote", NULL};
    assert_int_equal(run_junction(allowed, &out), 0);
    assert_null(strstr(out, "protected mode"));
    free(out);
    remove_tree(dir);
}

/* Usage errors exit 2 and runtime errors 1, in every command. */
typedef struct {
    const char *args[16];
    int status;
    const char *expect;
} exit_case;

static const exit_case exit_cases[] = {
    {{NULL}, 2, "usage: junction SUBCOMMAND"},
    {{"generate", "-m", MODELS "stories260K.gguf", NULL}, 2, "no prompt given"},
    {{"generate", "-p", "hi", NULL}, 2, "no model given; use -m FILE"},
    {{"generate", "-p", "hi", "--temp", "hot", NULL}, 2, "--temp: expected a number from 0 to 100"},
    {{"generate", "-p", "hi", "--seed", "-1", NULL}, 2, "expected a number from 0 to 9007199254740991"},
    {{"generate", "-p", "hi", "--stop", "a", "--stop", "b", "--stop", "c", "--stop", "d", "--stop", "e", NULL}, 2, "at most 4 --stop strings"},
    {{"generate", "-m", "/nonexistent.gguf", "-p", "hi", NULL}, 1, "cannot open /nonexistent.gguf"},
    {{"bench", "--frob", NULL}, 2, "unknown or incomplete option '--frob'"},
    {{"bench", "-p", "100000", NULL}, 2, "-p: expected up to 8 prompt sizes from 0 to 65536"},
    {{"bench", NULL}, 2, "no model given"},
    {{"bench", "-m", "/nonexistent.gguf", NULL}, 1, "cannot open /nonexistent.gguf"},
    {{"mkmodel", "--shape", "tiny", NULL}, 2, "no output file"},
    {{"mkmodel", "--shape", "huge", "-o", "/tmp/x.gguf", NULL}, 2, "unknown shape 'huge'; use tiny, small, 7b, 13b"},
    {{"mkmodel", "--type", "q9_9", "-o", "/tmp/x.gguf", NULL}, 2, "unknown type 'q9_9'"},
    {{"mkmodel", "--type", "q4_k", "-o", "/tmp/x.gguf", NULL}, 2, "type q4_k needs --shape small or larger"},
    {{"mkmodel", "-o", "/nonexistent/dir/x.gguf", NULL}, 1, "cannot create /nonexistent/dir/x.gguf"},
    {{"logits", "-m", MODELS "stories260K.gguf", NULL}, 2, "give exactly one of --ids or --text"},
    {{"logits", "--ids", "1,x", NULL}, 2, "--ids must be comma-separated token ids"},
    {{"logits", "--ids", "1", NULL}, 2, "no model given"},
    {{"logits", "-m", "/nonexistent.gguf", "--ids", "1", NULL}, 1, "cannot open /nonexistent.gguf"},
    {{"inspect", NULL}, 2, "usage: junction inspect"},
    {{"inspect", "/nonexistent.gguf", NULL}, 1, "cannot open /nonexistent.gguf"},
    {{"tokenize", "-m", MODELS "stories260K.gguf", NULL}, 2, "no text given"},
    {{"tokenize", "-m", MODELS "ggml-vocab-llama-spm.gguf", "--bos", "Hello world", NULL}, 0, "1 15043 3186"},
    {{"tokenize", "-m", "/nonexistent.gguf", "hi", NULL}, 1, "cannot open /nonexistent.gguf"},
    {{"serve", "--frob", NULL}, 2, "unknown option '--frob'"},
    {{"serve", "--config", NULL}, 2, "--config needs a file name"},
    /* protected mode: no listening beyond this machine without client keys (a refused configuration) */
    {{"serve", "--listen", "0.0.0.0:0", "--ledger", "off", NULL}, 2, "refusing to listen on 0.0.0.0:0 without client keys"},
    /* ... and the rules are refused before anything starts, as --check-config refuses them */
    {{"serve", "--listen", "127.0.0.1:0", "--ledger", "off", "--routing-rules", "[{\"name\": \"a\", \"route\": \"gtp4\"}]", NULL},
     2, "routing.rules[0] \"a\": route: unknown route \"gtp4\""},
    {{"frobnicate", NULL}, 2, "unknown subcommand"},
};

static void test_exit_statuses(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(exit_cases) / sizeof(exit_cases[0]); i++) {
        const exit_case *c = &exit_cases[i];
        char *out;
        int rc = run_junction(c->args, &out);
        if (rc != c->status || !strstr(out, c->expect))
            fprintf(stderr, "case %zu (%s): got %d: %s\n", i, c->args[0] ? c->args[0] : "", rc, out);
        assert_int_equal(rc, c->status);
        assert_non_null(strstr(out, c->expect));
        free(out);
    }
}

/* Generation that fills the context ends like -n does: finish reason length. */
static void test_generate_stops_at_full_context(void **state)
{
    (void)state;
    const char *args[] = {"generate", "-m", MODELS "stories260K.gguf", "-c", "12", "-p", "Once upon a time",
                          "-n", "100", "--temp", "0", "-t", "1", NULL};
    char *out;
    int rc = run_junction(args, &out);
    if (rc != 0) fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "finish: length (the context is full"));
    assert_non_null(strstr(out, "generation: "));
    free(out);
    const char *too_long[] = {"generate", "-m", MODELS "stories260K.gguf", "-c", "2", "-p", "Once upon a time", NULL};
    assert_int_equal(run_junction(too_long, &out), 2);
    assert_non_null(strstr(out, "the context holds 2; shorten it, or give a larger -c"));
    free(out);
}

/* -t counts wherever it stands, also after --membw (which used to measure
 * at once, ignoring what followed): a bad -t after it is now refused before
 * anything is measured. */
static void test_bench_membw_reads_threads_after(void **state)
{
    (void)state;
    const char *args[] = {"bench", "--membw", "-t", "0", NULL};
    char *out;
    assert_int_equal(run_junction(args, &out), 2);
    assert_non_null(strstr(out, "-t: expected a number from 1 to 1024, got '0'"));
    assert_null(strstr(out, "memory read bandwidth"));
    free(out);
}

int main(void)
{
    write_temp_file(garbage_model, "GGUF but not really: a text file where a model should be\n");
    enum { N_BAD = sizeof(bad_configs) / sizeof(bad_configs[0]) };
    enum { N_CHECK = sizeof(check_cases) / sizeof(check_cases[0]) };
    struct CMUnitTest tests[N_BAD + N_CHECK + 12];
    size_t n = 0;
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_version_names_kernels),
        cmocka_unit_test(test_help_lists_subcommands),
        cmocka_unit_test(test_unknown_subcommand),
        cmocka_unit_test(test_check_config_prints_effective_settings),
        cmocka_unit_test(test_missing_config_file),
        cmocka_unit_test(test_upstream_key_env_unset),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_check_config_reports_masked),
        cmocka_unit_test(test_check_config_protected_mode_reads_keys),
        cmocka_unit_test(test_exit_statuses),
        cmocka_unit_test(test_generate_stops_at_full_context),
        cmocka_unit_test(test_bench_membw_reads_threads_after),
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) tests[n++] = fixed[i];
    for (size_t i = 0; i < N_BAD; i++) {
        struct CMUnitTest t = cmocka_unit_test_prestate(test_bad_config, (void *)&bad_configs[i]);
        t.name = bad_configs[i].name;
        tests[n++] = t;
    }
    for (size_t i = 0; i < N_CHECK; i++) {
        struct CMUnitTest t = cmocka_unit_test_prestate(test_check_config_refuses, (void *)&check_cases[i]);
        t.name = check_cases[i].name;
        tests[n++] = t;
    }
    int failed = _cmocka_run_group_tests("cli", tests, n, NULL, NULL);
    unlink(garbage_model);
    return failed;
}
