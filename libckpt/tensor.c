/* tensor.c: tensor bounds checks, element iteration, digests and the public tensor/storage API. */
#include "tensors.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "dtype.h"
#include "util.h"

ckpt_status ck_tensor_validate(ckpt_tensor *t, uint32_t max_ndim, ckpt_error *err)
{
    if (t->ndim > max_ndim)
        return ck_error_set(err, CKPT_ERR_LIMIT, "tensor has %u dimensions, more than the limit of %u (CKPT_LIMIT_MAX_NDIM)",
                            t->ndim, max_ndim);
    size_t itemsize = ckpt_dtype_itemsize((ckpt_dtype)t->dtype);
    if (itemsize == 0) return ck_error_set(err, CKPT_ERR_TENSOR, "tensor has an unknown dtype");
    if (t->storage_offset < 0)
        return ck_error_set(err, CKPT_ERR_TENSOR, "negative storage offset %lld", (long long)t->storage_offset);
    uint64_t numel = 1;
    uint64_t reach = 0; /* largest element index (relative to the offset) a non-empty tensor touches */
    bool empty = false;
    for (uint32_t i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0)
            return ck_error_set(err, CKPT_ERR_TENSOR, "negative size %lld in dimension %u", (long long)t->shape[i], i);
        if (t->stride[i] < 0)
            return ck_error_set(err, CKPT_ERR_TENSOR, "negative stride %lld in dimension %u (torch never saves these)",
                                (long long)t->stride[i], i);
        if (t->shape[i] == 0) empty = true;
        if (ck_mul_overflow_u64(numel, (uint64_t)t->shape[i], &numel))
            return ck_error_set(err, CKPT_ERR_TENSOR, "number of elements overflows 64 bits");
    }
    uint64_t nbytes;
    if (ck_mul_overflow_u64(numel, itemsize, &nbytes) || nbytes > INT64_MAX)
        return ck_error_set(err, CKPT_ERR_TENSOR, "tensor of %llu elements x %zu bytes overflows",
                            (unsigned long long)numel, itemsize);
    t->numel = numel;
    if (!t->storage) return CKPT_OK;
    uint64_t snbytes = t->storage->nbytes;
    unsigned pack = ck_dtype_info_of((ckpt_dtype)t->dtype)->pack;
    if (pack > 1) {
        /* quint4x2 / quint2x4: the shape counts sub-byte values, `pack` to a byte (torch's quantized
         * embedding tables). Only contiguous tensors starting on a byte boundary have a layout. */
        uint64_t end;
        if (!ckpt_tensor_is_contiguous(t) || (uint64_t)t->storage_offset % pack)
            return ck_error_set(err, CKPT_ERR_UNSUPPORTED, "a %s tensor must be contiguous from a byte boundary",
                                ckpt_dtype_name((ckpt_dtype)t->dtype));
        if (ck_add_overflow_u64((uint64_t)t->storage_offset, numel, &end) || (end + pack - 1) / pack > snbytes)
            return ck_error_set(err, CKPT_ERR_TENSOR, "%s tensor of %llu values at offset %lld extends past storage "
                                "'%s' of %llu bytes", ckpt_dtype_name((ckpt_dtype)t->dtype), (unsigned long long)numel,
                                (long long)t->storage_offset, t->storage->key, (unsigned long long)snbytes);
        return CKPT_OK;
    }
    uint64_t off_bytes;
    if (ck_mul_overflow_u64((uint64_t)t->storage_offset, itemsize, &off_bytes) || off_bytes > snbytes)
        return ck_error_set(err, CKPT_ERR_TENSOR,
                            "storage offset %lld is outside storage '%s' of %llu bytes", (long long)t->storage_offset,
                            t->storage->key, (unsigned long long)snbytes);
    if (empty) return CKPT_OK;
    for (uint32_t i = 0; i < t->ndim; i++) {
        uint64_t step;
        if (ck_mul_overflow_u64((uint64_t)(t->shape[i] - 1), (uint64_t)t->stride[i], &step) ||
            ck_add_overflow_u64(reach, step, &reach))
            return ck_error_set(err, CKPT_ERR_TENSOR, "size/stride arithmetic overflows in dimension %u", i);
    }
    /* Bytes needed: (offset + reach + 1) elements. */
    uint64_t last, need;
    if (ck_add_overflow_u64((uint64_t)t->storage_offset, reach, &last) || ck_add_overflow_u64(last, 1, &last) ||
        ck_mul_overflow_u64(last, itemsize, &need) || need > snbytes)
        return ck_error_set(err, CKPT_ERR_TENSOR,
                            "tensor (offset %lld, sizes/strides reaching element %llu) extends past storage '%s' of %llu "
                            "bytes (%llu elements of %zu bytes)",
                            (long long)t->storage_offset, (unsigned long long)reach, t->storage->key,
                            (unsigned long long)snbytes, (unsigned long long)(snbytes / itemsize), itemsize);
    return CKPT_OK;
}

