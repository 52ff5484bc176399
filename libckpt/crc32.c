/*
 * crc32.c: the zip CRC-32 (reflected polynomial 0xEDB88320), used to verify records on load and computed
 * while streaming tensor data on save.
 *
 * zlib's table-driven crc32 runs at about 4 GB/s, which would cost more than the write itself when a
 * checkpoint goes to the page cache. On x86-64 with PCLMULQDQ the bulk of the data is folded 64 bytes
 * at a time with carry-less multiplication (the method of Intel's white paper "Fast CRC Computation for
 * Generic Polynomials Using PCLMULQDQ Instruction", Gopal et al., 2009, with the bit-reflected constants
 * for this polynomial), several times faster; zlib does the head, the tail and every other CPU.
 * tests/test_writer.c compares both paths with zlib on many lengths and alignments.
 */
#include <zlib.h>

#include "util.h"
#include "zip.h"

static uint32_t crc32_zlib(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define CK_CLMUL_TARGET __attribute__((target("pclmul,sse4.1")))

/*
 * Folds n bytes (n >= 64, a multiple of 16) into the running CRC. `crc` and the result are the
 * internal (pre-inverted) register values.
 */
CK_CLMUL_TARGET static uint32_t crc32_fold(uint32_t crc, const uint8_t *p, size_t n)
{
    /* x^(4*128+32) and x^(4*128-32) mod P, x^(128+32) and x^(128-32) mod P, x^64 mod P, and the
     * Barrett constants (P' and mu), all bit-reflected as the folding works on reflected data. */
    const __m128i k1k2 = _mm_set_epi64x(0x01c6e41596LL, 0x0154442bd4LL);
    const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009eLL, 0x01751997d0LL);
    const __m128i k5 = _mm_set_epi64x(0, 0x0163cd6124LL);
    const __m128i poly = _mm_set_epi64x(0x01f7011641LL, 0x01db710641LL);
    const __m128i mask32 = _mm_setr_epi32(-1, 0, -1, 0);

    __m128i x1 = _mm_loadu_si128((const __m128i *)(p + 0));
    __m128i x2 = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i x3 = _mm_loadu_si128((const __m128i *)(p + 32));
    __m128i x4 = _mm_loadu_si128((const __m128i *)(p + 48));
    x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
    p += 64;
    n -= 64;
    /* four independent 128-bit lanes, each folded forward by 512 bits per step */
    while (n >= 64) {
        __m128i a1 = _mm_clmulepi64_si128(x1, k1k2, 0x00), b1 = _mm_clmulepi64_si128(x1, k1k2, 0x11);
        __m128i a2 = _mm_clmulepi64_si128(x2, k1k2, 0x00), b2 = _mm_clmulepi64_si128(x2, k1k2, 0x11);
        __m128i a3 = _mm_clmulepi64_si128(x3, k1k2, 0x00), b3 = _mm_clmulepi64_si128(x3, k1k2, 0x11);
        __m128i a4 = _mm_clmulepi64_si128(x4, k1k2, 0x00), b4 = _mm_clmulepi64_si128(x4, k1k2, 0x11);
        x1 = _mm_xor_si128(_mm_xor_si128(a1, b1), _mm_loadu_si128((const __m128i *)(p + 0)));
        x2 = _mm_xor_si128(_mm_xor_si128(a2, b2), _mm_loadu_si128((const __m128i *)(p + 16)));
        x3 = _mm_xor_si128(_mm_xor_si128(a3, b3), _mm_loadu_si128((const __m128i *)(p + 32)));
        x4 = _mm_xor_si128(_mm_xor_si128(a4, b4), _mm_loadu_si128((const __m128i *)(p + 48)));
        p += 64;
        n -= 64;
    }
    /* fold the four lanes into one (128 bits per step) */
    __m128i a = _mm_clmulepi64_si128(x1, k3k4, 0x00), b = _mm_clmulepi64_si128(x1, k3k4, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(a, b), x2);
    a = _mm_clmulepi64_si128(x1, k3k4, 0x00), b = _mm_clmulepi64_si128(x1, k3k4, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(a, b), x3);
    a = _mm_clmulepi64_si128(x1, k3k4, 0x00), b = _mm_clmulepi64_si128(x1, k3k4, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(a, b), x4);
    while (n >= 16) {
        a = _mm_clmulepi64_si128(x1, k3k4, 0x00), b = _mm_clmulepi64_si128(x1, k3k4, 0x11);
        x1 = _mm_xor_si128(_mm_xor_si128(a, b), _mm_loadu_si128((const __m128i *)p));
        p += 16;
        n -= 16;
    }
    /* 128 -> 64 bits */
    __m128i t = _mm_clmulepi64_si128(x1, k3k4, 0x10);
    x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), t);
    /* 64 -> 32 bits */
    t = _mm_srli_si128(x1, 4);
    x1 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k5, 0x00);
    x1 = _mm_xor_si128(x1, t);
    /* Barrett reduction to the 32-bit remainder */
    t = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), poly, 0x10);
    t = _mm_clmulepi64_si128(_mm_and_si128(t, mask32), poly, 0x00);
    x1 = _mm_xor_si128(x1, t);
    return (uint32_t)_mm_extract_epi32(x1, 1);
}

static bool have_clmul(void)
{
    static int cached = -1; /* benign race: every thread computes the same value */
    if (cached < 0) cached = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
    return cached;
}

uint32_t ck_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
    if (n < 256 || !have_clmul()) return crc32_zlib(crc, p, n);
    size_t bulk = n & ~(size_t)15;
    crc = ~crc32_fold(~crc, p, bulk);
    return crc32_zlib(crc, p + bulk, n - bulk);
}

/* For tests: zlib only. */
uint32_t ck_crc32_reference(uint32_t crc, const uint8_t *p, size_t n) { return crc32_zlib(crc, p, n); }
bool ck_crc32_accelerated(void) { return have_clmul(); }

#else

uint32_t ck_crc32(uint32_t crc, const uint8_t *p, size_t n) { return crc32_zlib(crc, p, n); }
uint32_t ck_crc32_reference(uint32_t crc, const uint8_t *p, size_t n) { return crc32_zlib(crc, p, n); }
bool ck_crc32_accelerated(void) { return false; }

#endif
