/* fit.c: fitting a head: L2-regularised logistic regression with L-BFGS.
 *
 * Why: heads must be fitted by the operator on their own traffic, on a
 * laptop, in seconds, with the same result every time. Examples are split by
 * a hash of their prompt (never by position, so a reordered file splits the
 * same way): a test share is held out and never touches the head; of the
 * rest, a validation share chooses the L2 strength (lowest validation
 * log-loss); the head is then refitted on training + validation. Dense
 * features are standardised on the data the head is fitted on; n-grams in
 * nearly every text (formatting, stop words) or in almost none are dropped,
 * so the head keys on content that can generalise.
 */
#include "scoring.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LBFGS_M 8

static const double default_lambdas[] = {1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4};

void cls_fit_defaults(cls_fit_params *p)
{
    memset(p, 0, sizeof(*p));
    p->target = "difficulty";
    p->uses = CLS_USE_LEXICAL | CLS_USE_NGRAMS | CLS_USE_DETECTORS;
    p->ngram_bits = 16;
    p->max_df = 0.5;
    p->min_df = 2;
    p->test_share = 0.2;
    p->val_share = 0.2;
    p->max_iter = 300;
}

static uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

cls_split cls_split_of(uint64_t key, double test_share, double val_share)
{
    double u = (double)(fmix64(key) >> 11) / 9007199254740992.0;   /* [0, 1) */
    if (u < test_share) return CLS_SPLIT_TEST;
    if (u < test_share + (1 - test_share) * val_share) return CLS_SPLIT_VAL;
    return CLS_SPLIT_TRAIN;
}

/* The design of one fit: which dense features, standardised how, which
 * n-gram buckets, over which examples. */
typedef struct {
    const cls_example *ex;
    const int *rows;            /* example indices fitted on */
    int m;
    int D;                      /* dense features */
    char (*names)[CLS_NAME_MAX];
    float *mean, *std;          /* D each */
    float *x;                   /* m x D standardised */
    int bits;
    unsigned char *keep;        /* 1 << bits: bucket carries weight */
} design;

typedef struct {
    const design *d;
    double lambda;
} objective;

