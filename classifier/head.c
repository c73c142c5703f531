/* head.c: a logistic-regression head: its JSON file, and scoring with evidence.
 *
 * Why: the operator fits heads on their own traffic and must be able to read
 * what a head looks at, so a head is a plain JSON file of named weights, and
 * every score comes with the few features that moved it most. A head says
 * which feature groups it reads, so one without model features runs without
 * a model, and one probing a hidden state refuses a model of another width.
 * A head that reads model features still scores a request they were not
 * computed for (no model loaded, or the daemon too busy to run the pass):
 * those terms then count as at their fitted mean, contributing nothing, so
 * the score falls back to what the other features say.
 */
#include "scoring.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEAD_FORMAT "junction-head-1"

typedef enum { SRC_LEX, SRC_DET, SRC_MODEL, SRC_HIDDEN } feature_source;

typedef struct {
    char name[CLS_NAME_MAX];
    feature_source src;
    int index;
    float mean, std, weight;
} dense_entry;

struct cls_head {
    cls_head_info info;
    char target[16];
    char *description;
    float bias;
    dense_entry *dense;
    int n_dense;
    int ngram_bits;
    float *ngram_w;        /* 1 << ngram_bits, or NULL */
    char *fit_json;        /* how it was fitted, or NULL */
};

static const char *const model_names[] = {"nll_mean", "nll_max", "entropy_last", "log_tokens"};
#define N_MODEL ((int)(sizeof(model_names) / sizeof(model_names[0])))

static const struct {
    const char *name;
    unsigned bit;
} group_table[] = {
    {"lexical", CLS_USE_LEXICAL},
    {"ngrams", CLS_USE_NGRAMS},
    {"detectors", CLS_USE_DETECTORS},
    {"model", CLS_USE_MODEL},
    {"hidden", CLS_USE_HIDDEN},
};
#define N_GROUPS ((int)(sizeof(group_table) / sizeof(group_table[0])))

static const char *const target_names[] = {"difficulty", "sensitivity"};

int cls_feature_groups_parse(const char *list, unsigned *out, char *err, size_t errlen)
{
    unsigned bits = 0;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        int g = 0;
        while (g < N_GROUPS && !(strlen(group_table[g].name) == n && !strncmp(p, group_table[g].name, n))) g++;
        if (g == N_GROUPS) {
            snprintf(err, errlen, "unknown feature group '%.*s'; the groups are lexical, ngrams, detectors, model, hidden",
                     (int)n, p);
            return -1;
        }
        bits |= group_table[g].bit;
        p += n + (p[n] == ',');
    }
    if (!bits) {
        snprintf(err, errlen, "no feature group given; name some of lexical, ngrams, detectors, model, hidden");
        return -1;
    }
    *out = bits;
    return 0;
}

/* Which feature a name means. -1 for none. */
static int resolve(const char *name, feature_source *src, int *index)
{
    for (int i = 0; i < CLS_LEX_COUNT; i++)
        if (!strcmp(name, cls_lex_name(i))) {
            *src = SRC_LEX;
            *index = i;
            return 0;
        }
    for (int i = 0; i < N_MODEL; i++)
        if (!strcmp(name, model_names[i])) {
            *src = SRC_MODEL;
            *index = i;
            return 0;
        }
    if (!strncmp(name, "det:", 4) && name[4] && strlen(name) < CLS_NAME_MAX) {
        *src = SRC_DET;
        *index = 0;
        return 0;
    }
    if (name[0] == 'h' && name[1] >= '0' && name[1] <= '9') {
        char *end;
        errno = 0;
        long v = strtol(name + 1, &end, 10);
        if (*end || errno || v < 0 || v > 1 << 20) return -1;
        *src = SRC_HIDDEN;
        *index = (int)v;
        return 0;
    }
    return -1;
}

static float value_of(const cls_features *f, feature_source src, int index, const char *name)
{
    switch (src) {
    case SRC_LEX:
        return f->lex[index];
    case SRC_DET:
        for (int i = 0; i < f->n_det; i++)
            if (!strcmp(f->det[i].name, name)) return f->det[i].value;
        return 0;
    case SRC_MODEL: {
        const cls_model_features *m = &f->model;
        const float v[N_MODEL] = {m->nll_mean, m->nll_max, m->entropy_last, logf(1.0f + (float)m->n_tokens)};
        return m->present ? v[index] : 0;
    }
    case SRC_HIDDEN:
        return f->model.hidden && index < f->model.n_hidden ? f->model.hidden[index] : 0;
    }
    return 0;
}

