/* util.h: checked arithmetic and byte-order helpers used everywhere in libckpt. */
#ifndef CK_UTIL_H
#define CK_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#  define CK_LIKELY(x) __builtin_expect(!!(x), 1)
#  define CK_UNLIKELY(x) __builtin_expect(!!(x), 0)
#  define CK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#  define CK_LIKELY(x) (x)
#  define CK_UNLIKELY(x) (x)
#  define CK_PRINTF(a, b)
#endif

/* Checked arithmetic: return true on overflow, like __builtin_*_overflow. */
static inline bool ck_mul_overflow_u64(uint64_t a, uint64_t b, uint64_t *r) { return __builtin_mul_overflow(a, b, r); }
static inline bool ck_add_overflow_u64(uint64_t a, uint64_t b, uint64_t *r) { return __builtin_add_overflow(a, b, r); }
static inline bool ck_mul_overflow_i64(int64_t a, int64_t b, int64_t *r) { return __builtin_mul_overflow(a, b, r); }
static inline bool ck_add_overflow_i64(int64_t a, int64_t b, int64_t *r) { return __builtin_add_overflow(a, b, r); }
static inline bool ck_mul_overflow_size(size_t a, size_t b, size_t *r) { return __builtin_mul_overflow(a, b, r); }
static inline bool ck_add_overflow_size(size_t a, size_t b, size_t *r) { return __builtin_add_overflow(a, b, r); }

/*
 * The one bounds idiom: with off <= len already established, "n bytes at off fit" is n <= len - off.
 * Never write off + n > len (it can wrap).
 */
static inline bool ck_fits(uint64_t len, uint64_t off, uint64_t n) { return off <= len && n <= len - off; }

static inline uint16_t ck_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t ck_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t ck_le64(const uint8_t *p) { return (uint64_t)ck_le32(p) | ((uint64_t)ck_le32(p + 4) << 32); }
static inline uint64_t ck_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}
static inline void ck_put_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void ck_put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void ck_put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void ck_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static inline bool ck_host_is_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

#define CK_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CK_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CK_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
