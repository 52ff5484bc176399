/* zip_reader.c: strict zip parsing (see zip.h). Every header field is read once, then checked. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "util.h"
#include "zip.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u
#define SIG_DESCRIPTOR 0x08074b50u

#define FLAG_ENCRYPTED 0x0001u
#define FLAG_DEFLATE_OPTS 0x0006u
#define FLAG_DESCRIPTOR 0x0008u
#define FLAG_PATCHED 0x0020u
#define FLAG_STRONG_ENCRYPTION 0x0040u
#define FLAG_UTF8 0x0800u
#define FLAG_MASKED_HEADERS 0x2000u

/* deflate cannot expand data by more than about 1032:1 */
#define MAX_DEFLATE_RATIO 1032u

static ckpt_status zfail(ckpt_error *err, uint64_t off, const char *fmt, ...) CK_PRINTF(3, 4);
static ckpt_status zfail(ckpt_error *err, uint64_t off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ck_error_vset(err, CKPT_ERR_ZIP, fmt, ap);
    va_end(ap);
    ck_error_at_offset(err, (int64_t)off, -1);
    return CKPT_ERR_ZIP;
}

/* zip64 extra field values for the fields whose 32-bit value is saturated. */
typedef struct {
    uint64_t size, comp_size, offset;
    uint32_t disk;
} z64_fields;

static ckpt_status parse_extra(const uint8_t *p, size_t n, uint64_t base_off, z64_fields *f, bool need_size,
                               bool need_comp, bool need_off, bool need_disk, const char *name, ckpt_error *err)
{
    bool found = false;
    size_t i = 0;
    while (i < n) {
        if (n - i < 4) return zfail(err, base_off + i, "member '%s': malformed extra field (a truncated block header)", name);
        uint16_t id = ck_le16(p + i), sz = ck_le16(p + i + 2);
        i += 4;
        if (sz > n - i) return zfail(err, base_off + i, "member '%s': extra field block of %u bytes runs past the field", name, sz);
        if (id == 0x0001) {
            if (found) return zfail(err, base_off + i, "member '%s': two zip64 extra fields", name);
            found = true;
            size_t need = (need_size ? 8 : 0) + (need_comp ? 8 : 0) + (need_off ? 8 : 0) + (need_disk ? 4 : 0);
            if (sz < need)
                return zfail(err, base_off + i, "member '%s': zip64 extra field has %u bytes, %zu needed", name, sz, need);
            const uint8_t *q = p + i;
            if (need_size) { f->size = ck_le64(q); q += 8; }
            if (need_comp) { f->comp_size = ck_le64(q); q += 8; }
            if (need_off) { f->offset = ck_le64(q); q += 8; }
            if (need_disk) f->disk = ck_le32(q);
        }
        i += sz;
    }
    if ((need_size || need_comp || need_off || need_disk) && !found)
        return zfail(err, base_off, "member '%s': 32-bit field saturated but no zip64 extra field", name);
    return CKPT_OK;
}

static ckpt_status check_flags(uint16_t flags, uint16_t method, const char *name, uint64_t off, ckpt_error *err)
{
    if (flags & FLAG_ENCRYPTED) return zfail(err, off, "member '%s' is encrypted (flag bit 0x1): refused", name);
    if (flags & FLAG_STRONG_ENCRYPTION) return zfail(err, off, "member '%s' uses strong encryption (flag bit 0x40): refused", name);
    if (flags & FLAG_PATCHED) return zfail(err, off, "member '%s' is marked as patched data (flag bit 0x20): refused", name);
    if (flags & FLAG_MASKED_HEADERS) return zfail(err, off, "member '%s' has masked (encrypted) headers (flag bit 0x2000): refused", name);
    uint16_t allowed = FLAG_DESCRIPTOR | FLAG_UTF8 | (method == 8 ? FLAG_DEFLATE_OPTS : 0);
    if (flags & ~allowed) return zfail(err, off, "member '%s' has unexpected flag bits 0x%04x: refused", name, flags & ~allowed);
    return CKPT_OK;
}

