/* test_routing.c: classification and routing through the real daemon, with
 * a local model and the fake frontier as one external and one private
 * upstream: POST /v1/route, the X-Junction-* headers and the "junction"
 * object, and the zone guarantee tried on every way a request can be sent
 * upstream, with what the fake recorded checked for the sensitive text. */
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

static test_daemon daemon_;
static test_fake fake;
static char config_path[64];

/* Sensitive values the fake must never see. */
static const char *const secrets[] = {"4111 1111 1111 1111", "123-45-6789", "AKIAZ7QPLM3XR2T4WB6K"};

static int setup(void **state)
{
    (void)state;
    if (fake_start(&fake, NULL) != 0) return -1;
    char ups[1024];
    snprintf(ups, sizeof(ups),
             "[{\"name\":\"frontier\",\"provider\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/v1\",\"model\":\"gpt-fake\","
             "\"zone\":\"external\",\"price_input_per_mtok\":10,\"price_output_per_mtok\":30,\"max_retries\":2},"
             "{\"name\":\"onprem\",\"provider\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/v1\",\"model\":\"vllm-fake\","
             "\"zone\":\"private\"}]",
             fake.port, fake.port);
    char config[1400];
    snprintf(config, sizeof(config), "{\"upstreams\": %s}", ups);
    write_temp_file(config_path, config);
    const char *args[] = {"--config", config_path, "--model", MODELS "stories260K.gguf", "--threads", "1", NULL};
    return daemon_start(&daemon_, args, NULL);
}

static int teardown(void **state)
{
    (void)state;
    kill(daemon_.pid, SIGTERM);
    int rc = daemon_wait(&daemon_, 20);
    daemon_cleanup(&daemon_);
    fake_stop(&fake);
    return rc == 0 ? 0 : -1;
}

static cJSON *post(const char *path, const char *body, long *status, http_response *raw)
{
    cJSON *j = http_post_json(daemon_.url, path, body, status, raw);
    assert_int_not_equal(*status, 0);
    return j;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Nothing sensitive ever reached the fake. */
static void assert_fake_saw_no_secret(void)
{
    char *rec = fake_record(&fake);
    for (size_t i = 0; rec && i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        if (strstr(rec, secrets[i])) fprintf(stderr, "the fake upstream saw '%s'\n", secrets[i]);
        assert_null(strstr(rec, secrets[i]));
    }
    free(rec);
}

static void test_route_endpoint_scores_without_generating(void **state)
{
    (void)state;
    long status;
    cJSON *j = post("/v1/route",
                    "{\"messages\":[{\"role\":\"user\",\"content\":\"Mail jane.doe@acme-corp.com the card 4111 1111 1111 1111 please\"}]}",
                    &status, NULL);
    assert_int_equal(status, 200);
    const cJSON *scores = cJSON_GetObjectItem(j, "scores");
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(scores, "difficulty")));
    assert_true(cJSON_GetObjectItem(scores, "sensitivity")->valuedouble == 1.0); /* a Luhn-valid card forces it */
    const cJSON *findings = cJSON_GetObjectItem(j, "findings");
    bool email = false, card = false;
    for (int i = 0; i < cJSON_GetArraySize(findings); i++) {
        const cJSON *f = cJSON_GetArrayItem(findings, i);
        email |= !strcmp(str(f, "kind"), "email");
        card |= !strcmp(str(f, "kind"), "credit_card");
        assert_true(cJSON_GetObjectItem(f, "end")->valuedouble > cJSON_GetObjectItem(f, "start")->valuedouble);
    }
    assert_true(email && card);
    char *text = cJSON_PrintUnformatted(j);
    assert_null(strstr(text, "jane.doe")); /* kinds and spans, never the matched text */
    assert_null(strstr(text, "4111"));
    free(text);
    assert_string_equal(str(j, "route"), "local");
    assert_true(str(j, "rule")[0] != '\0');
    cJSON_Delete(j);
    /* nothing was generated or recorded for it */
    char *log = daemon_log_wait(&daemon_, "path=/v1/route", 5.0);
    assert_non_null(strstr(log, "path=/v1/route status=200"));
    free(log);
}

