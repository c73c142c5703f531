/* fuzz_chat_template.c: arbitrary request bodies rendered as a local model's
 * prompt.
 *
 * A chat request that passes validation is rendered into token ids for the
 * local engine, with the Llama 2 [INST] template and with the plain one.
 * The renderer reads the messages without checking them again (it trusts
 * the validator), so this target finds any body the validator lets through
 * that the renderer cannot handle. Every rendering of a valid request must
 * succeed, start with BOS, and hold only ids of the model's vocabulary.
 *
 * The model: `junction mkmodel --shape tiny` with the real Llama 2
 * vocabulary, written once at start-up to a temporary file.
 */
#include "fuzz.h"
#include "internal.h"
#include "local.h"

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <stdlib.h>
#include <unistd.h>

static gw_local *locals[2]; /* llama2, plain */

static void setup(void)
{
    static struct event_base *base;
    char path[] = "/tmp/junction-fuzz-model-XXXXXX", err[512];
    int fd = mkstemp(path);
    if (fd < 0) fuzz_fail("cannot create a temporary model file in /tmp");
    close(fd);
    if (eng_mkmodel(path, "tiny", "q8_0", 1, fuzz_shared_path("models/ggml-vocab-llama-spm.gguf"), err, sizeof(err)) != 0)
        fuzz_fail("cannot write the tiny model: %s (set JUNCTION_SHARED_DIR to the ../shared folder)", err);
    base = event_base_new();
    static const char *const templates[] = {"llama2", "plain"};
    for (int i = 0; i < 2; i++) {
        gw_local_params p = {.model_path = path, .ctx_size = 64, .threads = 1, .parallel = 1,
                             .chat_template = templates[i]};
        if (!base || gw_local_new(&locals[i], base, &p, err, sizeof(err)) != 0)
            fuzz_fail("cannot start the local engine: %s", err);
    }
    unlink(path); /* the engines keep their mappings */
}

static void render(const gw_local *l, const cJSON *messages)
{
    const eng_model *m = gw_local_model(l);
    int n_vocab = eng_model_get_info(m)->n_vocab, *ids = NULL;
    int n = gw_local_render_chat(l, messages, &ids);
    /* -1 means out of memory to the caller (api.c answers 500), so a valid
     * request must never get it here, where memory is plentiful. */
    if (n < 1 || ids[0] != eng_token_bos(m))
        fuzz_fail("a valid request rendered as %d tokens (-1: refused), not BOS first", n);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= n_vocab) fuzz_fail("rendered token %d is id %d, outside the vocabulary", i, ids[i]);
    free(ids);
}

FUZZ_TARGET(chat_template)
{
    if (!locals[0]) setup();
    cJSON *body = cJSON_ParseWithLength((const char *)data, size);
    gw_api_error e;
    if (cJSON_IsObject(body) && gw_chat_request_validate(body, &e) == 0) {
        const cJSON *messages = cJSON_GetObjectItemCaseSensitive(body, "messages");
        for (int i = 0; i < 2; i++) render(locals[i], messages);
    }
    cJSON_Delete(body);
    return 0;
}
