/* context.h: the context (KV cache, scratch, per-sequence feature state),
 * shared by forward.c (the forward pass) and features.c (what the
 * classifier reads from it). Internal to localengine. */
#ifndef JUNCTION_CONTEXT_H
#define JUNCTION_CONTEXT_H

#include "model.h"
#include "threadpool.h"

/* One sequence's feature collection and its layer-stopped tokens. */
typedef struct {
    bool collecting;
    eng_feature_params p;        /* stop_layer normalized: n_layer when not stopped */
    int n_tokens, n_scored, n_pooled_tokens;
    double nll_sum;
    float nll_max;
    double *pool_sum;            /* [n_embd] while pooling */
    float *last_row;             /* [n_vocab] logits of position last_pos, to score the next token */
    float last_lse;              /* log-sum-exp of last_row */
    int last_pos;                /* -1: no row */
    /* Stopped tokens: positions [stop_from, stop_from + n_resid) went through
     * p.stop_layer layers only; their residual stream after them, in order. */
    int stop_from;
    float *resid;                /* [cap_resid][n_embd] */
    int n_resid, cap_resid;
} eng_seq_feat;

struct eng_ctx {
    eng_model *m;
    eng_pool *pool;
    int n_ctx, n_batch;          /* n_ctx positions per sequence */
    int n_seq;
    int *seq_pos;                /* tokens in each sequence's cache */
    int *b_seq, *b_pos, *b_tok;  /* the batch being computed: [n_batch] */
    int *b_depth;                /* layers each batch token goes through; non-increasing along the batch */
    int *b_rows;                 /* scratch: batch indices whose logits are computed */
    bool *b_want;
    bool b_features;             /* some batch token belongs to a collecting sequence */
    eng_kv_type kv_type;
    size_t kv_elem;              /* bytes per cached value */
    uint8_t *k_cache, *v_cache;  /* [n_layer][n_seq][n_ctx][kv_dim] */
    float *x, *xb, *q, *k, *v, *att, *hb, *hb2;  /* [n_batch][...] scratch */
    uint8_t *act;                /* converted activations, [n_batch][act_row] */
    size_t act_row;
    float *scores;               /* [n_threads][n_ctx] attention weights */
    float *logits;               /* [n_logit_rows][n_vocab] */
    int n_logit_rows, logits_cap, logits_first;  /* row r is token index logits_first + r */
    eng_seq_feat *feat;          /* [n_seq] */
    float *feat_logits;          /* [ENG_FEATURE_ROWS][n_vocab] for the NLL, allocated at the first need */
};

/* Logit rows computed at once for the NLL (bounds feat_logits). */
#define ENG_FEATURE_ROWS 32

/* forward.c: batch tokens [0, T) (b_* arrays) through layers
 * [first_layer, their depth); with first_layer > 0 the caller has put their
 * residual stream in c->x. Logits of the b_want tokens, in order, into
 * `logits`. */
void eng_forward_batch(eng_ctx *c, int T, int first_layer, float *logits);
/* forward.c: logits (final norm, output matrix) of the n batch tokens
 * rows[], whose residual stream in c->x went through every layer, into
 * out[n][n_vocab]. Uses c->xb. */
void eng_forward_output(eng_ctx *c, const int *rows, int n, float *out);

/* forward.c: room for `rows` rows of logits. */
int eng_reserve_logits(eng_ctx *c, int rows, char *err, size_t errlen);

/* features.c, for eng_decode_batch: check that the items may go in (a
 * stopped sequence that is not collecting takes none; stopped items ask for
 * no logits) and reserve room for the residuals they will leave. */
int eng_features_admit(eng_ctx *c, const eng_batch_item *items, int n, char *err, size_t errlen);
/* Layers an item of `seq` goes through. */
int eng_features_depth(const eng_ctx *c, int seq);
/* features.c, from the forward pass: after `done` layers, pool and keep the
 * residual stream of the first T batch tokens as their sequences ask. */
void eng_features_after_layer(eng_ctx *c, int done, int T);
/* features.c: NLL rows for the first T batch tokens (which went through
 * every layer), after the forward pass. */
void eng_features_score(eng_ctx *c, int T);
/* features.c: what truncating `seq` to `pos` means for its feature state. */
void eng_features_truncate(eng_ctx *c, int seq, int pos);
void eng_features_free_all(eng_ctx *c);

#endif
