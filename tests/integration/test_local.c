/* test_local.c: the local engine served over the API by the real daemon,
 * with stories260K (a real trained model): answers, streaming, stop
 * strings, limits, concurrency, hang-ups and the Llama 2 chat template. */
#include "testlib.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define MODELS JUNCTION_SHARED_DIR "/models/"

static test_daemon daemon_;
static char expected[1024]; /* the reference greedy continuation of "Once upon a time" */

static int setup(void **state)
{
    (void)state;
    /* ../shared/vectors/generation/stories260K.reference.json: greedy_text is prompt + continuation */
    FILE *f = fopen(JUNCTION_SHARED_DIR "/vectors/generation/stories260K.reference.json", "rb");
    if (!f) return -1;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *ref = cJSON_Parse(buf);
    snprintf(expected, sizeof(expected), "%s", cJSON_GetObjectItem(ref, "greedy_text")->valuestring + strlen("Once upon a time"));
    cJSON_Delete(ref);
    /* four sequences generated together: the concurrency tests below run through continuous batching */
    const char *args[] = {"--model", MODELS "stories260K.gguf", "--threads", "1", "--parallel", "4", NULL};
    return daemon_start(&daemon_, args, NULL);
}

static int teardown(void **state)
{
    (void)state;
    kill(daemon_.pid, SIGTERM);
    int rc = daemon_wait(&daemon_, 20);
    if (rc != 0) {
        char *log = daemon_log(&daemon_);
        fprintf(stderr, "daemon exit %d; its log:\n%s\n", rc, log ? log : "");
        free(log);
    }
    daemon_cleanup(&daemon_);
    return rc == 0 ? 0 : -1;
}

static cJSON *ask(const char *extra, long *status, http_response *raw)
{
    char body[2048];
    snprintf(body, sizeof(body), "{\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"temperature\":0%s%s}",
             extra ? "," : "", extra ? extra : "");
    cJSON *j = http_post_json(daemon_.url, "/v1/chat/completions", body, status, raw);
    assert_int_not_equal(*status, 0);
    return j;
}

static const char *content_of(const cJSON *j)
{
    return cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "message"),
                               "content")->valuestring;
}

static const char *finish_of(const cJSON *j)
{
    return cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "finish_reason")->valuestring;
}

static void test_whole_answer_is_the_reference_greedy_text(void **state)
{
    (void)state;
    long status;
    cJSON *j = ask("\"max_tokens\":64,\"model\":\"local\"", &status, NULL);
    assert_int_equal(status, 200);
    assert_string_equal(cJSON_GetObjectItem(j, "object")->valuestring, "chat.completion");
    assert_string_equal(cJSON_GetObjectItem(j, "model")->valuestring, "stories260K");
    assert_string_equal(content_of(j), expected);
    assert_string_equal(finish_of(j), "length");
    const cJSON *u = cJSON_GetObjectItem(j, "usage");
    assert_int_equal(cJSON_GetObjectItem(u, "prompt_tokens")->valueint, 5); /* BOS + 4, as the tokenizer says */
    assert_int_equal(cJSON_GetObjectItem(u, "completion_tokens")->valueint, 64);
    assert_int_equal(cJSON_GetObjectItem(u, "total_tokens")->valueint, 69);
    cJSON_Delete(j);
}

/* "model": local, auto, absent and the loaded model's id all mean the
 * engine; any other name is a 404 naming it. */
