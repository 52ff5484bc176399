/*
 * zip.h: the strict zip reader. The same parse serves scanning and loading.
 *
 * Accepts what torch.save writes (stored members, data descriptors, zip64 records, the FB padding
 * extra field) and what ordinary zip tools write (deflate), and refuses anything two readers could see
 * differently: local/central name or method mismatch, duplicate names (also case-insensitive, as
 * PyTorch's reader looks names up without case), encryption and other unexpected flag bits, members
 * that overlap, leave gaps or lie outside the file, bytes before the first member, sizes that do not
 * agree, trailing data after the end record, and CRC mismatches (checked on read).
 */
#ifndef CK_ZIP_H
#define CK_ZIP_H

#include <stdbool.h>
#include <stdint.h>
#include "arena.h"
#include "errors.h"
#include "strmap.h"

typedef struct ck_zip_member {
    const char *name;      /* NUL-terminated copy */
    size_t name_len;
    uint64_t local_offset; /* local header */
    uint64_t data_offset;  /* first byte of the (compressed) data */
    uint64_t comp_size;
    uint64_t size;
    uint64_t end;          /* one past the member (data descriptor included) */
    uint32_t crc;
    uint32_t mod_time;     /* DOS time and date: only compared with the local header's */
    uint16_t method;       /* 0 stored, 8 deflated */
    uint16_t flags;
    uint16_t version_needed;
} ck_zip_member;

typedef struct ck_zip {
    const uint8_t *data;
    size_t len;
    ck_zip_member *members; /* central-directory order */
    size_t count;
    ck_strmap by_name;
    uint64_t cd_offset, cd_size;
    bool zip64;
    int fd; /* the file `data` maps, for pread copies; -1 when reading from memory */
} ck_zip;

/* Parses and validates the whole archive structure (no member data is read). */
ckpt_status ck_zip_open(ck_zip *z, const uint8_t *data, size_t len, ck_arena *arena, uint64_t max_members,
                        ckpt_error *err);
const ck_zip_member *ck_zip_find(const ck_zip *z, const char *name, size_t len);

/*
 * The member's bytes. Stored members: a pointer into the archive (no copy). Deflated members: inflated
 * into an arena buffer, never past the declared size. With verify_crc the CRC-32 must match.
 */
ckpt_status ck_zip_read(const ck_zip *z, const ck_zip_member *m, ck_arena *arena, bool verify_crc, const uint8_t **out,
                        ckpt_error *err);
/* Like ck_zip_read, but always returns a private copy (64-byte aligned) in the arena. */
ckpt_status ck_zip_read_copy(const ck_zip *z, const ck_zip_member *m, ck_arena *arena, bool verify_crc,
                             uint8_t **out, ckpt_error *err);

/* inflate.c: raw deflate of exactly `in_len` bytes into exactly `out_len` bytes. */
ckpt_status ck_inflate_exact(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len, const char *name,
                             ckpt_error *err);
/* crc32.c: the zip CRC-32 of n bytes (any length), continuing from crc (0 to start). */
uint32_t ck_crc32(uint32_t crc, const uint8_t *p, size_t n);
/* The same with zlib alone (tests compare the two), and whether ck_crc32 uses PCLMULQDQ here. */
uint32_t ck_crc32_reference(uint32_t crc, const uint8_t *p, size_t n);
bool ck_crc32_accelerated(void);

#endif
