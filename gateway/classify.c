/* classify.c: a request's difficulty and sensitivity, for the decision.
 *
 * The detectors and the heads (classifier/) are pure; this file feeds them
 * a request: the messages' texts (or the legacy prompt), the user's text
 * for the lexical features (cls_user_text: the same text `junction
 * calibrate` fitted the heads on), and, when a head reads them, the local
 * model's features of the prompt (computed by the engine, local.c, and
 * added here), and turns the outcome into what the policy, the ledger and
 * POST /v1/route need. Detection and the lexical features run wherever the
 * body is read: on the loop for small bodies, on a worker for large ones.
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

static const char *const targets[2] = {"difficulty", "sensitivity"};

static int load_head(cls_head **out, const char *path, const char *target, char *err, size_t errlen)
{
    char inner[512];
    int rc = path[0] ? cls_head_load(out, path, inner, sizeof(inner)) : cls_head_load_default(out, target, inner, sizeof(inner));
    if (rc != 0) {
        snprintf(err, errlen, "classifier.%s_head: %s", target, inner);
        return -1;
    }
    if (strcmp(cls_head_get_info(*out)->target, target)) {
        snprintf(err, errlen, "classifier.%s_head %s is a %s head: give a %s head (junction calibrate --target %s)",
                 target, path, cls_head_get_info(*out)->target, target, target);
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
    snprintf(c->head_path[0], sizeof(c->head_path[0]), "%s", cfg->classifier.difficulty_head);
    snprintf(c->head_path[1], sizeof(c->head_path[1]), "%s", cfg->classifier.sensitivity_head);
    if (load_head(&c->difficulty, c->head_path[0], targets[0], err, errlen) != 0 ||
        load_head(&c->sensitivity, c->head_path[1], targets[1], err, errlen) != 0)
        goto fail;
    const cls_head_info *d = cls_head_get_info(c->difficulty), *s = cls_head_get_info(c->sensitivity);
    c->uses = d->uses | s->uses;
    if ((d->uses & CLS_USE_HIDDEN) && (s->uses & CLS_USE_HIDDEN) && d->layer != s->layer) {
        snprintf(err, errlen, "classifier.difficulty_head probes layer %d and classifier.sensitivity_head layer %d: "
                 "one pass pools one layer; calibrate both with the same --layer", d->layer, s->layer);
        goto fail;
    }
    c->max_tokens = (int)cfg->classifier.max_tokens;
    snprintf(c->mode, sizeof(c->mode), "%s", cfg->classifier.model_features);
    *out = c;
    return 0;
fail:
    gw_classifier_free(c);
    return -1;
}

int gw_classifier_bind(gw_classifier *c, const gw_config *cfg, const eng_model *m, char *err, size_t errlen)
{
    c->model_wanted = false;
    if (!(c->uses & (CLS_USE_MODEL | CLS_USE_HIDDEN))) return 0;
    const cls_head *heads[2] = {c->difficulty, c->sensitivity};
    if (!m) {
        for (int t = 0; t < 2; t++)
            if (cls_head_get_info(heads[t])->uses & (CLS_USE_MODEL | CLS_USE_HIDDEN))
                gw_log(GW_LOG_WARN, "classifier.%s_head %s reads the local model's features, but no local model is "
                       "loaded: it scores without them (their terms count as at their fitted mean)", targets[t],
                       c->head_path[t]);
        return 0;
    }
    const eng_model_info *mi = eng_model_get_info(m);
    int layer = cfg->classifier.layer > 0 ? (int)cfg->classifier.layer : mi->n_layer >= 4 ? mi->n_layer / 4 : 1;
    for (int t = 0; t < 2; t++) {
        const cls_head_info *in = cls_head_get_info(heads[t]);
        if (!(in->uses & CLS_USE_HIDDEN) || (in->layer == layer && in->n_hidden == mi->n_embd)) continue;
        char also[128] = "";
        if (in->n_hidden == mi->n_embd)
            snprintf(also, sizeof(also), ", or set classifier.layer to %d (--classifier-layer %d)", in->layer, in->layer);
        snprintf(err, errlen, "classifier.%s_head %s probes a %d-wide hidden state at layer %d, but the model gives "
                 "%d wide and the daemon pools layer %d (classifier.layer%s): calibrate a head for this model "
                 "(junction calibrate -m MODEL --layer %d)%s", targets[t], c->head_path[t][0] ? c->head_path[t] : "(shipped)",
                 in->n_hidden, in->layer, mi->n_embd, layer, cfg->classifier.layer ? "" : " 0: n_layer/4", layer, also);
        return -1;
    }
    /* NLL and entropy need every layer; a hidden state alone only those below it */
    c->pass = (eng_feature_params){.stop_layer = c->uses & CLS_USE_MODEL ? 0 : layer,
                                   .pool_layer = c->uses & CLS_USE_HIDDEN ? layer : 0, .nll_from = 1};
    c->model_wanted = true;
    return 0;
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