/* Parameters: [0] bias, [1..D] dense, [1+D ..] n-gram buckets. */
static double loss_grad(const objective *o, const double *w, double *g)
{
    const design *d = o->d;
    size_t nb = (size_t)1 << d->bits, np = 1 + (size_t)d->D + nb;
    uint32_t mask = (uint32_t)nb - 1;
    const double *wn = w + 1 + d->D;
    memset(g, 0, sizeof(double) * np);
    double loss = 0;
    for (int r = 0; r < d->m; r++) {
        const cls_example *e = &d->ex[d->rows[r]];
        const float *x = d->x + (size_t)r * d->D;
        double z = w[0];
        for (int j = 0; j < d->D; j++) z += w[1 + j] * x[j];
        double s = e->features.n_ngrams ? 1 / sqrt((double)e->features.n_ngrams) : 0;
        for (int k = 0; k < e->features.n_ngrams; k++) {
            uint32_t b = e->features.ngrams[k].hash & mask;
            if (d->keep[b]) z += wn[b] * s;
        }
        double y = e->label != 0;
        loss += (z > 0 ? z + log1p(exp(-z)) : log1p(exp(z))) - y * z;
        double res = (1 / (1 + exp(-z)) - y) / d->m;
        g[0] += res;
        for (int j = 0; j < d->D; j++) g[1 + j] += res * x[j];
        for (int k = 0; k < e->features.n_ngrams; k++) {
            uint32_t b = e->features.ngrams[k].hash & mask;
            if (d->keep[b]) g[1 + d->D + b] += res * s;
        }
    }
    loss /= d->m;
    for (size_t i = 1; i < np; i++) {
        loss += o->lambda / 2 * w[i] * w[i];
        g[i] += o->lambda * w[i];
    }
    return loss;
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Minimise with L-BFGS and a backtracking (Armijo) line search, from w = 0. */
static int lbfgs(const objective *o, double *w, int max_iter)
{
    const design *d = o->d;
    size_t np = 1 + (size_t)d->D + ((size_t)1 << d->bits);
    double *buf = calloc(np * (4 + 2 * LBFGS_M), sizeof(double));
    if (!buf) return -1;
    double *g = buf, *gn = g + np, *dir = gn + np, *wn = dir + np, *S = wn + np, *Y = S + np * LBFGS_M;
    double rho[LBFGS_M], alpha[LBFGS_M];
    memset(w, 0, sizeof(double) * np);
    double f = loss_grad(o, w, g);
    int stored = 0, head = 0;
    for (int it = 0; it < max_iter; it++) {
        double gmax = 0;
        for (size_t i = 0; i < np; i++) gmax = fmax(gmax, fabs(g[i]));
        if (gmax < 1e-7) break;
        /* two-loop recursion: dir = -H g */
        for (size_t i = 0; i < np; i++) dir[i] = -g[i];
        for (int k = 0; k < stored; k++) {
            int j = (head - 1 - k + LBFGS_M) % LBFGS_M;
            alpha[j] = rho[j] * dot(S + np * j, dir, np);
            for (size_t i = 0; i < np; i++) dir[i] -= alpha[j] * Y[np * j + i];
        }
        double gamma = 1;
        if (stored) {
            int j = (head - 1 + LBFGS_M) % LBFGS_M;
            gamma = 1 / (rho[j] * dot(Y + np * j, Y + np * j, np));
        } else {
            gamma = 1 / fmax(sqrt(dot(g, g, np)), 1e-12);
        }
        for (size_t i = 0; i < np; i++) dir[i] *= gamma;
        for (int k = stored - 1; k >= 0; k--) {
            int j = (head - 1 - k + LBFGS_M) % LBFGS_M;
            double beta = rho[j] * dot(Y + np * j, dir, np);
            for (size_t i = 0; i < np; i++) dir[i] += (alpha[j] - beta) * S[np * j + i];
        }
        double slope = dot(g, dir, np);
        if (slope >= 0) {   /* not a descent direction: restart from steepest descent */
            for (size_t i = 0; i < np; i++) dir[i] = -g[i];
            slope = -dot(g, g, np);
            stored = 0;
        }
        double step = 1, fn = f;
        for (int ls = 0; ls < 40; ls++, step /= 2) {
            for (size_t i = 0; i < np; i++) wn[i] = w[i] + step * dir[i];
            fn = loss_grad(o, wn, gn);
            if (fn <= f + 1e-4 * step * slope) break;
        }
        if (!(fn < f)) break;   /* no progress possible at this precision */
        double *s = S + np * head, *y = Y + np * head;
        for (size_t i = 0; i < np; i++) {
            s[i] = wn[i] - w[i];
            y[i] = gn[i] - g[i];
        }
        double sy = dot(s, y, np);
        if (sy > 1e-12) {
            rho[head] = 1 / sy;
            head = (head + 1) % LBFGS_M;
            if (stored < LBFGS_M) stored++;
        }
        bool converged = f - fn < 1e-10 * fmax(1, fabs(f));
        memcpy(w, wn, sizeof(double) * np);
        memcpy(g, gn, sizeof(double) * np);
        f = fn;
        if (converged) break;
    }
    free(buf);
    return 0;
}

static void design_free(design *d)
{
    free(d->mean);
    free(d->std);
    free(d->x);
    free(d->keep);
}

/* Standardise the dense features and choose the n-gram buckets on `rows`. */
static int design_build(design *d, const cls_example *ex, const int *rows, int m, char (*names)[CLS_NAME_MAX],
                        int D, const cls_fit_params *p)
{
    memset(d, 0, sizeof(*d));
    d->ex = ex;
    d->rows = rows;
    d->m = m;
    d->D = D;
    d->names = names;
    d->bits = p->uses & CLS_USE_NGRAMS ? p->ngram_bits : 8;
    size_t nb = (size_t)1 << d->bits;
    d->mean = calloc((size_t)D + 1, sizeof(float));
    d->std = calloc((size_t)D + 1, sizeof(float));
    d->x = malloc(sizeof(float) * ((size_t)m * D + 1));
    d->keep = calloc(nb, 1);
    int *df = calloc(nb, sizeof(int));
    if (!d->mean || !d->std || !d->x || !d->keep || !df) {
        free(df);
        design_free(d);
        return -1;
    }
    for (int r = 0; r < m; r++)
        for (int j = 0; j < D; j++) cls_feature_value(&ex[rows[r]].features, names[j], &d->x[(size_t)r * D + j]);
    for (int j = 0; j < D; j++) {
        double s = 0, ss = 0;
        for (int r = 0; r < m; r++) s += d->x[(size_t)r * D + j];
        double mean = s / m;
        for (int r = 0; r < m; r++) ss += pow(d->x[(size_t)r * D + j] - mean, 2);
        double sd = sqrt(ss / m);
        d->mean[j] = (float)mean;
        d->std[j] = sd > 1e-6 ? (float)sd : 1;
        for (int r = 0; r < m; r++)
            d->x[(size_t)r * D + j] = cls_standardise(d->x[(size_t)r * D + j], d->mean[j], d->std[j]);
    }
    if (p->uses & CLS_USE_NGRAMS) {
        uint32_t mask = (uint32_t)nb - 1;
        for (int r = 0; r < m; r++) {
            const cls_features *f = &ex[rows[r]].features;
            for (int k = 0; k < f->n_ngrams; k++) df[f->ngrams[k].hash & mask]++;
        }
        for (size_t b = 0; b < nb; b++) d->keep[b] = df[b] >= p->min_df && df[b] <= p->max_df * m;
    }
    free(df);
    return 0;
}

/* Turn fitted parameters into a head. */
static int make_head(const design *d, const double *w, const cls_fit_params *p, const cls_example *ex,
                     const char *fit_json, cls_head **out, char *err, size_t errlen)
{
    cls_dense_weight *dw = calloc((size_t)d->D + 1, sizeof(*dw));
    size_t nb = (size_t)1 << d->bits;
    float *nw = p->uses & CLS_USE_NGRAMS ? calloc(nb, sizeof(float)) : NULL;
    if (!dw || ((p->uses & CLS_USE_NGRAMS) && !nw)) {
        free(dw);
        free(nw);
        snprintf(err, errlen, "out of memory building the fitted head");
        return -1;
    }
    for (int j = 0; j < d->D; j++) dw[j] = (cls_dense_weight){d->names[j], d->mean[j], d->std[j], (float)w[1 + j]};
    for (size_t b = 0; nw && b < nb; b++) nw[b] = (float)w[1 + d->D + b];
    const cls_model_features *mf = &ex[d->rows[0]].features.model;
    cls_head_info info = {
        .target = p->target, .uses = p->uses, .threshold = 0.5f, .force_from_detectors = p->force_from_detectors,
        .layer = p->uses & CLS_USE_HIDDEN ? mf->layer : 0, .n_hidden = p->uses & CLS_USE_HIDDEN ? mf->n_hidden : 0};
    int rc = cls_head_new(out, &info, p->description, (float)w[0], dw, d->D, d->bits, nw, fit_json, err, errlen);
    free(dw);
    free(nw);
    return rc;
}

/* A fit: its design and parameters. */
typedef struct {
    design d;
    double *w;
} fitted;

static void fitted_free(fitted *f)
{
    free(f->w);
    design_free(&f->d);
}

/* Fit on `rows` with `lambda`. */
static int fit_rows(const cls_example *ex, const int *rows, int m, char (*names)[CLS_NAME_MAX], int D,
                    const cls_fit_params *p, double lambda, fitted *out, char *err, size_t errlen)
{
    out->w = NULL;
    if (design_build(&out->d, ex, rows, m, names, D, p)) {
        snprintf(err, errlen, "out of memory preparing %d examples for fitting", m);
        return -1;
    }
    size_t np = 1 + (size_t)D + ((size_t)1 << out->d.bits);
    out->w = malloc(sizeof(double) * np);
    objective o = {&out->d, lambda};
    if (!out->w || lbfgs(&o, out->w, p->max_iter)) {
        fitted_free(out);
        snprintf(err, errlen, "out of memory fitting %d examples", m);
        return -1;
    }
    return 0;
}

/* Fit and make the head at once (for the validation trials). */
static int fit_head(const cls_example *ex, const int *rows, int m, char (*names)[CLS_NAME_MAX], int D,
                    const cls_fit_params *p, double lambda, cls_head **out, char *err, size_t errlen)
{
    fitted f;
    if (fit_rows(ex, rows, m, names, D, p, lambda, &f, err, errlen)) return -1;
    int rc = make_head(&f.d, f.w, p, ex, NULL, out, err, errlen);
    fitted_free(&f);
    return rc;
}

/* P(target) of each example in rows. */
static int predict(const cls_head *h, const cls_example *ex, const int *rows, int m, float *prob, char *err,
                   size_t errlen)
{
    for (int r = 0; r < m; r++) {
        cls_score s;
        if (cls_head_score(h, &ex[rows[r]].features, &s, err, errlen)) return -1;
        prob[r] = s.logit > 40 ? 1 : s.logit < -40 ? 0 : (float)(1 / (1 + exp(-(double)s.logit)));
    }
    return 0;
}

static double logloss(const float *prob, const cls_example *ex, const int *rows, int m)
{
    double s = 0;
    for (int r = 0; r < m; r++) {
        double q = fmin(fmax(prob[r], 1e-7), 1 - 1e-7);
        s -= ex[rows[r]].label ? log(q) : log(1 - q);
    }
    return s / m;
}

static int compare_names(const void *a, const void *b) { return strcmp(a, b); }

/* The dense features the head will read, in a fixed order. */
static int dense_names(const cls_example *ex, const int *rows, int m, const cls_fit_params *p,
                       char (**out)[CLS_NAME_MAX], int *D, char *err, size_t errlen)
{
    int n_hidden = ex[rows[0]].features.model.n_hidden, layer = ex[rows[0]].features.model.layer;
    for (int r = 0; r < m; r++) {
        const cls_model_features *mf = &ex[rows[r]].features.model;
        if ((p->uses & (CLS_USE_MODEL | CLS_USE_HIDDEN)) && !mf->present) {
            snprintf(err, errlen, "example %d has no model features: extract them with a model, or fit without "
                     "the model and hidden groups", rows[r]);
            return -1;
        }
        if ((p->uses & CLS_USE_HIDDEN) && (!mf->hidden || mf->n_hidden != n_hidden || mf->layer != layer ||
                                           n_hidden < 1)) {
            snprintf(err, errlen, "example %d's hidden state differs in width or layer from the first one's", rows[r]);
            return -1;
        }
    }
    int cap = CLS_LEX_COUNT + 4 + (p->uses & CLS_USE_HIDDEN ? n_hidden : 0) + CLS_DET_MAX * 4;
    char(*names)[CLS_NAME_MAX] = calloc((size_t)cap, CLS_NAME_MAX);
    int *counts = calloc((size_t)cap, sizeof(int));
    if (!names || !counts) {
        free(names);
        free(counts);
        snprintf(err, errlen, "out of memory listing features");
        return -1;
    }
    int n = 0;
    for (int i = 0; (p->uses & CLS_USE_LEXICAL) && i < CLS_LEX_COUNT; i++)
        snprintf(names[n++], CLS_NAME_MAX, "%s", cls_lex_name(i));
    static const char *const model[] = {"nll_mean", "nll_max", "entropy_last", "log_tokens"};
    for (int i = 0; (p->uses & CLS_USE_MODEL) && i < 4; i++) snprintf(names[n++], CLS_NAME_MAX, "%s", model[i]);
    for (int i = 0; (p->uses & CLS_USE_HIDDEN) && i < n_hidden; i++) snprintf(names[n++], CLS_NAME_MAX, "h%d", i);
    /* Detector kinds seen in at least min_df examples, by name. */
    int first_det = n;
    for (int r = 0; (p->uses & CLS_USE_DETECTORS) && r < m; r++) {
        const cls_features *f = &ex[rows[r]].features;
        for (int k = 0; k < f->n_det; k++) {
            int j = first_det;
            while (j < n && strcmp(names[j], f->det[k].name)) j++;
            if (j == n && n == cap) continue;
            if (j == n) snprintf(names[n++], CLS_NAME_MAX, "%s", f->det[k].name);
            counts[j]++;
        }
    }
    int kept = first_det;
    for (int j = first_det; j < n; j++)
        if (counts[j] >= p->min_df) memmove(names[kept++], names[j], CLS_NAME_MAX);
    qsort(names + first_det, (size_t)(kept - first_det), CLS_NAME_MAX, compare_names);
    free(counts);
    *out = names;
    *D = kept;
    return 0;
}

static char *fit_summary(const cls_fit_params *p, const cls_fit_report *rep, double val_auc, double test_auc,
                         const cls_routing *routing)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "train_examples", rep->n_train + rep->n_val);
    cJSON_AddNumberToObject(o, "test_examples", rep->n_test);
    cJSON_AddNumberToObject(o, "lambda", rep->lambda);
    cJSON_AddNumberToObject(o, "ngram_bits", p->ngram_bits);
    cJSON_AddNumberToObject(o, "max_df", p->max_df);
    cJSON_AddNumberToObject(o, "min_df", p->min_df);
    if (isfinite(val_auc)) cJSON_AddNumberToObject(o, "val_auc", round(val_auc * 1e4) / 1e4);
    if (isfinite(test_auc)) cJSON_AddNumberToObject(o, "test_auc", round(test_auc * 1e4) / 1e4);
    if (routing) {
        cJSON_AddNumberToObject(o, "test_apgr", round(routing->apgr * 1e4) / 1e4);
        cJSON_AddNumberToObject(o, "test_cpt50", round(routing->cpt50 * 1e4) / 1e4);
        cJSON_AddNumberToObject(o, "test_cpt80", round(routing->cpt80 * 1e4) / 1e4);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

void cls_fit_report_free(cls_fit_report *r)
{
    free(r->trials);
    free(r->test_index);
    free(r->test_prob);
    memset(r, 0, sizeof(*r));
}

static bool both_labels(const cls_example *ex, const int *rows, int m)
{
    int pos = 0;
    for (int r = 0; r < m; r++) pos += ex[rows[r]].label != 0;
    return pos > 0 && pos < m;
}

int cls_fit(const cls_example *ex, int n, const cls_fit_params *p, cls_head **out, cls_fit_report *rep,
            char *err, size_t errlen)
{
    *out = NULL;
    memset(rep, 0, sizeof(*rep));
    if (p->ngram_bits < 10 || p->ngram_bits > 22 || !(p->max_df > 0 && p->max_df <= 1) ||
        !(p->test_share >= 0 && p->test_share < 1) || !(p->val_share > 0 && p->val_share < 1) || p->max_iter < 1) {
        snprintf(err, errlen, "fit parameters out of range: ngram bits 10..22, max_df in (0, 1], test share in "
                 "[0, 1), validation share in (0, 1), at least one iteration");
        return -1;
    }
    int *rows = malloc(sizeof(int) * (size_t)(n > 0 ? 3 * n : 1));
    if (!rows) {
        snprintf(err, errlen, "out of memory splitting %d examples", n);
        return -1;
    }
    int *train = rows, *val = rows + n, *test = rows + 2 * n;
    for (int i = 0; i < n; i++) {
        cls_split s = cls_split_of(ex[i].key, p->test_share, p->val_share);
        if (s == CLS_SPLIT_TEST) test[rep->n_test++] = i;
        else if (s == CLS_SPLIT_VAL) val[rep->n_val++] = i;
        else train[rep->n_train++] = i;
    }
    /* training + validation, for the final fit: train[] is followed by room */
    int *fitset = malloc(sizeof(int) * (size_t)(rep->n_train + rep->n_val + 1));
    char(*names)[CLS_NAME_MAX] = NULL;
    float *prob = malloc(sizeof(float) * (size_t)(n + 1));
    const double *lambdas = p->lambdas ? p->lambdas : default_lambdas;
    int n_lambdas = p->lambdas ? p->n_lambdas : (int)(sizeof(default_lambdas) / sizeof(default_lambdas[0]));
    rep->trials = calloc((size_t)(n_lambdas > 0 ? n_lambdas : 1), sizeof(*rep->trials));
    int rc = -1, D = 0;
    double best = INFINITY, val_auc = NAN, test_auc = NAN;
    cls_routing routing = {0};
    bool have_routing = false;
    char *summary = NULL;
    if (!fitset || !prob || !rep->trials) {
        snprintf(err, errlen, "out of memory fitting %d examples", n);
        goto done;
    }
    if (rep->n_train < 2 || rep->n_val < 1 || !both_labels(ex, train, rep->n_train) || n_lambdas < 1) {
        snprintf(err, errlen, "too few examples to fit: %d for training (both labels needed there) and %d for "
                 "validation; label more data (a few hundred examples of each class is a good start)",
                 rep->n_train, rep->n_val);
        goto done;
    }
    memcpy(fitset, train, sizeof(int) * (size_t)rep->n_train);
    memcpy(fitset + rep->n_train, val, sizeof(int) * (size_t)rep->n_val);
    if (dense_names(ex, fitset, rep->n_train + rep->n_val, p, &names, &D, err, errlen)) goto done;
    int *lab = malloc(sizeof(int) * (size_t)(n + 1)), *lok = malloc(sizeof(int) * (size_t)(n + 1)),
        *fok = malloc(sizeof(int) * (size_t)(n + 1));
    if (!lab || !lok || !fok) {
        snprintf(err, errlen, "out of memory fitting %d examples", n);
        goto labels_done;
    }
    for (int t = 0; t < n_lambdas; t++) {
        cls_head *h = NULL;
        if (fit_head(ex, train, rep->n_train, names, D, p, lambdas[t], &h, err, errlen) ||
            predict(h, ex, val, rep->n_val, prob, err, errlen)) {
            cls_head_free(h);
            goto labels_done;
        }
        cls_head_free(h);
        for (int r = 0; r < rep->n_val; r++) lab[r] = ex[val[r]].label != 0;
        cls_fit_trial *tr = &rep->trials[rep->n_trials++];
        tr->lambda = lambdas[t];
        tr->val_logloss = logloss(prob, ex, val, rep->n_val);
        tr->val_auc = cls_roc_auc(prob, lab, rep->n_val);
        if (tr->val_logloss < best) {
            best = tr->val_logloss;
            rep->lambda = tr->lambda;
            val_auc = tr->val_auc;
        }
    }
    /* The final fit, on training + validation; then the held-out test. */
    fitted f;
    if (fit_rows(ex, fitset, rep->n_train + rep->n_val, names, D, p, rep->lambda, &f, err, errlen))
        goto labels_done;
    cls_head *h = NULL;
    rep->test_index = malloc(sizeof(int) * (size_t)(rep->n_test + 1));
    rep->test_prob = malloc(sizeof(float) * (size_t)(rep->n_test + 1));
    if (!rep->test_index || !rep->test_prob) snprintf(err, errlen, "out of memory scoring the test split");
    else if (make_head(&f.d, f.w, p, ex, NULL, &h, err, errlen) == 0 &&
             predict(h, ex, test, rep->n_test, rep->test_prob, err, errlen) == 0) {
        bool routable = rep->n_test > 0;
        for (int r = 0; r < rep->n_test; r++) {
            rep->test_index[r] = test[r];
            lab[r] = ex[test[r]].label != 0;
            lok[r] = ex[test[r]].local_correct;
            fok[r] = ex[test[r]].frontier_correct;
            routable = routable && lok[r] >= 0 && fok[r] >= 0;
        }
        test_auc = cls_roc_auc(rep->test_prob, lab, rep->n_test);
        char ignored[200];
        have_routing = routable && cls_routing_metrics(rep->test_prob, lok, fok, rep->n_test, &routing, ignored,
                                                       sizeof(ignored)) == 0;
        summary = fit_summary(p, rep, val_auc, test_auc, have_routing ? &routing : NULL);
        size_t nb = (size_t)1 << f.d.bits;
        for (int j = 1; j <= D; j++) rep->n_features_kept += f.w[j] != 0;
        for (size_t b = 0; (p->uses & CLS_USE_NGRAMS) && b < nb; b++) rep->n_features_kept += f.w[1 + D + b] != 0;
        rc = make_head(&f.d, f.w, p, ex, summary, out, err, errlen);
    }
    cls_head_free(h);
    fitted_free(&f);
labels_done:
    free(lab);
    free(lok);
    free(fok);
done:
    cls_routing_free(&routing);
    free(summary);
    free(names);
    free(prob);
    free(fitset);
    free(rows);
    if (rc) {
        cls_fit_report_free(rep);
        cls_head_free(*out);
        *out = NULL;
    }
    return rc;
}
