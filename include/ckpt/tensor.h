/*
 * tensor.h: dtypes, tensors and storages.
 *
 * A tensor views a storage: element (i0, i1, ...) lives at storage element
 *   storage_offset + i0 * stride[0] + i1 * stride[1] + ...
 * Every tensor a load returns has been checked: no index reaches outside its storage, and the storage's
 * bytes (numel x itemsize) are all present. Tensors that share a storage (tied weights, views) point to
 * the same ckpt_storage. All pointers stay valid until the owning checkpoint is freed; the objects are
 * immutable, so any number of threads may read them at once.
 */
#ifndef CKPT_TENSOR_H
#define CKPT_TENSOR_H

#include <stdbool.h>
#include "common.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Values are stable across releases; new dtypes are only appended. */
typedef enum ckpt_dtype {
    CKPT_DTYPE_INVALID = 0,
    CKPT_DTYPE_FLOAT32,
    CKPT_DTYPE_FLOAT64,
    CKPT_DTYPE_FLOAT16,
    CKPT_DTYPE_BFLOAT16,
    CKPT_DTYPE_COMPLEX32,
    CKPT_DTYPE_COMPLEX64,
    CKPT_DTYPE_COMPLEX128,
    CKPT_DTYPE_INT8,
    CKPT_DTYPE_INT16,
    CKPT_DTYPE_INT32,
    CKPT_DTYPE_INT64,
    CKPT_DTYPE_UINT8,
    CKPT_DTYPE_UINT16,
    CKPT_DTYPE_UINT32,
    CKPT_DTYPE_UINT64,
    CKPT_DTYPE_BOOL,
    CKPT_DTYPE_QINT8,
    CKPT_DTYPE_QUINT8,
    CKPT_DTYPE_QINT32,
    CKPT_DTYPE_QUINT4X2,
    CKPT_DTYPE_QUINT2X4,
    CKPT_DTYPE_FLOAT8_E4M3FN,
    CKPT_DTYPE_FLOAT8_E5M2,
    CKPT_DTYPE_FLOAT8_E4M3FNUZ,
    CKPT_DTYPE_FLOAT8_E5M2FNUZ,
    CKPT_DTYPE_FLOAT8_E8M0FNU,
    CKPT_DTYPE_BITS8,
    CKPT_DTYPE_BITS16,
    CKPT_DTYPE_BITS1X8,
    CKPT_DTYPE_BITS2X4,
    CKPT_DTYPE_BITS4X2,
    CKPT_DTYPE_FLOAT4_E2M1FN_X2,
    /* sub-byte "shell" dtypes (one byte per element in storage; used by tensor subclasses) */
    CKPT_DTYPE_UINT1, CKPT_DTYPE_UINT2, CKPT_DTYPE_UINT3, CKPT_DTYPE_UINT4, CKPT_DTYPE_UINT5, CKPT_DTYPE_UINT6,
    CKPT_DTYPE_UINT7, CKPT_DTYPE_INT1, CKPT_DTYPE_INT2, CKPT_DTYPE_INT3, CKPT_DTYPE_INT4, CKPT_DTYPE_INT5,
    CKPT_DTYPE_INT6, CKPT_DTYPE_INT7,
    CKPT_DTYPE_COUNT_ /* not a dtype */
} ckpt_dtype;

/* torch's name without "torch.": "float32", "bfloat16", "bool"; "invalid" for an unknown value. */
CKPT_API const char *ckpt_dtype_name(ckpt_dtype dtype);
/*
 * Bytes per element (1 for bool and the packed/bits types); 0 for an unknown value. quint4x2 and
 * quint2x4 tensors count 4-bit / 2-bit values in their shape, 2 / 4 to a byte: for them
 * ckpt_tensor_nbytes is numel / 2 (/ 4) rounded up, and the data is the packed bytes.
 */
CKPT_API size_t ckpt_dtype_itemsize(ckpt_dtype dtype);
/* Accepts "float32", "torch.float32" and torch's aliases ("float", "half", "long", "cfloat"...). */
CKPT_API ckpt_dtype ckpt_dtype_from_name(const char *name);

typedef struct ckpt_tensor ckpt_tensor;
typedef struct ckpt_storage ckpt_storage;

