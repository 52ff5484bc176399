/*
 * bytebuf.h: a growable byte buffer for building output (the pickle, the zip central directory, small
 * records). Allocation failure is sticky: appends become no-ops and `failed` stays set, so a writer
 * appends freely and checks once.
 */
#ifndef CK_BYTEBUF_H
#define CK_BYTEBUF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct ck_bytebuf {
    uint8_t *p;
    size_t len, cap;
    bool failed;
} ck_bytebuf;

static inline bool ck_bb_reserve(ck_bytebuf *b, size_t extra)
{
    if (b->failed) return false;
    if (extra <= b->cap - b->len) return true;
    size_t need;
    if (__builtin_add_overflow(b->len, extra, &need)) { b->failed = true; return false; }
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) { ncap = need; break; }
        ncap *= 2;
    }
    uint8_t *n = realloc(b->p, ncap);
    if (!n) { b->failed = true; return false; }
    b->p = n;
    b->cap = ncap;
    return true;
}

static inline void ck_bb_put(ck_bytebuf *b, const void *d, size_t n)
{
    if (n && ck_bb_reserve(b, n)) {
        memcpy(b->p + b->len, d, n);
        b->len += n;
    }
}

static inline void ck_bb_u8(ck_bytebuf *b, uint8_t v) { ck_bb_put(b, &v, 1); }
static inline void ck_bb_le16(ck_bytebuf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    ck_bb_put(b, x, 2);
}
static inline void ck_bb_le32(ck_bytebuf *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++) x[i] = (uint8_t)(v >> (8 * i));
    ck_bb_put(b, x, 4);
}
static inline void ck_bb_le64(ck_bytebuf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
    ck_bb_put(b, x, 8);
}
static inline void ck_bb_free(ck_bytebuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

#endif