static int cmp_by_offset(const void *a, const void *b)
{
    const ck_zip_member *x = *(const ck_zip_member *const *)a, *y = *(const ck_zip_member *const *)b;
    return x->local_offset < y->local_offset ? -1 : x->local_offset > y->local_offset;
}

/* Finds the end-of-central-directory record: the last one whose comment ends exactly at EOF. */
static ckpt_status find_eocd(const uint8_t *d, size_t len, size_t *at, ckpt_error *err)
{
    if (len < 22) return zfail(err, 0, "truncated zip: %zu bytes, too short for an end-of-central-directory record", len);
    size_t lowest = len - 22 > 65535 ? len - 22 - 65535 : 0;
    for (size_t i = len - 22 + 1; i-- > lowest;) {
        if (ck_le32(d + i) != SIG_EOCD) continue;
        uint16_t clen = ck_le16(d + i + 20);
        if ((size_t)clen == len - i - 22) {
            *at = i;
            return CKPT_OK;
        }
    }
    for (size_t i = len - 22 + 1; i-- > lowest;)
        if (ck_le32(d + i) == SIG_EOCD)
            return zfail(err, i, "end-of-central-directory record does not end at the end of the file (trailing data "
                         "or a truncated comment)");
    return zfail(err, len, "no end-of-central-directory record: truncated or not a zip file");
}

