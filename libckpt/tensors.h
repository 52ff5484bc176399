/* tensors.h: the layout of tensors and storages, and the checks that keep every element in bounds. */
#ifndef CK_TENSORS_H
#define CK_TENSORS_H

#include <stdbool.h>
#include "ckpt/tensor.h"
#include "errors.h"
#include "node.h"

/* Storage flags. */
#define CK_SF_RESOLVED 0x1u /* data points at the record's bytes (or a copy of them) */
#define CK_SF_UNTYPED 0x2u  /* named by torch.UntypedStorage: a byte buffer that tensors view with any dtype */
#define CK_SF_INLINE 0x4u   /* bytes carried inside the pickle (a NumPy array), not a storage record: no key */
#define CK_SF_VIEW 0x8u     /* legacy/tar storage view: bytes [base_offset, base_offset + nbytes) of `base` */
#define CK_SF_SWAP_MIXED 0x10u /* untyped storage viewed with dtypes of different byte-swap units */

struct ckpt_storage {
    const char *key;      /* record name under <prefix>/data/ (legacy/tar: the saved storage id) */
    const char *location; /* "cpu", "cuda:0" */
    uint64_t numel;       /* elements of `dtype` */
    uint64_t nbytes;
    const uint8_t *data;  /* NULL until resolved, or when loaded without data */
    ckpt_storage *base;   /* CK_SF_VIEW: the storage this one slices */
    uint64_t base_offset; /* CK_SF_VIEW: byte offset in base */
    uint32_t index;       /* position in the checkpoint's storage list */
    uint8_t dtype;        /* ckpt_dtype; UINT8 for untyped storages */
    uint8_t flags;
    uint8_t view_swap;    /* untyped storages: byte-swap unit of the dtype tensors view it with (0: none yet) */
};

/* Quantization parameters of a quantized tensor (torch._utils._rebuild_qtensor). */
typedef struct ck_quant {
    uint8_t qscheme;            /* ckpt_qscheme */
    double scale;               /* per-tensor */
    int64_t zero_point;         /* per-tensor */
    int64_t axis;               /* per-channel, else -1 */
    const ckpt_tensor *scales;  /* per-channel: 1-D, shape[axis] entries */
    const ckpt_tensor *zero_points;
} ck_quant;

/* A sparse tensor (value kind CKPT_KIND_SPARSE): layout, dense shape and component tensors. */
struct ckpt_sparse {
    uint8_t layout;       /* ckpt_layout */
    uint8_t dtype;        /* of values */
    bool requires_grad;
    bool coalesced;
    bool legacy_csr;      /* built by torch <= 1.13's _rebuild_sparse_csr_tensor (the writer keeps the name) */
    uint32_t ndim;
    int64_t *shape;
    ckpt_value *indices;  /* TENSOR nodes: COO indices, or compressed indices */
    ckpt_value *plain;    /* compressed layouts: plain indices; NULL for COO */
    ckpt_value *values;
};

struct ckpt_tensor {
    ckpt_storage *storage; /* NULL for tensors without storage (meta) */
    int64_t *shape, *stride;
    int64_t storage_offset; /* elements of `dtype` */
    uint64_t numel;
    uint32_t ndim;
    uint8_t dtype;
    bool requires_grad;
    bool is_parameter;
    const char *type_name; /* "torch.Tensor", "torch.nn.parameter.Parameter", or an allowed subclass */
    bool subclass;         /* type_name is a tensor subclass (_rebuild_from_type_v2, _rebuild_wrapper_subclass) */
    const char *device;    /* set when not the storage's location: meta tensors, wrappers, device rebuilds */
    const ck_quant *quant; /* quantized tensors, else NULL */
    ckpt_value *extra;     /* backward hooks, metadata or state the pickle carried, or NULL */
    uint8_t extra_kind;    /* CK_TX_*: which of these `extra` is (the writer puts it back in its place) */
};

/* ckpt_tensor.extra_kind */
#define CK_TX_NONE 0u
#define CK_TX_HOOKS 1u    /* a non-empty backward_hooks dict */
#define CK_TX_METADATA 2u /* the metadata dict of _rebuild_tensor_v2/v3 ({"conj": True}, {"neg": True}) */
#define CK_TX_STATE 3u    /* Python attributes: _rebuild_parameter_with_state / _rebuild_from_type_v2 state */

/*
 * Checks a tensor against its storage with checked arithmetic: non-negative sizes, strides and offset,
 * numel x itemsize representable, the offset inside the storage even for empty tensors, and the
 * farthest element inside the storage. Sets t->numel.
 */
ckpt_status ck_tensor_validate(ckpt_tensor *t, uint32_t max_ndim, ckpt_error *err);

/* Calls fn for each maximal contiguous byte run of t's logical elements, in C order. */
typedef void (*ck_run_fn)(const uint8_t *p, size_t n, void *ctx);
void ck_tensor_for_each_run(const ckpt_tensor *t, ck_run_fn fn, void *ctx);

/*
 * PyTorch's load-time checks of a sparse tensor whose component data is loaded (sparse.c):
 * torch._validate_sparse_coo_tensor_args / _validate_sparse_compressed_tensor_args.
 */
ckpt_status ck_sparse_check(const ckpt_sparse *s, ckpt_error *err);

#endif
