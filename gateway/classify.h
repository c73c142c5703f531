/* classify.h: scoring a request with the classifier. Internal. */
#ifndef JUNCTION_CLASSIFY_H
#define JUNCTION_CLASSIFY_H

#include "classifier.h"
#include "internal.h"
#include "localengine.h"
#include "scoring.h"

#define GW_MAX_KINDS 16

struct gw_classifier {
    cls_detector *detector;
    cls_head *difficulty, *sensitivity;
    char head_path[2][GW_PATH_MAX]; /* difficulty, sensitivity: "" for the shipped head */
    unsigned uses;                  /* the feature groups the two heads read, together */
    /* the local model's pass, once gw_classifier_bind found an engine for heads that read it */
    bool model_wanted;
    eng_feature_params pass;
    int max_tokens;                 /* classifier.max_tokens: the prompt's head and tail beyond it */
    char mode[8];                   /* classifier.model_features: "on", "off" or "auto" */
};

/* The detectors (with classifier.detectors) and the two heads
 * (classifier.*_head, or the defaults shipped in the binary). */
int gw_classifier_new(gw_classifier **out, const gw_config *cfg, char *err, size_t errlen);
/* The local model that computes the heads' model features (NULL: none is
 * loaded: the heads score without them, with a warning). Fixes the pass:
 * the hidden state pooled at classifier.layer (0: n_layer/4), the pass
 * stopped there unless a head reads NLL or entropy. Refuses a head whose
 * hidden state is at another layer or of another width, naming its file. */
int gw_classifier_bind(gw_classifier *c, const gw_config *cfg, const eng_model *m, char *err, size_t errlen);
void gw_classifier_free(gw_classifier *c);
/* The head's cut above which a request counts as difficult / sensitive. */
float gw_classifier_threshold(const gw_classifier *c, bool difficulty);

/* One request's classification. Owns its findings, features and message
 * list (whose texts point into the request's body: keep the body while it
 * lives). */
struct gw_classification {
    cls_message *msgs;
    int n_msgs;
    cls_findings findings;
    char kinds[128];                      /* distinct kinds, comma-separated ("" = none) */
    const char *kind_list[GW_MAX_KINDS];  /* the same, as names */
    int n_kinds;
    cls_features features;                /* lexical, n-grams, detectors; the model's once added */
    float *hidden;                        /* owned: the pooled hidden state features.model points to */
    char model_off[96];                   /* why the model's features were not used ("" when they were) */
    cls_score difficulty, sensitivity;
    bool difficult, sensitive;            /* at or above the heads' thresholds; sensitive also when a
                                             validated finding of a forcing kind is present */
    double detect_ms, score_ms, model_ms; /* model_ms: the pass, its queue wait included */
};

/* Any thread. The body is a validated chat (or text) completion request.
 * The heads score without model features (model_off says "not computed"
 * until the pass adds them, or the caller says why not). */
int gw_classify(const gw_classifier *c, const cJSON *body, gw_api_kind api, gw_classification *out, char *err,
                size_t errlen);
/* The local model's features of the request's prompt: the heads score
 * again with them. */
int gw_classification_add_model(gw_classification *cls, const gw_classifier *c, const eng_features *f, char *err,
                                size_t errlen);
void gw_classification_free(gw_classification *c);
/* The texts were rewritten (pseudonymized): drop the pointers into them;
 * findings, kinds and scores stay. */
void gw_classification_forget_texts(gw_classification *c);

/* {"difficulty","sensitivity"} */
cJSON *gw_classification_scores_json(const gw_classification *c);
/* [{kind, message, start, end, confidence}]: never the matched text */
cJSON *gw_classification_findings_json(const gw_classification *c);
/* scores, sensitive/difficult, findings, evidence, features, model_features, timing_ms */
cJSON *gw_classification_json(const gw_classification *c);

#endif