bool ckpt_tensor_is_contiguous(const ckpt_tensor *t)
{
    if (!t) return false;
    if (t->numel == 0) return true;
    int64_t expected = 1;
    for (uint32_t i = t->ndim; i-- > 0;) {
        if (t->shape[i] == 1) continue;
        if (t->stride[i] != expected) return false;
        expected *= t->shape[i];
    }
    return true;
}

void ck_tensor_for_each_run(const ckpt_tensor *t, ck_run_fn fn, void *ctx)
{
    if (t->numel == 0 || !t->storage || !t->storage->data) return;
    if (ck_dtype_info_of((ckpt_dtype)t->dtype)->pack > 1) { /* contiguous by validation: its bytes */
        fn(ckpt_tensor_data(t), (size_t)ckpt_tensor_nbytes(t), ctx);
        return;
    }
    size_t itemsize = ckpt_dtype_itemsize((ckpt_dtype)t->dtype);
    const uint8_t *base = t->storage->data + (size_t)t->storage_offset * itemsize;
    /* Fold trailing dimensions that are laid out contiguously into one run. */
    uint32_t inner = t->ndim; /* dims [inner, ndim) form the run */
    uint64_t run = 1;
    while (inner > 0) {
        uint32_t d = inner - 1;
        if (t->shape[d] != 1 && (uint64_t)t->stride[d] != run) break;
        run *= (uint64_t)t->shape[d];
        inner--;
    }
    size_t run_bytes = (size_t)(run * itemsize);
    if (inner == 0) {
        fn(base, run_bytes, ctx);
        return;
    }
    /* Odometer over the outer dims [0, inner). */
    int64_t idx[64];
    uint32_t outer = inner;
    int64_t *counter = outer <= 64 ? idx : calloc(outer, sizeof *counter);
    if (!counter) return; /* validated tensors have ndim <= the NDIM limit (<= 64 by default) */
    memset(counter, 0, outer * sizeof *counter);
    uint64_t off = 0; /* element offset of the current run */
    for (;;) {
        fn(base + off * itemsize, run_bytes, ctx);
        uint32_t d = outer;
        while (d-- > 0) {
            if (++counter[d] < t->shape[d]) {
                off += (uint64_t)t->stride[d];
                break;
            }
            off -= (uint64_t)t->stride[d] * (uint64_t)(t->shape[d] - 1);
            counter[d] = 0;
        }
        if (d == UINT32_MAX) break;
    }
    if (counter != idx) free(counter);
}

/* ---- digest ---- */

typedef struct {
    XXH3_state_t *state;
    uint8_t buf[16384]; /* coalesces small runs (transposed tensors give one element per run) */
    size_t used;
    size_t swap_unit;   /* element byte-swap for big-endian hosts, else 0 */
} hash_ctx;

static void swap_in_place(uint8_t *p, size_t n, size_t unit)
{
    for (size_t i = 0; i + unit <= n; i += unit)
        for (size_t a = i, b = i + unit - 1; a < b; a++, b--) {
            uint8_t tmp = p[a];
            p[a] = p[b];
            p[b] = tmp;
        }
}

static void hash_flush(hash_ctx *h)
{
    if (h->swap_unit > 1) swap_in_place(h->buf, h->used, h->swap_unit);
    XXH3_64bits_update(h->state, h->buf, h->used);
    h->used = 0;
}

static void hash_run(const uint8_t *p, size_t n, void *vctx)
{
    hash_ctx *h = vctx;
    if (h->swap_unit <= 1 && n >= sizeof h->buf / 2) {
        if (h->used) hash_flush(h);
        XXH3_64bits_update(h->state, p, n);
        return;
    }
    while (n) {
        size_t take = CK_MIN(n, sizeof h->buf - h->used);
        /* keep whole elements in the buffer when swapping */
        if (h->swap_unit > 1) take -= take % h->swap_unit;
        if (take == 0) { hash_flush(h); continue; }
        memcpy(h->buf + h->used, p, take);
        h->used += take;
        p += take;
        n -= take;
        if (h->used == sizeof h->buf) hash_flush(h);
    }
}