CKPT_API ckpt_dtype ckpt_tensor_dtype(const ckpt_tensor *t);
CKPT_API size_t ckpt_tensor_ndim(const ckpt_tensor *t);
/* Arrays of ndim entries (NULL when ndim is 0). */
CKPT_API const int64_t *ckpt_tensor_shape(const ckpt_tensor *t);
CKPT_API const int64_t *ckpt_tensor_stride(const ckpt_tensor *t);
/* In elements, like torch's storage_offset(). */
CKPT_API int64_t ckpt_tensor_storage_offset(const ckpt_tensor *t);
CKPT_API uint64_t ckpt_tensor_numel(const ckpt_tensor *t);
/* numel x itemsize (packed quint4x2/quint2x4: their bytes): the size of a contiguous copy. */
CKPT_API uint64_t ckpt_tensor_nbytes(const ckpt_tensor *t);
CKPT_API bool ckpt_tensor_is_contiguous(const ckpt_tensor *t);
CKPT_API bool ckpt_tensor_requires_grad(const ckpt_tensor *t);
/* True for torch.nn.Parameter (built by _rebuild_parameter). */
CKPT_API bool ckpt_tensor_is_parameter(const ckpt_tensor *t);
CKPT_API const ckpt_storage *ckpt_tensor_storage(const ckpt_tensor *t);
/*
 * Address of element (0, 0, ...), i.e. the storage bytes plus storage_offset x itemsize, in host byte
 * order. NULL when the checkpoint was loaded without data (CKPT_LOAD_SKIP_DATA) or the tensor has no
 * storage (meta tensors). Elements are reached with the strides above.
 */
CKPT_API const void *ckpt_tensor_data(const ckpt_tensor *t);
/*
 * Copies the logical elements in C (row-major) order into dst, whatever the strides. dst_len must be
 * at least ckpt_tensor_nbytes(t).
 */
CKPT_API ckpt_status ckpt_tensor_copy_contiguous(const ckpt_tensor *t, void *dst, size_t dst_len,
                                                 ckpt_error *err);
/*
 * XXH3-64 (seed 0) of the logical elements in C order, little-endian: the same digest whatever the
 * strides, offset or byte order of the file. Fails only when the tensor has no data.
 */
CKPT_API ckpt_status ckpt_tensor_xxh3_64(const ckpt_tensor *t, uint64_t *digest, ckpt_error *err);

/*
 * The device the tensor lives on in PyTorch ("cpu", "cuda:0", "meta", "xla:0"): the storage's location,
 * or what the file says for tensors without a storage (meta tensors, wrapper subclasses) or rebuilt on
 * another device (_rebuild_device_tensor_from_cpu_tensor). libckpt always gives host memory.
 */
CKPT_API const char *ckpt_tensor_device(const ckpt_tensor *t);
/*
 * The Python class: "torch.Tensor", "torch.nn.parameter.Parameter", or an allowed tensor subclass's
 * "module.name" (rebuilt through torch._tensor._rebuild_from_type_v2 or _rebuild_wrapper_subclass).
 */
CKPT_API const char *ckpt_tensor_type_name(const ckpt_tensor *t);

/* ---- quantized tensors (torch._utils._rebuild_qtensor) ---- */

/* Values are stable across releases (torch's c10::QScheme order, plus NONE). */
typedef enum ckpt_qscheme {
    CKPT_QSCHEME_NONE = 0,                 /* not a quantized tensor */
    CKPT_QSCHEME_PER_TENSOR_AFFINE,
    CKPT_QSCHEME_PER_CHANNEL_AFFINE,
    CKPT_QSCHEME_PER_TENSOR_SYMMETRIC,
    CKPT_QSCHEME_PER_CHANNEL_SYMMETRIC,
    CKPT_QSCHEME_PER_CHANNEL_AFFINE_FLOAT_QPARAMS
} ckpt_qscheme;

/* torch's name without "torch.": "per_tensor_affine"; "none" for CKPT_QSCHEME_NONE. */
CKPT_API const char *ckpt_qscheme_name(ckpt_qscheme q);
/*
 * A quantized tensor's dtype is qint8, quint8, qint32, quint4x2 or quint2x4; its data are the stored
 * integers (torch's int_repr()). real value = (stored - zero_point) x scale.
 */
