/* test_upstream.c: forwarding to upstream APIs through the real daemon and
 * the fake frontier: both providers, streamed and whole, every fault, the
 * retries, the circuit breaker, cancellation, and keys kept secret; every
 * standard parameter passed through to OpenAI upstreams, upstream 4xx
 * errors with their structure, and Anthropic tool calls both ways; slow,
 * stalled and departing readers, and fast long streams sharing the loop. */
#include "testlib.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <stdint.h>
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
             "{\"max_output_buffer_bytes\": 4096, \"upstreams\": [\n"
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
    char body[4096];
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

/* The body the fake received in the request whose text contains `marker`
 * (the last such request). Caller frees. */
static cJSON *recorded_body(const char *marker)
{
    char *rec = fake_record(&fake);
    assert_non_null(rec);
    const char *line = NULL;
    for (const char *p = strstr(rec, marker); p; p = strstr(p + 1, marker)) line = p;
    assert_non_null(line);
    while (line > rec && line[-1] != '\n') line--;
    cJSON *r = cJSON_ParseWithLength(line, strcspn(line, "\n"));
    assert_non_null(r);
    cJSON *b = cJSON_DetachItemFromObject(r, "body");
    cJSON_Delete(r);
    free(rec);
    assert_non_null(b);
    return b;
}

static const cJSON *error_field(const cJSON *j, const char *key)
{
    return cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), key);
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
    /* junction's own chunk (the "junction" object) comes last, after the upstream's */
    cJSON *note = cJSON_Parse(ev[n - 2]);
    assert_non_null(cJSON_GetObjectItem(note, "junction"));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(note, "choices")), 0);
    cJSON_Delete(note);
    for (int i = 0; i < n - 2; i++) {
        cJSON *c = cJSON_Parse(ev[i]);
        assert_non_null(c);
        assert_string_equal(cJSON_GetObjectItem(c, "object")->valuestring, "chat.completion.chunk");
        const cJSON *choices = cJSON_GetObjectItem(c, "choices");
        if (cJSON_GetArraySize(choices) == 0) {
            assert_int_equal(i, n - 3); /* the usage chunk comes last of the upstream's */
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
    cJSON *c = cJSON_Parse(ev[n - 3]); /* before junction's own last chunk */
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

/* ---- the front door's parameters (issue #9) ---- */

/* Every standard parameter reaches an OpenAI upstream as the client sent it,
 * and a field junction does not know too; only "model" is replaced.
 * (Needs gateway/chat_request.c to let these fields through.) */
#define ALL_PARAMS \
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"d\"," \
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}},\"strict\":true}}]," \
    "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},\"parallel_tool_calls\":false," \
    "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"w\",\"schema\":{\"type\":\"object\"}}}," \
    "\"logit_bias\":{\"50256\":-100,\"11\":2.5},\"reasoning_effort\":\"low\",\"metadata\":{\"team\":\"a\"}," \
    "\"store\":false,\"service_tier\":\"flex\",\"user\":\"user-7\",\"max_completion_tokens\":321," \
    "\"modalities\":[\"text\"],\"prediction\":{\"type\":\"content\",\"content\":\"maybe\"}," \
    "\"web_search_options\":{\"search_context_size\":\"low\"},\"x_vendor_knob\":{\"deep\":[1,null,\"two\"]}"

