/* price.c: what a request cost, in integer micro-dollars.
 *
 * Spend must add up exactly, however many rows are summed, so money is never
 * floating point past the configuration: prices become integer micro-dollars
 * per million units once, and a row's cost is one exact integer expression
 * with a single round-half-up. The products are split at 10^6 so that no
 * intermediate value can overflow 64 bits within the documented limits.
 */
#include "policy.h"

#include <math.h>
#include <string.h>

#define MILLION 1000000LL
#define MAX_COUNT 1000000000000LL      /* 10^12 tokens or engine-milliseconds */
#define MAX_PRICE 1000000000000LL      /* 10^12 micro-USD per million units */

static int to_micro(const char *what, double usd, double max_usd, double scale, int64_t *out,
                    char *err, size_t errlen)
{
    if (!isfinite(usd) || usd < 0 || usd > max_usd) {
        snprintf(err, errlen, "%s: %g is not a price between 0 and %g USD", what, usd, max_usd);
        return -1;
    }
    *out = llround(usd * scale);
    return 0;
}

int pol_price_from_usd(pol_price *p, double usd_per_mtok_in, double usd_per_mtok_out,
                       double usd_per_engine_second, char *err, size_t errlen)
{
    pol_price q;
    /* USD per million tokens × 10^6 = micro-USD per million tokens;
     * USD per second × 10^9 = micro-USD per million milliseconds. */
    if (to_micro("price_input_per_mtok", usd_per_mtok_in, 1e6, 1e6, &q.input_per_mtok, err, errlen) != 0 ||
        to_micro("price_output_per_mtok", usd_per_mtok_out, 1e6, 1e6, &q.output_per_mtok, err, errlen) != 0 ||
        to_micro("price_per_engine_second", usd_per_engine_second, 1e3, 1e9, &q.engine_per_mms, err, errlen) != 0)
        return -1;
    *p = q;
    return 0;
}

int pol_cost_micro(const pol_price *p, int64_t prompt_tokens, int64_t completion_tokens,
                   int64_t engine_ms, int64_t *out_micro_usd, char *err, size_t errlen)
{
    const struct {
        const char *name;
        int64_t count, price;
    } terms[] = {
        {"prompt tokens", prompt_tokens, p->input_per_mtok},
        {"completion tokens", completion_tokens, p->output_per_mtok},
        {"engine milliseconds", engine_ms, p->engine_per_mms},
    };
    int64_t whole = 0, frac = 0;   /* micro-USD, and millionths of one */
    for (size_t i = 0; i < sizeof(terms) / sizeof(terms[0]); i++) {
        if (terms[i].count < 0 || terms[i].count > MAX_COUNT) {
            snprintf(err, errlen, "cost: %lld %s is outside 0..10^12", (long long)terms[i].count,
                     terms[i].name);
            return -1;
        }
        if (terms[i].price < 0 || terms[i].price > MAX_PRICE) {
            snprintf(err, errlen, "cost: the price for %s (%lld micro-USD per million) is outside "
                     "0..10^12; build prices with pol_price_from_usd", terms[i].name,
                     (long long)terms[i].price);
            return -1;
        }
        whole += terms[i].count / MILLION * terms[i].price;   /* <= 10^6 × 10^12 */
        frac += terms[i].count % MILLION * terms[i].price;    /* <= 10^6 × 10^12 */
    }
    *out_micro_usd = whole + (frac + MILLION / 2) / MILLION;
    return 0;
}

int pol_price_reference(const char *const *names, const pol_price *prices, const bool *external,
                        int n, const char *configured, char *err, size_t errlen)
{
    if (configured && *configured) {
        for (int i = 0; i < n; i++)
            if (strcmp(names[i], configured) == 0) return i;
        size_t at = (size_t)snprintf(err, errlen, "ledger.reference_upstream '%s' is not an upstream; "
                                     "the upstreams are:", configured);
        for (int i = 0; i < n && at < errlen; i++)
            at += (size_t)snprintf(err + at, errlen - at, " %s", names[i]);
        if (n == 0 && at < errlen) snprintf(err + at, errlen - at, " (none)");
        return -1;
    }
    int best = -1;
    for (int i = 0; i < n; i++) {
        if (!external[i]) continue;
        int64_t sum = prices[i].input_per_mtok + prices[i].output_per_mtok;
        if (best < 0 || sum > prices[best].input_per_mtok + prices[best].output_per_mtok) best = i;
    }
    if (best < 0)
        snprintf(err, errlen, "no external upstream to price the counterfactual: configure one, or "
                 "set ledger.reference_upstream to the route to compare with");
    return best;
}
