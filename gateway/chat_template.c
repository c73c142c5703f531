/* chat_template.c: OpenAI chat messages as a local model's prompt tokens.
 *
 * Llama 2 chat models were trained on one exact layout; base models get the
 * messages' text one after the other. Special tokens (BOS, EOS) go in as
 * ids, never as text, so no user text can forge them.
 */
#include "local.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static int append_tokens(const eng_model *m, const char *text, bool bos, int **ids, int *n, int *cap)
{
    int need = eng_tokenize(m, text, strlen(text), bos, NULL, 0);
    if (need < 0) return -1;
    if (*n + need > *cap) {
        int c = (*n + need) * 2 + 16;
        int *p = realloc(*ids, sizeof(int) * (size_t)c);
        if (!p) return -1;
        *ids = p;
        *cap = c;
    }
    eng_tokenize(m, text, strlen(text), bos, *ids + *n, need);
    *n += need;
    return 0;
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

/* A message's text: a string, or its text parts joined. Heap string. */
static char *message_text(const cJSON *msg)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (cJSON_IsString(c)) return strdup(c->valuestring);
    size_t n = 1;
    for (const cJSON *p = cJSON_IsArray(c) ? c->child : NULL; p; p = p->next)
        n += strlen(cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring);
    char *s = calloc(1, n);
    for (const cJSON *p = cJSON_IsArray(c) ? c->child : NULL; s && p; p = p->next)
        strcat(s, cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring);
    return s;
}

int gw_local_render_chat(const gw_local *l, const void *messages_cjson, int **out)
{
    const cJSON *messages = messages_cjson;
    const eng_model *m = gw_local_model(l);
    int *ids = NULL, n = 0, cap = 0, rc = 0;
    if (!gw_local_llama2_chat(l)) {
        /* Base models: the messages' text, one after the other, after BOS. */
        size_t total = 1;
        for (const cJSON *msg = messages->child; msg; msg = msg->next) {
            char *t = message_text(msg);
            total += t ? strlen(t) + 2 : 0;
            free(t);
        }
        char *all = calloc(1, total);
        for (const cJSON *msg = messages->child; all && msg; msg = msg->next) {
            char *t = message_text(msg);
            if (!t) continue;
            if (all[0]) strcat(all, "\n\n");
            strcat(all, t);
            free(t);
        }
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
            const char *role = cJSON_GetObjectItemCaseSensitive(msg, "role")->valuestring;
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
    if (rc != 0 || n == 0) {
        free(ids);
        return -1;
    }
    *out = ids;
    return n;
}
