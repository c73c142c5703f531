/* test_api.c: the HTTP API of the real daemon, over loopback.
 *
 * One table holds every bad request the gateway must reject, with the status
 * and OpenAI-style error it must answer; each row is its own test case.
 */
#include "testlib.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

static test_daemon daemon_;

typedef struct {
    const char *name;
    const char *method, *path, *body;
    long status;
    const char *type;      /* error.type */
    const char *param;     /* error.param, NULL for JSON null */
    const char *code;      /* error.code */
    const char *allow;     /* expected Allow header, or NULL */
} bad_request;

#define CHAT "/v1/chat/completions"
#define IRE "invalid_request_error"
#define USER_HI "{\"role\":\"user\",\"content\":\"hi\"}"
#define WITH(field) "{\"messages\":[" USER_HI "]," field "}"

static const bad_request bad_requests[] = {
    {"malformed_json", "POST", CHAT, "{\"messages\": [", 400, IRE, NULL, "invalid_json", NULL},
    {"empty_body", "POST", CHAT, "", 400, IRE, NULL, "invalid_json", NULL},
    {"body_not_object", "POST", CHAT, "[1,2]", 400, IRE, NULL, "invalid_type", NULL},
    {"missing_messages", "POST", CHAT, "{\"model\":\"local\"}", 400, IRE, "messages", "missing_required_parameter", NULL},
    {"messages_not_array", "POST", CHAT, "{\"messages\":\"hi\"}", 400, IRE, "messages", "invalid_type", NULL},
    {"messages_null", "POST", CHAT, "{\"messages\":null}", 400, IRE, "messages", "invalid_type", NULL},
    {"messages_empty", "POST", CHAT, "{\"messages\":[]}", 400, IRE, "messages", "empty_array", NULL},
    {"message_not_object", "POST", CHAT, "{\"messages\":[\"hi\"]}", 400, IRE, "messages[0]", "invalid_type", NULL},
    {"unknown_role", "POST", CHAT, "{\"messages\":[{\"role\":\"wizard\",\"content\":\"hi\"}]}", 400, IRE, "messages[0].role", "invalid_value", NULL},
    {"missing_role", "POST", CHAT, "{\"messages\":[{\"content\":\"hi\"}]}", 400, IRE, "messages[0].role", "missing_required_parameter", NULL},
    {"role_not_string", "POST", CHAT, "{\"messages\":[{\"role\":1,\"content\":\"hi\"}]}", 400, IRE, "messages[0].role", "invalid_type", NULL},
    {"empty_content", "POST", CHAT, "{\"messages\":[" USER_HI ",{\"role\":\"user\",\"content\":\"\"}]}", 400, IRE, "messages[1].content", "empty_string", NULL},
    {"missing_content", "POST", CHAT, "{\"messages\":[{\"role\":\"user\"}]}", 400, IRE, "messages[0].content", "missing_required_parameter", NULL},
    {"content_wrong_type", "POST", CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":42}]}", 400, IRE, "messages[0].content", "invalid_type", NULL},
    {"content_parts_empty", "POST", CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[]}]}", 400, IRE, "messages[0].content", "empty_array", NULL},
    {"content_part_type_not_string", "POST", CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":5}]}]}", 400, IRE, "messages[0].content[0].type", "invalid_type", NULL},
    {"content_part_empty_text", "POST", CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"\"}]}]}", 400, IRE, "messages[0].content[0].text", "empty_string", NULL},
    {"tool_without_call_id", "POST", CHAT, "{\"messages\":[" USER_HI ",{\"role\":\"tool\",\"content\":\"42\"}]}", 400, IRE, "messages[1].tool_call_id", "invalid_type", NULL},
    {"name_not_string", "POST", CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\",\"name\":5}]}", 400, IRE, "messages[0].name", "invalid_type", NULL},
    {"logit_bias_bad_key", "POST", CHAT, WITH("\"logit_bias\":{\"x\":1}"), 400, IRE, "logit_bias.x", "invalid_value", NULL},
    {"logit_bias_too_big", "POST", CHAT, WITH("\"logit_bias\":{\"7\":101}"), 400, IRE, "logit_bias.7", "decimal_above_max_value", NULL},
    {"tools_not_array", "POST", CHAT, WITH("\"tools\":{}"), 400, IRE, "tools", "invalid_type", NULL},
    {"tool_choice_number", "POST", CHAT, WITH("\"tool_choice\":1"), 400, IRE, "tool_choice", "invalid_type", NULL},
    /* fields junction does not read pass validation (an upstream may know them): no backend here */
    {"unknown_parameter_passes", "POST", CHAT, WITH("\"temprature\":1"), 503, "server_error", NULL, "no_backend", NULL},
    {"unknown_message_key_passes", "POST", CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\",\"mood\":\"x\"}]}", 503, "server_error", NULL, "no_backend", NULL},
    {"image_part_passes", "POST", CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}", 503, "server_error", NULL, "no_backend", NULL},
    {"max_tokens_zero", "POST", CHAT, WITH("\"max_tokens\":0"), 400, IRE, "max_tokens", "integer_below_min_value", NULL},
    {"max_tokens_fraction", "POST", CHAT, WITH("\"max_tokens\":1.5"), 400, IRE, "max_tokens", "invalid_type", NULL},
    {"max_tokens_string", "POST", CHAT, WITH("\"max_tokens\":\"10\""), 400, IRE, "max_tokens", "invalid_type", NULL},
    {"max_tokens_huge", "POST", CHAT, WITH("\"max_tokens\":1e12"), 400, IRE, "max_tokens", "integer_above_max_value", NULL},
    {"temperature_high", "POST", CHAT, WITH("\"temperature\":2.5"), 400, IRE, "temperature", "decimal_above_max_value", NULL},
    {"temperature_negative", "POST", CHAT, WITH("\"temperature\":-0.1"), 400, IRE, "temperature", "decimal_below_min_value", NULL},
    {"temperature_string", "POST", CHAT, WITH("\"temperature\":\"hot\""), 400, IRE, "temperature", "invalid_type", NULL},
    {"top_p_high", "POST", CHAT, WITH("\"top_p\":1.01"), 400, IRE, "top_p", "decimal_above_max_value", NULL},
    {"top_p_negative", "POST", CHAT, WITH("\"top_p\":-1"), 400, IRE, "top_p", "decimal_below_min_value", NULL},
    {"n_zero", "POST", CHAT, WITH("\"n\":0"), 400, IRE, "n", "integer_below_min_value", NULL},
    {"n_too_many", "POST", CHAT, WITH("\"n\":129"), 400, IRE, "n", "integer_above_max_value", NULL},
    {"stream_not_bool", "POST", CHAT, WITH("\"stream\":\"yes\""), 400, IRE, "stream", "invalid_type", NULL},
    {"stream_number", "POST", CHAT, WITH("\"stream\":1"), 400, IRE, "stream", "invalid_type", NULL},
    {"stream_options_without_stream", "POST", CHAT, WITH("\"stream_options\":{\"include_usage\":true}"), 400, IRE, "stream_options", "invalid_value", NULL},
    {"stop_too_many", "POST", CHAT, WITH("\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]"), 400, IRE, "stop", "array_above_max_length", NULL},
    {"stop_wrong_type", "POST", CHAT, WITH("\"stop\":7"), 400, IRE, "stop", "invalid_type", NULL},
    {"presence_penalty_high", "POST", CHAT, WITH("\"presence_penalty\":3"), 400, IRE, "presence_penalty", "decimal_above_max_value", NULL},
    {"frequency_penalty_low", "POST", CHAT, WITH("\"frequency_penalty\":-2.5"), 400, IRE, "frequency_penalty", "decimal_below_min_value", NULL},
    {"top_logprobs_high", "POST", CHAT, WITH("\"top_logprobs\":21"), 400, IRE, "top_logprobs", "integer_above_max_value", NULL},
    {"model_not_string", "POST", CHAT, WITH("\"model\":5"), 400, IRE, "model", "invalid_type", NULL},
    {"get_on_chat", "GET", CHAT, NULL, 405, IRE, NULL, "method_not_allowed", "POST"},
    {"put_on_chat", "PUT", CHAT, "{}", 405, IRE, NULL, "method_not_allowed", "POST"},
    {"post_on_healthz", "POST", "/healthz", "{}", 405, IRE, NULL, "method_not_allowed", "GET, HEAD"},
    {"delete_on_models", "DELETE", "/v1/models", NULL, 405, IRE, NULL, "method_not_allowed", "GET"},
    {"unknown_path", "GET", "/v2/chat", NULL, 404, IRE, NULL, "unknown_url", NULL},
    {"unknown_path_post", "POST", "/v1/chat/completions/extra", "{}", 404, IRE, NULL, "unknown_url", NULL},
    {"completions_missing_prompt", "POST", "/v1/completions", "{\"model\":\"local\"}", 400, IRE, "prompt", "missing_required_parameter", NULL},
    {"completions_best_of", "POST", "/v1/completions", "{\"prompt\":\"x\",\"best_of\":2}", 400, IRE, "best_of", "integer_above_max_value", NULL},
    {"completions_get", "GET", "/v1/completions", NULL, 405, IRE, NULL, "method_not_allowed", "POST"},
    {"completions_without_model", "POST", "/v1/completions", "{\"prompt\":\"x\"}", 503, "server_error", NULL, "no_backend", NULL},
    /* Well-formed requests reach the backend choice; with none configured: 503. */
    {"valid_without_backend", "POST", CHAT, WITH("\"model\":\"local\",\"max_tokens\":16,\"temperature\":0.7,\"stream\":false"), 503, "server_error", NULL, "no_backend", NULL},
    {"nulls_mean_unset", "POST", CHAT, WITH("\"temperature\":null,\"max_tokens\":null,\"stop\":null"), 503, "server_error", NULL, "no_backend", NULL},
    {"assistant_tool_call_without_content", "POST", CHAT, "{\"messages\":[" USER_HI ",{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[]},{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"ok\"}]}", 503, "server_error", NULL, "no_backend", NULL},
    {"streaming_with_options", "POST", CHAT, WITH("\"stream\":true,\"stream_options\":{\"include_usage\":true},\"stop\":[\"\\n\"]"), 503, "server_error", NULL, "no_backend", NULL},
};

