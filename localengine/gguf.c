/* gguf.c: a GGUF reader that trusts nothing in the file.
 *
 * A model file may be truncated, corrupted or hostile. Every count, length,
 * dimension and offset is checked against the bytes actually present before
 * anything is allocated from it or read through it, and every failure names
 * what was wrong and where. After gguf_open() succeeds, the accessors can
 * walk the metadata without further checks.
 */
#include "gguf.h"
#include "quant.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAX_ARRAY_DEPTH 4

typedef struct {
    const uint8_t *p, *end, *start;
    char *err;
    size_t errlen;
} cursor;

static bool fail(cursor *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(cursor *c, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s (at byte %zu)", msg, (size_t)(c->p - c->start));
    return false;
}

static bool take(cursor *c, void *out, size_t n, const char *what)
{
    if ((size_t)(c->end - c->p) < n) return fail(c, "file ends inside %s: truncated", what);
    memcpy(out, c->p, n);
    c->p += n;
    return true;
}

static bool take_str(cursor *c, gguf_str *s, const char *what)
{
    uint64_t len = 0;
    if (!take(c, &len, 8, what)) return false;
    if (len > (uint64_t)(c->end - c->p))
        return fail(c, "%s claims %llu bytes but only %zu remain", what, (unsigned long long)len,
                    (size_t)(c->end - c->p));
    s->ptr = (const char *)c->p;
    s->len = len;
    c->p += len;
    return true;
}

static const size_t scalar_size[GGUF_N_TYPES] = {
    [GGUF_U8] = 1, [GGUF_I8] = 1, [GGUF_U16] = 2, [GGUF_I16] = 2, [GGUF_U32] = 4, [GGUF_I32] = 4,
    [GGUF_F32] = 4, [GGUF_BOOL] = 1, [GGUF_U64] = 8, [GGUF_I64] = 8, [GGUF_F64] = 8,
};

static const char *const type_names[GGUF_N_TYPES] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

const char *gguf_type_name(gguf_type t) { return t < GGUF_N_TYPES ? type_names[t] : "?"; }

/* Skip one value of `type`, checking bounds; arrays recurse (depth-limited). */
static bool skip_value(cursor *c, uint32_t type, int depth, gguf_type *elem_type, uint64_t *n_elems)
{
    if (type >= GGUF_N_TYPES) return fail(c, "unknown metadata value type %u", type);
    if (type == GGUF_STRING) {
        gguf_str s;
        return take_str(c, &s, "a string value");
    }
    if (type != GGUF_ARRAY) {
        if ((size_t)(c->end - c->p) < scalar_size[type]) return fail(c, "file ends inside a %s value", type_names[type]);
        c->p += scalar_size[type];
        return true;
    }
    if (depth >= GGUF_MAX_ARRAY_DEPTH) return fail(c, "arrays nested deeper than %d", GGUF_MAX_ARRAY_DEPTH);
    uint32_t et = 0;
    uint64_t n = 0;
    if (!take(c, &et, 4, "an array type") || !take(c, &n, 8, "an array length")) return false;
    if (et >= GGUF_N_TYPES) return fail(c, "array of unknown type %u", et);
    if (elem_type) *elem_type = (gguf_type)et;
    if (n_elems) *n_elems = n;
    if (et != GGUF_STRING && et != GGUF_ARRAY) {
        size_t left = (size_t)(c->end - c->p);
        if (n > left / scalar_size[et])
            return fail(c, "array of %llu %s values does not fit in the %zu bytes left",
                        (unsigned long long)n, type_names[et], left);
        c->p += n * scalar_size[et];
        return true;
    }
    /* Each string or sub-array takes at least 8 bytes: a cheap bound first. */
    if (n > (uint64_t)(c->end - c->p) / 8)
        return fail(c, "array of %llu elements cannot fit in the bytes left", (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++)
        if (!skip_value(c, et, depth + 1, NULL, NULL)) return false;
    return true;
}

bool gguf_str_eq(gguf_str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}

const gguf_kv *gguf_find(const gguf_file *f, const char *key)
{
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (gguf_str_eq(f->kv[i].key, key)) return &f->kv[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name)
{
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (gguf_str_eq(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

static bool read_int(const gguf_kv *kv, int64_t *signed_out, uint64_t *unsigned_out, bool *is_signed)
{
    const uint8_t *v = kv->value;
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; uint64_t u64; int64_t i64; } x;
    switch (kv->type) {
    case GGUF_U8: memcpy(&x.u8, v, 1); *unsigned_out = x.u8; *is_signed = false; return true;
    case GGUF_U16: memcpy(&x.u16, v, 2); *unsigned_out = x.u16; *is_signed = false; return true;
    case GGUF_U32: memcpy(&x.u32, v, 4); *unsigned_out = x.u32; *is_signed = false; return true;
    case GGUF_U64: memcpy(&x.u64, v, 8); *unsigned_out = x.u64; *is_signed = false; return true;
    case GGUF_I8: memcpy(&x.i8, v, 1); *signed_out = x.i8; *is_signed = true; return true;
    case GGUF_I16: memcpy(&x.i16, v, 2); *signed_out = x.i16; *is_signed = true; return true;
    case GGUF_I32: memcpy(&x.i32, v, 4); *signed_out = x.i32; *is_signed = true; return true;
    case GGUF_I64: memcpy(&x.i64, v, 8); *signed_out = x.i64; *is_signed = true; return true;
    default: return false;
    }
}

bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out)
{
    const gguf_kv *kv = gguf_find(f, key);
    int64_t s;
    uint64_t u;
    bool is_signed;
    if (!kv || !read_int(kv, &s, &u, &is_signed)) return false;
    if (is_signed) {
        if (s < 0) return false;
        u = (uint64_t)s;
    }
    *out = u;
    return true;
}

bool gguf_get_f32(const gguf_file *f, const char *key, float *out)
{
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return false;
    if (kv->type == GGUF_F32) { memcpy(out, kv->value, 4); return true; }
    if (kv->type == GGUF_F64) { double d; memcpy(&d, kv->value, 8); *out = (float)d; return true; }
    return false;
}

bool gguf_get_bool(const gguf_file *f, const char *key, bool *out)
{
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || kv->type != GGUF_BOOL) return false;
    *out = kv->value[0] != 0;
    return true;
}

bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out)
{
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || kv->type != GGUF_STRING) return false;
    uint64_t len = 0;
    memcpy(&len, kv->value, 8);
    out->ptr = (const char *)kv->value + 8;
    out->len = len;
    return true;
}

const gguf_kv *gguf_get_arr(const gguf_file *f, const char *key, gguf_type elem_type)
{
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || kv->type != GGUF_ARRAY || kv->elem_type != elem_type) return NULL;
    return kv;
}

