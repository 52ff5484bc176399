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
    unsigned flags;
};

#endif
