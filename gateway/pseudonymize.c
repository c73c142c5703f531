/* pseudonymize.c: a request sent out with its findings replaced, and the
 * answer restored (policy/pseudonymize.c does the text work).
 *
 * Only when the rule that chose the route says `on_sensitive:
 * pseudonymize` and every finding is of a kind the operator allows
 * (routing.pseudonymize_kinds): each value becomes a stable placeholder
 * (<EMAIL_1>) in every message, the upstream sees only those, and the
 * answer's text (whole, or each streamed delta, where a placeholder may be
 * split across chunks) gets the values back before the client sees it.
 */
#include "pseudonymize.h"

#include <stdlib.h>
#include <string.h>

struct gw_pseudo {
    pol_pseudo *map;
    pol_unpseudo *stream;       /* the streamed answer's restorer */
    pol_unpseudo_counts whole;  /* a whole answer's counts */
};

int gw_pseudo_apply(gw_call *call, gw_api_error *e)
{
    const gw_classification *c = call->cls;
    pol_span *spans = calloc((size_t)c->findings.n + 1, sizeof(pol_span));
    pol_text_spans *texts = calloc((size_t)c->n_msgs + 1, sizeof(pol_text_spans));
    gw_pseudo *p = calloc(1, sizeof(*p));
    char why[256] = "out of memory";
    int rc = -1;
    if (!spans || !texts || !p) goto done;
    /* the kinds allowed are routing.pseudonymize_kinds, as the policy loaded them */
    if (pol_policy_pseudo_new(call->r.site->backends->policy, &p->map, why, sizeof(why)) != 0) goto done;
    /* the findings are sorted by message, then by position */
    int n_texts = 0, at = 0;
    for (int m = 0; m < c->n_msgs; m++) {
        int first = at;
        for (; at < c->findings.n && c->findings.items[at].message == m; at++) {
            const cls_finding *f = &c->findings.items[at];
            spans[at] = (pol_span){f->custom_kind ? f->custom_kind : cls_kind_name(f->kind), f->start, f->end};
        }
        if (at > first) texts[n_texts++] = (pol_text_spans){c->msgs[m].text, spans + first, at - first};
    }
    if (pol_pseudo_apply_messages(p->map, cJSON_GetObjectItemCaseSensitive(call->body, "messages"), texts, n_texts,
                                  why, sizeof(why)) != 0)
        goto done;
    /* the classification's texts pointed into the replaced strings */
    gw_classification_forget_texts(call->cls);
    call->pseudo = p;
    p = NULL;
    rc = 0;
done:
    if (rc != 0)
        gw_api_error_set(e, 500, "server_error", "pseudonymize_failed", NULL,
                         "junction could not pseudonymize the request, so it was not sent: %s", why);
    if (p) pol_pseudo_free(p->map);
    free(p);
    free(spans);
    free(texts);
    return rc;
}

/* The assistant's text in a chat.completion (whole) or chunk (delta). */
static cJSON *content_of(cJSON *answer, bool chunk)
{
    cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(answer, "choices"), 0);
    cJSON *content = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(choice, chunk ? "delta" : "message"), "content");
    return cJSON_IsString(content) ? content : NULL;
}

int gw_pseudo_restore_whole(gw_pseudo *p, cJSON *answer)
{
    cJSON *content = content_of(answer, false);
    if (!content) return 0;
    char *text;
    size_t len;
    char why[128];
    if (pol_unpseudo_text(p->map, content->valuestring, strlen(content->valuestring), &text, &len, &p->whole, why,
                          sizeof(why)) != 0)
        return -1;
    cJSON_SetValuestring(content, text);
    free(text);
    return 0;
}

char *gw_pseudo_restore_chunk(gw_pseudo *p, const char *json, size_t len)
{
    cJSON *chunk = cJSON_ParseWithLength(json, len);
    cJSON *content = chunk ? content_of(chunk, true) : NULL;
    char why[128];
    const char *out;
    size_t out_len;
    if (!content || (!p->stream && pol_unpseudo_new(&p->stream, p->map, why, sizeof(why)) != 0) ||
        pol_unpseudo_feed(p->stream, content->valuestring, strlen(content->valuestring), &out, &out_len, why,
                          sizeof(why)) != 0) {
        cJSON_Delete(chunk);
        return NULL; /* not a content chunk: relayed as it came */
    }
    cJSON_SetValuestring(content, out);
    char *text = cJSON_PrintUnformatted(chunk);
    cJSON_Delete(chunk);
    return text;
}

const char *gw_pseudo_restore_end(gw_pseudo *p)
{
    const char *out = "";
    size_t len;
    char why[128];
    if (!p->stream || pol_unpseudo_finish(p->stream, &out, &len, why, sizeof(why)) != 0) return "";
    return out;
}

void gw_pseudo_report(const gw_pseudo *p, char *buf, size_t len)
{
    pol_unpseudo_counts c = p->whole;
    if (p->stream) pol_unpseudo_report(p->stream, &c);
    snprintf(buf, len, "; pseudonymized %d value(s): %lld restored, %lld mangled%s%s", pol_pseudo_values(p->map),
             (long long)(c.restored + c.mangled_restored), (long long)(c.mangled + c.unknown), c.kinds[0] ? " " : "",
             c.kinds);
}

void gw_pseudo_free(gw_pseudo *p)
{
    if (!p) return;
    pol_unpseudo_free(p->stream);
    pol_pseudo_free(p->map);
    free(p);
}
