/* options.h: load options and the resolved limits one load runs with. */
#ifndef CK_OPTIONS_H
#define CK_OPTIONS_H

#include "ckpt/checkpoint.h"

typedef struct ck_limits {
    uint64_t max_alloc;
    uint64_t max_depth;
    uint64_t max_memo;
    uint64_t max_stack;
    uint64_t max_string;
    uint64_t max_int_bytes;
    uint64_t max_opcodes;
    uint64_t max_members;
    uint64_t max_ndim;
} ck_limits;

struct ckpt_load_options {
    const ckpt_registry *registry;
    unsigned flags;
    uint64_t limits[CKPT_LIMIT_COUNT_]; /* 0 = default */
};

/* Fills `out` from opts (NULL: defaults); MAX_ALLOC's default depends on the input size. */
void ck_limits_resolve(const ckpt_load_options *opts, uint64_t input_size, ck_limits *out);

#endif