static void test_model_field_selects_the_engine(void **state)
{
    (void)state;
    const char *names[] = {"\"model\":\"auto\",", "\"model\":\"stories260K\",", ""};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char extra[128];
        snprintf(extra, sizeof(extra), "%s\"max_tokens\":16", names[i]);
        long status;
        cJSON *j = ask(extra, &status, NULL);
        assert_int_equal(status, 200);
        assert_string_equal(cJSON_GetObjectItem(j, "model")->valuestring, "stories260K");
        assert_int_equal(strncmp(content_of(j), expected, strlen(content_of(j))), 0);
        cJSON_Delete(j);
    }
    long status;
    cJSON *j = ask("\"model\":\"gpt-nonexistent\"", &status, NULL);
    assert_int_equal(status, 404);
    const cJSON *e = cJSON_GetObjectItem(j, "error");
    assert_string_equal(cJSON_GetObjectItem(e, "code")->valuestring, "model_not_found");
    assert_non_null(strstr(cJSON_GetObjectItem(e, "message")->valuestring, "gpt-nonexistent"));
    cJSON_Delete(j);
}

static void test_stream_is_strict_sse_with_the_same_text(void **state)
{
    (void)state;
    long status;
    http_response raw;
    cJSON_Delete(ask("\"max_tokens\":64,\"stream\":true,\"stream_options\":{\"include_usage\":true}", &status, &raw));
    assert_int_equal(status, 200);
    char text[1024] = "", *p = raw.body;
    int events = 0;
    bool usage_seen = false, finish_seen = false, done = false;
    while (*p) {
        assert_false(done); /* nothing after [DONE] */
        assert_int_equal(strncmp(p, "data: ", 6), 0);
        char *end = strstr(p, "\n\n");
        assert_non_null(end);
        *end = '\0';
        events++;
        if (!strcmp(p + 6, "[DONE]")) {
            done = true;
        } else {
            cJSON *c = cJSON_Parse(p + 6);
            assert_non_null(c);
            assert_string_equal(cJSON_GetObjectItem(c, "object")->valuestring, "chat.completion.chunk");
            const cJSON *choices = cJSON_GetObjectItem(c, "choices");
            if (cJSON_GetArraySize(choices) == 0) {
                usage_seen = true;
                assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "usage"), "completion_tokens")->valueint, 64);
            } else {
                const cJSON *ch = cJSON_GetArrayItem(choices, 0);
                const cJSON *t = cJSON_GetObjectItem(cJSON_GetObjectItem(ch, "delta"), "content");
                if (cJSON_IsString(t)) strcat(text, t->valuestring);
                if (cJSON_IsString(cJSON_GetObjectItem(ch, "finish_reason"))) finish_seen = true;
            }
            cJSON_Delete(c);
        }
        p = end + 2;
    }
    assert_true(done && usage_seen && finish_seen);
    assert_true(events > 60);
    assert_string_equal(text, expected);
    http_response_free(&raw);
}

/* A request that repeats the previous one's start reuses its cache. */
static void test_prefix_reuse(void **state)
{
    (void)state;
    long status;
    cJSON *j = ask("\"max_tokens\":8", &status, NULL);
    cJSON_Delete(j);
    /* same prompt: all but the last prompt token come from the cache, same text */
    j = ask("\"max_tokens\":8", &status, NULL);
    assert_int_equal(status, 200);
    const cJSON *u = cJSON_GetObjectItem(j, "usage");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(u, "prompt_tokens_details"), "cached_tokens")->valueint, 4);
    assert_int_equal(strncmp(content_of(j), expected, strlen(content_of(j))), 0);
    assert_true(strlen(content_of(j)) > 10);
    cJSON_Delete(j);
}

static void test_stop_and_max_tokens(void **state)
{
    (void)state;
    long status;
    cJSON *j = ask("\"max_tokens\":64,\"stop\":[\"Lily\",\"zzz\"]", &status, NULL);
    assert_int_equal(status, 200);
    assert_string_equal(content_of(j), ", there was a little girl named ");
    assert_string_equal(finish_of(j), "stop");
    cJSON_Delete(j);
    j = ask("\"max_tokens\":3", &status, NULL);
    assert_string_equal(finish_of(j), "length");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "usage"), "completion_tokens")->valueint, 3);
    assert_int_equal(strncmp(content_of(j), ", there was", strlen(content_of(j))), 0);
    cJSON_Delete(j);
}