float cls_standardise(float value, float mean, float std)
{
    float z = (value - mean) / std;
    return z > 5 ? 5 : z < -5 ? -5 : z;
}

int cls_feature_value(const cls_features *f, const char *name, float *out)
{
    feature_source src;
    int index;
    if (resolve(name, &src, &index)) return -1;
    *out = value_of(f, src, index, name);
    return 0;
}

static void add_det(cls_features *f, const char *name, float conf, bool forces)
{
    for (int i = 0; i < f->n_det; i++)
        if (!strcmp(f->det[i].name, name)) {
            if (conf > f->det[i].value) f->det[i].value = conf;
            f->det[i].forces |= forces;
            return;
        }
    if (f->n_det == CLS_DET_MAX) return;
    cls_det_feature *d = &f->det[f->n_det++];
    snprintf(d->name, sizeof(d->name), "%s", name);
    d->value = conf;
    d->forces = forces;
}

void cls_features_add_findings(cls_features *f, const cls_findings *findings)
{
    for (int i = 0; i < findings->n; i++) {
        const cls_finding *x = &findings->items[i];
        char name[CLS_NAME_MAX];
        const char *kind = x->custom_kind ? x->custom_kind : cls_kind_name(x->kind);
        bool forces = cls_finding_forces(x);
        add_det(f, "det:any", x->confidence, forces);
        snprintf(name, sizeof(name), "det:%s", kind);
        add_det(f, name, x->confidence, forces);
    }
}

cJSON *cls_features_json(const cls_features *f)
{
    cJSON *feat = cJSON_CreateObject();
    cJSON *lex = cJSON_AddObjectToObject(feat, "lexical");
    for (int i = 0; i < CLS_LEX_COUNT; i++) cJSON_AddNumberToObject(lex, cls_lex_name(i), f->lex[i]);
    cJSON_AddNumberToObject(feat, "ngrams", f->n_ngrams);
    cJSON *det = cJSON_AddObjectToObject(feat, "detectors");
    for (int i = 0; i < f->n_det; i++) cJSON_AddNumberToObject(det, f->det[i].name + 4, f->det[i].value);
    if (!f->model.present) {
        cJSON_AddNullToObject(feat, "model");
        return feat;
    }
    cJSON *m = cJSON_AddObjectToObject(feat, "model");
    cJSON_AddNumberToObject(m, "nll_mean", f->model.nll_mean);
    cJSON_AddNumberToObject(m, "nll_max", f->model.nll_max);
    cJSON_AddNumberToObject(m, "entropy_last", f->model.entropy_last);
    cJSON_AddNumberToObject(m, "n_tokens", f->model.n_tokens);
    if (f->model.hidden) {
        cJSON_AddNumberToObject(m, "hidden_layer", f->model.layer);
        cJSON_AddNumberToObject(m, "hidden_dim", f->model.n_hidden);
    }
    return feat;
}

void cls_head_free(cls_head *h)
{
    if (!h) return;
    free(h->description);
    free(h->dense);
    free(h->ngram_w);
    free(h->fit_json);
    free(h);
}

