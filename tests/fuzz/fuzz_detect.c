/* fuzz_detect.c: arbitrary bytes through the sensitivity detectors.
 *
 * Every prompt is scanned before routing, and prompts are whatever clients
 * send. The bytes go in as one message's text (any bytes: cls_message texts
 * need not be UTF-8 or NUL-terminated) and, when they parse as a JSON
 * array, as an OpenAI messages array through cls_messages_from_json. The
 * detector carries two custom rules (terms and a regex) as an operator's
 * would. The findings must keep cls_findings' promises: at most
 * CLS_MAX_FINDINGS, spans inside their message's text, sorted by (message,
 * start) and never overlapping, known kinds, confidences in [0, 1].
 */
#include "classifier.h"
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

static const cls_detector *detector(void)
{
    static cls_detector *d;
    if (!d) {
        char err[512];
        cJSON *rules = cJSON_Parse("[{\"kind\":\"project_codename\",\"terms\":[\"Bluebird\",\"Red Kite\"],\"weight\":0.9},"
                                   "{\"kind\":\"customer_id\",\"regex\":\"CUST-[0-9]{6}\",\"weight\":0.95}]");
        if (!rules || cls_detector_new(&d, rules, err, sizeof(err)) != 0) fuzz_fail("cannot build the detector: %s", err);
        cJSON_Delete(rules);
    }
    return d;
}

static void scan(const cls_message *msgs, int n)
{
    cls_findings f;
    char err[512] = "";
    if (cls_detect(detector(), msgs, n, &f, err, sizeof(err)) != 0) {
        if (!err[0]) fuzz_fail("cls_detect failed without saying why");
        return;
    }
    if (f.n < 0 || f.n > CLS_MAX_FINDINGS) fuzz_fail("%d findings", f.n);
    for (int i = 0; i < f.n; i++) {
        const cls_finding *x = &f.items[i];
        if (x->message < 0 || x->message >= n || x->start >= x->end || x->end > msgs[x->message].len)
            fuzz_fail("finding %d spans [%zu, %zu) of message %d", i, x->start, x->end, x->message);
        if ((int)x->kind < 0 || x->kind >= CLS_KIND_COUNT || !(x->confidence >= 0 && x->confidence <= 1))
            fuzz_fail("finding %d has kind %d and confidence %g", i, (int)x->kind, (double)x->confidence);
        if (i > 0) {
            const cls_finding *p = &f.items[i - 1];
            if (p->message > x->message || (p->message == x->message && p->end > x->start))
                fuzz_fail("findings %d and %d are out of order or overlap", i - 1, i);
        }
    }
    cls_findings_free(&f);
}

FUZZ_TARGET(detect)
{
    cls_message one = {.role = "user", .text = (const char *)data, .len = size, .source = 0};
    scan(&one, 1);
    cJSON *messages = cJSON_ParseWithLength((const char *)data, size);
    if (cJSON_IsArray(messages)) {
        cls_message *msgs = NULL;
        int n = 0;
        char err[512] = "";
        if (cls_messages_from_json(messages, &msgs, &n, err, sizeof(err)) == 0) scan(msgs, n);
        else if (!err[0]) fuzz_fail("cls_messages_from_json refused an array without saying why");
        free(msgs);
    }
    cJSON_Delete(messages);
    return 0;
}
