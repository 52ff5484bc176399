/* options.c: load options and limit defaults (documented in include/ckpt/checkpoint.h). */
#include "options.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static const uint64_t defaults[CKPT_LIMIT_COUNT_] = {
    [CKPT_LIMIT_MAX_ALLOC] = 0, /* derived: 4 x input + 64 MiB */
    [CKPT_LIMIT_MAX_DEPTH] = 1000,
    [CKPT_LIMIT_MAX_MEMO] = 1u << 24,
    [CKPT_LIMIT_MAX_STACK] = 1u << 24,
    [CKPT_LIMIT_MAX_STRING] = 1ull << 30,
    [CKPT_LIMIT_MAX_INT_BYTES] = 1024,
    [CKPT_LIMIT_MAX_OPCODES] = 1ull << 32,
    [CKPT_LIMIT_MAX_MEMBERS] = 1u << 20,
    [CKPT_LIMIT_MAX_NDIM] = 64,
};

ckpt_load_options *ckpt_load_options_new(void)
{
    ckpt_load_options *o = calloc(1, sizeof *o);
    return o;
}

void ckpt_load_options_free(ckpt_load_options *o) { free(o); }

void ckpt_load_options_set_registry(ckpt_load_options *o, const ckpt_registry *reg)
{
    if (o) o->registry = reg;
}

void ckpt_load_options_set_flags(ckpt_load_options *o, unsigned flags)
{
    if (o) o->flags = flags;
}

unsigned ckpt_load_options_get_flags(const ckpt_load_options *o) { return o ? o->flags : 0; }

ckpt_status ckpt_load_options_set_limit(ckpt_load_options *o, ckpt_limit which, uint64_t value)
{
    if (!o || (unsigned)which >= CKPT_LIMIT_COUNT_) return CKPT_ERR_INVALID_ARG;
    o->limits[which] = value;
    return CKPT_OK;
}

uint64_t ckpt_load_options_get_limit(const ckpt_load_options *o, ckpt_limit which)
{
    if ((unsigned)which >= CKPT_LIMIT_COUNT_) return 0;
    if (o && o->limits[which]) return o->limits[which];
    return defaults[which];
}

void ck_limits_resolve(const ckpt_load_options *o, uint64_t input_size, ck_limits *out)
{
    uint64_t v[CKPT_LIMIT_COUNT_];
    for (unsigned i = 0; i < CKPT_LIMIT_COUNT_; i++) v[i] = ckpt_load_options_get_limit(o, (ckpt_limit)i);
    if (v[CKPT_LIMIT_MAX_ALLOC] == 0) {
        uint64_t a;
        if (ck_mul_overflow_u64(input_size, 4, &a) || ck_add_overflow_u64(a, 64ull << 20, &a)) a = UINT64_MAX;
        v[CKPT_LIMIT_MAX_ALLOC] = a;
    }
    out->max_alloc = v[CKPT_LIMIT_MAX_ALLOC];
    out->max_depth = v[CKPT_LIMIT_MAX_DEPTH];
    out->max_memo = v[CKPT_LIMIT_MAX_MEMO];
    out->max_stack = v[CKPT_LIMIT_MAX_STACK];
    out->max_string = v[CKPT_LIMIT_MAX_STRING];
    out->max_int_bytes = v[CKPT_LIMIT_MAX_INT_BYTES];
    out->max_opcodes = v[CKPT_LIMIT_MAX_OPCODES];
    out->max_members = v[CKPT_LIMIT_MAX_MEMBERS];
    out->max_ndim = v[CKPT_LIMIT_MAX_NDIM];
}
