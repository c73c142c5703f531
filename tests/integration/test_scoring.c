/* test_scoring.c: the daemon scores prompts with the local model's own
 * forward pass (an engine job) and answers from the same KV cache.
 *
 * Heads that read the model's features are fitted by `junction calibrate`
 * on a small synthetic set with stories260K (a real trained model); then
 * the real daemon must give the scores `junction route` gives (one
 * definition of the features, chat and plain prompts, a prompt cut to
 * classifier.max_tokens), for a full pass (a head reads NLL) and a pass
 * stopped at the probed layer (heads read the hidden state only); score
 * without them when told to (and say so); answer locally token for token
 * as without the pass, with every prompt token reused from it; and free the
 * engine's slot whenever the answer comes from elsewhere or the client
 * leaves, which the next requests and /metrics show.
 */
#include "testlib.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define MODEL JUNCTION_SHARED_DIR "/models/stories260K.gguf"
#define MAX_TOKENS 96 /* classifier.max_tokens: the long prompt below (166 tokens) is cut, the others (28 to 53) not */

static char dir[64];
static char head_model[128], head_hidden[128], head_hidden_sens[128];
static char config_full[128], config_stopped[128];

/* ---- the heads, fitted once ---- */

static const char *const hard_words[] = {"integral", "eigenvalue", "theorem", "derivative", "manifold", "lemma"};
static const char *const easy_words[] = {"weather", "recipe", "garden", "holiday", "picnic", "sandwich"};
static const char *const filler[] = {"the", "what", "is", "about", "please", "explain", "this", "question", "my",
                                     "tell", "me", "how"};

static uint32_t rng(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void write_training_set(const char *path, int n)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    uint32_t seed = 11;
    for (int i = 0; i < n; i++) {
        bool hard = rng(&seed) % 3 == 0;
        char p[256] = "";
        for (int w = 0; w < 9; w++) {
            strcat(p, w % 3 == 1 ? (hard ? hard_words : easy_words)[rng(&seed) % 6] : filler[rng(&seed) % 12]);
            strcat(p, " ");
        }
        fprintf(fp, "{\"prompt\": \"%s#%d\", \"local_correct\": %d, \"frontier_correct\": 1}\n", p, i, !hard);
    }
    fclose(fp);
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = 0;
    return strdup(buf);
}

static void calibrate(const char *data, const char *features, const char *out)
{
    const char *args[] = {"calibrate", "-m", MODEL, "-t", "1", "--data", data, "--target", "difficulty", "-o", out,
                          "--features", features, "--ngram-bits", "12", NULL};
    char *log;
    int st = run_junction(args, &log);
    if (st != 0) fail_msg("junction calibrate failed (%d): %s", st, log);
    free(log);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/junction-scoring-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    char data[128];
    snprintf(data, sizeof(data), "%s/train.jsonl", dir);
    write_training_set(data, 150);
    snprintf(head_model, sizeof(head_model), "%s/difficulty-model.json", dir);
    snprintf(head_hidden, sizeof(head_hidden), "%s/difficulty-hidden.json", dir);
    snprintf(head_hidden_sens, sizeof(head_hidden_sens), "%s/sensitivity-hidden.json", dir);
    calibrate(data, "lexical,ngrams,model", head_model);
    calibrate(data, "hidden", head_hidden);
    /* the same probe as a sensitivity head: both heads then read the model,
     * one its NLL (a full pass), the other its hidden state */
    char *h = slurp(head_hidden);
    cJSON *j = cJSON_Parse(h);
    free(h);
    cJSON_ReplaceItemInObject(j, "target", cJSON_CreateString("sensitivity"));
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    FILE *fp = fopen(head_hidden_sens, "w");
    fputs(text, fp);
    fclose(fp);
    free(text);
    char cfg[1024];
    snprintf(config_full, sizeof(config_full), "%s/full.json", dir);
    snprintf(cfg, sizeof(cfg), "{\"classifier\": {\"difficulty_head\": \"%s\", \"sensitivity_head\": \"%s\", "
             "\"max_tokens\": %d}}", head_model, head_hidden_sens, MAX_TOKENS);
    fp = fopen(config_full, "w");
    fputs(cfg, fp);
    fclose(fp);
    snprintf(config_stopped, sizeof(config_stopped), "%s/stopped.json", dir);
    snprintf(cfg, sizeof(cfg), "{\"classifier\": {\"difficulty_head\": \"%s\", \"max_tokens\": %d}}", head_hidden,
             MAX_TOKENS);
    fp = fopen(config_stopped, "w");
    fputs(cfg, fp);
    fclose(fp);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(dir);
    return 0;
}

