/* test_upstream.c: forwarding to upstream APIs through the real daemon and
 * the fake frontier: both providers, streamed and whole, every fault, the
 * retries, the circuit breaker, cancellation, and keys kept secret. */
#include "testlib.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#define GOOD_KEY "sk-test-correct-key-123456"
#define WRONG_KEY "sk-wrong-key-SECRET-98765"

static test_fake fake;
static test_daemon daemon_;
static char config_path[64];

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static int setup(void **state)
{
    (void)state;
    const char *fake_env[] = {"FAKE_EXPECT_KEY=" GOOD_KEY, NULL};
    if (fake_start(&fake, fake_env) != 0) return -1;
    char cfg[4096];
    int p = fake.port;
    snprintf(cfg, sizeof(cfg),
             "{\"upstreams\": [\n"
             " {\"name\":\"frontier\",\"provider\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/v1/\",\"model\":\"gpt-fake\","
             "  \"api_key_env\":\"JT_OPENAI_KEY\",\"headers\":{\"X-Custom\":\"yes\"},\"max_retries\":2,\"breaker_failures\":1000,\"zone\":\"external\","
             "  \"price_input_per_mtok\":2.5,\"price_output_per_mtok\":10},\n"
             " {\"name\":\"claude\",\"provider\":\"anthropic\",\"base_url\":\"http://127.0.0.1:%d/v1\",\"model\":\"claude-fake\","
             "  \"api_key_env\":\"JT_ANTHROPIC_KEY\",\"max_retries\":2,\"breaker_failures\":1000},\n"
             " {\"name\":\"strict\",\"provider\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/v1\",\"api_key_env\":\"JT_OPENAI_KEY\","
             "  \"max_retries\":0,\"first_byte_timeout_s\":0.5,\"idle_timeout_s\":0.5,\"breaker_failures\":1000},\n"
             " {\"name\":\"fragile\",\"provider\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/v1\",\"api_key_env\":\"JT_OPENAI_KEY\","
             "  \"max_retries\":0,\"breaker_failures\":2,\"breaker_cooldown_s\":1},\n"
             " {\"name\":\"nowhere\",\"provider\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/v1\",\"max_retries\":1,\"connect_timeout_s\":1},\n"
             " {\"name\":\"azure\",\"provider\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/v1\",\"api_key_env\":\"JT_OPENAI_KEY\",\"api_key_header\":\"api-key\"},\n"
             " {\"name\":\"badkey\",\"provider\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/v1\",\"api_key_env\":\"JT_WRONG_KEY\",\"max_retries\":0,\"zone\":\"private\"}\n"
             "]}\n", p, p, p, p, closed_port(), p, p);
    write_temp_file(config_path, cfg);
    const char *args[] = {"--config", config_path, "--log-level", "debug", NULL};
    const char *env[] = {"JT_OPENAI_KEY=" GOOD_KEY, "JT_ANTHROPIC_KEY=" GOOD_KEY, "JT_WRONG_KEY=" WRONG_KEY, NULL};
    return daemon_start(&daemon_, args, env);
}

static int teardown(void **state)
{
    (void)state;
    kill(daemon_.pid, SIGTERM);
    int rc = daemon_wait(&daemon_, 10);
    /* The keys never reach the log. */
    char *log = daemon_log(&daemon_);
    int leaked = log && (strstr(log, GOOD_KEY) || strstr(log, WRONG_KEY));
    if (leaked) fprintf(stderr, "an API key appeared in the daemon's log\n");
    if (rc != 0 && log) fprintf(stderr, "daemon exit %d; its log:\n%s\n", rc, log);
    free(log);
    daemon_cleanup(&daemon_);
    fake_stop(&fake);
    unlink(config_path);
    return rc == 0 && !leaked ? 0 : -1;
}

