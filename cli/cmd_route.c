/* cmd_route.c: `junction route`: what the classifier makes of a prompt.
 *
 * Why: an operator tuning heads or detectors needs to see, without a daemon,
 * the two scores a request gets and the evidence behind them, to score a
 * file of prompts, and to measure a head on labelled data with the same
 * metrics calibrate prints. The feature extraction here (detectors, words,
 * the local model's pass) is also what `junction calibrate` fits on, so a
 * head is always scored on features made the way it was fitted; the model's
 * pass reads the prompt as the daemon renders it (gw_prompt_render), so the
 * daemon sees the same numbers too.
 */
#include "cli.h"
#include "commands.h"
#include "gateway.h"
#include "policy.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* ---- shared with cmd_calibrate.c (declared in cli.h) ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A bare text is one user message, to the detectors and to the model. */
static int one_user_message(const char *text, cli_request *r)
{
    cJSON *m = cJSON_CreateObject();
    r->owned = cJSON_CreateArray();
    r->msgs = malloc(sizeof(*r->msgs));
    if (!m || !r->owned || !r->msgs || !cJSON_AddStringToObject(m, "role", "user") ||
        !cJSON_AddStringToObject(m, "content", text)) {
        cJSON_Delete(m);
        return -1;
    }
    cJSON_AddItemToArray(r->owned, m);
    r->messages = r->owned;
    r->msgs[0] = (cls_message){"user", text, strlen(text), 0};
    r->n_msgs = 1;
    return 0;
}

int cli_request_from_json(const cJSON *obj, cli_request *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(obj, "messages");
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(obj, "prompt");
    if (!prompt) prompt = cJSON_GetObjectItemCaseSensitive(obj, "text");
    if (cJSON_IsArray(messages)) {
        if (cls_messages_from_json(messages, &r->msgs, &r->n_msgs, err, errlen)) return -1;
        r->messages = messages;
    } else if (cJSON_IsString(prompt)) {
        if (one_user_message(prompt->valuestring, r)) goto oom;
    } else {
        snprintf(err, errlen, "needs \"prompt\" or \"text\" (a string) or \"messages\" (an OpenAI messages array)");
        return -1;
    }
    if (cls_user_text(r->msgs, r->n_msgs, &r->text, &r->len, err, errlen)) {
        cli_request_free(r);
        return -1;
    }
    return 0;
oom:
    cli_request_free(r);
    snprintf(err, errlen, "out of memory reading a request");
    return -1;
}

int cli_request_from_text(const char *text, cli_request *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    if (one_user_message(text, r) == 0 && cls_user_text(r->msgs, r->n_msgs, &r->text, &r->len, err, errlen) == 0)
        return 0;
    if (!r->text) snprintf(err, errlen, "out of memory reading the text");
    cli_request_free(r);
    return -1;
}

void cli_request_free(cli_request *r)
{
    free(r->msgs);
    free(r->text);
    cJSON_Delete(r->owned);
    memset(r, 0, sizeof(*r));
}

static char *read_text_file(const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    long size = -1;
    if (fp && fseek(fp, 0, SEEK_END) == 0 && (size = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)size + 1)) && fread(buf, 1, (size_t)size, fp) == (size_t)size) {
        buf[size] = 0;
        fclose(fp);
        return buf;
    }
    snprintf(err, errlen, "cannot read %s: %s", path, errno ? strerror(errno) : "read error");
    free(buf);
    if (fp) fclose(fp);
    return NULL;
}

/* The "classifier" object of a daemon config file (heads, detectors,
 * max_tokens) and its chat_template. */
