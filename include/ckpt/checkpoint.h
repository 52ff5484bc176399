/*
 * checkpoint.h: loading a checkpoint, load options, finding and walking values, JSON output.
 *
 * Ownership: ckpt_load_* returns a checkpoint that owns every value, tensor and storage reachable from
 * it (one arena: ckpt_checkpoint_free releases all of it). A loaded checkpoint is immutable; any number
 * of threads may read it at once.
 */
#ifndef CKPT_CHECKPOINT_H
#define CKPT_CHECKPOINT_H

#include <stdbool.h>
#include "common.h"
#include "error.h"
#include "registry.h"
#include "tensor.h"
#include "value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ckpt_load_options ckpt_load_options;
typedef struct ckpt_checkpoint ckpt_checkpoint;

/* Load flags (ckpt_load_options_set_flags). */
#define CKPT_LOAD_MMAP 0x1u       /* map the file and point stored tensors into the mapping (zero copy;
                                     the file must not be truncated while the checkpoint lives) */
#define CKPT_LOAD_BORROW 0x2u     /* ckpt_load_memory: point tensors into the caller's buffer, which must
                                     outlive the checkpoint, instead of copying */
#define CKPT_LOAD_SKIP_DATA 0x4u  /* parse and check metadata only; tensors have no data (like torch's
                                     skip_data); storage records must still exist with the right size */
#define CKPT_LOAD_NO_DATA_CRC 0x8u /* skip the CRC-32 check of storage records (metadata records are
                                      always checked); with CKPT_LOAD_MMAP this keeps the load lazy */
#define CKPT_LOAD_TORCHSCRIPT 0x10u /* read a TorchScript archive (torch.jit.save) as data: its data.pkl
                                      becomes the root, `__torch__.*` module classes become objects
                                      (class name + attributes) and torch.jit._pickle helpers give their
                                      argument back. Its code/ is never read or run. Without this flag a
                                      TorchScript archive fails with CKPT_ERR_UNSUPPORTED (it is not a
                                      checkpoint, and nothing else should mistake it for one) */
#define CKPT_LOAD_MODEL 0x20u     /* model mode, for whole-model pickles (torch.save(model)): a class outside
                                      the registry that is the class of a module object is recorded as an
                                      opaque object (class name + state), never resolved or called; such a
                                      name may also appear as a plain value (an activation function stored
                                      in an attribute). Calls of anything else are still refused, and so are
                                      never-allowed names. Every opaque object must turn out to be an
                                      nn.Module. The state dict PyTorch's model.state_dict() would give is
                                      computed during the load (include/ckpt/model.h) */

/* Resource limits. 0 as a value restores the default. */
typedef enum ckpt_limit {
    CKPT_LIMIT_MAX_ALLOC = 0,   /* total bytes allocated for one load, tensor copies included.
                                   Default: 4 x input size + 64 MiB. It also bounds the tensors' summed
                                   logical size (numel x itemsize; views with zero strides can describe
                                   far more than the file holds): max(this limit, its default) */
    CKPT_LIMIT_MAX_DEPTH,       /* container nesting (MARK depth, walkers). Default 1000 */
    CKPT_LIMIT_MAX_MEMO,        /* highest memo index + 1. Default 1<<24 */
    CKPT_LIMIT_MAX_STACK,       /* pickle stack entries. Default 1<<24 */
    CKPT_LIMIT_MAX_STRING,      /* bytes of one str/bytes/bytearray. Default 1 GiB */
    CKPT_LIMIT_MAX_INT_BYTES,   /* bytes of one LONG1/LONG4 int (digits/2.4 for text ints). Default 1024 */
    CKPT_LIMIT_MAX_OPCODES,     /* opcodes executed per pickle. Default 1<<32 */
    CKPT_LIMIT_MAX_MEMBERS,     /* zip entries. Default 1<<20 */
    CKPT_LIMIT_MAX_NDIM,        /* tensor dimensions. Default 64 */
    CKPT_LIMIT_COUNT_
} ckpt_limit;

CKPT_API ckpt_load_options *ckpt_load_options_new(void);
CKPT_API void ckpt_load_options_free(ckpt_load_options *opts);
/* The registry is borrowed and must outlive the loads using it. NULL means ckpt_registry_default(). */
CKPT_API void ckpt_load_options_set_registry(ckpt_load_options *opts, const ckpt_registry *reg);
CKPT_API void ckpt_load_options_set_flags(ckpt_load_options *opts, unsigned flags);
CKPT_API unsigned ckpt_load_options_get_flags(const ckpt_load_options *opts);
CKPT_API ckpt_status ckpt_load_options_set_limit(ckpt_load_options *opts, ckpt_limit which, uint64_t value);
/* The configured value, or the default (for MAX_ALLOC: 0 = "derived from the input size"). */
CKPT_API uint64_t ckpt_load_options_get_limit(const ckpt_load_options *opts, ckpt_limit which);

/*
 * Load a checkpoint. opts may be NULL (defaults). On success *out receives a checkpoint to free with
 * ckpt_checkpoint_free; on failure *out is NULL, the status is returned and err (if not NULL) says what
 * and where. CKPT_ERR_BLOCKED means the file names a global the registry does not allow.
 */
