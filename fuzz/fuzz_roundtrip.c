/*
 * fuzz_roundtrip: whatever libckpt loads (a .pt zip or a safetensors file, untrusted bytes) it must be
 * able to write as .pt and read back identically: the same inspect JSON except the file name and
 * archive prefix, the same storage sharing, and writing the copy again gives the same bytes. This
 * exercises the pickler, the zip writer and the builder-independent save path on every value shape
 * the reader can produce.
 *
 * Input: a file (a zip, a legacy or tar torch.save stream, or safetensors) loaded as it is; or, so the fuzzer can reach the pickle
 * without forging CRC-32s, "<data.pkl>[SEP<data/0>][SEP<data/1>]..." (SEP = ff fe "STOR", the
 * convention of the other harnesses), wrapped in a valid stored torch zip by fz_wrap_checkpoint.

 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "fuzz_common.h"
#include "tensors.h" /* libckpt internal: a legacy view storage's base */

/* The storage a tensor's bytes live in: a legacy view storage is written as its base plus an offset. */
static const ckpt_storage *root_of(const ckpt_storage *s)
{
    while (s && (s->flags & CK_SF_VIEW)) s = s->base;
    return s;
}

/* Removes the top-level `,"globals":[...]` member (written last) from the JSON text j. */
static void drop_globals(char *j)
{
    char *g = NULL;
    for (char *k = strstr(j, ",\"globals\":["); k; k = strstr(k + 1, ",\"globals\":[")) g = k;
    if (!g) abort();
    char *q = g + sizeof ",\"globals\":[" - 1;
    while (*q != ']') {
        if (*q == '"') {
            for (q++; *q != '"'; q++)
                if (*q == '\\') q++;
        }
        if (!*q) abort();
        q++;
    }
    memmove(g, q + 1, strlen(q + 1) + 1);
}

/*
 * The JSON without "archive_prefix" and "byteorder" (the copy has the writer's prefix and the host's
 * byte order; tensors are compared by their element digests, which do not depend on it), without
 * "globals" (protocol 2 has no opcode for a set, frozenset or bytearray: the writer spells them as
 * calls of builtins.set... where the input may have used EMPTY_SET or BYTEARRAY8) and with empty
 * storage keys (sharing is compared separately).
 */
static char *json_without_names(const ckpt_checkpoint *ck)
{
    char *j = NULL;
    if (ckpt_checkpoint_to_json(ck, "f", 0, &j, NULL) != CKPT_OK) abort();
    char *p = strstr(j, "\"archive_prefix\":");
    if (!p) abort();
    char *q = strstr(p, ",\"tensors\"");
    if (!q) abort();
    memmove(p, q + 1, strlen(q + 1) + 1); /* from "archive_prefix" to the comma before "tensors" */
    drop_globals(j);
    /* the writer names storages 0, 1, 2... in first-use order, as torch.save does; the input may not */
    static const char key[] = "\"storage_key\":\"";
    for (char *k = strstr(j, key); k; k = strstr(k, key)) {
        k += sizeof key - 1;
        char *end = strchr(k, '"');
        if (!end) abort();
        memmove(k, end, strlen(end) + 1);
    }
    return j;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    uint8_t *wrapped = NULL;
    if (len >= 2 && data[0] == 0x80 && len < (1u << 24)) { /* a pickle: wrap it */
        data = wrapped = fz_wrap_checkpoint(data, len, &len);
    }
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_ALLOC, 256u << 20);
    ckpt_checkpoint *ck = NULL;
    if (ckpt_load_memory(data, len, o, &ck, NULL) != CKPT_OK) {
        ckpt_load_options_free(o);
        free(wrapped);
        return 0;
    }
    ckpt_error *err = ckpt_error_new();
    void *out = NULL, *again = NULL;
    size_t out_len = 0, again_len = 0;
    ckpt_status s = ckpt_save_memory(ckpt_checkpoint_root(ck), NULL, &out, &out_len, err);
    /* only a few shapes are legitimately unwritable: keyword arguments, scan-only nodes... */
    if (s != CKPT_OK) {
        if (s != CKPT_ERR_UNSUPPORTED && s != CKPT_ERR_TENSOR && s != CKPT_ERR_LIMIT) abort();
        goto done;
    }
    ckpt_checkpoint *copy = NULL;
    ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_ALLOC, 0);
    if (ckpt_load_memory(out, out_len, o, &copy, err) != CKPT_OK) abort();
    char *a = json_without_names(ck), *b = json_without_names(copy);
    /* the format field differs for safetensors input */
    if (ckpt_checkpoint_format(ck) == CKPT_FORMAT_ZIP && strcmp(a, b) != 0) abort();
    size_t n = ckpt_checkpoint_num_tensors(ck);
    if (n != ckpt_checkpoint_num_tensors(copy)) abort();
    for (size_t i = 0; i < n && i < 256; i++)
        for (size_t j = i + 1; j < n && j < 256; j++) {
            int sa = root_of(ckpt_tensor_storage(ckpt_checkpoint_tensor(ck, i, NULL))) ==
                     root_of(ckpt_tensor_storage(ckpt_checkpoint_tensor(ck, j, NULL)));
            int sb = ckpt_tensor_storage(ckpt_checkpoint_tensor(copy, i, NULL)) == ckpt_tensor_storage(ckpt_checkpoint_tensor(copy, j, NULL));
            if (sa != sb) abort();
        }
    if (ckpt_save_memory(ckpt_checkpoint_root(copy), NULL, &again, &again_len, err) != CKPT_OK) abort();
    if (again_len != out_len || memcmp(again, out, out_len) != 0) abort();
    ckpt_free(a);
    ckpt_free(b);
    ckpt_checkpoint_free(copy);
done:
    ckpt_free(out);
    ckpt_free(again);
    ckpt_error_free(err);
    ckpt_checkpoint_free(ck);
    ckpt_load_options_free(o);
    free(wrapped);
    return 0;
}