ckpt_status ck_zip_open(ck_zip *z, const uint8_t *d, size_t len, ck_arena *arena, uint64_t max_members, ckpt_error *err)
{
    memset(z, 0, sizeof *z);
    z->data = d;
    z->len = len;
    z->fd = -1;
    ck_strmap_init(&z->by_name, arena);
    size_t eocd = 0;
    ckpt_status s = find_eocd(d, len, &eocd, err);
    if (s) return s;
    const uint8_t *e = d + eocd;
    uint16_t disk = ck_le16(e + 4), cd_disk = ck_le16(e + 6), n_here = ck_le16(e + 8), n_total = ck_le16(e + 10);
    uint32_t cd_size32 = ck_le32(e + 12), cd_off32 = ck_le32(e + 16);
    uint64_t count = n_total, cd_size = cd_size32, cd_off = cd_off32;
    uint64_t cd_end_limit = eocd; /* where the central directory must end */
    bool has_locator = eocd >= 20 && ck_le32(d + eocd - 20) == SIG_LOCATOR64;
    bool saturated = n_here == 0xffff || n_total == 0xffff || cd_size32 == 0xffffffffu || cd_off32 == 0xffffffffu ||
                     disk == 0xffff || cd_disk == 0xffff;
    if (saturated && !has_locator) return zfail(err, eocd, "end record needs zip64 values but has no zip64 locator");
    if (has_locator) {
        const uint8_t *l = d + eocd - 20;
        uint32_t z64_disk = ck_le32(l + 4), ndisks = ck_le32(l + 16);
        uint64_t z64_off = ck_le64(l + 8);
        if (z64_disk != 0 || ndisks > 1) return zfail(err, eocd - 20, "multi-disk zip archives are not supported");
        if (z64_off > eocd - 20 || eocd - 20 - z64_off < 56)
            return zfail(err, eocd - 20, "zip64 locator points outside the file");
        const uint8_t *r = d + z64_off;
        if (ck_le32(r) != SIG_EOCD64) return zfail(err, z64_off, "zip64 end record signature missing");
        uint64_t rec_size = ck_le64(r + 4);
        if (rec_size < 44 || rec_size != eocd - 20 - z64_off - 12)
            return zfail(err, z64_off, "zip64 end record size %llu does not reach the locator", (unsigned long long)rec_size);
        uint32_t d64 = ck_le32(r + 16), cdd64 = ck_le32(r + 20);
        uint64_t here64 = ck_le64(r + 24), total64 = ck_le64(r + 32), size64 = ck_le64(r + 40), off64 = ck_le64(r + 48);
        if (d64 != 0 || cdd64 != 0 || here64 != total64) return zfail(err, z64_off, "multi-disk zip archives are not supported");
        /* where both records give a value, they must agree */
        if ((n_total != 0xffff && n_total != total64) || (cd_size32 != 0xffffffffu && cd_size32 != size64) ||
            (cd_off32 != 0xffffffffu && cd_off32 != off64))
            return zfail(err, eocd, "zip64 end record disagrees with the end record");
        count = total64;
        cd_size = size64;
        cd_off = off64;
        cd_end_limit = z64_off;
        z->zip64 = true;
    } else {
        if (disk != 0 || cd_disk != 0 || n_here != n_total) return zfail(err, eocd, "multi-disk zip archives are not supported");
    }
    if (cd_off > cd_end_limit || cd_size != cd_end_limit - cd_off)
        return zfail(err, eocd, "central directory (offset %llu, %llu bytes) does not end where the end record starts",
                     (unsigned long long)cd_off, (unsigned long long)cd_size);
    if (count > max_members)
        return ck_error_set(err, CKPT_ERR_LIMIT, "zip has %llu members, more than CKPT_LIMIT_MAX_MEMBERS (%llu)",
                            (unsigned long long)count, (unsigned long long)max_members);
    /* each central entry takes at least 46 bytes: check before allocating */
    if (count > cd_size / 46) return zfail(err, cd_off, "central directory too small for %llu entries", (unsigned long long)count);
    z->cd_offset = cd_off;
    z->cd_size = cd_size;
    if (count) {
        z->members = ck_arena_zalloc(arena, (size_t)count * sizeof *z->members, _Alignof(ck_zip_member));
        if (!z->members || !ck_strmap_reserve(&z->by_name, (size_t)count)) goto nomem;
    }
    uint64_t pos = cd_off, cd_end = cd_off + cd_size;
    for (uint64_t k = 0; k < count; k++) {
        if (!ck_fits(cd_end, pos, 46)) return zfail(err, pos, "central directory entry %llu is truncated", (unsigned long long)k);
        const uint8_t *c = d + pos;
        if (ck_le32(c) != SIG_CENTRAL) return zfail(err, pos, "central directory entry %llu has a bad signature", (unsigned long long)k);
        uint16_t version_needed = ck_le16(c + 6), flags = ck_le16(c + 8), method = ck_le16(c + 10);
        uint32_t crc = ck_le32(c + 16), comp32 = ck_le32(c + 20), size32 = ck_le32(c + 24);
        uint16_t nlen = ck_le16(c + 28), xlen = ck_le16(c + 30), clen = ck_le16(c + 32), dstart = ck_le16(c + 34);
        uint32_t loff32 = ck_le32(c + 42);
        uint64_t var = (uint64_t)nlen + xlen + clen;
        if (!ck_fits(cd_end, pos + 46, var)) return zfail(err, pos, "central directory entry %llu runs past the directory", (unsigned long long)k);
        const uint8_t *nm = c + 46;
        if (nlen == 0) return zfail(err, pos, "central directory entry %llu has an empty name", (unsigned long long)k);
        if (memchr(nm, '\0', nlen)) return zfail(err, pos, "member name contains a NUL byte");
        bool ascii = true;
        for (uint16_t i = 0; i < nlen; i++) ascii &= nm[i] < 0x80;
        if (!ascii && (!(flags & FLAG_UTF8) || !ck_utf8_valid(nm, nlen, false)))
            return zfail(err, pos, "member name is neither ASCII nor flagged UTF-8 (readers would decode it differently)");
        ck_zip_member *m = &z->members[k];
        m->name = ck_arena_strndup(arena, (const char *)nm, nlen);
        if (!m->name) goto nomem;
        m->name_len = nlen;
        if (version_needed > 45)
            return zfail(err, pos, "member '%s' needs zip version %u.%u (features beyond zip64 are refused)", m->name,
                         version_needed / 10, version_needed % 10);
        if ((s = check_flags(flags, method, m->name, pos, err))) return s;
        if (method != 0 && method != 8)
            return zfail(err, pos, "member '%s' uses compression method %u (only stored and deflate are supported)", m->name, method);
        z64_fields f = {size32, comp32, loff32, dstart};
        if ((s = parse_extra(c + 46 + nlen, xlen, pos + 46 + nlen, &f, size32 == 0xffffffffu, comp32 == 0xffffffffu,
                             loff32 == 0xffffffffu, dstart == 0xffff, m->name, err)))
            return s;
        if (f.disk != 0) return zfail(err, pos, "member '%s' starts on another disk", m->name);
        m->crc = crc;
        m->comp_size = f.comp_size;
        m->size = f.size;
        m->local_offset = f.offset;
        m->method = method;
        m->flags = flags;
        m->version_needed = version_needed;
        m->mod_time = ck_le32(c + 12);
        if (method == 0 && m->comp_size != m->size)
            return zfail(err, pos, "stored member '%s' has compressed size %llu but size %llu", m->name,
                         (unsigned long long)m->comp_size, (unsigned long long)m->size);
        if (method == 8 && m->size / MAX_DEFLATE_RATIO > m->comp_size + 1)
            return zfail(err, pos, "member '%s' declares %llu bytes from %llu compressed: more than deflate can expand "
                         "(a zip bomb or a lying size)", m->name, (unsigned long long)m->size, (unsigned long long)m->comp_size);
        /* exact and case-insensitive duplicates (PyTorch's reader matches names without case) */
        char *folded = ck_arena_strndup(arena, m->name, nlen);
        if (!folded) goto nomem;
        for (size_t i = 0; i < nlen; i++) folded[i] = (char)tolower((unsigned char)folded[i]);
        void *prev = NULL;
        if (!ck_strmap_add(&z->by_name, folded, nlen, m, &prev)) goto nomem;
        if (prev)
            return zfail(err, pos, "duplicate member name '%s'%s", m->name,
                         strcmp(((ck_zip_member *)prev)->name, m->name) == 0 ? "" : " (differs only in case)");
        pos += 46 + var;
    }
    if (pos != cd_end) return zfail(err, pos, "%llu unexplained bytes at the end of the central directory",
                                    (unsigned long long)(cd_end - pos));
    z->count = (size_t)count;

    /* local headers */
    for (size_t k = 0; k < z->count; k++) {
        ck_zip_member *m = &z->members[k];
        uint64_t lo = m->local_offset;
        if (!ck_fits(cd_off, lo, 30)) return zfail(err, lo, "member '%s': local header outside the member area", m->name);
        const uint8_t *l = d + lo;
        if (ck_le32(l) != SIG_LOCAL) return zfail(err, lo, "member '%s': local header signature missing", m->name);
        uint16_t flags = ck_le16(l + 6), method = ck_le16(l + 8);
        uint32_t crc = ck_le32(l + 14), comp32 = ck_le32(l + 18), size32 = ck_le32(l + 22);
        uint16_t nlen = ck_le16(l + 26), xlen = ck_le16(l + 28);
        if (!ck_fits(cd_off, lo + 30, (uint64_t)nlen + xlen))
            return zfail(err, lo, "member '%s': local header runs into the central directory", m->name);
        if (nlen != m->name_len || memcmp(l + 30, m->name, nlen) != 0)
            return zfail(err, lo, "member '%s': local header names it '%.*s' (local and central names differ)", m->name,
                         (int)CK_MIN(nlen, 200), (const char *)(l + 30));
        if (flags != m->flags)
            return zfail(err, lo, "member '%s': local flags 0x%04x differ from central flags 0x%04x", m->name, flags, m->flags);
        if (method != m->method)
            return zfail(err, lo, "member '%s': local method %u differs from central method %u", m->name, method, m->method);
        /* libzip counts these as inconsistent headers and may then pick another end record (one hidden in
         * member data): refusing them keeps every reader on the same directory */
        if (ck_le16(l + 4) > m->version_needed)
            return zfail(err, lo, "member '%s': local header needs zip version %u, more than the central directory's %u",
                         m->name, ck_le16(l + 4), m->version_needed);
        if (ck_le32(l + 10) != m->mod_time)
            return zfail(err, lo, "member '%s': local modification time differs from the central directory's", m->name);
        z64_fields f = {size32, comp32, 0, 0};
        if ((s = parse_extra(l + 30 + nlen, xlen, lo + 30 + nlen, &f, size32 == 0xffffffffu, comp32 == 0xffffffffu, false,
                             false, m->name, err)))
            return s;
        bool zero = crc == 0 && f.size == 0 && f.comp_size == 0;
        bool same = crc == m->crc && f.size == m->size && f.comp_size == m->comp_size;
        if (!same && !((flags & FLAG_DESCRIPTOR) && zero))
            return zfail(err, lo, "member '%s': local header CRC/sizes differ from the central directory", m->name);
        m->data_offset = lo + 30 + nlen + xlen;
        if (!ck_fits(cd_off, m->data_offset, m->comp_size))
            return zfail(err, m->data_offset, "member '%s': data (%llu bytes) runs past the member area", m->name,
                         (unsigned long long)m->comp_size);
        m->end = m->data_offset + m->comp_size;
        if (flags & FLAG_DESCRIPTOR) {
            /* optional signature, CRC, then 4- or 8-byte sizes; all must agree with the central directory */
            uint64_t p = m->end;
            if (ck_fits(cd_off, p, 4) && ck_le32(d + p) == SIG_DESCRIPTOR) p += 4;
            bool ok = false;
            if (ck_fits(cd_off, p, 12) && ck_le32(d + p) == m->crc && ck_le32(d + p + 4) == m->comp_size &&
                ck_le32(d + p + 8) == m->size && m->size < 0xffffffffu && m->comp_size < 0xffffffffu) {
                /* a 32-bit descriptor, unless the 64-bit reading also fits and is what the writer meant */
                bool also64 = ck_fits(cd_off, p, 20) && ck_le64(d + p + 4) == m->comp_size && ck_le64(d + p + 12) == m->size;
                m->end = p + (also64 ? 20 : 12);
                ok = true;
            } else if (ck_fits(cd_off, p, 20) && ck_le32(d + p) == m->crc && ck_le64(d + p + 4) == m->comp_size &&
                       ck_le64(d + p + 12) == m->size) {
                m->end = p + 20;
                ok = true;
            }
            if (!ok) return zfail(err, m->end, "member '%s': data descriptor missing or disagrees with the central directory", m->name);
        }
    }
    /* members must tile [0, central directory) exactly: no prefix, gaps, or overlaps */
    if (z->count) {
        ck_zip_member **order = malloc(z->count * sizeof *order);
        if (!order) goto nomem;
        for (size_t k = 0; k < z->count; k++) order[k] = &z->members[k];
        qsort(order, z->count, sizeof *order, cmp_by_offset);
        uint64_t expect = 0;
        for (size_t k = 0; k < z->count && !s; k++) {
            ck_zip_member *m = order[k];
            if (m->local_offset < expect)
                s = zfail(err, m->local_offset, "member '%s' overlaps the member before it", m->name);
            else if (m->local_offset > expect)
                s = zfail(err, expect, "%llu bytes before member '%s' belong to no member (%s)",
                          (unsigned long long)(m->local_offset - expect), m->name,
                          expect == 0 ? "data prepended to the archive" : "hidden data between members");
            expect = m->end;
        }
        free(order);
        if (s) return s;
        if (expect != cd_off)
            return zfail(err, expect, "%llu bytes between the last member and the central directory belong to no member",
                         (unsigned long long)(cd_off - expect));
    } else if (cd_off != 0) {
        return zfail(err, 0, "%llu bytes before the central directory of an empty archive", (unsigned long long)cd_off);
    }
    return CKPT_OK;
nomem:
    if (arena->over_budget) return ck_error_set(err, CKPT_ERR_LIMIT, "allocation limit reached while reading the zip directory");
    return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
}