static int read_config(cli_classifier *c, const char *path, char *err, size_t errlen)
{
    char *text = read_text_file(path, err, errlen);
    if (!text) return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    int rc = -1;
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(root, "classifier");
    if (!cJSON_IsObject(root) || (cl && !cJSON_IsObject(cl))) {
        snprintf(err, errlen, "%s: not a JSON object with an optional \"classifier\" object", path);
        goto done;
    }
    const cJSON *dh = cJSON_GetObjectItemCaseSensitive(cl, "difficulty_head");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(cl, "sensitivity_head");
    const cJSON *det = cJSON_GetObjectItemCaseSensitive(cl, "detectors");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(cl, "max_tokens");
    const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(root, "chat_template");
    if (cJSON_IsString(tmpl)) snprintf(c->chat_template, sizeof(c->chat_template), "%s", tmpl->valuestring);
    if (cJSON_IsString(dh) && *dh->valuestring) c->difficulty_head = strdup(dh->valuestring);
    if (cJSON_IsString(sh) && *sh->valuestring) c->sensitivity_head = strdup(sh->valuestring);
    if (cJSON_IsNumber(mt) && mt->valuedouble >= 8) c->max_tokens = (int)mt->valuedouble;
    char inner[400];
    if (det && cls_detector_new(&c->detector, det, inner, sizeof(inner))) {
        snprintf(err, errlen, "%s: classifier.detectors: %s", path, inner);
        goto done;
    }
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

int cli_classifier_open(cli_classifier *c, const char *cmd, const char *config, const cli_engine_opts *eo)
{
    memset(c, 0, sizeof(*c));
    c->max_tokens = 512;
    snprintf(c->chat_template, sizeof(c->chat_template), "auto");
    char err[512];
    if (config && read_config(c, config, err, sizeof(err))) {
        fprintf(stderr, "junction %s: %s\n", cmd, err);
        cli_classifier_close(c);
        return -1;
    }
    if (!c->detector && cls_detector_new(&c->detector, NULL, err, sizeof(err))) {
        fprintf(stderr, "junction %s: %s\n", cmd, err);
        cli_classifier_close(c);
        return -1;
    }
    if (eo->model && cli_load(cmd, eo, &c->model, &c->ctx)) {
        cli_classifier_close(c);
        return -1;
    }
    if (c->model) c->llama2_chat = gw_chat_template_llama2(c->model, c->chat_template);
    return 0;
}

void cli_classifier_close(cli_classifier *c)
{
    eng_ctx_free(c->ctx);
    eng_model_free(c->model);
    cls_detector_free(c->detector);
    free(c->difficulty_head);
    free(c->sensitivity_head);
    memset(c, 0, sizeof(*c));
}

int cli_default_layer(const cli_classifier *c)
{
    int n_layer = c->model ? eng_model_get_info(c->model)->n_layer : 0;
    return n_layer >= 4 ? n_layer / 4 : n_layer > 0 ? 1 : 0;
}

/* The local model's pass over the prompt as the daemon renders it for the
 * model (gw_prompt_render: chat template, head and tail past max_tokens):
 * NLL, entropy, pooled state. */
static int model_features(const cli_classifier *c, const cli_request *r, cls_model_features *mf, char *err,
                          size_t errlen)
{
    gw_prompt p;
    if (gw_prompt_render(&p, c->model, c->llama2_chat, r->messages, NULL, c->max_tokens)) {
        snprintf(err, errlen, "out of memory rendering a %zu-byte prompt", r->len);
        return -1;
    }
    eng_feature_params fp = {.pool_layer = c->layer, .nll_from = 1};
    eng_features ef;
    int rc = eng_prompt_features(c->ctx, p.scored, p.n_scored, &fp, &ef, err, errlen);
    gw_prompt_free(&p);
    if (rc) return -1;
    *mf = (cls_model_features){.present = true, .nll_mean = ef.nll_mean, .nll_max = ef.nll_max,
                               .entropy_last = ef.entropy_last, .n_tokens = ef.n_tokens, .hidden = ef.pooled,
                               .n_hidden = ef.n_pooled, .layer = ef.pooled ? c->layer : 0};
    return 0;
}

int cli_classify(const cli_classifier *c, const cli_request *r, cls_features *f, cls_findings *findings,
                 double *timing_ms, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    double t0 = now_ms();
    if (cls_detect(c->detector, r->msgs, r->n_msgs, findings, err, errlen)) return -1;
    cls_features_add_findings(f, findings);
    double t1 = now_ms();
    if (cls_lexical(r->text, r->len, f, err, errlen)) goto fail;
    double t2 = now_ms();
    if (c->model && model_features(c, r, &f->model, err, errlen)) goto fail;
    double t3 = now_ms();
    if (timing_ms) {
        timing_ms[0] = t1 - t0;
        timing_ms[1] = t2 - t1;
        timing_ms[2] = t3 - t2;
    }
    return 0;
fail:
    cls_findings_free(findings);
    cli_features_free(f);
    return -1;
}

void cli_features_free(cls_features *f)
{
    free((void *)f->model.hidden);
    f->model.hidden = NULL;
    cls_features_free(f);
}

/* ---- junction route ---- */

typedef struct {
    cls_head *heads[2];        /* difficulty, sensitivity */
} route_heads;

static const char *const head_targets[2] = {"difficulty", "sensitivity"};

static void usage(void)
{
    printf("usage: junction route [-m MODEL] [options] TEXT\n"
           "       junction route [-m MODEL] [options] --scores FILE.jsonl\n"
           "       junction route [-m MODEL] [options] --eval FILE.jsonl [-o json]\n\n"
           "Classify TEXT as the daemon would and print one JSON object: scores\n"
           "(difficulty, sensitivity), findings (kind, message, start, end, confidence),\n"
           "features, evidence, timing_ms, and the policy's decision for \"auto\" (route,\n"
           "zone, rule, reason; upstreams and routing.* from --config). --scores prints one JSON line per input\n"
           "line ({\"prompt\"|\"text\"|\"messages\"}) with its difficulty and sensitivity;\n"
           "--eval measures the heads on labelled lines (local_correct/frontier_correct:\n"
           "AUC, APGR, CPT(50%%), CPT(80%%); sensitive: precision, recall, per kind).\n\n"
           "  --difficulty-head FILE   head JSON (default: classifier.difficulty_head of\n"
           "                           --config, else the shipped heads/difficulty.json)\n"
           "  --sensitivity-head FILE  likewise for sensitivity\n"
           "  --config FILE            daemon config: its \"classifier\" object (heads,\n"
           "                           detectors, max_tokens)\n"
           "  --max-tokens N           prompt tokens the model scores (head and tail; 512)\n"
           "  --show-matches           include the matched text of findings and n-grams\n"
           "  --explain                with TEXT: every policy rule evaluated and its outcome\n"
           "  -o json                  --eval: print JSON instead of a table\n"
           "The model scores the prompt as the daemon renders it for the local model\n"
           "(--config's chat_template). Without -m, heads that read model features\n"
           "score without them (\"model_features\": \"off\"), as the daemon does with\n"
           "classifier.model_features off; the shipped heads need no model.\n" CLI_ENGINE_HELP);
}

static int load_heads(route_heads *h, const cli_classifier *c, const char *flags[2])
{
    const char *from_config[2] = {c->difficulty_head, c->sensitivity_head};
    for (int t = 0; t < 2; t++) {
        char path[4096], err[600];
        if (flags[t]) snprintf(path, sizeof(path), "%s", flags[t]);
        else if (from_config[t]) snprintf(path, sizeof(path), "%s", from_config[t]);
        else snprintf(path, sizeof(path), "(the shipped %s head)", head_targets[t]);
        int rc = flags[t] || from_config[t] ? cls_head_load(&h->heads[t], path, err, sizeof(err))
                                             : cls_head_load_default(&h->heads[t], head_targets[t], err, sizeof(err));
        if (rc) {
            fprintf(stderr, "junction route: %s\n", err);
            return -1;
        }
        if (strcmp(cls_head_get_info(h->heads[t])->target, head_targets[t])) {
            fprintf(stderr, "junction route: %s is a %s head, given as the %s head\n", path,
                    cls_head_get_info(h->heads[t])->target, head_targets[t]);
            return -1;
        }
    }
    return 0;
}

/* Heads that probe a hidden state fix the layer to pool; two must agree. */
static int heads_layer(const route_heads *h, cli_classifier *c)
{
    for (int t = 0; t < 2; t++) {
        const cls_head_info *in = cls_head_get_info(h->heads[t]);
        if (!(in->uses & CLS_USE_HIDDEN)) continue;
        if (c->layer && c->layer != in->layer) {
            fprintf(stderr, "junction route: the heads probe different layers (%d and %d); calibrate them on one\n",
                    c->layer, in->layer);
            return -1;
        }
        c->layer = in->layer;
    }
    return 0;
}

static cJSON *span_json(const cls_evidence *e, const cli_request *r, bool show)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "feature", e->name);
    cJSON_AddNumberToObject(o, "value", e->value);
    cJSON_AddNumberToObject(o, "contribution", e->contribution);
    if (e->has_span) {
        cJSON_AddNumberToObject(o, "start", e->start);
        cJSON_AddNumberToObject(o, "end", e->end);
        if (show && e->end <= r->len) {
            char *s = strndup(r->text + e->start, e->end - e->start);
            if (s) cJSON_AddStringToObject(o, "match", s);
            free(s);
        }
    }
    return o;
}

