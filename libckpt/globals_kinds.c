/*
 * globals_kinds.c: the rebuild functions of tensor kinds other than plain strided tensors: quantized
 * (_rebuild_qtensor), sparse (_rebuild_sparse_tensor, 1.13's _rebuild_sparse_csr_tensor), meta
 * (_rebuild_meta_tensor_no_storage), wrapper subclasses (_rebuild_wrapper_subclass) and tensors rebuilt
 * on another device (_rebuild_device_tensor_from_cpu_tensor). Argument lists follow torch/_utils.py
 * (docs/pytorch-format-notes.md §2.1); every tensor is checked by ck_tensor_validate before it exists.
 * Checks that need tensor data (sparse index ranges) run after the storages are read (sparse.c).
 */
#include <stdio.h>
#include <string.h>

#include "dtype.h"
#include "globals.h"
#include "tensors.h"
#include "util.h"

static uint32_t max_ndim(const ck_unpickler *u) { return (uint32_t)CK_MIN(u->limits->max_ndim, UINT32_MAX); }

static bool is_qdtype(ckpt_dtype d)
{
    return d == CKPT_DTYPE_QINT8 || d == CKPT_DTYPE_QUINT8 || d == CKPT_DTYPE_QINT32 || d == CKPT_DTYPE_QUINT4X2 ||
           d == CKPT_DTYPE_QUINT2X4;
}

static bool is_float_dtype(ckpt_dtype d) { return d == CKPT_DTYPE_FLOAT32 || d == CKPT_DTYPE_FLOAT64; }
static bool is_index_dtype(ckpt_dtype d) { return d == CKPT_DTYPE_INT64 || d == CKPT_DTYPE_INT32; }

/* A torch.qscheme / torch.layout constant (GLOBAL node of the given type) and its name, or NULL. */
static const char *constant_name(const ckpt_value *v, const char *type)
{
    if (v->kind != CKPT_KIND_GLOBAL || !v->type_name || strcmp(v->type_name, type) != 0) return NULL;
    return v->u.global.name;
}

static bool number_value(const ckpt_value *v, double *out)
{
    if (v->kind == CKPT_KIND_FLOAT) { *out = v->u.f; return true; }
    if (ck_is_small_int(v) && v->kind == CKPT_KIND_INT) { *out = (double)v->u.i; return true; }
    return false;
}

/* ---- quantized ---- */

/*
 * A 1-D tensor for per-channel parameters given as a list (torch 1.13 _rebuild_qtensor converts lists:
 * double/long for per_channel_affine, float/float for float qparams). Its data lives in the arena.
 */
static ckpt_status list_to_tensor(ck_unpickler *u, const ck_reg_entry *e, const ckpt_value *list, ckpt_dtype dtype,
                                  const ckpt_tensor **out, ckpt_error *err)
{
    ck_arena *a = &u->store->arena;
    uint32_t n = list->u.seq.len;
    size_t isz = ckpt_dtype_itemsize(dtype);
    ckpt_storage *st = ck_arena_zalloc(a, sizeof *st, _Alignof(ckpt_storage));
    ckpt_tensor *t = ck_arena_zalloc(a, sizeof *t, _Alignof(ckpt_tensor));
    uint8_t *data = ck_arena_alloc(a, (size_t)n * isz + 1, 8);
    int64_t *dims = ck_arena_alloc(a, 2 * sizeof *dims, _Alignof(int64_t));
    if (!st || !t || !data || !dims) return ck_out_of_memory(u->store, err);
    for (uint32_t i = 0; i < n; i++) {
        const ckpt_value *x = list->u.seq.items[i];
        double d;
        if (dtype == CKPT_DTYPE_INT64) {
            if (x->kind != CKPT_KIND_INT || !ck_is_small_int(x))
                return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: per-channel zero point %u is a %s, not an int", e->module,
                                    e->name, i, ck_type_name(x));
            memcpy(data + (size_t)i * 8, &x->u.i, 8);
        } else if (!number_value(x, &d)) {
            return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: per-channel parameter %u is a %s, not a number", e->module,
                                e->name, i, ck_type_name(x));
        } else if (dtype == CKPT_DTYPE_FLOAT64) {
            memcpy(data + (size_t)i * 8, &d, 8);
        } else {
            float f = (float)d;
            memcpy(data + (size_t)i * 4, &f, 4);
        }
    }
    st->key = "(list)";
    st->location = "cpu";
    st->dtype = (uint8_t)dtype;
    st->numel = n;
    st->nbytes = (uint64_t)n * isz;
    st->data = data;
    st->flags = CK_SF_RESOLVED;
    dims[0] = n;
    dims[1] = 1;
    t->storage = st;
    t->shape = dims;
    t->stride = dims + 1;
    t->ndim = 1;
    t->dtype = (uint8_t)dtype;
    t->type_name = "torch.Tensor";
    ckpt_status s = ck_tensor_validate(t, 1, err);
    if (s) return s;
    *out = t;
    return CKPT_OK;
}

