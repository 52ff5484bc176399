/* support.c: helpers shared by the Check suites. */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#ifndef TST_SOURCE_DIR
#error "TST_SOURCE_DIR must point at tests/"
#endif

const char *tst_path(const char *rel)
{
    static __thread char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", TST_SOURCE_DIR, rel);
    return buf;
}

const char *tst_external(const char *rel)
{
    static __thread char buf[4096];
    const char *root = getenv("CKPT_EXTERNAL_CORPUS");
    if (root) snprintf(buf, sizeof buf, "%s/%s", root, rel);
    else snprintf(buf, sizeof buf, "%s/../../shared/corpus/external/%s", TST_SOURCE_DIR, rel);
    struct stat st;
    if (stat(buf, &st) != 0) {
        printf("SKIP: external corpus file %s is absent (set CKPT_EXTERNAL_CORPUS)\n", buf);
        return NULL;
    }
    return buf;
}

uint8_t *tst_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

int tst_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

ckpt_status tst_load_mem(const void *data, size_t len, ckpt_checkpoint **out, ckpt_error *err)
{
    ckpt_checkpoint *c = NULL;
    ckpt_status s = ckpt_load_memory(data, len, NULL, &c, err);
    if (out) *out = c;
    else ckpt_checkpoint_free(c);
    return s;
}

void tst_assert_load_fails_(const void *data, size_t len, ckpt_status code, const char *needle, const char *file, int line)
{
    ckpt_error *err = ckpt_error_new();
    ckpt_checkpoint *c = NULL;
    ckpt_status s = ckpt_load_memory(data, len, NULL, &c, err);
    ck_assert_msg(s == code, "%s:%d: expected %s, got %s: %s", file, line, ckpt_status_name(code), ckpt_status_name(s),
                  ckpt_error_message(err));
    ck_assert_msg(c == NULL, "%s:%d: failed load returned a checkpoint", file, line);
    if (needle)
        ck_assert_msg(strstr(ckpt_error_message(err), needle) != NULL, "%s:%d: message '%s' lacks '%s'", file, line,
                      ckpt_error_message(err), needle);
    ckpt_error_free(err);
}

/* ---- zip building (stored members, 64-byte aligned like torch, no zip64 needed for small tests) ---- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} buf_t;

static void put(buf_t *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        while (b->len + n > b->cap) b->cap = b->cap ? b->cap * 2 : 4096;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}
static void u16(buf_t *b, unsigned v) { uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)}; put(b, x, 2); }
static void u32(buf_t *b, uint32_t v) { uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)}; put(b, x, 4); }

uint8_t *tst_make_zip(const tst_record *m, size_t n, size_t *out_len)
{
    buf_t b = {0};
    uint32_t *offs = calloc(n ? n : 1, sizeof *offs);
    for (size_t i = 0; i < n; i++) {
        offs[i] = (uint32_t)b.len;
        size_t nl = strlen(m[i].name);
        size_t start = b.len + 30 + nl + 4;
        size_t pad = (64 - start % 64) % 64;
        uint32_t crc = (uint32_t)crc32(0, m[i].data, (uInt)m[i].len);
        u32(&b, 0x04034b50); u16(&b, 20); u16(&b, 0); u16(&b, 0); u16(&b, 0); u16(&b, 0x21);
        u32(&b, crc); u32(&b, (uint32_t)m[i].len); u32(&b, (uint32_t)m[i].len);
        u16(&b, (unsigned)nl); u16(&b, (unsigned)(4 + pad));
        put(&b, m[i].name, nl);
        u16(&b, 0x4246); u16(&b, (unsigned)pad);
        for (size_t k = 0; k < pad; k++) put(&b, "Z", 1);
        put(&b, m[i].data, m[i].len);
    }
    uint32_t cd = (uint32_t)b.len;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(m[i].name);
        uint32_t crc = (uint32_t)crc32(0, m[i].data, (uInt)m[i].len);
        u32(&b, 0x02014b50); u16(&b, 20); u16(&b, 20); u16(&b, 0); u16(&b, 0); u16(&b, 0); u16(&b, 0x21);
        u32(&b, crc); u32(&b, (uint32_t)m[i].len); u32(&b, (uint32_t)m[i].len);
        u16(&b, (unsigned)nl); u16(&b, 0); u16(&b, 0); u16(&b, 0); u16(&b, 0); u32(&b, 0); u32(&b, offs[i]);
        put(&b, m[i].name, nl);
    }
    uint32_t cd_size = (uint32_t)b.len - cd;
    u32(&b, 0x06054b50); u16(&b, 0); u16(&b, 0); u16(&b, (unsigned)n); u16(&b, (unsigned)n);
    u32(&b, cd_size); u32(&b, cd); u16(&b, 0);
    free(offs);
    *out_len = b.len;
    return b.p;
}

uint8_t *tst_make_checkpoint(const void *pickle, size_t pickle_len, const tst_record *extra, size_t n_extra,
                             size_t *out_len)
{
    tst_record *m = calloc(n_extra + 2, sizeof *m);
    char **names = calloc(n_extra + 2, sizeof *names);
    size_t k = 0;
    m[k++] = (tst_record){"archive/data.pkl", pickle, pickle_len};
    for (size_t i = 0; i < n_extra; i++) {
        names[i] = malloc(strlen(extra[i].name) + 9);
        sprintf(names[i], "archive/%s", extra[i].name);
        m[k++] = (tst_record){names[i], extra[i].data, extra[i].len};
    }
    m[k++] = (tst_record){"archive/version", "3\n", 2};
    uint8_t *z = tst_make_zip(m, k, out_len);
    for (size_t i = 0; i < n_extra; i++) free(names[i]);
    free(names);
    free(m);
    return z;
}

ckpt_status tst_load_pickle(const void *pickle, size_t pickle_len, const tst_record *extra, size_t n_extra,
                            const ckpt_load_options *opts, ckpt_checkpoint **out, ckpt_error *err)
{
    size_t len;
    uint8_t *z = tst_make_checkpoint(pickle, pickle_len, extra, n_extra, &len);
    ckpt_checkpoint *c = NULL;
    ckpt_status s = ckpt_load_memory(z, len, opts, &c, err);
    free(z);
    if (out) *out = c;
    else ckpt_checkpoint_free(c);
    return s;
}