/* Assert `r` is an OpenAI-style error with exactly these fields. */
static void assert_error_body(const http_response *r, const char *type, const char *param, const char *code)
{
    cJSON *root = cJSON_Parse(r->body);
    assert_non_null(root);
    cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
    assert_true(cJSON_IsObject(err));
    assert_int_equal(cJSON_GetArraySize(err), 4);
    cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
    assert_true(cJSON_IsString(msg));
    assert_true(strlen(msg->valuestring) > 10);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(err, "type")->valuestring, type);
    cJSON *p = cJSON_GetObjectItemCaseSensitive(err, "param");
    if (param) assert_string_equal(p->valuestring, param);
    else assert_true(cJSON_IsNull(p));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(err, "code")->valuestring, code);
    cJSON_Delete(root);
}

static void test_bad_request(void **state)
{
    const bad_request *c = *state;
    char url[256], buf[128];
    snprintf(url, sizeof(url), "%s%s", daemon_.url, c->path);
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    http_response r;
    assert_int_equal(http_request(c->method, url, c->body, c->body ? strlen(c->body) : 0, hdrs, &r), 0);
    if (r.status != c->status) fprintf(stderr, "%s: got %ld: %s\n", c->name, r.status, r.body);
    assert_int_equal(r.status, c->status);
    assert_string_equal(http_header(&r, "Content-Type", buf, sizeof(buf)), "application/json");
    assert_non_null(http_header(&r, "X-Request-Id", buf, sizeof(buf)));
    assert_error_body(&r, c->type, c->param, c->code);
    if (c->allow) assert_string_equal(http_header(&r, "Allow", buf, sizeof(buf)), c->allow);
    http_response_free(&r);
}