const cls_head_info *cls_head_get_info(const cls_head *h) { return &h->info; }

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int cls_head_new(cls_head **out, const cls_head_info *info, const char *description, float bias,
                 const cls_dense_weight *dense, int n_dense, int ngram_bits,
                 const float *ngram_weights, const char *fit_json, char *err, size_t errlen)
{
    *out = NULL;
    int t = 0;
    while (t < 2 && strcmp(info->target ? info->target : "", target_names[t])) t++;
    if (t == 2) {
        snprintf(err, errlen, "a head's target must be difficulty or sensitivity, not '%s'",
                 info->target ? info->target : "(none)");
        return -1;
    }
    if (ngram_weights && (ngram_bits < 8 || ngram_bits > 24)) {
        snprintf(err, errlen, "ngram bits must be 8..24, got %d", ngram_bits);
        return -1;
    }
    if (!(info->threshold > 0 && info->threshold < 1)) {
        snprintf(err, errlen, "threshold must be strictly between 0 and 1, got %g", (double)info->threshold);
        return -1;
    }
    cls_head *h = calloc(1, sizeof(*h));
    if (!h) goto oom;
    h->info = *info;
    snprintf(h->target, sizeof(h->target), "%s", target_names[t]);
    h->info.target = h->target;
    h->bias = bias;
    h->description = dup_or_null(description);
    h->fit_json = dup_or_null(fit_json);
    h->dense = calloc((size_t)(n_dense > 0 ? n_dense : 1), sizeof(*h->dense));
    if ((description && !h->description) || (fit_json && !h->fit_json) || !h->dense) goto oom;
    for (int i = 0; i < n_dense; i++) {
        dense_entry *e = &h->dense[i];
        if (strlen(dense[i].name) >= CLS_NAME_MAX || resolve(dense[i].name, &e->src, &e->index)) {
            snprintf(err, errlen, "dense feature %d: '%s' is not a feature this version of junction knows", i,
                     dense[i].name);
            cls_head_free(h);
            return -1;
        }
        if (!(dense[i].std > 0) || !isfinite(dense[i].mean) || !isfinite(dense[i].weight)) {
            snprintf(err, errlen, "dense feature '%s': std must be > 0 and mean/weight finite", dense[i].name);
            cls_head_free(h);
            return -1;
        }
        snprintf(e->name, sizeof(e->name), "%s", dense[i].name);
        e->mean = dense[i].mean;
        e->std = dense[i].std;
        e->weight = dense[i].weight;
        h->n_dense++;
    }
    if (ngram_weights) {
        size_t nb = (size_t)1 << ngram_bits;
        h->ngram_bits = ngram_bits;
        h->ngram_w = malloc(nb * sizeof(float));
        if (!h->ngram_w) goto oom;
        memcpy(h->ngram_w, ngram_weights, nb * sizeof(float));
    }
    *out = h;
    return 0;
oom:
    cls_head_free(h);
    snprintf(err, errlen, "out of memory building a head");
    return -1;
}

/* ---- scoring ---- */

int cls_head_check_model(const cls_head *h, const cls_model_features *m, char *err, size_t errlen)
{
    const cls_head_info *in = &h->info;
    if ((in->uses & (CLS_USE_MODEL | CLS_USE_HIDDEN)) && !m->present) {
        snprintf(err, errlen, "the %s head reads the local model's features (NLL, entropy%s): give a model "
                 "(-m FILE), or use a head without model features", in->target,
                 in->uses & CLS_USE_HIDDEN ? ", hidden state" : "");
        return -1;
    }
    if ((in->uses & CLS_USE_HIDDEN) && (!m->hidden || m->n_hidden != in->n_hidden || m->layer != in->layer)) {
        snprintf(err, errlen, "the %s head probes a %d-wide hidden state at layer %d, but the model gives %d wide "
                 "at layer %d: calibrate a head for this model (junction calibrate -m MODEL)",
                 in->target, in->n_hidden, in->layer, m->hidden ? m->n_hidden : 0, m->layer);
        return -1;
    }
    return 0;
}

static void keep_evidence(cls_score *s, const cls_evidence *e)
{
    float mag = fabsf(e->contribution);
    int at = s->n_evidence;
    while (at > 0 && fabsf(s->evidence[at - 1].contribution) < mag) at--;
    if (at >= CLS_EVIDENCE_MAX) return;
    int last = s->n_evidence < CLS_EVIDENCE_MAX ? s->n_evidence : CLS_EVIDENCE_MAX - 1;
    memmove(&s->evidence[at + 1], &s->evidence[at], sizeof(*e) * (size_t)(last - at));
    s->evidence[at] = *e;
    if (s->n_evidence < CLS_EVIDENCE_MAX) s->n_evidence++;
}

