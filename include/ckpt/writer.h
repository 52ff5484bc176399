/*
 * writer.h: building value trees from C, and saving value trees as PyTorch (.pt) or safetensors files.
 *
 * Build:
 *   ckpt_builder *b = ckpt_builder_new();
 *   ckpt_value *sd = ckpt_builder_ordered_dict(b);
 *   int64_t shape[2] = {8, 4};
 *   ckpt_value *w = ckpt_builder_tensor_from_data(b, CKPT_DTYPE_FLOAT32, weights, 2, shape, 0, err);
 *   ckpt_builder_dict_set_str(b, sd, "fc.weight", w, err);
 *   ckpt_save_file(sd, "model.pt", NULL, err);      // torch.load("model.pt", weights_only=True) reads it
 *   ckpt_builder_free(b);
 *
 * Re-save or convert a loaded checkpoint:
 *   ckpt_checkpoint_save_file(ck, "model.safetensors", NULL, err);
 *
 * Ownership: a builder owns every value it creates (one arena; ckpt_builder_free releases them all).
 * Tensor data is never copied: a storage points at the caller's memory, which must stay valid and
 * unchanged until the last save that uses it returns. Containers may also hold values of a loaded
 * checkpoint (which must then outlive the builder's values); the builder never modifies them.
 * A builder is not thread-safe; saving only reads the tree, so a finished tree (or a loaded
 * checkpoint) may be saved from several threads at once.
 */
#ifndef CKPT_WRITER_H
#define CKPT_WRITER_H

#include <stdbool.h>
#include "common.h"
#include "error.h"
#include "registry.h"
#include "tensor.h"
#include "value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ckpt_builder ckpt_builder;
typedef struct ckpt_checkpoint ckpt_checkpoint;

CKPT_API ckpt_builder *ckpt_builder_new(void);
CKPT_API void ckpt_builder_free(ckpt_builder *b);

/* Scalars. NULL only when memory runs out. */
CKPT_API ckpt_value *ckpt_builder_none(ckpt_builder *b);
CKPT_API ckpt_value *ckpt_builder_bool(ckpt_builder *b, bool v);
CKPT_API ckpt_value *ckpt_builder_int(ckpt_builder *b, int64_t v);
/* Any Python int, from little-endian two's complement bytes (len >= 1). */
CKPT_API ckpt_value *ckpt_builder_int_bytes(ckpt_builder *b, const uint8_t *le, size_t len);
/* Any Python int, from decimal text ("-18446744073709551616"). NULL with CKPT_ERR_INVALID_ARG on bad text. */
CKPT_API ckpt_value *ckpt_builder_int_decimal(ckpt_builder *b, const char *text, ckpt_error *err);
CKPT_API ckpt_value *ckpt_builder_float(ckpt_builder *b, double v);
CKPT_API ckpt_value *ckpt_builder_complex(ckpt_builder *b, double real, double imag);
/* str: `len` bytes of UTF-8 (CKPT_NUL_TERMINATED: up to the NUL). Invalid UTF-8 is refused. */
#define CKPT_NUL_TERMINATED ((size_t)-1)
CKPT_API ckpt_value *ckpt_builder_str(ckpt_builder *b, const char *s, size_t len, ckpt_error *err);
CKPT_API ckpt_value *ckpt_builder_bytes(ckpt_builder *b, const void *p, size_t len);
CKPT_API ckpt_value *ckpt_builder_bytearray(ckpt_builder *b, const void *p, size_t len);
/* A torch.dtype object (torch.float16). */
CKPT_API ckpt_value *ckpt_builder_dtype(ckpt_builder *b, ckpt_dtype dtype, ckpt_error *err);
/* A torch.device: "cpu", "cuda", "cuda:1". */
CKPT_API ckpt_value *ckpt_builder_device(ckpt_builder *b, const char *device, ckpt_error *err);
/* A torch.Size (sizes >= 0). */
CKPT_API ckpt_value *ckpt_builder_size(ckpt_builder *b, const int64_t *dims, size_t ndim, ckpt_error *err);

/* Empty containers, filled with the calls below. */
CKPT_API ckpt_value *ckpt_builder_list(ckpt_builder *b);
CKPT_API ckpt_value *ckpt_builder_tuple(ckpt_builder *b);
CKPT_API ckpt_value *ckpt_builder_dict(ckpt_builder *b);
CKPT_API ckpt_value *ckpt_builder_ordered_dict(ckpt_builder *b); /* collections.OrderedDict, like state_dict() */
CKPT_API ckpt_value *ckpt_builder_set(ckpt_builder *b);
CKPT_API ckpt_value *ckpt_builder_frozenset(ckpt_builder *b);

/*
 * Adds `item` to a list, tuple, set or frozenset this builder created (sets follow Python: an equal
 * item is not added twice; unhashable items are refused).
 */
CKPT_API ckpt_status ckpt_builder_append(ckpt_builder *b, ckpt_value *container, const ckpt_value *item,
                                         ckpt_error *err);
/* dict[key] = value with Python semantics (an equal key keeps its place; unhashable keys are refused). */
CKPT_API ckpt_status ckpt_builder_dict_set(ckpt_builder *b, ckpt_value *dict, const ckpt_value *key,
                                           const ckpt_value *value, ckpt_error *err);
CKPT_API ckpt_status ckpt_builder_dict_set_str(ckpt_builder *b, ckpt_value *dict, const char *key,
                                               const ckpt_value *value, ckpt_error *err);
/*
 * Sets an attribute of an OrderedDict, the way state_dict() carries `_metadata` (pickled with BUILD).
 * A root OrderedDict's `__metadata__` attribute (a dict of str to str) becomes the safetensors
 * `__metadata__` header.
 */
