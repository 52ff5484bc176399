/*
 * globals_numpy.c: built-in handlers for NumPy values (the "numpy" preset), off by default.
 *
 * How NumPy pickles (numpy/core/src/multiarray/methods.c array_reduce / array_setstate, descriptor.c):
 *   dtype:  numpy.dtype('f8', False, True) REDUCE, BUILD (3, '<', None, None, None, -1, -1, 0)
 *           (version 4 adds metadata). The byte order is '<', '>' or '|' (no order for 1-byte types).
 *   array:  numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b') REDUCE,
 *           BUILD (1, shape, dtype, is_fortran, raw bytes) (older: the same without the version).
 *   array, protocol 5: numpy.core.numeric._frombuffer(bytes, dtype, shape, order).
 *   scalar: numpy.core.multiarray.scalar(dtype, raw bytes) REDUCE.
 * numpy >= 2 spells numpy.core as numpy._core. Arrays become tensors (host byte order), scalars become
 * bool/int/float/complex, dtypes become dtype nodes typed numpy.dtype. Anything else (structured,
 * string, object or datetime dtypes, subclasses) is declined and stays a generic node.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "byteorder.h"
#include "dtype.h"
#include "globals.h"
#include "util.h"

typedef struct {
    ckpt_dtype dt;
    bool big; /* elements stored big-endian */
} np_dtype;

/* Decline: keep the generic node. */
#define DECLINE CKPT_OK

/* "f8", "<i4", "|b1", "c16"... -> dtype; false for codes without a tensor dtype. */
static bool parse_code(const char *s, size_t n, np_dtype *out)
{
    out->big = false;
    if (n && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=')) {
        out->big = s[0] == '>';
        s++;
        n--;
    }
    if (n < 2 || n > 3) return false;
    char kind = s[0];
    unsigned size = 0;
    for (size_t i = 1; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        size = size * 10 + (unsigned)(s[i] - '0');
    }
    static const struct { char kind; unsigned size; ckpt_dtype dt; } map[] = {
        {'f', 2, CKPT_DTYPE_FLOAT16}, {'f', 4, CKPT_DTYPE_FLOAT32}, {'f', 8, CKPT_DTYPE_FLOAT64},
        {'i', 1, CKPT_DTYPE_INT8}, {'i', 2, CKPT_DTYPE_INT16}, {'i', 4, CKPT_DTYPE_INT32}, {'i', 8, CKPT_DTYPE_INT64},
        {'u', 1, CKPT_DTYPE_UINT8}, {'u', 2, CKPT_DTYPE_UINT16}, {'u', 4, CKPT_DTYPE_UINT32},
        {'u', 8, CKPT_DTYPE_UINT64}, {'b', 1, CKPT_DTYPE_BOOL}, {'c', 8, CKPT_DTYPE_COMPLEX64},
        {'c', 16, CKPT_DTYPE_COMPLEX128},
    };
    for (size_t i = 0; i < CK_ARRAY_LEN(map); i++)
        if (map[i].kind == kind && map[i].size == size) {
            out->dt = map[i].dt;
            return true;
        }
    return false;
}

static bool is_global(const ckpt_value *v, const char *module, const char *name)
{
    return v && v->kind == CKPT_KIND_GLOBAL && strcmp(v->u.global.module, module) == 0 &&
           strcmp(v->u.global.name, name) == 0;
}

/* The element type a dtype value describes: a finished numpy.dtype node, or a generic numpy.dtype object. */
static bool dtype_of(const ckpt_value *v, np_dtype *out)
{
    if (!v) return false;
    if (v->kind == CKPT_KIND_DTYPE && v->type_name && strcmp(v->type_name, "numpy.dtype") == 0) {
        out->dt = (ckpt_dtype)v->u.dtype;
        out->big = v->flags & CK_NF_BIG_ENDIAN;
        return true;
    }
    if (v->kind != CKPT_KIND_OBJECT || strcmp(v->u.obj->module, "numpy") != 0 || strcmp(v->u.obj->name, "dtype") != 0)
        return false;
    const ck_object *o = v->u.obj;
    if (!o->args || o->args->kind != CKPT_KIND_TUPLE || o->args->u.seq.len < 1 || o->list_items || o->dict_items)
        return false;
    const ckpt_value *code = o->args->u.seq.items[0];
    if (code->kind != CKPT_KIND_STR || !parse_code(code->u.s.ptr, code->u.s.len, out)) return false;
    const ckpt_value *st = o->state;
    if (!st) return true;
    /* (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata]) */
    if (st->kind != CKPT_KIND_TUPLE || st->u.seq.len < 5) return false;
    const ckpt_value *order = st->u.seq.items[1];
    if (order->kind != CKPT_KIND_STR || order->u.s.len != 1) return false;
    for (int i = 2; i <= 4; i++)
        if (st->u.seq.items[i]->kind != CKPT_KIND_NONE) return false; /* subarray / structured */
    switch (order->u.s.ptr[0]) {
    case '>': out->big = true; break;
    case '<':
    case '|':
    case '=': out->big = false; break; /* '=' is never written by numpy's pickler; taken as little */
    default: return false;
    }
    return true;
}