static cJSON *chat(const char *model, const char *prompt, const char *extra, long *status, http_response *raw)
{
    char body[2048];
    snprintf(body, sizeof(body),
             "{\"model\":\"%s\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
             "{\"role\":\"user\",\"content\":\"%s\"}]%s%s}", model, prompt, extra ? "," : "", extra ? extra : "");
    cJSON *j = http_post_json(daemon_.url, "/v1/chat/completions", body, status, raw);
    assert_int_not_equal(*status, 0);
    return j;
}

static const char *error_code(const cJSON *j)
{
    const cJSON *c = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "code");
    return cJSON_IsString(c) ? c->valuestring : "";
}

/* Split an SSE body strictly: every event is "data: X\n\n". Returns the
 * payloads (heap array of heap strings) and their count. */
static int sse_events(const char *body, char ***out)
{
    int n = 0;
    char **ev = calloc(1024, sizeof(char *));
    const char *p = body;
    while (*p && n < 1024) {
        assert_int_equal(strncmp(p, "data: ", 6), 0);
        const char *end = strstr(p, "\n\n");
        assert_non_null(end);
        ev[n++] = strndup(p + 6, (size_t)(end - p - 6));
        p = end + 2;
    }
    *out = ev;
    return n;
}

static void free_events(char **ev, int n)
{
    for (int i = 0; i < n; i++) free(ev[i]);
    free(ev);
}

/* ---- happy paths ---- */

static void test_openai_whole(void **state)
{
    (void)state;
    long status;
    cJSON *j = chat("frontier", "whole openai one", "\"max_tokens\":50,\"temperature\":0.3", &status, NULL);
    assert_int_equal(status, 200);
    assert_string_equal(cJSON_GetObjectItem(j, "object")->valuestring, "chat.completion");
    const cJSON *msg = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "message");
    assert_string_equal(cJSON_GetObjectItem(msg, "content")->valuestring, "Hello from the fake openai! You said: whole openai one");
    const cJSON *u = cJSON_GetObjectItem(j, "usage");
    assert_int_equal(cJSON_GetObjectItem(u, "prompt_tokens")->valueint, 5);      /* "Be brief." + 3 words */
    assert_int_equal(cJSON_GetObjectItem(u, "completion_tokens")->valueint, 10);
    cJSON_Delete(j);
    /* What went upstream: the mapped model, the key, the extra header, the parameters. */
    char *rec = fake_record(&fake);
    const char *line = strstr(rec, "whole openai one");
    assert_non_null(line);
    while (line > rec && line[-1] != '\n') line--;
    cJSON *r = cJSON_ParseWithLength(line, strcspn(line, "\n"));
    assert_string_equal(cJSON_GetObjectItem(r, "Authorization")->valuestring, "Bearer " GOOD_KEY);
    assert_string_equal(cJSON_GetObjectItem(r, "X-Custom")->valuestring, "yes");
    assert_string_equal(cJSON_GetObjectItem(r, "path")->valuestring, "/v1/chat/completions");
    const cJSON *b = cJSON_GetObjectItem(r, "body");
    assert_string_equal(cJSON_GetObjectItem(b, "model")->valuestring, "gpt-fake");
    assert_int_equal(cJSON_GetObjectItem(b, "max_tokens")->valueint, 50);
    cJSON_Delete(r);
    free(rec);
}

