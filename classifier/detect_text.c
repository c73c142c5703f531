/* detect_text.c: small text tests the detector families share.
 *
 * The placeholder test is what keeps documentation from looking like a leak:
 * tutorials write "<your-password>", "${DB_PASS}", "****" or "changeme"
 * where a real secret would stand, and none of those is one.
 */
#include "detect_internal.h"

#include <math.h>

#define DIG (C_DIGIT | C_WORD | C_HEX)
#define UPH (C_UPPER | C_WORD | C_HEX)
#define LOH (C_LOWER | C_WORD | C_HEX)
#define UP (C_UPPER | C_WORD)
#define LO (C_LOWER | C_WORD)
#define NA C_WORD   /* non-ASCII byte */
#define SP C_SPACE
#define R16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x

const uint8_t det_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, SP, SP, SP, SP, SP, 0, 0,               /* \t \n \v \f \r */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    SP, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,                    /* space */
    DIG, DIG, DIG, DIG, DIG, DIG, DIG, DIG, DIG, DIG, 0, 0, 0, 0, 0, 0,  /* 0-9 */
    0, UPH, UPH, UPH, UPH, UPH, UPH, UP, UP, UP, UP, UP, UP, UP, UP, UP, /* @ A-O */
    UP, UP, UP, UP, UP, UP, UP, UP, UP, UP, UP, 0, 0, 0, 0, C_WORD,     /* P-Z _ */
    0, LOH, LOH, LOH, LOH, LOH, LOH, LO, LO, LO, LO, LO, LO, LO, LO, LO, /* a-o */
    LO, LO, LO, LO, LO, LO, LO, LO, LO, LO, LO, 0, 0, 0, 0, 0,          /* p-z */
    R16(NA), R16(NA), R16(NA), R16(NA), R16(NA), R16(NA), R16(NA), R16(NA),
};

bool det_starts_ci(const char *t, size_t n, size_t at, const char *lit)
{
    for (size_t i = 0; lit[i]; i++)
        if (at + i >= n || det_lower((unsigned char)t[at + i]) != (unsigned char)lit[i]) return false;
    return true;
}

double det_entropy(const char *t, size_t a, size_t b)
{
    if (b <= a) return 0.0;
    unsigned count[256] = {0};
    for (size_t i = a; i < b; i++) count[(unsigned char)t[i]]++;
    double n = (double)(b - a), h = 0.0;
    for (int c = 0; c < 256; c++) {
        if (!count[c]) continue;
        double p = count[c] / n;
        h -= p * log2(p);
    }
    return h;
}

#define W(lit) {lit, sizeof lit - 1}

typedef struct {
    const char *s;
    size_t len;
} lit;

/* Whole values that stand for a value. */
static const lit placeholder_words[] = {
    W("password"), W("pass"), W("passwd"), W("pwd"), W("secret"), W("token"), W("key"), W("value"),
    W("null"), W("none"), W("nil"), W("undefined"), W("true"), W("false"), W("string"), W("str"),
    W("text"), W("required"), W("optional"), W("hidden"), W("test"), W("foo"), W("bar"), W("baz"),
    W("apikey"), W("api_key"), W("secret_key"), W("mypassword"), W("yourpassword"),
    W("mysecretpassword"), W("empty"), W("user"), W("username"), W("admin"), W("xxx"), W("env"), W("pw"),
};

/* Pieces that mark a value as a stand-in wherever they appear in it. */
static const lit placeholder_parts[] = {
    W("your"), W("example"), W("placeholder"), W("changeme"), W("change_me"), W("change-me"),
    W("replace"), W("insert"), W("xxxx"), W("redacted"), W("dummy"), W("sample"), W("todo"),
    W("_here"), W("-here"), W("<"), W(">"), W("${"), W("{{"), W("..."),
};

bool det_is_placeholder(const char *t, size_t a, size_t b)
{
    if (b <= a) return true;
    unsigned char c0 = (unsigned char)t[a];
    if (c0 == '<' || c0 == '{' || c0 == '$' || c0 == '%' || c0 == '[') return true;
    /* one repeated mask character: ****, xxxxxx, ...., ######## */
    bool masked = true;
    for (size_t i = a; i < b && masked; i++) {
        unsigned char c = det_lower((unsigned char)t[i]);
        masked = c == '*' || c == 'x' || c == '.' || c == '#' || c == '-' || c == '_' || c == '?';
    }
    if (masked) return true;
    for (size_t i = a; i < b; i++) {
        unsigned char c = det_lower((unsigned char)t[i]);
        for (size_t k = 0; k < sizeof placeholder_parts / sizeof *placeholder_parts; k++)
            if ((unsigned char)placeholder_parts[k].s[0] == c && i + placeholder_parts[k].len <= b &&
                det_starts_ci(t, b, i, placeholder_parts[k].s))
                return true;
    }
    for (size_t k = 0; k < sizeof placeholder_words / sizeof *placeholder_words; k++)
        if (placeholder_words[k].len == b - a && det_starts_ci(t, b, a, placeholder_words[k].s)) return true;
    return false;
}
