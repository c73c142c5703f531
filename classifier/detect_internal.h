/* detect_internal.h: what the detector files share, not for other modules.
 *
 * One scan walks one message's text; each family of detectors (PII, secrets,
 * people and health, the operator's rules) lives in its own file and adds
 * candidate findings to the scan. detect.c then keeps the best of
 * overlapping candidates. The lexicon (wordlists.c) maps lower-case words to
 * the roles they play: context words that raise confidence, triggers, names,
 * medical terms.
 */
#ifndef JUNCTION_DETECT_INTERNAL_H
#define JUNCTION_DETECT_INTERNAL_H

#include "classifier.h"

#include <stdint.h>

/* ---- text helpers ---- */

/* Byte classes, one table lookup each (detect_text.c). Non-ASCII bytes
 * are word bytes, so a word boundary is never found inside a UTF-8 letter. */
enum { C_DIGIT = 1, C_UPPER = 2, C_LOWER = 4, C_WORD = 8, C_SPACE = 16, C_HEX = 32 };
extern const uint8_t det_class[256];

static inline bool det_is_digit(unsigned char c) { return det_class[c] & C_DIGIT; }
static inline bool det_is_upper(unsigned char c) { return det_class[c] & C_UPPER; }
static inline bool det_is_lower(unsigned char c) { return det_class[c] & C_LOWER; }
static inline bool det_is_alpha(unsigned char c) { return det_class[c] & (C_UPPER | C_LOWER); }
static inline bool det_is_alnum(unsigned char c) { return det_class[c] & (C_UPPER | C_LOWER | C_DIGIT); }
/* ASCII letters, digits, '_' and every non-ASCII byte */
static inline bool det_is_word(unsigned char c) { return det_class[c] & C_WORD; }
static inline bool det_is_hex(unsigned char c) { return det_class[c] & C_HEX; }
static inline bool det_is_space(unsigned char c) { return det_class[c] & C_SPACE; }
static inline unsigned char det_lower(unsigned char c) { return det_is_upper(c) ? (unsigned char)(c + 32) : c; }

/* Case-insensitive: does t[at..] start with the lower-case ASCII `lit`? */
bool det_starts_ci(const char *t, size_t n, size_t at, const char *lit);
/* Shannon entropy of t[a..b) in bits per byte. */
double det_entropy(const char *t, size_t a, size_t b);
/* A documentation placeholder rather than a value: "<your-password>",
 * "${DB_PASS}", "****", "xxxx", "your_api_key_here", "changeme", ... */
bool det_is_placeholder(const char *t, size_t a, size_t b);

/* ---- the lexicon ---- */

/* Roles of a word (bit flags). CTX_* are context words for one kind. */
enum {
    LEX_CTX_EMAIL = 1u << 0,
    LEX_CTX_PHONE = 1u << 1,
    LEX_CTX_SSN = 1u << 2,
    LEX_CTX_CARD = 1u << 3,
    LEX_CTX_IBAN = 1u << 4,
    LEX_CTX_IP = 1u << 5,
    LEX_CTX_DOB = 1u << 6,        /* born, dob, birthday: a date follows */
    LEX_CTX_PASSPORT = 1u << 7,
    LEX_CTX_LICENSE = 1u << 8,
    LEX_NEG_NUMBER = 1u << 9,     /* (the tenth context slot) */     /* isbn, order, invoice, version: numbers here are not PII */
    LEX_FIRST_NAME = 1u << 10,
    LEX_AMBIG_NAME = 1u << 11,    /* also an ordinary word (Will, May, Grace) */
    LEX_SURNAME = 1u << 12,
    LEX_HONORIFIC = 1u << 13,     /* mr, mrs, dr: a name follows */
    LEX_RELATION = 1u << 14,      /* mother, wife, son: a person, and may precede a name */
    LEX_ROLE = 1u << 15,          /* patient, employee, client */
    LEX_ANCHOR = 1u << 16,        /* I, my, his, her: the text is about a person */
    LEX_MEDICAL = 1u << 17,       /* condition, medication, procedure */
    LEX_COMPANY = 1u << 18,       /* Inc, Corp, Ltd: the capitalised words before are a company */
    LEX_SENSITIVE = 1u << 19,     /* a sensitive situation: fired, divorce, arrested */
    LEX_NOT_NAME = 1u << 20,      /* capitalized but never a name: The, Monday, January */
    LEX_STREET = 1u << 21,        /* street, st, avenue, rd */
    LEX_DATA_WORD = 1u << 22,     /* dataset, research, model: a medical term about data, not a person */
    LEX_MONTH = 1u << 23,
    LEX_BEARER = 1u << 24,
    LEX_LEAVE = 1u << 25,         /* "leave": sensitive after on/sick/medical/maternity */
    LEX_CAPS_ONLY = 1u << 26,     /* an acronym that only counts in capitals (HIV, not hiv) */
    LEX_ROLE_NOUN = 1u << 27,     /* portal, records, support: after a role word, a modifier ("patient portal") */
    LEX_CARE = 1u << 28,          /* hospital, therapy, symptoms: health settings, not a life situation */
    LEX_REQUEST = 1u << 29,       /* tell, give, explain: "tell me about X" is a question, not about the asker */
    LEX_NUMBERED = 1u << 30,      /* type, stage, phase: "type I" is a numeral, not the pronoun */
};

