/*
 * globals_torch.c: torch globals of the default allowlist: torch.Size, torch.device, layouts and the
 * tensor rebuild functions. Argument lists follow torch/_utils.py (see docs/pytorch-format-notes.md §2).
 * Every tensor is checked against its storage before it exists (tensors.h).
 */
#include <stdio.h>
#include <string.h>

#include "dtype.h"
#include "text.h"
#include "globals.h"
#include "tensors.h"
#include "util.h"

ckpt_status ck_no_kwargs(const ck_reg_entry *e, ckpt_value *kwargs, ckpt_error *err)
{
    if (kwargs && kwargs->u.dict.len)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: keyword arguments are not accepted", e->module, e->name);
    return CKPT_OK;
}

CK_HANDLER(ck_h_size)
{
    ckpt_status s = ck_no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 0, 1, err);
    if (s) return s;
    ckpt_value *src = args->u.seq.len ? args->u.seq.items[0] : NULL;
    if (src && !ck_is_seq(src))
        return ck_error_set(err, CKPT_ERR_PICKLE, "torch.Size: argument must be a tuple of ints, got %s", ck_type_name(src));
    uint32_t n = src ? src->u.seq.len : 0;
    ckpt_value *t = ck_new_seq(u->store, CKPT_KIND_TUPLE, n);
    if (!t) return ck_out_of_memory(u->store, err);
    for (uint32_t i = 0; i < n; i++) {
        ckpt_value *x = src->u.seq.items[i];
        if (x->kind != CKPT_KIND_INT)
            return ck_error_set(err, CKPT_ERR_PICKLE, "torch.Size: item %u is a %s, not an int", i, ck_type_name(x));
        t->u.seq.items[i] = x;
    }
    t->u.seq.len = n;
    t->type_name = "torch.Size";
    *out = t;
    return CKPT_OK;
}

static bool valid_device_type(const char *p, size_t n)
{
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9'))) return false;
    }
    return true;
}

CK_HANDLER(ck_h_device)
{
    /* torch.device('cpu'), torch.device('cuda:0'), torch.device('cuda', 1) */
    ckpt_status s = ck_no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 1, 2, err);
    if (s) return s;
    const char *type;
    size_t tlen;
    if ((s = ck_arg_str(e, args, 0, &type, &tlen, err))) return s;
    char buf[96];
    const char *colon = memchr(type, ':', tlen);
    size_t base = colon ? (size_t)(colon - type) : tlen;
    if (!valid_device_type(type, base))
        return ck_error_set(err, CKPT_ERR_PICKLE, "torch.device: invalid device string '%.*s'", (int)CK_MIN(tlen, 64), type);
    if (colon) {
        int64_t idx;
        if (args->u.seq.len == 2 || ck_parse_decimal_i64(colon + 1, tlen - base - 1, &idx) != CK_INT_OK || idx < 0)
            return ck_error_set(err, CKPT_ERR_PICKLE, "torch.device: invalid device string '%.*s'", (int)CK_MIN(tlen, 64), type);
        snprintf(buf, sizeof buf, "%.*s:%lld", (int)base, type, (long long)idx);
    } else if (args->u.seq.len == 2) {
        ckpt_value *i = args->u.seq.items[1];
        if (i->kind == CKPT_KIND_NONE) {
            snprintf(buf, sizeof buf, "%.*s", (int)base, type);
        } else {
            int64_t idx;
            if ((s = ck_arg_int(e, args, 1, &idx, err))) return s;
            if (idx < 0) return ck_error_set(err, CKPT_ERR_PICKLE, "torch.device: negative device index %lld", (long long)idx);
            snprintf(buf, sizeof buf, "%.*s:%lld", (int)base, type, (long long)idx);
        }
    } else {
        snprintf(buf, sizeof buf, "%.*s", (int)base, type);
    }
    *out = ck_new_bytes_kind(u->store, CKPT_KIND_DEVICE, buf, strlen(buf));
    return *out ? CKPT_OK : ck_out_of_memory(u->store, err);
}

static const char *const layouts[] = {"strided", "sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc",
                                      "_mkldnn", "jagged"};

CK_HANDLER(ck_h_get_layout)
{
    ckpt_status s = ck_no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 1, 1, err);
    const char *name;
    if (!s) s = ck_arg_str(e, args, 0, &name, NULL, err);
    if (s) return s;
    if (strncmp(name, "torch.", 6) != 0) goto bad;
    for (size_t i = 0; i < CK_ARRAY_LEN(layouts); i++)
        if (strcmp(name + 6, layouts[i]) == 0) {
            ckpt_value *v = ck_new(u->store, CKPT_KIND_GLOBAL);
            if (!v) return ck_out_of_memory(u->store, err);
            v->u.global.module = "torch";
            v->u.global.name = layouts[i];
            v->type_name = "torch.layout";
            *out = v;
            return CKPT_OK;
        }
