/* backends.c: what answers model requests, built from the configuration.
 *
 * The server is handed these ready-made, so it stays a loop that serves
 * HTTP, and each new kind of backend (the classifier, the policy, the
 * ledger) joins here rather than inside the server.
 */
#include "accounting.h"
#include "classify.h"
#include "clients.h"
#include "decide.h"
#include "sticky.h"
#include "local.h"

#include <stdlib.h>
#include <string.h>

static void upstream_log(void *arg, up_log_level level, const char *msg)
{
    (void)arg;
    (void)level; /* warnings are all it sends */
    gw_log(GW_LOG_WARN, "%s", msg);
}

int gw_backends_new(gw_backends **out, struct event_base *base, const gw_config *cfg, char *err, size_t errlen)
{
    gw_backends *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (up_client_new(&b->upstreams, base, cfg->upstreams, cfg->n_upstreams, err, errlen) != 0) goto fail;
    up_client_set_logger(b->upstreams, upstream_log, NULL);
    if (gw_accounts_new(&b->accounts, cfg, b->upstreams, err, errlen) != 0) goto fail;
    if (gw_classifier_new(&b->classifier, cfg, err, errlen) != 0) goto fail;
    if (gw_policy_from_config(&b->policy, cfg, err, errlen) != 0) goto fail;
    if (gw_clients_new(&b->clients, base, cfg, b->accounts->ledger_path, err, errlen) != 0) goto fail;
    if (gw_sticky_new(&b->sticky, cfg->routing.sticky_idle_s) != 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (gw_admin_keys_new(&b->admin, cfg->admin.keys_env, err, errlen) != 0) goto fail;
    b->ledger_required = cfg->ledger.required;
    if (cfg->model[0]) {
        gw_local_params lp = {.model_path = cfg->model, .ctx_size = (int)cfg->ctx_size, .threads = (int)cfg->threads,
                              .queue_size = (int)cfg->queue_size, .parallel = (int)cfg->parallel,
                              .kv_type = ENG_KV_F16, .chat_template = cfg->chat_template};
        if (gw_local_new(&b->local, base, &lp, err, errlen) != 0) goto fail;
    }
    /* heads that read the local model's features: the pass they need, checked against the model */
    if (gw_classifier_bind(b->classifier, cfg, b->local ? gw_local_model(b->local) : NULL, err, errlen) != 0) goto fail;
    *out = b;
    return 0;
fail:
    gw_backends_free(b);
    return -1;
}

void gw_backends_log_summary(const gw_backends *b)
{
    if (b->local) {
        const gw_local *l = b->local;
        const eng_model_info *mi = eng_model_get_info(gw_local_model(l));
        gw_log(GW_LOG_INFO,
               "backend local: model=%s name=\"%s\" type=%s layers=%d ctx=%d parallel=%d threads=%d "
               "template=%s kernels=%s zone=in-process",
               gw_local_model_id(l), mi->name, mi->weight_type, mi->n_layer, gw_local_n_ctx(l),
               gw_local_parallel(l), gw_local_threads(l), gw_local_llama2_chat(l) ? "llama2" : "plain",
               eng_kernels_name());
    } else {
        gw_log(GW_LOG_WARN, "no local model is loaded: requests for the local engine get 503 no_backend "
                            "(start with -m FILE, or see docs/models.md)");
    }
    const gw_classifier *c = b->classifier;
    if (c->model_wanted) {
        const eng_feature_params *p = &c->pass;
        char pass[64] = "through every layer", pool[64] = "";
        if (p->stop_layer) snprintf(pass, sizeof(pass), "stopped after layer %d", p->stop_layer);
        if (p->pool_layer) snprintf(pool, sizeof(pool), ", hidden state pooled at layer %d", p->pool_layer);
        gw_log(GW_LOG_INFO, "classifier: the heads read the local model's features (model_features=%s): a pass %s "
               "over at most %d prompt tokens%s, kept for a local answer", c->mode, pass, c->max_tokens, pool);
    }
    for (int i = 0; i < up_client_count(b->upstreams); i++) {
        const up_def *d = up_client_def(b->upstreams, i);
        gw_log(GW_LOG_INFO, "backend upstream: name=%s provider=%s model=%s zone=%s price_in=%g price_out=%g (USD/Mtok)",
               d->name, d->provider == UP_ANTHROPIC ? "anthropic" : "openai", d->model[0] ? d->model : "(the client's)",
               d->zone == UP_ZONE_PRIVATE ? "private" : "external", d->price_input_per_mtok, d->price_output_per_mtok);
        char warning[256];
        if (up_def_warning(d, warning, sizeof(warning))) gw_log(GW_LOG_WARN, "%s", warning);
    }
    const gw_accounts *a = b->accounts;
    gw_log(GW_LOG_INFO, "ledger: %s%s%s", a->ledger_path[0] ? a->ledger_path : "off",
           a->reference > 0 ? "; savings are counted against upstream " : "",
           a->reference > 0 ? a->routes[a->reference].name : "");
    gw_log(GW_LOG_INFO, "client keys: %s", gw_clients_auth_on(b->clients) ? "required (Authorization: Bearer KEY)"
                                                                           : "none yet, so no auth (junction keys add)");
    if (!b->local && up_client_count(b->upstreams) == 0)
        gw_log(GW_LOG_WARN, "no backend at all: every model request will get 503 no_backend");
}

void gw_backends_free(gw_backends *b)
{
    if (!b) return;
    gw_local_free(b->local);
    up_client_free(b->upstreams);
    gw_accounts_free(b->accounts);
    gw_classifier_free(b->classifier);
    pol_policy_free(b->policy);
    gw_clients_free(b->clients);
    gw_sticky_free(b->sticky);
    gw_admin_keys_free(b->admin);
    free(b);
}