static void check_passed_through(const char *marker, const char *extra, bool stream)
{
    char sent[4096];
    snprintf(sent, sizeof(sent),
             "{\"model\":\"frontier\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
             "{\"role\":\"user\",\"content\":\"%s\"}],%s}", marker, extra);
    long status;
    http_response raw;
    cJSON *j = http_post_json(daemon_.url, "/v1/chat/completions", sent, &status, &raw);
    if (status != 200) fprintf(stderr, "status %ld: %s\n", status, raw.body);
    assert_int_equal(status, 200);
    cJSON_Delete(j);
    http_response_free(&raw);
    cJSON *got = recorded_body(marker);
    cJSON *want = cJSON_Parse(sent);
    assert_non_null(want);
    cJSON_ReplaceItemInObject(want, "model", cJSON_CreateString("gpt-fake"));
    if (stream) { /* junction asks for the counts it accounts with */
        cJSON *opts = cJSON_GetObjectItem(want, "stream_options");
        if (!opts) opts = cJSON_AddObjectToObject(want, "stream_options");
        cJSON_DeleteItemFromObject(opts, "include_usage");
        cJSON_AddTrueToObject(opts, "include_usage");
    }
    /* each field on its own, so a failure names it */
    for (const cJSON *w = want->child; w; w = w->next) {
        const cJSON *g = cJSON_GetObjectItem(got, w->string);
        if (!g || !cJSON_Compare(w, g, 1)) fail_msg("field '%s' did not arrive unchanged", w->string);
    }
    assert_int_equal(cJSON_GetArraySize(got), cJSON_GetArraySize(want));
    cJSON_Delete(want);
    cJSON_Delete(got);
}

static void test_openai_passes_every_parameter(void **state)
{
    (void)state;
    check_passed_through("pass through whole", ALL_PARAMS, false);
}

static void test_openai_passes_every_parameter_streamed(void **state)
{
    (void)state;
    check_passed_through("pass through streamed", ALL_PARAMS ",\"stream\":true,\"stream_options\":{\"include_usage\":false}", true);
}

/* An upstream's 4xx reaches the client with its own type, code and param. */
static void test_upstream_4xx_keeps_its_structure(void **state)
{
    (void)state;
    long status;
    cJSON *j = chat("frontier", "refuse me #fault:reject", NULL, &status, NULL);
    assert_int_equal(status, 400);
    assert_string_equal(error_field(j, "type")->valuestring, "invalid_request_error");
    assert_string_equal(error_field(j, "code")->valuestring, "invalid_value");
    assert_string_equal(error_field(j, "param")->valuestring, "tools[0].function.name");
    const char *msg = error_field(j, "message")->valuestring;
    assert_non_null(strstr(msg, "'frontier'"));
    assert_non_null(strstr(msg, "the fake refuses this request"));
    cJSON_Delete(j);
    assert_int_equal(fake_count(&fake, "refuse me #fault:reject"), 1); /* a refusal is not retried */
    /* Anthropic's errors have a type only: code and param are null */
    j = chat("claude", "refuse me too #fault:reject", NULL, &status, NULL);
    assert_int_equal(status, 400);
    assert_string_equal(error_field(j, "type")->valuestring, "invalid_request_error");
    assert_true(cJSON_IsNull(error_field(j, "code")));
    assert_true(cJSON_IsNull(error_field(j, "param")));
    assert_non_null(strstr(error_field(j, "message")->valuestring, "'claude'"));
    cJSON_Delete(j);
}

#define WEATHER_TOOL \
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather in a city\"," \
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},\"days\":{\"type\":\"integer\"}}}}}]," \
    "\"tool_choice\":\"required\""