const uint8_t *gguf_arr_begin(const gguf_kv *kv) { return kv->value + 12; }

gguf_str gguf_arr_next_str(const uint8_t **cursor)
{
    gguf_str s;
    memcpy(&s.len, *cursor, 8);
    s.ptr = (const char *)*cursor + 8;
    *cursor += 8 + s.len;
    return s;
}

static bool read_tensor_info(cursor *c, gguf_tensor *t, uint64_t index)
{
    if (!take_str(c, &t->name, "a tensor name")) return false;
    if (t->name.len == 0 || t->name.len > 256) return fail(c, "tensor %llu has a name of %llu bytes",
                                                           (unsigned long long)index, (unsigned long long)t->name.len);
    if (!take(c, &t->n_dims, 4, "a tensor's dimension count")) return false;
    if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
        return fail(c, "tensor '%.*s' has %u dimensions (1 to %d allowed)", (int)t->name.len, t->name.ptr,
                    t->n_dims, GGUF_MAX_DIMS);
    t->n_elems = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t->dims[d] = 1;
        if (d >= t->n_dims) continue;
        if (!take(c, &t->dims[d], 8, "a tensor dimension")) return false;
        if (t->dims[d] == 0 || t->dims[d] > (1ULL << 40) || t->n_elems > (1ULL << 50) / t->dims[d])
            return fail(c, "tensor '%.*s' has an impossible dimension %llu", (int)t->name.len, t->name.ptr,
                        (unsigned long long)t->dims[d]);
        t->n_elems *= t->dims[d];
    }
    if (!take(c, &t->type, 4, "a tensor type") || !take(c, &t->offset, 8, "a tensor offset")) return false;
    const eng_type_info *ti = eng_type_info_of(t->type);
    if (!ti || ti->internal)
        return fail(c, "tensor '%.*s' has type id %u, which junction does not support", (int)t->name.len,
                    t->name.ptr, t->type);
    if (t->dims[0] % ti->block_size != 0)
        return fail(c, "tensor '%.*s': row length %llu is not a multiple of the %s block size %u "
                       "(blocks crossing rows are not supported; re-quantize the file)",
                    (int)t->name.len, t->name.ptr, (unsigned long long)t->dims[0], ti->name, ti->block_size);
    t->n_bytes = t->n_elems / ti->block_size * ti->type_size;
    return true;
}

