/*
 * fuzz_torchscript: TorchScript archives read as data (CKPT_LOAD_TORCHSCRIPT, libckpt/torchscript.c),
 * and their refusal without the flag, through ckpt_load_memory.
 * Input: a zip ("PK..."), loaded as it is; or "<data.pkl>[SEP<data/0>][SEP<data/1>]..." (SEP =
 * "\xff\xfeSTOR"), which the harness packs into a stored zip with right CRCs under "archive/" together
 * with constants.pkl and code/, so that mutations reach the __torch__ classes and jit helpers.
 *
 * Build (until fuzz/meson.build has the harness infrastructure): compile the libckpt sources with clang
 * -fsanitize=fuzzer-no-link,address,undefined and link this file with -fsanitize=fuzzer; seeds come from
 * fuzz/make_format_seeds.py (fuzz/corpus/fuzz_torchscript/).
 */
#include <stdio.h>
#include <zlib.h>

#include "fuzz_formats_common.h"

typedef struct {
    uint8_t *p;
    size_t len, cap;
} buf;

static void put(buf *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    if (n) memcpy(b->p + b->len, d, n);
    b->len += n;
}
static void u16(buf *b, unsigned v) { uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)}; put(b, x, 2); }
static void u32(buf *b, uint32_t v) { uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)}; put(b, x, 4); }

typedef struct { char name[64]; const uint8_t *data; size_t len; } member;

static uint8_t *make_zip(const member *m, size_t n, size_t *out_len)
{
    buf b = {0};
    uint32_t offs[20];
    for (size_t i = 0; i < n; i++) {
        offs[i] = (uint32_t)b.len;
        uint32_t crc = (uint32_t)crc32(0, m[i].data, (uInt)m[i].len);
        u32(&b, 0x04034b50); u16(&b, 20); u16(&b, 0); u16(&b, 0); u16(&b, 0); u16(&b, 0);
        u32(&b, crc); u32(&b, (uint32_t)m[i].len); u32(&b, (uint32_t)m[i].len);
        u16(&b, (unsigned)strlen(m[i].name)); u16(&b, 0);
        put(&b, m[i].name, strlen(m[i].name));
        put(&b, m[i].data, m[i].len);
    }
    uint32_t cd = (uint32_t)b.len;
    for (size_t i = 0; i < n; i++) {
        uint32_t crc = (uint32_t)crc32(0, m[i].data, (uInt)m[i].len);
        u32(&b, 0x02014b50); u16(&b, 20); u16(&b, 20); u16(&b, 0); u16(&b, 0); u16(&b, 0); u16(&b, 0);
        u32(&b, crc); u32(&b, (uint32_t)m[i].len); u32(&b, (uint32_t)m[i].len);
        u16(&b, (unsigned)strlen(m[i].name)); u16(&b, 0); u16(&b, 0); u16(&b, 0); u16(&b, 0); u32(&b, 0);
        u32(&b, offs[i]);
        put(&b, m[i].name, strlen(m[i].name));
    }
    uint32_t cd_size = (uint32_t)b.len - cd;
    u32(&b, 0x06054b50); u16(&b, 0); u16(&b, 0); u16(&b, (unsigned)n); u16(&b, (unsigned)n);
    u32(&b, cd_size); u32(&b, cd); u16(&b, 0);
    *out_len = b.len;
    return b.p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    if (len >= 2 && data[0] == 'P' && data[1] == 'K') {
        ff_load(data, len, CKPT_LOAD_TORCHSCRIPT);
        ff_load(data, len, 0);
        return 0;
    }
    const uint8_t *part[16];
    size_t plen[16];
    size_t k = ff_split(data, len, part, plen, 16);
    member m[20];
    size_t n = 0;
    snprintf(m[n].name, sizeof m[n].name, "archive/data.pkl");
    m[n].data = part[0];
    m[n++].len = plen[0];
    for (size_t i = 1; i < k; i++, n++) {
        snprintf(m[n].name, sizeof m[n].name, "archive/data/%zu", i - 1);
        m[n].data = part[i];
        m[n].len = plen[i];
    }
    static const uint8_t constants[] = {0x80, 0x02, ')', '.'};
    static const char code[] = "class M(Module):\n  pass\n";
    m[n++] = (member){"archive/constants.pkl", constants, sizeof constants};
    m[n++] = (member){"archive/code/__torch__.py", (const uint8_t *)code, sizeof code - 1};
    m[n++] = (member){"archive/version", (const uint8_t *)"3\n", 2};
    size_t zlen;
    uint8_t *z = make_zip(m, n, &zlen);
    ff_load(z, zlen, CKPT_LOAD_TORCHSCRIPT);
    free(z);
    return 0;
}
