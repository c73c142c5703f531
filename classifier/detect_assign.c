/* detect_assign.c: passwords and secrets given a name: `DB_PASSWORD=...`,
 * `"client_secret": "..."`, `password: ...`, "my password is ...",
 * `Server=db;User Id=sa;Password=...;` connection strings.
 *
 * The name is what makes a value a secret, so the detector starts at a
 * secret-like identifier and reads the value after its operator. Values
 * that are not secrets are the hard part: placeholders, variables and
 * calls in code (`password = get_password()`, `process.env.DB_PASS`), type
 * annotations (`password: string`). Secrets other than passwords must also
 * look random (high entropy, letters and digits).
 */
#include "detect_internal.h"

#include <string.h>

enum { NAME_PASSWORD = 1, NAME_SECRET = 2 };

/* Name endings, lower case. `anywhere`: also glued to a word ("dbpassword");
 * otherwise after '_', '-', a camel-case hump, or as the whole name. */
#define S(lit) lit, sizeof lit - 1

static const struct { const char *suffix; size_t len; int kind; bool anywhere; } names[] = {
    {S("password"), NAME_PASSWORD, true},   {S("passwd"), NAME_PASSWORD, true},
    {S("passphrase"), NAME_PASSWORD, true}, {S("passcode"), NAME_PASSWORD, true},
    {S("pwd"), NAME_PASSWORD, false},       {S("pass"), NAME_PASSWORD, false},
    {S("pw"), NAME_PASSWORD, false},        {S("secret"), NAME_SECRET, true},
    {S("token"), NAME_SECRET, false},       {S("apikey"), NAME_SECRET, true},
    {S("api_key"), NAME_SECRET, true},      {S("secret_key"), NAME_SECRET, true},
    {S("secretkey"), NAME_SECRET, true},    {S("access_key"), NAME_SECRET, true},
    {S("accesskey"), NAME_SECRET, true},    {S("private_key"), NAME_SECRET, true},
    {S("privatekey"), NAME_SECRET, true},   {S("auth_key"), NAME_SECRET, true},
    {S("encryption_key"), NAME_SECRET, true}, {S("signing_key"), NAME_SECRET, true},
    {S("master_key"), NAME_SECRET, true},   {S("accountkey"), NAME_SECRET, true},
    {S("account_key"), NAME_SECRET, true},  {S("app_key"), NAME_SECRET, true},
    {S("credentials"), NAME_SECRET, true},  {S("credential"), NAME_SECRET, true},
};

/* Unquoted values that are types, keywords or schema words, not secrets. */
static const char *const not_values[] = {
    "string", "str", "int", "integer", "number", "boolean", "bool", "text", "varchar", "char",
    "bytes", "any", "object", "required", "optional", "hidden", "input", "field", "type",
    "function", "self", "this", "new", "len", "null", "none", "true", "false", "nil",
    "undefined", "default", "is", "was", "the", "a", "an", "and", "or", "not", "for", "with",
};

int det_secret_name(const char *t, size_t a, size_t b)
{
    size_t len = b - a;
    if (len < 2) return 0;
    unsigned char last = det_lower((unsigned char)t[b - 1]), before = det_lower((unsigned char)t[b - 2]);
    /* the last two letters of every name below: most words end otherwise */
    switch (last) {
    case 'd': if (before != 'r' && before != 'w') return 0; break;
    case 'e': if (before != 's' && before != 'd') return 0; break;
    case 's': if (before != 's' && before != 'l') return 0; break;
    case 'w': if (before != 'p') return 0; break;
    case 't': if (before != 'e') return 0; break;
    case 'n': if (before != 'e') return 0; break;
    case 'y': if (before != 'e') return 0; break;
    case 'l': if (before != 'a') return 0; break;
    default: return 0;
    }
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        size_t m = names[i].len;
        if (m > len || names[i].suffix[m - 1] != last || !det_starts_ci(t, b, b - m, names[i].suffix)) continue;
        size_t at = b - m;
        bool edge = at == a || t[at - 1] == '_' || t[at - 1] == '-' ||
                    (det_is_upper((unsigned char)t[at]) && det_is_lower((unsigned char)t[at - 1]));
        if (names[i].anywhere || edge) return names[i].kind;
    }
    return 0;
}

static bool contains_ci(const char *t, size_t a, size_t b, const char *lit)
{
    for (size_t i = a; i < b; i++)
        if (det_starts_ci(t, b, i, lit)) return true;
    return false;
}

static bool is_quote(char c) { return c == '"' || c == '\'' || c == '`'; }

static bool unquoted_end(unsigned char c)
{
    return det_is_space(c) || c == ',' || c == ';' || c == '&' || c == ')' || c == ']' || c == '}' ||
           c == '"' || c == '\'' || c == '`' || c == '<' || c == '>';
}

typedef enum { OP_NONE, OP_EQ_TIGHT, OP_EQ_SPACED, OP_COLON, OP_PROSE } op_kind;

/* The operator after the name: its kind, with *i moved past it and the
 * blanks after it. */
