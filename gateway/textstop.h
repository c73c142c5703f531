/* textstop.h: streaming text that stops at stop strings. Internal.
 *
 * Generated pieces go in; what comes out is the text safe to show now:
 * anything that might be the start of a stop string is held back until the
 * next piece settles it, and a stop string itself never comes out.
 */
#ifndef JUNCTION_TEXTSTOP_H
#define JUNCTION_TEXTSTOP_H

#include <stdbool.h>
#include <stddef.h>

#define TEXTSTOP_MAX 4

typedef struct {
    char *text;
    size_t len, cap, released;
    char *stops[TEXTSTOP_MAX];
    int n_stops;
    bool stopped;
} textstop;

/* Copies the stop strings (empty ones ignored). 0, or -1 when out of memory. */
int textstop_init(textstop *t, const char *const *stops, int n);
void textstop_free(textstop *t);

/* Add a piece. *out and *out_len: newly releasable text (inside t, valid until
 * the next call). Returns true once a stop string has appeared. */
bool textstop_add(textstop *t, const char *piece, size_t n, const char **out, size_t *out_len);

/* At the end: release what was held back (no stop string came). */
void textstop_flush(textstop *t, const char **out, size_t *out_len);

#endif