static cJSON *one_json(const cls_score s[2], const cls_features *f, const cls_findings *fi, const cli_request *r,
                       const double t[4], bool show)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *scores = cJSON_AddObjectToObject(root, "scores");
    cJSON *evidence = cJSON_AddObjectToObject(root, "evidence");
    for (int k = 0; k < 2; k++) {
        cJSON_AddNumberToObject(scores, head_targets[k], s[k].probability);
        cJSON *ev = cJSON_AddObjectToObject(evidence, head_targets[k]);
        cJSON_AddNumberToObject(ev, "logit", s[k].logit);
        if (s[k].forced) cJSON_AddStringToObject(ev, "forced_by", s[k].forced_by);
        cJSON *top = cJSON_AddArrayToObject(ev, "top");
        for (int i = 0; i < s[k].n_evidence; i++) cJSON_AddItemToArray(top, span_json(&s[k].evidence[i], r, show));
    }
    cJSON *findings = cJSON_AddArrayToObject(root, "findings");
    for (int i = 0; i < fi->n; i++) {
        const cls_finding *x = &fi->items[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "kind", x->custom_kind ? x->custom_kind : cls_kind_name(x->kind));
        cJSON_AddNumberToObject(o, "message", x->message);
        cJSON_AddNumberToObject(o, "start", (double)x->start);
        cJSON_AddNumberToObject(o, "end", (double)x->end);
        cJSON_AddNumberToObject(o, "confidence", x->confidence);
        if (show && x->message >= 0 && x->message < r->n_msgs && x->end <= r->msgs[x->message].len) {
            char *m = strndup(r->msgs[x->message].text + x->start, x->end - x->start);
            if (m) cJSON_AddStringToObject(o, "match", m);
            free(m);
        }
        cJSON_AddItemToArray(findings, o);
    }
    cJSON_AddItemToObject(root, "features", cls_features_json(f));
    cJSON_AddStringToObject(root, "model_features", f->model.present ? "on" : "off");
    cJSON *tm = cJSON_AddObjectToObject(root, "timing_ms");
    static const char *const names[4] = {"detectors", "lexical", "model", "heads"};
    double total = 0;
    for (int i = 0; i < 4; i++) {
        cJSON_AddNumberToObject(tm, names[i], round(t[i] * 1000) / 1000);
        total += t[i];
    }
    cJSON_AddNumberToObject(tm, "total", round(total * 1000) / 1000);
    return root;
}