/* Per-channel scales or zero points: a 1-D tensor of `n` entries, or a list turned into one. */
static ckpt_status channel_params(ck_unpickler *u, const ck_reg_entry *e, const ckpt_value *v, const char *what,
                                  ckpt_dtype list_dtype, int64_t n, const ckpt_tensor **out, ckpt_error *err)
{
    const ckpt_tensor *t = NULL;
    if (v->kind == CKPT_KIND_TENSOR) {
        t = v->u.tensor;
        if (!t->storage || t->quant)
            return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: per-channel %s must be a plain tensor", e->module, e->name, what);
    } else if (v->kind == CKPT_KIND_LIST) {
        ckpt_status s = list_to_tensor(u, e, v, list_dtype, &t, err);
        if (s) return s;
    } else {
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: per-channel %s must be a tensor or a list, got %s", e->module,
                            e->name, what, ck_type_name(v));
    }
    if (t->ndim != 1 || t->shape[0] != n)
        return ck_error_set(err, CKPT_ERR_TENSOR, "%s.%s: per-channel %s must be 1-D with %lld entries (the size of the "
                            "quantized axis)", e->module, e->name, what, (long long)n);
    *out = t;
    return CKPT_OK;
}

CK_HANDLER(ck_h_rebuild_qtensor)
{
    /* (storage, storage_offset, size, stride, quantizer_params, requires_grad, backward_hooks) */
    ckpt_status s = ck_no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 7, 7, err);
    if (s) return s;
    ckpt_tensor *t;
    if ((s = ck_rebuild_strided(u, e, args, CKPT_DTYPE_INVALID, out, &t, err))) return s;
    if (!is_qdtype((ckpt_dtype)t->dtype))
        return ck_error_set(err, CKPT_ERR_TENSOR, "%s.%s: storage '%s' holds %s, not a quantized dtype", e->module,
                            e->name, t->storage->key, ckpt_dtype_name((ckpt_dtype)t->dtype));
    if ((s = ck_grad_and_hooks(e, args, 5, t, err))) return s;
    ckpt_value *qp = args->u.seq.items[4];
    if (qp->kind != CKPT_KIND_TUPLE || qp->u.seq.len < 1)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: quantizer_params must be a tuple (qscheme, ...), got %s",
                            e->module, e->name, ck_type_name(qp));
    const char *scheme = constant_name(qp->u.seq.items[0], "torch.qscheme");
    if (!scheme)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: quantizer_params[0] must be a torch.qscheme, got %s", e->module,
                            e->name, ck_type_name(qp->u.seq.items[0]));
    ck_quant *q = ck_arena_zalloc(&u->store->arena, sizeof *q, _Alignof(ck_quant));
    if (!q) return ck_out_of_memory(u->store, err);
    q->axis = -1;
    ckpt_value **it = qp->u.seq.items;
    if (strcmp(scheme, "per_tensor_affine") == 0) {
        if (qp->u.seq.len != 3 || !number_value(it[1], &q->scale) || it[2]->kind != CKPT_KIND_INT || !ck_is_small_int(it[2]))
            return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: per_tensor_affine parameters must be (qscheme, scale: float, "
                                "zero_point: int)", e->module, e->name);
        q->zero_point = it[2]->u.i;
        q->qscheme = CKPT_QSCHEME_PER_TENSOR_AFFINE;
    } else if (strcmp(scheme, "per_channel_affine") == 0 || strcmp(scheme, "per_channel_affine_float_qparams") == 0) {
        bool float_tag = scheme[strlen("per_channel_affine")] != '\0';
        if (qp->u.seq.len != 4 || it[3]->kind != CKPT_KIND_INT || !ck_is_small_int(it[3]))
            return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: per-channel parameters must be (qscheme, scales, zero_points, "
                                "axis: int)", e->module, e->name);
        q->axis = it[3]->u.i;
        if (q->axis < 0 || (uint64_t)q->axis >= t->ndim)
            return ck_error_set(err, CKPT_ERR_TENSOR, "%s.%s: quantization axis %lld is outside the tensor's %u dimensions",
                                e->module, e->name, (long long)q->axis, t->ndim);
        int64_t n = t->shape[q->axis];
        if ((s = channel_params(u, e, it[1], "scales", float_tag ? CKPT_DTYPE_FLOAT32 : CKPT_DTYPE_FLOAT64, n, &q->scales, err)) ||
            (s = channel_params(u, e, it[2], "zero_points", float_tag ? CKPT_DTYPE_FLOAT32 : CKPT_DTYPE_INT64, n,
                                &q->zero_points, err)))
            return s;
        ckpt_dtype sd = (ckpt_dtype)q->scales->dtype, zd = (ckpt_dtype)q->zero_points->dtype;
        if (!is_float_dtype(sd))
            return ck_error_set(err, CKPT_ERR_TENSOR, "%s.%s: per-channel scales are %s, not floating point", e->module,
                                e->name, ckpt_dtype_name(sd));
        if (!is_float_dtype(zd) && !is_index_dtype(zd))
            return ck_error_set(err, CKPT_ERR_TENSOR, "%s.%s: per-channel zero points are %s", e->module, e->name,
                                ckpt_dtype_name(zd));
        /* like ATen's quantizer choice: floating zero points mean float qparams (torch writes that scheme
         * with the per_channel_affine tag) */
        q->qscheme = is_float_dtype(zd) ? CKPT_QSCHEME_PER_CHANNEL_AFFINE_FLOAT_QPARAMS : CKPT_QSCHEME_PER_CHANNEL_AFFINE;
    } else {
        return ck_error_set(err, CKPT_ERR_UNSUPPORTED, "%s.%s: quantization scheme torch.%s cannot be deserialized (PyTorch "
                            "reads only per_tensor_affine, per_channel_affine and per_channel_affine_float_qparams)",
                            e->module, e->name, scheme);
    }
    t->quant = q;
    return CKPT_OK;
}

