/*
 * json_out.c: the `ckpt inspect --json` document (docs/inspect-json.md), built with jansson from one
 * walk of the value tree.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_internal.h"
#include "dtype.h"
#include "errors.h"
#include "globals.h"
#include "json_util.h"
#include "tensors.h"
#include "text.h"
#include "walk.h"

json_t *ck_json_str(const char *p, size_t n)
{
    if (ck_utf8_valid((const uint8_t *)p, n, false)) return json_stringn(p, n);
    char *buf = malloc(n * 3 + 1);
    if (!buf) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t len = 1;
        uint8_t c = (uint8_t)p[i];
        if (c >= 0xf0) len = 4; else if (c >= 0xe0) len = 3; else if (c >= 0xc0) len = 2;
        if (len <= n - i && ck_utf8_valid((const uint8_t *)p + i, len, false)) {
            memcpy(buf + o, p + i, len);
            o += len;
            i += len;
        } else {
            memcpy(buf + o, "\xef\xbf\xbd", 3);
            o += 3;
            i += len <= n - i ? len : 1;
        }
    }
    json_t *j = json_stringn(buf, o);
    free(buf);
    return j;
}

#define jstr ck_json_str

char *ck_json_dump(json_t *doc, unsigned flags)
{
    size_t jflags = JSON_PRESERVE_ORDER | ((flags & CKPT_JSON_PRETTY) ? JSON_INDENT(2) : JSON_COMPACT);
    /* copy into plain malloc memory: callers release it with ckpt_free whatever jansson's allocator is */
    char *text = json_dumps(doc, jflags), *out = NULL;
    if (text) {
        out = strdup(text);
        json_free_t free_fn;
        json_get_alloc_funcs(NULL, &free_fn);
        free_fn(text);
    }
    return out;
}

static json_t *jfloat(double d)
{
    char buf[40];
    ck_float_repr(d, buf, sizeof buf);
    return json_string(buf);
}

static json_t *jhex(const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char *buf = malloc(n * 2 + 1);
    if (!buf) return NULL;
    for (size_t i = 0; i < n; i++) {
        buf[2 * i] = hex[(uint8_t)p[i] >> 4];
        buf[2 * i + 1] = hex[(uint8_t)p[i] & 15];
    }
    json_t *j = json_stringn(buf, n * 2);
    free(buf);
    return j;
}

static json_t *jints(const int64_t *a, uint32_t n)
{
    json_t *arr = json_array();
    for (uint32_t i = 0; arr && i < n; i++) json_array_append_new(arr, json_integer(a[i]));
    return arr;
}

/* Element i of a 1-D float/int tensor as JSON: float repr strings, integers; null without data. */
static json_t *channel_values(const ckpt_tensor *t)
{
    if (!t || (t->numel && (!t->storage || !t->storage->data))) return json_null();
    json_t *arr = json_array();
    size_t isz = ckpt_dtype_itemsize((ckpt_dtype)t->dtype);
    for (int64_t i = 0; arr && i < t->shape[0]; i++) {
        const uint8_t *p = t->storage->data + (size_t)(t->storage_offset + i * t->stride[0]) * isz;
        switch ((ckpt_dtype)t->dtype) {
        case CKPT_DTYPE_FLOAT64: { double d; memcpy(&d, p, 8); json_array_append_new(arr, jfloat(d)); break; }
        case CKPT_DTYPE_FLOAT32: { float f; memcpy(&f, p, 4); json_array_append_new(arr, jfloat(f)); break; }
        case CKPT_DTYPE_INT64: { int64_t v; memcpy(&v, p, 8); json_array_append_new(arr, json_integer(v)); break; }
        case CKPT_DTYPE_INT32: { int32_t v; memcpy(&v, p, 4); json_array_append_new(arr, json_integer(v)); break; }
        default: json_array_append_new(arr, json_null()); break;
        }
    }
    return arr;
}

/* Fields only some tensors have: device (no storage, or another device), class, quantization. */
static void tensor_extras(json_t *o, const ckpt_tensor *t)
{
    if (t->device) json_object_set_new(o, "device", json_string(t->device));
    if (t->subclass) json_object_set_new(o, "type", json_string(t->type_name));
    const ck_quant *q = t->quant;
    if (!q) return;
    json_object_set_new(o, "qscheme", json_string(ckpt_qscheme_name((ckpt_qscheme)q->qscheme)));
    if (q->axis < 0) {
        json_object_set_new(o, "q_scale", jfloat(q->scale));
        json_object_set_new(o, "q_zero_point", json_integer(q->zero_point));
    } else {
        json_object_set_new(o, "q_axis", json_integer(q->axis));
        json_object_set_new(o, "q_scales", channel_values(q->scales));
        json_object_set_new(o, "q_zero_points", channel_values(q->zero_points));
    }
}