/* Classify one request and score it with both heads. */
static int score_request(const cli_classifier *c, const route_heads *h, const cli_request *r, cls_score s[2],
                         cls_features *f, cls_findings *fi, double t[4], char *err, size_t errlen)
{
    if (cli_classify(c, r, f, fi, t, err, errlen)) return -1;
    double t0 = now_ms();
    for (int k = 0; k < 2; k++)
        if (cls_head_score(h->heads[k], f, &s[k], err, errlen)) {
            cli_features_free(f);
            cls_findings_free(fi);
            return -1;
        }
    t[3] = now_ms() - t0;
    return 0;
}

/* What the policy would decide for these scores and findings, as the
 * daemon does for "auto" (every upstream taken as healthy, a local model
 * as loaded, no budget): route, zone, rule, reason, and with --explain
 * every rule's outcome. */
static void add_decision(cJSON *o, const pol_policy *policy, const route_heads *h, const cls_score s[2],
                         const cls_findings *fi, const gw_config *cfg, bool explain)
{
    const char *kinds[64];
    int n_kinds = 0;
    bool forced = s[1].forced;
    for (int i = 0; i < fi->n; i++) {
        const cls_finding *f = &fi->items[i];
        const char *k = f->custom_kind ? f->custom_kind : cls_kind_name(f->kind);
        bool seen = false;
        for (int j = 0; j < n_kinds && !seen; j++) seen = !strcmp(kinds[j], k);
        if (!seen && n_kinds < 64) kinds[n_kinds++] = k;
        forced |= cls_finding_forces(f);
    }
    pol_route_state routes[64];
    for (int i = 0; i < cfg->n_upstreams && i < 64; i++)
        routes[i] = (pol_route_state){cfg->upstreams[i].name, false, 0, cfg->upstreams[i].max_in_flight,
                                      cfg->upstreams[i].price_input_per_mtok > 0 || cfg->upstreams[i].price_output_per_mtok > 0};
    pol_signals sig = {.has_difficulty = true, .has_sensitivity = true, .difficulty = s[0].probability,
                       .sensitivity = s[1].probability,
                       .difficulty_threshold = cls_head_get_info(h->heads[0])->threshold,
                       .sensitivity_threshold = cls_head_get_info(h->heads[1])->threshold, .forced = forced,
                       .kinds = kinds, .n_kinds = n_kinds, .model = "auto", .local_loaded = true,
                       .routes = routes, .n_routes = cfg->n_upstreams < 64 ? cfg->n_upstreams : 64};
    pol_decision d;
    char err[256];
    cJSON *steps = explain ? cJSON_CreateArray() : NULL;
    if (pol_decide(policy, &sig, &d, steps, err, sizeof(err)) != 0) {
        cJSON_AddStringToObject(o, "decision_error", err);
        cJSON_Delete(steps);
        return;
    }
    static const char *const outcomes[] = {[POL_ROUTE] = "route", [POL_BLOCKED] = "blocked", [POL_UNAVAILABLE] = "unavailable"};
    cJSON_AddStringToObject(o, "outcome", outcomes[d.outcome]);
    cJSON_AddStringToObject(o, "route", d.route);
    cJSON_AddStringToObject(o, "zone", d.zone);
    cJSON_AddStringToObject(o, "rule", d.rule);
    cJSON_AddStringToObject(o, "reason", d.reason);
    if (steps) cJSON_AddItemToObject(o, "explain", steps);
}