/* ---- sparse ---- */

static const struct { const char *name; ckpt_layout layout; } layout_names[] = {
    {"sparse_coo", CKPT_LAYOUT_SPARSE_COO}, {"sparse_csr", CKPT_LAYOUT_SPARSE_CSR},
    {"sparse_csc", CKPT_LAYOUT_SPARSE_CSC}, {"sparse_bsr", CKPT_LAYOUT_SPARSE_BSR},
    {"sparse_bsc", CKPT_LAYOUT_SPARSE_BSC},
};

static const ckpt_tensor *plain_tensor(const ckpt_value *v)
{
    if (v->kind != CKPT_KIND_TENSOR) return NULL;
    const ckpt_tensor *t = v->u.tensor;
    return t->storage && !t->quant && !t->device ? t : NULL;
}

static ckpt_status sparse_node(ck_unpickler *u, ckpt_layout layout, ckpt_value **node, ckpt_sparse **sp, ckpt_error *err)
{
    *node = ck_new(u->store, CKPT_KIND_SPARSE);
    *sp = ck_arena_zalloc(&u->store->arena, sizeof **sp, _Alignof(ckpt_sparse));
    if (!*node || !*sp) return ck_out_of_memory(u->store, err);
    (*sp)->layout = (uint8_t)layout;
    (*node)->u.sparse = *sp;
    (*node)->type_name = "torch.Tensor";
    return CKPT_OK;
}