/* ---- daemons and requests ---- */

/* The daemons a test started and has not stopped (static storage: the
 * teardown kills them when an assertion ends a test early). */
static test_daemon daemons[4];
static bool in_use[4];
static test_fake fake; /* test_slots_come_back's frontier */

/* Start a daemon with `args` (the test fails, with its log, when it does not start). */
static test_daemon *launch(const char *const *args)
{
    int slot = 0;
    while (slot < 4 && in_use[slot]) slot++;
    assert_true(slot < 4);
    if (daemon_start(&daemons[slot], args, NULL) != 0) {
        daemon_cleanup(&daemons[slot]);
        fail_msg("the daemon did not start");
    }
    in_use[slot] = true;
    return &daemons[slot];
}

/* The test model, one thread, no ledger, debug log, with `config` and `extra`. */
static test_daemon *start(const char *config, const char *const *extra)
{
    const char *args[32] = {"--config", config, "--model", MODEL, "--threads", "1", "--ledger", "off",
                            "--log-level", "debug"};
    int n = 10;
    for (int i = 0; extra && extra[i]; i++) args[n++] = extra[i];
    args[n] = NULL;
    return launch(args);
}

static int kill_leftovers(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++)
        if (in_use[i]) {
            daemon_cleanup(&daemons[i]);
            in_use[i] = false;
        }
    if (fake.pid > 0) fake_stop(&fake);
    return 0;
}

static void stop(test_daemon *d)
{
    in_use[d - daemons] = false;
    kill(d->pid, SIGTERM);
    int rc = daemon_wait(d, 30);
    if (rc != 0) {
        char *log = daemon_log(d);
        fprintf(stderr, "daemon exit %d; its log:\n%s\n", rc, log ? log : "");
        free(log);
    }
    daemon_cleanup(d);
    assert_int_equal(rc, 0);
}

/* The prompts: plain ones (one user message), a conversation with a system
 * prompt, and one longer than classifier.max_tokens (the pass reads its
 * head and tail). As chat messages, and as `junction route --scores` lines. */
static const char *const prompts[] = {
    "[{\"role\":\"user\",\"content\":\"please explain the integral of this manifold\"}]",
    "[{\"role\":\"user\",\"content\":\"tell me about the weather for my picnic\"}]",
    "[{\"role\":\"system\",\"content\":\"You answer in one line.\"},{\"role\":\"user\",\"content\":\"what is a lemma\"},"
     "{\"role\":\"assistant\",\"content\":\"A small theorem.\"},{\"role\":\"user\",\"content\":\"and the derivative?\"}]",
    "[{\"role\":\"user\",\"content\":\"Once upon a time there was a garden with a picnic and a sandwich and the "
     "weather was fine, and a girl asked her mother about the holiday recipe, and the mother said that the theorem "
     "of the garden is that every flower grows where the sun shines, and the girl laughed and ran to tell her "
     "brother about the eigenvalue of the sandwich, which made no sense at all\"}]",
};
#define N_PROMPTS ((int)(sizeof(prompts) / sizeof(prompts[0])))
#define LONG_PROMPT 3

static cJSON *route(const test_daemon *d, int i)
{
    char body[2048];
    snprintf(body, sizeof(body), "{\"messages\":%s}", prompts[i]);
    long status;
    cJSON *j = http_post_json(d->url, "/v1/route", body, &status, NULL);
    if (status != 200) fail_msg("POST /v1/route: %ld", status);
    return j;
}

static double num(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(o, a), b);
    if (!cJSON_IsNumber(v)) fail_msg("no number at %s.%s", a, b);
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* `junction route --scores` over every prompt: difficulty and sensitivity
 * per prompt, with the model (-m) or without. */
