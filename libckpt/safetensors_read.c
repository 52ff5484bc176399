/*
 * safetensors_read.c: the strict safetensors reader (format rules in safetensors.h).
 *
 * Refused: a header length past the file or above 100,000,000 bytes, a header that is not UTF-8, does
 * not start with '{' or is not one JSON object (jansson, with duplicate keys refused: two readers could
 * keep different copies), unknown keys in a tensor entry, unknown dtypes, negative or non-integer sizes
 * and offsets, offsets that do not tile the data exactly (gaps, overlaps, trailing bytes), a tensor
 * whose byte range does not match numel x itemsize (checked arithmetic), `__metadata__` values that are
 * not strings, names with NUL. Nothing is allocated from a length before it has been checked against
 * the bytes present.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"
#include "dtype.h"
#include "globals.h"
#include "safetensors.h"
#include "text.h"
#include "util.h"

/* safetensors dtype names (safetensors/src/tensor.rs Dtype); byte-sized ones only */
static const struct {
    const char *name;
    ckpt_dtype dtype;
} st_dtypes[] = {
    {"BOOL", CKPT_DTYPE_BOOL},        {"U8", CKPT_DTYPE_UINT8},         {"I8", CKPT_DTYPE_INT8},
    {"F8_E5M2", CKPT_DTYPE_FLOAT8_E5M2}, {"F8_E4M3", CKPT_DTYPE_FLOAT8_E4M3FN}, {"F8_E8M0", CKPT_DTYPE_FLOAT8_E8M0FNU},
    {"I16", CKPT_DTYPE_INT16},        {"U16", CKPT_DTYPE_UINT16},       {"F16", CKPT_DTYPE_FLOAT16},
    {"BF16", CKPT_DTYPE_BFLOAT16},    {"I32", CKPT_DTYPE_INT32},        {"U32", CKPT_DTYPE_UINT32},
    {"F32", CKPT_DTYPE_FLOAT32},      {"C64", CKPT_DTYPE_COMPLEX64},    {"F64", CKPT_DTYPE_FLOAT64},
    {"I64", CKPT_DTYPE_INT64},        {"U64", CKPT_DTYPE_UINT64},
};

const char *ck_st_dtype_name(ckpt_dtype d)
{
    for (size_t i = 0; i < CK_ARRAY_LEN(st_dtypes); i++)
        if (st_dtypes[i].dtype == d) return st_dtypes[i].name;
    return NULL;
}

ckpt_dtype ck_st_dtype_from_name(const char *name)
{
    for (size_t i = 0; i < CK_ARRAY_LEN(st_dtypes); i++)
        if (strcmp(st_dtypes[i].name, name) == 0) return st_dtypes[i].dtype;
    return CKPT_DTYPE_INVALID;
}

typedef struct {
    const char *name;
    size_t name_len;
    ckpt_dtype dtype;
    uint32_t ndim;
    int64_t *shape;
    uint64_t begin, end;
} st_entry;

static int cmp_entry(const void *a, const void *b)
{
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name); /* zero-size tensors share an offset: keep a stable order */
}

static ckpt_status bad(ckpt_error *err, ckpt_status code, const char *fmt, ...) CK_PRINTF(3, 4);
static ckpt_status bad(ckpt_error *err, ckpt_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ck_error_vset(err, code, fmt, ap);
    va_end(ap);
    ck_error_in_record(err, "safetensors header");
    return code;
}

/* A JSON integer in [0, INT64_MAX]. */
static bool get_count(const json_t *j, uint64_t *out)
{
    if (!json_is_integer(j) || json_integer_value(j) < 0) return false;
    *out = (uint64_t)json_integer_value(j);
    return true;
}

