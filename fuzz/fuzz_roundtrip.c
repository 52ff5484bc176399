/*
 * fuzz_roundtrip: whatever libckpt loads (a .pt zip or a safetensors file, untrusted bytes) it must be
 * able to write as .pt and read back identically: the same inspect JSON except the file name and
 * archive prefix, the same storage sharing, and writing the copy again gives the same bytes. This
 * exercises the pickler, the zip writer and the builder-independent save path on every value shape
 * the reader can produce.
 *
 * Input: a file (a zip, a legacy or tar torch.save stream, or safetensors) loaded as it is; or, so the fuzzer can reach the pickle
 * without forging CRC-32s, "<data.pkl>[SEP<data/0>][SEP<data/1>]..." (SEP = ff fe "STOR", the
 * convention of the other harnesses), wrapped here in a valid stored torch zip.
 *
 * Standalone: libFuzzer's LLVMFuzzerTestOneInput; wired into fuzz/meson.build by the fuzzing
 * infrastructure (issue 4), which replays fuzz/corpus/fuzz_roundtrip/ in normal builds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ckpt/ckpt.h"
#include "tensors.h" /* libckpt internal: a legacy view storage's base */

#define SEP "\xff\xfeSTOR"
#define SEP_LEN 6

typedef struct {
    uint8_t *p;
    size_t len, cap;
} buf;

static void put(buf *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        while (b->len + n > b->cap) b->cap = b->cap ? b->cap * 2 : 4096;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}
static void u16(buf *b, unsigned v) { uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)}; put(b, x, 2); }
static void u32(buf *b, uint32_t v) { uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)}; put(b, x, 4); }

/* A stored zip "archive/data.pkl", "archive/data/<i>"..., "archive/version", 64-byte aligned. */
static uint8_t *wrap(const uint8_t *d, size_t n, size_t *out_len)
{
    const char *names[66];
    char namebuf[64][24];
    const uint8_t *starts[66];
    size_t lens[66], count = 0;
    names[count] = "archive/data.pkl";
    starts[count] = d;
    for (size_t i = 0;; i++) {
        const uint8_t *cur = starts[count];
        size_t rest = n - (size_t)(cur - d);
        const uint8_t *sep = NULL;
        for (size_t k = 0; k + SEP_LEN <= rest; k++)
            if (memcmp(cur + k, SEP, SEP_LEN) == 0) { sep = cur + k; break; }
        if (!sep || count == 64) {
            lens[count++] = rest;
            break;
        }
        lens[count] = (size_t)(sep - cur);
        count++;
        snprintf(namebuf[i], sizeof namebuf[i], "archive/data/%zu", i);
        names[count] = namebuf[i];
        starts[count] = sep + SEP_LEN;
    }
    names[count] = "archive/version";
    starts[count] = (const uint8_t *)"3\n";
    lens[count++] = 2;
    buf b = {0};
    uint32_t offs[66];
    for (size_t i = 0; i < count; i++) {
        offs[i] = (uint32_t)b.len;
        size_t nl = strlen(names[i]), pad = (64 - (b.len + 30 + nl + 4) % 64) % 64;
        uint32_t crc = (uint32_t)crc32(0, starts[i], (uInt)lens[i]);
        u32(&b, 0x04034b50); u16(&b, 20); u16(&b, 0); u16(&b, 0); u16(&b, 0); u16(&b, 0x21);
        u32(&b, crc); u32(&b, (uint32_t)lens[i]); u32(&b, (uint32_t)lens[i]);
        u16(&b, (unsigned)nl); u16(&b, (unsigned)(4 + pad));
        put(&b, names[i], nl);
        u16(&b, 0x4246); u16(&b, (unsigned)pad);
        for (size_t k = 0; k < pad; k++) put(&b, "Z", 1);
        put(&b, starts[i], lens[i]);
    }
    uint32_t cd = (uint32_t)b.len;
    for (size_t i = 0; i < count; i++) {
        size_t nl = strlen(names[i]);
        u32(&b, 0x02014b50); u16(&b, 20); u16(&b, 20); u16(&b, 0); u16(&b, 0); u16(&b, 0); u16(&b, 0x21);
        u32(&b, (uint32_t)crc32(0, starts[i], (uInt)lens[i])); u32(&b, (uint32_t)lens[i]); u32(&b, (uint32_t)lens[i]);
        u16(&b, (unsigned)nl); u16(&b, 0); u16(&b, 0); u16(&b, 0); u16(&b, 0); u32(&b, 0); u32(&b, offs[i]);
        put(&b, names[i], nl);
    }
    uint32_t cd_size = (uint32_t)b.len - cd;
    u32(&b, 0x06054b50); u16(&b, 0); u16(&b, 0); u16(&b, (unsigned)count); u16(&b, (unsigned)count);
    u32(&b, cd_size); u32(&b, cd); u16(&b, 0);
    *out_len = b.len;
    return b.p;
}

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
        data = wrapped = wrap(data, len, &len);
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