bad:
    return ck_error_set(err, CKPT_ERR_PICKLE, "torch.serialization._get_layout: unknown layout '%s'", name);
}

/* ---- tensors ---- */

ckpt_value *ck_tensor_node(ck_unpickler *u, ckpt_tensor **t)
{
    ckpt_value *v = ck_new(u->store, CKPT_KIND_TENSOR);
    *t = ck_arena_zalloc(&u->store->arena, sizeof **t, _Alignof(ckpt_tensor));
    if (!v || !*t) return NULL;
    v->u.tensor = *t;
    (*t)->type_name = "torch.Tensor";
    return v;
}

/*
 * The shared part of _rebuild_tensor{,_v2,_v3}: (storage, storage_offset, size, stride) at args[0..3].
 * dtype: the element type (INVALID: take the storage's).
 */
ckpt_status ck_rebuild_strided(ck_unpickler *u, const ck_reg_entry *e, ckpt_value *args, ckpt_dtype dtype,
                               ckpt_value **out, ckpt_tensor **tout, ckpt_error *err)
{
    ckpt_value *sv;
    ckpt_status s = ck_arg_kind(e, args, 0, CKPT_KIND_STORAGE, &sv, err);
    if (s) return s;
    ckpt_storage *st = sv->u.storage;
    if (dtype == CKPT_DTYPE_INVALID) {
        dtype = (ckpt_dtype)st->dtype;
    } else if (!(st->flags & CK_SF_UNTYPED) && (ckpt_dtype)st->dtype != dtype) {
        return ck_error_set(err, CKPT_ERR_TENSOR, "%s.%s: dtype %s does not match storage '%s' of %s", e->module, e->name,
                            ckpt_dtype_name(dtype), st->key, ckpt_dtype_name((ckpt_dtype)st->dtype));
    }
    if (st->flags & CK_SF_UNTYPED) {
        /* a big-endian file's untyped storage is swapped by the element size of the dtype viewing it */
        uint8_t unit = (uint8_t)ck_dtype_info_of(dtype)->swap_unit;
        if (st->view_swap && st->view_swap != unit) st->flags |= CK_SF_SWAP_MIXED;
        else st->view_swap = unit;
    }
    ckpt_tensor *t;
    ckpt_value *v = ck_tensor_node(u, &t);
    if (!v) return ck_out_of_memory(u->store, err);
    t->storage = st;
    t->dtype = (uint8_t)dtype;
    if ((s = ck_arg_int(e, args, 1, &t->storage_offset, err))) return s;
    uint32_t nsize, nstride;
    if ((s = ck_arg_int_tuple(u, e, args, 2, &t->shape, &nsize, err))) return s;
    if ((s = ck_arg_int_tuple(u, e, args, 3, &t->stride, &nstride, err))) return s;
    if (nsize != nstride)
        return ck_error_set(err, CKPT_ERR_TENSOR, "%s.%s: %u sizes but %u strides", e->module, e->name, nsize, nstride);
    t->ndim = nsize;
    if ((s = ck_tensor_validate(t, (uint32_t)CK_MIN(u->limits->max_ndim, UINT32_MAX), err))) return s;
    *out = v;
    *tout = t;
    return CKPT_OK;
}

/* requires_grad, backward_hooks (an OrderedDict, normally empty) and optional metadata. */
ckpt_status ck_grad_and_hooks(const ck_reg_entry *e, ckpt_value *args, size_t i, ckpt_tensor *t, ckpt_error *err)
{
    bool rg;
    ckpt_status s = ck_arg_bool(e, args, i, &rg, err);
    if (s) return s;
    t->requires_grad = rg;
    ckpt_value *hooks = args->u.seq.items[i + 1];
    if (hooks->kind != CKPT_KIND_DICT && hooks->kind != CKPT_KIND_NONE)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: backward_hooks must be a dict, got %s", e->module, e->name,
                            ck_type_name(hooks));
    if (hooks->kind == CKPT_KIND_DICT && hooks->u.dict.len) {
        t->extra = hooks;
        t->extra_kind = CK_TX_HOOKS;
    }
    return CKPT_OK;
}

