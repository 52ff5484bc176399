/*
 * fuzz_torchscript: TorchScript archives read as data (CKPT_LOAD_TORCHSCRIPT, libckpt/torchscript.c),
 * and their refusal without the flag, through ckpt_load_memory.
 * Input: a zip ("PK..."), loaded as it is; or "<data.pkl>[SEP<data/0>][SEP<data/1>]..." (SEP =
 * "\xff\xfeSTOR"), which the harness packs into a stored zip with right CRCs under "archive/" together
 * with constants.pkl and code/, so that mutations reach the __torch__ classes and jit helpers.
 * Seeds come from fuzz/make_format_seeds.py (fuzz/corpus/fuzz_torchscript/).
 */
#include <stdio.h>

#include "fuzz_common.h"
#include "fuzz_formats_common.h"

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
    fz_member m[20];
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
    m[n++] = (fz_member){"archive/constants.pkl", constants, sizeof constants};
    m[n++] = (fz_member){"archive/code/__torch__.py", (const uint8_t *)code, sizeof code - 1};
    m[n++] = (fz_member){"archive/version", (const uint8_t *)"3\n", 2};
    size_t zlen;
    uint8_t *z = fz_make_zip(m, n, &zlen);
    ff_load(z, zlen, CKPT_LOAD_TORCHSCRIPT);
    free(z);
    return 0;
}