ckpt_status ckpt_tensor_xxh3_64(const ckpt_tensor *t, uint64_t *digest, ckpt_error *err)
{
    if (!t || !digest) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL argument");
    if (t->numel == 0) {
        *digest = XXH3_64bits(NULL, 0);
        return CKPT_OK;
    }
    if (!t->storage || !t->storage->data)
        return ck_error_set(err, CKPT_ERR_STATE, "tensor has no data (loaded with CKPT_LOAD_SKIP_DATA, or a meta tensor)");
    size_t swap = ck_host_is_little_endian() ? 0 : ck_dtype_info_of((ckpt_dtype)t->dtype)->swap_unit;
    if (swap <= 1 && ckpt_tensor_is_contiguous(t)) {
        *digest = XXH3_64bits(ckpt_tensor_data(t), (size_t)ckpt_tensor_nbytes(t));
        return CKPT_OK;
    }
    hash_ctx *h = malloc(sizeof *h);
    if (!h) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    h->state = XXH3_createState();
    if (!h->state) {
        free(h);
        return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    }
    XXH3_64bits_reset(h->state);
    h->used = 0;
    h->swap_unit = swap;
    ck_tensor_for_each_run(t, hash_run, h);
    if (h->used) hash_flush(h);
    *digest = XXH3_64bits_digest(h->state);
    XXH3_freeState(h->state);
    free(h);
    return CKPT_OK;
}

typedef struct {
    uint8_t *dst;
} copy_ctx;

static void copy_run(const uint8_t *p, size_t n, void *vctx)
{
    copy_ctx *c = vctx;
    memcpy(c->dst, p, n);
    c->dst += n;
}

ckpt_status ckpt_tensor_copy_contiguous(const ckpt_tensor *t, void *dst, size_t dst_len, ckpt_error *err)
{
    if (!t || (!dst && dst_len)) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL argument");
    uint64_t need = ckpt_tensor_nbytes(t);
    if (dst_len < need)
        return ck_error_set(err, CKPT_ERR_INVALID_ARG, "destination holds %zu bytes, tensor needs %llu", dst_len,
                            (unsigned long long)need);
    if (need == 0) return CKPT_OK;
    if (!t->storage || !t->storage->data)
        return ck_error_set(err, CKPT_ERR_STATE, "tensor has no data (loaded with CKPT_LOAD_SKIP_DATA, or a meta tensor)");
    copy_ctx c = {dst};
    ck_tensor_for_each_run(t, copy_run, &c);
    return CKPT_OK;
}

/* ---- accessors ---- */

ckpt_dtype ckpt_tensor_dtype(const ckpt_tensor *t) { return t ? (ckpt_dtype)t->dtype : CKPT_DTYPE_INVALID; }
size_t ckpt_tensor_ndim(const ckpt_tensor *t) { return t ? t->ndim : 0; }
const int64_t *ckpt_tensor_shape(const ckpt_tensor *t) { return t && t->ndim ? t->shape : NULL; }
const int64_t *ckpt_tensor_stride(const ckpt_tensor *t) { return t && t->ndim ? t->stride : NULL; }
int64_t ckpt_tensor_storage_offset(const ckpt_tensor *t) { return t ? t->storage_offset : 0; }
uint64_t ckpt_tensor_numel(const ckpt_tensor *t) { return t ? t->numel : 0; }
uint64_t ckpt_tensor_nbytes(const ckpt_tensor *t)
{
    if (!t) return 0;
    unsigned pack = ck_dtype_info_of((ckpt_dtype)t->dtype)->pack;
    if (pack > 1) return (t->numel + pack - 1) / pack;
    return t->numel * ckpt_dtype_itemsize((ckpt_dtype)t->dtype);
}
bool ckpt_tensor_requires_grad(const ckpt_tensor *t) { return t && t->requires_grad; }
bool ckpt_tensor_is_parameter(const ckpt_tensor *t) { return t && t->is_parameter; }
const ckpt_storage *ckpt_tensor_storage(const ckpt_tensor *t) { return t ? t->storage : NULL; }
const void *ckpt_tensor_data(const ckpt_tensor *t)
{
    if (!t || !t->storage || !t->storage->data) return NULL;
    unsigned pack = ck_dtype_info_of((ckpt_dtype)t->dtype)->pack;
    if (pack > 1) return t->storage->data + (size_t)t->storage_offset / pack;
    return t->storage->data + (size_t)t->storage_offset * ckpt_dtype_itemsize((ckpt_dtype)t->dtype);
}