static ckpt_status sparse_size(ck_unpickler *u, const ck_reg_entry *e, ckpt_value *data, size_t i, ckpt_sparse *sp,
                               ckpt_error *err)
{
    uint32_t n;
    ckpt_status s = ck_arg_int_tuple(u, e, data, i, &sp->shape, &n, err);
    if (s) return s;
    sp->ndim = n;
    for (uint32_t k = 0; k < n; k++)
        if (sp->shape[k] < 0)
            return ck_error_set(err, CKPT_ERR_TENSOR, "%s.%s: negative size %lld in dimension %u", e->module, e->name,
                                (long long)sp->shape[k], k);
    return CKPT_OK;
}

static ckpt_status sparse_coo(ck_unpickler *u, const ck_reg_entry *e, ckpt_value *data, ckpt_value **out, ckpt_error *err)
{
    /* (indices, values, size[, is_coalesced]) */
    if (data->kind != CKPT_KIND_TUPLE || data->u.seq.len < 3 || data->u.seq.len > 4)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: sparse_coo data must be (indices, values, size[, is_coalesced])",
                            e->module, e->name);
    ckpt_value *node;
    ckpt_sparse *sp;
    ckpt_status s = sparse_node(u, CKPT_LAYOUT_SPARSE_COO, &node, &sp, err);
    if (!s) s = sparse_size(u, e, data, 2, sp, err);
    if (s) return s;
    ckpt_value **it = data->u.seq.items;
    if (data->u.seq.len == 4) {
        if (it[3]->kind != CKPT_KIND_BOOL)
            return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: is_coalesced must be a bool", e->module, e->name);
        sp->coalesced = it[3]->u.b;
    }
    const ckpt_tensor *idx = plain_tensor(it[0]), *val = plain_tensor(it[1]);
    if (!idx || !val)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: sparse indices and values must be strided tensors", e->module, e->name);
    /* torch._validate_sparse_coo_tensor_args: int64 indices of shape (sparse_dim, nnz); values of shape
     * (nnz, *size[sparse_dim:]) */
    if (idx->dtype != CKPT_DTYPE_INT64 || idx->ndim != 2)
        return ck_error_set(err, CKPT_ERR_TENSOR, "%s.%s: COO indices must be a 2-D int64 tensor, got %u-D %s", e->module,
                            e->name, idx->ndim, ckpt_dtype_name((ckpt_dtype)idx->dtype));
    int64_t sparse_dim = idx->shape[0], nnz = idx->shape[1];
    if (val->ndim < 1 || val->shape[0] != nnz)
        return ck_error_set(err, CKPT_ERR_TENSOR, "%s.%s: COO values must have nnz = %lld rows", e->module, e->name,
                            (long long)nnz);
    uint64_t dense_dim = val->ndim - 1;
    if ((uint64_t)sparse_dim + dense_dim != sp->ndim)
        return ck_error_set(err, CKPT_ERR_TENSOR, "%s.%s: %lld sparse + %llu dense dimensions do not make the %u of size",
                            e->module, e->name, (long long)sparse_dim, (unsigned long long)dense_dim, sp->ndim);
    for (uint64_t k = 0; k < dense_dim; k++)
        if (val->shape[k + 1] != sp->shape[sparse_dim + (int64_t)k])
            return ck_error_set(err, CKPT_ERR_TENSOR, "%s.%s: values dimension %llu is %lld, size says %lld", e->module,
                                e->name, (unsigned long long)k + 1, (long long)val->shape[k + 1],
                                (long long)sp->shape[sparse_dim + (int64_t)k]);
    sp->indices = it[0];
    sp->values = it[1];
    sp->dtype = val->dtype;
    sp->requires_grad = val->requires_grad;
    *out = node;
    return CKPT_OK;
}