static void test_rejections(void **state)
{
    (void)state;
    long status;
    cJSON *j = ask("\"n\":2", &status, NULL);
    assert_int_equal(status, 400);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "param")->valuestring, "n");
    cJSON_Delete(j);
    /* a prompt longer than the model's 2048-token context */
    size_t n = 3 * 2100 + 64;
    char *body = malloc(n);
    strcpy(body, "{\"messages\":[{\"role\":\"user\",\"content\":\"");
    for (int i = 0; i < 2100; i++) strcat(body, "go ");
    strcat(body, "\"}]}");
    http_response r;
    assert_int_equal(http_post(daemon_.url, "/v1/chat/completions", body, &r), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "context_length_exceeded"));
    http_response_free(&r);
    free(body);
}

static void *ask_in_thread(void *arg)
{
    long status;
    cJSON *j = ask("\"max_tokens\":40", &status, NULL);
    char *out = strdup(status == 200 ? content_of(j) : "failed");
    cJSON_Delete(j);
    *(char **)arg = out;
    return NULL;
}

/* Eight clients at once get what they would get one by one (greedy), while
 * up to four of them are generated together in one batch per step. */
static void test_concurrent_clients_get_the_sequential_text(void **state)
{
    (void)state;
    char *texts[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) pthread_create(&th[i], NULL, ask_in_thread, &texts[i]);
    for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
    char prefix[1024];
    snprintf(prefix, sizeof(prefix), "%s", expected);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(strncmp(texts[i], expected, strlen(texts[i])), 0);
        assert_true(strlen(texts[i]) > 100);
        free(texts[i]);
    }
}

static void *long_generation(void *arg)
{
    int fd = tcp_connect(daemon_.port);
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"stream\":true,\"max_tokens\":1800,\"temperature\":0.9,\"seed\":3}";
    char req[512];
    snprintf(req, sizeof(req), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
    tcp_send_all(fd, req, strlen(req));
    char *all = NULL;
    tcp_read_all(fd, 60, &all);
    *(size_t *)arg = strlen(all);
    free(all);
    close(fd);
    return NULL;
}

/* The event loop stays responsive while the engine generates. */
static void test_healthz_during_generation(void **state)
{
    (void)state;
    size_t streamed = 0;
    pthread_t th;
    pthread_create(&th, NULL, long_generation, &streamed);
    usleep(20000);
    char url[128];
    snprintf(url, sizeof(url), "%s/healthz", daemon_.url);
    double worst = 0;
    int samples = 0;
    for (int i = 0; i < 20; i++) {
        http_response r;
        assert_int_equal(http_request("GET", url, NULL, 0, NULL, &r), 0);
        assert_int_equal(r.status, 200);
        if (r.seconds > worst) worst = r.seconds;
        samples++;
        http_response_free(&r);
        usleep(5000);
    }
    pthread_join(th, NULL);
    fprintf(stderr, "slowest of %d /healthz during a %zu-byte stream: %.2f ms\n", samples, streamed, worst * 1e3);
    assert_true(streamed > 10000);
    assert_true(worst < 0.1);
}

/* A client that hangs up mid-stream frees the engine for the next one. */
static void test_disconnect_mid_stream(void **state)
{
    (void)state;
    int fd = tcp_connect(daemon_.port);
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"stream\":true,\"max_tokens\":1800,\"temperature\":0.9,\"seed\":3}";
    char req[512];
    snprintf(req, sizeof(req), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
    assert_int_equal(tcp_send_all(fd, req, strlen(req)), 0);
    char buf[256];
    assert_true(read(fd, buf, sizeof(buf)) > 0);
    close(fd);
    long status;
    cJSON *j = ask("\"max_tokens\":8", &status, NULL);
    assert_int_equal(status, 200);
    cJSON_Delete(j);
    char *log = daemon_log_wait(&daemon_, "status=499", 2.0);
    assert_non_null(log);
    assert_non_null(strstr(log, "status=499"));
    free(log);
}

/* The legacy text API: a string prompt, text choices, echo, and the same greedy text. */
static void test_legacy_completions(void **state)
{
    (void)state;
    const char *body = "{\"prompt\":\"Once upon a time\",\"temperature\":0,\"max_tokens\":64,\"echo\":true}";
    http_response r;
    assert_int_equal(http_post(daemon_.url, "/v1/completions", body, &r), 0);
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_Parse(r.body);
    assert_string_equal(cJSON_GetObjectItem(j, "object")->valuestring, "text_completion");
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    char want[1100];
    snprintf(want, sizeof(want), "Once upon a time%s", expected);
    assert_string_equal(cJSON_GetObjectItem(ch, "text")->valuestring, want);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "usage"), "prompt_tokens")->valueint, 5);
    cJSON_Delete(j);
    http_response_free(&r);
    /* max_tokens defaults to 16, as OpenAI's legacy API does */
    body = "{\"prompt\":\"Once upon a time\",\"temperature\":0,\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
    assert_int_equal(http_post(daemon_.url, "/v1/completions", body, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"object\":\"text_completion\""));
    assert_non_null(strstr(r.body, "\"completion_tokens\":16"));
    assert_non_null(strstr(r.body, "data: [DONE]\n\n"));
    http_response_free(&r);
    body = "{\"prompt\":[\"a\",\"b\"]}";
    assert_int_equal(http_post(daemon_.url, "/v1/completions", body, &r), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "\"param\":\"prompt\""));
    http_response_free(&r);
}

