/* pseudonymize.h: pseudonymized requests and restored answers. Internal. */
#ifndef JUNCTION_GW_PSEUDONYMIZE_H
#define JUNCTION_GW_PSEUDONYMIZE_H

#include "classify.h"

/* Replace the call's findings in its body's messages by placeholders
 * (call->pseudo then holds the mapping). -1 with the error for the client. */
int gw_pseudo_apply(gw_call *call, gw_api_error *e);
/* A whole answer's text, values put back (in place). */
int gw_pseudo_restore_whole(gw_pseudo *p, cJSON *answer);
/* A streamed chunk with its delta's values put back: a new JSON text (free
 * with cJSON_free), or NULL when the chunk has no content to restore. */
char *gw_pseudo_restore_chunk(gw_pseudo *p, const char *json, size_t len);
/* At the end of a stream: the text held back, restored ("" when none). */
const char *gw_pseudo_restore_end(gw_pseudo *p);
/* "; pseudonymized N value(s): R restored, M mangled KINDS" for the ledger row. */
void gw_pseudo_report(const gw_pseudo *p, char *buf, size_t len);
void gw_pseudo_free(gw_pseudo *p);

#endif