CKPT_API ckpt_status ckpt_load_file(const char *path, const ckpt_load_options *opts,
                                    ckpt_checkpoint **out, ckpt_error *err);
CKPT_API ckpt_status ckpt_load_memory(const void *data, size_t len, const ckpt_load_options *opts,
                                      ckpt_checkpoint **out, ckpt_error *err);
CKPT_API void ckpt_checkpoint_free(ckpt_checkpoint *ckpt);

typedef enum ckpt_format {
    CKPT_FORMAT_ZIP = 0,     /* torch.save since 1.6 */
    CKPT_FORMAT_LEGACY,      /* torch.save before 1.6 or with _use_new_zipfile_serialization=False */
    CKPT_FORMAT_TAR,         /* torch 0.1 - 0.3 */
    CKPT_FORMAT_TORCHSCRIPT, /* torch.jit.save */
    CKPT_FORMAT_SAFETENSORS  /* Hugging Face safetensors (header + raw data, no pickle) */
} ckpt_format;

CKPT_API ckpt_format ckpt_checkpoint_format(const ckpt_checkpoint *ckpt);
/* "zip", "legacy", "tar", "torchscript", "safetensors". */
CKPT_API const char *ckpt_format_name(ckpt_format format);
/* The zip's top-level folder ("archive"), or "" for formats without one (safetensors). */
CKPT_API const char *ckpt_checkpoint_archive_prefix(const ckpt_checkpoint *ckpt);
/* True when the file's data is big-endian (the `byteorder` record); data is returned in host order. */
CKPT_API bool ckpt_checkpoint_big_endian(const ckpt_checkpoint *ckpt);
CKPT_API const ckpt_value *ckpt_checkpoint_root(const ckpt_checkpoint *ckpt);

/* Every global the main pickle references, as sorted unique "module.name" strings. */
CKPT_API size_t ckpt_checkpoint_num_globals(const ckpt_checkpoint *ckpt);
CKPT_API const char *ckpt_checkpoint_global(const ckpt_checkpoint *ckpt, size_t i);

/*
 * Tensors in walk order (depth-first, dict insertion order, each tensor object once), each with the
 * dotted key of the first path that reaches it ("layer1.0.weight", "optimizer.state.0.exp_avg").
 */
CKPT_API size_t ckpt_checkpoint_num_tensors(const ckpt_checkpoint *ckpt);
CKPT_API const ckpt_tensor *ckpt_checkpoint_tensor(const ckpt_checkpoint *ckpt, size_t i, const char **key);

/*
 * The value at a dotted key. Dict keys may themselves contain dots (state dicts do): the longest key
 * that matches wins. Int keys and list indices match their decimal text. NULL when absent.
 */
CKPT_API const ckpt_value *ckpt_checkpoint_find(const ckpt_checkpoint *ckpt, const char *dotted_key);
/* Same, but only returns tensors (NULL when the value is absent or not a tensor). */
CKPT_API const ckpt_tensor *ckpt_checkpoint_find_tensor(const ckpt_checkpoint *ckpt, const char *dotted_key);

/* Walker callback: return one of these. */
typedef enum ckpt_walk_action {
    CKPT_WALK_CONTINUE = 0, /* descend into this node's children */
    CKPT_WALK_SKIP = 1,     /* do not descend into this node */
    CKPT_WALK_STOP = 2      /* end the walk (ckpt_walk returns CKPT_OK) */
} ckpt_walk_action;
typedef ckpt_walk_action (*ckpt_walk_fn)(const char *path, size_t path_len, const ckpt_value *value,
                                         void *user);
/*
 * Depth-first pre-order walk from `start` (NULL: the root), iterative (no recursion), visiting every
 * node once even when it is shared, with its dotted path (see docs/inspect-json.md for the rules).
 * Fails with CKPT_ERR_LIMIT when nesting exceeds the depth limit the checkpoint was loaded with, or a
 * dotted path would exceed 1 MiB (a load fails the same way: it indexes tensors by path).
 */
CKPT_API ckpt_status ckpt_walk(const ckpt_checkpoint *ckpt, const ckpt_value *start, ckpt_walk_fn fn,
                               void *user, ckpt_error *err);

/* JSON output (flags for ckpt_checkpoint_to_json). */
#define CKPT_JSON_PRETTY 0x1u    /* indent by 2 */
#define CKPT_JSON_NO_DIGEST 0x2u /* leave out xxh3_64 (no tensor data is read) */
/*
 * The `ckpt inspect --json` document (docs/inspect-json.md). file_label becomes the "file" field.
 * *out receives NUL-terminated UTF-8 to release with ckpt_free. CKPT_ERR_LIMIT when the document would
 * be larger than the CKPT_LIMIT_MAX_ALLOC the checkpoint was loaded with (dotted paths repeat their
 * ancestors' keys, so a small hostile file could otherwise ask for gigabytes).
 */
CKPT_API ckpt_status ckpt_checkpoint_to_json(const ckpt_checkpoint *ckpt, const char *file_label,
                                             unsigned flags, char **out, ckpt_error *err);

#ifdef __cplusplus
}
#endif
#endif
