/* classifier.h: what a prompt contains and how hard and sensitive it is.
 *
 * The one public header of the classifier module. It is pure: text and
 * features in, findings and scores out; it knows no other module, does no
 * I/O and keeps no global state, so any thread may call it.
 *
 * This part: the deterministic detectors (docs/detectors.md). They find
 * personal data, secrets, people named in a sensitive context, health data
 * tied to a person, and the operator's own terms and patterns, without any
 * model, in one pass per message.
 *
 * Ownership: cls_detector_new/cls_detector_free; cls_findings are filled by
 * cls_detect and emptied by cls_findings_free; cls_messages_from_json
 * returns a heap array (free()) whose texts point into the caller's cJSON.
 */
#ifndef JUNCTION_CLASSIFIER_H
#define JUNCTION_CLASSIFIER_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- detector kinds ---- */

typedef enum {
    CLS_EMAIL, CLS_PHONE, CLS_SSN, CLS_CREDIT_CARD, CLS_IBAN, CLS_IP_ADDRESS,
    CLS_DATE_OF_BIRTH, CLS_PASSPORT, CLS_DRIVERS_LICENSE, CLS_STREET_ADDRESS,
    CLS_PRIVATE_KEY, CLS_AWS_ACCESS_KEY, CLS_AWS_SECRET_KEY, CLS_GITHUB_TOKEN,
    CLS_GITLAB_TOKEN, CLS_SLACK_TOKEN, CLS_STRIPE_KEY, CLS_GOOGLE_API_KEY,
    CLS_OPENAI_KEY, CLS_ANTHROPIC_KEY, CLS_JWT, CLS_BEARER_TOKEN,
    CLS_CONNECTION_STRING, CLS_PASSWORD, CLS_SECRET, CLS_PERSON, CLS_HEALTH,
    CLS_CUSTOM,
    CLS_KIND_COUNT
} cls_kind;

/* "email", "credit_card", ... (static string); "unknown" out of range. */
const char *cls_kind_name(cls_kind k);
/* The kind named `name`; -1 if there is none. */
int cls_kind_from_name(const char *name);
/* True for the kinds whose validated findings force sensitivity to 1
 * (private keys, cloud and API keys, Luhn-valid cards, valid SSNs, IBANs
 * passing mod-97, ...). See cls_finding_forces. */
bool cls_kind_forces(cls_kind k);

/* ---- input ---- */

typedef struct {
    const char *role;   /* "system", "user", "assistant", "tool"; may be NULL */
    const char *text;   /* not NUL-terminated necessarily; any bytes */
    size_t len;
    int source;         /* index of the OpenAI message it came from */
} cls_message;

/* The texts of an OpenAI `messages` array: string contents, the "text" of
 * content parts, tool messages, and assistant tool_calls' (and the legacy
 * function_call's) arguments. One cls_message per text, in order, pointing
 * into `messages` (no copies: keep the cJSON alive while using them).
 * *out is a heap array the caller frees with free() (NULL when *n is 0).
 * Returns 0, or -1 with `err` naming the offending message. */
int cls_messages_from_json(const cJSON *messages, cls_message **out, int *n,
                           char *err, size_t errlen);

/* The text the lexical features and the model read: the user messages'
 * texts joined with newlines (all messages when none is the user's). Heap
 * string in *out (free()). */
int cls_user_text(const cls_message *msgs, int n, char **out, size_t *out_len, char *err, size_t errlen);

/* ---- the detector ---- */

typedef struct cls_detector cls_detector;

/* Build a detector. `custom_rules` (may be NULL) is the operator's array,
 * e.g. [{"kind": "project_codename", "terms": ["Bluebird"], "weight": 0.9},
 *       {"kind": "customer_id", "regex": "CUST-[0-9]{6}", "weight": 0.95}]:
 * each entry has a "kind" (1..63 chars of [a-z0-9_]), exactly one of
 * "terms" (non-empty strings, matched case-insensitively on word
 * boundaries) or "regex" (PCRE2 syntax, UTF-8), and an optional "weight"
 * in (0, 1] (default 0.9) that becomes the findings' confidence. The JSON is
 * copied; the detector is immutable afterwards and may be shared by threads.
 * Returns 0, or -1 with `err` naming the entry and what is wrong. */
int cls_detector_new(cls_detector **out, const cJSON *custom_rules, char *err, size_t errlen);
void cls_detector_free(cls_detector *d);

/* At most this many findings per cls_detect call; past it, detection stops
 * and `truncated` is set. */
#define CLS_MAX_FINDINGS 1024

typedef struct {
    cls_kind kind;
    const char *custom_kind;  /* the operator's kind for CLS_CUSTOM (owned by the detector), else NULL */
    int message;              /* index into the msgs array given to cls_detect */
    size_t start, end;        /* byte span in that message's text: [start, end) */
    float confidence;         /* 0..1 */
    bool validated;           /* a checksum or exact format confirmed it (Luhn, mod-97, ...) */
} cls_finding;

typedef struct {
    cls_finding *items;       /* sorted by (message, start); spans never overlap */
    int n;
    bool truncated;           /* CLS_MAX_FINDINGS reached */
} cls_findings;

/* Scan `n` messages. `out` is overwritten (call cls_findings_free after).
 * Safe to call from many threads on one detector. Returns 0, or -1 with
 * `err` set (bad arguments or out of memory). */
int cls_detect(const cls_detector *d, const cls_message *msgs, int n, cls_findings *out,
               char *err, size_t errlen);
void cls_findings_free(cls_findings *f);

/* True when this finding alone makes the prompt sensitive (score 1). */
bool cls_finding_forces(const cls_finding *f);

/* A copy of msgs[message]'s text with each of its findings replaced by
 * "<KIND>" (the kind name in capitals; the operator's kind for custom rules).
 * *out is a NUL-terminated heap string the caller frees; *out_len its length.
 * Returns 0, or -1 with `err` set (findings out of range or overlapping). */
int cls_redact(const cls_message *msg, int message, const cls_findings *f,
               char **out, size_t *out_len, char *err, size_t errlen);

#endif
