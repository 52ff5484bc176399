/* value_api.c: the public accessors of include/ckpt/value.h. */
#include <stdlib.h>
#include <string.h>

#include "node.h"
#include "text.h"

ckpt_kind ckpt_value_kind(const ckpt_value *v) { return v ? (ckpt_kind)v->kind : CKPT_KIND_NONE; }
const char *ckpt_value_type_name(const ckpt_value *v) { return v ? ck_type_name(v) : "NoneType"; }

bool ckpt_value_bool(const ckpt_value *v) { return v && v->kind == CKPT_KIND_BOOL && v->u.b; }

ckpt_status ckpt_value_int64(const ckpt_value *v, int64_t *out)
{
    if (!v || !out || (v->kind != CKPT_KIND_INT && v->kind != CKPT_KIND_BOOL)) return CKPT_ERR_TYPE;
    if (v->flags & CK_NF_BIGINT) return CKPT_ERR_LIMIT;
    *out = ck_small_int(v);
    return CKPT_OK;
}

size_t ckpt_value_int_bytes(const ckpt_value *v, uint8_t scratch[8], const uint8_t **out)
{
    if (!v || !out || (v->kind != CKPT_KIND_INT && v->kind != CKPT_KIND_BOOL)) return 0;
    if (v->flags & CK_NF_BIGINT) {
        *out = v->u.big.bytes;
        return v->u.big.len;
    }
    int64_t x = ck_small_int(v);
    for (int i = 0; i < 8; i++) scratch[i] = (uint8_t)((uint64_t)x >> (8 * i));
    size_t n = 8;
    while (n > 1 && ((scratch[n - 1] == 0 && !(scratch[n - 2] & 0x80)) || (scratch[n - 1] == 0xff && (scratch[n - 2] & 0x80)))) n--;
    *out = scratch;
    return n;
}

char *ckpt_value_int_to_string(const ckpt_value *v)
{
    uint8_t scratch[8];
    const uint8_t *b;
    size_t n = ckpt_value_int_bytes(v, scratch, &b);
    if (!n) return NULL;
    return ck_le_to_decimal(b, n);
}

double ckpt_value_float(const ckpt_value *v)
{
    if (!v) return 0;
    if (v->kind == CKPT_KIND_FLOAT) return v->u.f;
    if (ck_is_small_int(v)) return (double)ck_small_int(v);
    return 0;
}

void ckpt_value_complex(const ckpt_value *v, double *re, double *im)
{
    double r = 0, i = 0;
    if (v && v->kind == CKPT_KIND_COMPLEX) { r = v->u.c.re; i = v->u.c.im; }
    else r = ckpt_value_float(v);
    if (re) *re = r;
    if (im) *im = i;
}

const char *ckpt_value_str(const ckpt_value *v, size_t *len)
{
    if (!v) return NULL;
    switch (v->kind) {
    case CKPT_KIND_STR:
    case CKPT_KIND_BYTES:
    case CKPT_KIND_BYTEARRAY:
    case CKPT_KIND_DEVICE:
        if (len) *len = v->u.s.len;
        return v->u.s.ptr;
    default: return NULL;
    }
}

ckpt_dtype ckpt_value_dtype(const ckpt_value *v) { return v && v->kind == CKPT_KIND_DTYPE ? (ckpt_dtype)v->u.dtype : CKPT_DTYPE_INVALID; }
const ckpt_tensor *ckpt_value_tensor(const ckpt_value *v) { return v && v->kind == CKPT_KIND_TENSOR ? v->u.tensor : NULL; }
const ckpt_storage *ckpt_value_storage(const ckpt_value *v) { return v && v->kind == CKPT_KIND_STORAGE ? v->u.storage : NULL; }
const ckpt_sparse *ckpt_value_sparse(const ckpt_value *v) { return v && v->kind == CKPT_KIND_SPARSE ? v->u.sparse : NULL; }

size_t ckpt_value_len(const ckpt_value *v)
{
    if (!v) return 0;
    switch (v->kind) {
    case CKPT_KIND_LIST:
    case CKPT_KIND_TUPLE:
    case CKPT_KIND_SET:
    case CKPT_KIND_FROZENSET: return v->u.seq.len;
    case CKPT_KIND_DICT: return v->u.dict.len;
    case CKPT_KIND_OBJECT:
    case CKPT_KIND_CALL: return v->u.obj->list_items ? v->u.obj->list_items->u.seq.len : 0;
    default: return 0;
    }
}

const ckpt_value *ckpt_value_item(const ckpt_value *v, size_t i)
{
    if (!v) return NULL;
    switch (v->kind) {
    case CKPT_KIND_LIST:
    case CKPT_KIND_TUPLE:
    case CKPT_KIND_SET:
    case CKPT_KIND_FROZENSET: return i < v->u.seq.len ? v->u.seq.items[i] : NULL;
    default: return NULL;
    }
}

const ckpt_value *ckpt_value_dict_key(const ckpt_value *v, size_t i)
{
    return v && v->kind == CKPT_KIND_DICT && i < v->u.dict.len ? v->u.dict.entries[i].key : NULL;
}
const ckpt_value *ckpt_value_dict_value(const ckpt_value *v, size_t i)
{
    return v && v->kind == CKPT_KIND_DICT && i < v->u.dict.len ? v->u.dict.entries[i].val : NULL;
}
const ckpt_value *ckpt_value_dict_get(const ckpt_value *v, const char *key)
{
    return key ? ck_dict_get_str(v, key, strlen(key)) : NULL;
}
const ckpt_value *ckpt_value_attrs(const ckpt_value *v) { return v ? v->attrs : NULL; }

static const ck_object *obj(const ckpt_value *v)
{
    return v && (v->kind == CKPT_KIND_OBJECT || v->kind == CKPT_KIND_CALL) ? v->u.obj : NULL;
}
const char *ckpt_value_global_module(const ckpt_value *v)
{
    if (v && v->kind == CKPT_KIND_GLOBAL) return v->u.global.module;
    return obj(v) ? obj(v)->module : NULL;
}
const char *ckpt_value_global_name(const ckpt_value *v)
{
    if (v && v->kind == CKPT_KIND_GLOBAL) return v->u.global.name;
    return obj(v) ? obj(v)->name : NULL;
}
const ckpt_value *ckpt_value_object_args(const ckpt_value *v) { return obj(v) ? obj(v)->args : NULL; }
const ckpt_value *ckpt_value_object_kwargs(const ckpt_value *v) { return obj(v) ? obj(v)->kwargs : NULL; }
const ckpt_value *ckpt_value_object_state(const ckpt_value *v) { return obj(v) ? obj(v)->state : NULL; }
const ckpt_value *ckpt_value_object_list_items(const ckpt_value *v) { return obj(v) ? obj(v)->list_items : NULL; }
const ckpt_value *ckpt_value_object_dict_items(const ckpt_value *v) { return obj(v) ? obj(v)->dict_items : NULL; }
