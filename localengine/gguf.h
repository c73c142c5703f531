/* gguf.h: reading GGUF files (v2, v3) over mmap. Internal to localengine.
 *
 * Everything is validated against the file's length when the file is
 * opened, so later accessors never read out of bounds. Strings point into
 * the mapping and are not NUL-terminated (gguf_str carries the length).
 */
#ifndef JUNCTION_GGUF_H
#define JUNCTION_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    GGUF_U8 = 0, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL,
    GGUF_STRING, GGUF_ARRAY, GGUF_U64, GGUF_I64, GGUF_F64,
    GGUF_N_TYPES
} gguf_type;

typedef struct {
    const char *ptr;
    uint64_t len;
} gguf_str;

typedef struct {
    gguf_str key;
    gguf_type type;
    const uint8_t *value;     /* the raw value in the mapping */
    uint64_t value_len;       /* its bytes (for arrays: element type, count, elements) */
    gguf_type elem_type;      /* GGUF_ARRAY only */
    uint64_t n_elems;         /* GGUF_ARRAY only */
} gguf_kv;

#define GGUF_MAX_DIMS 4

typedef struct {
    gguf_str name;
    uint32_t n_dims;
    uint64_t dims[GGUF_MAX_DIMS];  /* dims[0] is the row length; unused dims are 1 */
    uint32_t type;                 /* ggml type id */
    uint64_t offset;               /* relative to the data section */
    uint64_t n_elems;
    uint64_t n_bytes;
    const void *data;              /* in the mapping */
} gguf_tensor;

typedef struct gguf_file {
    const uint8_t *map;
    size_t size;
    uint32_t version;
    uint64_t alignment;
    uint64_t n_kv, n_tensors;
    gguf_kv *kv;
    gguf_tensor *tensors;
    uint64_t data_offset;          /* start of the tensor data section */
} gguf_file;

/* Map and validate `path`. */
int gguf_open(gguf_file **out, const char *path, char *err, size_t errlen);
void gguf_close(gguf_file *f);

const gguf_kv *gguf_find(const gguf_file *f, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);
bool gguf_str_eq(gguf_str s, const char *c);

/* Scalar getters: false if absent or of another type (integers of any
 * width convert when the value fits). */
bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out);
bool gguf_get_f32(const gguf_file *f, const char *key, float *out);
bool gguf_get_bool(const gguf_file *f, const char *key, bool *out);
bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);

/* Arrays: element i of a numeric or string array (bounds checked at open). */
const gguf_kv *gguf_get_arr(const gguf_file *f, const char *key, gguf_type elem_type);
/* Walk a string array: *cursor starts at kv->value + 12 via gguf_arr_begin. */
const uint8_t *gguf_arr_begin(const gguf_kv *kv);
gguf_str gguf_arr_next_str(const uint8_t **cursor);

const char *gguf_type_name(gguf_type t);

#endif
