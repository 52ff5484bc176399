/*
 * fuzz_load: the full load from memory, in copy mode and in borrow mode (CKPT_LOAD_BORROW, with the
 * storage CRC skipped so mutated tensor bytes still load), then everything a user does with the result:
 * tensor accessors, digests, contiguous copies, a walk, ckpt_checkpoint_find on every key, free.
 * Input: a file ("PK...") or a pickle plus storage records (see fuzz_common.h).
 */
#include <stdlib.h>

#include "fuzz_common.h"

static void load(const uint8_t *p, size_t n, unsigned flags)
{
    ckpt_load_options *o = fz_options(flags);
    ckpt_error *err = ckpt_error_new();
    ckpt_checkpoint *ck = NULL;
    ckpt_status s = ckpt_load_memory(p, n, o, &ck, err);
    if (s == CKPT_OK) {
        if (!ck) abort();
        fz_exercise(ck, 64u << 20);
        ckpt_checkpoint_free(ck);
    } else if (ck || ckpt_error_code(err) != s || !*ckpt_error_message(err)) {
        abort();
    }
    ckpt_error_free(err);
    ckpt_load_options_free(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    uint8_t *owned;
    size_t n;
    const uint8_t *p = fz_checkpoint_bytes(data, len, &n, &owned);
    load(p, n, 0);
    load(p, n, CKPT_LOAD_BORROW | CKPT_LOAD_NO_DATA_CRC);
    free(owned);
    return 0;
}