static void test_body_over_limit(void **state)
{
    (void)state;
    size_t n = 1024 * 1024 + 32 * 1024; /* over the default 1 MiB limit, within what is read for a JSON 413 */
    char *body = malloc(n);
    assert_non_null(body);
    memset(body, ' ', n);
    char url[128];
    snprintf(url, sizeof(url), "%s" CHAT, daemon_.url);
    http_response r;
    assert_int_equal(http_request("POST", url, body, n, NULL, &r), 0);
    assert_int_equal(r.status, 413);
    assert_error_body(&r, IRE, NULL, "request_too_large");
    http_response_free(&r);
    free(body);
}

static void test_healthz(void **state)
{
    (void)state;
    char url[128];
    http_response r;
    snprintf(url, sizeof(url), "%s/healthz", daemon_.url);
    assert_int_equal(http_request("GET", url, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    http_response_free(&r);
    assert_int_equal(http_request("HEAD", url, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    http_response_free(&r);
}

static void test_readyz(void **state)
{
    (void)state;
    char url[128];
    http_response r;
    snprintf(url, sizeof(url), "%s/readyz", daemon_.url);
    assert_int_equal(http_request("GET", url, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    cJSON *root = cJSON_Parse(r.body);
    assert_string_equal(cJSON_GetObjectItem(root, "status")->valuestring, "ready");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "checks"), "accepting")));
    cJSON_Delete(root);
    http_response_free(&r);
}

static void test_models_lists_nothing_without_backends(void **state)
{
    (void)state;
    char url[128];
    http_response r;
    snprintf(url, sizeof(url), "%s/v1/models", daemon_.url);
    assert_int_equal(http_request("GET", url, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    cJSON *root = cJSON_Parse(r.body);
    assert_string_equal(cJSON_GetObjectItem(root, "object")->valuestring, "list");
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(root, "data")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(root, "data")), 0);
    cJSON_Delete(root);
    http_response_free(&r);
}

static void test_request_id_echoed_when_sane(void **state)
{
    (void)state;
    char url[128], buf[256];
    http_response r;
    snprintf(url, sizeof(url), "%s/healthz", daemon_.url);
    const char *sane[] = {"X-Request-Id: client-id_42.a:b", NULL};
    assert_int_equal(http_request("GET", url, NULL, 0, sane, &r), 0);
    assert_string_equal(http_header(&r, "X-Request-Id", buf, sizeof(buf)), "client-id_42.a:b");
    http_response_free(&r);
}

static unsigned long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
}

static void test_request_id_generated_when_insane(void **state)
{
    (void)state;
    char url[128], buf[256], long_id[200], hdr[256];
    memset(long_id, 'a', 150);
    long_id[150] = '\0';
    snprintf(url, sizeof(url), "%s/healthz", daemon_.url);
    snprintf(hdr, sizeof(hdr), "X-Request-Id: %s", long_id);
    const char *cases[][2] = {{"X-Request-Id: has spaces <script>", NULL}, {hdr, NULL}, {NULL, NULL}};
    char seen[3][64];
    unsigned long long before = wall_ms(), prefix[3];
    for (int i = 0; i < 3; i++) {
        http_response r;
        assert_int_equal(http_request("GET", url, NULL, 0, cases[i][0] ? cases[i] : NULL, &r), 0);
        const char *id = http_header(&r, "X-Request-Id", buf, sizeof(buf));
        assert_non_null(id);
        assert_int_equal(strlen(id), 32);
        assert_int_equal(strspn(id, "0123456789abcdef"), 32);
        snprintf(seen[i], sizeof(seen[i]), "%s", id);
        char ms[13];
        memcpy(ms, id, 12);
        ms[12] = '\0';
        prefix[i] = strtoull(ms, NULL, 16);
        http_response_free(&r);
    }
    unsigned long long after = wall_ms();
    assert_string_not_equal(seen[0], seen[1]);
    assert_string_not_equal(seen[1], seen[2]);
    /* time-ordered (docs/ledger.md): the first 12 hex digits are the Unix
     * milliseconds the request arrived at, so ids sort by arrival */
    for (int i = 0; i < 3; i++) {
        assert_true(prefix[i] >= before && prefix[i] <= after);
        if (i > 0) assert_true(prefix[i] >= prefix[i - 1]);
    }
}

/* One access-log line per request, with its id, and never the body. */
static void test_access_log_line_without_body(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof(url), "%s" CHAT, daemon_.url);
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"SECRET-PROMPT-7731\"}],\"n\":0}";
    const char *hdrs[] = {"X-Request-Id: log-probe-1", NULL};
    http_response r;
    assert_int_equal(http_request("POST", url, body, strlen(body), hdrs, &r), 0);
    assert_int_equal(r.status, 400);
    http_response_free(&r);
    char *log = daemon_log_wait(&daemon_, "id=log-probe-1 ", 1.0);
    assert_non_null(log);
    const char *line = strstr(log, "id=log-probe-1 ");
    assert_non_null(line);
    assert_non_null(strstr(line, "method=POST path=/v1/chat/completions status=400 bytes="));
    assert_non_null(strstr(line, "latency_ms="));
    assert_null(strstr(log, "SECRET-PROMPT-7731"));
    free(log);
}