static ckpt_status parse_entry(ckpt_checkpoint *c, const char *name, size_t name_len, const json_t *info, st_entry *e,
                               ckpt_error *err)
{
    if (!json_is_object(info))
        return bad(err, CKPT_ERR_FORMAT, "tensor '%.200s': entry must be an object {dtype, shape, data_offsets}", name);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)info, k, v) {
        if (strcmp(k, "dtype") != 0 && strcmp(k, "shape") != 0 && strcmp(k, "data_offsets") != 0)
            return bad(err, CKPT_ERR_FORMAT, "tensor '%.200s': unknown key '%.100s' (only dtype, shape, data_offsets)",
                       name, k);
    }
    const json_t *jd = json_object_get(info, "dtype"), *js = json_object_get(info, "shape"),
                 *jo = json_object_get(info, "data_offsets");
    if (!jd || !js || !jo) return bad(err, CKPT_ERR_FORMAT, "tensor '%.200s': dtype, shape and data_offsets are required", name);
    if (!json_is_string(jd)) return bad(err, CKPT_ERR_FORMAT, "tensor '%.200s': dtype must be a string", name);
    e->dtype = ck_st_dtype_from_name(json_string_value(jd));
    if (e->dtype == CKPT_DTYPE_INVALID)
        return bad(err, CKPT_ERR_UNSUPPORTED, "tensor '%.200s': dtype '%.40s' is not supported (libckpt reads BOOL, U8, I8, "
                   "U16, I16, F16, BF16, U32, I32, F32, C64, U64, I64, F64, F8_E4M3, F8_E5M2, F8_E8M0)", name,
                   json_string_value(jd));
    if (!json_is_array(js)) return bad(err, CKPT_ERR_FORMAT, "tensor '%.200s': shape must be an array of sizes", name);
    size_t ndim = json_array_size(js);
    if (ndim > c->limits.max_ndim)
        return bad(err, CKPT_ERR_LIMIT, "tensor '%.200s' has %zu dimensions, more than CKPT_LIMIT_MAX_NDIM (%llu)", name,
                   ndim, (unsigned long long)c->limits.max_ndim);
    e->ndim = (uint32_t)ndim;
    e->shape = ndim ? ck_arena_alloc(&c->store.arena, ndim * sizeof *e->shape, _Alignof(int64_t)) : NULL;
    if (ndim && !e->shape) return ck_out_of_memory(&c->store, err);
    uint64_t numel = 1;
    for (size_t i = 0; i < ndim; i++) {
        uint64_t d;
        if (!get_count(json_array_get(js, i), &d))
            return bad(err, CKPT_ERR_FORMAT, "tensor '%.200s': shape[%zu] is not a non-negative integer", name, i);
        e->shape[i] = (int64_t)d;
        if (ck_mul_overflow_u64(numel, d, &numel))
            return bad(err, CKPT_ERR_TENSOR, "tensor '%.200s': number of elements overflows 64 bits", name);
    }
    if (!json_is_array(jo) || json_array_size(jo) != 2 || !get_count(json_array_get(jo, 0), &e->begin) ||
        !get_count(json_array_get(jo, 1), &e->end))
        return bad(err, CKPT_ERR_FORMAT, "tensor '%.200s': data_offsets must be [begin, end] (non-negative integers)", name);
    if (e->end < e->begin)
        return bad(err, CKPT_ERR_FORMAT, "tensor '%.200s': data_offsets [%llu, %llu] end before they begin", name,
                   (unsigned long long)e->begin, (unsigned long long)e->end);
    uint64_t nbytes;
    if (ck_mul_overflow_u64(numel, ckpt_dtype_itemsize(e->dtype), &nbytes))
        return bad(err, CKPT_ERR_TENSOR, "tensor '%.200s': size in bytes overflows 64 bits", name);
    if (e->end - e->begin != nbytes)
        return bad(err, CKPT_ERR_TENSOR, "tensor '%.200s': data_offsets [%llu, %llu] hold %llu bytes, but %llu elements of %s "
                   "need %llu", name, (unsigned long long)e->begin, (unsigned long long)e->end,
                   (unsigned long long)(e->end - e->begin), (unsigned long long)numel, json_string_value(jd),
                   (unsigned long long)nbytes);
    e->name = name;
    e->name_len = name_len;
    return CKPT_OK;
}

static ckpt_status parse_metadata(ckpt_checkpoint *c, const json_t *m, ckpt_value **out, ckpt_error *err)
{
    *out = NULL;
    if (json_is_null(m)) return CKPT_OK; /* the reference reader accepts null for "no metadata" */
    if (!json_is_object(m)) return bad(err, CKPT_ERR_FORMAT, "__metadata__ must be an object of strings");
    ckpt_value *d = ck_new_dict(&c->store, json_object_size(m));
    if (!d) return ck_out_of_memory(&c->store, err);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)m, k, v) {
        if (!json_is_string(v)) return bad(err, CKPT_ERR_FORMAT, "__metadata__['%.200s'] must be a string", k);
        ckpt_value *kv = ck_new_bytes_kind(&c->store, CKPT_KIND_STR, k, strlen(k));
        ckpt_value *vv = ck_new_bytes_kind(&c->store, CKPT_KIND_STR, json_string_value(v), json_string_length(v));
        if (!kv || !vv) return ck_out_of_memory(&c->store, err);
        ckpt_status s = ck_dict_append(&c->store, d, kv, vv, err); /* JSON keys are unique (duplicates refused) */
        if (s) return s;
    }
    *out = d;
    return CKPT_OK;
}

