/* test_frontdoor.c: what real clients and operators meet at the front door
 * of the real daemon with a local model: parameters the engine cannot
 * honour, logit_bias, output that is always valid UTF-8, NUL in input,
 * a context smaller than the model's, a slow reader held back, the drain
 * timeout cutting a stream, a huge many-part body while /healthz answers,
 * and the access log's routing fields. */
#include "testlib.h"

#include <cjson/cJSON.h>
#include <pthread.h>
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

#define MODELS JUNCTION_SHARED_DIR "/models/"

/* A random-weights model with Llama 2's real vocabulary (byte-fallback
 * tokens included), 4096 positions: it emits arbitrary bytes, fast. */
static test_daemon random_model;

static int setup(void **state)
{
    (void)state;
    const char *args[] = {"--model", MODELS "llama-2-tiny-random.gguf", "--threads", "1", "--parallel", "2",
                          "--max-output-buffer", "65536", "--request-timeout", "2", NULL};
    return daemon_start(&random_model, args, NULL);
}

static int stop_daemon(test_daemon *d)
{
    kill(d->pid, SIGTERM);
    int rc = daemon_wait(d, 20);
    if (rc != 0) {
        char *log = daemon_log(d);
        fprintf(stderr, "daemon exit %d; its log:\n%s\n", rc, log ? log : "");
        free(log);
    }
    daemon_cleanup(d);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    return stop_daemon(&random_model) == 0 ? 0 : -1;
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
static bool valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char b = s[i];
        int len = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
        if (len == 0 || i + (size_t)len > n) return false;
        for (int k = 1; k < len; k++) {
            unsigned char lo = 0x80, hi = 0xbf, c = s[i + (size_t)k];
            if (k == 1 && b == 0xe0) lo = 0xa0;
            if (k == 1 && b == 0xed) hi = 0x9f;
            if (k == 1 && b == 0xf0) lo = 0x90;
            if (k == 1 && b == 0xf4) hi = 0x8f;
            if (c < lo || c > hi) return false;
        }
        i += (size_t)len;
    }
    return true;
}

static cJSON *chat(const test_daemon *d, const char *extra, long *status, http_response *raw)
{
    char body[4096];
    snprintf(body, sizeof(body), "{\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}]%s%s}",
             extra ? "," : "", extra ? extra : "");
    return http_post_json(d->url, "/v1/chat/completions", body, status, raw);
}

static const char *error_field(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Each parameter the engine cannot honour is named in a 400; harmless
 * values of the same parameters pass. */
static void test_local_refuses_what_it_cannot_do(void **state)
{
    (void)state;
    static const struct {
        const char *extra, *param;
    } refused[] = {
        {"\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}]", "tools"},
        {"\"tool_choice\":\"required\"", "tool_choice"},
        {"\"response_format\":{\"type\":\"json_object\"}", "response_format"},
        {"\"n\":2", "n"},
        {"\"modalities\":[\"text\",\"audio\"]", "modalities"},
        {"\"prediction\":{\"type\":\"content\",\"content\":\"x\"}", "prediction"},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        long status;
        cJSON *j = chat(&random_model, refused[i].extra, &status, NULL);
        assert_int_equal(status, 400);
        assert_string_equal(error_field(j, "code"), "unsupported_parameter");
        assert_string_equal(error_field(j, "param"), refused[i].param);
        assert_non_null(strstr(error_field(j, "message"), "local model does not support"));
        cJSON_Delete(j);
    }
    long status;
    const char *image = "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"what is this?\"},"
                        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}]}]}";
    cJSON *j = http_post_json(random_model.url, "/v1/chat/completions", image, &status, NULL);
    assert_int_equal(status, 400);
    assert_string_equal(error_field(j, "param"), "messages");
    cJSON_Delete(j);
    /* the same parameters asking for nothing special, and unknown ones, pass */
    j = chat(&random_model, "\"tools\":[],\"tool_choice\":\"none\",\"response_format\":{\"type\":\"text\"},"
                            "\"user\":\"u1\",\"metadata\":{\"k\":\"v\"},\"store\":false,\"service_tier\":\"auto\","
                            "\"some_future_parameter\":1,\"max_completion_tokens\":3",
             &status, NULL);
    assert_int_equal(status, 200);
    cJSON_Delete(j);
}