static int route_text(const cli_classifier *c, const route_heads *h, const char *text, bool show,
                      const pol_policy *policy, const gw_config *cfg, bool explain)
{
    cli_request r;
    cls_score s[2];
    cls_features f;
    cls_findings fi;
    double t[4];
    char err[600];
    if (cli_request_from_text(text, &r, err, sizeof(err)) || score_request(c, h, &r, s, &f, &fi, t, err, sizeof(err))) {
        fprintf(stderr, "junction route: %s\n", err);
        cli_request_free(&r);
        return 1;
    }
    cJSON *o = one_json(s, &f, &fi, &r, t, show);
    add_decision(o, policy, h, s, &fi, cfg, explain);
    char *out = cJSON_Print(o);
    printf("%s\n", out);
    free(out);
    cJSON_Delete(o);
    cli_features_free(&f);
    cls_findings_free(&fi);
    cli_request_free(&r);
    return 0;
}

/* Labels of an --eval line: -1 when absent. */
static int label_of(const cJSON *line, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(line, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1) ? (int)v->valuedouble : -1;
}

typedef struct {
    int n, cap;
    float *dif, *sen;
    int *lok, *fok, *sens;
    /* per detector kind: examples with a finding, and of those labelled sensitive */
    char kinds[CLS_DET_MAX][CLS_NAME_MAX];
    int hits[CLS_DET_MAX], hits_sensitive[CLS_DET_MAX], n_kinds;
} eval_data;

