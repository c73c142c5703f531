/* detect_people.c: people named in a sensitive context, and health data
 * tied to a person, without a model.
 *
 * The word walk records events: a person mentioned (a known given name,
 * an honorific or a relation/role word followed by a capitalised name, a
 * capitalised word followed by a known surname), a personal anchor
 * ("my", "his", a relation or role word; weaker: "I", "he", "she"), a
 * medical term (condition, medication, procedure) and a sensitive
 * situation (fired, divorce, arrested, debts, "on leave"). Afterwards the
 * events are paired: a person near a sensitive word or medical term is a
 * person finding; an unnamed relative ("my husband", "her son") in the same
 * sentence as a life situation (not a health word: those make health
 * findings) is a weaker person finding; a medical term near an anchor or
 * person is a health finding. A medical term followed by "dataset",
 * "research", "model" is a topic, not a person's condition, and a role word
 * followed by "portal", "records", "support" is a modifier, not a person:
 * both are left out. Names alone and medical questions alone are not
 * findings.
 */
#include "detect_internal.h"

#include <string.h>

#define PERSON_WINDOW 150   /* bytes between a person and a sensitive word */
#define RELATION_WINDOW 60  /* between "my husband" and a life situation, same sentence */
#define STRONG_WINDOW 80    /* between a medical term and my/his/relation/person */
#define WEAK_WINDOW 32      /* between a medical term and I/he/she */

static bool titlecase(const char *t, size_t a, size_t b)
{
    if (b - a < 2 || !det_is_upper((unsigned char)t[a])) return false;
    for (size_t i = a + 1; i < b; i++)
        if (!det_is_lower((unsigned char)t[i]) && (unsigned char)t[i] < 0x80) return false;
    return true;
}

/* The word after the blanks at i: its start, its end in *e (start == *e: none). */
static size_t word_at(const char *t, size_t n, size_t i, size_t *e)
{
    while (i < n && t[i] == ' ') i++;
    size_t k = i;
    while (k < n && det_is_word((unsigned char)t[k]) && t[k] != '_') k++;
    *e = k;
    return i;
}

/* A name starting at i: a capitalised word that is not a function word,
 * then up to two more capitalised words. Returns the end, or 0. */
static size_t name_at(det_scan *s, size_t i, uint32_t reject)
{
    const char *t = s->t;
    size_t e, a = word_at(t, s->n, i, &e);
    if (!titlecase(t, a, e) || (det_word_flags(s, a, e) & reject)) return 0;
    size_t end = e;
    for (int more = 0; more < 2 && end + 1 < s->n && t[end] == ' '; more++) {
        size_t e2, a2 = word_at(t, s->n, end, &e2);
        if (a2 == end + 1 && (det_word_flags(s, a2, e2) & LEX_COMPANY)) return 0;
        if (!titlecase(t, a2, e2) || (det_word_flags(s, a2, e2) & (reject | LEX_STREET)) ||
            a2 != end + 1)
            break;
        end = e2;
    }
    size_t e3, a3 = word_at(t, s->n, end + (end < s->n && t[end] == ','), &e3);
    if (e3 > a3 && (det_word_flags(s, a3, e3) & LEX_COMPANY)) return 0;   /* "Acme Corp", "Initech, Inc." */
    return end;
}

#define NOT_A_NAME (LEX_NOT_NAME | LEX_MEDICAL | LEX_SENSITIVE | LEX_HONORIFIC | LEX_RELATION | \
                    LEX_ROLE | LEX_MONTH | LEX_ANCHOR | LEX_ROLE_NOUN)

static bool strong_anchor_word(const char *t, size_t a, size_t b)
{
    static const char *const strong[] = {"my", "his", "her", "their", "our", "mine", "hers"};
    for (size_t i = 0; i < sizeof strong / sizeof *strong; i++)
        if (strlen(strong[i]) == b - a && det_starts_ci(t, b, a, strong[i])) return true;
    return false;
}

/* The letters of the word before a, blanks between: its start, its end in
 * *e (start == *e: none). */
static size_t word_before(const det_scan *s, size_t a, size_t *e)
{
    size_t end = a;
    while (end > 0 && s->t[end - 1] == ' ') end--;
    size_t w = end;
    while (w > 0 && det_is_alpha((unsigned char)s->t[w - 1])) w--;
    *e = end < a ? end : w;
    return w;
}