/* HTTP/1.1 keep-alive: several requests on one connection. */
static void test_keep_alive(void **state)
{
    (void)state;
    int fd = tcp_connect(daemon_.port);
    assert_true(fd >= 0);
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tcp_send_all(fd, req, strlen(req)), 0);
        char got[512];
        size_t have = 0;
        double deadline = now_seconds() + 5;
        while (!strstr(got, "{\"status\":\"ok\"}") && now_seconds() < deadline) {
            ssize_t n = read(fd, got + have, sizeof(got) - 1 - have);
            assert_true(n > 0);
            have += (size_t)n;
            got[have] = '\0';
        }
        assert_non_null(strstr(got, "HTTP/1.1 200 OK"));
    }
    close(fd);
}

static int start_daemon(void **state)
{
    (void)state;
    return daemon_start(&daemon_, NULL, NULL);
}

static int stop_daemon(void **state)
{
    (void)state;
    kill(daemon_.pid, SIGTERM);
    int rc = daemon_wait(&daemon_, 10);
    daemon_cleanup(&daemon_);
    return rc == 0 ? 0 : -1;
}

int main(void)
{
    enum { N_BAD = sizeof(bad_requests) / sizeof(bad_requests[0]) };
    struct CMUnitTest tests[N_BAD + 9];
    size_t n = 0;
    for (size_t i = 0; i < N_BAD; i++) {
        struct CMUnitTest t = cmocka_unit_test_prestate(test_bad_request, (void *)&bad_requests[i]);
        t.name = bad_requests[i].name;
        tests[n++] = t;
    }
    const struct CMUnitTest others[] = {
        cmocka_unit_test(test_body_over_limit),
        cmocka_unit_test(test_healthz),
        cmocka_unit_test(test_readyz),
        cmocka_unit_test(test_models_lists_nothing_without_backends),
        cmocka_unit_test(test_request_id_echoed_when_sane),
        cmocka_unit_test(test_request_id_generated_when_insane),
        cmocka_unit_test(test_access_log_line_without_body),
        cmocka_unit_test(test_keep_alive),
    };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) tests[n++] = others[i];
    return _cmocka_run_group_tests("api", tests, n, start_daemon, stop_daemon);
}