/* Both heads over the features (the model's, if added): scores and verdicts. */
static int score(gw_classification *out, const gw_classifier *c, char *err, size_t errlen)
{
    double t0 = now_ms();
    if (cls_head_score(c->difficulty, &out->features, &out->difficulty, err, errlen) != 0 ||
        cls_head_score(c->sensitivity, &out->features, &out->sensitivity, err, errlen) != 0)
        return -1;
    out->difficult = out->difficulty.probability >= gw_classifier_threshold(c, true);
    out->sensitive = out->sensitivity.forced || out->sensitivity.probability >= gw_classifier_threshold(c, false);
    for (int i = 0; i < out->findings.n; i++) out->sensitive |= cls_finding_forces(&out->findings.items[i]);
    out->score_ms += now_ms() - t0;
    return 0;
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
    char *text = NULL;
    size_t len = 0;
    if (cls_user_text(out->msgs, out->n_msgs, &text, &len, err, errlen) != 0) goto fail;
    int rc = cls_lexical(text, len, &out->features, err, errlen);
    free(text);
    if (rc != 0) goto fail;
    cls_features_add_findings(&out->features, &out->findings);
    snprintf(out->model_off, sizeof(out->model_off), "%s",
             c->uses & (CLS_USE_MODEL | CLS_USE_HIDDEN) ? "not computed for this request" : "no head reads them");
    out->detect_ms = t1 - t0;
    out->score_ms = now_ms() - t1;
    if (score(out, c, err, errlen) != 0) goto fail;
    return 0;
oom:
    snprintf(err, errlen, "out of memory classifying the request");
fail:
    gw_classification_free(out);
    return -1;
}

int gw_classification_add_model(gw_classification *cls, const gw_classifier *c, const eng_features *f, char *err,
                                size_t errlen)
{
    free(cls->hidden);
    cls->hidden = NULL;
    if (f->pooled && !(cls->hidden = malloc(sizeof(float) * (size_t)f->n_pooled))) {
        snprintf(err, errlen, "out of memory for the prompt's hidden state");
        return -1;
    }
    if (f->pooled) memcpy(cls->hidden, f->pooled, sizeof(float) * (size_t)f->n_pooled);
    cls->features.model = (cls_model_features){.present = true, .nll_mean = f->nll_mean, .nll_max = f->nll_max,
                                               .entropy_last = f->entropy_last, .n_tokens = f->n_tokens,
                                               .hidden = cls->hidden, .n_hidden = f->n_pooled,
                                               .layer = f->pooled ? c->pass.pool_layer : 0};
    cls->model_off[0] = '\0';
    return score(cls, c, err, errlen);
}

void gw_classification_free(gw_classification *c)
{
    cls_findings_free(&c->findings);
    cls_features_free(&c->features);
    free(c->hidden);
    c->hidden = NULL;
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
    cJSON_AddItemToObject(root, "features", cls_features_json(&c->features));
    cJSON_AddStringToObject(root, "model_features", c->model_off[0] ? "off" : "on");
    if (c->model_off[0]) cJSON_AddStringToObject(root, "model_features_off", c->model_off);
    cJSON *t = cJSON_AddObjectToObject(root, "timing_ms");
    cJSON_AddNumberToObject(t, "detectors", c->detect_ms);
    cJSON_AddNumberToObject(t, "scoring", c->score_ms);
    if (!c->model_off[0]) cJSON_AddNumberToObject(t, "model", c->model_ms);
    return root;
}

void gw_classification_forget_texts(gw_classification *c)
{
    free(c->msgs);
    c->msgs = NULL;
    c->n_msgs = 0;
}
