/*
 * fuzz_tar: the tar format of PyTorch 0.1-0.3 (libckpt/tar.c) through ckpt_load_memory.
 * Input: a tar file (bytes 257.. are "ustar"), loaded as it is; or "<pickle>SEP<tensors>SEP<storages>
 * [SEP<sys_info>]" (SEP = "\xff\xfeSTOR"), which the harness packs into a valid ustar archive (right
 * checksums, padding, end marker) so that mutations reach the members instead of stopping at a header.
 *
 * Seeds come from fuzz/make_format_seeds.py (fuzz/corpus/fuzz_tar/).
 */
#include <stdio.h>

#include "fuzz_formats_common.h"

static void header(uint8_t *h, const char *name, size_t size)
{
    memset(h, 0, 512);
    snprintf((char *)h, 100, "%s", name);
    memcpy(h + 100, "0000600", 8);
    memcpy(h + 108, "0000000", 8);
    memcpy(h + 116, "0000000", 8);
    snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
    memcpy(h + 136, "00000000000", 12);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    if (len >= 263 && memcmp(data + 257, "ustar", 5) == 0) {
        ff_load(data, len, 0);
        return 0;
    }
    static const char *const names[] = {"pickle", "tensors", "storages", "sys_info"};
    const uint8_t *part[4];
    size_t plen[4];
    size_t k = ff_split(data, len, part, plen, 4);
    size_t total = 1024;
    for (size_t i = 0; i < k; i++) total += 512 + (plen[i] + 511) / 512 * 512;
    uint8_t *tar = calloc(1, total);
    if (!tar) return 0;
    size_t pos = 0;
    for (size_t i = 0; i < k; i++) {
        header(tar + pos, names[i], plen[i]);
        if (plen[i]) memcpy(tar + pos + 512, part[i], plen[i]);
        pos += 512 + (plen[i] + 511) / 512 * 512;
    }
    ff_load(tar, total, 0);
    free(tar);
    return 0;
}
