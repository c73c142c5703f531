/* cmd_keys.c: `junction keys`: client keys and tenants, in the ledger file.
 *
 * The daemon only reads keys (it notices changes within a second), so all
 * management happens here, directly on the database named by --db or by the
 * configuration's ledger.path, whether the daemon runs or not. A new or
 * rotated key is printed once, alone on the last line of standard output,
 * for scripts to take from there; only its HMAC is stored. Usage errors exit
 * 2, failures 1. docs/policy.md, "Keys, tenants, budgets".
 */
#include "cli.h"
#include "commands.h"
#include "gateway.h"
#include "policy.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *db, *config, *tenant, *name, *routes, *rpm, *tpm, *daily, *monthly, *format;
    const char *target;             /* the ID or tenant NAME after the verb */
    bool admin;
} keys_args;

/* Which verbs take an option. */
enum { ADD = 1, LIST = 2, REVOKE = 4, ROTATE = 8, TENANT = 16, TENANTS = 32, ALL = 63 };

static const struct {
    const char *flag;
    size_t offset;
    int verbs;
} value_flags[] = {
    {"--db", offsetof(keys_args, db), ALL},
    {"--config", offsetof(keys_args, config), ALL},
    {"--tenant", offsetof(keys_args, tenant), ADD},
    {"--name", offsetof(keys_args, name), ADD},
    {"--routes", offsetof(keys_args, routes), ADD},
    {"--rpm", offsetof(keys_args, rpm), ADD},
    {"--tpm", offsetof(keys_args, tpm), ADD},
    {"--budget-daily", offsetof(keys_args, daily), ADD | TENANT},
    {"--budget-monthly", offsetof(keys_args, monthly), ADD | TENANT},
    {"--format", offsetof(keys_args, format), LIST | TENANTS},
};

static void keys_usage(FILE *out)
{
    fprintf(out,
        "usage: junction keys add (--db FILE | --config FILE) --tenant NAME [--name LABEL]\n"
        "                         [--routes LIST] [--rpm N] [--tpm N] [--budget-daily USD]\n"
        "                         [--budget-monthly USD] [--admin]\n"
        "       junction keys list (--db FILE | --config FILE) [--format table|json]\n"
        "       junction keys revoke (--db FILE | --config FILE) ID\n"
        "       junction keys rotate (--db FILE | --config FILE) ID\n"
        "       junction keys tenant (--db FILE | --config FILE) NAME [--budget-daily USD]\n"
        "                            [--budget-monthly USD]\n"
        "       junction keys tenants (--db FILE | --config FILE) [--format table|json]\n\n"
        "Client keys and tenants, stored in the ledger database (only a keyed hash of\n"
        "each key). As soon as one key exists the daemon requires `Authorization:\n"
        "Bearer KEY`; it picks up every change here within a second, without a restart.\n"
        "add and rotate print the key once, alone on the last line of standard output.\n\n"
        "  --db FILE             the ledger database (created if missing)\n"
        "  --config FILE         the daemon's configuration: its ledger.path\n"
        "  --tenant NAME         the key's tenant (created, without budgets, if new)\n"
        "  --name LABEL          a label for people (letters, digits, . _ - and space)\n"
        "  --routes LIST         routes the key may use, comma-separated (local, upstream\n"
        "                        names); default: all\n"
        "  --rpm N, --tpm N      requests / tokens per minute; default 0: no limit\n"
        "  --budget-daily USD    spend limit per UTC day (0: none); for a key or a tenant\n"
        "  --budget-monthly USD  spend limit per calendar month (UTC)\n"
        "  --admin               the key may use the admin endpoints\n"
        "  --format F            table (default) or json\n"
        "tenant NAME creates the tenant or changes the budgets given (the others stay).\n"
        "Docs: docs/policy.md.\n");
}

static const struct {
    const char *name;
    int verb;
    bool takes_target;
} verbs[] = {
    {"add", ADD, false}, {"list", LIST, false}, {"revoke", REVOKE, true},
    {"rotate", ROTATE, true}, {"tenant", TENANT, true}, {"tenants", TENANTS, false},
};