static ckpt_status build(ckpt_checkpoint *c, st_entry *entries, size_t count, ckpt_value *metadata, const uint8_t *data,
                         uint64_t data_len, bool borrowable, ckpt_error *err)
{
    ck_store *st = &c->store;
    ckpt_value *root = ck_new_typed_dict(st, "collections.OrderedDict", count);
    if (!root) return ck_out_of_memory(st, err);
    if (metadata) {
        ckpt_value *attrs = ck_new_dict(st, 1), *k = ck_new_bytes_kind(st, CKPT_KIND_STR, "__metadata__", 12);
        if (!attrs || !k) return ck_out_of_memory(st, err);
        ckpt_status s = ck_dict_append(st, attrs, k, metadata, err);
        if (s) return s;
        root->attrs = attrs;
    }
    if (count) {
        c->storages = ck_arena_alloc(&st->arena, count * sizeof *c->storages, _Alignof(ckpt_storage *));
        if (!c->storages) return ck_out_of_memory(st, err);
        c->storages_cap = count;
    }
    bool skip = c->flags & CKPT_LOAD_SKIP_DATA;
    bool in_place = borrowable && (c->flags & (CKPT_LOAD_MMAP | CKPT_LOAD_BORROW)) && ck_host_is_little_endian();
    for (size_t i = 0; i < count; i++) {
        st_entry *e = &entries[i];
        size_t itemsize = ckpt_dtype_itemsize(e->dtype);
        ckpt_storage *s = ck_arena_zalloc(&st->arena, sizeof *s, _Alignof(ckpt_storage));
        ckpt_tensor *t = ck_arena_zalloc(&st->arena, sizeof *t, _Alignof(ckpt_tensor));
        ckpt_value *tv = ck_new(st, CKPT_KIND_TENSOR), *sv = ck_new(st, CKPT_KIND_STORAGE);
        ckpt_value *kv = ck_new_bytes_kind(st, CKPT_KIND_STR, e->name, e->name_len);
        char key[24];
        snprintf(key, sizeof key, "%zu", i);
        if (!s || !t || !tv || !sv || !kv || !(s->key = ck_arena_strndup(&st->arena, key, strlen(key))))
            return ck_out_of_memory(st, err);
        s->location = "cpu";
        s->nbytes = e->end - e->begin;
        s->numel = s->nbytes / itemsize;
        s->dtype = (uint8_t)e->dtype;
        s->index = (uint32_t)i;
        s->flags = CK_SF_RESOLVED;
        const uint8_t *src = data + e->begin; /* begin <= end <= data_len: checked by the tiling */
        if (!skip && s->nbytes) {
            if (in_place && (uintptr_t)src % itemsize == 0) {
                s->data = src;
            } else {
                if (s->nbytes > SIZE_MAX) return bad(err, CKPT_ERR_LIMIT, "tensor too large for this system");
                uint8_t *copy = ck_arena_alloc_large(&st->arena, (size_t)s->nbytes);
                if (!copy) {
                    if (st->arena.over_budget)
                        return bad(err, CKPT_ERR_LIMIT, "copying tensor '%.200s' (%llu bytes) exceeds the allocation limit "
                                   "(CKPT_LIMIT_MAX_ALLOC; or load with CKPT_LOAD_MMAP)", e->name,
                                   (unsigned long long)s->nbytes);
                    return ck_out_of_memory(st, err);
                }
                memcpy(copy, src, (size_t)s->nbytes);
                if (!ck_host_is_little_endian()) ck_swap_elements(copy, s->nbytes, ck_dtype_info_of(e->dtype)->swap_unit);
                s->data = copy;
            }
        }
        sv->u.storage = s;
        sv->type_name = "torch.storage.TypedStorage";
        c->storages[c->nstorages++] = s;
        if (!ck_strmap_put(&c->storage_by_key, s->key, strlen(s->key), sv)) return ck_out_of_memory(st, err);
        t->storage = s;
        t->dtype = (uint8_t)e->dtype;
        t->ndim = e->ndim;
        t->shape = e->shape;
        t->stride = e->ndim ? ck_arena_alloc(&st->arena, e->ndim * sizeof *t->stride, _Alignof(int64_t)) : NULL;
        if (e->ndim && !t->stride) return ck_out_of_memory(st, err);
        int64_t run = 1;
        for (uint32_t d = e->ndim; d-- > 0;) {
            t->stride[d] = run;
            /* with a zero-size dimension the others are unbounded by the data: check */
            if (e->shape[d] > 0 && ck_mul_overflow_i64(run, e->shape[d], &run))
                return bad(err, CKPT_ERR_TENSOR, "tensor '%.200s': row-major strides overflow 64 bits", e->name);
        }
        t->type_name = "torch.Tensor";
        ckpt_status vs = ck_tensor_validate(t, (uint32_t)CK_MIN(c->limits.max_ndim, UINT32_MAX), err);
        if (vs) {
            char detail[512];
            snprintf(detail, sizeof detail, "%s", ckpt_error_detail(err));
            return bad(err, vs, "tensor '%.200s': %s", e->name, detail);
        }
        tv->u.tensor = t;
        vs = ck_dict_append(st, root, kv, tv, err);
        if (vs) return vs;
    }
    (void)data_len;
    c->root = root;
    return CKPT_OK;
}