int cls_head_score(const cls_head *h, const cls_features *f, cls_score *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    bool model = f->model.present;
    if (model && cls_head_check_model(h, &f->model, err, errlen)) return -1;
    double z = h->bias;
    for (int i = 0; i < h->n_dense; i++) {
        const dense_entry *d = &h->dense[i];
        if (!model && (d->src == SRC_MODEL || d->src == SRC_HIDDEN)) continue; /* at its mean: adds nothing */
        float x = value_of(f, d->src, d->index, d->name);
        cls_evidence e = {.value = x, .contribution = d->weight * cls_standardise(x, d->mean, d->std)};
        snprintf(e.name, sizeof(e.name), "%s", d->name);
        z += e.contribution;
        if (e.contribution != 0) keep_evidence(out, &e);
    }
    if (h->ngram_w && f->n_ngrams > 0) {
        uint32_t mask = ((uint32_t)1 << h->ngram_bits) - 1;
        float scale = 1.0f / sqrtf((float)f->n_ngrams);
        for (int i = 0; i < f->n_ngrams; i++) {
            const cls_ngram *g = &f->ngrams[i];
            float c = h->ngram_w[g->hash & mask] * scale;
            if (c == 0) continue;
            z += c;
            cls_evidence e = {.name = "ngram", .value = 1, .contribution = c, .has_span = true,
                              .start = g->start, .end = g->end};
            keep_evidence(out, &e);
        }
    }
    out->logit = (float)z;
    out->probability = (float)(1.0 / (1.0 + exp(-z)));
    /* "det:any" comes first; a named kind, when there is one, says more. */
    for (int i = 0; h->info.force_from_detectors && i < f->n_det; i++)
        if (f->det[i].forces && (!out->forced || !strcmp(out->forced_by, "any"))) {
            out->forced = true;
            out->probability = 1;
            snprintf(out->forced_by, sizeof(out->forced_by), "%s", f->det[i].name + 4);
        }
    return 0;
}

/* ---- the file ---- */

static double num(const cJSON *o, const char *key, double dflt, bool *ok)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return dflt;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) *ok = false;
    return v->valuedouble;
}

static int parse_dense(const cJSON *arr, cls_dense_weight **out, int *n, char *err, size_t errlen)
{
    *n = 0;
    *out = NULL;
    if (!arr) return 0;
    if (!cJSON_IsArray(arr)) {
        snprintf(err, errlen, "\"dense\" must be an array of {name, mean, std, weight}");
        return -1;
    }
    int count = cJSON_GetArraySize(arr);
    *out = calloc((size_t)(count > 0 ? count : 1), sizeof(**out));
    if (!*out) {
        snprintf(err, errlen, "out of memory reading a head");
        return -1;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        bool ok = cJSON_IsObject(e);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
        cls_dense_weight *w = &(*out)[*n];
        w->mean = (float)num(e, "mean", 0, &ok);
        w->std = (float)num(e, "std", 1, &ok);
        w->weight = (float)num(e, "weight", NAN, &ok);
        w->name = cJSON_IsString(name) ? name->valuestring : NULL;
        if (!ok || !w->name) {
            snprintf(err, errlen, "\"dense\"[%d] must be an object with a string \"name\" and numbers \"weight\", "
                     "\"mean\" and \"std\"", *n);
            return -1;
        }
        (*n)++;
    }
    return 0;
}

static int parse_ngrams(const cJSON *o, int *bits, float **w, char *err, size_t errlen)
{
    *w = NULL;
    if (!o) return 0;
    bool ok = cJSON_IsObject(o);
    double b = num(o, "bits", NAN, &ok);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "weights");
    if (!ok || !(b >= 8 && b <= 24) || b != floor(b) || !cJSON_IsArray(arr)) {
        snprintf(err, errlen, "\"ngrams\" must be {\"bits\": 8..24, \"weights\": [[bucket, weight], ...]}");
        return -1;
    }
    *bits = (int)b;
    size_t nb = (size_t)1 << *bits;
    *w = calloc(nb, sizeof(float));
    if (!*w) {
        snprintf(err, errlen, "out of memory reading a head");
        return -1;
    }
    int i = 0;
    const cJSON *pair;
    cJSON_ArrayForEach(pair, arr) {
        const cJSON *k = cJSON_GetArrayItem(pair, 0), *v = cJSON_GetArrayItem(pair, 1);
        if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2 || !cJSON_IsNumber(k) || !cJSON_IsNumber(v) ||
            !(k->valuedouble >= 0 && k->valuedouble < (double)nb) || !isfinite(v->valuedouble)) {
            snprintf(err, errlen, "\"ngrams\".weights[%d] must be [bucket below %zu, finite weight]", i, nb);
            return -1;
        }
        (*w)[(size_t)k->valuedouble] = (float)v->valuedouble;
        i++;
    }
    return 0;
}

