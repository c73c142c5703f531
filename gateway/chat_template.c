/* chat_template.c: OpenAI chat messages as a local model's prompt tokens.
 *
 * Llama 2 chat models were trained on one exact layout; base models get the
 * messages' text one after the other. Special tokens (BOS, EOS) go in as
 * ids, never as text, so no user text can forge them. The same rendering is
 * what the classifier's model features read (gw_prompt_render), in the
 * daemon and in `junction route` / `calibrate` alike, so that a head sees
 * in the daemon the numbers it was fitted on.
 */
#include "gateway.h"
#include "local.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Tokenize in one pass: SentencePiece makes at most one token per byte, plus
 * BOS and the space prefix (a 3-byte U+2581 that may fall back to bytes);
 * should a vocabulary still make more, the count it returns sizes a second pass. */
static int append_tokens(const eng_model *m, const char *text, bool bos, int **ids, int *n, int *cap)
{
    size_t len = strlen(text);
    if (len + 8 > (size_t)(INT32_MAX / 2 - *n)) return -1;
    int room = (int)len + 8;
    for (int pass = 0; pass < 2; pass++) {
        if (*n + room > *cap) {
            int c = (*n + room) * 2 + 16;
            int *p = realloc(*ids, sizeof(int) * (size_t)c);
            if (!p) return -1;
            *ids = p;
            *cap = c;
        }
        int got = eng_tokenize(m, text, len, bos, *ids + *n, room);
        if (got < 0) return -1;
        if (got <= room) {
            *n += got;
            return 0;
        }
        room = got;
    }
    return -1;
}

static int append_id(int id, int **ids, int *n, int *cap)
{
    if (*n + 1 > *cap) {
        int c = *cap * 2 + 16;
        int *p = realloc(*ids, sizeof(int) * (size_t)c);
        if (!p) return -1;
        *ids = p;
        *cap = c;
    }
    (*ids)[(*n)++] = id;
    return 0;
}

/* A text part's text, or NULL for other parts. */
static const char *part_text(const cJSON *part)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* A message's text: a string, or its text parts joined (in one pass each
 * way: bodies can hold thousands of parts). Heap string. */
static char *message_text(const cJSON *msg)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (cJSON_IsString(c)) return strdup(c->valuestring);
    size_t n = 1;
    for (const cJSON *p = cJSON_IsArray(c) ? c->child : NULL; p; p = p->next)
        n += part_text(p) ? strlen(part_text(p)) : 0;
    char *s = malloc(n);
    size_t at = 0;
    for (const cJSON *p = cJSON_IsArray(c) ? c->child : NULL; s && p; p = p->next) {
        const char *t = part_text(p);
        size_t len = t ? strlen(t) : 0;
        if (len) memcpy(s + at, t, len);
        at += len;
    }
    if (s) s[at] = '\0';
    return s;
}

/* A message's role; one without (junction calibrate's data is not
 * validated as a request is) counts as the user's. */
static const char *role_of(const cJSON *msg)
{
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role");
    return cJSON_IsString(role) ? role->valuestring : "user";
}

