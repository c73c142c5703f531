/* repack.c: quantized weights re-laid out for the interleaved kernels, by
 * the model's first context. The layouts themselves live in interleave32.c
 * (32-weight types) and interleave_k.c (K types).
 *
 * Why: a quantized row dotted with an activation row yields one integer sum
 * per 32 (or 16) weights, and each must be scaled on its own, so the
 * row-at-a-time kernels spend more time on bookkeeping than on products and
 * fall short of memory speed. With 16 rows interleaved block by block (their
 * 16 scales together, then their codes 4 bytes per row at a time), one
 * 512-bit dpbusd (or two 256-bit maddubs) advances 16 rows at once against 4
 * activation bytes broadcast to every lane: the 16 rows' sums come out in
 * one register and are scaled with one convert and one FMA per block, and
 * in a batch each weight block is unpacked once for every token.
 *
 * The K types keep their integer scales and mins exactly as llama.cpp
 * applies them; quant.h describes each layout.
 *
 * The layouts have the file's size or within 3% of it, so the engine
 * repacks into anonymous memory and hands each tensor's file pages back as
 * soon as it is done: resident memory stays about 1x the model, and the
 * reference kernels (JUNCTION_KERNELS=reference) keep the file layout.
 */
#include "model.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void eng_repack_rows(eng_put_row_fn put, const void *src, void *dst, int64_t n_rows, int64_t n_in, int block_elems,
                     size_t file_block_bytes, size_t x16_block_bytes)
{
    const uint8_t *from = src;
    uint8_t *to = dst;
    int64_t nb = n_in / block_elems;
    for (int64_t r0 = 0; r0 < n_rows; r0 += 16)
        for (int64_t b = 0; b < nb; b++, to += x16_block_bytes)
            for (int r = 0; r < 16; r++) put(to, r, from + (size_t)((r0 + r) * nb + b) * file_block_bytes);
}

/* The file's pages of [p, p+n) that lie wholly inside it go back to the
 * kernel (they are clean: it rereads them from the file if ever touched). */
static void release_file_pages(const void *p, size_t n)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1), b = ((uintptr_t)p + n) & ~(page - 1);
    if (a < b) madvise((void *)a, b - a, MADV_DONTNEED);
}

static bool repackable(const eng_model *m, const eng_weight *w)
{
    if (w == &m->output && m->info.tied_output) return false; /* it is token_embd, kept for lookups */
    uint32_t to = w->type->repack_to;
    return to && w->n_out % eng_type_info_of(to)->rows_per_group == 0;
}

/* Bytes of w in the layout it is repacked into, rounded up for alignment. */
static size_t repacked_size(const eng_weight *w)
{
    return ((size_t)w->n_out * eng_row_size(w->type->repack_to, w->n_in) + 63) & ~(size_t)63;
}

typedef struct {
    eng_weight *w;
    uint8_t *dst;
} repack_item;

typedef struct {
    repack_item *items;
    size_t n, share, n_shares;
} repack_job;

/* Items share, share + n_shares, ...: the first touch of fresh memory costs
 * more than the copy (the kernel zeroes every page), so the shares run on
 * all cores. */
static void *repack_share(void *p)
{
    repack_job *j = p;
    for (size_t i = j->share; i < j->n; i += j->n_shares) {
        const eng_weight *w = j->items[i].w;
        eng_type_info_of(w->type->repack_to)->repack(w->data, j->items[i].dst, w->n_out, w->n_in);
        release_file_pages(w->data, (size_t)w->n_out * w->row_bytes);
    }
    return NULL;
}

int eng_model_repack(eng_model *m, char *err, size_t errlen)
{
    size_t bytes = 0, n = 0;
    eng_weight *w;
    for (size_t i = 0; (w = eng_model_matmul_weight(m, i)); i++)
        if (repackable(m, w)) bytes += repacked_size(w), n++;
    if (!bytes) return 0;
    repack_item *items = malloc(n * sizeof(*items));
    void *mem = items ? mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : MAP_FAILED;
    if (mem == MAP_FAILED) {
        snprintf(err, errlen, "cannot allocate %zu bytes for the interleaved weights: %s "
                 "(JUNCTION_KERNELS=reference runs from the file's pages instead)", bytes, strerror(errno));
        free(items);
        return -1;
    }
    madvise(mem, bytes, MADV_HUGEPAGE); /* fewer TLB misses when streaming GBs; a hint only */
    m->repacked = mem;
    m->repacked_bytes = bytes;
    uint8_t *at = mem;
    n = 0;
    for (size_t i = 0; (w = eng_model_matmul_weight(m, i)); i++)
        if (repackable(m, w)) {
            items[n++] = (repack_item){w, at};
            at += repacked_size(w);
        }
    enum { MAX_THREADS = 16 };
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t n_shares = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (size_t)cpus;
    repack_job jobs[MAX_THREADS];
    pthread_t threads[MAX_THREADS];
    bool started[MAX_THREADS] = {false};
    for (size_t k = 0; k < n_shares; k++) {
        jobs[k] = (repack_job){items, n, k, n_shares};
        if (k > 0) started[k] = pthread_create(&threads[k], NULL, repack_share, &jobs[k]) == 0;
    }
    repack_share(&jobs[0]);
    for (size_t k = 1; k < n_shares; k++) {
        if (started[k]) pthread_join(threads[k], NULL);
        else repack_share(&jobs[k]); /* no thread: do its share here */
    }
    for (size_t i = 0; i < n; i++) {
        eng_weight *iw = items[i].w;
        iw->type = eng_type_info_of(iw->type->repack_to);
        iw->data = items[i].dst;
        iw->row_bytes = eng_row_size(iw->type->id, iw->n_in);
    }
    free(items);
    return 0;
}