static void check_stream(const char *model, const char *prompt, const char *provider_word)
{
    long status;
    http_response raw;
    cJSON *j = chat(model, prompt, "\"stream\":true,\"stream_options\":{\"include_usage\":true}", &status, &raw);
    cJSON_Delete(j);
    assert_int_equal(status, 200);
    char ct[64];
    assert_string_equal(http_header(&raw, "Content-Type", ct, sizeof(ct)), "text/event-stream");
    char **ev;
    int n = sse_events(raw.body, &ev);
    assert_true(n >= 4);
    assert_string_equal(ev[n - 1], "[DONE]");
    char text[1024] = "";
    const char *finish = NULL;
    cJSON *usage = NULL;
    for (int i = 0; i < n - 1; i++) {
        cJSON *c = cJSON_Parse(ev[i]);
        assert_non_null(c);
        assert_string_equal(cJSON_GetObjectItem(c, "object")->valuestring, "chat.completion.chunk");
        const cJSON *choices = cJSON_GetObjectItem(c, "choices");
        if (cJSON_GetArraySize(choices) == 0) {
            assert_int_equal(i, n - 2); /* the usage chunk comes last */
            usage = cJSON_Duplicate(cJSON_GetObjectItem(c, "usage"), 1);
        } else {
            const cJSON *ch = cJSON_GetArrayItem(choices, 0);
            const cJSON *content = cJSON_GetObjectItem(cJSON_GetObjectItem(ch, "delta"), "content");
            if (cJSON_IsString(content)) strcat(text, content->valuestring);
            if (cJSON_IsString(cJSON_GetObjectItem(ch, "finish_reason"))) finish = "stop";
        }
        cJSON_Delete(c);
    }
    char expect[512];
    snprintf(expect, sizeof(expect), "Hello from the fake %s! You said: %s", provider_word, prompt);
    assert_string_equal(text, expect);
    assert_non_null(finish);
    assert_non_null(usage);
    assert_int_equal(cJSON_GetObjectItem(usage, "prompt_tokens")->valueint, 2 + 3);
    assert_int_equal(cJSON_GetObjectItem(usage, "completion_tokens")->valueint, 10);
    assert_int_equal(cJSON_GetObjectItem(usage, "total_tokens")->valueint, 15);
    cJSON_Delete(usage);
    free_events(ev, n);
    http_response_free(&raw);
}

static void test_openai_stream(void **s) { (void)s; check_stream("frontier", "stream openai two", "openai"); }
static void test_anthropic_stream(void **s) { (void)s; check_stream("claude", "stream anthropic three", "anthropic"); }

/* An upstream stream without token counts: junction estimates, and says so. */
static void test_stream_usage_estimated(void **state)
{
    (void)state;
    long status;
    http_response raw;
    cJSON *j = chat("frontier", "count it yourself #fault:nousage", "\"stream\":true,\"stream_options\":{\"include_usage\":true}", &status, &raw);
    cJSON_Delete(j);
    assert_int_equal(status, 200);
    char **ev;
    int n = sse_events(raw.body, &ev);
    assert_string_equal(ev[n - 1], "[DONE]");
    cJSON *c = cJSON_Parse(ev[n - 2]);
    const cJSON *u = cJSON_GetObjectItem(c, "usage");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(u, "estimated")));
    /* "Hello from the fake openai! You said: count it yourself #fault:nousage" is 70 bytes */
    assert_int_equal(cJSON_GetObjectItem(u, "completion_tokens")->valueint, (70 + 3) / 4);
    cJSON_Delete(c);
    free_events(ev, n);
    http_response_free(&raw);
}

static void test_anthropic_whole(void **state)
{
    (void)state;
    long status;
    cJSON *j = chat("claude", "whole anthropic four", "\"stop\":\"END\",\"temperature\":0.5", &status, NULL);
    assert_int_equal(status, 200);
    assert_string_equal(cJSON_GetObjectItem(j, "object")->valuestring, "chat.completion");
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(ch, "message"), "content")->valuestring,
                        "Hello from the fake anthropic! You said: whole anthropic four");
    assert_string_equal(cJSON_GetObjectItem(ch, "finish_reason")->valuestring, "stop");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "usage"), "total_tokens")->valueint, 5 + 10);
    cJSON_Delete(j);
    /* The translated request: system apart, max_tokens filled in, stop -> stop_sequences, key header. */
    char *rec = fake_record(&fake);
    const char *line = strstr(rec, "whole anthropic four");
    while (line > rec && line[-1] != '\n') line--;
    cJSON *r = cJSON_ParseWithLength(line, strcspn(line, "\n"));
    assert_string_equal(cJSON_GetObjectItem(r, "path")->valuestring, "/v1/messages");
    assert_string_equal(cJSON_GetObjectItem(r, "x-api-key")->valuestring, GOOD_KEY);
    assert_string_equal(cJSON_GetObjectItem(r, "anthropic-version")->valuestring, "2023-06-01");
    assert_null(cJSON_GetObjectItem(r, "Authorization"));
    const cJSON *b = cJSON_GetObjectItem(r, "body");
    assert_string_equal(cJSON_GetObjectItem(b, "model")->valuestring, "claude-fake");
    assert_string_equal(cJSON_GetObjectItem(b, "system")->valuestring, "Be brief.");
    assert_int_equal(cJSON_GetObjectItem(b, "max_tokens")->valueint, 4096);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(b, "messages")), 1);
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "stop_sequences"), 0)->valuestring, "END");
    assert_true(cJSON_GetObjectItem(b, "temperature")->valuedouble == 0.5);
    cJSON_Delete(r);
    free(rec);
}