/* Anthropic answers with a tool_use block: the client gets OpenAI tool_calls. */
static void test_anthropic_tool_call_whole(void **state)
{
    (void)state;
    long status;
    cJSON *j = chat("claude", "weather in Paris whole", WEATHER_TOOL, &status, NULL);
    assert_int_equal(status, 200);
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    assert_string_equal(cJSON_GetObjectItem(ch, "finish_reason")->valuestring, "tool_calls");
    const cJSON *call = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(ch, "message"), "tool_calls"), 0);
    assert_string_equal(cJSON_GetObjectItem(call, "id")->valuestring, "toolu_fake1");
    assert_string_equal(cJSON_GetObjectItem(call, "type")->valuestring, "function");
    const cJSON *fn = cJSON_GetObjectItem(call, "function");
    assert_string_equal(cJSON_GetObjectItem(fn, "name")->valuestring, "get_weather");
    cJSON *args = cJSON_Parse(cJSON_GetObjectItem(fn, "arguments")->valuestring);
    assert_string_equal(cJSON_GetObjectItem(args, "city")->valuestring, "Paris");
    assert_int_equal(cJSON_GetObjectItem(args, "days")->valueint, 3);
    cJSON_Delete(args);
    cJSON_Delete(j);
    /* what went upstream: Anthropic's tool definitions and choice */
    cJSON *b = recorded_body("weather in Paris whole");
    const cJSON *tool = cJSON_GetArrayItem(cJSON_GetObjectItem(b, "tools"), 0);
    assert_string_equal(cJSON_GetObjectItem(tool, "name")->valuestring, "get_weather");
    assert_string_equal(cJSON_GetObjectItem(tool, "description")->valuestring, "Weather in a city");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(tool, "input_schema"), "type")->valuestring, "object");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "tool_choice"), "type")->valuestring, "any");
    cJSON_Delete(b);
}

/* The same streamed: a tool_use block and its input_json_delta pieces
 * become tool_calls deltas whose arguments join into the JSON. */
static void test_anthropic_tool_call_streamed(void **state)
{
    (void)state;
    long status;
    http_response raw;
    cJSON *j = chat("claude", "weather in Paris streamed", WEATHER_TOOL ",\"stream\":true", &status, &raw);
    cJSON_Delete(j);
    assert_int_equal(status, 200);
    char **ev;
    int n = sse_events(raw.body, &ev);
    assert_string_equal(ev[n - 1], "[DONE]");
    char args[256] = "", name[64] = "", id[64] = "", finish[32] = "";
    for (int i = 0; i < n - 1; i++) {
        cJSON *c = cJSON_Parse(ev[i]);
        assert_non_null(c);
        const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "choices"), 0);
        const cJSON *f = cJSON_GetObjectItem(ch, "finish_reason");
        if (cJSON_IsString(f)) snprintf(finish, sizeof(finish), "%s", f->valuestring);
        const cJSON *call = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(ch, "delta"), "tool_calls"), 0);
        if (call) {
            assert_int_equal(cJSON_GetObjectItem(call, "index")->valueint, 0);
            const cJSON *fn = cJSON_GetObjectItem(call, "function");
            if (cJSON_GetObjectItem(call, "id")) {
                snprintf(id, sizeof(id), "%s", cJSON_GetObjectItem(call, "id")->valuestring);
                snprintf(name, sizeof(name), "%s", cJSON_GetObjectItem(fn, "name")->valuestring);
            }
            strncat(args, cJSON_GetObjectItem(fn, "arguments")->valuestring, sizeof(args) - strlen(args) - 1);
        }
        cJSON_Delete(c);
    }
    assert_string_equal(id, "toolu_fake1");
    assert_string_equal(name, "get_weather");
    assert_string_equal(args, "{\"city\": \"Paris\", \"days\": 3}");
    assert_string_equal(finish, "tool_calls");
    free_events(ev, n);
    http_response_free(&raw);
}

/* The client's side of a tool round goes to Anthropic as tool_use and
 * tool_result blocks; the answer after it reads the result. */