/* logprobs: the model's log-softmax, as `junction logits` computes the logits. */
static void test_logprobs(void **state)
{
    (void)state;
    long status;
    cJSON *j = ask("\"max_tokens\":1,\"logprobs\":true,\"top_logprobs\":3", &status, NULL);
    assert_int_equal(status, 200);
    const cJSON *content = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0),
                                                                   "logprobs"), "content");
    assert_int_equal(cJSON_GetArraySize(content), 1);
    const cJSON *e = cJSON_GetArrayItem(content, 0);
    double lp = cJSON_GetObjectItem(e, "logprob")->valuedouble;
    const cJSON *top = cJSON_GetObjectItem(e, "top_logprobs");
    assert_int_equal(cJSON_GetArraySize(top), 3);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(top, 0), "token")->valuestring,
                        cJSON_GetObjectItem(e, "token")->valuestring); /* greedy picks the most likely */
    for (int i = 1; i < 3; i++)
        assert_true(cJSON_GetObjectItem(cJSON_GetArrayItem(top, i), "logprob")->valuedouble <=
                    cJSON_GetObjectItem(cJSON_GetArrayItem(top, i - 1), "logprob")->valuedouble);
    /* the same number from the logits themselves */
    const char *args[] = {"logits", "-m", MODELS "stories260K.gguf", "--text", "Once upon a time", "-t", "1", NULL};
    char *out;
    assert_int_equal(run_junction(args, &out), 0);
    cJSON *l = cJSON_Parse(out);
    free(out);
    const cJSON *row = cJSON_GetArrayItem(cJSON_GetObjectItem(l, "logits"), 0);
    double max = -1e30, sum = 0;
    for (const cJSON *v = row->child; v; v = v->next) max = v->valuedouble > max ? v->valuedouble : max;
    for (const cJSON *v = row->child; v; v = v->next) sum += exp(v->valuedouble - max);
    assert_true(fabs(lp - (max - (max + log(sum)))) < 1e-4); /* the top token's log-softmax */
    cJSON_Delete(l);
    cJSON_Delete(j);
    j = ask("\"max_tokens\":1,\"top_logprobs\":2", &status, NULL);
    assert_int_equal(status, 400);
    cJSON_Delete(j);
}