CKPT_API ckpt_qscheme ckpt_tensor_qscheme(const ckpt_tensor *t);
/* Per-tensor schemes: the scale and zero point (0 for other tensors). */
CKPT_API double ckpt_tensor_q_scale(const ckpt_tensor *t);
CKPT_API int64_t ckpt_tensor_q_zero_point(const ckpt_tensor *t);
/*
 * Per-channel schemes: the quantized dimension (-1 for other tensors) and the 1-D tensors of
 * shape[axis] scales (float64, or float32 for float qparams) and zero points (int64, or float32 for
 * per_channel_affine_float_qparams); NULL for other tensors.
 */
CKPT_API int64_t ckpt_tensor_q_axis(const ckpt_tensor *t);
CKPT_API const ckpt_tensor *ckpt_tensor_q_scales(const ckpt_tensor *t);
CKPT_API const ckpt_tensor *ckpt_tensor_q_zero_points(const ckpt_tensor *t);

/* ---- sparse tensors (torch._utils._rebuild_sparse_tensor, _rebuild_sparse_csr_tensor) ---- */

/* Values are stable across releases. */
typedef enum ckpt_layout {
    CKPT_LAYOUT_STRIDED = 0,
    CKPT_LAYOUT_SPARSE_COO,
    CKPT_LAYOUT_SPARSE_CSR,
    CKPT_LAYOUT_SPARSE_CSC,
    CKPT_LAYOUT_SPARSE_BSR,
    CKPT_LAYOUT_SPARSE_BSC
} ckpt_layout;

/* torch's name without "torch.": "sparse_coo", "sparse_csr"... */
CKPT_API const char *ckpt_layout_name(ckpt_layout layout);

/*
 * A sparse tensor is a value of kind CKPT_KIND_SPARSE (ckpt_value_sparse) made of ordinary strided
 * tensors, which the tensor index lists under the sparse tensor's key: "<key>.indices" and
 * "<key>.values" (COO), "<key>.crow_indices" / ".col_indices" (CSR, BSR), "<key>.ccol_indices" /
 * ".row_indices" (CSC, BSC), then "<key>.values". The checks PyTorch makes on load (index ranges,
 * compressed indices non-decreasing from 0 to nnz) have been made whenever data was loaded.
 */
typedef struct ckpt_sparse ckpt_sparse;

CKPT_API ckpt_layout ckpt_sparse_layout(const ckpt_sparse *s);
/* The element type (the values' dtype). */
CKPT_API ckpt_dtype ckpt_sparse_dtype(const ckpt_sparse *s);
/* The dense shape. */
CKPT_API size_t ckpt_sparse_ndim(const ckpt_sparse *s);
CKPT_API const int64_t *ckpt_sparse_shape(const ckpt_sparse *s);
CKPT_API bool ckpt_sparse_requires_grad(const ckpt_sparse *s);
/* COO: the saved is_coalesced flag (false when the file predates it). */
CKPT_API bool ckpt_sparse_is_coalesced(const ckpt_sparse *s);
/* COO: indices (int64, sparse_dim x nnz); CSR/BSR: crow_indices; CSC/BSC: ccol_indices. */
CKPT_API const ckpt_tensor *ckpt_sparse_indices(const ckpt_sparse *s);
/* CSR/BSR: col_indices; CSC/BSC: row_indices; NULL for COO. */
CKPT_API const ckpt_tensor *ckpt_sparse_plain_indices(const ckpt_sparse *s);
CKPT_API const ckpt_tensor *ckpt_sparse_values(const ckpt_sparse *s);

/*
 * The storage key: the record name under `<prefix>/data/` ("0", "1", ...) for zip checkpoints; the
 * saved storage id (a decimal number) for the legacy and tar formats.
 */
CKPT_API const char *ckpt_storage_key(const ckpt_storage *s);
CKPT_API ckpt_dtype ckpt_storage_dtype(const ckpt_storage *s);
CKPT_API uint64_t ckpt_storage_numel(const ckpt_storage *s);
CKPT_API uint64_t ckpt_storage_nbytes(const ckpt_storage *s);
/* The device string the file recorded ("cpu", "cuda:0"); libckpt always gives host memory. */
CKPT_API const char *ckpt_storage_location(const ckpt_storage *s);
/* The bytes, in host byte order; NULL when loaded without data. */
CKPT_API const void *ckpt_storage_data(const ckpt_storage *s);

#ifdef __cplusplus
}
#endif
#endif