/* "my husband", "her son": my/his/her/their/our before the word at a. */
static bool possessive_before(const det_scan *s, size_t a)
{
    size_t e, w = word_before(s, a, &e);
    return e > w && strong_anchor_word(s->t, w, e);
}

/* "my pharmacology exam", "our research": a possessive of someone's work
 * (a word between at most), not of their body. */
static bool owns_work(det_scan *s, size_t b)
{
    for (int words = 0; words < 2; words++) {
        size_t e, w = word_at(s->t, s->n, b, &e);
        if (w != b + 1 || e == w) return false;
        if (det_word_flags(s, w, e) & LEX_DATA_WORD) return true;
        b = e;
    }
    return false;
}

/* "type I diabetes", "bipolar I": the numeral, not the pronoun. */
static bool roman_one(det_scan *s, size_t a, size_t b)
{
    size_t e, w = word_before(s, a, &e);
    return b - a == 1 && s->t[a] == 'I' && e > w && (det_word_flags(s, w, e) & LEX_NUMBERED);
}

/* "tell me", "explain to me": the one asking, not the one a text is about. */
static bool asker(det_scan *s, size_t a)
{
    size_t e, w = word_before(s, a, &e);
    if (e - w == 2 && det_starts_ci(s->t, e, w, "to")) w = word_before(s, w, &e);
    return e > w && (det_word_flags(s, w, e) & LEX_REQUEST);
}

/* "on leave", "sick leave", "maternity leave": the word before "leave". */
static bool sensitive_leave(det_scan *s, size_t a)
{
    static const char *const before[] = {"on", "sick", "medical", "maternity", "paternity", "parental",
                                         "family", "bereavement", "disability", "stress", "compassionate"};
    size_t e, w = word_before(s, a, &e);
    for (size_t i = 0; i < sizeof before / sizeof *before; i++)
        if (strlen(before[i]) == e - w && det_starts_ci(s->t, e, w, before[i])) return true;
    return false;
}

size_t det_people_word(det_scan *s, uint32_t flags, size_t a, size_t b)
{
    const char *t = s->t;
    if (flags & LEX_MEDICAL) {
        size_t e, na = word_at(t, s->n, b, &e);
        bool topic = e > na && (det_word_flags(s, na, e) & LEX_DATA_WORD);
        if (!topic) det_event_add(s, EV_MEDICAL | EV_SENSITIVE, a, b);
        return b;
    }
    if (flags & LEX_SENSITIVE) det_event_add(s, flags & LEX_CARE ? EV_SENSITIVE : EV_SENSITIVE | EV_SITUATION, a, b);
    if ((flags & LEX_LEAVE) && sensitive_leave(s, a)) det_event_add(s, EV_SENSITIVE | EV_SITUATION, a, b);
    if (flags & (LEX_RELATION | LEX_ROLE)) {
        size_t e, na = word_at(t, s->n, b, &e);
        if ((flags & LEX_ROLE) && na == b + 1 && (det_word_flags(s, na, e) & LEX_ROLE_NOUN)) return b;
        det_event_add(s, EV_STRONG, a, b);
        size_t i = b;
        if (i < s->n && t[i] == ',') i++;
        if (i < s->n && t[i] == ' ') {
            size_t e, w = word_at(t, s->n, i, &e);
            if (det_starts_ci(t, e, w, "named") || det_starts_ci(t, e, w, "called")) i = e;
            size_t end = name_at(s, i, NOT_A_NAME);
            if (end) {
                size_t na = i;
                while (t[na] == ' ') na++;
                det_event_add(s, EV_PERSON, na, end);
                return end;
            }
        }
        if ((flags & LEX_RELATION) && possessive_before(s, a)) det_event_add(s, EV_RELATION, a, b);
        return b;
    }
    if (flags & LEX_ANCHOR) {
        if (strong_anchor_word(t, a, b)) {
            if (!owns_work(s, b)) det_event_add(s, EV_STRONG, a, b);
        }
        else if ((b - a > 1 || t[a] == 'I') && !asker(s, a) && !roman_one(s, a, b))
            det_event_add(s, EV_WEAK, a, b);
        return b;
    }
    if (!titlecase(t, a, b) && !(b - a == 2 && det_is_upper((unsigned char)t[a]))) return b;
    if (flags & LEX_HONORIFIC) {
        size_t i = b < s->n && t[b] == '.' ? b + 1 : b;
        size_t end = i < s->n && t[i] == ' ' ? name_at(s, i, NOT_A_NAME) : 0;
        if (end) det_event_add(s, EV_PERSON, a, end);
        return end ? end : b;
    }
    if (!titlecase(t, a, b) || (flags & (LEX_NOT_NAME | LEX_MONTH))) return b;
    size_t e2, a2 = word_at(t, s->n, b, &e2);
    bool next_title = a2 == b + 1 && titlecase(t, a2, e2);
    uint32_t next_flags = next_title ? det_word_flags(s, a2, e2) : 0;
    bool next_surname = next_title && !(next_flags & (NOT_A_NAME | LEX_STREET));
    if ((flags & LEX_FIRST_NAME) && !(flags & LEX_AMBIG_NAME)) {
        size_t end = next_surname ? e2 : b;
        det_event_add(s, EV_PERSON, a, end);
        return end;
    }
    bool known_surname = (next_flags & LEX_SURNAME) && !(next_flags & LEX_AMBIG_NAME);
    if (next_surname && ((flags & LEX_FIRST_NAME) || (flags == 0 && known_surname))) {
        det_event_add(s, EV_PERSON, a, e2);
        return e2;
    }
    return b;
}