typedef struct {
    json_t *tensors, *values;
    unsigned flags;
    ckpt_error *err;
    ckpt_status status;
    uint64_t bytes, budget; /* approximate document size so far; its limit (the load's CKPT_LIMIT_MAX_ALLOC) */
} json_ctx;

static json_t *tensor_entry(const char *path, size_t len, const ckpt_tensor *t, json_ctx *x)
{
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "key", jstr(path, len));
    json_object_set_new(o, "dtype", json_string(ckpt_dtype_name((ckpt_dtype)t->dtype)));
    json_object_set_new(o, "shape", jints(t->shape, t->ndim));
    json_object_set_new(o, "stride", jints(t->stride, t->ndim));
    json_object_set_new(o, "storage_offset", json_integer(t->storage_offset));
    /* null for tensors without a storage record (a NumPy array's bytes live inside the pickle) */
    bool keyed = t->storage && !(t->storage->flags & CK_SF_INLINE);
    json_object_set_new(o, "storage_key", keyed ? json_string(t->storage->key) : json_null());
    json_object_set_new(o, "storage_nbytes", json_integer(t->storage ? (json_int_t)t->storage->nbytes : 0));
    json_object_set_new(o, "requires_grad", json_boolean(t->requires_grad));
    json_object_set_new(o, "is_parameter", json_boolean(t->is_parameter));
    tensor_extras(o, t);
    if (!(x->flags & CKPT_JSON_NO_DIGEST)) {
        uint64_t h;
        if (ckpt_tensor_xxh3_64(t, &h, NULL) == CKPT_OK) {
            char buf[17];
            snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
            json_object_set_new(o, "xxh3_64", json_string(buf));
        } else {
            json_object_set_new(o, "xxh3_64", json_null());
        }
    }
    return o;
}

static json_t *value_entry(const char *path, size_t len, const ckpt_value *v)
{
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "key", jstr(path, len));
    json_object_set_new(o, "type", json_string(ck_type_name(v)));
    switch (v->kind) {
    case CKPT_KIND_NONE: json_object_set_new(o, "value", json_null()); break;
    case CKPT_KIND_BOOL: json_object_set_new(o, "value", json_boolean(v->u.b)); break;
    case CKPT_KIND_INT: {
        char *dec = ckpt_value_int_to_string(v);
        json_object_set_new(o, "value", dec ? json_string(dec) : json_null());
        free(dec);
        break;
    }
    case CKPT_KIND_FLOAT: json_object_set_new(o, "value", jfloat(v->u.f)); break;
    case CKPT_KIND_COMPLEX: {
        json_t *pair = json_array();
        json_array_append_new(pair, jfloat(v->u.c.re));
        json_array_append_new(pair, jfloat(v->u.c.im));
        json_object_set_new(o, "value", pair);
        break;
    }
    case CKPT_KIND_STR:
    case CKPT_KIND_DEVICE: json_object_set_new(o, "value", jstr(v->u.s.ptr, v->u.s.len)); break;
    case CKPT_KIND_BYTES:
    case CKPT_KIND_BYTEARRAY: json_object_set_new(o, "hex", jhex(v->u.s.ptr, v->u.s.len)); break;
    case CKPT_KIND_LIST:
    case CKPT_KIND_TUPLE:
    case CKPT_KIND_SET:
    case CKPT_KIND_FROZENSET: json_object_set_new(o, "len", json_integer(v->u.seq.len)); break;
    case CKPT_KIND_DICT: json_object_set_new(o, "len", json_integer(v->u.dict.len)); break;
    case CKPT_KIND_DTYPE: {
        char buf[64];
        if (v->type_name && strcmp(v->type_name, "numpy.dtype") == 0)
            ck_numpy_dtype_str(v, buf, sizeof buf); /* str(numpy.dtype): "float64", ">f8" */
        else
            snprintf(buf, sizeof buf, "torch.%s", ckpt_dtype_name((ckpt_dtype)v->u.dtype));
        json_object_set_new(o, "value", json_string(buf));
        break;
    }
    case CKPT_KIND_GLOBAL:
    case CKPT_KIND_CALL: { /* the global, or the function a call node records (its children are its arguments) */
        const char *m = v->kind == CKPT_KIND_GLOBAL ? v->u.global.module : v->u.obj->module;
        const char *n = v->kind == CKPT_KIND_GLOBAL ? v->u.global.name : v->u.obj->name;
        size_t ml = strlen(m), nl = strlen(n);
        char *buf = malloc(ml + nl + 2);
        if (!buf) break;
        memcpy(buf, m, ml);
        buf[ml] = '.';
        memcpy(buf + ml + 1, n, nl + 1);
        json_object_set_new(o, "value", jstr(buf, ml + nl + 1));
        free(buf);
        break;
    }
    case CKPT_KIND_SPARSE: {
        const ckpt_sparse *sp = v->u.sparse;
        json_object_set_new(o, "layout", json_string(ckpt_layout_name((ckpt_layout)sp->layout)));
        json_object_set_new(o, "dtype", json_string(ckpt_dtype_name((ckpt_dtype)sp->dtype)));
        json_object_set_new(o, "shape", jints(sp->shape, sp->ndim));
        json_object_set_new(o, "requires_grad", json_boolean(sp->requires_grad));
        if (sp->layout == CKPT_LAYOUT_SPARSE_COO) json_object_set_new(o, "is_coalesced", json_boolean(sp->coalesced));
        break;
    }
    case CKPT_KIND_STORAGE:
        json_object_set_new(o, "storage_key", json_string(v->u.storage->key));
        json_object_set_new(o, "storage_nbytes", json_integer((json_int_t)v->u.storage->nbytes));
        break;
    default: break;
    }
    return o;
}

