/* test_calibrate.c: `junction calibrate` then `junction route`, the real binary.
 *
 * A synthetic labelled set with a separable signal (topic words that make a
 * prompt "difficult") goes through calibrate; the head it writes must then
 * route unseen prompts of each kind to the right side, score a file line by
 * line in order, and measure well on --eval. Also: the feature cache, the
 * shipped heads, findings without their text, a head that reads a model
 * (scored without one when none is given), and the tokens the model's
 * features read: the prompt as the daemon renders it for the local model.
 */
#include "testlib.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

static const char *const hard_words[] = {"integral", "eigenvalue", "theorem", "derivative", "manifold", "lemma"};
static const char *const easy_words[] = {"weather", "recipe", "garden", "holiday", "picnic", "sandwich"};
static const char *const filler[] = {"the", "what", "is", "about", "please", "explain", "this", "question", "my",
                                     "tell", "me", "how"};

static char dir[64];

static uint32_t rng(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* A prompt of one kind: filler words with a topic word in every third slot. */
static void prompt_of(bool hard, uint32_t *seed, char *out, size_t len)
{
    out[0] = 0;
    for (int w = 0; w < 9; w++) {
        const char *word = w % 3 == 1 ? (hard ? hard_words : easy_words)[rng(seed) % 6] : filler[rng(seed) % 12];
        strncat(out, word, len - strlen(out) - 2);
        strcat(out, " ");
    }
}

/* n difficulty lines: hard ones are answered by the frontier only. */
static void write_difficulty_set(const char *path, int n, uint32_t seed)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < n; i++) {
        char p[256];
        bool hard = rng(&seed) % 3 == 0;
        prompt_of(hard, &seed, p, sizeof(p));
        fprintf(fp, "{\"prompt\": \"%s#%d\", \"local_correct\": %d, \"frontier_correct\": 1}\n", p, i, !hard);
    }
    fclose(fp);
}

static char *path_in_dir(const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/junction-calib-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static cJSON *route_json(const char *const *args, int expect_status)
{
    char *out;
    int st = run_junction(args, &out);
    if (st != expect_status) fail_msg("junction route exited %d: %s", st, out);
    cJSON *j = cJSON_Parse(out);
    if (!j) fail_msg("not JSON: %s", out);
    free(out);
    return j;
}

static double score_of(const cJSON *j, const char *which)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "scores"), which);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static void test_round_trip_learns_the_signal(void **state)
{
    (void)state;
    char *data = path_in_dir("train.jsonl"), *head = path_in_dir("difficulty.json");
    write_difficulty_set(data, 600, 1);
    const char *cal[] = {"calibrate", "--data", data, "--target", "difficulty", "-o", head, "--ngram-bits", "12",
                         NULL};
    char *out;
    assert_int_equal(run_junction(cal, &out), 0);
    assert_non_null(strstr(out, "held out"));
    assert_non_null(strstr(out, "ROC AUC"));
    assert_non_null(strstr(out, "APGR"));
    assert_non_null(strstr(out, "CPT(50%)"));
    assert_non_null(strstr(out, "calibration"));
    free(out);

    /* unseen prompts of each kind land on their side of 0.5 */
    uint32_t seed = 999;
    for (int i = 0; i < 6; i++) {
        char p[256];
        bool hard = i % 2 == 0;
        prompt_of(hard, &seed, p, sizeof(p));
        const char *route[] = {"route", "--difficulty-head", head, p, NULL};
        cJSON *j = route_json(route, 0);
        double d = score_of(j, "difficulty");
        if (hard ? d <= 0.5 : d >= 0.5) fail_msg("'%s' scored %.3f", p, d);
        assert_non_null(cJSON_GetObjectItem(j, "findings"));
        assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "features"), "lexical"));
        assert_non_null(cJSON_GetObjectItem(j, "timing_ms"));
        cJSON_Delete(j);
    }

    /* --eval on a fresh set from the same distribution: far better than random */
    char *fresh = path_in_dir("fresh.jsonl");
    write_difficulty_set(fresh, 300, 77);
    const char *ev[] = {"route", "--difficulty-head", head, "--eval", fresh, "-o", "json", NULL};
    cJSON *j = route_json(ev, 0);
    assert_int_equal(cJSON_GetObjectItem(j, "n")->valueint, 300);
    assert_true(cJSON_GetObjectItem(j, "apgr")->valuedouble > 0.8);
    assert_true(cJSON_GetObjectItem(j, "auc")->valuedouble > 0.9);
    assert_true(cJSON_GetObjectItem(j, "cpt80")->valuedouble < 0.6);
    cJSON_Delete(j);

    /* a second calibration reads the cached features */
    assert_int_equal(run_junction(cal, &out), 0);
    assert_non_null(strstr(out, "features of 600 lines from"));
    free(out);
    free(fresh);
    free(data);
    free(head);
}

