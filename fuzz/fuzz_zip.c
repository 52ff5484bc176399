/* fuzz_zip: the strict zip reader alone: open, then find and read (and copy) every member. */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "errors.h"
#include "zip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    ck_arena arena;
    ck_arena_init(&arena, 4 * (uint64_t)len + (64u << 20));
    ckpt_error err;
    ck_error_init(&err);
    ck_zip z;
    if (ck_zip_open(&z, data, len, &arena, 1u << 20, &err) == CKPT_OK) {
        for (size_t i = 0; i < z.count; i++) {
            const ck_zip_member *m = &z.members[i];
            /* what open promises: the member and its data lie inside the file, before the directory */
            if (m->data_offset > z.cd_offset || m->comp_size > z.cd_offset - m->data_offset || m->end > z.cd_offset)
                abort();
            if (ck_zip_find(&z, m->name, m->name_len) != m) abort();
            const uint8_t *p = NULL;
            ckpt_status s = ck_zip_read(&z, m, &arena, true, &p, &err);
            uint8_t *copy = NULL;
            ckpt_status s2 = ck_zip_read_copy(&z, m, &arena, true, &copy, &err);
            /* reading in place and copying must agree on the outcome and on the bytes */
            if ((s == CKPT_OK) != (s2 == CKPT_OK) && s != CKPT_ERR_LIMIT && s2 != CKPT_ERR_LIMIT) abort();
            if (s == CKPT_OK && s2 == CKPT_OK && m->size && memcmp(p, copy, (size_t)m->size) != 0) abort();
            /* unverified reads too (the CRC is checked separately by callers that skip it) */
            (void)ck_zip_read(&z, m, &arena, false, &p, &err);
        }
    }
    ck_arena_release(&arena);
    return 0;
}