/* No blank line between, and (unless `cross`) no sentence end either. */
static bool same_passage(const char *t, size_t from, size_t to, bool cross)
{
    for (size_t i = from; i + 1 < to; i++) {
        if (t[i] == '\n' && t[i + 1] == '\n') return false;
        if (!cross && (t[i] == '.' || t[i] == '!' || t[i] == '?') && det_is_space((unsigned char)t[i + 1]))
            return false;
    }
    return true;
}

static size_t gap(const det_event *x, const det_event *y)
{
    if (x->end <= y->start) return y->start - x->end;
    if (y->end <= x->start) return x->start - y->end;
    return 0;
}

/* Is there an event with one of `want` within `window` of ev[i]? */
static bool near(const det_scan *s, size_t i, uint32_t want, size_t window, bool cross)
{
    const det_event *x = &s->ev[i];
    for (size_t j = i; j-- > 0;) {
        const det_event *y = &s->ev[j];
        if (y->start + window + 64 < x->start) break;
        if ((y->kind_flags & want) && gap(x, y) <= window &&
            same_passage(s->t, y->end < x->start ? y->end : x->start, x->start, cross))
            return true;
    }
    for (size_t j = i + 1; j < s->n_ev; j++) {
        const det_event *y = &s->ev[j];
        if (y->start > x->end + window) break;
        if ((y->kind_flags & want) && gap(x, y) <= window && same_passage(s->t, x->end, y->start, cross))
            return true;
    }
    return false;
}

/* A medical term tied to a person (set here, on the events). */
#define EV_TIED (1u << 8)

void det_scan_people(det_scan *s)
{
    for (size_t i = 0; i < s->n_ev; i++)
        if ((s->ev[i].kind_flags & EV_MEDICAL) &&
            (near(s, i, EV_STRONG | EV_PERSON, STRONG_WINDOW, false) || near(s, i, EV_WEAK, WEAK_WINDOW, false)))
            s->ev[i].kind_flags |= EV_TIED;
    /* "I'm pregnant and worried about taking ibuprofen": the sentence is about her health */
    for (size_t i = 0; i < s->n_ev; i++)
        if ((s->ev[i].kind_flags & EV_MEDICAL) && !(s->ev[i].kind_flags & EV_TIED) &&
            near(s, i, EV_TIED, STRONG_WINDOW, false))
            s->ev[i].kind_flags |= EV_TIED;
    for (size_t i = 0; i < s->n_ev && !s->full; i++) {
        const det_event *x = &s->ev[i];
        if (x->kind_flags & EV_PERSON) {
            if (near(s, i, EV_SENSITIVE, PERSON_WINDOW / 2, false))
                det_add(s, CLS_PERSON, x->start, x->end, 0.85f, false);
            else if (near(s, i, EV_SENSITIVE, PERSON_WINDOW, true))
                det_add(s, CLS_PERSON, x->start, x->end, 0.7f, false);
        }
        if ((x->kind_flags & EV_RELATION) && near(s, i, EV_SITUATION, RELATION_WINDOW, false))
            det_add(s, CLS_PERSON, x->start, x->end, 0.6f, false);
        if (x->kind_flags & EV_TIED) det_add(s, CLS_HEALTH, x->start, x->end, 0.8f, false);
    }
}
