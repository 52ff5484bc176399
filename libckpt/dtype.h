/* dtype.h: the dtype table (names, item sizes, legacy storage classes). */
#ifndef CK_DTYPE_H
#define CK_DTYPE_H

#include "ckpt/tensor.h"

typedef struct ck_dtype_info {
    const char *name;          /* "float32" */
    unsigned itemsize;         /* bytes per element */
    const char *storage_class; /* "FloatStorage": the legacy typed storage class, or NULL */
    unsigned swap_unit;        /* byte-swap unit for big-endian files (complex: the component size) */
    unsigned pack;             /* values per byte when a tensor's shape counts sub-byte values
                                  (quint4x2: 2, quint2x4: 4); 0 otherwise */
} ck_dtype_info;

const ck_dtype_info *ck_dtype_info_of(ckpt_dtype dtype);
/* The dtype a torch global names: "float32", "half", "cfloat" (module "torch"); INVALID if none. */
ckpt_dtype ck_dtype_from_torch_attr(const char *name);
/* The dtype of a legacy storage class name ("FloatStorage"); INVALID if none. */
ckpt_dtype ck_dtype_from_storage_class(const char *name);

#endif