/* Text an entry adds to the document, roughly: its key, its value's text, and the fixed fields. */
static uint64_t entry_size(size_t path_len, const ckpt_value *v)
{
    uint64_t n = (uint64_t)path_len + 160;
    switch (v->kind) {
    case CKPT_KIND_STR:
    case CKPT_KIND_DEVICE: n += v->u.s.len; break;
    case CKPT_KIND_BYTES:
    case CKPT_KIND_BYTEARRAY: n += 2 * (uint64_t)v->u.s.len; break;
    case CKPT_KIND_INT: if (v->flags & CK_NF_BIGINT) n += 3 * (uint64_t)v->u.big.len; break;
    case CKPT_KIND_TENSOR: n += 24 * (uint64_t)v->u.tensor->ndim; break;
    default: break;
    }
    return n;
}

static ckpt_walk_action json_visit(const char *path, size_t len, const ckpt_value *v, void *user)
{
    json_ctx *x = user;
    /* paths repeat their ancestors' keys, so the document can be far larger than the file: bound it */
    x->bytes += entry_size(len, v);
    if (x->bytes > x->budget) {
        x->status = ck_error_set(x->err, CKPT_ERR_LIMIT,
                                 "the JSON document would exceed %llu bytes (the load's CKPT_LIMIT_MAX_ALLOC)",
                                 (unsigned long long)x->budget);
        return CKPT_WALK_STOP;
    }
    json_t *e = v->kind == CKPT_KIND_TENSOR ? tensor_entry(path, len, v->u.tensor, x) : value_entry(path, len, v);
    if (!e || json_array_append_new(v->kind == CKPT_KIND_TENSOR ? x->tensors : x->values, e) != 0) {
        x->status = ck_error_set(x->err, CKPT_ERR_NOMEM, "out of memory building JSON");
        return CKPT_WALK_STOP;
    }
    return CKPT_WALK_CONTINUE;
}

ckpt_status ckpt_checkpoint_to_json(const ckpt_checkpoint *c, const char *file_label, unsigned flags, char **out,
                                    ckpt_error *err)
{
    if (!c || !out) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL checkpoint or output");
    *out = NULL;
    json_t *doc = json_object();
    json_ctx x = {json_array(), json_array(), flags, err, CKPT_OK, 0, c->limits.max_alloc};
    json_t *globals = json_array();
    if (!doc || !x.tensors || !x.values || !globals) {
        json_decref(doc); json_decref(x.tensors); json_decref(x.values); json_decref(globals);
        return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory building JSON");
    }
    const char *label = file_label ? file_label : "";
    json_object_set_new(doc, "file", jstr(label, strlen(label)));
    json_object_set_new(doc, "format", json_string(ckpt_format_name(c->format)));
    json_object_set_new(doc, "archive_prefix", jstr(c->prefix, strlen(c->prefix)));
    json_object_set_new(doc, "byteorder", json_string(c->big_endian ? "big" : "little"));
    ckpt_status s = c->root ? ck_walk(c->root, c->store.next_id, c->limits.max_depth, json_visit, &x, err) : CKPT_OK;
    if (!s) s = x.status;
    for (size_t i = 0; i < c->nglobals; i++) json_array_append_new(globals, json_string(c->globals[i]));
    json_object_set_new(doc, "tensors", x.tensors);
    json_object_set_new(doc, "values", x.values);
    json_object_set_new(doc, "globals", globals);
    if (!s) {
        *out = ck_json_dump(doc, flags);
        if (!*out) s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory writing JSON");
    }
    json_decref(doc);
    return s;
}
