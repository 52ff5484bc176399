/*
 * fuzz_formats_common.h: what the format harnesses (fuzz_legacy, fuzz_tar, fuzz_torchscript) share,
 * header-only so each harness builds from one file plus the library: small limits, and the checks run
 * on every checkpoint that loads (tensor digests and contiguous copies, a walk, the JSON document).
 */
#ifndef CK_FUZZ_FORMATS_COMMON_H
#define CK_FUZZ_FORMATS_COMMON_H

#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"

static inline ckpt_load_options *ff_options(unsigned flags)
{
    ckpt_load_options *o = ckpt_load_options_new();
    if (!o) abort();
    ckpt_load_options_set_flags(o, flags);
    ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_ALLOC, 64u << 20);
    ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_MEMO, 1u << 16);
    ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_STACK, 1u << 16);
    return o;
}

static inline ckpt_walk_action ff_visit(const char *path, size_t len, const ckpt_value *v, void *user)
{
    (void)path; (void)len;
    (*(size_t *)user)++;
    const ckpt_sparse *s = ckpt_value_sparse(v);
    if (s && ckpt_sparse_values(s) == NULL) abort();
    return CKPT_WALK_CONTINUE;
}

/* Everything a user does with a loaded checkpoint; aborts on an inconsistency. */
static inline void ff_exercise(const ckpt_checkpoint *ck)
{
    for (size_t i = 0; i < ckpt_checkpoint_num_tensors(ck); i++) {
        const char *key;
        const ckpt_tensor *t = ckpt_checkpoint_tensor(ck, i, &key);
        if (!t || !key) abort();
        uint64_t nbytes = ckpt_tensor_nbytes(t), h;
        const ckpt_tensor *sc = ckpt_tensor_q_scales(t);
        if (sc && ckpt_tensor_ndim(sc) != 1) abort();
        if (!ckpt_tensor_data(t)) continue;
        if (ckpt_tensor_xxh3_64(t, &h, NULL) != CKPT_OK) abort();
        if (nbytes > (8u << 20)) continue;
        void *buf = malloc(nbytes ? (size_t)nbytes : 1);
        if (!buf || ckpt_tensor_copy_contiguous(t, buf, (size_t)nbytes, NULL) != CKPT_OK) abort();
        free(buf);
    }
    size_t n = 0;
    ckpt_walk(ck, NULL, ff_visit, &n, NULL);
    char *json = NULL;
    if (ckpt_checkpoint_to_json(ck, "fuzz", 0, &json, NULL) == CKPT_OK && !json) abort();
    ckpt_free(json);
}

/* Loads in copy and borrow modes; a failure must come with its status and a message. */
static inline void ff_load(const uint8_t *p, size_t n, unsigned flags)
{
    static const unsigned modes[] = {0, CKPT_LOAD_BORROW | CKPT_LOAD_NO_DATA_CRC, CKPT_LOAD_SKIP_DATA};
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
        ckpt_load_options *o = ff_options(flags | modes[m]);
        ckpt_error *err = ckpt_error_new();
        ckpt_checkpoint *ck = NULL;
        ckpt_status s = ckpt_load_memory(p, n, o, &ck, err);
        if (s == CKPT_OK) {
            if (!ck) abort();
            ff_exercise(ck);
            ckpt_checkpoint_free(ck);
        } else if (ck || ckpt_error_code(err) != s || !*ckpt_error_message(err)) {
            abort();
        }
        ckpt_error_free(err);
        ckpt_load_options_free(o);
    }
}

/* Splits `data` at "\xff\xfeSTOR" separators into at most `max` parts. */
#define FF_SEP "\xff\xfe" "STOR"
static inline size_t ff_split(const uint8_t *data, size_t len, const uint8_t **part, size_t *plen, size_t max)
{
    size_t k = 0, start = 0;
    for (size_t i = 0; k + 1 < max && i + 6 <= len; i++)
        if (memcmp(data + i, FF_SEP, 6) == 0) {
            part[k] = data + start;
            plen[k++] = i - start;
            start = i + 6;
            i += 5;
        }
    part[k] = data + start;
    plen[k++] = len - start;
    return k;
}

#endif
