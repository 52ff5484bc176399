/*
 * zipbuild.h: a zip writer for tests that can produce what real writers produce (stored and deflated
 * members, data descriptors with or without signature, zip64 extra fields and end records, torch's
 * 64-byte FB padding) and, on request, what they must not (gaps, prepended and trailing bytes, lying
 * sizes). Every member's header offsets are returned, so a test can patch single fields afterwards
 * (tz_patch16/32) to build one specific defect at a time.
 */
#ifndef CKPT_TEST_ZIPBUILD_H
#define CKPT_TEST_ZIPBUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tz_member {
    const char *name;
    const void *data;
    size_t len;
    int method;           /* 0 stored, 8 deflate */
    bool descriptor;      /* flag bit 3: CRC and sizes 0 in the local header, descriptor after the data */
    bool descriptor_sig;  /* the descriptor starts with PK\7\8 */
    bool zip64;           /* zip64 extra fields (sizes and offset saturated to 0xffffffff) */
    bool align64;         /* torch's FB extra field so that the data starts 64-byte aligned */
    size_t gap_before;    /* junk bytes written before this member's local header */
    /* lies, written into both headers (and the descriptor) unless noted */
    bool lie_size;        /* declared uncompressed size = declared_size instead of the real one */
    uint64_t declared_size;
    bool lie_comp;        /* declared compressed size = declared_comp */
    uint64_t declared_comp;
    size_t truncate_data; /* drop this many bytes from the end of the (compressed) data, sizes unchanged */
    /* data is already compressed: written as is, with this uncompressed size and CRC */
    bool precompressed;
    uint64_t raw_size;
    uint32_t raw_crc;
} tz_member;

typedef struct tz_opts {
    bool zip64_end;       /* zip64 end record + locator before the classic end record */
    size_t prepend;       /* junk bytes before the first member (offsets are not adjusted) */
    size_t trailing;      /* junk bytes after the end record */
    size_t cd_gap;        /* junk bytes between the last member and the central directory */
} tz_opts;

#define TZ_MAX_MEMBERS 64

typedef struct tz_zip {
    uint8_t *data;
    size_t len;
    size_t n;
    size_t local_off[TZ_MAX_MEMBERS];   /* local header of member i */
    size_t data_off[TZ_MAX_MEMBERS];    /* first data byte of member i */
    size_t central_off[TZ_MAX_MEMBERS]; /* central directory entry of member i */
    size_t cd_off, eocd_off;
} tz_zip;

/* Builds the archive (ck_assert on failure). Free z->data with free(). */
void tz_build(tz_zip *z, const tz_member *m, size_t n, const tz_opts *opts);

/* Raw deflate of data (malloc'd result). */
uint8_t *tz_deflate(const void *data, size_t len, size_t *out_len);

static inline void tz_patch16(uint8_t *p, size_t off, uint16_t v)
{
    p[off] = (uint8_t)v;
    p[off + 1] = (uint8_t)(v >> 8);
}
static inline void tz_patch32(uint8_t *p, size_t off, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[off + i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t tz_get16(const uint8_t *p, size_t off) { return (uint16_t)(p[off] | (p[off + 1] << 8)); }
static inline uint32_t tz_get32(const uint8_t *p, size_t off)
{
    return (uint32_t)p[off] | ((uint32_t)p[off + 1] << 8) | ((uint32_t)p[off + 2] << 16) | ((uint32_t)p[off + 3] << 24);
}

/* Field offsets inside a local header and a central directory entry. */
enum {
    TZ_L_FLAGS = 6, TZ_L_METHOD = 8, TZ_L_CRC = 14, TZ_L_COMP = 18, TZ_L_SIZE = 22, TZ_L_NLEN = 26, TZ_L_XLEN = 28,
    TZ_L_NAME = 30,
    TZ_C_FLAGS = 8, TZ_C_METHOD = 10, TZ_C_CRC = 16, TZ_C_COMP = 20, TZ_C_SIZE = 24, TZ_C_NLEN = 28,
    TZ_C_OFFSET = 42, TZ_C_NAME = 46,
};

#endif