static int parse_info(const cJSON *root, cls_head_info *info, char *err, size_t errlen)
{
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *target = cJSON_GetObjectItemCaseSensitive(root, "target");
    const cJSON *features = cJSON_GetObjectItemCaseSensitive(root, "features");
    const cJSON *force = cJSON_GetObjectItemCaseSensitive(root, "force_from_detectors");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, HEAD_FORMAT)) {
        snprintf(err, errlen, "not a junction head: \"format\" must be \"%s\"", HEAD_FORMAT);
        return -1;
    }
    if (!cJSON_IsString(target)) {
        snprintf(err, errlen, "\"target\" must be \"difficulty\" or \"sensitivity\"");
        return -1;
    }
    info->target = target->valuestring;
    info->uses = 0;
    const cJSON *g;
    const cJSON *groups = cJSON_IsArray(features) ? features : NULL;
    cJSON_ArrayForEach(g, groups) {
        unsigned bit;
        if (!cJSON_IsString(g) || cls_feature_groups_parse(g->valuestring, &bit, err, errlen)) {
            snprintf(err, errlen, "\"features\" must list groups from lexical, ngrams, detectors, model, hidden");
            return -1;
        }
        info->uses |= bit;
    }
    if (!cJSON_IsArray(features) || !info->uses) {
        snprintf(err, errlen, "\"features\" must be a non-empty array of feature groups");
        return -1;
    }
    bool ok = true;
    info->threshold = (float)num(root, "threshold", 0.5, &ok);
    const cJSON *hidden = cJSON_GetObjectItemCaseSensitive(root, "hidden");
    info->layer = (int)num(hidden, "layer", 0, &ok);
    info->n_hidden = (int)num(hidden, "n_embd", 0, &ok);
    if (!ok || ((info->uses & CLS_USE_HIDDEN) && (info->layer < 1 || info->n_hidden < 1))) {
        snprintf(err, errlen, "\"threshold\" must be a number, and a head with hidden features needs "
                 "\"hidden\": {\"layer\": >= 1, \"n_embd\": >= 1}");
        return -1;
    }
    if (force && !cJSON_IsBool(force)) {
        snprintf(err, errlen, "\"force_from_detectors\" must be true or false");
        return -1;
    }
    info->force_from_detectors = cJSON_IsTrue(force);
    return 0;
}

int cls_head_parse(cls_head **out, const char *json, size_t len, char *err, size_t errlen)
{
    *out = NULL;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        snprintf(err, errlen, "not a JSON object (a head file is the JSON that junction calibrate writes)");
        return -1;
    }
    cls_head_info info;
    cls_dense_weight *dense = NULL;
    float *ngram_w = NULL;
    int n_dense = 0, bits = 0, rc = -1;
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(root, "description");
    const cJSON *fit = cJSON_GetObjectItemCaseSensitive(root, "fit");
    bool ok = true;
    float bias = (float)num(root, "bias", NAN, &ok);
    if (parse_info(root, &info, err, errlen) ||
        parse_dense(cJSON_GetObjectItemCaseSensitive(root, "dense"), &dense, &n_dense, err, errlen) ||
        parse_ngrams(cJSON_GetObjectItemCaseSensitive(root, "ngrams"), &bits, &ngram_w, err, errlen))
        goto done;
    if (!ok || isnan(bias)) {
        snprintf(err, errlen, "\"bias\" must be a number");
        goto done;
    }
    char *fit_text = fit ? cJSON_PrintUnformatted(fit) : NULL;
    rc = cls_head_new(out, &info, cJSON_IsString(desc) ? desc->valuestring : NULL, bias, dense, n_dense, bits,
                      ngram_w, fit_text, err, errlen);
    free(fit_text);
done:
    free(dense);
    free(ngram_w);
    cJSON_Delete(root);
    return rc;
}

int cls_head_load(cls_head **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "cannot open head file %s: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, fp)) > 0) {
        n += got;
        char *bigger = n < cap ? buf : cap < (size_t)1 << 30 ? realloc(buf, cap *= 2) : NULL;
        if (!bigger) free(buf);
        buf = bigger;
    }
    bool read_error = ferror(fp);
    fclose(fp);
    if (!buf || read_error) {
        free(buf);
        snprintf(err, errlen, "cannot read head file %s (%s)", path, read_error ? "read error" : "too large");
        return -1;
    }
    char inner[400];
    int rc = cls_head_parse(out, buf, n, inner, sizeof(inner));
    free(buf);
    if (rc) snprintf(err, errlen, "head file %s: %s", path, inner);
    return rc;
}