/* Returns 0, or an exit status (-1 after --help: exit 0). */
static int parse_args(int argc, char **argv, int *verb, keys_args *a)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        keys_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : -1;
    }
    size_t v = 0, nv = sizeof(verbs) / sizeof(verbs[0]);
    while (v < nv && strcmp(verbs[v].name, argv[1]) != 0) v++;
    if (v == nv) {
        fprintf(stderr, "junction keys: unknown action '%s': add, list, revoke, rotate, tenant or "
                "tenants; see `junction keys --help`\n", argv[1]);
        return 2;
    }
    *verb = verbs[v].verb;
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            keys_usage(stdout);
            return -1;
        }
        if (!strcmp(arg, "--admin") && *verb == ADD) {
            a->admin = true;
            continue;
        }
        if (arg[0] != '-' || arg[1] != '-') {
            if (!verbs[v].takes_target || a->target) {
                fprintf(stderr, "junction keys %s: unexpected argument '%s'\n", verbs[v].name, arg);
                return 2;
            }
            a->target = arg;
            continue;
        }
        size_t k = 0, n = sizeof(value_flags) / sizeof(value_flags[0]), len = 0;
        for (; k < n; k++) {
            len = strlen(value_flags[k].flag);
            if (!strncmp(arg, value_flags[k].flag, len) && (arg[len] == '\0' || arg[len] == '=')) break;
        }
        if (k == n || !(value_flags[k].verbs & *verb)) {
            fprintf(stderr, "junction keys %s: unknown option '%s'; see `junction keys --help`\n",
                    verbs[v].name, arg);
            return 2;
        }
        const char *value = arg[len] == '=' ? arg + len + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (!value) {
            fprintf(stderr, "junction keys %s: %s needs a value\n", verbs[v].name, value_flags[k].flag);
            return 2;
        }
        *(const char **)((char *)a + value_flags[k].offset) = value;
    }
    if (!a->db == !a->config) {
        fprintf(stderr, "junction keys %s: give the ledger as --db FILE or as --config FILE (one of them)\n",
                verbs[v].name);
        return 2;
    }
    if (verbs[v].takes_target && !a->target) {
        fprintf(stderr, "junction keys %s: give the %s\n", verbs[v].name,
                *verb == TENANT ? "tenant's NAME" : "key's ID (see `junction keys list`)");
        return 2;
    }
    if (*verb == ADD && !a->tenant) {
        fprintf(stderr, "junction keys add: --tenant NAME is required\n");
        return 2;
    }
    return 0;
}


static int parse_count(const char *flag, const char *text, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < 0 || v > 1000000000000LL) {
        fprintf(stderr, "junction keys: %s '%s': give a whole number from 0 (no limit) to 10^12\n", flag, text);
        return -1;
    }
    *out = v;
    return 0;
}

/* A budget option into *out (left as is when the option is absent). */
static int parse_budget(const char *flag, const char *text, int64_t *out)
{
    char err[256];
    if (!text) return 0;
    if (pol_usd_parse(text, out, err, sizeof(err)) == 0) return 0;
    fprintf(stderr, "junction keys: %s: %s\n", flag, err);
    return -1;
}