const char *ckpt_storage_key(const ckpt_storage *s) { return s ? s->key : NULL; }
ckpt_dtype ckpt_storage_dtype(const ckpt_storage *s) { return s ? (ckpt_dtype)s->dtype : CKPT_DTYPE_INVALID; }
uint64_t ckpt_storage_numel(const ckpt_storage *s) { return s ? s->numel : 0; }
uint64_t ckpt_storage_nbytes(const ckpt_storage *s) { return s ? s->nbytes : 0; }
const char *ckpt_storage_location(const ckpt_storage *s) { return s ? s->location : NULL; }
const void *ckpt_storage_data(const ckpt_storage *s) { return s ? s->data : NULL; }

const char *ckpt_tensor_device(const ckpt_tensor *t)
{
    if (!t) return NULL;
    if (t->device) return t->device;
    return t->storage ? t->storage->location : "cpu";
}
const char *ckpt_tensor_type_name(const ckpt_tensor *t) { return t ? t->type_name : NULL; }

/* ---- quantized tensors ---- */

const char *ckpt_qscheme_name(ckpt_qscheme q)
{
    switch (q) {
    case CKPT_QSCHEME_NONE: return "none";
    case CKPT_QSCHEME_PER_TENSOR_AFFINE: return "per_tensor_affine";
    case CKPT_QSCHEME_PER_CHANNEL_AFFINE: return "per_channel_affine";
    case CKPT_QSCHEME_PER_TENSOR_SYMMETRIC: return "per_tensor_symmetric";
    case CKPT_QSCHEME_PER_CHANNEL_SYMMETRIC: return "per_channel_symmetric";
    case CKPT_QSCHEME_PER_CHANNEL_AFFINE_FLOAT_QPARAMS: return "per_channel_affine_float_qparams";
    }
    return "invalid";
}
ckpt_qscheme ckpt_tensor_qscheme(const ckpt_tensor *t) { return t && t->quant ? (ckpt_qscheme)t->quant->qscheme : CKPT_QSCHEME_NONE; }
double ckpt_tensor_q_scale(const ckpt_tensor *t) { return t && t->quant && t->quant->axis < 0 ? t->quant->scale : 0; }
int64_t ckpt_tensor_q_zero_point(const ckpt_tensor *t) { return t && t->quant && t->quant->axis < 0 ? t->quant->zero_point : 0; }
int64_t ckpt_tensor_q_axis(const ckpt_tensor *t) { return t && t->quant ? t->quant->axis : -1; }
const ckpt_tensor *ckpt_tensor_q_scales(const ckpt_tensor *t) { return t && t->quant ? t->quant->scales : NULL; }
const ckpt_tensor *ckpt_tensor_q_zero_points(const ckpt_tensor *t) { return t && t->quant ? t->quant->zero_points : NULL; }

/* ---- sparse tensors ---- */

const char *ckpt_layout_name(ckpt_layout l)
{
    switch (l) {
    case CKPT_LAYOUT_STRIDED: return "strided";
    case CKPT_LAYOUT_SPARSE_COO: return "sparse_coo";
    case CKPT_LAYOUT_SPARSE_CSR: return "sparse_csr";
    case CKPT_LAYOUT_SPARSE_CSC: return "sparse_csc";
    case CKPT_LAYOUT_SPARSE_BSR: return "sparse_bsr";
    case CKPT_LAYOUT_SPARSE_BSC: return "sparse_bsc";
    }
    return "invalid";
}
ckpt_layout ckpt_sparse_layout(const ckpt_sparse *s) { return s ? (ckpt_layout)s->layout : CKPT_LAYOUT_STRIDED; }
ckpt_dtype ckpt_sparse_dtype(const ckpt_sparse *s) { return s ? (ckpt_dtype)s->dtype : CKPT_DTYPE_INVALID; }
size_t ckpt_sparse_ndim(const ckpt_sparse *s) { return s ? s->ndim : 0; }
const int64_t *ckpt_sparse_shape(const ckpt_sparse *s) { return s && s->ndim ? s->shape : NULL; }
bool ckpt_sparse_requires_grad(const ckpt_sparse *s) { return s && s->requires_grad; }
bool ckpt_sparse_is_coalesced(const ckpt_sparse *s) { return s && s->coalesced; }
const ckpt_tensor *ckpt_sparse_indices(const ckpt_sparse *s) { return s && s->indices ? s->indices->u.tensor : NULL; }
const ckpt_tensor *ckpt_sparse_plain_indices(const ckpt_sparse *s) { return s && s->plain ? s->plain->u.tensor : NULL; }
const ckpt_tensor *ckpt_sparse_values(const ckpt_sparse *s) { return s && s->values ? s->values->u.tensor : NULL; }
