/*
 * zip_writer.h: the zip layout torch.save writes (PyTorchStreamWriter on miniz, see
 * docs/pytorch-format-notes.md §4), byte for byte:
 *   - every member stored (method 0), named "<prefix>/<name>", with DOS time and date 0;
 *   - local header with version 0, flags 0x0808 (data descriptor + UTF-8; 0x0800 for empty members),
 *     CRC and sizes 0, then a zip64 extra field when the size or the header offset reaches 0xFFFFFFFF,
 *     then the "FB" extra field padded with 'Z' so the data starts on a 64-byte boundary;
 *   - a data descriptor after non-empty data (16 bytes, or 24 with 64-bit sizes when the local header
 *     has a zip64 extra);
 *   - central directory entries without padding, zip64 extra fields where a value is saturated;
 *   - always a zip64 end record and locator, then the classic end record (values saturated).
 * The CRC-32 is computed while the data streams to the sink; for large members in a file it runs on a
 * second thread, overlapping with write(2).
 */
#ifndef CK_ZIP_WRITER_H
#define CK_ZIP_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include "bytebuf.h"
#include "errors.h"
#include "sink.h"

#define CK_ZIP_ALIGNMENT 64u

typedef struct ck_zipw_entry {
    uint64_t offset;   /* local header */
    uint64_t size;
    uint32_t crc;
    uint32_t name_off; /* full name (prefix included) at names.p + name_off */
    uint16_t name_len;
    uint16_t flags;
} ck_zipw_entry;

typedef struct ck_crc_worker ck_crc_worker;

typedef struct ck_zipw {
    ck_sink *sink;
    char *prefix;
    ck_zipw_entry *entries;
    size_t count, cap;
    ck_bytebuf names;         /* every member's full name, back to back (one allocation, not one each) */
    bool open;                /* a member is being written */
    bool streaming;           /* its size is unknown until ck_zipw_end */
    uint64_t declared, written;
    uint32_t crc;
    uint64_t combined_crc;    /* c10::hash_combine of every data descriptor's CRC, as torch computes it */
    ck_crc_worker *worker;    /* lazily started; NULL when threads are unavailable */
    bool no_worker;
} ck_zipw;

ckpt_status ck_zipw_init(ck_zipw *z, ck_sink *sink, const char *prefix, ckpt_error *err);
/* Starts member "<prefix>/<name>" of exactly `size` bytes. */
ckpt_status ck_zipw_begin(ck_zipw *z, const char *name, uint64_t size, ckpt_error *err);
/* Starts a member whose size is known only at its end (less than 4 GiB, at an offset below 4 GiB). */
ckpt_status ck_zipw_begin_stream(ck_zipw *z, const char *name, ckpt_error *err);
ckpt_status ck_zipw_data(ck_zipw *z, const void *p, size_t n, ckpt_error *err);
ckpt_status ck_zipw_end(ck_zipw *z, ckpt_error *err);
/* begin + data + end. */
ckpt_status ck_zipw_record(ck_zipw *z, const char *name, const void *p, size_t n, ckpt_error *err);
/* The full name of member i (not NUL-terminated) and its length. */
static inline const char *ck_zipw_name(const ck_zipw *z, size_t i, size_t *len)
{
    *len = z->entries[i].name_len;
    return (const char *)z->names.p + z->entries[i].name_off;
}
/* Central directory and end records. */
ckpt_status ck_zipw_finish(ck_zipw *z, ckpt_error *err);
void ck_zipw_release(ck_zipw *z);

/* c10::hash_combine (64-bit size_t): seed ^ (v + 0x9e3779b9 + (seed << 6) + (seed >> 2)). */
static inline uint64_t ck_hash_combine(uint64_t seed, uint64_t v)
{
    return seed ^ (v + 0x9e3779b9u + (seed << 6) + (seed >> 2));
}

#endif