static int parse(gguf_file *f, char *err, size_t errlen)
{
    cursor c = {.p = f->map, .end = f->map + f->size, .start = f->map, .err = err, .errlen = errlen};
    char magic[4];
    if (!take(&c, magic, 4, "the magic number")) return -1;
    if (memcmp(magic, "GGUF", 4) != 0) {
        fail(&c, "not a GGUF file (it does not start with 'GGUF')");
        return -1;
    }
    if (!take(&c, &f->version, 4, "the version")) return -1;
    if (f->version == 1) {
        fail(&c, "GGUF version 1 (32-bit counts) is not supported; convert the file to GGUF v3 "
                 "with a current llama.cpp (convert_hf_to_gguf.py or gguf-py)");
        return -1;
    }
    if (f->version != 2 && f->version != 3) {
        fail(&c, "GGUF version %u is not supported (junction reads versions 2 and 3)", f->version);
        return -1;
    }
    if (!take(&c, &f->n_tensors, 8, "the tensor count") || !take(&c, &f->n_kv, 8, "the metadata count")) return -1;
    /* Each key/value takes at least 12 bytes, each tensor info at least 24. */
    if (f->n_kv > f->size / 12 || f->n_tensors > f->size / 24) {
        fail(&c, "header claims %llu metadata entries and %llu tensors, more than a %zu-byte file can hold",
             (unsigned long long)f->n_kv, (unsigned long long)f->n_tensors, f->size);
        return -1;
    }
    f->kv = calloc(f->n_kv ? f->n_kv : 1, sizeof(gguf_kv));
    f->tensors = calloc(f->n_tensors ? f->n_tensors : 1, sizeof(gguf_tensor));
    if (!f->kv || !f->tensors) {
        snprintf(err, errlen, "out of memory reading the GGUF header");
        return -1;
    }
    f->alignment = 32;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        gguf_kv *kv = &f->kv[i];
        uint32_t type = 0;
        if (!take_str(&c, &kv->key, "a metadata key") || !take(&c, &type, 4, "a metadata type")) return -1;
        kv->type = (gguf_type)type;
        kv->value = c.p;
        if (!skip_value(&c, type, 0, &kv->elem_type, &kv->n_elems)) {
            size_t n = strlen(err);
            snprintf(err + n, errlen - n, " in metadata key '%.*s'", (int)(kv->key.len > 80 ? 80 : kv->key.len), kv->key.ptr);
            return -1;
        }
        kv->value_len = (uint64_t)(c.p - kv->value);
    }
    uint64_t align;
    const gguf_kv *akv = gguf_find(f, "general.alignment");
    if (akv) {
        if (!gguf_get_u64(f, "general.alignment", &align) || align == 0 || (align & (align - 1)) || align > 65536) {
            fail(&c, "general.alignment must be a power of two up to 65536");
            return -1;
        }
        f->alignment = align;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (!read_tensor_info(&c, &f->tensors[i], i)) return -1;

    uint64_t header_end = (uint64_t)(c.p - f->map);
    f->data_offset = (header_end + f->alignment - 1) / f->alignment * f->alignment;
    uint64_t data_size = f->data_offset <= f->size ? f->size - f->data_offset : 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        if (t->offset % f->alignment != 0 || t->offset > data_size || t->n_bytes > data_size - t->offset) {
            snprintf(err, errlen, "tensor '%.*s' (%llu bytes at data offset %llu) lies outside the file's "
                                  "%llu data bytes, or is misaligned: the file is truncated or corrupt",
                     (int)t->name.len, t->name.ptr, (unsigned long long)t->n_bytes,
                     (unsigned long long)t->offset, (unsigned long long)data_size);
            return -1;
        }
        t->data = f->map + f->data_offset + t->offset;
        for (uint64_t j = 0; j < i; j++) {
            if (t->name.len == f->tensors[j].name.len && memcmp(t->name.ptr, f->tensors[j].name.ptr, t->name.len) == 0) {
                snprintf(err, errlen, "tensor '%.*s' appears twice", (int)t->name.len, t->name.ptr);
                return -1;
            }
        }
    }
    return 0;
}

int gguf_open(gguf_file **out, const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        close(fd);
        return -1;
    }
    gguf_file *f = calloc(1, sizeof(*f));
    if (!f) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    f->size = (size_t)st.st_size;
    if (f->size == 0) {
        snprintf(err, errlen, "%s is empty: not a GGUF file", path);
        close(fd);
        free(f);
        return -1;
    }
    {
        void *m = mmap(NULL, f->size, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            snprintf(err, errlen, "cannot map %s: %s", path, strerror(errno));
            close(fd);
            free(f);
            return -1;
        }
        f->map = m;
    }
    close(fd);
    char detail[480];
    if (parse(f, detail, sizeof(detail)) != 0) {
        snprintf(err, errlen, "%s: %s", path, detail);
        gguf_close(f);
        return -1;
    }
    *out = f;
    return 0;
}

void gguf_close(gguf_file *f)
{
    if (!f) return;
    if (f->map) munmap((void *)f->map, f->size);
    free(f->kv);
    free(f->tensors);
    free(f);
}