ckpt_status ck_st_load(ckpt_checkpoint *c, const uint8_t *data, size_t len, bool borrowable, ckpt_error *err)
{
    c->format = CKPT_FORMAT_SAFETENSORS;
    c->prefix = "";
    if (len < 8) return bad(err, CKPT_ERR_FORMAT, "truncated safetensors file: %zu bytes, less than the 8-byte header length", len);
    uint64_t n = ck_le64(data);
    if (n > CK_ST_MAX_HEADER)
        return bad(err, CKPT_ERR_FORMAT, "header length %llu is above the format's limit of 100,000,000 bytes",
                   (unsigned long long)n);
    if (!ck_fits(len, 8, n))
        return bad(err, CKPT_ERR_FORMAT, "header length %llu runs past the end of the file (%zu bytes): truncated?",
                   (unsigned long long)n, len);
    const uint8_t *h = data + 8;
    if (n == 0 || h[0] != '{') return bad(err, CKPT_ERR_FORMAT, "the header must be a JSON object starting with '{'");
    if (!ck_utf8_valid(h, (size_t)n, false)) return bad(err, CKPT_ERR_FORMAT, "the header is not valid UTF-8");
    /* jansson's parse tree costs a few times the text: count it against the allocation budget */
    uint64_t charge = 4 * n;
    if (!ck_arena_charge(&c->store.arena, charge))
        return bad(err, CKPT_ERR_LIMIT, "a %llu-byte header exceeds the allocation limit (CKPT_LIMIT_MAX_ALLOC)",
                   (unsigned long long)n);
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)h, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    ckpt_status s = CKPT_OK;
    if (!doc) {
        s = bad(err, CKPT_ERR_FORMAT, "the header is not valid JSON: %s (header byte %d)", jerr.text, jerr.position);
        ck_error_at_offset(err, 8 + (int64_t)jerr.position, -1);
        goto out;
    }
    if (!json_is_object(doc)) {
        s = bad(err, CKPT_ERR_FORMAT, "the header must be a JSON object");
        goto out;
    }
    size_t count = json_object_size(doc);
    const json_t *meta_json = json_object_get(doc, "__metadata__");
    if (meta_json) count--;
    if (count > c->limits.max_members) {
        s = bad(err, CKPT_ERR_LIMIT, "%zu tensors, more than CKPT_LIMIT_MAX_MEMBERS (%llu)", count,
                (unsigned long long)c->limits.max_members);
        goto out;
    }
    st_entry *entries = count ? ck_arena_zalloc(&c->store.arena, count * sizeof *entries, _Alignof(st_entry)) : NULL;
    if (count && !entries) {
        s = ck_out_of_memory(&c->store, err);
        goto out;
    }
    size_t k = 0;
    const char *name;
    json_t *info;
    json_object_foreach(doc, name, info) {
        if (strcmp(name, "__metadata__") == 0) continue;
        /* jansson refuses \u0000 in keys, so names are C strings */
        char *copy = ck_arena_strndup(&c->store.arena, name, strlen(name));
        if (!copy) {
            s = ck_out_of_memory(&c->store, err);
            goto out;
        }
        if ((s = parse_entry(c, copy, strlen(copy), info, &entries[k], err))) goto out;
        k++;
    }
    ckpt_value *metadata = NULL;
    if (meta_json && (s = parse_metadata(c, meta_json, &metadata, err))) goto out;
    if (count) qsort(entries, count, sizeof *entries, cmp_entry);
    /* the data area: exactly the bytes after the header, tiled by the tensors in offset order */
    uint64_t data_len = len - 8 - n, expect = 0;
    for (size_t i = 0; i < count; i++) {
        if (entries[i].begin != expect) {
            s = bad(err, CKPT_ERR_FORMAT, "tensor '%.200s' starts at data offset %llu, but the previous tensor ends at %llu (%s)",
                    entries[i].name, (unsigned long long)entries[i].begin, (unsigned long long)expect,
                    entries[i].begin > expect ? "a gap: bytes that belong to no tensor" : "tensors overlap");
            goto out;
        }
        expect = entries[i].end;
    }
    if (expect != data_len) {
        s = bad(err, CKPT_ERR_FORMAT, "the tensors cover %llu data bytes, but the file has %llu after the header (%s)",
                (unsigned long long)expect, (unsigned long long)data_len,
                expect < data_len ? "trailing bytes that belong to no tensor" : "truncated file");
        goto out;
    }
    s = build(c, entries, count, metadata, h + n, data_len, borrowable, err);
out:
    json_decref(doc);
    ck_arena_uncharge(&c->store.arena, charge);
    return s;
}
