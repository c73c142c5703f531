/* classify.c: a request's difficulty and sensitivity, for the decision.
 *
 * The detectors and the heads (classifier/) are pure; this file feeds them
 * a request: the messages' texts (or the legacy prompt), the user's text
 * for the lexical features (cls_user_text: the same text `junction
 * calibrate` fitted the heads on), and turns the outcome into what the
 * policy, the ledger and POST /v1/route need. It runs wherever the body is
 * read: on the loop for small bodies, on a worker for large ones.
 */
#include "classify.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int load_head(cls_head **out, const char *path, const char *target, char *err, size_t errlen)
{
    char inner[512];
    int rc = path[0] ? cls_head_load(out, path, inner, sizeof(inner)) : cls_head_load_default(out, target, inner, sizeof(inner));
    if (rc != 0) {
        snprintf(err, errlen, "classifier.%s_head: %s", target, inner);
        return -1;
    }
    /* The daemon computes no model features yet: a head that needs them
     * cannot score here (junction route and calibrate can). */
    if (cls_head_get_info(*out)->uses & (CLS_USE_MODEL | CLS_USE_HIDDEN)) {
        snprintf(err, errlen, "classifier.%s_head %s reads the local model's features, which the daemon does not "
                 "compute yet; fit a head without them (junction calibrate --features lexical,ngrams,detectors)",
                 target, path[0] ? path : "(default)");
        cls_head_free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

int gw_classifier_new(gw_classifier **out, const gw_config *cfg, char *err, size_t errlen)
{
    gw_classifier *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    cJSON *rules = cJSON_Parse(cfg->classifier.detectors);
    char inner[512];
    int rc = cls_detector_new(&c->detector, cJSON_GetArraySize(rules) > 0 ? rules : NULL, inner, sizeof(inner));
    cJSON_Delete(rules);
    if (rc != 0) {
        snprintf(err, errlen, "classifier.detectors: %s", inner);
        goto fail;
    }
    if (load_head(&c->difficulty, cfg->classifier.difficulty_head, "difficulty", err, errlen) != 0 ||
        load_head(&c->sensitivity, cfg->classifier.sensitivity_head, "sensitivity", err, errlen) != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    gw_classifier_free(c);
    return -1;
}

void gw_classifier_free(gw_classifier *c)
{
    if (!c) return;
    cls_detector_free(c->detector);
    cls_head_free(c->difficulty);
    cls_head_free(c->sensitivity);
    free(c);
}

float gw_classifier_threshold(const gw_classifier *c, bool difficulty)
{
    return cls_head_get_info(difficulty ? c->difficulty : c->sensitivity)->threshold;
}

/* "email,credit_card": each kind found, once, in the order first found. */
static void list_kinds(gw_classification *out)
{
    size_t at = 0;
    out->kinds[0] = '\0';
    for (int i = 0; i < out->findings.n; i++) {
        const cls_finding *f = &out->findings.items[i];
        const char *kind = f->custom_kind ? f->custom_kind : cls_kind_name(f->kind);
        bool seen = false;
        for (int j = 0; j < i && !seen; j++) {
            const cls_finding *g = &out->findings.items[j];
            seen = !strcmp(g->custom_kind ? g->custom_kind : cls_kind_name(g->kind), kind);
        }
        if (seen || at + strlen(kind) + 2 > sizeof(out->kinds)) continue;
        at += (size_t)snprintf(out->kinds + at, sizeof(out->kinds) - at, "%s%s", at ? "," : "", kind);
        if (out->n_kinds < GW_MAX_KINDS) out->kind_list[out->n_kinds++] = kind;
    }
}

int gw_classify(const gw_classifier *c, const cJSON *body, gw_api_kind api, gw_classification *out, char *err,
                size_t errlen)
{
    memset(out, 0, sizeof(*out));
    double t0 = now_ms();
    if (api != GW_API_TEXT) {
        if (cls_messages_from_json(cJSON_GetObjectItemCaseSensitive(body, "messages"), &out->msgs, &out->n_msgs, err,
                                   errlen) != 0)
            return -1;
    } else {
        const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(body, "prompt");
        if (!(out->msgs = malloc(sizeof(*out->msgs)))) goto oom;
        out->msgs[0] = (cls_message){"user", prompt->valuestring, strlen(prompt->valuestring), 0};
        out->n_msgs = 1;
    }
    if (cls_detect(c->detector, out->msgs, out->n_msgs, &out->findings, err, errlen) != 0) goto fail;
    list_kinds(out);
    double t1 = now_ms();
    cls_features f;
    memset(&f, 0, sizeof(f));
    char *text = NULL;
    size_t len = 0;
    if (cls_user_text(out->msgs, out->n_msgs, &text, &len, err, errlen) != 0) goto fail;
    int rc = cls_lexical(text, len, &f, err, errlen);
    free(text);
    if (rc != 0) goto fail_features;
    cls_features_add_findings(&f, &out->findings);
    if (cls_head_score(c->difficulty, &f, &out->difficulty, err, errlen) != 0 ||
        cls_head_score(c->sensitivity, &f, &out->sensitivity, err, errlen) != 0)
        goto fail_features;
    cls_features_free(&f);
    out->difficult = out->difficulty.probability >= gw_classifier_threshold(c, true);
    out->sensitive = out->sensitivity.forced || out->sensitivity.probability >= gw_classifier_threshold(c, false);
    for (int i = 0; i < out->findings.n; i++) out->sensitive |= cls_finding_forces(&out->findings.items[i]);
    double t2 = now_ms();
    out->detect_ms = t1 - t0;
    out->score_ms = t2 - t1;
    return 0;
oom:
    snprintf(err, errlen, "out of memory classifying the request");
    goto fail;
fail_features:
    cls_features_free(&f);
fail:
    gw_classification_free(out);
    return -1;
}

void gw_classification_free(gw_classification *c)
{
    cls_findings_free(&c->findings);
    free(c->msgs);
    c->msgs = NULL;
    c->n_msgs = 0;
}

cJSON *gw_classification_scores_json(const gw_classification *c)
{
    cJSON *s = cJSON_CreateObject();
    cJSON_AddNumberToObject(s, "difficulty", c->difficulty.probability);
    cJSON_AddNumberToObject(s, "sensitivity", c->sensitivity.probability);
    return s;
}

cJSON *gw_classification_findings_json(const gw_classification *c)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < c->findings.n; i++) {
        const cls_finding *f = &c->findings.items[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "kind", f->custom_kind ? f->custom_kind : cls_kind_name(f->kind));
        cJSON_AddNumberToObject(o, "message", f->message);
        cJSON_AddNumberToObject(o, "start", (double)f->start);
        cJSON_AddNumberToObject(o, "end", (double)f->end);
        cJSON_AddNumberToObject(o, "confidence", f->confidence);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

/* The evidence behind a score: the features that moved it most. */
static cJSON *evidence_json(const cls_score *s)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < s->n_evidence; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "feature", s->evidence[i].name);
        cJSON_AddNumberToObject(o, "contribution", s->evidence[i].contribution);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

cJSON *gw_classification_json(const gw_classification *c)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "scores", gw_classification_scores_json(c));
    cJSON_AddBoolToObject(root, "sensitive", c->sensitive);
    cJSON_AddBoolToObject(root, "difficult", c->difficult);
    cJSON_AddItemToObject(root, "findings", gw_classification_findings_json(c));
    cJSON *ev = cJSON_AddObjectToObject(root, "evidence");
    cJSON_AddItemToObject(ev, "difficulty", evidence_json(&c->difficulty));
    cJSON_AddItemToObject(ev, "sensitivity", evidence_json(&c->sensitivity));
    if (c->sensitivity.forced) cJSON_AddStringToObject(ev, "sensitivity_forced_by", c->sensitivity.forced_by);
    cJSON *t = cJSON_AddObjectToObject(root, "timing_ms");
    cJSON_AddNumberToObject(t, "detectors", c->detect_ms);
    cJSON_AddNumberToObject(t, "scoring", c->score_ms);
    return root;
}

void gw_classification_forget_texts(gw_classification *c)
{
    free(c->msgs);
    c->msgs = NULL;
    c->n_msgs = 0;
}