static ckpt_status sparse_compressed(ck_unpickler *u, const ck_reg_entry *e, ckpt_layout layout, ckpt_value *data,
                                     ckpt_value **out, ckpt_error *err)
{
    /* (compressed_indices, plain_indices, values, size) */
    if (data->kind != CKPT_KIND_TUPLE || data->u.seq.len != 4)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: compressed sparse data must be (compressed_indices, "
                            "plain_indices, values, size)", e->module, e->name);
    ckpt_value *node;
    ckpt_sparse *sp;
    ckpt_status s = sparse_node(u, layout, &node, &sp, err);
    if (!s) s = sparse_size(u, e, data, 3, sp, err);
    if (s) return s;
    ckpt_value **it = data->u.seq.items;
    const ckpt_tensor *ci = plain_tensor(it[0]), *pi = plain_tensor(it[1]), *val = plain_tensor(it[2]);
    if (!ci || !pi || !val)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: sparse indices and values must be strided tensors", e->module, e->name);
    if (!is_index_dtype((ckpt_dtype)ci->dtype) || ci->dtype != pi->dtype)
        return ck_error_set(err, CKPT_ERR_TENSOR, "%s.%s: compressed and plain indices must both be int32 or int64",
                            e->module, e->name);
    if (ci->ndim != 1 || pi->ndim != 1)
        return ck_error_set(err, CKPT_ERR_UNSUPPORTED, "%s.%s: batched compressed sparse tensors (%u-D indices) are not "
                            "supported", e->module, e->name, ci->ndim);
    bool blocked = layout == CKPT_LAYOUT_SPARSE_BSR || layout == CKPT_LAYOUT_SPARSE_BSC;
    bool by_row = layout == CKPT_LAYOUT_SPARSE_CSR || layout == CKPT_LAYOUT_SPARSE_BSR;
    int64_t nnz = pi->shape[0];
    uint32_t block_dims = blocked ? 2 : 0;
    if (val->ndim < 1 + block_dims || val->shape[0] != nnz)
        return ck_error_set(err, CKPT_ERR_TENSOR, "%s.%s: values must have nnz = %lld entries%s", e->module, e->name,
                            (long long)nnz, blocked ? " of 2-D blocks" : "");
    uint32_t dense_dim = val->ndim - 1 - block_dims;
    if (sp->ndim != 2 + dense_dim)
        return ck_error_set(err, CKPT_ERR_TENSOR, "%s.%s: size has %u dimensions, 2 + %u dense expected", e->module, e->name,
                            sp->ndim, dense_dim);
    for (uint32_t k = 0; k < dense_dim; k++)
        if (val->shape[1 + block_dims + k] != sp->shape[2 + k])
            return ck_error_set(err, CKPT_ERR_TENSOR, "%s.%s: values and size disagree on dense dimension %u", e->module,
                                e->name, k);
    int64_t bs0 = blocked ? val->shape[1] : 1, bs1 = blocked ? val->shape[2] : 1;
    if (bs0 <= 0 || bs1 <= 0 || sp->shape[0] % bs0 != 0 || sp->shape[1] % bs1 != 0)
        return ck_error_set(err, CKPT_ERR_TENSOR, "%s.%s: block size %lldx%lld does not divide size %lldx%lld", e->module,
                            e->name, (long long)bs0, (long long)bs1, (long long)sp->shape[0], (long long)sp->shape[1]);
    int64_t ncompressed = by_row ? sp->shape[0] / bs0 : sp->shape[1] / bs1;
    if (ci->shape[0] != ncompressed + 1)
        return ck_error_set(err, CKPT_ERR_TENSOR, "%s.%s: compressed indices have %lld entries, %lld expected", e->module,
                            e->name, (long long)ci->shape[0], (long long)ncompressed + 1);
    sp->indices = it[0];
    sp->plain = it[1];
    sp->values = it[2];
    sp->dtype = val->dtype;
    sp->requires_grad = val->requires_grad;
    *out = node;
    return CKPT_OK;
}