static void test_answers_say_where_they_went(void **state)
{
    (void)state;
    long status;
    http_response raw;
    cJSON *j = post("/v1/chat/completions", "{\"model\":\"frontier\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}",
                    &status, &raw);
    assert_int_equal(status, 200);
    char h[128];
    assert_string_equal(http_header(&raw, "X-Junction-Route", h, sizeof(h)), "frontier");
    assert_string_equal(http_header(&raw, "X-Junction-Rule", h, sizeof(h)), "explicit-model");
    assert_non_null(http_header(&raw, "X-Junction-Request-Id", h, sizeof(h)));
    const cJSON *note = cJSON_GetObjectItem(j, "junction");
    assert_string_equal(str(note, "route"), "frontier");
    assert_string_equal(str(note, "zone"), "external");
    /* 2 prompt words and the fake's answer: priced at 10 / 30 USD per million */
    const cJSON *usage = cJSON_GetObjectItem(j, "usage");
    double expect = (cJSON_GetObjectItem(usage, "prompt_tokens")->valuedouble * 10 +
                     cJSON_GetObjectItem(usage, "completion_tokens")->valuedouble * 30) / 1e6;
    assert_true(cJSON_GetObjectItem(note, "cost_usd")->valuedouble > expect - 1e-6 &&
                cJSON_GetObjectItem(note, "cost_usd")->valuedouble < expect + 1e-6);
    cJSON_Delete(j);
    http_response_free(&raw);

    /* streamed: the last event before [DONE] carries the object */
    j = post("/v1/chat/completions",
             "{\"model\":\"local\",\"stream\":true,\"max_tokens\":4,\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}]}",
             &status, &raw);
    assert_int_equal(status, 200);
    assert_string_equal(http_header(&raw, "X-Junction-Route", h, sizeof(h)), "local");
    const char *done = strstr(raw.body, "data: [DONE]");
    assert_non_null(done);
    const char *last = strstr(raw.body, "\"junction\":{");
    assert_non_null(last);
    assert_true(last < done);
    cJSON_Delete(j);
    http_response_free(&raw);
}

/* The zone guarantee: a sensitive request never reaches the external
 * upstream, whichever way it asks for it; the private one may have it. */
static void test_sensitive_never_leaves_for_external(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"model\":\"frontier\",\"messages\":[{\"role\":\"user\",\"content\":\"charge 4111 1111 1111 1111 now\"}]}",
        "{\"model\":\"frontier\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"my SSN is 123-45-6789\"}]}",
        "{\"model\":\"frontier\",\"messages\":[{\"role\":\"system\",\"content\":\"key AKIAZ7QPLM3XR2T4WB6K\"},"
        "{\"role\":\"user\",\"content\":\"hi\"}]}",
        /* retries: the fake fails twice before answering */
        "{\"model\":\"frontier\",\"messages\":[{\"role\":\"user\",\"content\":\"4111 1111 1111 1111 #fault:flaky:2\"}]}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        long status;
        cJSON *j = post("/v1/chat/completions", bodies[i], &status, NULL);
        assert_int_equal(status, 403);
        const cJSON *err = cJSON_GetObjectItem(j, "error");
        assert_string_equal(str(err, "code"), "sensitive_data_blocked");
        char *text = cJSON_PrintUnformatted(j);
        for (size_t s = 0; s < sizeof(secrets) / sizeof(secrets[0]); s++) assert_null(strstr(text, secrets[s]));
        free(text);
        cJSON_Delete(j);
    }
    assert_fake_saw_no_secret();
    /* the private zone may receive it */
    long status;
    cJSON *j = post("/v1/chat/completions",
                    "{\"model\":\"onprem\",\"messages\":[{\"role\":\"user\",\"content\":\"my SSN is 123-45-6789\"}]}", &status, NULL);
    assert_int_equal(status, 200);
    cJSON_Delete(j);
    assert_int_equal(fake_count(&fake, "123-45-6789"), 1);
}

/* A conversation that reached the frontier stays there for an easy
 * follow-up; one that became sensitive comes home. */
