/*
 * fuzz_zip_libzip: differential test of libckpt's zip reader against libzip on the same bytes.
 * libckpt may refuse more than libzip (it is stricter by design), but whatever libckpt accepts libzip
 * must open with the same members in the same order, and every member libckpt reads must have exactly
 * the bytes libzip reads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "errors.h"
#include "zip.h"
#include "libzip_view.h"

#define DISAGREE(...) do { fprintf(stderr, "libckpt/libzip disagree: " __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    ck_arena arena;
    ck_arena_init(&arena, 4 * (uint64_t)len + (64u << 20));
    ckpt_error err;
    ck_error_init(&err);
    ck_zip z;
    if (ck_zip_open(&z, data, len, &arena, 1u << 20, &err) != CKPT_OK) {
        ck_arena_release(&arena);
        return 0;
    }
    char why[256];
    fz_libzip *lz = fz_libzip_open(data, len, why, sizeof why);
    if (!lz) DISAGREE("libzip refuses an archive libckpt accepts (%s)", why);
    int64_t n = fz_libzip_count(lz);
    if (n < 0 || (uint64_t)n != z.count) DISAGREE("libckpt sees %zu members, libzip %lld", z.count, (long long)n);
    for (size_t i = 0; i < z.count; i++) {
        const ck_zip_member *m = &z.members[i];
        const char *zname = fz_libzip_name(lz, i);
        if (!zname || strlen(zname) != m->name_len || memcmp(zname, m->name, m->name_len) != 0)
            DISAGREE("member %zu is '%s' for libckpt, '%s' for libzip", i, m->name, zname ? zname : "(null)");
        const uint8_t *p;
        if (ck_zip_read(&z, m, &arena, true, &p, &err) != CKPT_OK) continue; /* libckpt stricter: fine */
        uint8_t *buf = malloc((size_t)m->size + 1);
        if (!buf) abort();
        int64_t got = fz_libzip_read(lz, i, buf, (size_t)m->size, why, sizeof why);
        if (got < 0) DISAGREE("libzip cannot read '%s' (%s), libckpt reads it", m->name, why);
        if ((uint64_t)got != m->size)
            DISAGREE("'%s': libckpt reads %llu bytes, libzip %lld", m->name, (unsigned long long)m->size, (long long)got);
        if (m->size && memcmp(buf, p, (size_t)m->size) != 0) DISAGREE("'%s': member bytes differ", m->name);
        free(buf);
    }
    fz_libzip_close(lz);
    ck_arena_release(&arena);
    return 0;
}