static void cli_scores(const char *config, bool with_model, double out[][2])
{
    char path[128];
    snprintf(path, sizeof(path), "%s/prompts.jsonl", dir);
    FILE *fp = fopen(path, "w");
    for (int i = 0; i < N_PROMPTS; i++) {
        cJSON *m = cJSON_Parse(prompts[i]);
        bool plain = cJSON_GetArraySize(m) == 1; /* a bare prompt is one user message */
        char *line;
        if (plain) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "prompt", cJSON_GetObjectItem(cJSON_GetArrayItem(m, 0), "content")->valuestring);
            line = cJSON_PrintUnformatted(o);
            cJSON_Delete(o);
        } else {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, "messages", cJSON_Duplicate(m, true));
            line = cJSON_PrintUnformatted(o);
            cJSON_Delete(o);
        }
        fprintf(fp, "%s\n", line);
        free(line);
        cJSON_Delete(m);
    }
    fclose(fp);
    const char *with[] = {"route", "-m", MODEL, "-t", "1", "--config", config, "--scores", path, NULL};
    const char *without[] = {"route", "--config", config, "--scores", path, NULL};
    char *text;
    int st = run_junction(with_model ? with : without, &text);
    if (st != 0) fail_msg("junction route: %d: %s", st, text);
    char *line = text;
    for (int i = 0; i < N_PROMPTS; i++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = 0;
        cJSON *j = cJSON_Parse(line);
        assert_non_null(j);
        out[i][0] = cJSON_GetObjectItem(j, "difficulty")->valuedouble;
        out[i][1] = cJSON_GetObjectItem(j, "sensitivity")->valuedouble;
        cJSON_Delete(j);
        line = nl + 1;
    }
    free(text);
}

/* The daemon's /v1/route scores equal `junction route`'s, computed by the
 * engine job; the response says the model's features were used. */
static void assert_same_scores(const test_daemon *d, const char *config)
{
    double want[N_PROMPTS][2];
    cli_scores(config, true, want);
    for (int i = 0; i < N_PROMPTS; i++) {
        cJSON *j = route(d, i);
        assert_string_equal(str(j, "model_features"), "on");
        double dif = num(j, "scores", "difficulty"), sen = num(j, "scores", "sensitivity");
        if (fabs(dif - want[i][0]) > 1e-4 || fabs(sen - want[i][1]) > 1e-4)
            fail_msg("prompt %d: the daemon scored %.6f / %.6f, junction route %.6f / %.6f", i, dif, sen, want[i][0],
                     want[i][1]);
        const cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "features"), "model");
        int n = cJSON_GetObjectItem(m, "n_tokens")->valueint;
        if (i == LONG_PROMPT) assert_int_equal(n, MAX_TOKENS);
        else assert_true(n > 1 && n < MAX_TOKENS);
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "timing_ms"), "model")));
        cJSON_Delete(j);
    }
}

/* One chat completion at temperature 0: its text; usage in *prompt_tokens, *cached. */
static char *answer(const test_daemon *d, const char *messages, const char *model, int *prompt_tokens, int *cached)
{
    char body[2048];
    snprintf(body, sizeof(body), "{\"model\":\"%s\",\"messages\":%s,\"temperature\":0,\"max_tokens\":24}", model,
             messages);
    long status;
    cJSON *j = http_post_json(d->url, "/v1/chat/completions", body, &status, NULL);
    if (status != 200) fail_msg("chat completion: %ld", status);
    const cJSON *u = cJSON_GetObjectItem(j, "usage");
    if (prompt_tokens) *prompt_tokens = cJSON_GetObjectItem(u, "prompt_tokens")->valueint;
    if (cached) *cached = cJSON_GetObjectItem(cJSON_GetObjectItem(u, "prompt_tokens_details"), "cached_tokens")->valueint;
    const cJSON *msg = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "message");
    char *text = strdup(cJSON_GetObjectItem(msg, "content")->valuestring);
    cJSON_Delete(j);
    return text;
}

/* The reference answers: the same daemon config with model features off
 * (one set per config: full, stopped). */
static char *references[2][N_PROMPTS];

static char **reference_answers(const char *config)
{
    char **reference = references[config == config_stopped];
    if (reference[0]) return reference;
    const char *off[] = {"--classifier-model-features", "off", NULL};
    test_daemon *d = start(config, off);
    for (int i = 0; i < N_PROMPTS; i++) reference[i] = answer(d, prompts[i], "auto", NULL, NULL);
    stop(d);
    return reference;
}

/* Answers from the scored cache equal the reference, and reuse every prompt
 * token; the long prompt's pass read only its head and tail, so its answer
 * reuses the head (after a full pass) or nothing (after a stopped one). */
