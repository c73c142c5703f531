/* test_overload.c: "local overloaded -> external" tried with sensitive data.
 *
 * The default policy sends a request that is not sensitive to the external
 * upstream when the local engine's expected queue wait is above
 * routing.max_local_wait_s. The rules and the last gate are unit-tested
 * (tests/unit/test_rules.c); this drives the real daemon into that state
 * (one engine slot, a queue of one, both taken by long generations) and
 * checks that the overload path is live for ordinary requests while
 * sensitive ones (an e-mail with a card number, a private key, a person
 * with a diagnosis), asked for every way (auto, streamed, the external
 * upstream named in "model", a sticky conversation that was external
 * before), never reach the recording fake frontier: the client gets a
 * local answer, a queue 429/503 or 403 sensitive_data_blocked, never a 200
 * from the external route.
 */
#include "testlib.h"

#include <cjson/cJSON.h>
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
#define HARD "Find all zeros in the indicated finite field of the given polynomial with coefficients in that field. x^5 + 3x^3 + x^2 + 2x in Z_5"
#define PEM "-----BEGIN RSA PRIVATE KEY-----\\nMIIEpAIBAAKCAQEAk1gnneGEYG1+LwiqD9jJBAciI05FhfwKVqlUr5Qrec8TNecj9iNOrjj5VfqRTk8j\\n" \
            "1d/bWWbjkloG1QX647kdNl9cDo/+GbVMszvR4/EPZGz3zBXCOArr/SfiJvo58JB0\\nW/O5PjeJfJTNcrZ6ydIEsgo5nVjzz8Gwb8ewCISuYCl0Xq56zaWR7PAmpBFXlNPH\\n" \
            "cSke4R1J+dBi2ewQr8t4/lC4LvGNWAMsI/z0oaWdfZp+lvi60ZIF8/qR38Ony1dH\\nqceytDbKPTF/n/pGz3cW0uABBrDSxOOyBymrEqlHXm31qzZcmzTUoRyj9nde9syx\\n" \
            "-----END RSA PRIVATE KEY-----"

static test_daemon daemon_;
static test_fake fake;
static char config_path[64];
static int hogs[2] = {-1, -1}; /* the connections whose generations fill the engine */

/* What each sensitive prompt holds that the fake must never see. */
static const char *const sensitive_texts[] = {
    "Email jane.doe@acme-corp.com that I paid with the card 4111 1111 1111 1111 yesterday",
    "Why does ssh reject this key?\\n" PEM,
    "Patient John Smith was diagnosed with type 2 diabetes last week; draft a letter to his employer.",
};
static const char *const never_seen[] = {
    "jane.doe@acme-corp.com", "4111 1111 1111 1111", "4111111111111111", "MIIEpAIBAAKCAQEAk1gnneGEYG1",
    "qceytDbKPTF", "John Smith", "diabetes",
};

static int setup(void **state)
{
    (void)state;
    if (fake_start(&fake, NULL) != 0) return -1;
    char config[1024];
    snprintf(config, sizeof(config),
             "{\"upstreams\": [{\"name\": \"frontier\", \"provider\": \"openai\", \"base_url\": \"http://127.0.0.1:%d/v1\","
             " \"model\": \"gpt-fake\", \"zone\": \"external\", \"price_input_per_mtok\": 10, \"price_output_per_mtok\": 30}],"
             " \"routing\": {\"max_local_wait_s\": 0}}",
             fake.port);
    write_temp_file(config_path, config);
    /* a context far past what the test needs, so the generations filling the engine outlast it on any machine */
    const char *args[] = {"--config", config_path, "--model", MODELS "stories260K.gguf", "--threads", "1",
                          "--parallel", "1", "--queue-size", "1", "--ctx-size", "16384", NULL};
    return daemon_start(&daemon_, args, NULL);
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++)
        if (hogs[i] >= 0) close(hogs[i]);
    kill(daemon_.pid, SIGTERM);
    int rc = daemon_wait(&daemon_, 30);
    daemon_cleanup(&daemon_);
    fake_stop(&fake);
    unlink(config_path);
    return rc == 0 ? 0 : -1;
}

