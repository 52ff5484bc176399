/*
 * sparse.c: the checks PyTorch makes on every sparse tensor it loads (torch._utils
 * _validate_loaded_sparse_tensors -> torch._validate_sparse_coo_tensor_args and
 * _validate_sparse_compressed_tensor_args), made once the component data is loaded: COO indices inside
 * the dense size; compressed indices starting at 0, non-decreasing, ending at nnz; plain indices inside
 * the size and sorted without duplicates within each compressed row/column. A consumer that turns a
 * sparse tensor into a dense one can then index without checking. Shapes were checked when the tensor
 * was built (globals_kinds.c).
 */
#include <string.h>

#include "tensors.h"
#include "util.h"

/* Element i of a 1-D int32/int64 tensor, or element (r, k) of a 2-D one, as int64. */
static int64_t at(const ckpt_tensor *t, int64_t r, int64_t k)
{
    uint64_t idx = (uint64_t)t->storage_offset + (uint64_t)(t->ndim == 2 ? r * t->stride[0] + k * t->stride[1] : k * t->stride[0]);
    const uint8_t *p = t->storage->data;
    if (t->dtype == CKPT_DTYPE_INT64) {
        int64_t v;
        memcpy(&v, p + idx * 8, 8);
        return v;
    }
    int32_t v;
    memcpy(&v, p + idx * 4, 4);
    return v;
}

static bool has_data(const ckpt_value *v)
{
    return !v || v->u.tensor->numel == 0 || (v->u.tensor->storage && v->u.tensor->storage->data);
}

ckpt_status ck_sparse_check(const ckpt_sparse *s, ckpt_error *err)
{
    if (!has_data(s->indices) || !has_data(s->plain)) return CKPT_OK; /* loaded without data */
    const ckpt_tensor *ind = s->indices->u.tensor;
    if (s->layout == CKPT_LAYOUT_SPARSE_COO) {
        int64_t sparse_dim = ind->shape[0], nnz = ind->shape[1];
        for (int64_t d = 0; d < sparse_dim; d++)
            for (int64_t k = 0; k < nnz; k++) {
                int64_t x = at(ind, d, k);
                if (x < 0 || x >= s->shape[d])
                    return ck_error_set(err, CKPT_ERR_TENSOR,
                                        "sparse COO tensor: index %lld of entry %lld in dimension %lld is outside size %lld "
                                        "(PyTorch refuses it on load)",
                                        (long long)x, (long long)k, (long long)d, (long long)s->shape[d]);
            }
        return CKPT_OK;
    }
    const ckpt_tensor *plain = s->plain->u.tensor, *val = s->values->u.tensor;
    bool by_row = s->layout == CKPT_LAYOUT_SPARSE_CSR || s->layout == CKPT_LAYOUT_SPARSE_BSR;
    bool blocked = s->layout == CKPT_LAYOUT_SPARSE_BSR || s->layout == CKPT_LAYOUT_SPARSE_BSC;
    int64_t block = blocked ? (by_row ? val->shape[2] : val->shape[1]) : 1;
    int64_t plain_size = (by_row ? s->shape[1] : s->shape[0]) / block;
    int64_t ncompressed = ind->shape[0] - 1, nnz = plain->shape[0];
    const char *what = by_row ? "crow_indices" : "ccol_indices";
    if (at(ind, 0, 0) != 0)
        return ck_error_set(err, CKPT_ERR_TENSOR, "sparse %s tensor: %s[0] is %lld, not 0", by_row ? "row-compressed" : "column-compressed",
                            what, (long long)at(ind, 0, 0));
    if (at(ind, 0, ncompressed) != nnz)
        return ck_error_set(err, CKPT_ERR_TENSOR, "sparse compressed tensor: %s[-1] is %lld, not nnz = %lld", what,
                            (long long)at(ind, 0, ncompressed), (long long)nnz);
    for (int64_t i = 0; i < ncompressed; i++) {
        int64_t lo = at(ind, 0, i), hi = at(ind, 0, i + 1);
        if (hi < lo || hi > nnz) /* checked before the plain indices in [lo, hi) are read */
            return ck_error_set(err, CKPT_ERR_TENSOR, "sparse compressed tensor: %s[%lld] = %lld is not between %lld and nnz",
                                what, (long long)i + 1, (long long)hi, (long long)lo);
        for (int64_t k = lo; k < hi; k++) {
            int64_t x = at(plain, 0, k);
            if (x < 0 || x >= plain_size)
                return ck_error_set(err, CKPT_ERR_TENSOR, "sparse compressed tensor: plain index %lld at %lld is outside 0..%lld",
                                    (long long)x, (long long)k, (long long)plain_size - 1);
            if (k > lo && x <= at(plain, 0, k - 1))
                return ck_error_set(err, CKPT_ERR_TENSOR,
                                    "sparse compressed tensor: plain indices of %s %lld are not sorted and distinct",
                                    by_row ? "row" : "column", (long long)i);
        }
    }
    return CKPT_OK;
}
