/* cmd_serve.c: `junction serve`, the daemon.
 *
 * Settings come from the defaults, then the --config file, then flags, so a
 * flag always wins. Then gw_config_check looks at what the settings name
 * (the model file, the listen host, key variables, files to write, the
 * detectors, the routing rules, protected mode against the ledger's keys):
 * the same check runs for --check-config, which prints the result and
 * exits, and before serving, so that both refuse exactly the same things.
 * A refused configuration exits 2 (a usage error); failing to start or to
 * run (a port in use, a model that fails to load), 1.
 */
#include "commands.h"
#include "gateway.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void serve_usage(FILE *out)
{
    fprintf(out, "usage: junction serve [--config FILE] [--check-config] [options]\n\n"
                 "Run the gateway daemon in the foreground until SIGTERM or SIGINT.\n\n"
                 "  --config FILE                          JSON configuration file (docs/configuration.md)\n"
                 "  --check-config                         check the configuration and what it names (the\n"
                 "                                         model file's header, the listen address, key\n"
                 "                                         variables, files, detectors, routing rules,\n"
                 "                                         protected mode), print the effective settings,\n"
                 "                                         and exit: 0 if valid, 2 if not\n"
                 "Every configuration key is also a flag (a flag beats the file); a boolean flag\n"
                 "alone means true, --flag=false turns it off:\n");
    gw_config_print_flags(out);
}

/* Apply the flags after the file. Returns 0, or the exit status. */
static int apply_flags(gw_config *cfg, int argc, char **argv, bool *check_only)
{
    char err[1024];
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--config") == 0) { i++; continue; }
        if (strncmp(arg, "--config=", 9) == 0) continue;
        if (strcmp(arg, "--check-config") == 0) { *check_only = true; continue; }
        char flag[64];
        const char *value = NULL;
        const char *eq = strchr(arg, '=');
        if (eq && (size_t)(eq - arg) < sizeof(flag)) {
            memcpy(flag, arg, (size_t)(eq - arg));
            flag[eq - arg] = '\0';
            value = eq + 1;
        } else {
            snprintf(flag, sizeof(flag), "%s", arg);
            if (gw_config_flag_takes_value(flag) == 1 && i + 1 < argc) value = argv[++i];
        }
        int rc = gw_config_apply_flag(cfg, flag, value, err, sizeof(err));
        if (rc == 1) {
            fprintf(stderr, "junction serve: unknown option '%s'; see `junction serve --help`\n", arg);
            return 2;
        }
        if (rc != 0) {
            fprintf(stderr, "junction serve: %s\n", err);
            return 2;
        }
    }
    return 0;
}

/* Run the daemon on a checked configuration. */
static int serve(const gw_config *cfg)
{
    char err[1024];
    gw_log_set_level(cfg->log_level);
    struct event_base *base = gw_event_base_new(err, sizeof(err));
    if (!base) {
        gw_log(GW_LOG_ERROR, "%s", err);
        return 1;
    }
    int rc = 1;
    gw_backends *backends = NULL;
    gw_server *srv = NULL;
    if (gw_backends_new(&backends, base, cfg, err, sizeof(err)) != 0 ||
        gw_server_new(&srv, base, cfg, backends, err, sizeof(err)) != 0) {
        gw_log(GW_LOG_ERROR, "%s", err);
    } else {
        gw_backends_log_summary(backends);
        rc = gw_server_run(srv) == 0 ? 0 : 1;
    }
    gw_server_free(srv);
    gw_backends_free(backends);
    event_base_free(base);
    return rc;
}

int cmd_serve(int argc, char **argv)
{
    static gw_config cfg; /* large (upstreams, detectors): not on the stack */
    gw_config_defaults(&cfg);
    char err[1024];
    const char *config_path = NULL;
    bool check_only = false;

    /* The file first, wherever --config stands, so that flags override it. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            serve_usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "junction serve: --config needs a file name\n");
                return 2;
            }
            config_path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config_path = argv[i] + 9;
        }
    }
    if (config_path && gw_config_load_file(&cfg, config_path, err, sizeof(err)) != 0) {
        fprintf(stderr, "junction serve: %s\n", err);
        return 2;
    }
    int rc = apply_flags(&cfg, argc, argv, &check_only);
    if (rc != 0) return rc;
    /* No file: a provider key in the environment is enough to route to it
     * (after the flags, so that an --upstream of the same name wins). */
    if (!config_path && gw_config_add_env_upstreams(&cfg, stderr, err, sizeof(err)) < 0) {
        fprintf(stderr, "junction serve: %s\n", err);
        return 2;
    }
    if (gw_config_check(&cfg, check_only ? stderr : NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "junction serve: %s\n", err);
        return 2;
    }
    if (check_only) {
        gw_config_print_json(&cfg, stdout);
        fprintf(stderr, "junction serve: configuration OK\n");
        return 0;
    }
    return serve(&cfg);
}
