/*
 * builder.c: the public builder API (include/ckpt/writer.h). A builder owns an arena of ordinary value
 * nodes, the same structs a load produces, so one pickler and one safetensors writer serve loaded and
 * built trees alike. Every node a builder creates carries the builder's tag (node->spare), so calls
 * that modify a container can refuse nodes they do not own (a loaded checkpoint is immutable and may be
 * read by other threads).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/writer.h"
#include "dtype.h"
#include "node.h"
#include "tensors.h"
#include "text.h"
#include "util.h"

struct ckpt_builder {
    ck_store store;
    uint16_t tag;
    uint32_t nstorages;
};

#define BUILDER_MAX_NDIM 64u

static atomic_uint next_tag = 0;

ckpt_builder *ckpt_builder_new(void)
{
    ckpt_builder *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    ck_store_init(&b->store, UINT64_MAX);
    unsigned t;
    do t = atomic_fetch_add(&next_tag, 1u) & 0xffffu; while (t == 0); /* 0 marks loaded nodes */
    b->tag = (uint16_t)t;
    return b;
}

void ckpt_builder_free(ckpt_builder *b)
{
    if (!b) return;
    ck_store_release(&b->store);
    free(b);
}

static ckpt_value *own(ckpt_builder *b, ckpt_value *v)
{
    if (v) v->spare = b->tag;
    return v;
}

static bool owned(const ckpt_builder *b, const ckpt_value *v) { return v && v->spare == b->tag; }

static ckpt_value *nomem(ckpt_error *err)
{
    ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    return NULL;
}

ckpt_value *ckpt_builder_none(ckpt_builder *b) { return b ? own(b, ck_new(&b->store, CKPT_KIND_NONE)) : NULL; }
ckpt_value *ckpt_builder_bool(ckpt_builder *b, bool v) { return b ? own(b, ck_new_bool(&b->store, v)) : NULL; }
ckpt_value *ckpt_builder_int(ckpt_builder *b, int64_t v) { return b ? own(b, ck_new_int(&b->store, v)) : NULL; }
ckpt_value *ckpt_builder_float(ckpt_builder *b, double v) { return b ? own(b, ck_new_float(&b->store, v)) : NULL; }

ckpt_value *ckpt_builder_int_bytes(ckpt_builder *b, const uint8_t *le, size_t len)
{
    if (!b || !le || !len) return NULL;
    return own(b, ck_new_int_le(&b->store, le, len));
}

ckpt_value *ckpt_builder_int_decimal(ckpt_builder *b, const char *text, ckpt_error *err)
{
    if (!b || !text) {
        ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL argument");
        return NULL;
    }
    size_t n = strlen(text), cap = n / 2 + 3; /* a decimal digit is < 4 bits */
    uint8_t *buf = malloc(cap);
    if (!buf) return nomem(err);
    size_t len = ck_decimal_to_le(text, n, buf, cap);
    ckpt_value *v = NULL;
    if (!len) ck_error_set(err, CKPT_ERR_INVALID_ARG, "'%.60s' is not a decimal integer ([+-]digits)", text);
    else if (!(v = own(b, ck_new_int_le(&b->store, buf, len)))) nomem(err);
    free(buf);
    return v;
}

ckpt_value *ckpt_builder_complex(ckpt_builder *b, double re, double im)
{
    if (!b) return NULL;
    ckpt_value *v = own(b, ck_new(&b->store, CKPT_KIND_COMPLEX));
    if (v) {
        v->u.c.re = re;
        v->u.c.im = im;
    }
    return v;
}

static ckpt_status make_str(ckpt_builder *b, const char *s, size_t len, ckpt_value **out, ckpt_error *err)
{
    *out = NULL;
    if (!b || (!s && len)) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL argument");
    if (len == CKPT_NUL_TERMINATED) len = s ? strlen(s) : 0;
    if (!ck_utf8_valid((const uint8_t *)(s ? s : ""), len, false))
        return ck_error_set(err, CKPT_ERR_INVALID_ARG, "string is not valid UTF-8");
    *out = own(b, ck_new_bytes_kind(&b->store, CKPT_KIND_STR, s ? s : "", len));
    return *out ? CKPT_OK : ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
}