static void iso_time(int64_t ms, char *buf, size_t len)
{
    if (!ms) {
        snprintf(buf, len, "-");
        return;
    }
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void money(int64_t micro, char *buf, size_t len)
{
    if (micro) pol_usd_format(micro, buf, len);
    else snprintf(buf, len, "-");
}

static int print_json(cJSON *doc)
{
    char *text = doc ? cJSON_Print(doc) : NULL;
    cJSON_Delete(doc);
    if (!text) {
        fprintf(stderr, "junction keys: out of memory\n");
        return 1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

static int do_add(pol_keyadmin *ka, const keys_args *a)
{
    pol_key k;
    memset(&k, 0, sizeof(k));
    snprintf(k.tenant, sizeof(k.tenant), "%s", a->tenant);
    snprintf(k.name, sizeof(k.name), "%s", a->name ? a->name : "");
    snprintf(k.routes, sizeof(k.routes), "%s", a->routes ? a->routes : "");
    if (strlen(a->tenant) >= sizeof(k.tenant) || (a->name && strlen(a->name) >= sizeof(k.name)) ||
        (a->routes && strlen(a->routes) >= sizeof(k.routes))) {
        fprintf(stderr, "junction keys add: --tenant and --name take at most 63 characters, --routes 255\n");
        return 2;
    }
    k.admin = a->admin;
    if ((a->rpm && parse_count("--rpm", a->rpm, &k.rpm) != 0) ||
        (a->tpm && parse_count("--tpm", a->tpm, &k.tpm) != 0) ||
        parse_budget("--budget-daily", a->daily, &k.budget_daily_micro) != 0 ||
        parse_budget("--budget-monthly", a->monthly, &k.budget_monthly_micro) != 0)
        return 2;
    pol_key made;
    char secret[POL_KEY_SECRET_LEN + 1], err[1024];
    if (pol_key_add(ka, &k, &made, secret, err, sizeof(err)) != 0) {
        fprintf(stderr, "junction keys add: %s\n", err);
        return 1;
    }
    printf("added %s for tenant %s%s; the key is shown only now, store it safely:\n%s\n",
           made.id, made.tenant, made.admin ? " (admin)" : "", secret);
    return 0;
}

/* ---- list and tenants: one listing, described by a table ---- */

/* What a table cell shows: the field of the row at the column's offset. */
typedef enum { TEXT, COUNT, MONEY, TIME, FLAG } cell_kind;

typedef struct {
    const char *heading;
    int width;                      /* printf width: negative is left-aligned */
    cell_kind kind;
    size_t offset;
    const char *empty;              /* TEXT: shown for "" (NULL: the "" itself) */
} column;

static const column key_columns[] = {
    {"ID", -16, TEXT, offsetof(pol_key, id), NULL},
    {"TENANT", -16, TEXT, offsetof(pol_key, tenant), NULL},
    {"NAME", -16, TEXT, offsetof(pol_key, name), "-"},
    {"ROUTES", -16, TEXT, offsetof(pol_key, routes), "all"},
    {"RPM", 8, COUNT, offsetof(pol_key, rpm), NULL},
    {"TPM", 10, COUNT, offsetof(pol_key, tpm), NULL},
    {"DAILY_USD", 14, MONEY, offsetof(pol_key, budget_daily_micro), NULL},
    {"MONTHLY_USD", 14, MONEY, offsetof(pol_key, budget_monthly_micro), NULL},
    {"ADMIN", -5, FLAG, offsetof(pol_key, admin), NULL},
    {"CREATED", -20, TIME, offsetof(pol_key, created_ms), NULL},
    {"REVOKED", -20, TIME, offsetof(pol_key, revoked_ms), NULL},
};

static const column tenant_columns[] = {
    {"TENANT", -24, TEXT, offsetof(pol_tenant, name), NULL},
    {"DAILY_USD", 14, MONEY, offsetof(pol_tenant, budget_daily_micro), NULL},
    {"MONTHLY_USD", 14, MONEY, offsetof(pol_tenant, budget_monthly_micro), NULL},
    {"CREATED", -20, TIME, offsetof(pol_tenant, created_ms), NULL},
};

/* The cell of column c in `row`, as text (in buf, or static). */
static const char *cell(const column *c, const void *row, char *buf, size_t len)
{
    const char *field = (const char *)row + c->offset;
    switch (c->kind) {
    case TEXT: return !field[0] && c->empty ? c->empty : field;
    case COUNT: snprintf(buf, len, "%lld", (long long)*(const int64_t *)field); return buf;
    case MONEY: money(*(const int64_t *)field, buf, len); return buf;
    case TIME: iso_time(*(const int64_t *)field, buf, len); return buf;
    case FLAG: return *(const bool *)field ? "yes" : "no";
    }
    return "";
}

/* One line of the table: the headings when row is NULL. */
static void print_row(const column *cols, size_t n_cols, const void *row)
{
    for (size_t c = 0; c < n_cols; c++) {
        char buf[32];
        printf("%s%*s", c ? "  " : "", cols[c].width, row ? cell(&cols[c], row, buf, sizeof(buf)) : cols[c].heading);
    }
    printf("\n");
}

/* `list` and `tenants`: how to load the rows and show one. */
typedef struct {
    const char *verb, *member;      /* the JSON document's one member: the array */
    size_t size;                    /* of one row */
    int (*load)(pol_keyadmin *ka, void **rows, size_t *n, char *err, size_t errlen);
    cJSON *(*json)(const void *row);
    const column *columns;
    size_t n_columns;
} listing;

static int load_keys(pol_keyadmin *ka, void **rows, size_t *n, char *err, size_t errlen)
{
    pol_key *keys;
    int rc = pol_key_list(ka, &keys, n, err, errlen);
    *rows = rc == 0 ? keys : NULL;
    return rc;
}

static int load_tenants(pol_keyadmin *ka, void **rows, size_t *n, char *err, size_t errlen)
{
    pol_tenant *tenants;
    int rc = pol_tenant_list(ka, &tenants, n, err, errlen);
    *rows = rc == 0 ? tenants : NULL;
    return rc;
}

static cJSON *key_json(const void *row) { return pol_key_json(row); }
static cJSON *tenant_json(const void *row) { return pol_tenant_json(row); }

static const listing key_listing = {"list", "keys", sizeof(pol_key), load_keys, key_json, key_columns,
                                    sizeof(key_columns) / sizeof(key_columns[0])};
static const listing tenant_listing = {"tenants", "tenants", sizeof(pol_tenant), load_tenants, tenant_json,
                                       tenant_columns, sizeof(tenant_columns) / sizeof(tenant_columns[0])};

static int do_listing(pol_keyadmin *ka, const listing *l, bool json)
{
    void *rows;
    size_t n;
    char err[1024];
    if (l->load(ka, &rows, &n, err, sizeof(err)) != 0) {
        fprintf(stderr, "junction keys %s: %s\n", l->verb, err);
        return 1;
    }
    int rc = 0;
    if (json) {
        cJSON *doc = cJSON_CreateObject(), *arr = doc ? cJSON_AddArrayToObject(doc, l->member) : NULL;
        for (size_t i = 0; arr && i < n; i++) {
            cJSON *item = l->json((const char *)rows + i * l->size);
            if (!item || !cJSON_AddItemToArray(arr, item)) arr = NULL;
        }
        if (!arr) {
            cJSON_Delete(doc);
            doc = NULL;
        }
        rc = print_json(doc);
    } else {
        print_row(l->columns, l->n_columns, NULL);
        for (size_t i = 0; i < n; i++) print_row(l->columns, l->n_columns, (const char *)rows + i * l->size);
    }
    free(rows);
    return rc;
}

static int do_change(pol_keyadmin *ka, int verb, const keys_args *a)
{
    char err[1024], secret[POL_KEY_SECRET_LEN + 1];
    int64_t daily = -1, monthly = -1;
    switch (verb) {
    case REVOKE:
        if (pol_key_revoke(ka, a->target, err, sizeof(err)) != 0) break;
        printf("revoked %s\n", a->target);
        return 0;
    case ROTATE:
        if (pol_key_rotate(ka, a->target, secret, err, sizeof(err)) != 0) break;
        printf("rotated %s; the old key no longer works. The new key is shown only now:\n%s\n",
               a->target, secret);
        return 0;
    default:
        if (parse_budget("--budget-daily", a->daily, &daily) != 0 ||
            parse_budget("--budget-monthly", a->monthly, &monthly) != 0)
            return 2;
        if (pol_tenant_set(ka, a->target, daily, monthly, err, sizeof(err)) != 0) break;
        printf("tenant %s saved\n", a->target);
        return 0;
    }
    fprintf(stderr, "junction keys: %s\n", err);
    return 1;
}

int cmd_keys(int argc, char **argv)
{
    keys_args a = {0};
    int verb = 0;
    int rc = parse_args(argc, argv, &verb, &a);
    if (rc != 0) return rc < 0 ? 0 : rc;
    bool json = false;
    if (a.format && !(json = !strcmp(a.format, "json")) && strcmp(a.format, "table") != 0) {
        fprintf(stderr, "junction keys: --format '%s': table or json\n", a.format);
        return 2;
    }
    char path[POL_LEDGER_PATH_MAX], err[1024];
    if ((rc = cli_ledger_path("keys", a.db, a.config, path, sizeof(path))) != 0) return rc;
    pol_keyadmin *ka;
    if (pol_keyadmin_open(&ka, path, err, sizeof(err)) != 0) {
        fprintf(stderr, "junction keys: %s\n", err);
        return 1;
    }
    switch (verb) {
    case ADD: rc = do_add(ka, &a); break;
    case LIST: rc = do_listing(ka, &key_listing, json); break;
    case TENANTS: rc = do_listing(ka, &tenant_listing, json); break;
    default: rc = do_change(ka, verb, &a); break;
    }
    pol_keyadmin_close(ka);
    return rc;
}