static void assert_answers_reuse_the_pass(const test_daemon *d, const char *config)
{
    char **reference = reference_answers(config);
    for (int i = 0; i < N_PROMPTS; i++) {
        int pt, cached;
        char *text = answer(d, prompts[i], "auto", &pt, &cached);
        if (strcmp(text, reference[i])) fail_msg("prompt %d: '%s', without the pass '%s'", i, text, reference[i]);
        if (i == LONG_PROMPT) {
            assert_true(pt > MAX_TOKENS);
            assert_int_equal(cached, config == config_stopped ? 0 : MAX_TOKENS / 2);
        } else if (cached != pt) fail_msg("prompt %d: %d of %d prompt tokens reused", i, cached, pt);
        free(text);
    }
}

/* /metrics' value of a gauge, or -1. */
static long metric(const test_daemon *d, const char *name)
{
    char url[128];
    snprintf(url, sizeof(url), "%s/metrics", d->url);
    http_response r;
    if (http_request("GET", url, NULL, 0, NULL, &r) != 0) return -1;
    long v = -1;
    char key[128];
    snprintf(key, sizeof(key), "\n%s ", name);
    const char *at = strstr(r.body, key);
    if (at) v = strtol(at + strlen(key), NULL, 10);
    http_response_free(&r);
    return v;
}

/* Wait (up to 10 s) for a gauge to reach a value: the engine frees a slot
 * just after the reply that made it free goes out. */
static bool metric_reaches(const test_daemon *d, const char *name, long want)
{
    for (int i = 0; i < 200; i++) {
        if (metric(d, name) == want) return true;
        usleep(50000);
    }
    return metric(d, name) == want;
}

/* A long local generation, streamed, that holds the engine's slot until the
 * socket is closed. */
static int occupy_engine(const test_daemon *d)
{
    int fd = tcp_connect(d->port);
    const char *body = "{\"model\":\"local\",\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],"
                       "\"stream\":true,\"max_tokens\":1900,\"temperature\":0.9,\"seed\":3}";
    char req[512];
    snprintf(req, sizeof(req), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    assert_int_equal(tcp_send_all(fd, req, strlen(req)), 0);
    char buf[256];
    assert_true(read(fd, buf, sizeof(buf)) > 0); /* it is generating */
    return fd;
}

/* ---- the tests ---- */

/* A head reads NLL, the other a hidden state: one full pass, pooled at
 * layer n_layer/4; scores as junction route's, answers as without it, with
 * four clients at once on two slots too. */
static void test_full_pass(void **state)
{
    (void)state;
    const char *parallel[] = {"--parallel", "2", NULL};
    test_daemon *d = start(config_full, parallel);
    assert_same_scores(d, config_full);
    assert_answers_reuse_the_pass(d, config_full);
    /* the legacy text API: its prompt is the text after BOS, scored and answered alike */
    long status;
    cJSON *j = http_post_json(d->url, "/v1/completions",
                              "{\"prompt\":\"Once upon a time\",\"temperature\":0,\"max_tokens\":8}", &status, NULL);
    assert_int_equal(status, 200);
    const cJSON *u = cJSON_GetObjectItem(j, "usage");
    assert_int_equal(cJSON_GetObjectItem(u, "prompt_tokens")->valueint, 5);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(u, "prompt_tokens_details"), "cached_tokens")->valueint, 5);
    cJSON_Delete(j);
    char *log = daemon_log_wait(d, "(full pass)", 5);
    assert_non_null(strstr(log, "(full pass)"));
    assert_null(strstr(log, "layer-stopped"));
    free(log);
    assert_true(metric_reaches(d, "junction_local_active_slots", 0));
    stop(d);
}

/* Only a hidden state is read: the pass stops at its layer, and the answer
 * finishes the remaining layers from it. */
static void test_stopped_pass(void **state)
{
    (void)state;
    test_daemon *d = start(config_stopped, NULL);
    assert_same_scores(d, config_stopped);
    cJSON *j = route(d, 0);
    const cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "features"), "model");
    assert_float_equal(cJSON_GetObjectItem(m, "nll_mean")->valuedouble, 0, 0); /* no NLL from a stopped pass */
    assert_int_equal(cJSON_GetObjectItem(m, "hidden_layer")->valueint, 1);    /* stories260K: 5 layers / 4 */
    cJSON_Delete(j);
    assert_answers_reuse_the_pass(d, config_stopped);
    char *log = daemon_log_wait(d, "(layer-stopped pass)", 5);
    assert_non_null(strstr(log, "(layer-stopped pass)"));
    free(log);
    stop(d);
}

static test_daemon *concurrent_daemon;