static op_kind read_operator(const char *t, size_t n, size_t *i, bool password)
{
    size_t k = *i;
    if (k < n && is_quote(t[k])) k++;
    if (k < n && t[k] == ']') k++;
    size_t blank = k;
    while (k < n && (t[k] == ' ' || t[k] == '\t')) k++;
    /* Kubernetes and compose env lists: "- name: DB_PASSWORD\n  value: ..." */
    size_t v = k;
    if (v < n && t[v] == '\n') {
        for (v++; v < n && (t[v] == ' ' || t[v] == '\t'); v++) {}
        if (det_starts_ci(t, n, v, "value:")) {
            k = v + 5;
            blank = k;
        }
    }
    bool spaced = k > blank;
    op_kind op = OP_NONE;
    if (k + 1 < n && t[k] == ':' && t[k + 1] == '=') {
        op = spaced ? OP_EQ_SPACED : OP_EQ_TIGHT;
        k += 2;
    } else if (k + 1 < n && t[k] == '=' && t[k + 1] == '>') {
        op = OP_EQ_SPACED;
        k += 2;
    } else if (k < n && t[k] == '=' && (k + 1 >= n || t[k + 1] != '=')) {
        op = spaced || (k + 1 < n && t[k + 1] == ' ') ? OP_EQ_SPACED : OP_EQ_TIGHT;
        k++;
    } else if (k < n && t[k] == ':' && (k + 1 >= n || t[k + 1] != ':')) {
        op = OP_COLON;
        k++;
    } else if (password && spaced) {
        static const char *const verbs[] = {"is ", "was ", "to ", "are "};
        for (size_t v = 0; v < sizeof verbs / sizeof *verbs && op == OP_NONE; v++)
            if (det_starts_ci(t, n, k, verbs[v])) {
                op = OP_PROSE;
                k += strlen(verbs[v]);
            }
    }
    if (op == OP_NONE) return OP_NONE;
    while (k < n && (t[k] == ' ' || t[k] == '\t')) k++;
    *i = k;
    return op;
}

static bool one_of(const char *t, size_t a, size_t b, const char *const *words, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strlen(words[i]) == b - a && det_starts_ci(t, b, a, words[i])) return true;
    return false;
}

/* Does an unquoted value read as code (a variable, call or attribute)? */
static bool looks_like_code(const char *t, size_t a, size_t b, op_kind op)
{
    bool ident = det_is_alpha((unsigned char)t[a]) || t[a] == '_';
    bool digit = false, symbol = false, upper = false;
    for (size_t i = a; i < b; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '(' || c == '[' || c == '{') return true;
        if (c == '.' && i + 1 < b && det_is_alpha((unsigned char)t[i + 1]) && i > a && det_is_alpha((unsigned char)t[i - 1]))
            return true;   /* process.env.X, config.db.password */
        digit |= det_is_digit(c);
        upper |= det_is_upper(c);
        if (!det_is_alnum(c) && c != '_') ident = false, symbol = true;
    }
    if (one_of(t, a, b, not_values, sizeof not_values / sizeof *not_values)) return true;
    if (op == OP_EQ_SPACED && ident) return true;                   /* password = user_input */
    if (op == OP_PROSE && !digit && !symbol && !upper) return true; /* "the password is required" */
    return false;
}

static bool looks_random(const char *t, size_t a, size_t b)
{
    bool alpha = false, digit = false;
    for (size_t i = a; i < b; i++) {
        if (det_is_space((unsigned char)t[i])) return false;
        alpha |= det_is_alpha((unsigned char)t[i]);
        digit |= det_is_digit((unsigned char)t[i]);
    }
    double h = det_entropy(t, a, b);
    return (alpha && digit && h >= 3.0) || (b - a >= 20 && h >= 3.5);
}

/* `Server=...;...;Password=x;`: where the connection string starts, or SIZE_MAX. */
static size_t ado_start(const char *t, size_t name)
{
    static const char *const keys[] = {"server=", "data source=", "host=", "hostname="};
    size_t from = name > 300 ? name - 300 : 0;
    size_t line = name;
    while (line > from && t[line - 1] != '\n' && !is_quote(t[line - 1])) line--;
    for (size_t i = line; i < name; i++)
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
            if (det_starts_ci(t, name, i, keys[k]) && (i == line || !det_is_alnum((unsigned char)t[i - 1])))
                return i;
    return SIZE_MAX;
}

void det_assignment(det_scan *s, size_t a, size_t b, bool name_is_password)
{
    const char *t = s->t;
    size_t i = b;
    op_kind op = read_operator(t, s->n, &i, name_is_password);
    if (op == OP_NONE || i >= s->n) return;
    size_t v = i, e;
    bool quoted = is_quote(t[i]);
    if (quoted) {
        char q = t[i];
        v = i + 1;
        e = v;
        while (e < s->n && e - v < 256 && t[e] != q && t[e] != '\n') e++;
        if (e >= s->n || t[e] != q) return;
    } else {
        e = v;
        while (e < s->n && e - v < 256 && !unquoted_end((unsigned char)t[e])) e++;
        while (e > v && (t[e - 1] == '.' || t[e - 1] == ':')) e--;
    }
    if (e - v < 4 || det_is_placeholder(t, v, e)) return;
    if (!quoted && looks_like_code(t, v, e, op)) return;
    if (name_is_password && op == OP_EQ_TIGHT) {
        size_t start = ado_start(t, a), end = quoted ? e + 1 : e;
        if (start != SIZE_MAX) {
            while (end < s->n && t[end] != '\n' && !is_quote(t[end])) end++;
            det_add(s, CLS_CONNECTION_STRING, start, end, 0.9f, false);
            return;
        }
    }
    if (name_is_password) {
        det_add(s, CLS_PASSWORD, v, e, quoted ? 0.9f : 0.8f, false);
        return;
    }
    if (e - v < 12 || !looks_random(t, v, e)) return;
    bool aws = e - v == 40 && (contains_ci(t, a, b, "aws") || contains_ci(t, a, b, "secretaccess") ||
                               contains_ci(t, a, b, "secret_access"));
    if (aws) {
        bool example = det_starts_ci(t, e, e - 10, "examplekey");
        det_add(s, CLS_AWS_SECRET_KEY, v, e, example ? 0.7f : 0.9f, !example);
    } else {
        det_add(s, CLS_SECRET, v, e, 0.85f, false);
    }
}
