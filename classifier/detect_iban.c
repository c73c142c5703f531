/* detect_iban.c: IBANs, written whole or in groups of four.
 *
 * An IBAN is only reported when its country's length matches and the
 * ISO 13616 mod-97 check passes, so a product code that starts like one
 * ("DE12 release") is never taken for it.
 */
#include "detect_internal.h"

#include <string.h>

/* Country code and IBAN length (SWIFT IBAN registry). */
static const struct { char cc[3]; int len; } countries[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22},
    {"BH", 22}, {"BI", 27}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24},
    {"DE", 22}, {"DJ", 27}, {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18},
    {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27},
    {"GT", 28}, {"HN", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26},
    {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20},
    {"LU", 20}, {"LV", 21}, {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MN", 20},
    {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"OM", 23}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33}, {"SA", 24},
    {"SC", 31}, {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"SO", 23}, {"ST", 25},
    {"SV", 28}, {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20},
    {"YE", 30},
};

static int iban_length(const char *cc)
{
    for (size_t i = 0; i < sizeof countries / sizeof *countries; i++)
        if (countries[i].cc[0] == cc[0] && countries[i].cc[1] == cc[1]) return countries[i].len;
    return 0;
}

/* ISO 7064 mod 97-10 over the rearranged IBAN (letters as 10..35). */
static bool mod97_ok(const char *iban, int len)
{
    unsigned r = 0;
    for (int k = 0; k < len; k++) {
        unsigned char c = (unsigned char)iban[(k + 4) % len];
        if (det_is_digit(c))
            r = (r * 10 + (c - '0')) % 97;
        else
            r = (r * 100 + (unsigned)(c - 'A' + 10)) % 97;
    }
    return r == 1;
}

size_t det_iban(det_scan *s, size_t a, size_t b)
{
    const char *t = s->t;
    int want = iban_length(t + a);
    if (!want) return b;
    char iban[40];
    int got = 0;
    size_t i = a;
    while (i < s->n && got < want) {
        unsigned char c = (unsigned char)t[i];
        if (c == ' ' && got % 4 == 0 && got > 0 && i + 1 < s->n && det_is_alnum((unsigned char)t[i + 1])) {
            i++;
            continue;
        }
        if (!det_is_digit(c) && !det_is_upper(c)) break;
        iban[got++] = (char)c;
        i++;
    }
    if (got != want || (i < s->n && det_is_word((unsigned char)t[i]))) return b;
    if (!mod97_ok(iban, want)) return b;
    det_add(s, CLS_IBAN, a, i, 0.95f, true);
    return i;
}
