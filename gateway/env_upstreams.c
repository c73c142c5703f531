/* env_upstreams.c: a frontier API from nothing but its key.
 *
 * Routing between the local model and a frontier model should work on the
 * first run, before anyone writes a configuration file: when `serve` has no
 * --config and OPENAI_API_KEY or ANTHROPIC_API_KEY is set, that provider
 * becomes an `external` upstream with a sensible default model. Its list
 * prices come with it, so that the ledger prices frontier calls and savings
 * from the start. A configuration file replaces all of this.
 *
 * The table below is the one place for these defaults. Prices are USD per
 * million tokens, the providers' published list prices as of the date in
 * PRICES_AS_OF; when they change, update the row and the date (and
 * docs/models.md, which quotes them).
 */
#include "gateway.h"

#include <stdlib.h>
#include <string.h>

#define PRICES_AS_OF "2025-06-01"

static const struct {
    const char *key_env;   /* the key, as the provider's SDKs name it */
    const char *url_env;   /* an override of the base URL, as the SDKs name it */
    const char *name;      /* the upstream's name: what clients put in "model" */
    up_provider provider;
    const char *base_url;
    const char *model;
    double price_input_per_mtok, price_output_per_mtok;
} defaults[] = {
    {"OPENAI_API_KEY", "OPENAI_BASE_URL", "openai", UP_OPENAI, "https://api.openai.com/v1", "gpt-4.1", 2.00, 8.00},
    {"ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "anthropic", UP_ANTHROPIC, "https://api.anthropic.com/v1",
     "claude-sonnet-4-20250514", 3.00, 15.00},
};

static bool has_upstream(const gw_config *cfg, const char *name)
{
    for (int i = 0; i < cfg->n_upstreams; i++)
        if (strcmp(cfg->upstreams[i].name, name) == 0) return true;
    return false;
}

int gw_config_add_env_upstreams(gw_config *cfg, FILE *report, char *err, size_t errlen)
{
    int added = 0;
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        const char *key = getenv(defaults[i].key_env);
        if (!key || !*key || has_upstream(cfg, defaults[i].name)) continue;
        if (cfg->n_upstreams >= GW_MAX_UPSTREAMS) {
            snprintf(err, errlen, "%s is set, but the configuration already has %d upstreams, the most it can "
                                  "hold; describe the upstreams in a --config file instead",
                     defaults[i].key_env, GW_MAX_UPSTREAMS);
            return -1;
        }
        const char *url = getenv(defaults[i].url_env);
        if (url && *url && strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
            snprintf(err, errlen, "%s='%s': expected an http:// or https:// URL such as %s", defaults[i].url_env, url,
                     defaults[i].base_url);
            return -1;
        }
        if (url && *url && strlen(url) >= sizeof(cfg->upstreams[0].base_url)) {
            snprintf(err, errlen, "%s: the URL is longer than %zu bytes", defaults[i].url_env,
                     sizeof(cfg->upstreams[0].base_url) - 1);
            return -1;
        }
        up_def *d = &cfg->upstreams[cfg->n_upstreams++];
        up_def_defaults(d);
        snprintf(d->name, sizeof(d->name), "%s", defaults[i].name);
        d->provider = defaults[i].provider;
        snprintf(d->base_url, sizeof(d->base_url), "%s", url && *url ? url : defaults[i].base_url);
        snprintf(d->model, sizeof(d->model), "%s", defaults[i].model);
        snprintf(d->api_key_env, sizeof(d->api_key_env), "%s", defaults[i].key_env);
        d->zone = UP_ZONE_EXTERNAL;
        d->price_input_per_mtok = defaults[i].price_input_per_mtok;
        d->price_output_per_mtok = defaults[i].price_output_per_mtok;
        if (report)
            fprintf(report, "upstream '%s' from %s: %s at %s, external, $%.2f/$%.2f per million tokens in/out "
                            "(list prices of %s; a --config file overrides)\n",
                    d->name, defaults[i].key_env, d->model, d->base_url, d->price_input_per_mtok,
                    d->price_output_per_mtok, PRICES_AS_OF);
        added++;
    }
    return added;
}