static void test_anthropic_tool_results_sent(void **state)
{
    (void)state;
    long status;
    const char *body =
        "{\"model\":\"claude\",\"messages\":[{\"role\":\"user\",\"content\":\"weather round trip?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"toolu_fake1\",\"type\":\"function\","
        "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"toolu_fake1\",\"content\":\"sunny 15 C\"}]," WEATHER_TOOL "}";
    cJSON *j = http_post_json(daemon_.url, "/v1/chat/completions", body, &status, NULL);
    assert_int_equal(status, 200);
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(ch, "message"), "content")->valuestring,
                        "Hello from the fake anthropic! You said: sunny 15 C");
    assert_string_equal(cJSON_GetObjectItem(ch, "finish_reason")->valuestring, "stop");
    cJSON_Delete(j);
    cJSON *b = recorded_body("weather round trip?");
    const cJSON *msgs = cJSON_GetObjectItem(b, "messages");
    assert_int_equal(cJSON_GetArraySize(msgs), 3);
    const cJSON *use = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 1), "content"), 0);
    assert_string_equal(cJSON_GetObjectItem(use, "type")->valuestring, "tool_use");
    assert_string_equal(cJSON_GetObjectItem(use, "id")->valuestring, "toolu_fake1");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(use, "input"), "city")->valuestring, "Paris");
    const cJSON *result_turn = cJSON_GetArrayItem(msgs, 2);
    assert_string_equal(cJSON_GetObjectItem(result_turn, "role")->valuestring, "user");
    const cJSON *result = cJSON_GetArrayItem(cJSON_GetObjectItem(result_turn, "content"), 0);
    assert_string_equal(cJSON_GetObjectItem(result, "type")->valuestring, "tool_result");
    assert_string_equal(cJSON_GetObjectItem(result, "tool_use_id")->valuestring, "toolu_fake1");
    assert_string_equal(cJSON_GetObjectItem(result, "content")->valuestring, "sunny 15 C");
    cJSON_Delete(b);
}

/* json_schema has an Anthropic form (output_config.format); json_object
 * has none: a 400 naming the field, and nothing goes upstream. */
static void test_anthropic_response_format(void **state)
{
    (void)state;
    long status;
    cJSON *j = chat("claude", "structured please",
                    "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"r\",\"schema\":"
                    "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}},\"additionalProperties\":false}}}",
                    &status, NULL);
    assert_int_equal(status, 200);
    cJSON_Delete(j);
    cJSON *b = recorded_body("structured please");
    const cJSON *fmt = cJSON_GetObjectItem(cJSON_GetObjectItem(b, "output_config"), "format");
    assert_string_equal(cJSON_GetObjectItem(fmt, "type")->valuestring, "json_schema");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(fmt, "schema"), "type")->valuestring, "object");
    assert_null(cJSON_GetObjectItem(b, "response_format"));
    cJSON_Delete(b);

    j = chat("claude", "json mode please", "\"response_format\":{\"type\":\"json_object\"}", &status, NULL);
    assert_int_equal(status, 400);
    assert_string_equal(error_field(j, "param")->valuestring, "response_format");
    assert_string_equal(error_field(j, "code")->valuestring, "unsupported_parameter");
    assert_non_null(strstr(error_field(j, "message")->valuestring, "json_schema"));
    cJSON_Delete(j);
    assert_int_equal(fake_count(&fake, "json mode please"), 0);
}

/* An upstream without base_url is told so, not told about the scheme. */
static void test_missing_base_url(void **state)
{
    (void)state;
    char path[64];
    write_temp_file(path, "{\"upstreams\": [{\"name\": \"nourl\", \"model\": \"m\"}]}");
    const char *args[] = {"serve", "--config", path, "--check-config", NULL};
    char *out;
    assert_int_equal(run_junction(args, &out), 2);
    assert_non_null(strstr(out, "upstream 'nourl': base_url is required"));
    assert_null(strstr(out, "must start with"));
    free(out);
    unlink(path);
}

/* ---- backpressure ---- */

/* A raw connection whose receive buffer is tiny, so the daemon's output
 * backs up as soon as the client stops reading. */
static int slow_client(const char *model, const char *prompt)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 2048;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)daemon_.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char body[256], req[512];
    snprintf(body, sizeof(body), "{\"model\":\"%s\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
             model, prompt);
    snprintf(req, sizeof(req), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
    assert_int_equal(tcp_send_all(fd, req, strlen(req)), 0);
    return fd;
}

/* A client that reads slowly gets the whole stream, in order: the daemon
 * paused the upstream (its output limit is 4 KiB, and twice that would end
 * the request) and resumed it with nothing lost. */