static ckpt_status check_metadata(const ck_reg_entry *e, ckpt_value *args, size_t i, ckpt_tensor *t, ckpt_error *err)
{
    if (args->u.seq.len <= i) return CKPT_OK;
    ckpt_value *md = args->u.seq.items[i];
    if (md->kind == CKPT_KIND_NONE) return CKPT_OK;
    if (md->kind != CKPT_KIND_DICT)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: metadata must be a dict, got %s", e->module, e->name,
                            ck_type_name(md));
    /* {"conj": True} / {"neg": True} (torch's lazy conjugate / negative bits, getTensorMetadata): the
     * tensor's values are then not its stored elements, which is all libckpt hands out */
    static const char *const lazy[] = {"conj", "neg"};
    for (size_t k = 0; k < CK_ARRAY_LEN(lazy); k++) {
        const ckpt_value *b = ck_dict_get_str(md, lazy[k], strlen(lazy[k]));
        if (b && (b->kind != CKPT_KIND_BOOL || b->u.b))
            return ck_error_set(err, CKPT_ERR_UNSUPPORTED,
                                "%s.%s: the tensor was saved with a lazy '%s' bit (metadata {'%s': True}): its values "
                                "are not the stored elements. Save it after .resolve_conj() / .resolve_neg()",
                                e->module, e->name, lazy[k], lazy[k]);
    }
    if (md->u.dict.len && !t->extra) { /* other keys (custom backends): kept as information */
        t->extra = md;
        t->extra_kind = CK_TX_METADATA;
    }
    return CKPT_OK;
}

CK_HANDLER(ck_h_rebuild_tensor)
{
    ckpt_status s = ck_no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 4, 4, err);
    if (s) return s;
    ckpt_tensor *t;
    return ck_rebuild_strided(u, e, args, CKPT_DTYPE_INVALID, out, &t, err);
}

CK_HANDLER(ck_h_rebuild_tensor_v2)
{
    ckpt_status s = ck_no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 6, 7, err);
    if (s) return s;
    ckpt_tensor *t;
    if ((s = ck_rebuild_strided(u, e, args, CKPT_DTYPE_INVALID, out, &t, err))) return s;
    if ((s = ck_grad_and_hooks(e, args, 4, t, err))) return s;
    return check_metadata(e, args, 6, t, err);
}

CK_HANDLER(ck_h_rebuild_tensor_v3)
{
    ckpt_status s = ck_no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 7, 8, err);
    if (s) return s;
    ckpt_value *dv;
    if ((s = ck_arg_kind(e, args, 6, CKPT_KIND_DTYPE, &dv, err))) return s;
    ckpt_tensor *t;
    if ((s = ck_rebuild_strided(u, e, args, (ckpt_dtype)dv->u.dtype, out, &t, err))) return s;
    if ((s = ck_grad_and_hooks(e, args, 4, t, err))) return s;
    return check_metadata(e, args, 7, t, err);
}

/* A Parameter: a new tensor object sharing the data tensor's storage and metadata. */
ckpt_status ck_make_parameter(ck_unpickler *u, const ck_reg_entry *e, ckpt_value *data, bool requires_grad,
                                  ckpt_value **out, ckpt_tensor **tout, ckpt_error *err)
{
    if (data->kind != CKPT_KIND_TENSOR)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: data must be a tensor, got %s", e->module, e->name,
                            ck_type_name(data));
    ckpt_tensor *t;
    ckpt_value *v = ck_tensor_node(u, &t);
    if (!v) return ck_out_of_memory(u->store, err);
    *t = *data->u.tensor; /* shape/stride arrays are immutable: shared */
    t->is_parameter = true;
    t->requires_grad = requires_grad;
    t->type_name = "torch.nn.parameter.Parameter";
    v->type_name = t->type_name; /* ckpt_value_type_name reports the Parameter class, not torch.Tensor */
    *out = v;
    *tout = t;
    return CKPT_OK;
}

CK_HANDLER(ck_h_rebuild_parameter)
{
    ckpt_status s = ck_no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 3, 3, err);
    bool rg;
    if (!s) s = ck_arg_bool(e, args, 1, &rg, err);
    if (s) return s;
    ckpt_tensor *t;
    if ((s = ck_make_parameter(u, e, args->u.seq.items[0], rg, out, &t, err))) return s;
    ckpt_value *hooks = args->u.seq.items[2];
    if (hooks->kind != CKPT_KIND_DICT && hooks->kind != CKPT_KIND_NONE)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: backward_hooks must be a dict", e->module, e->name);
    return CKPT_OK;
}

