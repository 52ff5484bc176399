/*
 * value.h: the value tree a pickle turns into.
 *
 * A loaded checkpoint is a tree (in fact a DAG: a memoised object can appear at several places) of
 * ckpt_value nodes, all owned by the checkpoint and freed with it. Nodes are immutable after the load,
 * so any number of threads may read one checkpoint at once. Nothing here ever runs Python code: objects
 * of allowed classes are plain data (class name, constructor arguments, state).
 */
#ifndef CKPT_VALUE_H
#define CKPT_VALUE_H

#include <stdbool.h>
#include "common.h"
#include "error.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ckpt_value ckpt_value;

/* Values are stable across releases; new kinds are only appended. */
typedef enum ckpt_kind {
    CKPT_KIND_NONE = 0,
    CKPT_KIND_BOOL,
    CKPT_KIND_INT,       /* arbitrary precision; see ckpt_value_int64 / ckpt_value_int_bytes */
    CKPT_KIND_FLOAT,
    CKPT_KIND_COMPLEX,
    CKPT_KIND_STR,       /* UTF-8 (lone surrogates kept as 3-byte sequences, as pickle allows) */
    CKPT_KIND_BYTES,
    CKPT_KIND_BYTEARRAY,
    CKPT_KIND_LIST,
    CKPT_KIND_TUPLE,     /* also torch.Size (type name "torch.Size") */
    CKPT_KIND_DICT,      /* dict, collections.OrderedDict, Counter...: insertion order is kept */
    CKPT_KIND_SET,
    CKPT_KIND_FROZENSET,
    CKPT_KIND_TENSOR,
    CKPT_KIND_STORAGE,   /* a bare storage that is not wrapped in a tensor */
    CKPT_KIND_DTYPE,     /* a torch.dtype object, e.g. torch.float16 */
    CKPT_KIND_DEVICE,    /* a torch.device; ckpt_value_str gives "cpu", "cuda:0" */
    CKPT_KIND_GLOBAL,    /* an allowed global used as a value and not called (a class, a qscheme...) */
    CKPT_KIND_OBJECT,    /* an instance of an allowed class: class name + args + state + items */
    CKPT_KIND_CALL,      /* the recorded (never performed) call of an allowed function; type name "call" */
    CKPT_KIND_SPARSE     /* a sparse tensor (COO/CSR/CSC/BSR/BSC): see ckpt_value_sparse */
} ckpt_kind;

CKPT_API ckpt_kind ckpt_value_kind(const ckpt_value *v);
/*
 * The Python type name: "NoneType", "int", "str", "collections.OrderedDict", "torch.Size",
 * "torch.Tensor", "torch.nn.parameter.Parameter", or "module.qualname" of an object's class.
 */
CKPT_API const char *ckpt_value_type_name(const ckpt_value *v);

CKPT_API bool ckpt_value_bool(const ckpt_value *v);
/* CKPT_ERR_TYPE when v is not an int or bool; CKPT_ERR_LIMIT when it does not fit in int64_t. */
CKPT_API ckpt_status ckpt_value_int64(const ckpt_value *v, int64_t *out);
/*
 * Any int as little-endian two's complement bytes (minimal length, at least 1). *out points into
 * memory owned by v or, for ints that fit in 64 bits, into `scratch` (8 bytes the caller provides).
 */
CKPT_API size_t ckpt_value_int_bytes(const ckpt_value *v, uint8_t scratch[8], const uint8_t **out);
/* Exact decimal text of an int, e.g. "-18446744073709551616". Free with ckpt_free(). */
CKPT_API char *ckpt_value_int_to_string(const ckpt_value *v);
CKPT_API double ckpt_value_float(const ckpt_value *v);
CKPT_API void ckpt_value_complex(const ckpt_value *v, double *real, double *imag);
/*
 * Bytes of a str (UTF-8), bytes, bytearray or device (its name); NUL-terminated as well, but may
 * contain NULs: use *len. NULL for other kinds.
 */
CKPT_API const char *ckpt_value_str(const ckpt_value *v, size_t *len);
CKPT_API ckpt_dtype ckpt_value_dtype(const ckpt_value *v);
/* The tensor of a CKPT_KIND_TENSOR node, the storage of a CKPT_KIND_STORAGE node; else NULL. */
CKPT_API const ckpt_tensor *ckpt_value_tensor(const ckpt_value *v);
CKPT_API const ckpt_storage *ckpt_value_storage(const ckpt_value *v);
/* The sparse tensor of a CKPT_KIND_SPARSE node; else NULL. Its component tensors are its children. */
CKPT_API const ckpt_sparse *ckpt_value_sparse(const ckpt_value *v);

/* Number of items of a list/tuple/set/frozenset/dict, or of an object's list items. 0 otherwise. */
CKPT_API size_t ckpt_value_len(const ckpt_value *v);
/* Item i of a list/tuple/set/frozenset (sets keep the pickle's order), or NULL. */
CKPT_API const ckpt_value *ckpt_value_item(const ckpt_value *v, size_t i);
/* Entry i of a dict, in insertion order. */
CKPT_API const ckpt_value *ckpt_value_dict_key(const ckpt_value *v, size_t i);
CKPT_API const ckpt_value *ckpt_value_dict_value(const ckpt_value *v, size_t i);
/* The value stored under a str key, or NULL. */
CKPT_API const ckpt_value *ckpt_value_dict_get(const ckpt_value *v, const char *key);
/* Attributes that BUILD set on a container (an OrderedDict's _metadata), as a dict; or NULL. */
CKPT_API const ckpt_value *ckpt_value_attrs(const ckpt_value *v);

/* For GLOBAL, OBJECT and CALL nodes: the global's module and name (e.g. "argparse", "Namespace"). */
CKPT_API const char *ckpt_value_global_module(const ckpt_value *v);
CKPT_API const char *ckpt_value_global_name(const ckpt_value *v);
/* For OBJECT and CALL nodes: the constructor/call arguments (a tuple), or NULL. */
CKPT_API const ckpt_value *ckpt_value_object_args(const ckpt_value *v);
/* For OBJECT nodes: keyword arguments of NEWOBJ_EX (a dict), or NULL. */
CKPT_API const ckpt_value *ckpt_value_object_kwargs(const ckpt_value *v);
/* For OBJECT nodes: the state BUILD gave it (often a dict of attributes), or NULL. */
CKPT_API const ckpt_value *ckpt_value_object_state(const ckpt_value *v);
/* For OBJECT nodes: items APPEND(S) and SETITEM(S) added (a list and a dict), or NULL. */
CKPT_API const ckpt_value *ckpt_value_object_list_items(const ckpt_value *v);
CKPT_API const ckpt_value *ckpt_value_object_dict_items(const ckpt_value *v);

#ifdef __cplusplus
}
#endif
#endif
