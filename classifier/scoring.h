/* scoring.h: the classifier's scoring part: features, heads, fitting, metrics.
 *
 * Why: detectors alone say *what* is in a prompt; routing needs two numbers,
 * P(difficult) and P(sensitive), that an operator can calibrate on their own
 * traffic. A head is a logistic regression over named dense features
 * (lexical statistics, detector hits by kind, the local model's NLL/entropy,
 * a pooled hidden state) and hashed word n-grams, stored as JSON so that it
 * can be read, diffed and refitted (`junction calibrate`). Everything here is
 * pure: text and numbers in, numbers out; the engine's features are filled
 * in by the caller (cls_model_features), so this module knows no other.
 *
 * (To be merged into classifier.h by the lead.)
 *
 * Ownership: the _new and _load functions return objects the caller frees with the matching
 * *_free. Functions that can fail return 0 on success and -1 on failure with
 * a message in `err` that says what was wrong and what to do.
 */
#ifndef JUNCTION_CLASSIFIER_SCORING_H
#define JUNCTION_CLASSIFIER_SCORING_H

#include "classifier.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- Features ---- */

/* What the local model says about the prompt, filled by the caller from the
 * engine (the classifier does not know the engine). `hidden` is borrowed:
 * it must outlive every use of the features. */
typedef struct {
    bool present;
    float nll_mean, nll_max, entropy_last;
    int n_tokens;
    const float *hidden;   /* mean-pooled hidden state at `layer`, or NULL */
    int n_hidden;
    int layer;
} cls_model_features;

/* Lexical statistics, one slot each; cls_lex_name() gives their names. */
#define CLS_LEX_COUNT 10
const char *cls_lex_name(int i);

/* A hashed word uni- or bigram: the full 32-bit hash (a head keeps its low
 * `ngram_bits`) and the byte span of its first occurrence in the text. */
typedef struct {
    uint32_t hash;
    uint32_t start, end;
} cls_ngram;

/* A detector kind's strongest finding: "det:<kind>" features. */
#define CLS_DET_MAX 32
#define CLS_NAME_MAX 48
typedef struct {
    char name[CLS_NAME_MAX];   /* "det:email", "det:any", "det:project_codename" */
    float value;               /* the highest confidence among its findings */
    bool forces;               /* a finding of this kind forces sensitivity to 1 */
} cls_det_feature;

/* All features of one request. Zero-initialise, fill with cls_lexical() and
 * cls_features_add_findings(), set `model`; free with cls_features_free(). */
typedef struct {
    float lex[CLS_LEX_COUNT];
    cls_ngram *ngrams;   /* owned; sorted by hash, one per distinct hash */
    int n_ngrams;
    cls_det_feature det[CLS_DET_MAX];
    int n_det;
    cls_model_features model;
} cls_features;

/* Lexical features of `text` (any bytes; invalid UTF-8 is fine) into f->lex
 * and f->ngrams (replacing what was there). Words are runs of letters,
 * digits and non-ASCII bytes, lowercased; a number becomes the word <num>;
 * each math symbol is a word of its own; bigrams never cross a line break.
 * Returns 0, or -1 when out of memory. */
int cls_lexical(const char *text, size_t len, cls_features *f, char *err, size_t errlen);

/* Add the detectors' findings as "det:<kind>" features (and "det:any").
 * Kinds past CLS_DET_MAX distinct ones are folded into "det:any" only. */
void cls_features_add_findings(cls_features *f, const cls_findings *findings);

/* The features as `junction route` and POST /v1/route print them: "lexical"
 * (by name), the "ngrams" count, "detectors" (by kind) and "model" (NULL
 * when not present; the hidden state's layer and width, never its values).
 * Caller owns the object; NULL when out of memory. */
cJSON *cls_features_json(const cls_features *f);

void cls_features_free(cls_features *f);

/* ---- Heads ---- */

typedef enum {
    CLS_USE_LEXICAL   = 1 << 0,
    CLS_USE_NGRAMS    = 1 << 1,
    CLS_USE_DETECTORS = 1 << 2,
    CLS_USE_MODEL     = 1 << 3,   /* nll_mean, nll_max, entropy_last, log_tokens */
    CLS_USE_HIDDEN    = 1 << 4,   /* h0..h{n-1}: the pooled hidden state */
} cls_feature_group;