CKPT_API ckpt_status ckpt_builder_set_attr(ckpt_builder *b, ckpt_value *ordered_dict, const char *name,
                                           const ckpt_value *value, ckpt_error *err);

/*
 * A storage over `nbytes` bytes of caller memory holding elements of `dtype` in host byte order (nbytes
 * a multiple of the item size). Borrowed, never copied. Quantized and sub-byte shell dtypes (qint8...,
 * uint1..7, int1..7) are refused: PyTorch cannot load them as plain tensors.
 */
CKPT_API const ckpt_storage *ckpt_builder_storage(ckpt_builder *b, ckpt_dtype dtype, const void *data,
                                                  uint64_t nbytes, ckpt_error *err);

/* Tensor flags. */
#define CKPT_TENSOR_REQUIRES_GRAD 0x1u
#define CKPT_TENSOR_PARAMETER 0x2u /* a torch.nn.Parameter (written with _rebuild_parameter) */

/*
 * A tensor viewing `storage` (one made by ckpt_builder_storage, or a loaded checkpoint's): element
 * (i0, i1, ...) is storage element storage_offset + i0*stride[0] + ... . `stride` NULL means
 * contiguous row-major. Checked like a loaded tensor: no element may lie outside the storage.
 * Several tensors may view one storage (tied weights, slices): it is written once and stays shared.
 * `dtype` is the storage's (CKPT_DTYPE_INVALID means the same); a loaded untyped storage (from
 * _rebuild_tensor_v3) may be viewed with any dtype.
 */
CKPT_API ckpt_value *ckpt_builder_tensor(ckpt_builder *b, const ckpt_storage *storage, ckpt_dtype dtype, size_t ndim,
                                         const int64_t *shape, const int64_t *stride, int64_t storage_offset,
                                         unsigned flags, ckpt_error *err);
/* Shorthand: a contiguous tensor over exactly numel x itemsize bytes at `data`, with its own storage. */
CKPT_API ckpt_value *ckpt_builder_tensor_from_data(ckpt_builder *b, ckpt_dtype dtype, const void *data, size_t ndim,
                                                   const int64_t *shape, unsigned flags, ckpt_error *err);

/* ---- saving ---- */

typedef struct ckpt_save_options ckpt_save_options;

typedef enum ckpt_save_format {
    CKPT_SAVE_AUTO = 0,    /* by the file name: ".safetensors" -> safetensors, anything else -> pt */
    CKPT_SAVE_PT,          /* torch.save's zip format */
    CKPT_SAVE_SAFETENSORS
} ckpt_save_format;

/* Save flags. */
#define CKPT_SAVE_FSYNC 0x1u  /* fsync the file, and its folder after the rename, before returning */
#define CKPT_SAVE_DEDUP 0x2u  /* .pt: byte-identical storages of one dtype (XXH3-128, then compared) are
                                 stored once, so they come back shared (tied) on load */
#define CKPT_SAVE_DROP_NON_TENSORS 0x4u /* safetensors: leave out values that are not tensors (ints,
                                           strings...) instead of failing */

CKPT_API ckpt_save_options *ckpt_save_options_new(void);
CKPT_API void ckpt_save_options_free(ckpt_save_options *opts);
CKPT_API void ckpt_save_options_set_format(ckpt_save_options *opts, ckpt_save_format format);
CKPT_API void ckpt_save_options_set_flags(ckpt_save_options *opts, unsigned flags);
/*
 * The folder inside the .pt zip. Default: like torch.save, the file name without folder and extension
 * ("model" for "out/model.pt"), or "archive" when that is empty or for ckpt_save_memory.
 */
CKPT_API ckpt_status ckpt_save_options_set_archive_prefix(ckpt_save_options *opts, const char *prefix,
                                                          ckpt_error *err);
/*
 * The globals a .pt file may name (default: ckpt_registry_default(), i.e. what
 * torch.load(weights_only=True) accepts). Objects of classes outside it are refused with
 * CKPT_ERR_BLOCKED. The registry is borrowed.
 */
CKPT_API void ckpt_save_options_set_registry(ckpt_save_options *opts, const ckpt_registry *reg);
/* An extra safetensors `__metadata__` entry (replaces an equal key of the root's __metadata__). */
CKPT_API ckpt_status ckpt_save_options_add_metadata(ckpt_save_options *opts, const char *key, const char *value,
                                                    ckpt_error *err);

/*
 * Writes `root` to `path`. The bytes go to a temporary file in the same folder that is renamed over
 * `path` only when complete: on any failure nothing is left behind and an existing file at `path` is
 * untouched. A value the format cannot express (or, for .pt, a global the registry does not allow)
 * is an error naming its key, never silently dropped; only the safetensors writer leaves out what that
 * format has no place for (see docs/writing.md).
 */
CKPT_API ckpt_status ckpt_save_file(const ckpt_value *root, const char *path, const ckpt_save_options *opts,
                                    ckpt_error *err);
/* The same into memory; *out (free with ckpt_free) and *len. AUTO means pt. */
CKPT_API ckpt_status ckpt_save_memory(const ckpt_value *root, const ckpt_save_options *opts, void **out, size_t *len,
                                      ckpt_error *err);
/* Saves a loaded checkpoint's root (loaded with data: not with CKPT_LOAD_SKIP_DATA). */
CKPT_API ckpt_status ckpt_checkpoint_save_file(const ckpt_checkpoint *ckpt, const char *path,
                                               const ckpt_save_options *opts, ckpt_error *err);

#ifdef __cplusplus
}
#endif
#endif