typedef struct det_lexicon det_lexicon;

int det_lexicon_new(det_lexicon **out, char *err, size_t errlen);
void det_lexicon_free(det_lexicon *lx);
/* Flags of the word t[a..b) (case-insensitive), 0 if absent; t has n bytes. */
uint32_t det_lexicon_get(const det_lexicon *lx, const char *t, size_t n, size_t a, size_t b);

/* ---- operator rules (detect_custom.c) ---- */

typedef struct det_custom det_custom;

int det_custom_new(det_custom **out, const cJSON *rules, char *err, size_t errlen);
void det_custom_free(det_custom *c);

/* ---- a scan of one message ---- */

typedef struct {
    uint32_t kind_flags;   /* EV_* */
    size_t start, end;
} det_event;

/* EV_STRONG: my, his, her, a relation or role word; EV_WEAK: I, me, he, she.
 * EV_SITUATION: a sensitive life situation (fired, debts, arrested), not a
 * health word; EV_RELATION: an unnamed relative ("my husband", "her son"). */
enum { EV_PERSON = 1, EV_SENSITIVE = 2, EV_MEDICAL = 4, EV_STRONG = 8, EV_WEAK = 16, EV_SITUATION = 32,
       EV_RELATION = 64 };

typedef struct {
    const cls_detector *d;
    const char *t;
    size_t n;
    int msg;
    /* candidates (overlaps allowed), bounded */
    cls_finding *cand;
    int n_cand, cap_cand;
    bool full;             /* cap reached: stop */
    bool oom;
    /* people/health events, in text order */
    det_event *ev;
    size_t n_ev, cap_ev;
    /* where the last context word of each LEX_CTX_* kind (and LEX_NEG_NUMBER,
     * the tenth) ended (SIZE_MAX: none) */
    size_t last_ctx[10];
} det_scan;

struct cls_detector {
    det_lexicon *lex;
    det_custom *custom;
    uint64_t prefix_pairs[1024];   /* first two bytes of every token prefix (detect_secrets.c) */
};

/* Set the bit of each token prefix's first two bytes. */
void det_prefix_pairs(uint64_t bits[1024]);

/* Flags of the word [a, b) of the scanned text. */
static inline uint32_t det_word_flags(const det_scan *s, size_t a, size_t b)
{
    return det_lexicon_get(s->d->lex, s->t, s->n, a, b);
}

/* Add a candidate; confidence is clamped to [0, 1]. */
void det_add(det_scan *s, cls_kind k, size_t start, size_t end, float conf, bool validated);
void det_add_custom(det_scan *s, const char *kind, size_t start, size_t end, float conf);
void det_event_add(det_scan *s, uint32_t flags, size_t start, size_t end);
/* Is a context word with flag `ctx` (one LEX_CTX_* bit) within `before`
 * bytes before `start`, or among the few words after `end`? */
bool det_context(det_scan *s, uint32_t ctx, size_t start, size_t end, size_t before);
/* Only the part before: did such a word end within `before` bytes before `start`? */
bool det_context_before(const det_scan *s, uint32_t ctx, size_t start, size_t before);

/* The passes over one message, in the order detect.c runs them. */
void det_scan_at_signs(det_scan *s);     /* detect_email.c: e-mails, scheme://user:password@ URLs */
void det_scan_pem(det_scan *s);          /* detect_pem.c: private key blocks */
void det_scan_ipv6(det_scan *s);         /* detect_ipv6.c: IPv6 addresses */
void det_scan_words(det_scan *s);        /* detect_words.c: the word walk (below) */
void det_scan_people(det_scan *s);       /* detect_people.c: pairs the walk's events */
void det_scan_custom(det_scan *s);       /* detect_custom.c: operator terms and regexes */

/* Called by the word walk (detect_words.c) at each word [a, b). Those that
 * return a position say where the walk resumes (>= b); the others let it go
 * on into what follows (a value after its name may itself be a provider
 * token, a Bearer value may be a JWT). */
size_t det_number(det_scan *s, size_t a, size_t b);              /* detect_numbers.c */
size_t det_iban(det_scan *s, size_t a, size_t b);                /* detect_iban.c */
size_t det_prefixed_secret(det_scan *s, size_t a, size_t b);     /* detect_secrets.c */
void det_assignment(det_scan *s, size_t a, size_t b, bool name_is_password);   /* detect_assign.c */
void det_bearer(det_scan *s, size_t b);                          /* detect_secrets.c */
void det_after_context(det_scan *s, uint32_t flags, size_t a, size_t b);  /* detect_context.c: DOB, passport, licence */
size_t det_people_word(det_scan *s, uint32_t flags, size_t a, size_t b); /* detect_people.c */
/* Is the identifier ending at b a secret-like name? 0 no, 1 password, 2 other secret. */
int det_secret_name(const char *t, size_t a, size_t b);         /* detect_assign.c */

#endif