static void test_scores_file_in_order(void **state)
{
    (void)state;
    char *data = path_in_dir("order.jsonl"), *train = path_in_dir("train2.jsonl"), *head = path_in_dir("h2.json");
    write_difficulty_set(train, 400, 5);
    const char *cal[] = {"calibrate", "--data", train, "--target", "difficulty", "-o", head, "--ngram-bits", "12",
                         NULL};
    char *out;
    assert_int_equal(run_junction(cal, &out), 0);
    free(out);
    FILE *fp = fopen(data, "w");
    uint32_t seed = 4242;
    const bool kinds[] = {true, false, false, true, false};
    for (int i = 0; i < 5; i++) {
        char p[256];
        prompt_of(kinds[i], &seed, p, sizeof(p));
        if (i == 2) fprintf(fp, "{\"messages\": [{\"role\": \"user\", \"content\": \"%s\"}]}\n", p);
        else fprintf(fp, "{\"text\": \"%s\"}\n", p);
    }
    fclose(fp);
    const char *sc[] = {"route", "--difficulty-head", head, "--scores", data, NULL};
    assert_int_equal(run_junction(sc, &out), 0);
    char *line = out;
    for (int i = 0; i < 5; i++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = 0;
        cJSON *j = cJSON_Parse(line);
        assert_non_null(j);
        double d = cJSON_GetObjectItem(j, "difficulty")->valuedouble;
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "sensitivity")));
        if (kinds[i] ? d <= 0.5 : d >= 0.5) fail_msg("line %d scored %.3f", i + 1, d);
        cJSON_Delete(j);
        line = nl + 1;
    }
    assert_int_equal(*line, 0);
    free(out);
    /* a broken line is named */
    fp = fopen(data, "a");
    fprintf(fp, "{\"nothing\": 1}\n");
    fclose(fp);
    assert_int_equal(run_junction(sc, &out), 1);
    assert_non_null(strstr(out, ":6: needs \"prompt\""));
    free(out);
    free(data);
    free(train);
    free(head);
}

static void test_shipped_heads_and_findings(void **state)
{
    (void)state;
    /* no head flags: the shipped heads; an email is found but not shown */
    const char *text = "Please forward the lab results of my patient to anna.berg@clinic-north.org today";
    const char *plain[] = {"route", text, NULL};
    cJSON *j = route_json(plain, 0);
    double s = score_of(j, "sensitivity");
    assert_true(s >= 0 && s <= 1);
    const cJSON *f = cJSON_GetObjectItem(j, "findings");
    assert_true(cJSON_GetArraySize(f) >= 1);
    char *printed = cJSON_PrintUnformatted(j);
    assert_null(strstr(printed, "anna.berg@clinic-north.org"));
    assert_non_null(strstr(printed, "\"kind\":\"email\""));
    free(printed);
    cJSON_Delete(j);
    const char *shown[] = {"route", "--show-matches", text, NULL};
    j = route_json(shown, 0);
    printed = cJSON_PrintUnformatted(j);
    assert_non_null(strstr(printed, "anna.berg@clinic-north.org"));
    free(printed);
    cJSON_Delete(j);

    /* a validated private key forces sensitivity to 1 */
    const char *key = "deploy with this key:\n-----BEGIN OPENSSH PRIVATE KEY-----\n"
                      "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
                      "QyNTUxOQAAACDzR0t3b1l6d3p2R0t3b1l6d3p2R0t3b1l6d3p2R0t3b1l6dwAAAJg=\n"
                      "-----END OPENSSH PRIVATE KEY-----\n";
    const char *k[] = {"route", key, NULL};
    j = route_json(k, 0);
    assert_float_equal(score_of(j, "sensitivity"), 1, 0);
    cJSON *ev = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "evidence"), "sensitivity");
    assert_string_equal(cJSON_GetObjectItem(ev, "forced_by")->valuestring, "private_key");
    cJSON_Delete(j);
}

static void test_errors_say_what_to_do(void **state)
{
    (void)state;
    char *out;
    const char *no_target[] = {"calibrate", "--data", "x.jsonl", "-o", "h.json", NULL};
    assert_int_equal(run_junction(no_target, &out), 2);
    assert_non_null(strstr(out, "--target"));
    free(out);
    char *bad = path_in_dir("bad.jsonl"), *head = path_in_dir("bad.json");
    FILE *fp = fopen(bad, "w");
    fprintf(fp, "{\"prompt\": \"fine\", \"local_correct\": 1, \"frontier_correct\": 1}\n{\"prompt\": \"no labels\"}\n");
    fclose(fp);
    const char *cal[] = {"calibrate", "--data", bad, "--target", "difficulty", "-o", head, NULL};
    assert_int_equal(run_junction(cal, &out), 1);
    assert_non_null(strstr(out, ":2: needs \"local_correct\" and \"frontier_correct\""));
    free(out);
    const char *model_group[] = {"calibrate", "--data", bad, "--target", "difficulty", "-o", head, "--features",
                                 "lexical,model", NULL};
    assert_int_equal(run_junction(model_group, &out), 2);
    assert_non_null(strstr(out, "need a model"));
    free(out);
    const char *missing_head[] = {"route", "--difficulty-head", "/nonexistent.json", "hello", NULL};
    assert_int_equal(run_junction(missing_head, &out), 1);
    assert_non_null(strstr(out, "/nonexistent.json"));
    free(out);
    free(bad);
    free(head);
}