static void test_slow_reader_gets_everything(void **state)
{
    (void)state;
    enum { WORDS = 3000 };
    int fd = slow_client("frontier", "read me slowly #fault:long:3000");
    size_t cap = 1 << 20, len = 0;
    char *all = malloc(cap);
    double t0 = now_seconds();
    for (;;) {
        if (len + 1024 + 1 > cap) all = realloc(all, cap *= 2);
        ssize_t n = recv(fd, all + len, 1024, 0);
        if (n <= 0) break;
        len += (size_t)n;
        usleep(2000);
        if (now_seconds() - t0 > 60) break;
    }
    close(fd);
    all[len] = '\0';
    assert_non_null(strstr(all, "HTTP/1.1 200"));
    const char *p = all;
    for (int i = 1; i <= WORDS; i++) {
        char want[48];
        snprintf(want, sizeof(want), "\"content\":\"%sw%d\"", i > 1 ? " " : "", i);
        const char *at = strstr(p, want);
        if (!at) fail_msg("word %d missing or out of order", i);
        p = at + strlen(want);
    }
    assert_non_null(strstr(p, "data: [DONE]"));
    free(all);
}

/* A client that stops reading: the paused stream ends after idle_timeout_s
 * (strict: 0.5 s) with too_slow, and the upstream transfer is closed. */
static void test_stalled_reader_ends_too_slow(void **state)
{
    (void)state;
    int before = fake_count(&fake, "\"closed\"");
    int fd = slow_client("strict", "never read me #fault:long:100000"); /* far more than the kernel buffers: the fake cannot finish first */
    int after = before;
    for (int i = 0; i < 500 && after == before; i++) {
        usleep(20000);
        after = fake_count(&fake, "\"closed\"");
    }
    assert_int_equal(after, before + 1);
    char *log = daemon_log_wait(&daemon_, "error=too_slow", 5.0);
    assert_non_null(log);
    assert_non_null(strstr(log, "error=too_slow"));
    free(log);
    close(fd);
}

/* ---- fast long streams share the loop ---- */

/* A daemon with the default output limit (4 MiB, not the 4 KiB above), so
 * that nothing but the relay's own turn-taking interleaves a fast stream
 * with the rest of the loop's work. */
static test_daemon fast_daemon;
static char fast_config[64];

static int fast_setup(void **state)
{
    (void)state;
    char cfg[512];
    snprintf(cfg, sizeof(cfg),
             "{\"upstreams\": [{\"name\":\"frontier\",\"provider\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/v1\","
             "\"model\":\"gpt-fake\",\"api_key_env\":\"JT_OPENAI_KEY\",\"max_retries\":0}]}\n", fake.port);
    write_temp_file(fast_config, cfg);
    const char *args[] = {"--config", fast_config, NULL};
    const char *env[] = {"JT_OPENAI_KEY=" GOOD_KEY, NULL};
    return daemon_start(&fast_daemon, args, env);
}

static int fast_teardown(void **state)
{
    (void)state;
    kill(fast_daemon.pid, SIGTERM);
    int rc = daemon_wait(&fast_daemon, 30);
    if (rc != 0) {
        char *log = daemon_log(&fast_daemon);
        fprintf(stderr, "daemon exit %d; its log:\n%s\n", rc, log ? log : "(unreadable)");
        free(log);
    }
    daemon_cleanup(&fast_daemon);
    unlink(fast_config);
    return rc == 0 ? 0 : -1;
}

/* Send a streamed request for `words` words, as fast as the fake can, with
 * the request id `id`, on a fresh connection. */
static int fast_stream(int words, const char *id)
{
    int fd = tcp_connect(fast_daemon.port);
    assert_true(fd >= 0);
    char body[256], req[512];
    snprintf(body, sizeof(body), "{\"model\":\"frontier\",\"stream\":true,\"messages\":[{\"role\":\"user\","
             "\"content\":\"fast and long #fault:long:%d\"}]}", words);
    snprintf(req, sizeof(req), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
             "X-Request-Id: %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", id, strlen(body), body);
    assert_int_equal(tcp_send_all(fd, req, strlen(req)), 0);
    return fd;
}