static int render_chat(const eng_model *m, bool llama2_chat, const cJSON *messages, int **out)
{
    int *ids = NULL, n = 0, cap = 0, rc = 0;
    if (!llama2_chat) {
        /* Base models: the messages' text, one after the other, after BOS. */
        size_t total = 1;
        for (const cJSON *msg = messages->child; msg; msg = msg->next) {
            char *t = message_text(msg);
            total += t ? strlen(t) + 2 : 0;
            free(t);
        }
        char *all = malloc(total);
        size_t at = 0;
        for (const cJSON *msg = messages->child; all && msg; msg = msg->next) {
            char *t = message_text(msg);
            if (!t) continue;
            size_t len = strlen(t);
            if (at && len + 2 < total - at) {
                memcpy(all + at, "\n\n", 2);
                at += 2;
            }
            if (len < total - at) {
                memcpy(all + at, t, len);
                at += len;
            }
            free(t);
        }
        if (all) all[at] = '\0';
        rc = all ? append_tokens(m, all, true, &ids, &n, &cap) : -1;
        free(all);
    } else {
        /* Llama 2 chat, as Meta trained it: every exchange is
         *   <s>[INST] {user} [/INST] {assistant} </s>
         * with the system prompt wrapped into the first user turn as
         *   <<SYS>>\n{system}\n<</SYS>>\n\n
         * and the last user turn left open for the model to answer. An
         * assistant message after the last user turn is a prefill. */
        char *system = NULL, *turn = NULL;
        for (const cJSON *msg = messages->child; msg && rc == 0; msg = msg->next) {
            const char *role = role_of(msg);
            char *t = message_text(msg);
            if (!t) { rc = -1; break; }
            if (!strcmp(role, "system") || !strcmp(role, "developer")) {
                free(system);
                system = t;
                continue;
            }
            if (!strcmp(role, "assistant")) {
                if (turn) {
                    bool last = msg->next == NULL;
                    size_t len = strlen(turn) + strlen(t) + 3;
                    char *both = malloc(len);
                    if (both) snprintf(both, len, "%s %s%s", turn, t, last ? "" : " ");
                    rc = both ? append_tokens(m, both, true, &ids, &n, &cap) : -1;
                    if (rc == 0 && !last) rc = append_id(eng_token_eos(m), &ids, &n, &cap);
                    free(both);
                    free(turn);
                    turn = NULL;
                }
                free(t);
                continue;
            }
            if (turn) { /* a user turn no assistant answered */
                rc = append_tokens(m, turn, true, &ids, &n, &cap);
                free(turn);
                turn = NULL;
            }
            size_t len = strlen(t) + (system ? strlen(system) : 0) + 64;
            turn = malloc(len);
            if (turn && system) snprintf(turn, len, "[INST] <<SYS>>\n%s\n<</SYS>>\n\n%s [/INST]", system, t);
            else if (turn) snprintf(turn, len, "[INST] %s [/INST]", t);
            else rc = -1;
            free(system);
            system = NULL;
            free(t);
        }
        if (rc == 0 && turn) rc = append_tokens(m, turn, true, &ids, &n, &cap);
        free(turn);
        free(system);
    }
    /* no user turn at all (only a system prompt, say): the model still
     * gets a start of text to continue from */
    if (rc == 0 && n == 0) rc = append_id(eng_token_bos(m), &ids, &n, &cap);
    if (rc != 0 || n == 0) {
        free(ids);
        return -1;
    }
    *out = ids;
    return n;
}

int gw_local_render_chat(const gw_local *l, const void *messages_cjson, int **out)
{
    return render_chat(gw_local_model(l), gw_local_llama2_chat(l), messages_cjson, out);
}

bool gw_chat_template_llama2(const eng_model *m, const char *chat_template)
{
    const char *t = chat_template && chat_template[0] ? chat_template : "auto";
    return !strcmp(t, "llama2") || (!strcmp(t, "auto") && eng_model_get_info(m)->llama2_chat);
}

void gw_prompt_free(gw_prompt *p)
{
    if (p->scored != p->prompt) free(p->scored);
    free(p->prompt);
    memset(p, 0, sizeof(*p));
}

int gw_prompt_render(gw_prompt *out, const eng_model *m, bool llama2_chat, const cJSON *messages, const char *text,
                     int max_tokens)
{
    memset(out, 0, sizeof(*out));
    int cap = 0, n = 0;
    if (messages) n = render_chat(m, llama2_chat, messages, &out->prompt);
    else if (append_tokens(m, text, true, &out->prompt, &n, &cap) != 0) n = -1;
    out->n_prompt = n;
    if (n <= 0) {
        free(out->prompt);
        memset(out, 0, sizeof(*out));
        return -1;
    }
    out->scored = out->prompt;
    out->n_scored = out->n_prompt;
    if (max_tokens > 0 && out->n_prompt > max_tokens) {
        if (!(out->scored = malloc(sizeof(int) * (size_t)out->n_prompt))) {
            out->scored = out->prompt;
            gw_prompt_free(out);
            return -1;
        }
        memcpy(out->scored, out->prompt, sizeof(int) * (size_t)out->n_prompt);
        out->n_scored = eng_keep_head_tail(out->scored, out->n_prompt, max_tokens, NULL);
    }
    return 0;
}