static void test_models_lists_upstreams(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/models", daemon_.url);
    http_response r;
    assert_int_equal(http_request("GET", url, NULL, 0, NULL, &r), 0);
    cJSON *j = cJSON_Parse(r.body);
    const cJSON *data = cJSON_GetObjectItem(j, "data");
    assert_int_equal(cJSON_GetArraySize(data), 7);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(data, 1), "id")->valuestring, "claude");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(data, 1), "owned_by")->valuestring, "anthropic");
    assert_null(strstr(r.body, GOOD_KEY));
    cJSON_Delete(j);
    http_response_free(&r);
    long status;
    cJSON *e = chat("no-such-model", "x", NULL, &status, NULL);
    assert_int_equal(status, 404);
    assert_string_equal(error_code(e), "model_not_found");
    cJSON_Delete(e);
}

/* The key in another header, for Azure-style endpoints. */
static void test_api_key_header(void **state)
{
    (void)state;
    long status;
    cJSON *j = chat("azure", "azure style key", NULL, &status, NULL);
    assert_int_equal(status, 502); /* the fake expects Authorization, so it refuses: upstream_auth_failed */
    cJSON_Delete(j);
    char *rec = fake_record(&fake);
    const char *line = strstr(rec, "azure style key");
    while (line > rec && line[-1] != '\n') line--;
    cJSON *r = cJSON_ParseWithLength(line, strcspn(line, "\n"));
    assert_string_equal(cJSON_GetObjectItem(r, "api-key")->valuestring, GOOD_KEY);
    assert_null(cJSON_GetObjectItem(r, "Authorization"));
    cJSON_Delete(r);
    free(rec);
}

/* ---- faults ---- */

static void test_500_retried_then_502(void **state)
{
    (void)state;
    long status;
    cJSON *j = chat("frontier", "always fails #fault:500", NULL, &status, NULL);
    assert_int_equal(status, 502);
    assert_string_equal(error_code(j), "upstream_error");
    assert_non_null(strstr(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "message")->valuestring, "'frontier'"));
    cJSON_Delete(j);
    assert_int_equal(fake_count(&fake, "always fails #fault:500"), 3); /* 1 + max_retries 2 */
}

static void test_flaky_recovers_by_retrying(void **state)
{
    (void)state;
    long status;
    cJSON *j = chat("claude", "flaky twice #fault:flaky:2", NULL, &status, NULL);
    assert_int_equal(status, 200);
    cJSON_Delete(j);
    assert_int_equal(fake_count(&fake, "flaky twice #fault:flaky:2"), 3);
}

static void test_429_honours_retry_after(void **state)
{
    (void)state;
    long status;
    double t0 = now_seconds();
    cJSON *j = chat("frontier", "rate limited #fault:429", NULL, &status, NULL);
    double took = now_seconds() - t0;
    assert_int_equal(status, 429);
    assert_string_equal(error_code(j), "upstream_rate_limited");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "type")->valuestring, "rate_limit_error");
    cJSON_Delete(j);
    assert_int_equal(fake_count(&fake, "rate limited #fault:429"), 3);
    assert_true(took >= 1.9); /* Retry-After: 1, twice */
}