static int eval_add(eval_data *e, const cls_score s[2], const cls_features *f, int lok, int fok, int sens)
{
    if (e->n == e->cap) {
        int cap = e->cap ? 2 * e->cap : 1024;
        float *d = realloc(e->dif, sizeof(float) * (size_t)cap);
        if (d) e->dif = d;
        float *q = realloc(e->sen, sizeof(float) * (size_t)cap);
        if (q) e->sen = q;
        int *a = realloc(e->lok, sizeof(int) * (size_t)cap);
        if (a) e->lok = a;
        int *b = realloc(e->fok, sizeof(int) * (size_t)cap);
        if (b) e->fok = b;
        int *z = realloc(e->sens, sizeof(int) * (size_t)cap);
        if (z) e->sens = z;
        if (!d || !q || !a || !b || !z) return -1;
        e->cap = cap;
    }
    e->dif[e->n] = s[0].probability;
    e->sen[e->n] = s[1].probability;
    e->lok[e->n] = lok;
    e->fok[e->n] = fok;
    e->sens[e->n] = sens;
    e->n++;
    for (int i = 0; sens >= 0 && i < f->n_det; i++) {
        if (!strcmp(f->det[i].name, "det:any")) continue;
        int k = 0;
        while (k < e->n_kinds && strcmp(e->kinds[k], f->det[i].name + 4)) k++;
        if (k == e->n_kinds && e->n_kinds == CLS_DET_MAX) continue;
        if (k == e->n_kinds) snprintf(e->kinds[e->n_kinds++], CLS_NAME_MAX, "%s", f->det[i].name + 4);
        e->hits[k]++;
        e->hits_sensitive[k] += sens;
    }
    return 0;
}

static void eval_free(eval_data *e)
{
    free(e->dif);
    free(e->sen);
    free(e->lok);
    free(e->fok);
    free(e->sens);
}

/* The subset of examples with label(s) present, compacted. */
static int compact(const eval_data *e, bool routing, float *p, int *a, int *b)
{
    int m = 0;
    for (int i = 0; i < e->n; i++) {
        if (routing ? e->lok[i] < 0 || e->fok[i] < 0 : e->sens[i] < 0) continue;
        p[m] = routing ? e->dif[i] : e->sen[i];
        a[m] = routing ? e->lok[i] : e->sens[i];
        if (b) b[m] = e->fok[i];
        m++;
    }
    return m;
}

static double json_num(double x) { return isfinite(x) ? round(x * 1e4) / 1e4 : -1; }