/* logit_bias +100 forces a token: every generated token is that one. */
static void test_logit_bias(void **state)
{
    (void)state;
    long status;
    cJSON *j = chat(&random_model, "\"logit_bias\":{\"1000\":100},\"max_tokens\":4,\"logprobs\":true,\"temperature\":1,\"seed\":5",
                    &status, NULL);
    assert_int_equal(status, 200);
    const cJSON *content = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0),
                                                                   "logprobs"), "content");
    assert_int_equal(cJSON_GetArraySize(content), 4);
    char first[64];
    snprintf(first, sizeof(first), "%s", cJSON_GetObjectItem(cJSON_GetArrayItem(content, 0), "token")->valuestring);
    char expect[256] = "";
    for (int i = 0; i < 4; i++) {
        assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(content, i), "token")->valuestring, first);
        strncat(expect, first, sizeof(expect) - strlen(expect) - 1);
    }
    const char *text = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0),
                                                               "message"), "content")->valuestring;
    assert_string_equal(text, expect);
    cJSON_Delete(j);
    /* -100 bans it: with the same seed, that token never comes */
    j = chat(&random_model, "\"logit_bias\":{\"1000\":-100},\"max_tokens\":4,\"logprobs\":true,\"temperature\":1,\"seed\":5",
             &status, NULL);
    assert_int_equal(status, 200);
    content = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0),
                                                      "logprobs"), "content");
    for (int i = 0; i < cJSON_GetArraySize(content); i++)
        assert_string_not_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(content, i), "token")->valuestring, first);
    cJSON_Delete(j);
    static const char *const bad[] = {"\"logit_bias\":{\"999999\":1}", "\"logit_bias\":{\"abc\":1}",
                                      "\"logit_bias\":{\"5\":101}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        j = chat(&random_model, bad[i], &status, NULL);
        assert_int_equal(status, 400);
        assert_non_null(strstr(error_field(j, "param"), "logit_bias"));
        cJSON_Delete(j);
    }
}

/* A model that emits byte tokens at random never puts invalid UTF-8 on
 * the wire, streamed or whole. */
static void test_output_is_valid_utf8(void **state)
{
    (void)state;
    for (int seed = 1; seed <= 3; seed++) {
        char extra[128];
        snprintf(extra, sizeof(extra), "\"max_tokens\":120,\"temperature\":2,\"seed\":%d,\"stream\":%s", seed,
                 seed == 2 ? "false" : "true");
        long status;
        http_response raw;
        cJSON *j = chat(&random_model, extra, &status, &raw);
        assert_int_equal(status, 200);
        assert_true(raw.body_len > 120);
        assert_true(valid_utf8((const unsigned char *)raw.body, raw.body_len));
        cJSON_Delete(j);
        http_response_free(&raw);
    }
}

/* An escaped NUL would cut the prompt short: it is refused, saying so. */
static void test_nul_in_input_is_refused(void **state)
{
    (void)state;
    long status;
    cJSON *j = http_post_json(random_model.url, "/v1/chat/completions",
                              "{\"messages\":[{\"role\":\"user\",\"content\":\"before\\u0000after\"}]}", &status, NULL);
    assert_int_equal(status, 400);
    assert_non_null(strstr(error_field(j, "message"), "NUL"));
    cJSON_Delete(j);
    /* an escaped backslash before "u0000" is ordinary text */
    j = http_post_json(random_model.url, "/v1/chat/completions",
                       "{\"messages\":[{\"role\":\"user\",\"content\":\"a\\\\u0000b\"}],\"max_tokens\":2}", &status, NULL);
    assert_int_equal(status, 200);
    cJSON_Delete(j);
}