static void test_first_byte_timeout(void **state)
{
    (void)state;
    long status;
    double t0 = now_seconds();
    cJSON *j = chat("strict", "too slow #fault:delay:3000", NULL, &status, NULL);
    assert_int_equal(status, 504);
    assert_string_equal(error_code(j), "upstream_timeout");
    assert_true(now_seconds() - t0 < 2.5);
    cJSON_Delete(j);
}

static void test_idle_stream_times_out(void **state)
{
    (void)state;
    long status;
    http_response raw;
    cJSON *j = chat("strict", "dripping slowly #fault:drip:2000", "\"stream\":true", &status, &raw);
    cJSON_Delete(j);
    assert_int_equal(status, 200);
    char **ev;
    int n = sse_events(raw.body, &ev);
    cJSON *last = cJSON_Parse(ev[n - 1]);
    assert_string_equal(error_code(last), "upstream_timeout");
    cJSON_Delete(last);
    free_events(ev, n);
    http_response_free(&raw);
}

static void test_drop_mid_stream_ends_with_error_event(void **state)
{
    (void)state;
    long status;
    http_response raw;
    cJSON *j = chat("frontier", "cut me off #fault:drop", "\"stream\":true", &status, &raw);
    cJSON_Delete(j);
    assert_int_equal(status, 200);
    char **ev;
    int n = sse_events(raw.body, &ev);
    assert_true(n >= 2);
    assert_null(strstr(raw.body, "[DONE]"));
    cJSON *last = cJSON_Parse(ev[n - 1]);
    assert_string_equal(error_code(last), "upstream_stream_broken");
    cJSON_Delete(last);
    free_events(ev, n);
    http_response_free(&raw);
    /* Bytes had reached the client: no retry. */
    assert_int_equal(fake_count(&fake, "cut me off #fault:drop"), 1);
}

static void test_drop_before_answer_is_retried(void **state)
{
    (void)state;
    long status;
    cJSON *j = chat("frontier", "dropped whole #fault:drop", NULL, &status, NULL);
    assert_int_equal(status, 502);
    assert_string_equal(error_code(j), "upstream_unreachable");
    cJSON_Delete(j);
    assert_int_equal(fake_count(&fake, "dropped whole #fault:drop"), 3);
}

static void test_malformed_answers(void **state)
{
    (void)state;
    long status;
    cJSON *j = chat("strict", "broken json #fault:badjson", NULL, &status, NULL);
    assert_int_equal(status, 502);
    assert_string_equal(error_code(j), "upstream_malformed_response");
    cJSON_Delete(j);
    j = chat("strict", "huge answer #fault:huge", NULL, &status, NULL);
    assert_int_equal(status, 502);
    assert_string_equal(error_code(j), "upstream_response_too_large");
    cJSON_Delete(j);
    http_response raw;
    j = chat("strict", "broken sse #fault:badsse", "\"stream\":true", &status, &raw);
    cJSON_Delete(j);
    char **ev;
    int n = sse_events(raw.body, &ev);
    cJSON *last = cJSON_Parse(ev[n - 1]);
    assert_string_equal(error_code(last), "upstream_malformed_response");
    cJSON_Delete(last);
    free_events(ev, n);
    http_response_free(&raw);
}

static void test_unreachable_upstream(void **state)
{
    (void)state;
    long status;
    cJSON *j = chat("nowhere", "anyone there", NULL, &status, NULL);
    assert_int_equal(status, 502);
    assert_string_equal(error_code(j), "upstream_unreachable");
    assert_non_null(strstr(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "message")->valuestring, "'nowhere'"));
    cJSON_Delete(j);
}