/* Parse "lexical,ngrams,detectors,model,hidden" (any subset) into a bit set. */
int cls_feature_groups_parse(const char *list, unsigned *out, char *err, size_t errlen);

typedef struct cls_head cls_head;

typedef struct {
    const char *target;      /* "difficulty" or "sensitivity" */
    unsigned uses;           /* cls_feature_group bits */
    int layer, n_hidden;     /* for CLS_USE_HIDDEN */
    float threshold;         /* the default policy's cut (0.5 unless fitted otherwise) */
    bool force_from_detectors; /* forcing detector kinds set the score to 1 */
} cls_head_info;

/* A dense feature's standardisation and weight: the head adds
 * weight * cls_standardise(value, mean, std) to the logit. */
typedef struct {
    const char *name;          /* a lexical name, "det:<kind>", "nll_mean", "nll_max",
                                  "entropy_last", "log_tokens" or "h<i>" */
    float mean, std, weight;
} cls_dense_weight;

/* (value - mean) / std, clipped to [-5, 5]: a prompt far outside the
 * fitted range (a 100 KB paste) moves the logit no more than a rare one. */
float cls_standardise(float value, float mean, float std);

/* The value of the dense feature `name` in `f` (0 for a detector kind
 * without findings). -1 when no feature has that name. */
int cls_feature_value(const cls_features *f, const char *name, float *out);

/* Build a head from its parts (all copied). `ngram_weights` has 1 << ngram_bits
 * entries, or is NULL when the head reads no n-grams. `fit_json` (may be
 * NULL) is a JSON object describing how it was fitted, kept in the file.
 * An n-gram's value is 1 / sqrt(number of distinct n-grams in the text). */
int cls_head_new(cls_head **out, const cls_head_info *info, const char *description, float bias,
                 const cls_dense_weight *dense, int n_dense, int ngram_bits,
                 const float *ngram_weights, const char *fit_json, char *err, size_t errlen);

/* Load a head file. Errors name the file and the offending field. */
int cls_head_load(cls_head **out, const char *path, char *err, size_t errlen);
/* From JSON text (the same format). */
int cls_head_parse(cls_head **out, const char *json, size_t len, char *err, size_t errlen);
/* The head shipped with junction for `target` ("difficulty" or "sensitivity"). */
int cls_head_load_default(cls_head **out, const char *target, char *err, size_t errlen);
/* Write the head as JSON (atomically and durably: a temporary file, synced,
 * renamed, and the folder synced). */
int cls_head_save(const cls_head *h, const char *path, char *err, size_t errlen);
void cls_head_free(cls_head *h);
/* Valid while the head lives. */
const cls_head_info *cls_head_get_info(const cls_head *h);

/* Whether the head can score these model features: -1 with a message (e.g.
 * "the head reads a 288-wide hidden state at layer 2; this model's is 64:
 * calibrate a head for this model") when it needs what they lack. */
int cls_head_check_model(const cls_head *h, const cls_model_features *m, char *err, size_t errlen);

#define CLS_EVIDENCE_MAX 5
typedef struct {
    char name[CLS_NAME_MAX];   /* "log_words", "det:email", "nll_mean", "ngram" */
    float value;               /* the feature's raw value (1 for an n-gram) */
    float contribution;        /* its share of the logit (weight x standardised value) */
    bool has_span;             /* n-grams: where in the text (first occurrence) */
    uint32_t start, end;
} cls_evidence;

typedef struct {
    float probability;         /* calibrated P(target) */
    float logit;
    bool forced;               /* a forcing detector kind set the probability to 1 */
    char forced_by[CLS_NAME_MAX];
    int n_evidence;            /* the largest contributions by magnitude, largest first */
    cls_evidence evidence[CLS_EVIDENCE_MAX];
} cls_score;

/* Score the features. Without model features (f->model.present false) a
 * head that reads them still scores: its model and hidden-state terms count
 * as at their fitted mean (they add nothing). With them, fails (with the
 * reason) when they do not fit the head (cls_head_check_model). */
int cls_head_score(const cls_head *h, const cls_features *f, cls_score *out, char *err, size_t errlen);

/* ---- Fitting (junction calibrate) ---- */

