/* cmd_audit.c: `junction audit`: what was spent, saved and how fast, from
 * the ledger file itself.
 *
 * It reads the database directly with its own read-only connection, so it
 * works while the daemon runs and when it does not; the report is the same
 * JSON the daemon's GET /admin/spend serves (policy's pol_audit_spend),
 * rendered as a table, CSV or JSON. `--vacuum` is the maintenance path:
 * VACUUM, the integrity check, and a schema migration if the file is older.
 * Usage errors exit 2, failures to read 1.
 */
#include "cli.h"
#include "commands.h"
#include "gateway.h"
#include "policy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *db, *config, *since, *until, *by, *format;
    bool vacuum;
} audit_args;

/* The options that take a value (next argument, or after '='). */
static const struct {
    const char *flag;
    size_t offset;
} value_flags[] = {
    {"--db", offsetof(audit_args, db)},
    {"--config", offsetof(audit_args, config)},
    {"--since", offsetof(audit_args, since)},
    {"--until", offsetof(audit_args, until)},
    {"--by", offsetof(audit_args, by)},
    {"--format", offsetof(audit_args, format)},
};

static void audit_usage(FILE *out)
{
    fprintf(out, "usage: junction audit (--db FILE | --config FILE) [--since T] [--until T]\n"
                 "                      [--by tenant|key|route|model|day|hour] [--format table|csv|json]\n"
                 "       junction audit (--db FILE | --config FILE) --vacuum\n\n"
                 "Spend from the ledger: requests, tokens, cost, counterfactual cost, savings,\n"
                 "share per route, errors, p50/p95 latency and time to first token, per group\n"
                 "and in total. Reads the file directly (fine while the daemon runs).\n\n"
                 "  --db FILE       the ledger database\n"
                 "  --config FILE   the daemon's configuration: its ledger.path\n"
                 "  --since T       from T: 30m, 24h, 7d, 2w back from now, or a UTC date or\n"
                 "                  datetime (2026-12-01, 2026-12-01T10:00:00Z); default: the start\n"
                 "  --until T       before T (same forms); default: now and later\n"
                 "  --by G          one row per tenant, key, route, model, day or hour (UTC)\n"
                 "  --format F      table (default), csv or json (as GET /admin/spend)\n"
                 "  --vacuum        compact the file and check its integrity (migrates an older\n"
                 "                  schema); safe while the daemon runs\n"
                 "Docs: docs/ledger.md.\n");
}

/* Returns 0, or an exit status (0 after --help is -1). */
static int parse_args(int argc, char **argv, audit_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            audit_usage(stdout);
            return -1;
        }
        if (!strcmp(arg, "--vacuum")) {
            a->vacuum = true;
            continue;
        }
        size_t k = 0, n = sizeof(value_flags) / sizeof(value_flags[0]);
        size_t len = 0;
        for (; k < n; k++) {
            len = strlen(value_flags[k].flag);
            if (!strncmp(arg, value_flags[k].flag, len) && (arg[len] == '\0' || arg[len] == '=')) break;
        }
        if (k == n) {
            fprintf(stderr, "junction audit: unknown option '%s'; see `junction audit --help`\n", arg);
            return 2;
        }
        const char *value = arg[len] == '=' ? arg + len + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (!value || !*value) {
            fprintf(stderr, "junction audit: %s needs a value\n", value_flags[k].flag);
            return 2;
        }
        *(const char **)((char *)a + value_flags[k].offset) = value;
    }
    if (!a->db == !a->config) {
        fprintf(stderr, "junction audit: give the ledger as --db FILE or as --config FILE (one of them)\n");
        return 2;
    }
    return 0;
}


/* The query from the options; 0 or the exit status. */
static int make_query(const audit_args *a, pol_spend_query *q, pol_format *format)
{
    char err[512];
    int64_t now = pol_now_ms();
    q->since_ms = 0;
    q->until_ms = INT64_MAX;
    q->by = POL_BY_NONE;
    *format = POL_FORMAT_TABLE;
    if ((a->since && pol_time_parse(a->since, now, &q->since_ms, err, sizeof(err)) != 0) ||
        (a->until && pol_time_parse(a->until, now, &q->until_ms, err, sizeof(err)) != 0) ||
        (a->by && pol_group_by_parse(a->by, &q->by, err, sizeof(err)) != 0) ||
        (a->format && pol_format_parse(a->format, format, err, sizeof(err)) != 0)) {
        fprintf(stderr, "junction audit: %s\n", err);
        return 2;
    }
    if (q->since_ms > q->until_ms) {
        fprintf(stderr, "junction audit: --since is after --until: swap them\n");
        return 2;
    }
    return 0;
}

int cmd_audit(int argc, char **argv)
{
    audit_args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc != 0) return rc < 0 ? 0 : rc;
    char path[POL_LEDGER_PATH_MAX], err[1024];
    if ((rc = cli_ledger_path("audit", a.db, a.config, path, sizeof(path))) != 0) return rc;
    if (a.vacuum) {
        if (pol_audit_vacuum(path, err, sizeof(err)) != 0) {
            fprintf(stderr, "junction audit: %s\n", err);
            return 1;
        }
        printf("%s: vacuumed, integrity ok\n", path);
        return 0;
    }
    pol_spend_query q;
    pol_format format;
    if ((rc = make_query(&a, &q, &format)) != 0) return rc;
    pol_audit *audit;
    cJSON *report = NULL;
    if (pol_audit_open(&audit, path, err, sizeof(err)) != 0) {
        fprintf(stderr, "junction audit: %s\n", err);
        return 1;
    }
    rc = pol_audit_spend(audit, &q, &report, err, sizeof(err)) == 0 &&
         pol_spend_render(report, format, stdout, err, sizeof(err)) == 0 ? 0 : 1;
    if (rc != 0) fprintf(stderr, "junction audit: %s\n", err);
    cJSON_Delete(report);
    pol_audit_close(audit);
    return rc;
}