/* With a real (tiny) model: model and hidden-state features round trip, and
 * the head refuses to run without the model. */
static void test_model_features_round_trip(void **state)
{
    (void)state;
    const char *model = JUNCTION_SHARED_DIR "/models/stories260K.gguf";
    if (access(model, R_OK) != 0) skip();
    char *data = path_in_dir("m.jsonl"), *head = path_in_dir("m.json");
    write_difficulty_set(data, 200, 3);
    const char *cal[] = {"calibrate", "-m", model, "-t", "1", "--data", data, "--target", "difficulty", "-o", head,
                         "--features", "lexical,ngrams,model,hidden", "--ngram-bits", "12", NULL};
    char *out;
    assert_int_equal(run_junction(cal, &out), 0);
    free(out);
    cJSON *h;
    {
        FILE *fp = fopen(head, "rb");
        assert_non_null(fp);
        char buf[1 << 16];
        size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
        buf[n] = 0;
        fclose(fp);
        h = cJSON_Parse(buf);
    }
    assert_non_null(h);
    assert_true(cJSON_GetObjectItem(cJSON_GetObjectItem(h, "hidden"), "n_embd")->valueint > 0);
    cJSON_Delete(h);
    char p[256];
    uint32_t seed = 5;
    prompt_of(true, &seed, p, sizeof(p));
    const char *with[] = {"route", "-m", model, "-t", "1", "--difficulty-head", head, p, NULL};
    cJSON *j = route_json(with, 0);
    const cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "features"), "model");
    assert_true(cJSON_GetObjectItem(m, "n_tokens")->valueint > 1);
    assert_true(cJSON_GetObjectItem(m, "nll_mean")->valuedouble > 0);
    assert_true(score_of(j, "difficulty") > 0.5);
    assert_string_equal(cJSON_GetObjectItem(j, "model_features")->valuestring, "on");
    cJSON_Delete(j);
    /* without a model, the head scores on its other features, and says so */
    const char *without[] = {"route", "--difficulty-head", head, p, NULL};
    j = route_json(without, 0);
    assert_string_equal(cJSON_GetObjectItem(j, "model_features")->valuestring, "off");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "features"), "model")));
    assert_true(score_of(j, "difficulty") > 0 && score_of(j, "difficulty") < 1);
    cJSON_Delete(j);
    free(data);
    free(head);
}

/* The tokens `junction tokenize --bos` makes of TEXT: its word count. */
static int token_count(const char *model, const char *text)
{
    const char *tok[] = {"tokenize", "-m", model, "--bos", text, NULL};
    char *out;
    assert_int_equal(run_junction(tok, &out), 0);
    int n = 1;
    for (char *q = out; *q; q++) n += *q == ' ';
    free(out);
    return n;
}

static int route_tokens(const char *const *args)
{
    cJSON *j = route_json(args, 0);
    int n = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "features"), "model"), "n_tokens")->valueint;
    cJSON_Delete(j);
    return n;
}

/* The model's features read the prompt the local model would answer: the
 * chat template the daemon's config names (here Llama 2's [INST] format),
 * cut to its head and tail at classifier.max_tokens, as the daemon does. */
static void test_model_reads_the_rendered_prompt(void **state)
{
    (void)state;
    const char *model = JUNCTION_SHARED_DIR "/models/llama-2-tiny-random.gguf";
    if (access(model, R_OK) != 0) skip();
    const char *text = "What is the derivative of the sine function?";
    char *plain = path_in_dir("plain.json"), *llama2 = path_in_dir("llama2.json"), *cut = path_in_dir("cut.json");
    FILE *fp = fopen(plain, "w");
    fputs("{\"chat_template\": \"plain\"}", fp);
    fclose(fp);
    fp = fopen(llama2, "w");
    fputs("{\"chat_template\": \"llama2\"}", fp);
    fclose(fp);
    fp = fopen(cut, "w");
    fputs("{\"chat_template\": \"llama2\", \"classifier\": {\"max_tokens\": 8}}", fp);
    fclose(fp);
    const char *with_plain[] = {"route", "-m", model, "-t", "1", "--config", plain, text, NULL};
    const char *with_llama2[] = {"route", "-m", model, "-t", "1", "--config", llama2, text, NULL};
    const char *with_cut[] = {"route", "-m", model, "-t", "1", "--config", cut, text, NULL};
    char inst[256];
    snprintf(inst, sizeof(inst), "[INST] %s [/INST]", text);
    assert_int_equal(route_tokens(with_plain), token_count(model, text));
    assert_int_equal(route_tokens(with_llama2), token_count(model, inst));
    assert_int_equal(route_tokens(with_cut), 8);
    free(plain);
    free(llama2);
    free(cut);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_learns_the_signal),
        cmocka_unit_test(test_scores_file_in_order),
        cmocka_unit_test(test_shipped_heads_and_findings),
        cmocka_unit_test(test_errors_say_what_to_do),
        cmocka_unit_test(test_model_features_round_trip),
        cmocka_unit_test(test_model_reads_the_rendered_prompt),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