const ck_zip_member *ck_zip_find(const ck_zip *z, const char *name, size_t len)
{
    char buf[512];
    if (len >= sizeof buf) return NULL;
    for (size_t i = 0; i < len; i++) buf[i] = (char)tolower((unsigned char)name[i]);
    const ck_zip_member *m = ck_strmap_get(&z->by_name, buf, len);
    /* the index folds case; the name asked for must match exactly */
    if (m && (m->name_len != len || memcmp(m->name, name, len) != 0)) return NULL;
    return m;
}

static ckpt_status check_crc(const ck_zip_member *m, const uint8_t *p, ckpt_error *err)
{
    uint32_t crc = ck_crc32(0, p, (size_t)m->size);
    if (crc != m->crc)
        return zfail(err, m->data_offset, "member '%s': CRC-32 mismatch (stored %08x, computed %08x): the file is corrupt or "
                     "was altered", m->name, m->crc, crc);
    return CKPT_OK;
}

static ckpt_status inflate_member(const ck_zip *z, const ck_zip_member *m, ck_arena *arena, uint8_t **out, ckpt_error *err)
{
    if (m->size > SIZE_MAX) return ck_error_set(err, CKPT_ERR_LIMIT, "member '%s' is too large for this system", m->name);
    uint8_t *buf = ck_arena_alloc_large(arena, (size_t)m->size);
    if (!buf) {
        if (arena->over_budget)
            return ck_error_set(err, CKPT_ERR_LIMIT, "member '%s' inflates to %llu bytes, beyond the allocation limit "
                                "(CKPT_LIMIT_MAX_ALLOC)", m->name, (unsigned long long)m->size);
        return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    }
    ckpt_status s = ck_inflate_exact(z->data + m->data_offset, (size_t)m->comp_size, buf, (size_t)m->size, m->name, err);
    if (s) return s;
    *out = buf;
    return CKPT_OK;
}

