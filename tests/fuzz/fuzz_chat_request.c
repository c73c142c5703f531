/* fuzz_chat_request.c: arbitrary bytes as the body of POST /v1/chat/completions
 * (and of POST /v1/completions).
 *
 * The body is the first thing a client controls. It is parsed as the handler
 * parses it (cJSON, a JSON object only) and validated; a refused body must
 * carry an OpenAI-style error (status 400, a message, a type). A body that
 * passes is, by the validator's promise, well-formed for whatever comes
 * next, so it goes on where a valid request goes: into the OpenAI and
 * Anthropic request bodies (streamed and not), which must be JSON objects
 * or a refusal naming what the provider cannot express, and the
 * prompt-size estimate. Those builders trust the validator (they
 * read "role" without checking it), so a hole in validation shows up here
 * as a crash.
 */
#include "fuzz.h"
#include "internal.h"
#include "provider.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

static void check_refusal(const gw_api_error *e, const char *which)
{
    if (e->status != 400 || !e->type || !e->message[0])
        fuzz_fail("%s refused a body with status %d and message '%s'", which, e->status, e->message);
}

static void build_bodies(const cJSON *body)
{
    static const up_provider providers[] = {UP_OPENAI, UP_ANTHROPIC};
    up_def def;
    up_def_defaults(&def);
    for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]); i++) {
        const up_provider_ops *ops = up_provider_for(providers[i]);
        for (int stream = 0; stream < 2; stream++) {
            up_error err = {0};
            char *out = ops->build_body(body, &def, stream, &err);
            if (!out) {
                /* A provider may be unable to express a valid request; it must say which field. */
                if ((err.cause != UP_E_UNTRANSLATABLE && err.cause != UP_E_NOMEM) || !err.message[0])
                    fuzz_fail("%s refused to build a body with cause %d and message '%s'", ops->name,
                              (int)err.cause, err.message);
                continue;
            }
            cJSON *back = cJSON_Parse(out);
            if (!cJSON_IsObject(back)) fuzz_fail("the %s request body is not a JSON object: %s", ops->name, out);
            cJSON_Delete(back);
            cJSON_free(out);
        }
    }
    (void)up_prompt_chars(body);
}

FUZZ_TARGET(chat_request)
{
    cJSON *body = cJSON_ParseWithLength((const char *)data, size);
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        return 0;
    }
    gw_api_error e = {0};
    if (gw_chat_request_validate(body, &e) == 0) build_bodies(body);
    else check_refusal(&e, "chat validation");
    gw_api_error e2 = {0};
    if (gw_completion_request_validate(body, &e2) != 0) check_refusal(&e2, "completion validation");
    cJSON_Delete(body);
    return 0;
}