static void test_head_has_content_length(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof(url), "%s/healthz", random_model.url);
    http_response r;
    assert_int_equal(http_request("HEAD", url, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    char len[32];
    assert_non_null(http_header(&r, "Content-Length", len, sizeof(len)));
    assert_string_equal(len, "15"); /* {"status":"ok"} */
    http_response_free(&r);
}

static void test_access_log_says_where_it_went(void **state)
{
    (void)state;
    long status;
    cJSON *j = chat(&random_model, "\"max_tokens\":5,\"model\":\"local\"", &status, NULL);
    assert_int_equal(status, 200);
    cJSON_Delete(j);
    char *log = daemon_log_wait(&random_model, "route=local model=local", 5.0);
    assert_non_null(log);
    const char *line = strstr(log, "route=local model=local");
    assert_non_null(line);
    const char *end = strchr(line, '\n');
    char one[1024];
    snprintf(one, sizeof(one), "%.*s", (int)(end ? end - line : (long)strlen(line)), line);
    assert_non_null(strstr(one, "upstream=-"));
    assert_non_null(strstr(one, "completion_tokens=5"));
    assert_non_null(strstr(one, "prompt_tokens="));
    assert_non_null(strstr(one, "ttft_ms="));
    free(log);
}

/* A context smaller than the model's: the prompt that does not fit gets
 * 400 context_length_exceeded; the requests batched with it are served. */
typedef struct {
    const test_daemon *d;
    const char *body;
    long status;
    char code[64];
} shot;

static void *fire(void *arg)
{
    shot *s = arg;
    cJSON *j = http_post_json(s->d->url, "/v1/chat/completions", s->body, &s->status, NULL);
    snprintf(s->code, sizeof(s->code), "%s", error_field(j, "code"));
    cJSON_Delete(j);
    return NULL;
}

static void test_small_ctx_rejects_only_the_long_prompt(void **state)
{
    (void)state;
    test_daemon d;
    const char *args[] = {"--model", MODELS "stories260K.gguf", "--threads", "1", "--parallel", "3", "--ctx-size", "64", NULL};
    assert_int_equal(daemon_start(&d, args, NULL), 0);
    char longer[4096] = "{\"messages\":[{\"role\":\"user\",\"content\":\"";
    for (int i = 0; i < 60; i++) strcat(longer, "Once upon a time there was a cat. ");
    strcat(longer, "\"}],\"max_tokens\":8}");
    const char *fits = "{\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"max_tokens\":200,\"temperature\":0}";
    shot shots[4] = {{&d, fits, 0, ""}, {&d, longer, 0, ""}, {&d, fits, 0, ""}, {&d, longer, 0, ""}};
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, fire, &shots[i]);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        if (shots[i].body == fits) {
            assert_int_equal(shots[i].status, 200);
        } else {
            assert_int_equal(shots[i].status, 400);
            assert_string_equal(shots[i].code, "context_length_exceeded");
        }
    }
    /* an answer that fills the context ends with finish_reason "length" */
    long status;
    cJSON *j = http_post_json(d.url, "/v1/chat/completions", fits, &status, NULL);
    assert_int_equal(status, 200);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "finish_reason")->valuestring,
                        "length");
    cJSON_Delete(j);
    assert_int_equal(stop_daemon(&d), 0);
}

/* The drain timeout ends a stream still running with an error event, and
 * the access log calls it a cut by the server, not a client leaving. */