ckpt_status ck_zip_read(const ck_zip *z, const ck_zip_member *m, ck_arena *arena, bool verify_crc, const uint8_t **out,
                        ckpt_error *err)
{
    const uint8_t *p;
    if (m->method == 0) {
        p = z->data + m->data_offset;
    } else {
        uint8_t *buf;
        ckpt_status s = inflate_member(z, m, arena, &buf, err);
        if (s) return s;
        p = buf;
    }
    if (verify_crc) {
        ckpt_status s = check_crc(m, p, err);
        if (s) return s;
    }
    *out = p;
    return CKPT_OK;
}

ckpt_status ck_zip_read_copy(const ck_zip *z, const ck_zip_member *m, ck_arena *arena, bool verify_crc, uint8_t **out,
                             ckpt_error *err)
{
    if (m->method != 0) {
        uint8_t *buf;
        ckpt_status s = inflate_member(z, m, arena, &buf, err);
        if (!s && verify_crc) s = check_crc(m, buf, err);
        if (!s) *out = buf;
        return s;
    }
    uint8_t *buf = ck_arena_alloc_large(arena, (size_t)m->size);
    if (!buf) {
        if (arena->over_budget)
            return ck_error_set(err, CKPT_ERR_LIMIT, "copying member '%s' (%llu bytes) exceeds the allocation limit",
                                m->name, (unsigned long long)m->size);
        return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    }
    /* Copy and checksum in cache-sized pieces, so the data crosses memory once. From a file, pread
     * copies straight from the page cache instead of faulting in the mapping page by page. */
    const uint8_t *src = z->data + m->data_offset;
    uint32_t crc = 0;
    for (size_t done = 0, n = (size_t)m->size; done < n;) {
        size_t chunk = CK_MIN(n - done, (size_t)256 * 1024);
        ssize_t r = -1;
        if (z->fd >= 0) {
            do r = pread(z->fd, buf + done, chunk, (off_t)(m->data_offset + done));
            while (r < 0 && errno == EINTR);
        }
        if (r <= 0) {
            memcpy(buf + done, src + done, chunk); /* memory input, or pread failed: the mapping has the bytes */
            r = (ssize_t)chunk;
        }
        if (verify_crc) crc = ck_crc32(crc, buf + done, (size_t)r);
        done += (size_t)r;
    }
    if (verify_crc && crc != m->crc)
        return zfail(err, m->data_offset, "member '%s': CRC-32 mismatch (stored %08x, computed %08x): the file is corrupt or "
                     "was altered", m->name, m->crc, crc);
    *out = buf;
    return CKPT_OK;
}