/* Six significant digits are plenty for a weight and keep files small. */
static double round6(double x)
{
    char b[32];
    snprintf(b, sizeof(b), "%.6g", x);
    return strtod(b, NULL);
}

static cJSON *to_json(const cls_head *h)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", HEAD_FORMAT);
    cJSON_AddStringToObject(root, "target", h->target);
    if (h->description) cJSON_AddStringToObject(root, "description", h->description);
    cJSON *features = cJSON_AddArrayToObject(root, "features");
    for (int g = 0; g < N_GROUPS; g++)
        if (h->info.uses & group_table[g].bit) cJSON_AddItemToArray(features, cJSON_CreateString(group_table[g].name));
    cJSON_AddNumberToObject(root, "threshold", round6(h->info.threshold));
    cJSON_AddBoolToObject(root, "force_from_detectors", h->info.force_from_detectors);
    if (h->info.uses & CLS_USE_HIDDEN) {
        cJSON *hid = cJSON_AddObjectToObject(root, "hidden");
        cJSON_AddNumberToObject(hid, "layer", h->info.layer);
        cJSON_AddNumberToObject(hid, "n_embd", h->info.n_hidden);
    }
    cJSON_AddNumberToObject(root, "bias", round6(h->bias));
    cJSON *dense = cJSON_AddArrayToObject(root, "dense");
    for (int i = 0; i < h->n_dense; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", h->dense[i].name);
        cJSON_AddNumberToObject(e, "mean", round6(h->dense[i].mean));
        cJSON_AddNumberToObject(e, "std", round6(h->dense[i].std));
        cJSON_AddNumberToObject(e, "weight", round6(h->dense[i].weight));
        cJSON_AddItemToArray(dense, e);
    }
    if (h->ngram_w) {
        cJSON *ng = cJSON_AddObjectToObject(root, "ngrams");
        cJSON_AddNumberToObject(ng, "bits", h->ngram_bits);
        cJSON *w = cJSON_AddArrayToObject(ng, "weights");
        for (size_t b = 0; b < (size_t)1 << h->ngram_bits; b++) {
            double v = round6(h->ngram_w[b]);
            if (v == 0) continue;
            cJSON *pair = cJSON_CreateArray();
            cJSON_AddItemToArray(pair, cJSON_CreateNumber((double)b));
            cJSON_AddItemToArray(pair, cJSON_CreateNumber(v));
            cJSON_AddItemToArray(w, pair);
        }
    }
    if (h->fit_json) cJSON_AddItemToObject(root, "fit", cJSON_Parse(h->fit_json));
    return root;
}

/* fsync the folder holding `path`, which makes a rename into it durable. */
static int sync_folder(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof(dir), ".");
    else snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int cls_head_save(const cls_head *h, const char *path, char *err, size_t errlen)
{
    cJSON *root = to_json(h);
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) {
        snprintf(err, errlen, "out of memory writing a head");
        return -1;
    }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    int fd = -1;
    if (tmp) {
        snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
        fd = mkstemp(tmp);
    }
    if (fd >= 0) fchmod(fd, 0644);   /* mkstemp makes it private; a head is not secret */
    FILE *fp = fd >= 0 ? fdopen(fd, "w") : NULL;
    /* on disk before the rename, so that a crash leaves the old head or the new one, never an empty file */
    bool ok = fp && fputs(text, fp) >= 0 && fputc('\n', fp) != EOF && fflush(fp) == 0 && fsync(fd) == 0;
    int saved = errno;
    if (fp) ok = fclose(fp) == 0 && ok;
    else if (fd >= 0) close(fd);
    if (ok && rename(tmp, path) != 0) {
        saved = errno;
        ok = false;
    }
    if (ok && sync_folder(path) != 0) { /* the rename itself is on disk */
        saved = errno;
        ok = false;
        fd = -1; /* renamed: nothing to unlink */
    }
    if (!ok) {
        snprintf(err, errlen, "cannot write head file %s: %s (check the folder exists and is writable)", path,
                 strerror(saved ? saved : EIO));
        if (fd >= 0) unlink(tmp);
    }
    free(tmp);
    free(text);
    return ok ? 0 : -1;
}
