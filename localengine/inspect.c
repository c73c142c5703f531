/* inspect.c: print a GGUF file's metadata and tensors (`junction inspect`). */
#include "gguf.h"
#include "localengine.h"
#include "quant.h"

#include <stdio.h>
#include <string.h>

static void print_scalar(FILE *out, gguf_type t, const uint8_t *v)
{
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; float f32;
            uint64_t u64; int64_t i64; double f64; } x;
    switch (t) {
    case GGUF_U8: memcpy(&x.u8, v, 1); fprintf(out, "%u", x.u8); break;
    case GGUF_I8: memcpy(&x.i8, v, 1); fprintf(out, "%d", x.i8); break;
    case GGUF_U16: memcpy(&x.u16, v, 2); fprintf(out, "%u", x.u16); break;
    case GGUF_I16: memcpy(&x.i16, v, 2); fprintf(out, "%d", x.i16); break;
    case GGUF_U32: memcpy(&x.u32, v, 4); fprintf(out, "%u", x.u32); break;
    case GGUF_I32: memcpy(&x.i32, v, 4); fprintf(out, "%d", x.i32); break;
    case GGUF_F32: memcpy(&x.f32, v, 4); fprintf(out, "%g", x.f32); break;
    case GGUF_BOOL: fprintf(out, "%s", v[0] ? "true" : "false"); break;
    case GGUF_U64: memcpy(&x.u64, v, 8); fprintf(out, "%llu", (unsigned long long)x.u64); break;
    case GGUF_I64: memcpy(&x.i64, v, 8); fprintf(out, "%lld", (long long)x.i64); break;
    case GGUF_F64: memcpy(&x.f64, v, 8); fprintf(out, "%g", x.f64); break;
    default: fprintf(out, "?"); break;
    }
}

static void print_str(FILE *out, const char *s, uint64_t len, uint64_t max)
{
    fputc('"', out);
    for (uint64_t i = 0; i < len && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c < 0x20) fprintf(out, "\\x%02x", c);
        else fputc(c, out);
    }
    if (len > max) fprintf(out, "...");
    fputc('"', out);
}

int eng_inspect(const char *path, FILE *out, char *err, size_t errlen)
{
    gguf_file *f;
    if (gguf_open(&f, path, err, errlen) != 0) return -1;
    fprintf(out, "%s: GGUF v%u, %llu metadata entries, %llu tensors, alignment %llu\n\nmetadata:\n", path,
            f->version, (unsigned long long)f->n_kv, (unsigned long long)f->n_tensors,
            (unsigned long long)f->alignment);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        fprintf(out, "  %-44.*s ", (int)kv->key.len, kv->key.ptr);
        if (kv->type == GGUF_STRING) {
            uint64_t len;
            memcpy(&len, kv->value, 8);
            print_str(out, (const char *)kv->value + 8, len, 120);
        } else if (kv->type == GGUF_ARRAY) {
            fprintf(out, "[%s × %llu]", gguf_type_name(kv->elem_type), (unsigned long long)kv->n_elems);
            const uint8_t *cur = gguf_arr_begin(kv);
            fprintf(out, " ");
            for (uint64_t j = 0; j < kv->n_elems && j < 8; j++) {
                if (kv->elem_type == GGUF_STRING) {
                    gguf_str s = gguf_arr_next_str(&cur);
                    print_str(out, s.ptr, s.len, 24);
                } else if (kv->elem_type == GGUF_ARRAY) {
                    fprintf(out, "[...]");
                    break;
                } else {
                    print_scalar(out, kv->elem_type, cur);
                    static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
                    cur += sz[kv->elem_type];
                }
                fputc(' ', out);
            }
            if (kv->n_elems > 8) fprintf(out, "...");
        } else {
            print_scalar(out, kv->type, kv->value);
        }
        fputc('\n', out);
    }
    fprintf(out, "\ntensors:\n");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        char dims[96] = "";
        for (uint32_t d = 0; d < t->n_dims; d++)
            snprintf(dims + strlen(dims), sizeof(dims) - strlen(dims), "%s%llu", d ? ", " : "", (unsigned long long)t->dims[d]);
        fprintf(out, "  %-32.*s %-6s [%s]  %llu bytes at %llu\n", (int)t->name.len, t->name.ptr,
                eng_type_info_of(t->type)->name, dims, (unsigned long long)t->n_bytes, (unsigned long long)t->offset);
    }
    gguf_close(f);
    return 0;
}