typedef struct {
    long status;
    char route[64], rule[64];
    char *body;
} answer;

/* POST a chat body to the daemon, with an optional extra header. */
static answer ask(const char *body, const char *header)
{
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/chat/completions", daemon_.url);
    const char *headers[] = {"Content-Type: application/json", header, NULL};
    http_response r;
    answer a = {0, "", "", NULL};
    assert_int_equal(http_request("POST", url, body, strlen(body), headers, &r), 0);
    a.status = r.status;
    http_header(&r, "X-Junction-Route", a.route, sizeof(a.route));
    http_header(&r, "X-Junction-Rule", a.rule, sizeof(a.rule));
    a.body = r.body;
    r.body = NULL;
    http_response_free(&r);
    return a;
}

/* The decision for a body, without answering it (POST /v1/route). */
static void decision(const char *body, char *rule, size_t len)
{
    long status;
    cJSON *j = http_post_json(daemon_.url, "/v1/route", body, &status, NULL);
    assert_int_equal(status, 200);
    const cJSON *r = cJSON_GetObjectItem(j, "rule");
    snprintf(rule, len, "%s", cJSON_IsString(r) ? r->valuestring : "");
    cJSON_Delete(j);
}

/* A long local generation on a connection of its own (its end-of-sequence
 * token is banned, so it runs to max_tokens); it runs until the connection
 * is closed. */
static int hog(void)
{
    static const char body[] = "{\"model\":\"local\",\"stream\":true,\"max_tokens\":16000,\"logit_bias\":{\"2\":-100},"
                               "\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}]}";
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
    int fd = tcp_connect(daemon_.port);
    assert_true(fd >= 0);
    assert_int_equal(tcp_send_all(fd, req, (size_t)n), 0);
    return fd;
}

/* Sensitive data went nowhere it may not: a local answer, a refusal from
 * the full queue, or a 403 naming the kinds, never the external route. */
static void assert_kept_inside(const answer *a, const char *what)
{
    bool local_answer = a->status == 200 && !strcmp(a->route, "local");
    bool refused = a->status == 429 || a->status == 503 ||
                   (a->status == 403 && strstr(a->body, "sensitive_data_blocked"));
    if (!(local_answer || refused))
        fprintf(stderr, "%s: status %ld, route '%s', rule '%s': %s\n", what, a->status, a->route, a->rule, a->body);
    assert_true(local_answer || refused); /* a refusal names the route it refused (X-Junction-Route) */
    fprintf(stderr, "%-28s -> %ld %s (rule %s)\n", what, a->status, a->route, a->rule);
    for (size_t i = 0; i < sizeof(never_seen) / sizeof(never_seen[0]); i++)
        if (a->status != 200) assert_null(strstr(a->body, never_seen[i])); /* errors never quote the data */
}