ckpt_value *ckpt_builder_str(ckpt_builder *b, const char *s, size_t len, ckpt_error *err)
{
    ckpt_value *v;
    make_str(b, s, len, &v, err);
    return v;
}

ckpt_value *ckpt_builder_bytes(ckpt_builder *b, const void *p, size_t len)
{
    if (!b || (!p && len)) return NULL;
    return own(b, ck_new_bytes_kind(&b->store, CKPT_KIND_BYTES, p ? p : "", len));
}

ckpt_value *ckpt_builder_bytearray(ckpt_builder *b, const void *p, size_t len)
{
    if (!b || (!p && len)) return NULL;
    return own(b, ck_new_bytes_kind(&b->store, CKPT_KIND_BYTEARRAY, p ? p : "", len));
}

ckpt_value *ckpt_builder_dtype(ckpt_builder *b, ckpt_dtype dtype, ckpt_error *err)
{
    if (!b || ckpt_dtype_itemsize(dtype) == 0) {
        ck_error_set(err, CKPT_ERR_INVALID_ARG, "invalid dtype %d", (int)dtype);
        return NULL;
    }
    ckpt_value *v = own(b, ck_new_dtype(&b->store, (uint8_t)dtype));
    return v ? v : nomem(err);
}

ckpt_value *ckpt_builder_device(ckpt_builder *b, const char *device, ckpt_error *err)
{
    if (!b || !device) {
        ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL argument");
        return NULL;
    }
    /* torch.device syntax: a lowercase type, optionally ":<index>" */
    size_t n = strlen(device), i = 0;
    bool ok = n > 0 && n <= 64 && ((device[0] >= 'a' && device[0] <= 'z') || device[0] == '_');
    while (ok && i < n && device[i] != ':') {
        char c = device[i++];
        ok = (c >= 'a' && c <= 'z') || c == '_' || (c >= '0' && c <= '9');
    }
    if (ok && i < n) {
        ok = i + 1 < n && i + 20 >= n;
        for (size_t k = i + 1; ok && k < n; k++) ok = device[k] >= '0' && device[k] <= '9';
    }
    if (!ok) {
        ck_error_set(err, CKPT_ERR_INVALID_ARG, "'%.64s' is not a device string like 'cpu' or 'cuda:0'", device);
        return NULL;
    }
    ckpt_value *v = own(b, ck_new_bytes_kind(&b->store, CKPT_KIND_DEVICE, device, n));
    return v ? v : nomem(err);
}

ckpt_value *ckpt_builder_size(ckpt_builder *b, const int64_t *dims, size_t ndim, ckpt_error *err)
{
    if (!b || (!dims && ndim)) {
        ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL argument");
        return NULL;
    }
    ckpt_value *t = own(b, ck_new_seq(&b->store, CKPT_KIND_TUPLE, ndim));
    if (!t) return nomem(err);
    for (size_t i = 0; i < ndim; i++) {
        if (dims[i] < 0) {
            ck_error_set(err, CKPT_ERR_INVALID_ARG, "torch.Size: negative size %lld", (long long)dims[i]);
            return NULL;
        }
        if (!(t->u.seq.items[i] = own(b, ck_new_int(&b->store, dims[i])))) return nomem(err);
    }
    t->u.seq.len = (uint32_t)ndim;
    t->type_name = "torch.Size";
    return t;
}

ckpt_value *ckpt_builder_list(ckpt_builder *b) { return b ? own(b, ck_new_seq(&b->store, CKPT_KIND_LIST, 0)) : NULL; }
ckpt_value *ckpt_builder_tuple(ckpt_builder *b) { return b ? own(b, ck_new_seq(&b->store, CKPT_KIND_TUPLE, 0)) : NULL; }
ckpt_value *ckpt_builder_set(ckpt_builder *b) { return b ? own(b, ck_new_seq(&b->store, CKPT_KIND_SET, 0)) : NULL; }
ckpt_value *ckpt_builder_frozenset(ckpt_builder *b)
{
    return b ? own(b, ck_new_seq(&b->store, CKPT_KIND_FROZENSET, 0)) : NULL;
}
ckpt_value *ckpt_builder_dict(ckpt_builder *b) { return b ? own(b, ck_new_dict(&b->store, 0)) : NULL; }
ckpt_value *ckpt_builder_ordered_dict(ckpt_builder *b)
{
    ckpt_value *d = b ? own(b, ck_new_dict(&b->store, 0)) : NULL;
    if (d) d->type_name = "collections.OrderedDict";
    return d;
}