static int eval_report(const eval_data *e, const route_heads *h, bool json)
{
    float *p = malloc(sizeof(float) * (size_t)(e->n + 1));
    int *a = malloc(sizeof(int) * (size_t)(e->n + 1)), *b = malloc(sizeof(int) * (size_t)(e->n + 1));
    int *y = malloc(sizeof(int) * (size_t)(e->n + 1));
    int rc = 1;
    cJSON *root = cJSON_CreateObject();
    if (!p || !a || !b || !y || !root) {
        fprintf(stderr, "junction route: out of memory\n");
        goto done;
    }
    cJSON_AddNumberToObject(root, "n", e->n);
    int m = compact(e, true, p, a, b);
    if (m > 0) {
        cls_routing r;
        char err[300];
        if (cls_routing_metrics(p, a, b, m, &r, err, sizeof(err))) {
            fprintf(stderr, "junction route: %s\n", err);
            goto done;
        }
        for (int i = 0; i < m; i++) y[i] = b[i] && !a[i];
        double auc = cls_roc_auc(p, y, m);
        if (json) {
            cJSON_AddNumberToObject(root, "n_routing", m);
            cJSON_AddNumberToObject(root, "apgr", json_num(r.apgr));
            cJSON_AddNumberToObject(root, "cpt50", json_num(r.cpt50));
            cJSON_AddNumberToObject(root, "cpt80", json_num(r.cpt80));
            cJSON_AddNumberToObject(root, "auc", json_num(auc));
            cJSON_AddNumberToObject(root, "local_only", json_num(r.local_only));
            cJSON_AddNumberToObject(root, "frontier_only", json_num(r.frontier_only));
        } else {
            printf("difficulty (label: the frontier answers and the local model does not):\n");
            cls_print_report(stdout, p, y, m, cls_head_get_info(h->heads[0])->threshold, &r);
        }
        cls_routing_free(&r);
    }
    m = compact(e, false, p, a, NULL);
    if (m > 0) {
        float th = cls_head_get_info(h->heads[1])->threshold;
        cls_confusion c;
        cls_confusion_at(p, a, m, th, &c);
        int pos = c.tp + c.fn;
        if (json) {
            cJSON *s = cJSON_AddObjectToObject(root, "sensitivity");
            cJSON_AddNumberToObject(s, "n", m);
            cJSON_AddNumberToObject(s, "threshold", th);
            cJSON_AddNumberToObject(s, "precision", json_num(c.precision));
            cJSON_AddNumberToObject(s, "recall", json_num(c.recall));
            cJSON_AddNumberToObject(s, "auc", json_num(cls_roc_auc(p, a, m)));
            cJSON *pk = cJSON_AddObjectToObject(s, "per_kind");
            for (int k = 0; k < e->n_kinds; k++) {
                cJSON *o = cJSON_AddObjectToObject(pk, e->kinds[k]);
                cJSON_AddNumberToObject(o, "hits", e->hits[k]);
                cJSON_AddNumberToObject(o, "precision", json_num((double)e->hits_sensitive[k] / e->hits[k]));
                cJSON_AddNumberToObject(o, "recall", json_num(pos ? (double)e->hits_sensitive[k] / pos : NAN));
            }
        } else {
            printf("sensitivity:\n");
            cls_print_report(stdout, p, a, m, th, NULL);
            printf("  %-20s %6s %10s %8s  (a kind's hits on examples; precision = share labelled sensitive)\n",
                   "kind", "hits", "precision", "recall");
            for (int k = 0; k < e->n_kinds; k++)
                printf("  %-20s %6d %10.4f %8.4f\n", e->kinds[k], e->hits[k],
                       (double)e->hits_sensitive[k] / e->hits[k], pos ? (double)e->hits_sensitive[k] / pos : NAN);
        }
    }
    if (json) {
        char *out = cJSON_PrintUnformatted(root);
        printf("%s\n", out);
        free(out);
    }
    rc = 0;
done:
    cJSON_Delete(root);
    free(p);
    free(a);
    free(b);
    free(y);
    return rc;
}