CK_HANDLER(ck_h_rebuild_parameter_with_state)
{
    ckpt_status s = ck_no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 4, 4, err);
    bool rg;
    if (!s) s = ck_arg_bool(e, args, 1, &rg, err);
    if (s) return s;
    ckpt_tensor *t;
    if ((s = ck_make_parameter(u, e, args->u.seq.items[0], rg, out, &t, err))) return s;
    ckpt_value *state = args->u.seq.items[3];
    if (state->kind != CKPT_KIND_NONE) { /* extra Python attributes: kept as data */
        t->extra = state;
        t->extra_kind = CK_TX_STATE;
    }
    return CKPT_OK;
}

CK_HANDLER(ck_h_parameter_new)
{
    /* NEWOBJ torch.nn.parameter.Parameter(data[, requires_grad]) */
    ckpt_status s = ck_no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 1, 2, err);
    if (s) return s;
    bool rg = true;
    if (args->u.seq.len == 2 && (s = ck_arg_bool(e, args, 1, &rg, err))) return s;
    ckpt_tensor *t;
    return ck_make_parameter(u, e, args->u.seq.items[0], rg, out, &t, err);
}

CK_HANDLER(ck_h_rebuild_from_type_v2)
{
    /* torch._tensor._rebuild_from_type_v2(func, new_type, args, state): ret = func(*args), as new_type */
    ckpt_status s = ck_no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 4, 4, err);
    if (s) return s;
    ckpt_value *func = args->u.seq.items[0], *type = args->u.seq.items[1], *fargs = args->u.seq.items[2];
    ckpt_value *state = args->u.seq.items[3];
    if (func->kind != CKPT_KIND_GLOBAL || !func->u.global.entry || !func->u.global.entry->call ||
        func->u.global.entry->kind != CK_G_FUNCTION)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: func must be an allowed rebuild function, got %s", e->module,
                            e->name, ck_type_name(func));
    /* torch's func is always a _rebuild_* function; letting it be this handler again would recurse once
     * per nesting level of the pickle's tuples (a few bytes each: a C stack overflow) */
    if (func->u.global.entry->call == ck_h_rebuild_from_type_v2)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: func cannot be %s.%s itself", e->module, e->name,
                            func->u.global.module, func->u.global.name);
    if (fargs->kind != CKPT_KIND_TUPLE)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: args must be a tuple", e->module, e->name);
    if (type->kind != CKPT_KIND_GLOBAL || !type->u.global.entry)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: new_type must be an allowed class, got %s", e->module, e->name,
                            ck_type_name(type));
    bool param = strcmp(type->u.global.module, "torch.nn.parameter") == 0 && strcmp(type->u.global.name, "Parameter") == 0;
    bool plain = strcmp(type->u.global.module, "torch") == 0 && strcmp(type->u.global.name, "Tensor") == 0;
    /* any other new_type is a tensor subclass the registry allows (a class): the tensor keeps its data
     * and records the class name; the subclass's code is never run, its state is kept as data */
    if (!param && !plain && type->u.global.entry->kind != CK_G_CLASS)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: new_type %s.%s is not a class", e->module, e->name,
                            type->u.global.module, type->u.global.name);
    const ck_reg_entry *fe = func->u.global.entry;
    ckpt_value *r;
    if ((s = fe->call(u, fe, fargs, NULL, &r, err))) return s;
    if (!r) return ck_out_of_memory(u->store, err);
    bool empty_state = state->kind == CKPT_KIND_NONE || (state->kind == CKPT_KIND_DICT && state->u.dict.len == 0);
    if (r->kind == CKPT_KIND_SPARSE && plain && empty_state) {
        *out = r;
        return CKPT_OK;
    }
    if (r->kind != CKPT_KIND_TENSOR)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: func did not build a tensor", e->module, e->name);
    if (param && !r->u.tensor->is_parameter) {
        ckpt_tensor *t;
        if ((s = ck_make_parameter(u, e, r, r->u.tensor->requires_grad, &r, &t, err))) return s;
    } else if (!param && !plain) {
        char *tn = ck_arena_qualname(&u->store->arena, type->u.global.module, type->u.global.name);
        if (!tn) return ck_out_of_memory(u->store, err);
        r->u.tensor->type_name = tn;
        r->u.tensor->subclass = true;
    }
    if (!empty_state) {
        r->u.tensor->extra = state;
        r->u.tensor->extra_kind = CK_TX_STATE;
    }
    *out = r;
    return CKPT_OK;
}
