/* classify.h: scoring a request with the classifier. Internal. */
#ifndef JUNCTION_CLASSIFY_H
#define JUNCTION_CLASSIFY_H

#include "classifier.h"
#include "internal.h"
#include "scoring.h"

#define GW_MAX_KINDS 16

struct gw_classifier {
    cls_detector *detector;
    cls_head *difficulty, *sensitivity;
};

/* The detectors (with classifier.detectors) and the two heads
 * (classifier.*_head, or the defaults shipped in the binary). */
int gw_classifier_new(gw_classifier **out, const gw_config *cfg, char *err, size_t errlen);
void gw_classifier_free(gw_classifier *c);
/* The head's cut above which a request counts as difficult / sensitive. */
float gw_classifier_threshold(const gw_classifier *c, bool difficulty);

/* One request's classification. Owns its findings and message list (whose
 * texts point into the request's body: keep the body while it lives). */
struct gw_classification {
    cls_message *msgs;
    int n_msgs;
    cls_findings findings;
    char kinds[128];                      /* distinct kinds, comma-separated ("" = none) */
    const char *kind_list[GW_MAX_KINDS];  /* the same, as names */
    int n_kinds;
    cls_score difficulty, sensitivity;
    bool difficult, sensitive;            /* at or above the heads' thresholds; sensitive also when a
                                             validated finding of a forcing kind is present */
    double detect_ms, score_ms;
};

/* Any thread. The body is a validated chat (or text) completion request. */
int gw_classify(const gw_classifier *c, const cJSON *body, gw_api_kind api, gw_classification *out, char *err,
                size_t errlen);
void gw_classification_free(gw_classification *c);
/* The texts were rewritten (pseudonymized): drop the pointers into them;
 * findings, kinds and scores stay. */
void gw_classification_forget_texts(gw_classification *c);

/* {"difficulty","sensitivity"} */
cJSON *gw_classification_scores_json(const gw_classification *c);
/* [{kind, message, start, end, confidence}]: never the matched text */
cJSON *gw_classification_findings_json(const gw_classification *c);
/* scores, sensitive/difficult, findings, evidence, timing_ms */
cJSON *gw_classification_json(const gw_classification *c);

#endif