typedef struct {
    cls_features features;   /* borrowed by cls_fit */
    int label;               /* 0 or 1 */
    int local_correct, frontier_correct;   /* for routing metrics; -1 unknown */
    uint64_t key;            /* a hash of the prompt: decides the split */
} cls_example;

/* Which split an example's key puts it in: test (the held-out share),
 * validation (chooses the regularisation) or training. Deterministic. */
typedef enum { CLS_SPLIT_TRAIN = 0, CLS_SPLIT_VAL = 1, CLS_SPLIT_TEST = 2 } cls_split;
cls_split cls_split_of(uint64_t key, double test_share, double val_share);

typedef struct {
    const char *target;      /* "difficulty" | "sensitivity" */
    unsigned uses;           /* cls_feature_group bits */
    int ngram_bits;          /* 10..22; default 16 */
    double max_df;           /* n-grams in more than this share of training texts are dropped (0.5) */
    int min_df;              /* ... and those in fewer texts than this (2) */
    double test_share;       /* held out for the report (0.2) */
    double val_share;        /* of the rest, for choosing lambda (0.2) */
    const double *lambdas;   /* L2 strengths to try; NULL: a default grid */
    int n_lambdas;
    int max_iter;            /* L-BFGS iterations per fit (300) */
    bool force_from_detectors;
    const char *description; /* written into the head (may be NULL) */
} cls_fit_params;

void cls_fit_defaults(cls_fit_params *p);

typedef struct {
    double lambda;
    double val_logloss, val_auc;
} cls_fit_trial;

typedef struct {
    int n_train, n_val, n_test;
    cls_fit_trial *trials;   /* one per lambda tried; owned */
    int n_trials;
    double lambda;           /* the chosen one (lowest validation log-loss) */
    int *test_index;         /* owned: the test examples (indices into the input) */
    float *test_prob;        /* owned: the final head's P(target) for each */
    int n_features_kept;     /* dense + n-gram buckets that carry weight */
} cls_fit_report;

/* Fit a head: choose lambda on the validation split, refit on training +
 * validation, score the test split. The test split never influences the
 * head. Needs both labels in the training split. */
int cls_fit(const cls_example *ex, int n, const cls_fit_params *p, cls_head **out,
            cls_fit_report *rep, char *err, size_t errlen);
void cls_fit_report_free(cls_fit_report *r);

/* ---- Metrics ---- */

/* ROC AUC (ties count half); NaN when a class is missing. */
double cls_roc_auc(const float *score, const int *label, int n);

typedef struct {
    double share;     /* of calls sent to the frontier */
    double quality;   /* mean correctness of the chosen answers */
    double pgr;       /* (quality - local-only) / (frontier-only - local-only) */
} cls_pgr_point;

typedef struct {
    int n;
    double local_only, frontier_only;
    double apgr;            /* area under PGR over the share of calls; random: 0.5 */
    double cpt50, cpt80;    /* least share reaching PGR 0.5 / 0.8 (1 if never) */
    cls_pgr_point *curve;   /* owned; one point per tie group boundary, from share 0 to 1 */
    int n_curve;
} cls_routing;

/* Routing metrics for difficulty scores: the highest scores go to the
 * frontier first. Equal scores form one group, routed together in
 * expectation (the curve is linear across a group), so a constant score
 * gives APGR 0.5 exactly. Fails when frontier-only equals local-only. */
int cls_routing_metrics(const float *score, const int *local_ok, const int *frontier_ok, int n,
                        cls_routing *out, char *err, size_t errlen);
void cls_routing_free(cls_routing *r);

typedef struct {
    int count;
    double mean_pred, observed;
} cls_calib_bin;
/* Equal-width probability bins; returns the expected calibration error. */
double cls_calibration(const float *prob, const int *label, int n, cls_calib_bin *bins, int n_bins);

typedef struct {
    int tp, fp, fn, tn;
    double precision, recall, accuracy;   /* NaN where undefined */
} cls_confusion;
void cls_confusion_at(const float *prob, const int *label, int n, float threshold, cls_confusion *out);

/* Print accuracy, AUC and a calibration table (and the routing metrics when
 * `routing` is not NULL) in human form. */
void cls_print_report(FILE *out, const float *prob, const int *label, int n, float threshold,
                      const cls_routing *routing);

#endif