static void *ask_in_thread(void *arg)
{
    intptr_t i = (intptr_t)arg;
    int pt, cached;
    char *text = answer(concurrent_daemon, prompts[i % N_PROMPTS], "auto", &pt, &cached);
    bool ok = !strcmp(text, references[0][i % N_PROMPTS]) && (i % N_PROMPTS == LONG_PROMPT || cached == pt);
    free(text);
    return (void *)(intptr_t)ok;
}

/* Eight scored requests at once on two slots: each answered as alone. */
static void test_concurrent_scored_requests(void **state)
{
    (void)state;
    reference_answers(config_full);
    const char *parallel[] = {"--parallel", "2", NULL};
    concurrent_daemon = start(config_full, parallel);
    pthread_t th[8];
    for (intptr_t i = 0; i < 8; i++) pthread_create(&th[i], NULL, ask_in_thread, (void *)i);
    for (int i = 0; i < 8; i++) {
        void *ok;
        pthread_join(th[i], &ok);
        if (!ok) fail_msg("concurrent request %d was answered differently", i);
    }
    assert_true(metric_reaches(concurrent_daemon, "junction_local_active_slots", 0));
    assert_int_equal(metric(concurrent_daemon, "junction_local_queue_depth"), 0);
    stop(concurrent_daemon);
}

/* classifier.model_features off: the heads score on the other features
 * alone, as junction route without a model does, and say so. */
static void test_model_features_off(void **state)
{
    (void)state;
    const char *off[] = {"--classifier-model-features", "off", NULL};
    test_daemon *d = start(config_full, off);
    double want[N_PROMPTS][2];
    cli_scores(config_full, false, want);
    for (int i = 0; i < N_PROMPTS; i++) {
        cJSON *j = route(d, i);
        assert_string_equal(str(j, "model_features"), "off");
        assert_non_null(strstr(str(j, "model_features_off"), "off"));
        assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "features"), "model")));
        assert_float_equal(num(j, "scores", "difficulty"), want[i][0], 1e-4);
        assert_float_equal(num(j, "scores", "sensitivity"), want[i][1], 1e-4);
        cJSON_Delete(j);
    }
    stop(d);
}

/* Routed upstream after the pass: the parked slot is let go (one slot: the
 * next local answers would wait forever otherwise). A client that hangs up
 * while its pass waits for the engine frees its place too; with no room
 * left, "auto" scores without the model and says why. */