ckpt_status ck_h_np_dtype(ckpt_handler_ctx *ctx, const ckpt_value *node, void *user, ckpt_value **out, ckpt_error *err)
{
    (void)user;
    np_dtype d;
    if (!dtype_of(node, &d)) return DECLINE;
    ckpt_value *v = ck_new_dtype(ck_handler_store(ctx), (uint8_t)d.dt);
    if (!v) return ck_out_of_memory(ck_handler_store(ctx), err);
    v->type_name = "numpy.dtype";
    if (d.big && ckpt_dtype_itemsize(d.dt) > 1) v->flags |= CK_NF_BIG_ENDIAN;
    *out = v;
    return CKPT_OK;
}

/* Copies n bytes of elements to little-endian order (a malloc'd buffer when swapping, else p itself). */
static const uint8_t *to_little(const uint8_t *p, size_t n, const np_dtype *d, uint8_t **owned)
{
    *owned = NULL;
    unsigned unit = ck_dtype_info_of(d->dt)->swap_unit;
    if (!d->big || unit <= 1 || n == 0) return p;
    uint8_t *b = malloc(n);
    if (!b) return NULL;
    memcpy(b, p, n);
    ck_swap_elements(b, n, unit);
    *owned = b;
    return b;
}

/* A tensor from shape + dtype + raw bytes; order 'F' gives column-major strides. */
static ckpt_status make_array(ckpt_handler_ctx *ctx, const ckpt_value *shape, const np_dtype *d, bool fortran,
                              const ckpt_value *raw, const char *who, ckpt_value **out, ckpt_error *err)
{
    if (!shape || shape->kind != CKPT_KIND_TUPLE) return DECLINE;
    if (!raw || (raw->kind != CKPT_KIND_BYTES && raw->kind != CKPT_KIND_BYTEARRAY)) return DECLINE; /* object arrays */
    uint32_t ndim = shape->u.seq.len;
    int64_t dims[64], strides[64];
    if (ndim > 64) return ck_error_set(err, CKPT_ERR_LIMIT, "%s: array of %u dimensions", who, ndim);
    uint64_t numel = 1;
    for (uint32_t i = 0; i < ndim; i++) {
        const ckpt_value *x = shape->u.seq.items[i];
        if (!ck_is_small_int(x) || ck_small_int(x) < 0)
            return ck_error_set(err, CKPT_ERR_PICKLE, "%s: shape item %u is not a non-negative int", who, i);
        dims[i] = ck_small_int(x);
        if (ck_mul_overflow_u64(numel, (uint64_t)dims[i], &numel))
            return ck_error_set(err, CKPT_ERR_TENSOR, "%s: number of elements overflows", who);
    }
    size_t itemsize = ckpt_dtype_itemsize(d->dt);
    uint64_t nbytes;
    if (ck_mul_overflow_u64(numel, itemsize, &nbytes) || nbytes != raw->u.s.len)
        return ck_error_set(err, CKPT_ERR_TENSOR, "%s: %llu elements of %s need %llu bytes, the pickle has %zu", who,
                            (unsigned long long)numel, ckpt_dtype_name(d->dt), (unsigned long long)numel * itemsize,
                            raw->u.s.len);
    int64_t acc = 1;
    for (uint32_t k = 0; k < ndim; k++) {
        uint32_t i = fortran ? k : ndim - 1 - k; /* fastest-varying dimension first */
        strides[i] = acc;
        /* numpy's _array_fill_strides: a 0-size dimension does not scale the others */
        if (dims[i] > 1 && ck_mul_overflow_i64(acc, dims[i], &acc))
            return ck_error_set(err, CKPT_ERR_TENSOR, "%s: strides overflow", who);
    }
    uint8_t *owned;
    const uint8_t *p = to_little((const uint8_t *)raw->u.s.ptr, raw->u.s.len, d, &owned);
    if (!p) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    ckpt_status s = ckpt_handler_new_tensor(ctx, d->dt, ndim, dims, strides, p, raw->u.s.len, out, err);
    free(owned);
    if (s) return s;
    return ckpt_handler_set_type_name(ctx, *out, "numpy.ndarray", err);
}