static void test_models_and_readyz(void **state)
{
    (void)state;
    char url[128];
    http_response r;
    snprintf(url, sizeof(url), "%s/v1/models", daemon_.url);
    assert_int_equal(http_request("GET", url, NULL, 0, NULL, &r), 0);
    cJSON *j = cJSON_Parse(r.body);
    const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "data"), 0);
    assert_string_equal(cJSON_GetObjectItem(m, "id")->valuestring, "stories260K");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "junction"), "kind")->valuestring, "local");
    cJSON_Delete(j);
    http_response_free(&r);
    snprintf(url, sizeof(url), "%s/readyz", daemon_.url);
    assert_int_equal(http_request("GET", url, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"local_model\":true"));
    http_response_free(&r);
}

/* With queue_size 0, a request that arrives while another generates gets 429. */
static void test_queue_full_is_429(void **state)
{
    (void)state;
    test_daemon d;
    const char *args[] = {"--model", MODELS "stories260K.gguf", "--threads", "1", "--queue-size", "0", NULL};
    assert_int_equal(daemon_start(&d, args, NULL), 0);
    int fd = tcp_connect(d.port);
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"stream\":true,\"max_tokens\":1800,\"temperature\":0.9,\"seed\":3}";
    char req[512];
    snprintf(req, sizeof(req), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
    assert_int_equal(tcp_send_all(fd, req, strlen(req)), 0);
    char buf[256];
    assert_true(read(fd, buf, sizeof(buf)) > 0); /* it is generating now */
    char hdr[64];
    const char *second = "{\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"max_tokens\":2}";
    http_response r;
    assert_int_equal(http_post(d.url, "/v1/chat/completions", second, &r), 0);
    assert_int_equal(r.status, 429);
    assert_non_null(strstr(r.body, "engine_busy"));
    assert_string_equal(http_header(&r, "Retry-After", hdr, sizeof(hdr)), "1");
    http_response_free(&r);
    close(fd);
    kill(d.pid, SIGTERM);
    assert_int_equal(daemon_wait(&d, 20), 0);
    daemon_cleanup(&d);
}

/* The Llama 2 template, on the real Llama 2 vocabulary: the prompt's token
 * count equals BOS + the tokens of the rendered text. */
static void test_llama2_chat_template(void **state)
{
    (void)state;
    test_daemon d;
    const char *args[] = {"--model", MODELS "llama-2-tiny-random.gguf", "--chat-template", "llama2", NULL};
    assert_int_equal(daemon_start(&d, args, NULL), 0);
    const char *body = "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi there\"}],\"max_tokens\":2}";
    http_response r;
    assert_int_equal(http_post(d.url, "/v1/chat/completions", body, &r), 0);
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_Parse(r.body);
    int prompt_tokens = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "usage"), "prompt_tokens")->valueint;
    cJSON_Delete(j);
    http_response_free(&r);
    const char *tok[] = {"tokenize", "-m", MODELS "llama-2-tiny-random.gguf", "--bos",
                         "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi there [/INST]", NULL};
    char *out;
    assert_int_equal(run_junction(tok, &out), 0);
    int n = 0;
    for (char *p = out; *p; p++) n += (*p == ' ');
    n++; /* ids are space-separated on one line */
    free(out);
    assert_int_equal(prompt_tokens, n);
    kill(d.pid, SIGTERM);
    assert_int_equal(daemon_wait(&d, 20), 0);
    daemon_cleanup(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_answer_is_the_reference_greedy_text),
        cmocka_unit_test(test_model_field_selects_the_engine),
        cmocka_unit_test(test_stream_is_strict_sse_with_the_same_text),
        cmocka_unit_test(test_prefix_reuse),
        cmocka_unit_test(test_stop_and_max_tokens),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_concurrent_clients_get_the_sequential_text),
        cmocka_unit_test(test_disconnect_mid_stream),
        cmocka_unit_test(test_healthz_during_generation),
        cmocka_unit_test(test_legacy_completions),
        cmocka_unit_test(test_logprobs),
        cmocka_unit_test(test_models_and_readyz),
        cmocka_unit_test(test_queue_full_is_429),
        cmocka_unit_test(test_llama2_chat_template),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