#define HARD "Find all zeros in the indicated finite field of the given polynomial with coefficients in that field. x^5 + 3x^3 + x^2 + 2x in Z_5"

static void turn(const char *messages, const char *route, const char *rule)
{
    char body[2048];
    snprintf(body, sizeof(body), "{\"model\":\"auto\",\"max_tokens\":4,\"messages\":[%s]}", messages);
    long status;
    http_response raw;
    cJSON *j = post("/v1/chat/completions", body, &status, &raw);
    assert_int_equal(status, 200);
    char h[64];
    assert_string_equal(http_header(&raw, "X-Junction-Route", h, sizeof(h)), route);
    if (rule) assert_string_equal(http_header(&raw, "X-Junction-Rule", h, sizeof(h)), rule);
    cJSON_Delete(j);
    http_response_free(&raw);
}

static void test_conversations_stay_put(void **state)
{
    (void)state;
    /* the easy question alone stays local */
    turn("{\"role\":\"user\",\"content\":\"thanks, what colour is the sky?\"}", "local", NULL);
    /* the hard one goes out; its follow-up (easy on its own) stays with it */
    turn("{\"role\":\"user\",\"content\":\"" HARD "\"}", "frontier", "hard-to-frontier");
    turn("{\"role\":\"user\",\"content\":\"" HARD "\"},{\"role\":\"assistant\",\"content\":\"0 and 4\"},"
         "{\"role\":\"user\",\"content\":\"thanks, what colour is the sky?\"}",
         "frontier", NULL);
    /* the same conversation with a card number in it comes home */
    turn("{\"role\":\"user\",\"content\":\"" HARD "\"},{\"role\":\"assistant\",\"content\":\"0 and 4\"},"
         "{\"role\":\"user\",\"content\":\"thanks, what colour is the sky?\"},{\"role\":\"assistant\",\"content\":\"blue\"},"
         "{\"role\":\"user\",\"content\":\"charge 4111 1111 1111 1111 for it\"}",
         "local", NULL);
    /* a client-named session sticks the same way */
    const char *session[] = {"X-Junction-Session: s-42", NULL};
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/chat/completions", daemon_.url);
    http_response r;
    const char *hard = "{\"model\":\"auto\",\"max_tokens\":4,\"messages\":[{\"role\":\"user\",\"content\":\"" HARD "\"}]}";
    const char *easy = "{\"model\":\"auto\",\"max_tokens\":4,\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"}]}";
    assert_int_equal(http_request("POST", url, hard, strlen(hard), session, &r), 0);
    http_response_free(&r);
    assert_int_equal(http_request("POST", url, easy, strlen(easy), session, &r), 0);
    char h[64];
    assert_string_equal(http_header(&r, "X-Junction-Route", h, sizeof(h)), "frontier");
    assert_string_equal(http_header(&r, "X-Junction-Rule", h, sizeof(h)), "sticky");
    http_response_free(&r);
    /* another session is routed on its own */
    const char *other[] = {"X-Junction-Session: s-43", NULL};
    assert_int_equal(http_request("POST", url, easy, strlen(easy), other, &r), 0);
    assert_string_equal(http_header(&r, "X-Junction-Route", h, sizeof(h)), "local");
    http_response_free(&r);
}

/* "auto" sent to an upstream that fails before answering falls back (here
 * to the local engine), and the answer says so. */
static void test_failed_upstream_falls_back(void **state)
{
    (void)state;
    long status;
    http_response raw;
    cJSON *j = post("/v1/chat/completions",
                    "{\"model\":\"auto\",\"max_tokens\":4,\"messages\":[{\"role\":\"user\",\"content\":\"" HARD " #fault:500\"}]}",
                    &status, &raw);
    assert_int_equal(status, 200);
    char h[64];
    assert_string_equal(http_header(&raw, "X-Junction-Route", h, sizeof(h)), "local");
    assert_non_null(strstr(str(cJSON_GetObjectItem(j, "junction"), "reason"), "after frontier failed"));
    cJSON_Delete(j);
    http_response_free(&raw);
    /* a client that named the upstream gets its error: nothing is rerouted behind its back */
    j = post("/v1/chat/completions", "{\"model\":\"frontier\",\"messages\":[{\"role\":\"user\",\"content\":\"hi #fault:500\"}]}",
             &status, NULL);
    assert_int_equal(status, 502);
    cJSON_Delete(j);
}

