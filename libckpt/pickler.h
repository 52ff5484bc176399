/*
 * pickler.h: a value tree to a protocol-2 pickle, the way torch.save (CPython's C pickler) writes it
 * for the same objects: the same opcodes, batching and memo numbering, so a state dict re-saved by
 * libckpt gives the same data.pkl bytes torch wrote (tests/test_writer.c checks the fixtures).
 *
 * Tensors become _rebuild_tensor_v2 (or _rebuild_tensor_v3 with an UntypedStorage for dtypes that have
 * no typed storage class), Parameters _rebuild_parameter; each storage is named by one persistent id
 * ('storage', <class>, key, location, numel) whose key ("0", "1", ... in first-seen order) stays the
 * same for every tensor viewing it, so views and tied weights come back shared. Values the default
 * allowlist cannot express fail with the key that holds them. The walk is iterative (a task stack on
 * the heap) and memoises by node address, so shared nodes and cycles through lists/dicts are written
 * once, like Python's memo.
 */
#ifndef CK_PICKLER_H
#define CK_PICKLER_H

#include <stdbool.h>
#include "bytebuf.h"
#include "errors.h"
#include "node.h"
#include "registry_internal.h"
#include "tensors.h"

/* One data/<key> record; record i has the key "i" (decimal). */
typedef struct ck_pickled_storage {
    const ckpt_storage *storage; /* the first storage written under this key */
    uint64_t nbytes;
} ck_pickled_storage;

typedef struct ck_pickle_result {
    ck_bytebuf pickle;
    ck_pickled_storage *storages; /* in key order */
    size_t nstorages;
    uint64_t deduplicated;        /* storages merged into an earlier identical one (CKPT_SAVE_DEDUP) */
} ck_pickle_result;

/* Receives the pickle in pieces (when given, out->pickle holds only what was not handed over yet). */
typedef ckpt_status (*ck_pickle_flush_fn)(void *ctx, const uint8_t *p, size_t n, ckpt_error *err);

/*
 * registry: the globals the output may name (NULL: the default). dedup: merge byte-identical storages
 * of one element type (XXH3-128, confirmed by comparing the bytes). flush (may be NULL): streams the
 * pickle out every megabyte, so a pickle of 100,000 tensors is never held whole.
 */
ckpt_status ck_pickle_tree(const ckpt_value *root, const ckpt_registry *registry, bool dedup, ck_pickle_flush_fn flush,
                           void *flush_ctx, ck_pickle_result *out, ckpt_error *err);
void ck_pickle_result_release(ck_pickle_result *r);

#endif