/* --scores and --eval: one request per line. */
static int route_file(const cli_classifier *c, const route_heads *h, const char *path, bool eval, bool json)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "junction route: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    char *line = NULL, err[600];
    size_t cap = 0;
    ssize_t got;
    int lineno = 0, rc = 0;
    eval_data e = {0};
    while (rc == 0 && (got = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)got) continue;
        cJSON *obj = cJSON_ParseWithLength(line, (size_t)got);
        cli_request r;
        cls_score s[2];
        cls_features f;
        cls_findings fi;
        double t[4];
        if (!cJSON_IsObject(obj)) {
            snprintf(err, sizeof(err), "not a JSON object");
            rc = 1;
        } else if (cli_request_from_json(obj, &r, err, sizeof(err)) == 0) {
            if (score_request(c, h, &r, s, &f, &fi, t, err, sizeof(err)) == 0) {
                if (!eval) {
                    printf("{\"difficulty\":%.6g,\"sensitivity\":%.6g}\n", (double)s[0].probability,
                           (double)s[1].probability);
                } else if (eval_add(&e, s, &f, label_of(obj, "local_correct"), label_of(obj, "frontier_correct"),
                                    label_of(obj, "sensitive"))) {
                    snprintf(err, sizeof(err), "out of memory");
                    rc = 1;
                }
                cli_features_free(&f);
                cls_findings_free(&fi);
            } else {
                rc = 1;
            }
            cli_request_free(&r);
        } else {
            rc = 1;
        }
        cJSON_Delete(obj);
        if (rc) fprintf(stderr, "junction route: %s:%d: %s\n", path, lineno, err);
    }
    free(line);
    fclose(fp);
    if (rc == 0 && eval) {
        if (e.n == 0) {
            fprintf(stderr, "junction route: %s has no requests to evaluate\n", path);
            rc = 1;
        } else {
            rc = eval_report(&e, h, json);
        }
    }
    eval_free(&e);
    return rc;
}

int cmd_route(int argc, char **argv)
{
    cli_engine_opts o;
    cli_engine_defaults(&o);
    const char *heads[2] = {NULL, NULL}, *config = NULL, *scores = NULL, *eval = NULL, *text = NULL;
    bool show = false, json = false, explain = false;
    double max_tokens = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = cli_engine_option("route", argc, argv, &i, &o);
        if (rc < 0) return 2;
        if (rc) continue;
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 0;
        }
        if (!strcmp(a, "--difficulty-head") && has_value) heads[0] = argv[++i];
        else if (!strcmp(a, "--sensitivity-head") && has_value) heads[1] = argv[++i];
        else if (!strcmp(a, "--config") && has_value) config = argv[++i];
        else if (!strcmp(a, "--scores") && has_value) scores = argv[++i];
        else if (!strcmp(a, "--eval") && has_value) eval = argv[++i];
        else if (!strcmp(a, "--show-matches")) show = true;
        else if (!strcmp(a, "--explain")) explain = true;
        else if (!strcmp(a, "-o") && has_value && !strcmp(argv[i + 1], "json")) json = ++i > 0;
        else if (!strcmp(a, "--max-tokens")) {
            if (cli_number("route", argc, argv, &i, 8, 1 << 20, &max_tokens)) return 2;
        } else if (a[0] != '-' && !text) text = a;
        else {
            fprintf(stderr, "junction route: unknown or incomplete option '%s'; see --help\n", a);
            return 2;
        }
    }
    if (!!text + !!scores + !!eval != 1) {
        fprintf(stderr, "junction route: give exactly one of TEXT, --scores FILE or --eval FILE; see --help\n");
        return 2;
    }
    /* the policy, as the daemon builds it from the same configuration */
    static gw_config cfg; /* large: not on the stack */
    gw_config_defaults(&cfg);
    char perr[1024];
    pol_policy *policy = NULL;
    if ((config && gw_config_load_file(&cfg, config, perr, sizeof(perr)) != 0) ||
        gw_policy_from_config(&policy, &cfg, perr, sizeof(perr)) != 0) {
        fprintf(stderr, "junction route: %s\n", perr);
        return 2;
    }
    cli_classifier c;
    if (cli_classifier_open(&c, "route", config, &o)) {
        pol_policy_free(policy);
        return 1;
    }
    if (max_tokens > 0) c.max_tokens = (int)max_tokens;
    route_heads h = {0};
    int rc = 1;
    if (load_heads(&h, &c, heads) == 0 && heads_layer(&h, &c) == 0) {
        if (text) rc = route_text(&c, &h, text, show, policy, &cfg, explain);
        else rc = route_file(&c, &h, scores ? scores : eval, eval != NULL, json);
    }
    for (int t = 0; t < 2; t++) cls_head_free(h.heads[t]);
    cli_classifier_close(&c);
    pol_policy_free(policy);
    return rc;
}