/* on_sensitive: pseudonymize: the external upstream sees placeholders only,
 * and the client gets its values back, whole and streamed. */
static void test_pseudonymized_round_trip(void **state)
{
    (void)state;
    static char config_path[64];
    char config[1600];
    snprintf(config, sizeof(config),
             "{\"upstreams\": [{\"name\":\"frontier\",\"provider\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/v1\","
             "\"model\":\"gpt-fake\",\"zone\":\"external\"}],"
             " \"routing\": {\"pseudonymize_kinds\": [\"email\", \"person\", \"health\"],"
             "  \"rules\": [{\"name\": \"out-masked\", \"when\": {\"kinds\": [\"email\"]}, \"route\": \"frontier\","
             "              \"on_sensitive\": \"pseudonymize\"},"
             "             {\"name\": \"default\", \"route\": \"local\"}]}}",
             fake.port);
    write_temp_file(config_path, config);
    test_daemon d;
    const char *args[] = {"--config", config_path, "--model", MODELS "stories260K.gguf", "--threads", "1", NULL};
    assert_int_equal(daemon_start(&d, args, NULL), 0);
    const char *text = "Patient Jane Doe (jane.doe@acme-corp.com) was diagnosed with diabetes; write to jane.doe@acme-corp.com";
    for (int stream = 0; stream < 2; stream++) {
        char body[1024];
        snprintf(body, sizeof(body), "{\"stream\":%s,\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
                 stream ? "true" : "false", text);
        long status;
        http_response raw;
        cJSON *j = http_post_json(d.url, "/v1/chat/completions", body, &status, &raw);
        assert_int_equal(status, 200);
        char h[64];
        assert_string_equal(http_header(&raw, "X-Junction-Route", h, sizeof(h)), "frontier");
        /* the fake echoes what it was sent: the client reads its own values again */
        assert_non_null(strstr(raw.body, "jane.doe@acme-corp.com"));
        assert_null(strstr(raw.body, "<EMAIL_1>"));
        cJSON_Delete(j);
        http_response_free(&raw);
    }
    /* ... and the upstream saw placeholders, never the values */
    char *rec = fake_record(&fake);
    assert_non_null(strstr(rec, "<EMAIL_1>"));
    assert_null(strstr(rec, "jane.doe@acme-corp.com"));
    assert_null(strstr(rec, "Jane Doe"));
    free(rec);
    kill(d.pid, SIGTERM);
    assert_int_equal(daemon_wait(&d, 20), 0);
    daemon_cleanup(&d);
}

/* `junction route` decides as the daemon does from the same configuration,
 * and --explain lists every rule evaluated. */
static void test_route_command_decides_like_the_daemon(void **state)
{
    (void)state;
    const char *hard[] = {"route", "--config", config_path, "--explain", HARD, NULL};
    char *out;
    assert_int_equal(run_junction(hard, &out), 0);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_string_equal(str(j, "route"), "frontier");
    assert_string_equal(str(j, "rule"), "hard-to-frontier");
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(j, "explain")) >= 2);
    cJSON_Delete(j);
    free(out);
    const char *secret[] = {"route", "--config", config_path, "charge 4111 1111 1111 1111 now", NULL};
    assert_int_equal(run_junction(secret, &out), 0);
    j = cJSON_Parse(out);
    assert_string_equal(str(j, "route"), "local");
    assert_null(cJSON_GetObjectItem(j, "explain"));
    cJSON_Delete(j);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_endpoint_scores_without_generating),
        cmocka_unit_test(test_answers_say_where_they_went),
        cmocka_unit_test(test_sensitive_never_leaves_for_external),
        cmocka_unit_test(test_pseudonymized_round_trip),
        cmocka_unit_test(test_conversations_stay_put),
        cmocka_unit_test(test_failed_upstream_falls_back),
        cmocka_unit_test(test_route_command_decides_like_the_daemon),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