static ckpt_status rebuild_sparse(ck_unpickler *u, const ck_reg_entry *e, ckpt_value *args, ckpt_value *kwargs,
                                  bool csr_only, ckpt_value **out, ckpt_error *err)
{
    ckpt_status s = ck_no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 2, 2, err);
    if (s) return s;
    const char *name = constant_name(args->u.seq.items[0], "torch.layout");
    if (!name)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: argument 0 must be a torch.layout, got %s", e->module, e->name,
                            ck_type_name(args->u.seq.items[0]));
    for (size_t i = 0; i < CK_ARRAY_LEN(layout_names); i++) {
        if (strcmp(name, layout_names[i].name) != 0) continue;
        ckpt_layout l = layout_names[i].layout;
        if (csr_only && l != CKPT_LAYOUT_SPARSE_CSR) break; /* torch 1.13: NotImplementedError */
        ckpt_value *data = args->u.seq.items[1];
        s = l == CKPT_LAYOUT_SPARSE_COO ? sparse_coo(u, e, data, out, err) : sparse_compressed(u, e, l, data, out, err);
        if (!s) (*out)->u.sparse->legacy_csr = csr_only;
        return s;
    }
    return ck_error_set(err, CKPT_ERR_UNSUPPORTED, "%s.%s: cannot rebuild a sparse tensor of layout torch.%s", e->module,
                        e->name, name);
}

CK_HANDLER(ck_h_rebuild_sparse_tensor) { return rebuild_sparse(u, e, args, kwargs, false, out, err); }
CK_HANDLER(ck_h_rebuild_sparse_csr_tensor) { return rebuild_sparse(u, e, args, kwargs, true, out, err); }

/* ---- tensors without storage ---- */

/* dtype, size and stride at args[d], args[d+1], args[d+2] into a storage-less tensor. */
static ckpt_status storageless(ck_unpickler *u, const ck_reg_entry *e, ckpt_value *args, size_t d, ckpt_value **out,
                               ckpt_tensor **tout, ckpt_error *err)
{
    ckpt_value *dv;
    ckpt_status s = ck_arg_kind(e, args, d, CKPT_KIND_DTYPE, &dv, err);
    if (s) return s;
    ckpt_tensor *t;
    ckpt_value *v = ck_tensor_node(u, &t);
    if (!v) return ck_out_of_memory(u->store, err);
    t->dtype = dv->u.dtype;
    uint32_t nsize, nstride;
    if ((s = ck_arg_int_tuple(u, e, args, d + 1, &t->shape, &nsize, err)) ||
        (s = ck_arg_int_tuple(u, e, args, d + 2, &t->stride, &nstride, err)))
        return s;
    if (nsize != nstride)
        return ck_error_set(err, CKPT_ERR_TENSOR, "%s.%s: %u sizes but %u strides", e->module, e->name, nsize, nstride);
    t->ndim = nsize;
    if ((s = ck_tensor_validate(t, max_ndim(u), err))) return s;
    *out = v;
    *tout = t;
    return CKPT_OK;
}

CK_HANDLER(ck_h_rebuild_meta_tensor_no_storage)
{
    /* (dtype, size, stride, requires_grad) */
    ckpt_status s = ck_no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 4, 4, err);
    if (s) return s;
    ckpt_tensor *t;
    bool rg;
    if ((s = storageless(u, e, args, 0, out, &t, err)) || (s = ck_arg_bool(e, args, 3, &rg, err))) return s;
    t->requires_grad = rg;
    t->device = "meta";
    return CKPT_OK;
}

/* A device argument: a torch.device or a device string. */
static ckpt_status device_arg(ck_unpickler *u, const ck_reg_entry *e, ckpt_value *args, size_t i, const char **out,
                              ckpt_error *err)
{
    ckpt_value *v = args->u.seq.items[i];
    if (v->kind != CKPT_KIND_DEVICE && v->kind != CKPT_KIND_STR)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: argument %zu must be a device, got %s", e->module, e->name, i,
                            ck_type_name(v));
    if (v->u.s.len == 0 || v->u.s.len > 64 || memchr(v->u.s.ptr, '\0', v->u.s.len))
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: invalid device name", e->module, e->name);
    *out = ck_arena_strndup(&u->store->arena, v->u.s.ptr, v->u.s.len);
    return *out ? CKPT_OK : ck_out_of_memory(u->store, err);
}

