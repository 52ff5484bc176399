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

struct ckpt_storage {
    const char *key;      /* record name under <prefix>/data/ */
    const char *location; /* "cpu", "cuda:0" */
    uint64_t numel;       /* elements of `dtype` */
    uint64_t nbytes;
    const uint8_t *data;  /* NULL until resolved, or when loaded without data */
    uint32_t index;       /* position in the checkpoint's storage list */
    uint8_t dtype;        /* ckpt_dtype; UINT8 for untyped storages */
    uint8_t flags;
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
    const char *type_name; /* "torch.Tensor", "torch.nn.parameter.Parameter" */
    ckpt_value *extra;     /* backward hooks, metadata or state the pickle carried, or NULL */
};

/*
 * Checks a tensor against its storage with checked arithmetic: non-negative sizes, strides and offset,
 * numel x itemsize representable, the offset inside the storage even for empty tensors, and the
 * farthest element inside the storage. Sets t->numel.
 */
ckpt_status ck_tensor_validate(ckpt_tensor *t, uint32_t max_ndim, ckpt_error *err);

/* Calls fn for each maximal contiguous byte run of t's logical elements, in C order. */
typedef void (*ck_run_fn)(const uint8_t *p, size_t n, void *ctx);
void ck_tensor_for_each_run(const ckpt_tensor *t, ck_run_fn fn, void *ctx);

#endif