static void test_drain_timeout_cuts_with_an_error_event(void **state)
{
    (void)state;
    test_daemon d;
    const char *args[] = {"--model", MODELS "llama-2-tiny-random.gguf", "--threads", "1", "--drain-timeout", "0.5",
                          "--max-output-buffer", "16384", "--request-timeout", "30", NULL};
    assert_int_equal(daemon_start(&d, args, NULL), 0);
    int fd = tcp_connect(d.port);
    assert_true(fd >= 0);
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"Once\"}],\"stream\":true,"
                       "\"max_tokens\":4000,\"temperature\":1,\"seed\":4,\"logprobs\":true,\"top_logprobs\":20}";
    char req[512];
    snprintf(req, sizeof(req), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    assert_int_equal(tcp_send_all(fd, req, strlen(req)), 0);
    /* read slowly: the stream is held back by this client, so it is still
     * running when the drain timeout comes */
    static char all[1 << 24];
    size_t got = 0;
    bool signalled = false;
    double start = now_seconds();
    for (;;) {
        ssize_t n = read(fd, all + got, 2048 < sizeof(all) - 1 - got ? 2048 : sizeof(all) - 1 - got);
        if (n <= 0) break;
        got += (size_t)n;
        if (!signalled && now_seconds() - start > 0.3) {
            kill(d.pid, SIGTERM);
            signalled = true;
        }
        usleep(20000);
    }
    close(fd);
    all[got] = '\0';
    assert_true(signalled);
    assert_non_null(strstr(all, "\"code\":\"shutting_down\""));
    assert_null(strstr(all, "[DONE]"));
    assert_int_equal(daemon_wait(&d, 20), 0);
    char *log = daemon_log(&d);
    assert_non_null(strstr(log, "cut=drain"));
    assert_null(strstr(log, "status=499"));
    free(log);
    daemon_cleanup(&d);
}

/* A 1 MB body of 20,000 content parts is parsed, rendered and tokenized
 * while /healthz keeps answering at once. */
typedef struct {
    const char *url;
    char *body;
    long status;
} big_post;

static void *post_big(void *arg)
{
    big_post *b = arg;
    http_response r;
    if (http_post(b->url, "/v1/chat/completions", b->body, &r) == 0) b->status = r.status;
    http_response_free(&r);
    return NULL;
}

static void test_healthz_while_a_huge_body_is_handled(void **state)
{
    (void)state;
    test_daemon d;
    const char *args[] = {"--model", MODELS "stories260K.gguf", "--threads", "1", "--max-body-bytes", "4000000", NULL};
    assert_int_equal(daemon_start(&d, args, NULL), 0);
    size_t cap = 2 * 1024 * 1024;
    char *body = malloc(cap);
    size_t n = (size_t)snprintf(body, cap, "{\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":[");
    for (int i = 0; i < 20000; i++)
        n += (size_t)snprintf(body + n, cap - n, "%s{\"type\":\"text\",\"text\":\"part %05d of a long story, told slowly.\"}",
                              i ? "," : "", i);
    snprintf(body + n, cap - n, "]}]}");
    big_post b = {d.url, body, 0};
    pthread_t th;
    pthread_create(&th, NULL, post_big, &b);
    char url[128];
    snprintf(url, sizeof(url), "%s/healthz", d.url);
    double worst = 0;
    for (int i = 0; i < 40; i++) {
        http_response r;
        assert_int_equal(http_request("GET", url, NULL, 0, NULL, &r), 0);
        if (r.seconds > worst) worst = r.seconds;
        http_response_free(&r);
        usleep(10000);
    }
    pthread_join(th, NULL);
    fprintf(stderr, "slowest /healthz during the 1 MB body: %.1f ms\n", worst * 1e3);
    assert_int_equal(b.status, 400); /* far longer than the model's 512 positions */
    assert_true(worst < 0.5);        /* wide: the sanitizers slow everything; the body takes seconds */
    free(body);
    assert_int_equal(stop_daemon(&d), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_refuses_what_it_cannot_do),
        cmocka_unit_test(test_logit_bias),
        cmocka_unit_test(test_output_is_valid_utf8),
        cmocka_unit_test(test_nul_in_input_is_refused),
        cmocka_unit_test(test_head_has_content_length),
        cmocka_unit_test(test_access_log_says_where_it_went),
        cmocka_unit_test(test_small_ctx_rejects_only_the_long_prompt),
        cmocka_unit_test(test_drain_timeout_cuts_with_an_error_event),
        cmocka_unit_test(test_healthz_while_a_huge_body_is_handled),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