/* The value of `key` (a number) in the fake's last record line containing `needle`, or -1. */
static long last_record_number(const char *needle, const char *key)
{
    char *rec = fake_record(&fake);
    assert_non_null(rec);
    const char *line = NULL;
    for (const char *p = strstr(rec, needle); p; p = strstr(p + 1, needle)) line = p;
    long v = -1;
    if (line) {
        while (line > rec && line[-1] != '\n') line--;
        cJSON *j = cJSON_ParseWithLength(line, strcspn(line, "\n"));
        const cJSON *n = cJSON_GetObjectItem(j, key);
        if (cJSON_IsNumber(n)) v = (long)n->valuedouble;
        cJSON_Delete(j);
    }
    free(rec);
    return v;
}

/* A client that reads the first events of a long stream the upstream sends
 * as fast as it can, then hangs up: the daemon notices while the stream is
 * still coming, ends the upstream transfer (the fake had not sent every
 * word when its connection closed) and logs the call as the client leaving,
 * priced at the tokens it delivered. */
static void test_hangup_mid_fast_stream_ends_upstream(void **state)
{
    (void)state;
    enum { WORDS = 100000 };
    int before = fake_count(&fake, "\"closed\"");
    int fd = fast_stream(WORDS, "fast-hangup-1");
    char buf[8192];
    size_t len = 0;
    int events = 0;
    while (events < 3) { /* the role chunk, then words */
        ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        assert_true(n > 0);
        len += (size_t)n;
        buf[len] = '\0';
        events = 0;
        for (const char *p = strstr(buf, "data: "); p; p = strstr(p + 1, "data: ")) events++;
        if (len == sizeof(buf) - 1) break;
    }
    close(fd);
    int after = before;
    for (int i = 0; i < 1500 && after == before; i++) {
        usleep(20000);
        after = fake_count(&fake, "\"closed\"");
    }
    assert_int_equal(after, before + 1);
    long sent = last_record_number("\"closed\"", "words_sent");
    assert_true(sent >= 2);
    if (sent >= WORDS) fail_msg("the fake sent all %d words before the daemon ended the transfer", WORDS);
    char *log = daemon_log_wait(&fast_daemon, "id=fast-hangup-1 ", 10.0);
    assert_non_null(log);
    const char *line = strstr(log, "id=fast-hangup-1 ");
    assert_non_null(line);
    char one[1024];
    snprintf(one, sizeof(one), "%.*s", (int)strcspn(line, "\n"), line);
    assert_non_null(strstr(one, "status=499"));
    assert_non_null(strstr(one, "error=client_closed"));
    const char *ct = strstr(one, "completion_tokens=");
    assert_non_null(ct);
    long tokens = atol(ct + strlen("completion_tokens="));
    assert_true(tokens > 0);
    assert_true(tokens < WORDS);
    free(log);
}

typedef struct {
    int fd;
    char *all;
    size_t len;
    volatile int done; /* the reader saw the end of the stream */
} stream_reader;