static void test_overloaded_local_spills_only_what_may_leave(void **state)
{
    (void)state;
    const char *plain = "{\"model\":\"auto\",\"max_tokens\":8,\"messages\":[{\"role\":\"user\",\"content\":\"hello there, how are you\"}]}";
    /* before the overload: a local answer (the expected wait is learnt from it) ... */
    answer a = ask("{\"model\":\"local\",\"max_tokens\":4,\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}]}", NULL);
    assert_int_equal(a.status, 200);
    free(a.body);
    char rule[64];
    decision(plain, rule, sizeof(rule));
    assert_string_equal(rule, "default"); /* not overloaded yet */
    /* ... and two conversations that reach the frontier: one named by the client, one by its messages */
    const char *hard = "{\"model\":\"auto\",\"max_tokens\":8,\"messages\":[{\"role\":\"user\",\"content\":\"" HARD "\"}]}";
    a = ask(hard, "X-Junction-Session: overload-1");
    assert_int_equal(a.status, 200);
    assert_string_equal(a.route, "frontier");
    free(a.body);
    a = ask(hard, NULL);
    assert_string_equal(a.route, "frontier");
    free(a.body);

    /* one slot and a queue of one: a generation running and one waiting */
    hogs[0] = hog();
    hogs[1] = hog();
    for (int i = 0; i < 300 && strcmp(rule, "local-busy") != 0; i++) {
        usleep(100000);
        decision(plain, rule, sizeof(rule));
    }
    assert_string_equal(rule, "local-busy");

    /* (a) what is not sensitive goes external: the overload path is live */
    const char *plain_stream = "{\"model\":\"auto\",\"stream\":true,\"max_tokens\":8,\"messages\":[{\"role\":\"user\","
                               "\"content\":\"tell me a joke about the weather\"}]}";
    const char *const plains[] = {plain, plain_stream};
    for (int i = 0; i < 2; i++) {
        a = ask(plains[i], NULL);
        assert_int_equal(a.status, 200);
        assert_string_equal(a.route, "frontier");
        assert_string_equal(a.rule, "local-busy");
        free(a.body);
    }
    assert_int_equal(fake_count(&fake, "tell me a joke about the weather"), 1);

    /* (b) sensitive data, every way of asking, under the same overload */
    for (size_t s = 0; s < sizeof(sensitive_texts) / sizeof(sensitive_texts[0]); s++) {
        const char *t = sensitive_texts[s];
        char body[2048], what[64];
        const char *const forms[] = {
            "{\"model\":\"auto\",\"max_tokens\":8,\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
            "{\"max_tokens\":8,\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
            "{\"model\":\"frontier\",\"max_tokens\":8,\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
            "{\"model\":\"frontier\",\"stream\":true,\"max_tokens\":8,\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
            /* a system message and a retry-provoking fault do not change where it may go */
            "{\"model\":\"auto\",\"max_tokens\":8,\"messages\":[{\"role\":\"system\",\"content\":\"%s\"},"
            "{\"role\":\"user\",\"content\":\"hello there #fault:flaky:1\"}]}",
        };
        for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
            snprintf(body, sizeof(body), forms[f], t);
            snprintf(what, sizeof(what), "prompt %zu, form %zu", s, f);
            a = ask(body, NULL);
            assert_kept_inside(&a, what);
            if (f == 2 || f == 3) { /* the client named the external upstream: refused, saying why */
                assert_int_equal(a.status, 403);
                assert_non_null(strstr(a.body, "sensitive_data_blocked"));
            }
            free(a.body);
        }
        /* the conversations that were external before: named by the client ... */
        snprintf(body, sizeof(body), "{\"model\":\"auto\",\"max_tokens\":8,\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", t);
        a = ask(body, "X-Junction-Session: overload-1");
        snprintf(what, sizeof(what), "prompt %zu, sticky session", s);
        assert_kept_inside(&a, what);
        free(a.body);
        /* ... and by their earlier messages */
        snprintf(body, sizeof(body),
                 "{\"model\":\"auto\",\"max_tokens\":8,\"messages\":[{\"role\":\"user\",\"content\":\"" HARD "\"},"
                 "{\"role\":\"assistant\",\"content\":\"0 and 4\"},{\"role\":\"user\",\"content\":\"%s\"}]}", t);
        a = ask(body, NULL);
        snprintf(what, sizeof(what), "prompt %zu, sticky messages", s);
        assert_kept_inside(&a, what);
        free(a.body);
    }
    /* still overloaded at the end: every sensitive request above met the overload */
    decision(plain, rule, sizeof(rule));
    assert_string_equal(rule, "local-busy");

    /* a sticky conversation that is not sensitive may stay external */
    a = ask("{\"model\":\"auto\",\"max_tokens\":8,\"messages\":[{\"role\":\"user\",\"content\":\"thanks!\"}]}",
            "X-Junction-Session: overload-1");
    assert_int_equal(a.status, 200);
    assert_string_equal(a.route, "frontier");
    free(a.body);

    /* what the fake recorded holds no byte of the sensitive values */
    char *rec = fake_record(&fake);
    assert_non_null(rec);
    for (size_t i = 0; i < sizeof(never_seen) / sizeof(never_seen[0]); i++) {
        if (strstr(rec, never_seen[i])) fprintf(stderr, "the fake frontier saw '%s'\n", never_seen[i]);
        assert_null(strstr(rec, never_seen[i]));
    }
    free(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overloaded_local_spills_only_what_may_leave),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
