/* messages.c: the texts of an OpenAI `messages` array, for the detectors.
 *
 * Sensitive data hides wherever a client can put text: a string content,
 * the "text" of content parts, a tool's output, the JSON arguments of an
 * assistant's tool calls. The daemon and the CLI both need exactly this
 * list, so it is built here once, pointing into the cJSON (no copies).
 */
#include "classifier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* push and its callers: 0, BAD_INPUT (err set) or NO_MEMORY. */
enum { BAD_INPUT = -1, NO_MEMORY = -2 };

typedef struct {
    cls_message *items;
    int n, cap;
} list;

static int push(list *l, const char *role, const char *text, int source)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        cls_message *p = realloc(l->items, (size_t)cap * sizeof *p);
        if (!p) return NO_MEMORY;
        l->items = p;
        l->cap = cap;
    }
    l->items[l->n++] = (cls_message){role, text, strlen(text), source};
    return 0;
}

/* Content: a string, null, or an array of parts whose "text" is a string
 * (type "text", "input_text", ...); other parts (images, audio) have no text. */
static int content_texts(list *l, const char *role, const cJSON *content, int i, char *err, size_t errlen)
{
    if (!content || cJSON_IsNull(content)) return 0;
    if (cJSON_IsString(content)) return push(l, role, content->valuestring, i);
    if (!cJSON_IsArray(content)) {
        snprintf(err, errlen, "messages[%d].content must be a string or an array of content parts", i);
        return BAD_INPUT;
    }
    int k = 0;
    const cJSON *part;
    cJSON_ArrayForEach(part, content) {
        if (!cJSON_IsObject(part)) {
            snprintf(err, errlen, "messages[%d].content[%d] must be an object like {\"type\": \"text\", "
                     "\"text\": \"...\"}", i, k);
            return BAD_INPUT;
        }
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        int rc = cJSON_IsString(text) ? push(l, role, text->valuestring, i) : 0;
        if (rc != 0) return rc;
        k++;
    }
    return 0;
}

static int call_arguments(list *l, const char *role, const cJSON *function, int i)
{
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(function, "arguments");
    return cJSON_IsString(args) ? push(l, role, args->valuestring, i) : 0;
}

int cls_messages_from_json(const cJSON *messages, cls_message **out, int *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (!cJSON_IsArray(messages)) {
        snprintf(err, errlen, "messages must be an array of {\"role\": ..., \"content\": ...} objects");
        return -1;
    }
    list l = {NULL, 0, 0};
    int i = 0, rc = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, messages) {
        if (!cJSON_IsObject(m)) {
            snprintf(err, errlen, "messages[%d] must be an object with a role and a content", i);
            rc = BAD_INPUT;
            break;
        }
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const char *r = cJSON_IsString(role) ? role->valuestring : NULL;
        rc = content_texts(&l, r, cJSON_GetObjectItemCaseSensitive(m, "content"), i, err, errlen);
        const cJSON *call;
        cJSON_ArrayForEach(call, cJSON_GetObjectItemCaseSensitive(m, "tool_calls")) {
            if (rc == 0) rc = call_arguments(&l, r, cJSON_GetObjectItemCaseSensitive(call, "function"), i);
        }
        const cJSON *legacy = cJSON_GetObjectItemCaseSensitive(m, "function_call");
        if (rc == 0 && cJSON_IsObject(legacy)) rc = call_arguments(&l, r, legacy, i);
        if (rc != 0) {
            if (rc == NO_MEMORY) snprintf(err, errlen, "out of memory listing the messages' texts");
            break;
        }
        i++;
    }
    if (rc != 0) {
        free(l.items);
        return -1;
    }
    *out = l.items;
    *n = l.n;
    return 0;
}

/* The words and the model read what the user wrote (the system prompt and
 * earlier answers say little about this request's difficulty); a request
 * with no user text at all is read whole. `junction calibrate`, `junction
 * route` and the daemon all read a request through here, so a head sees
 * the same text when it is fitted and when it scores. */
int cls_user_text(const cls_message *msgs, int n, char **out, size_t *out_len, char *err, size_t errlen)
{
    bool any_user = false;
    for (int i = 0; i < n; i++) any_user |= msgs[i].role && !strcmp(msgs[i].role, "user");
    size_t total = 1;
    for (int i = 0; i < n; i++) total += msgs[i].len + 1;
    char *text = malloc(total);
    if (!text) {
        snprintf(err, errlen, "out of memory joining the user's text");
        return -1;
    }
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        const cls_message *m = &msgs[i];
        if (any_user && !(m->role && !strcmp(m->role, "user"))) continue;
        if (len) text[len++] = '\n';
        memcpy(text + len, m->text, m->len);
        len += m->len;
    }
    text[len] = '\0';
    *out = text;
    *out_len = len;
    return 0;
}
