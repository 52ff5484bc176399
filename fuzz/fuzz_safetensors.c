/*
 * fuzz_safetensors: the safetensors reader (untrusted bytes), then what users do with the result:
 * tensor accessors, digests, contiguous copies, and writing it back as safetensors and as .pt, each of
 * which must load again with the same tensors. Input: the file's bytes (loaded in copy mode and in
 * borrow mode).

 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"

static ckpt_load_options *options(unsigned flags)
{
    ckpt_load_options *o = ckpt_load_options_new();
    if (!o) abort();
    ckpt_load_options_set_flags(o, flags);
    ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_ALLOC, 256u << 20);
    return o;
}

/* every tensor of a must be in b under the same key with the same dtype, shape and digest */
static void same_tensors(const ckpt_checkpoint *a, const ckpt_checkpoint *b, int allow_missing)
{
    for (size_t i = 0; i < ckpt_checkpoint_num_tensors(a); i++) {
        const char *key;
        const ckpt_tensor *t = ckpt_checkpoint_tensor(a, i, &key);
        const ckpt_tensor *u = ckpt_checkpoint_find_tensor(b, key);
        if (!u) {
            if (allow_missing) continue;
            abort();
        }
        if (ckpt_tensor_dtype(t) != ckpt_tensor_dtype(u) || ckpt_tensor_ndim(t) != ckpt_tensor_ndim(u)) abort();
        uint64_t ht, hu;
        if (ckpt_tensor_xxh3_64(t, &ht, NULL) || ckpt_tensor_xxh3_64(u, &hu, NULL) || ht != hu) abort();
    }
}

static void exercise(const ckpt_checkpoint *ck)
{
    for (size_t i = 0; i < ckpt_checkpoint_num_tensors(ck); i++) {
        const ckpt_tensor *t = ckpt_checkpoint_tensor(ck, i, NULL);
        uint64_t h;
        if (ckpt_tensor_xxh3_64(t, &h, NULL) != CKPT_OK) abort();
        uint64_t n = ckpt_tensor_nbytes(t);
        if (n <= (16u << 20)) {
            void *buf = malloc(n ? n : 1);
            if (!buf || ckpt_tensor_copy_contiguous(t, buf, n, NULL) != CKPT_OK) abort();
            free(buf);
        }
    }
    char *json = NULL;
    if (ckpt_checkpoint_to_json(ck, "f", 0, &json, NULL) != CKPT_OK) abort();
    ckpt_free(json);
    /* writing back: safetensors (may refuse aliases it cannot express) and .pt (never refuses these) */
    ckpt_save_options *so = ckpt_save_options_new();
    ckpt_save_options_set_format(so, CKPT_SAVE_SAFETENSORS);
    void *out;
    size_t len;
    ckpt_checkpoint *back = NULL;
    if (ckpt_save_memory(ckpt_checkpoint_root(ck), so, &out, &len, NULL) == CKPT_OK) {
        if (ckpt_load_memory(out, len, NULL, &back, NULL) != CKPT_OK) abort();
        same_tensors(ck, back, 0);
        ckpt_checkpoint_free(back);
        ckpt_free(out);
    }
    ckpt_save_options_set_format(so, CKPT_SAVE_PT);
    if (ckpt_save_memory(ckpt_checkpoint_root(ck), so, &out, &len, NULL) != CKPT_OK) abort();
    if (ckpt_load_memory(out, len, NULL, &back, NULL) != CKPT_OK) abort();
    same_tensors(ck, back, 0);
    ckpt_checkpoint_free(back);
    ckpt_free(out);
    ckpt_save_options_free(so);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static const unsigned modes[] = {0, CKPT_LOAD_BORROW};
    for (size_t m = 0; m < 2; m++) {
        ckpt_load_options *o = options(modes[m]);
        ckpt_error *err = ckpt_error_new();
        ckpt_checkpoint *ck = NULL;
        ckpt_status s = ckpt_load_memory(data, len, o, &ck, err);
        if (s == CKPT_OK) {
            if (!ck) abort();
            exercise(ck);
        } else if (ck || ckpt_error_code(err) != s || !*ckpt_error_message(err)) {
            abort();
        }
        ckpt_checkpoint_free(ck);
        ckpt_error_free(err);
        ckpt_load_options_free(o);
    }
    return 0;
}