/* ndarray.__setstate__((version, shape, dtype, is_fortran, raw)) or the 4-item form without version. */
static ckpt_status array_from_state(ckpt_handler_ctx *ctx, const ckpt_value *st, const char *who, ckpt_value **out,
                                    ckpt_error *err)
{
    if (!st || st->kind != CKPT_KIND_TUPLE || (st->u.seq.len != 5 && st->u.seq.len != 4)) return DECLINE;
    ckpt_value *const *it = st->u.seq.items + (st->u.seq.len == 5 ? 1 : 0);
    if (st->u.seq.len == 5 && (!ck_is_small_int(st->u.seq.items[0]) || ck_small_int(st->u.seq.items[0]) != 1))
        return DECLINE; /* an unknown state version */
    np_dtype d;
    if (!dtype_of(it[1], &d)) return DECLINE;
    if (!ck_is_small_int(it[2])) return DECLINE;
    return make_array(ctx, it[0], &d, ck_small_int(it[2]) != 0, it[3], who, out, err);
}

/* numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b') finished by BUILD. */
ckpt_status ck_h_np_reconstruct(ckpt_handler_ctx *ctx, const ckpt_value *node, void *user, ckpt_value **out,
                                ckpt_error *err)
{
    (void)user;
    const ck_object *o = node->u.obj;
    if (!o->args || o->args->kind != CKPT_KIND_TUPLE || o->args->u.seq.len < 1 || o->list_items || o->dict_items)
        return DECLINE;
    if (!is_global(o->args->u.seq.items[0], "numpy", "ndarray")) return DECLINE; /* a subclass (matrix, masked) */
    return array_from_state(ctx, o->state, "numpy array", out, err);
}

/* numpy.ndarray built directly (NEWOBJ / REDUCE) and finished by BUILD with the same state. */
ckpt_status ck_h_np_ndarray(ckpt_handler_ctx *ctx, const ckpt_value *node, void *user, ckpt_value **out, ckpt_error *err)
{
    (void)user;
    if (node->u.obj->list_items || node->u.obj->dict_items) return DECLINE;
    return array_from_state(ctx, node->u.obj->state, "numpy array", out, err);
}

/* numpy.core.numeric._frombuffer(buf, dtype, shape, order). */
ckpt_status ck_h_np_frombuffer(ckpt_handler_ctx *ctx, const ckpt_value *node, void *user, ckpt_value **out,
                               ckpt_error *err)
{
    (void)user;
    const ck_object *o = node->u.obj;
    if (!o->args || o->args->kind != CKPT_KIND_TUPLE || o->args->u.seq.len != 4 || o->state || o->list_items ||
        o->dict_items)
        return DECLINE;
    ckpt_value *const *a = o->args->u.seq.items;
    np_dtype d;
    if (!dtype_of(a[1], &d)) return DECLINE;
    if (a[3]->kind != CKPT_KIND_STR || a[3]->u.s.len != 1 || (a[3]->u.s.ptr[0] != 'C' && a[3]->u.s.ptr[0] != 'F'))
        return DECLINE;
    return make_array(ctx, a[2], &d, a[3]->u.s.ptr[0] == 'F', a[0], "numpy _frombuffer", out, err);
}

static double half_to_double(uint16_t h)
{
    int exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    double v;
    if (exp == 0) v = ldexp(man, -24);
    else if (exp == 31) v = man ? NAN : INFINITY;
    else v = ldexp(man | 0x400, exp - 25);
    return (h & 0x8000) ? -v : v;
}