static void *read_stream(void *arg)
{
    stream_reader *sr = arg;
    size_t cap = 32u << 20;
    sr->all = malloc(cap);
    for (;;) {
        if (sr->len + 65536 + 1 > cap) {
            char *p = realloc(sr->all, cap *= 2);
            if (!p) break;
            sr->all = p;
        }
        ssize_t n = recv(sr->fd, sr->all + sr->len, 65536, 0);
        if (n <= 0) break;
        __atomic_store_n(&sr->len, sr->len + (size_t)n, __ATOMIC_SEQ_CST);
    }
    sr->all[sr->len] = '\0';
    __atomic_store_n(&sr->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* While one client receives a long stream relayed as fast as the upstream
 * sends it, /healthz is answered, before that stream ends; and the stream
 * still arrives whole and in order. */
static void test_healthz_answers_during_fast_stream(void **state)
{
    (void)state;
    enum { WORDS = 100000 };
    stream_reader sr = {.fd = fast_stream(WORDS, "fast-whole-1")};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, read_stream, &sr), 0);
    /* the relay is well under way */
    while (__atomic_load_n(&sr.len, __ATOMIC_SEQ_CST) < (64u << 10) && !__atomic_load_n(&sr.done, __ATOMIC_SEQ_CST))
        usleep(1000);
    char url[128];
    snprintf(url, sizeof(url), "%s/healthz", fast_daemon.url);
    http_response r;
    assert_int_equal(http_request("GET", url, NULL, 0, NULL, &r), 0);
    int finished_first = __atomic_load_n(&sr.done, __ATOMIC_SEQ_CST);
    assert_int_equal(r.status, 200);
    http_response_free(&r);
    if (finished_first) fail_msg("/healthz was answered only after the %d-word stream had ended", WORDS);
    pthread_join(th, NULL);
    close(sr.fd);
    assert_int_equal(strncmp(sr.all, "HTTP/1.1 200", 12), 0);
    /* each word in the next few events (a bounded window: strstr over the
     * whole rest, 18 MB, for each of 100,000 words is too slow under ASan) */
    const char *p = sr.all, *end = sr.all + sr.len;
    for (int i = 1; i <= WORDS; i++) {
        char want[48];
        int n = snprintf(want, sizeof(want), "\"content\":\"%sw%d\"", i > 1 ? " " : "", i);
        size_t window = (size_t)(end - p) < 4096 ? (size_t)(end - p) : 4096;
        const char *at = memmem(p, window, want, (size_t)n);
        if (!at) fail_msg("word %d missing or out of order", i);
        p = at + n;
    }
    assert_non_null(memmem(p, (size_t)(end - p), "data: [DONE]", 12));
    free(sr.all);
}

/* Retries are logged at warn, with the attempt, the cause and the delay;
 * so are breaker transitions. (Needs the gateway to install a logger with
 * up_client_set_logger.) */
static void test_retries_logged(void **state)
{
    (void)state;
    long status;
    cJSON *j = chat("frontier", "log my retries #fault:500", NULL, &status, NULL);
    assert_int_equal(status, 502);
    cJSON_Delete(j);
    char *log = daemon_log_wait(&daemon_, "attempt 2 of 3 failed", 2.0);
    assert_non_null(log);
    assert_non_null(strstr(log, "upstream 'frontier': attempt 1 of 3 failed (upstream, HTTP 500); retrying in"));
    assert_non_null(strstr(log, "upstream 'frontier': attempt 2 of 3 failed"));
    /* and test_circuit_breaker's round, each transition */
    assert_non_null(strstr(log, "upstream 'fragile': circuit breaker closed -> open"));
    assert_non_null(strstr(log, "upstream 'fragile': circuit breaker open -> half-open"));
    assert_non_null(strstr(log, "upstream 'fragile': circuit breaker half-open -> closed"));
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
        cmocka_unit_test(test_openai_passes_every_parameter),
        cmocka_unit_test(test_openai_passes_every_parameter_streamed),
        cmocka_unit_test(test_upstream_4xx_keeps_its_structure),
        cmocka_unit_test(test_anthropic_tool_call_whole),
        cmocka_unit_test(test_anthropic_tool_call_streamed),
        cmocka_unit_test(test_anthropic_tool_results_sent),
        cmocka_unit_test(test_anthropic_response_format),
        cmocka_unit_test(test_retries_logged),
        cmocka_unit_test(test_missing_base_url),
        cmocka_unit_test(test_slow_reader_gets_everything),
        cmocka_unit_test(test_stalled_reader_ends_too_slow),
        cmocka_unit_test_setup_teardown(test_hangup_mid_fast_stream_ends_upstream, fast_setup, fast_teardown),
        cmocka_unit_test_setup_teardown(test_healthz_answers_during_fast_stream, fast_setup, fast_teardown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
