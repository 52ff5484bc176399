/* zipbuild.c: the test zip writer (see zipbuild.h). */
#include "zipbuild.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct {
    uint8_t *p;
    size_t len, cap;
} zbuf;

static void put(zbuf *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        while (b->len + n > b->cap) b->cap = b->cap ? b->cap * 2 : 4096;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    if (n) memcpy(b->p + b->len, d, n);
    b->len += n;
}
static void u16(zbuf *b, uint32_t v) { uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)}; put(b, x, 2); }
static void u32(zbuf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}
static void u64(zbuf *b, uint64_t v)
{
    u32(b, (uint32_t)v);
    u32(b, (uint32_t)(v >> 32));
}
static void junk(zbuf *b, size_t n)
{
    for (size_t i = 0; i < n; i++) put(b, "J", 1);
}

uint8_t *tz_deflate(const void *data, size_t len, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    ck_assert_int_eq(deflateInit2(&zs, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, (uLong)len) + 16;
    uint8_t *out = malloc(cap);
    ck_assert_ptr_nonnull(out);
    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

void tz_build(tz_zip *z, const tz_member *m, size_t n, const tz_opts *opts)
{
    static const tz_opts none = {0};
    if (!opts) opts = &none;
    ck_assert_uint_le(n, TZ_MAX_MEMBERS);
    memset(z, 0, sizeof *z);
    z->n = n;
    zbuf b = {0};
    junk(&b, opts->prepend);
    uint8_t *comp[TZ_MAX_MEMBERS];
    size_t comp_len[TZ_MAX_MEMBERS];
    uint32_t crc[TZ_MAX_MEMBERS];
    for (size_t i = 0; i < n; i++) {
        const tz_member *e = &m[i];
        junk(&b, e->gap_before);
        crc[i] = e->precompressed ? e->raw_crc : (uint32_t)crc32(0, e->data, (uInt)e->len);
        if (e->method == 8 && !e->precompressed) {
            comp[i] = tz_deflate(e->data, e->len, &comp_len[i]);
        } else {
            comp[i] = malloc(e->len ? e->len : 1);
            ck_assert_ptr_nonnull(comp[i]);
            if (e->len) memcpy(comp[i], e->data, e->len);
            comp_len[i] = e->len;
        }
        uint64_t real_size = e->precompressed ? e->raw_size : e->len;
        uint64_t size = e->lie_size ? e->declared_size : real_size;
        uint64_t csize = e->lie_comp ? e->declared_comp : comp_len[i];
        size_t nl = strlen(e->name);
        uint16_t flags = (uint16_t)(e->descriptor ? 0x0008 : 0);
        size_t x64 = e->zip64 ? 4 + 16 : 0;
        size_t pad = 0;
        if (e->align64) {
            size_t start = b.len + 30 + nl + x64 + 4;
            pad = (64 - start % 64) % 64;
        }
        z->local_off[i] = b.len;
        u32(&b, 0x04034b50);
        u16(&b, e->zip64 ? 45 : 20);
        u16(&b, flags);
        u16(&b, (uint32_t)e->method);
        u16(&b, 0);
        u16(&b, 0x21);
        if (e->descriptor) {
            u32(&b, 0);
            u32(&b, e->zip64 ? 0xffffffffu : 0);
            u32(&b, e->zip64 ? 0xffffffffu : 0);
        } else {
            u32(&b, crc[i]);
            u32(&b, e->zip64 ? 0xffffffffu : (uint32_t)csize);
            u32(&b, e->zip64 ? 0xffffffffu : (uint32_t)size);
        }
        u16(&b, (uint32_t)nl);
        u16(&b, (uint32_t)(x64 + (e->align64 ? 4 + pad : 0)));
        put(&b, e->name, nl);
        if (e->zip64) {
            u16(&b, 0x0001);
            u16(&b, 16);
            u64(&b, e->descriptor ? 0 : size);
            u64(&b, e->descriptor ? 0 : csize);
        }
        if (e->align64) {
            u16(&b, 0x4246);
            u16(&b, (uint32_t)pad);
            for (size_t k = 0; k < pad; k++) put(&b, "Z", 1);
        }
        z->data_off[i] = b.len;
        ck_assert_uint_le(e->truncate_data, comp_len[i]);
        put(&b, comp[i], comp_len[i] - e->truncate_data);
        if (e->descriptor) {
            if (e->descriptor_sig) u32(&b, 0x08074b50);
            u32(&b, crc[i]);
            if (e->zip64) {
                u64(&b, csize);
                u64(&b, size);
            } else {
                u32(&b, (uint32_t)csize);
                u32(&b, (uint32_t)size);
            }
        }
    }
    junk(&b, opts->cd_gap);
    z->cd_off = b.len;
    for (size_t i = 0; i < n; i++) {
        const tz_member *e = &m[i];
        uint64_t real_size = e->precompressed ? e->raw_size : e->len;
        uint64_t size = e->lie_size ? e->declared_size : real_size;
        uint64_t csize = e->lie_comp ? e->declared_comp : comp_len[i];
        size_t nl = strlen(e->name);
        z->central_off[i] = b.len;
        u32(&b, 0x02014b50);
        u16(&b, e->zip64 ? 45 : 20);
        u16(&b, e->zip64 ? 45 : 20);
        u16(&b, (uint32_t)(e->descriptor ? 0x0008 : 0));
        u16(&b, (uint32_t)e->method);
        u16(&b, 0);
        u16(&b, 0x21);
        u32(&b, crc[i]);
        u32(&b, e->zip64 ? 0xffffffffu : (uint32_t)csize);
        u32(&b, e->zip64 ? 0xffffffffu : (uint32_t)size);
        u16(&b, (uint32_t)nl);
        u16(&b, e->zip64 ? 4 + 24 : 0);
        u16(&b, 0);
        u16(&b, 0);
        u16(&b, 0);
        u32(&b, 0);
        u32(&b, e->zip64 ? 0xffffffffu : (uint32_t)z->local_off[i]);
        put(&b, e->name, nl);
        if (e->zip64) {
            u16(&b, 0x0001);
            u16(&b, 24);
            u64(&b, size);
            u64(&b, csize);
            u64(&b, z->local_off[i]);
        }
        free(comp[i]);
    }
    size_t cd_size = b.len - z->cd_off;
    if (opts->zip64_end) {
        size_t rec = b.len;
        u32(&b, 0x06064b50);
        u64(&b, 44);
        u16(&b, 45);
        u16(&b, 45);
        u32(&b, 0);
        u32(&b, 0);
        u64(&b, n);
        u64(&b, n);
        u64(&b, cd_size);
        u64(&b, z->cd_off);
        u32(&b, 0x07064b50);
        u32(&b, 0);
        u64(&b, rec);
        u32(&b, 1);
    }
    z->eocd_off = b.len;
    u32(&b, 0x06054b50);
    u16(&b, 0);
    u16(&b, 0);
    u16(&b, opts->zip64_end ? 0xffff : (uint32_t)n);
    u16(&b, opts->zip64_end ? 0xffff : (uint32_t)n);
    u32(&b, opts->zip64_end ? 0xffffffffu : (uint32_t)cd_size);
    u32(&b, opts->zip64_end ? 0xffffffffu : (uint32_t)z->cd_off);
    u16(&b, 0);
    junk(&b, opts->trailing);
    z->data = b.p;
    z->len = b.len;
}