/* numpy.core.multiarray.scalar(dtype, raw) -> bool / int / float / complex. */
ckpt_status ck_h_np_scalar(ckpt_handler_ctx *ctx, const ckpt_value *node, void *user, ckpt_value **out, ckpt_error *err)
{
    (void)user;
    const ck_object *o = node->u.obj;
    if (!o->args || o->args->kind != CKPT_KIND_TUPLE || o->args->u.seq.len != 2 || o->state || o->list_items ||
        o->dict_items)
        return DECLINE;
    np_dtype d;
    const ckpt_value *raw = o->args->u.seq.items[1];
    if (!dtype_of(o->args->u.seq.items[0], &d) || raw->kind != CKPT_KIND_BYTES) return DECLINE;
    size_t size = ckpt_dtype_itemsize(d.dt);
    if (raw->u.s.len != size)
        return ck_error_set(err, CKPT_ERR_PICKLE, "numpy scalar of %s needs %zu bytes, the pickle has %zu",
                            ckpt_dtype_name(d.dt), size, raw->u.s.len);
    uint8_t b[16];
    unsigned unit = ck_dtype_info_of(d.dt)->swap_unit;
    memcpy(b, raw->u.s.ptr, size);
    if (d.big) ck_swap_elements(b, size, unit); /* to little-endian */
    ck_store *st = ck_handler_store(ctx);
    ckpt_value *v = NULL;
    switch (d.dt) {
    case CKPT_DTYPE_BOOL: v = ck_new_bool(st, b[0] != 0); break;
    case CKPT_DTYPE_INT8:
    case CKPT_DTYPE_INT16:
    case CKPT_DTYPE_INT32:
    case CKPT_DTYPE_INT64: v = ck_new_int_le(st, b, size); break;
    case CKPT_DTYPE_UINT8:
    case CKPT_DTYPE_UINT16:
    case CKPT_DTYPE_UINT32:
    case CKPT_DTYPE_UINT64:
        b[size] = 0; /* unsigned: one more zero byte makes the two's complement value positive */
        v = ck_new_int_le(st, b, size + 1);
        break;
    case CKPT_DTYPE_FLOAT16: v = ck_new_float(st, half_to_double(ck_le16(b))); break;
    case CKPT_DTYPE_FLOAT32: {
        uint32_t bits = ck_le32(b);
        float f;
        memcpy(&f, &bits, 4);
        v = ck_new_float(st, (double)f);
        break;
    }
    case CKPT_DTYPE_FLOAT64: {
        uint64_t bits = ck_le64(b);
        double f;
        memcpy(&f, &bits, 8);
        v = ck_new_float(st, f);
        break;
    }
    case CKPT_DTYPE_COMPLEX64:
    case CKPT_DTYPE_COMPLEX128:
        v = ck_new(st, CKPT_KIND_COMPLEX);
        if (v && d.dt == CKPT_DTYPE_COMPLEX64) {
            uint32_t re = ck_le32(b), im = ck_le32(b + 4);
            float fr, fi;
            memcpy(&fr, &re, 4);
            memcpy(&fi, &im, 4);
            v->u.c.re = fr;
            v->u.c.im = fi;
        } else if (v) {
            uint64_t re = ck_le64(b), im = ck_le64(b + 8);
            memcpy(&v->u.c.re, &re, 8);
            memcpy(&v->u.c.im, &im, 8);
        }
        break;
    default: return DECLINE;
    }
    if (!v) return ck_out_of_memory(st, err);
    *out = v;
    return CKPT_OK;
}

void ck_numpy_dtype_str(const ckpt_value *v, char *buf, size_t cap)
{
    ckpt_dtype dt = (ckpt_dtype)v->u.dtype;
    if (!(v->flags & CK_NF_BIG_ENDIAN)) {
        snprintf(buf, cap, "%s", ckpt_dtype_name(dt)); /* numpy's names for these types are torch's */
        return;
    }
    char kind = dt == CKPT_DTYPE_FLOAT16 || dt == CKPT_DTYPE_FLOAT32 || dt == CKPT_DTYPE_FLOAT64 ? 'f'
                : dt == CKPT_DTYPE_COMPLEX64 || dt == CKPT_DTYPE_COMPLEX128                       ? 'c'
                : dt == CKPT_DTYPE_UINT16 || dt == CKPT_DTYPE_UINT32 || dt == CKPT_DTYPE_UINT64   ? 'u'
                                                                                                  : 'i';
    snprintf(buf, cap, ">%c%zu", kind, ckpt_dtype_itemsize(dt));
}