CK_HANDLER(ck_h_rebuild_wrapper_subclass)
{
    /* (cls, dtype, size, stride, storage_offset, layout, device, requires_grad): a tensor subclass whose
     * data lives elsewhere (its state); torch gives it no storage */
    ckpt_status s = ck_no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 8, 8, err);
    if (s) return s;
    ckpt_value *cls = args->u.seq.items[0];
    if (cls->kind != CKPT_KIND_GLOBAL || !cls->u.global.entry || cls->u.global.entry->kind != CK_G_CLASS)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: cls must be an allowed tensor subclass, got %s", e->module,
                            e->name, ck_type_name(cls));
    const char *layout = constant_name(args->u.seq.items[5], "torch.layout");
    if (!layout || strcmp(layout, "strided") != 0)
        return ck_error_set(err, CKPT_ERR_UNSUPPORTED, "%s.%s: only strided wrapper subclasses are supported", e->module,
                            e->name);
    ckpt_tensor *t;
    bool rg;
    if ((s = storageless(u, e, args, 1, out, &t, err)) || (s = ck_arg_int(e, args, 4, &t->storage_offset, err)) ||
        (s = device_arg(u, e, args, 6, &t->device, err)) || (s = ck_arg_bool(e, args, 7, &rg, err)))
        return s;
    if (t->storage_offset < 0)
        return ck_error_set(err, CKPT_ERR_TENSOR, "%s.%s: negative storage offset", e->module, e->name);
    t->requires_grad = rg;
    char *tn = ck_arena_qualname(&u->store->arena, cls->u.global.module, cls->u.global.name);
    if (!tn) return ck_out_of_memory(u->store, err);
    t->type_name = tn;
    t->subclass = true;
    return CKPT_OK;
}

CK_HANDLER(ck_h_rebuild_device_tensor_from_cpu_tensor)
{
    /* (data: Tensor, dtype, device: str, requires_grad): torch runs data.to(dtype, device); libckpt keeps
     * the host data and records the device. A dtype conversion is not data, so it is refused. */
    ckpt_status s = ck_no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 4, 4, err);
    if (s) return s;
    ckpt_value *dv;
    bool rg;
    const ckpt_tensor *src = plain_tensor(args->u.seq.items[0]);
    if (!src)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: data must be a strided tensor, got %s", e->module, e->name,
                            ck_type_name(args->u.seq.items[0]));
    if ((s = ck_arg_kind(e, args, 1, CKPT_KIND_DTYPE, &dv, err)) || (s = ck_arg_bool(e, args, 3, &rg, err))) return s;
    if (dv->u.dtype != src->dtype)
        return ck_error_set(err, CKPT_ERR_UNSUPPORTED, "%s.%s: converting %s data to %s is not supported", e->module,
                            e->name, ckpt_dtype_name((ckpt_dtype)src->dtype), ckpt_dtype_name((ckpt_dtype)dv->u.dtype));
    ckpt_tensor *t;
    ckpt_value *v = ck_tensor_node(u, &t);
    if (!v) return ck_out_of_memory(u->store, err);
    *t = *src; /* shares the storage and the (immutable) shape/stride arrays */
    t->type_name = "torch.Tensor";
    t->subclass = false;
    t->is_parameter = false;
    t->extra = NULL;
    t->extra_kind = CK_TX_NONE;
    t->requires_grad = rg;
    if ((s = device_arg(u, e, args, 2, &t->device, err))) return s;
    *out = v;
    return CKPT_OK;
}

CK_HANDLER(ck_h_rebuild_device_tensor_from_numpy)
{
    (void)u; (void)args; (void)kwargs; (void)out;
    return ck_error_set(err, CKPT_ERR_UNSUPPORTED,
                        "%s.%s rebuilds a tensor from a pickled NumPy array (XLA/ORT/HPU tensors saved by older PyTorch); "
                        "libckpt does not read NumPy array pickles", e->module, e->name);
}
