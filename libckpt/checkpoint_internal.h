/* checkpoint_internal.h: the layout of a loaded checkpoint. */
#ifndef CK_CHECKPOINT_INTERNAL_H
#define CK_CHECKPOINT_INTERNAL_H

#include "ckpt/checkpoint.h"
#include "mapfile.h"
#include "node.h"
#include "options.h"
#include "strmap.h"
#include "tensors.h"

typedef struct ck_tensor_ref {
    const ckpt_tensor *t;
    const char *key;
} ck_tensor_ref;

struct ckpt_checkpoint {
    ck_store store;          /* owns every node, string, tensor and storage copy */
    ck_mapped map;           /* the file's bytes, kept while storages point into it */
    ckpt_format format;
    const char *prefix;
    bool big_endian;
    ckpt_value *root;
    const char **globals;    /* sorted unique "module.name" */
    size_t nglobals;
    ck_tensor_ref *tensors;
    size_t ntensors;
    ckpt_storage **storages; /* in the order the pickle named them */
    size_t nstorages, storages_cap;
    ck_strmap storage_by_key; /* key -> the KIND_STORAGE value node */
    ck_limits limits;
    uint64_t max_logical;     /* bound on the tensors' summed numel x itemsize (see build_tensor_index) */
    unsigned flags;
    /* Model mode (CKPT_LOAD_MODEL): the legacy and tar formats' ('module', cls, file, source) persistent
     * ids give cls back (as torch does) instead of being refused. */
    bool accept_module_pids;
    struct ck_model *model;        /* model mode: what model.c extracted (state dict, modules), or NULL */
    struct ck_ts_classes *ts_classes; /* model mode, TorchScript: parameters/buffers per class (ts_code.c) */
};

/* Globals the load's pickles name (sorted into the checkpoint by ck_checkpoint_collect_globals). */
typedef struct ck_globals_ctx {
    ck_strmap seen;
    ck_arena *arena; /* NULL until ck_checkpoint_unpickler first sets it up */
    bool failed;
} ck_globals_ctx;

struct ck_unpickler;
/* Prepares u to run one of c's pickles: store, limits, registry, and recording of globals into g. */
void ck_checkpoint_unpickler(ckpt_checkpoint *c, struct ck_unpickler *u, const ckpt_load_options *opts,
                             ck_globals_ctx *g);
ckpt_status ck_checkpoint_collect_globals(ckpt_checkpoint *c, ck_globals_ctx *g, ckpt_error *err);

/*
 * The storage named `key`, created on first use (numel elements of dtype; for untyped storages, bytes)
 * and the same node afterwards, so that views and tied weights share it. A second use must agree on
 * dtype and size.
 */
ckpt_status ck_checkpoint_storage(ckpt_checkpoint *c, const char *key, size_t klen, ckpt_dtype dtype, bool untyped,
                                  const char *location, size_t loclen, uint64_t numel, ckpt_value **out,
                                  ckpt_error *err);
/* A storage `key` that is numel elements of `base` from element `offset` (legacy/tar storage views). */
ckpt_status ck_checkpoint_view_storage(ckpt_checkpoint *c, ckpt_storage *base, const char *key, size_t klen,
                                       uint64_t offset, uint64_t numel, ckpt_value **out, ckpt_error *err);
/* Points every view storage at its base's data (after the bases are attached). */
void ck_checkpoint_resolve_views(ckpt_checkpoint *c);

/* How ck_storage_attach may use the bytes it is given. */
#define CK_ATTACH_COPY 0u     /* the file's bytes: copy them */
#define CK_ATTACH_IN_PLACE 1u /* the file's bytes, which outlive the checkpoint: point at them unless they need swapping */
#define CK_ATTACH_PRIVATE 2u  /* a copy made for this storage: keep it, swapping it in place if needed */
/* IN_PLACE when the load maps or borrows and the bytes are the input's own (borrowable), else COPY. */
static inline unsigned ck_attach_mode(const ckpt_checkpoint *c, bool borrowable)
{
    return (c->flags & (CKPT_LOAD_MMAP | CKPT_LOAD_BORROW)) && borrowable ? CK_ATTACH_IN_PLACE : CK_ATTACH_COPY;
}
/*
 * Gives a storage its st->nbytes bytes, in host byte order: big_endian says the bytes' order; they are
 * swapped by element (untyped storages by the dtype of the tensors viewing them) when it is not the host's.
 */
ckpt_status ck_storage_attach(ckpt_checkpoint *c, ckpt_storage *st, const uint8_t *bytes, unsigned how, bool big_endian,
                              ckpt_error *err);
/* The byte-swap unit of a storage's elements (fails for untyped storages viewed with mixed sizes). */
ckpt_status ck_storage_swap_unit(const ckpt_storage *st, unsigned *unit, ckpt_error *err);

#endif