/* A wrong key: the upstream echoes it; junction must not. */
static void test_key_never_echoed(void **state)
{
    (void)state;
    long status;
    http_response raw;
    cJSON *j = chat("badkey", "who am i", NULL, &status, &raw);
    assert_int_equal(status, 502);
    assert_string_equal(error_code(j), "upstream_auth_failed");
    assert_null(strstr(raw.body, WRONG_KEY));
    assert_null(strstr(raw.body, "SECRET"));
    assert_non_null(strstr(raw.body, "api_key_env"));
    cJSON_Delete(j);
    http_response_free(&raw);
    char *rec = fake_record(&fake);
    assert_non_null(strstr(rec, WRONG_KEY)); /* it did go upstream, where it belongs */
    free(rec);
}

/* Two failures open the circuit; requests then fail fast without reaching
 * the upstream; after the cool-down one probe goes through and closes it. */
static void test_circuit_breaker(void **state)
{
    (void)state;
    long status;
    for (int i = 0; i < 2; i++) {
        cJSON *j = chat("fragile", "breaker trip #fault:500", NULL, &status, NULL);
        assert_int_equal(status, 502);
        cJSON_Delete(j);
    }
    int before = fake_count(&fake, "breaker");
    cJSON *j = chat("fragile", "breaker fast fail", NULL, &status, NULL);
    assert_int_equal(status, 503);
    assert_string_equal(error_code(j), "upstream_circuit_open");
    cJSON_Delete(j);
    assert_int_equal(fake_count(&fake, "breaker"), before);
    usleep(1100 * 1000);
    j = chat("fragile", "breaker probe", NULL, &status, NULL);
    assert_int_equal(status, 200);
    cJSON_Delete(j);
    j = chat("fragile", "breaker closed again", NULL, &status, NULL);
    assert_int_equal(status, 200);
    cJSON_Delete(j);
}

/* A client that hangs up cancels the upstream transfer. */
static void test_client_disconnect_cancels_upstream(void **state)
{
    (void)state;
    int before = fake_count(&fake, "\"closed\"");
    int fd = tcp_connect(daemon_.port);
    const char *body = "{\"model\":\"frontier\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"wait forever #fault:hang\"}]}";
    char req[512];
    snprintf(req, sizeof(req), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
    assert_int_equal(tcp_send_all(fd, req, strlen(req)), 0);
    for (int i = 0; i < 100 && fake_count(&fake, "wait forever") == 0; i++) usleep(20000);
    assert_int_equal(fake_count(&fake, "wait forever"), 1);
    close(fd);
    int after = before;
    for (int i = 0; i < 100 && after == before; i++) {
        usleep(20000);
        after = fake_count(&fake, "\"closed\"");
    }
    assert_int_equal(after, before + 1);
    char *log = daemon_log_wait(&daemon_, "status=499", 1.0);
    assert_non_null(log);
    assert_non_null(strstr(log, "status=499"));
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_whole),
        cmocka_unit_test(test_openai_stream),
        cmocka_unit_test(test_stream_usage_estimated),
        cmocka_unit_test(test_anthropic_whole),
        cmocka_unit_test(test_anthropic_stream),
        cmocka_unit_test(test_models_lists_upstreams),
        cmocka_unit_test(test_api_key_header),
        cmocka_unit_test(test_500_retried_then_502),
        cmocka_unit_test(test_flaky_recovers_by_retrying),
        cmocka_unit_test(test_429_honours_retry_after),
        cmocka_unit_test(test_first_byte_timeout),
        cmocka_unit_test(test_idle_stream_times_out),
        cmocka_unit_test(test_drop_mid_stream_ends_with_error_event),
        cmocka_unit_test(test_drop_before_answer_is_retried),
        cmocka_unit_test(test_malformed_answers),
        cmocka_unit_test(test_unreachable_upstream),
        cmocka_unit_test(test_key_never_echoed),
        cmocka_unit_test(test_circuit_breaker),
        cmocka_unit_test(test_client_disconnect_cancels_upstream),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