static void test_slots_come_back(void **state)
{
    (void)state;
    assert_int_equal(fake_start(&fake, NULL), 0);
    char cfg[2048], path[128];
    snprintf(path, sizeof(path), "%s/upstream.json", dir);
    snprintf(cfg, sizeof(cfg),
             "{\"upstreams\": [{\"name\":\"frontier\",\"provider\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/v1\","
             "\"model\":\"gpt-fake\",\"zone\":\"external\",\"price_input_per_mtok\":1,\"price_output_per_mtok\":2}],"
             "\"classifier\": {\"difficulty_head\": \"%s\", \"max_tokens\": %d}}",
             fake.port, head_model, MAX_TOKENS);
    FILE *fp = fopen(path, "w");
    fputs(cfg, fp);
    fclose(fp);
    const char *one[] = {"--parallel", "1", "--queue-size", "1", NULL};
    test_daemon *d = start(path, one);
    for (int round = 0; round < 3; round++) {
        http_response r;
        cJSON *j = http_post_json(d->url, "/v1/chat/completions",
                                  "{\"messages\":[{\"role\":\"user\",\"content\":\"please explain the integral of "
                                  "this eigenvalue theorem\"}],\"max_tokens\":8}", &(long){0}, &r);
        char route_hdr[64];
        assert_non_null(http_header(&r, "X-Junction-Route", route_hdr, sizeof(route_hdr)));
        assert_string_equal(route_hdr, "frontier");
        cJSON_Delete(j);
        http_response_free(&r);
        int pt, cached;
        free(answer(d, prompts[1], "auto", &pt, &cached)); /* local, on the one slot */
        assert_int_equal(cached, pt);
    }
    assert_true(fake_count(&fake, "integral") >= 3);
    assert_true(metric_reaches(d, "junction_local_active_slots", 0));

    /* the slot busy, a scored request waits in the queue; its client leaves */
    int busy = occupy_engine(d);
    int fd = tcp_connect(d->port);
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"tell me about the garden\"}],\"max_tokens\":4}";
    char req[512];
    snprintf(req, sizeof(req), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Request-Id: scoring-gone\r\n"
             "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
    assert_int_equal(tcp_send_all(fd, req, strlen(req)), 0);
    assert_true(metric_reaches(d, "junction_local_queue_depth", 1));
    /* no room now (one running, one waiting): "auto" scores without the model */
    cJSON *j = route(d, 0);
    assert_string_equal(str(j, "model_features"), "off");
    assert_non_null(strstr(str(j, "model_features_off"), "no room"));
    cJSON_Delete(j);
    close(fd);
    char *log = daemon_log_wait(d, "id=scoring-gone method=POST path=/v1/chat/completions status=499", 10);
    assert_non_null(strstr(log, "id=scoring-gone method=POST path=/v1/chat/completions status=499"));
    free(log);
    close(busy);
    assert_true(metric_reaches(d, "junction_local_active_slots", 0));
    assert_int_equal(metric(d, "junction_local_queue_depth"), 0);
    int pt, cached;
    free(answer(d, prompts[0], "local", &pt, &cached));
    stop(d);
    fake_stop(&fake);
}

/* classifier.model_features on: every routed request is scored, so a full
 * queue is a 429 (and the engine is free again after it). */
static void test_model_features_on_queue_full(void **state)
{
    (void)state;
    const char *on[] = {"--classifier-model-features", "on", "--queue-size", "0", NULL};
    test_daemon *d = start(config_stopped, on);
    int busy = occupy_engine(d);
    http_response r;
    assert_int_equal(http_post(d->url, "/v1/route", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r), 0);
    assert_int_equal(r.status, 429);
    assert_non_null(strstr(r.body, "engine_busy"));
    http_response_free(&r);
    close(busy);
    assert_true(metric_reaches(d, "junction_local_active_slots", 0));
    cJSON *j = route(d, 1);
    assert_string_equal(str(j, "model_features"), "on");
    cJSON_Delete(j);
    stop(d);
}

/* A head probing another layer than the daemon pools is refused at start,
 * naming its file and what to do; without a local model, a head that reads
 * its features starts with a warning and scores without them. */
static void test_heads_checked_at_start(void **state)
{
    (void)state;
    test_daemon refused;
    const char *args[] = {"--config", config_stopped, "--model", MODEL, "--threads", "1", "--ledger", "off",
                          "--classifier-layer", "2", NULL};
    assert_int_equal(daemon_start(&refused, args, NULL), -1); /* it exited: nothing left to kill */
    char *log = daemon_log(&refused);
    daemon_cleanup(&refused);
    assert_non_null(strstr(log, head_hidden));
    assert_non_null(strstr(log, "at layer 1"));
    assert_non_null(strstr(log, "--classifier-layer 1"));
    free(log);
    char path[128], cfg[1024];
    snprintf(path, sizeof(path), "%s/no-model.json", dir);
    snprintf(cfg, sizeof(cfg), "{\"upstreams\": [{\"name\":\"frontier\",\"provider\":\"openai\","
             "\"base_url\":\"http://127.0.0.1:9/v1\",\"model\":\"m\",\"zone\":\"external\"}],"
             "\"classifier\": {\"difficulty_head\": \"%s\"}}", head_model);
    FILE *fp = fopen(path, "w");
    fputs(cfg, fp);
    fclose(fp);
    const char *no_model[] = {"--config", path, "--ledger", "off", NULL};
    test_daemon *d = launch(no_model);
    log = daemon_log(d);
    assert_non_null(strstr(log, "scores without them"));
    free(log);
    cJSON *j = route(d, 0);
    assert_string_equal(str(j, "model_features"), "off");
    assert_string_equal(str(j, "model_features_off"), "no local model is loaded");
    cJSON_Delete(j);
    stop(d);
}

int main(void)
{
    if (access(MODEL, R_OK) != 0) {
        fprintf(stderr, "test_scoring: %s is missing\n", MODEL);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_full_pass, kill_leftovers),
        cmocka_unit_test_teardown(test_stopped_pass, kill_leftovers),
        cmocka_unit_test_teardown(test_concurrent_scored_requests, kill_leftovers),
        cmocka_unit_test_teardown(test_model_features_off, kill_leftovers),
        cmocka_unit_test_teardown(test_slots_come_back, kill_leftovers),
        cmocka_unit_test_teardown(test_model_features_on_queue_full, kill_leftovers),
        cmocka_unit_test_teardown(test_heads_checked_at_start, kill_leftovers),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < N_PROMPTS; i++) free(references[c][i]);
    return rc;
}
