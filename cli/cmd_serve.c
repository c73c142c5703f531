/* cmd_serve.c: `junction serve`, the daemon.
 *
 * Settings come from the defaults, then the --config file, then flags, so a
 * flag always wins. --check-config validates all of it and exits.
 */
#include "commands.h"
#include "gateway.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void serve_usage(FILE *out)
{
    fprintf(out, "usage: junction serve [--config FILE] [--check-config] [options]\n\n"
                 "Run the gateway daemon in the foreground until SIGTERM or SIGINT.\n\n"
                 "  --config FILE          JSON configuration file (docs/configuration.md)\n"
                 "  --check-config         validate the configuration, print it, and exit\n"
                 "Every configuration key is also a flag (a flag beats the file):\n");
    gw_config_print_flags(out);
}

int cmd_serve(int argc, char **argv)
{
    gw_config cfg;
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
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--config") == 0) { i++; continue; }
        if (strncmp(arg, "--config=", 9) == 0) continue;
        if (strcmp(arg, "--check-config") == 0) { check_only = true; continue; }
        char flag[64];
        const char *value;
        const char *eq = strchr(arg, '=');
        if (eq && (size_t)(eq - arg) < sizeof(flag)) {
            memcpy(flag, arg, (size_t)(eq - arg));
            flag[eq - arg] = '\0';
            value = eq + 1;
        } else {
            snprintf(flag, sizeof(flag), "%s", arg);
            value = i + 1 < argc ? argv[++i] : NULL;
        }
        int rc = gw_config_apply_flag(&cfg, flag, value, err, sizeof(err));
        if (rc == 1) {
            fprintf(stderr, "junction serve: unknown option '%s'; see `junction serve --help`\n", arg);
            return 2;
        }
        if (rc != 0) {
            fprintf(stderr, "junction serve: %s\n", err);
            return 2;
        }
    }
    /* Keys come from the environment: a missing one is a configuration error too. */
    for (int i = 0; i < cfg.n_upstreams; i++) {
        const char *env = cfg.upstreams[i].api_key_env;
        if (env[0] && !(getenv(env) && *getenv(env))) {
            fprintf(stderr, "junction serve: upstream '%s': environment variable %s is not set; export the "
                            "API key there (keys are never read from the config file)\n",
                    cfg.upstreams[i].name, env);
            return 2;
        }
    }
    if (check_only) {
        gw_config_print_json(&cfg, stdout);
        fprintf(stderr, "junction serve: configuration OK\n");
        return 0;
    }

    gw_log_set_level(cfg.log_level);
    gw_server *srv;
    if (gw_server_new(&srv, &cfg, err, sizeof(err)) != 0) {
        gw_log(GW_LOG_ERROR, "%s", err);
        return 1;
    }
    int rc = gw_server_run(srv);
    gw_server_free(srv);
    return rc == 0 ? 0 : 1;
}