/*
 * Hashing a tuple or frozenset key caches the hash in the node. A key (or a sub-tuple of it) that a
 * loaded checkpoint owns and that has no cached hash yet would be written to: refuse it.
 */
static ckpt_status check_key_nodes(const ckpt_builder *b, const ckpt_value *key, ckpt_error *err)
{
    if (key->kind != CKPT_KIND_TUPLE && key->kind != CKPT_KIND_FROZENSET) return CKPT_OK;
    size_t cap = 16, top = 0;
    const ckpt_value **stack = malloc(cap * sizeof *stack);
    if (!stack) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    stack[top++] = key;
    ckpt_status s = CKPT_OK;
    while (top && !s) {
        const ckpt_value *v = stack[--top];
        if (v->flags & CK_NF_HASHED) continue;
        if (!owned(b, v)) {
            s = ck_error_set(err, CKPT_ERR_INVALID_ARG,
                             "a tuple from a loaded checkpoint cannot be used as a dict key or set item here; build "
                             "the key with this builder");
            break;
        }
        for (uint32_t i = 0; i < v->u.seq.len; i++) {
            const ckpt_value *c = v->u.seq.items[i];
            if (c->kind != CKPT_KIND_TUPLE && c->kind != CKPT_KIND_FROZENSET) continue;
            if (top == cap) {
                const ckpt_value **n = realloc(stack, 2 * cap * sizeof *stack);
                if (!n) { s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory"); break; }
                stack = n;
                cap *= 2;
            }
            stack[top++] = c;
        }
    }
    free(stack);
    return s;
}

static ckpt_status check_container(const ckpt_builder *b, const ckpt_value *c, const char *what, ckpt_error *err)
{
    if (!b || !c) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL argument");
    if (!owned(b, c))
        return ck_error_set(err, CKPT_ERR_INVALID_ARG, "%s: the container was not created by this builder (values of a "
                            "loaded checkpoint are immutable)", what);
    return CKPT_OK;
}

ckpt_status ckpt_builder_append(ckpt_builder *b, ckpt_value *c, const ckpt_value *item, ckpt_error *err)
{
    ckpt_status s = check_container(b, c, "ckpt_builder_append", err);
    if (s) return s;
    if (!item) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL item");
    ckpt_value *it = (ckpt_value *)item; /* never modified unless owned (see check_key_nodes) */
    switch (c->kind) {
    case CKPT_KIND_LIST: return ck_seq_push(&b->store, c, it, err);
    case CKPT_KIND_TUPLE:
        if (c->flags & CK_NF_HASHED)
            return ck_error_set(err, CKPT_ERR_STATE, "this tuple is already a dict key or set item: finish a tuple "
                                "before using it as a key");
        if (c->type_name && it->kind != CKPT_KIND_INT)
            return ck_error_set(err, CKPT_ERR_INVALID_ARG, "torch.Size items must be ints");
        return ck_seq_push(&b->store, c, it, err);
    case CKPT_KIND_SET:
    case CKPT_KIND_FROZENSET:
        if (c->flags & CK_NF_HASHED)
            return ck_error_set(err, CKPT_ERR_STATE, "this frozenset is already a dict key or set item");
        if ((s = check_key_nodes(b, it, err))) return s;
        return ck_set_add(&b->store, c, it, err);
    default:
        return ck_error_set(err, CKPT_ERR_TYPE, "ckpt_builder_append: %s is not a list, tuple or set", ck_type_name(c));
    }
}

ckpt_status ckpt_builder_dict_set(ckpt_builder *b, ckpt_value *d, const ckpt_value *key, const ckpt_value *value,
                                  ckpt_error *err)
{
    ckpt_status s = check_container(b, d, "ckpt_builder_dict_set", err);
    if (s) return s;
    if (!key || !value) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL key or value");
    if (d->kind != CKPT_KIND_DICT) return ck_error_set(err, CKPT_ERR_TYPE, "ckpt_builder_dict_set: %s is not a dict", ck_type_name(d));
    if ((s = check_key_nodes(b, key, err))) return s;
    return ck_dict_set(&b->store, d, (ckpt_value *)key, (ckpt_value *)value, err);
}

ckpt_status ckpt_builder_dict_set_str(ckpt_builder *b, ckpt_value *d, const char *key, const ckpt_value *value,
                                      ckpt_error *err)
{
    if (!b || !key) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL argument");
    ckpt_status s = check_container(b, d, "ckpt_builder_dict_set_str", err);
    ckpt_value *k;
    if (!s) s = make_str(b, key, CKPT_NUL_TERMINATED, &k, err);
    return s ? s : ckpt_builder_dict_set(b, d, k, value, err);
}

ckpt_status ckpt_builder_set_attr(ckpt_builder *b, ckpt_value *d, const char *name, const ckpt_value *value,
                                  ckpt_error *err)
{
    ckpt_status s = check_container(b, d, "ckpt_builder_set_attr", err);
    if (s) return s;
    if (!name || !value) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL name or value");
    if (d->kind != CKPT_KIND_DICT || !d->type_name || strcmp(d->type_name, "collections.OrderedDict") != 0)
        return ck_error_set(err, CKPT_ERR_TYPE, "attributes can only be set on an OrderedDict (a plain dict has none)");
    if (!d->attrs && !(d->attrs = own(b, ck_new_dict(&b->store, 0)))) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    ckpt_value *k;
    if ((s = make_str(b, name, CKPT_NUL_TERMINATED, &k, err))) return s;
    return ck_dict_set(&b->store, d->attrs, k, (ckpt_value *)value, err);
}

/* ---- tensors ---- */

static bool writable_dtype(ckpt_dtype d)
{
    switch (d) {
    case CKPT_DTYPE_QINT8:
    case CKPT_DTYPE_QUINT8:
    case CKPT_DTYPE_QINT32:
    case CKPT_DTYPE_QUINT4X2:
    case CKPT_DTYPE_QUINT2X4: return false;
    default: return ckpt_dtype_itemsize(d) != 0 && !(d >= CKPT_DTYPE_UINT1 && d <= CKPT_DTYPE_INT7);
    }
}

const ckpt_storage *ckpt_builder_storage(ckpt_builder *b, ckpt_dtype dtype, const void *data, uint64_t nbytes,
                                         ckpt_error *err)
{
    if (!b) {
        ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL builder");
        return NULL;
    }
    if (!writable_dtype(dtype)) {
        ck_error_set(err, CKPT_ERR_UNSUPPORTED, "dtype %s cannot be saved as a plain tensor (quantized and sub-byte shell "
                     "dtypes need a tensor subclass)", ckpt_dtype_name(dtype));
        return NULL;
    }
    size_t itemsize = ckpt_dtype_itemsize(dtype);
    if (nbytes % itemsize != 0 || nbytes > INT64_MAX) {
        ck_error_set(err, CKPT_ERR_INVALID_ARG, "storage of %llu bytes is not a whole number of %s elements (%zu bytes)",
                     (unsigned long long)nbytes, ckpt_dtype_name(dtype), itemsize);
        return NULL;
    }
    if (!data && nbytes) {
        ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL data for a storage of %llu bytes", (unsigned long long)nbytes);
        return NULL;
    }
    ckpt_storage *s = ck_arena_zalloc(&b->store.arena, sizeof *s, _Alignof(ckpt_storage));
    char key[24];
    snprintf(key, sizeof key, "%u", b->nstorages);
    if (!s || !(s->key = ck_arena_strndup(&b->store.arena, key, strlen(key)))) return (const ckpt_storage *)nomem(err);
    s->location = "cpu";
    s->numel = nbytes / itemsize;
    s->nbytes = nbytes;
    s->data = data;
    s->index = b->nstorages++;
    s->dtype = (uint8_t)dtype;
    s->flags = CK_SF_RESOLVED;
    return s;
}

ckpt_value *ckpt_builder_tensor(ckpt_builder *b, const ckpt_storage *storage, ckpt_dtype dtype, size_t ndim,
                                const int64_t *shape, const int64_t *stride, int64_t storage_offset, unsigned flags,
                                ckpt_error *err)
{
    if (!b || !storage || (ndim && !shape)) {
        ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL argument");
        return NULL;
    }
    if (flags & ~(CKPT_TENSOR_REQUIRES_GRAD | CKPT_TENSOR_PARAMETER)) {
        ck_error_set(err, CKPT_ERR_INVALID_ARG, "unknown tensor flags 0x%x", flags);
        return NULL;
    }
    if (dtype == CKPT_DTYPE_INVALID) dtype = (ckpt_dtype)storage->dtype;
    if (!writable_dtype(dtype)) {
        ck_error_set(err, CKPT_ERR_UNSUPPORTED, "dtype %s cannot be saved as a plain tensor", ckpt_dtype_name(dtype));
        return NULL;
    }
    if (dtype != (ckpt_dtype)storage->dtype && !(storage->flags & CK_SF_UNTYPED)) {
        ck_error_set(err, CKPT_ERR_INVALID_ARG, "storage holds %s elements; a %s view needs an untyped storage (PyTorch "
                     "refuses to save one storage as two types)", ckpt_dtype_name((ckpt_dtype)storage->dtype),
                     ckpt_dtype_name(dtype));
        return NULL;
    }
    if (ndim > BUILDER_MAX_NDIM) {
        ck_error_set(err, CKPT_ERR_LIMIT, "%zu dimensions; at most %u", ndim, BUILDER_MAX_NDIM);
        return NULL;
    }
    ck_arena *a = &b->store.arena;
    ckpt_value *v = own(b, ck_new(&b->store, CKPT_KIND_TENSOR));
    ckpt_tensor *t = ck_arena_zalloc(a, sizeof *t, _Alignof(ckpt_tensor));
    int64_t *sh = ndim ? ck_arena_alloc(a, ndim * sizeof *sh, _Alignof(int64_t)) : NULL;
    int64_t *st = ndim ? ck_arena_alloc(a, ndim * sizeof *st, _Alignof(int64_t)) : NULL;
    if (!v || !t || (ndim && (!sh || !st))) return nomem(err);
    int64_t run = 1;
    for (size_t i = ndim; i-- > 0;) {
        sh[i] = shape[i];
        if (stride) {
            st[i] = stride[i];
        } else {
            st[i] = run;
            if (shape[i] > 0 && ck_mul_overflow_i64(run, shape[i], &run)) run = INT64_MAX; /* validate refuses */
        }
    }
    t->storage = (ckpt_storage *)storage; /* read, never written */
    t->shape = sh;
    t->stride = st;
    t->ndim = (uint32_t)ndim;
    t->storage_offset = storage_offset;
    t->dtype = (uint8_t)dtype;
    t->requires_grad = (flags & CKPT_TENSOR_REQUIRES_GRAD) != 0;
    t->is_parameter = (flags & CKPT_TENSOR_PARAMETER) != 0;
    t->type_name = t->is_parameter ? "torch.nn.parameter.Parameter" : "torch.Tensor";
    if (ck_tensor_validate(t, BUILDER_MAX_NDIM, err) != CKPT_OK) return NULL;
    v->u.tensor = t;
    return v;
}

ckpt_value *ckpt_builder_tensor_from_data(ckpt_builder *b, ckpt_dtype dtype, const void *data, size_t ndim,
                                          const int64_t *shape, unsigned flags, ckpt_error *err)
{
    if (!b || (ndim && !shape)) {
        ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL argument");
        return NULL;
    }
    uint64_t numel = 1, nbytes;
    for (size_t i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            ck_error_set(err, CKPT_ERR_INVALID_ARG, "negative size %lld in dimension %zu", (long long)shape[i], i);
            return NULL;
        }
        if (ck_mul_overflow_u64(numel, (uint64_t)shape[i], &numel)) {
            ck_error_set(err, CKPT_ERR_INVALID_ARG, "number of elements overflows");
            return NULL;
        }
    }
    if (ck_mul_overflow_u64(numel, ckpt_dtype_itemsize(dtype), &nbytes)) {
        ck_error_set(err, CKPT_ERR_INVALID_ARG, "tensor size overflows");
        return NULL;
    }
    const ckpt_storage *s = ckpt_builder_storage(b, dtype, data, nbytes, err);
    if (!s) return NULL;
    return ckpt_builder_tensor(b, s, dtype, ndim, shape, NULL, 0, flags, err);
}
