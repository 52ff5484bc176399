/*
 * fuzz_legacy: the legacy stream loader (libckpt/legacy.c) through ckpt_load_memory: the input is the
 * file. The format has no checksums, so byte mutations reach every part: the five pickles, the
 * persistent ids with their views, the element counts and the storage bytes. Oracle: no crash, a
 * failure carries its status and a message, every loaded tensor digests and copies.
 *
 * Seeds come from fuzz/make_format_seeds.py (fuzz/corpus/fuzz_legacy/).
 */
#include "fuzz_formats_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    ff_load(data, len, 0);
    return 0;
}
