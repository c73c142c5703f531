/* rules_default.c: the policy junction routes by when routing.rules is not set.
 *
 * Why it is written in the rule language rather than as code: so that
 * `--explain` shows it like any operator's policy, docs/policy.md can print
 * it verbatim, and an operator who wants a variation copies it into the
 * config and edits one line. Order matters (first usable match wins):
 *   1. a request needing what the local engine cannot do (tools, JSON mode,
 *      images, a context longer than the local one) goes to an upstream:
 *      a private one first; for sensitive data external ones are skipped;
 *   2. sensitive data stays in-process or private;
 *   3. difficult requests go to the frontier, falling back to local when
 *      every external upstream is down or over budget;
 *   4. when the local engine is overloaded or absent, external, else local;
 *   5. everything else is answered locally.
 * Rule 3 is left out when no difficulty head is configured.
 */
#include "policy.h"

static const char default_rules[] =
    "[\n"
    "  {\"name\": \"needs-upstream\",\n"
    "   \"when\": {\"local_lacks\": [\"tools\", \"json\", \"images\", \"long_context\"]},\n"
    "   \"route\": [\"private\", \"external\"]},\n"
    "  {\"name\": \"sensitive-stays-inside\",\n"
    "   \"when\": {\"sensitive\": true},\n"
    "   \"route\": [\"local\", \"private\"]},\n"
    "  {\"name\": \"hard-to-frontier\",\n"
    "   \"when\": {\"difficult\": true},\n"
    "   \"route\": [\"external\", \"local\"]},\n"
    "  {\"name\": \"local-busy\",\n"
    "   \"when\": {\"local_available\": false},\n"
    "   \"route\": [\"external\", \"local\"]},\n"
    "  {\"name\": \"default\",\n"
    "   \"route\": \"local\"}\n"
    "]\n";

const char *pol_policy_default_text(void)
{
    return default_rules;
}
