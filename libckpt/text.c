/* text.c: UTF-8, protocol-0 string escapes, exact integer text and Python's float repr. */
#include "text.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool ck_utf8_valid(const uint8_t *p, size_t n, bool allow_surrogates)
{
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, 8 bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        uint8_t c = p[i];
        if (c < 0x80) { i++; continue; }
        size_t need;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) { need = 1; cp = c & 0x1f; min = 0x80; }
        else if ((c & 0xf0) == 0xe0) { need = 2; cp = c & 0x0f; min = 0x800; }
        else if ((c & 0xf8) == 0xf0) { need = 3; cp = c & 0x07; min = 0x10000; }
        else return false;
        if (need > n - i - 1) return false;
        for (size_t k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff) return false;
        if (cp >= 0xd800 && cp <= 0xdfff && !allow_surrogates) return false;
        i += need + 1;
    }
    return true;
}

size_t ck_utf8_put(uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) { o[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) { o[0] = (uint8_t)(0xc0 | cp >> 6); o[1] = (uint8_t)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xe0 | cp >> 12); o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (uint8_t)(0xf0 | cp >> 18); o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f)); o[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

long ck_unescape_string(const uint8_t *p, size_t n, uint8_t *out)
{
    /* Lib/pickle.py load_string: the argument must be quoted with matching ' or ". */
    if (n < 2 || p[0] != p[n - 1] || (p[0] != '\'' && p[0] != '"')) return -1;
    p++;
    n -= 2;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\\') { out[o++] = p[i]; continue; }
        if (++i >= n) return -1; /* trailing backslash */
        uint8_t c = p[i];
        switch (c) {
        case '\n': break;
        case '\\': out[o++] = '\\'; break;
        case '\'': out[o++] = '\''; break;
        case '"': out[o++] = '"'; break;
        case 'a': out[o++] = 7; break;
        case 'b': out[o++] = 8; break;
        case 'f': out[o++] = 12; break;
        case 'n': out[o++] = 10; break;
        case 'r': out[o++] = 13; break;
        case 't': out[o++] = 9; break;
        case 'v': out[o++] = 11; break;
        case 'x': {
            if (n - i < 3) return -1;
            int h = hexval(p[i + 1]), l = hexval(p[i + 2]);
            if (h < 0 || l < 0) return -1;
            out[o++] = (uint8_t)(h * 16 + l);
            i += 2;
            break;
        }
        default:
            if (c >= '0' && c <= '7') {
                unsigned v = c - '0';
                for (int k = 0; k < 2 && i + 1 < n && p[i + 1] >= '0' && p[i + 1] <= '7'; k++) v = v * 8 + (p[++i] - '0');
                out[o++] = (uint8_t)v; /* Python keeps the low 8 bits of \400 and up */
            } else {
                out[o++] = '\\'; /* unknown escapes are kept as written */
                out[o++] = c;
            }
        }
    }
    return (long)o;
}

long ck_raw_unicode_escape(const uint8_t *p, size_t n, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (p[i] != '\\') { o += ck_utf8_put(out + o, p[i++]); continue; }
        /* A run of backslashes: only an odd-length run followed by u/U starts an escape. */
        size_t run = 0;
        while (i + run < n && p[i + run] == '\\') run++;
        bool esc = (run & 1) && i + run < n && (p[i + run] == 'u' || p[i + run] == 'U');
        size_t literal = esc ? run - 1 : run;
        for (size_t k = 0; k < literal; k++) out[o++] = '\\';
        i += literal;
        if (!esc) continue;
        size_t digits = p[i + 1] == 'u' ? 4 : 8;
        if (n - (i + 2) < digits) return -1;
        uint32_t cp = 0;
        for (size_t k = 0; k < digits; k++) {
            int h = hexval(p[i + 2 + k]);
            if (h < 0) return -1;
            cp = cp * 16 + (uint32_t)h;
        }
        if (cp > 0x10ffff) return -1;
        o += ck_utf8_put(out + o, cp);
        i += 2 + digits;
    }
    return (long)o;
}

ck_int_parse ck_parse_decimal_i64(const char *p, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (p[i] == '+' || p[i] == '-')) neg = p[i++] == '-';
    if (i >= n) return CK_INT_BAD;
    if (p[i] == '0' && n - i > 1) return CK_INT_BAD; /* Python's int(x, 0) refuses leading zeros */
    uint64_t v = 0;
    bool big = false;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return CK_INT_BAD;
        if (!big && (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(p[i] - '0'), &v)))
            big = true;
    }
    if (big) return CK_INT_BIG;
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) return CK_INT_BIG;
        *out = (int64_t)(0 - v);
    } else {
        if (v > INT64_MAX) return CK_INT_BIG;
        *out = (int64_t)v;
    }
    return CK_INT_OK;
}

size_t ck_decimal_to_le(const char *p, size_t n, uint8_t *out, size_t cap)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (p[i] == '+' || p[i] == '-')) neg = p[i++] == '-';
    if (i >= n || cap < 2) return 0;
    size_t len = 1;
    memset(out, 0, cap);
    /* nine digits per pass over the bytes: the conversion is quadratic, so this matters for the
     * longest ints CKPT_LIMIT_MAX_INT_BYTES allows (a file of such lines must not take minutes) */
    while (i < n) {
        uint64_t chunk = 0, mul = 1;
        for (int d = 0; d < 9 && i < n; d++, i++) {
            if (p[i] < '0' || p[i] > '9') return 0;
            chunk = chunk * 10 + (uint64_t)(p[i] - '0');
            mul *= 10;
        }
        uint64_t carry = chunk;
        for (size_t k = 0; k < len; k++) {
            uint64_t v = out[k] * mul + carry; /* < 2^8 * 10^9 + 2^38: no overflow */
            out[k] = (uint8_t)v;
            carry = v >> 8;
        }
        while (carry) {
            if (len >= cap - 1) return 0;
            out[len++] = (uint8_t)carry;
            carry >>= 8;
        }
    }
    out[len++] = 0; /* room for the sign bit */
    if (neg) {
        unsigned carry = 1;
        for (size_t k = 0; k < len; k++) {
            unsigned v = (uint8_t)~out[k] + carry;
            out[k] = (uint8_t)v;
            carry = v >> 8;
        }
    }
    return len;
}

char *ck_le_to_decimal(const uint8_t *b, size_t n)
{
    if (n == 0) {
        char *z = malloc(2);
        if (z) strcpy(z, "0");
        return z;
    }
    bool neg = b[n - 1] & 0x80;
    size_t nl = (n + 3) / 4;
    uint32_t *limb = calloc(nl, 4);
    /* at most 2.41 digits per byte, plus sign and NUL */
    size_t cap = n * 5 / 2 + 4;
    char *digits = malloc(cap), *res = malloc(cap);
    if (!limb || !digits || !res) {
        free(limb); free(digits); free(res);
        return NULL;
    }
    /* magnitude */
    unsigned carry = neg ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v = neg ? (uint8_t)~b[i] + carry : b[i];
        if (neg) carry = v >> 8;
        limb[i / 4] |= (uint32_t)(uint8_t)v << (8 * (i % 4));
    }
    size_t nd = 0, top = nl;
    while (top > 0 && limb[top - 1] == 0) top--;
    while (top > 0) {
        uint64_t rem = 0;
        for (size_t k = top; k-- > 0;) {
            uint64_t cur = (rem << 32) | limb[k];
            limb[k] = (uint32_t)(cur / 1000000000u);
            rem = cur % 1000000000u;
        }
        while (top > 0 && limb[top - 1] == 0) top--;
        for (int d = 0; d < 9; d++) {
            digits[nd++] = (char)('0' + rem % 10);
            rem /= 10;
            if (top == 0 && rem == 0) break;
        }
    }
    if (nd == 0) digits[nd++] = '0';
    size_t o = 0;
    if (neg) res[o++] = '-';
    while (nd) res[o++] = digits[--nd];
    res[o] = '\0';
    free(limb);
    free(digits);
    return res;
}

/* strtod, but always with '.' as the decimal point whatever the process locale. */
static double c_strtod(const char *s, char **end)
{
    const char *dp = localeconv()->decimal_point;
    if (dp[0] == '.' && dp[1] == '\0') return strtod(s, end);
    char buf[512];
    size_t n = strlen(s);
    if (n >= sizeof buf) n = sizeof buf - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *dot = strchr(buf, '.');
    if (dot) *dot = dp[0];
    char *e;
    double v = strtod(buf, &e);
    if (end) *end = (char *)s + (e - buf);
    return v;
}

bool ck_parse_float(const char *p, size_t n, double *out)
{
    char buf[512];
    if (n == 0 || n >= sizeof buf) return false;
    /* Python float(): optional sign, then inf/infinity/nan or decimal digits with . and exponent. */
    size_t i = 0;
    if (p[i] == '+' || p[i] == '-') i++;
    const char *rest = p + i;
    size_t rn = n - i;
    bool special = (rn == 3 && (strncasecmp(rest, "inf", 3) == 0 || strncasecmp(rest, "nan", 3) == 0)) ||
                   (rn == 8 && strncasecmp(rest, "infinity", 8) == 0);
    if (!special) {
        size_t digits = 0, k = 0;
        while (k < rn && rest[k] >= '0' && rest[k] <= '9') { k++; digits++; }
        if (k < rn && rest[k] == '.') {
            k++;
            while (k < rn && rest[k] >= '0' && rest[k] <= '9') { k++; digits++; }
        }
        if (digits == 0) return false;
        if (k < rn && (rest[k] == 'e' || rest[k] == 'E')) {
            k++;
            if (k < rn && (rest[k] == '+' || rest[k] == '-')) k++;
            size_t ed = 0;
            while (k < rn && rest[k] >= '0' && rest[k] <= '9') { k++; ed++; }
            if (ed == 0) return false;
        }
        if (k != rn) return false;
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    double v = c_strtod(buf, &end);
    if (end != buf + n) return false;
    *out = v;
    return true;
}

/* The significant digits (no dot, no sign) and decimal exponent of printf's "%e" text. */
static size_t split_e(const char *s, char *digits, int *exp10)
{
    size_t nd = 0;
    if (*s == '-') s++;
    for (; *s && *s != 'e' && *s != 'E'; s++)
        if (*s >= '0' && *s <= '9') digits[nd++] = *s;
    *exp10 = atoi(s + 1);
    return nd;
}

/* True when d.ddd x 10^exp10 (with sign) reads back as exactly v. */
static bool digits_roundtrip(const char *digits, size_t nd, int exp10, bool neg, double v)
{
    char t[48];
    size_t o = 0;
    if (neg) t[o++] = '-';
    t[o++] = digits[0];
    t[o++] = '.';
    for (size_t k = 1; k < nd; k++) t[o++] = digits[k];
    if (nd == 1) t[o++] = '0';
    snprintf(t + o, sizeof t - o, "e%d", exp10);
    return c_strtod(t, NULL) == v;
}

/* The neighbour of d.ddd x 10^exp10 one unit in the last digit up (dir > 0) or down, same digit count. */
static void step_digits(char *digits, size_t nd, int *exp10, int dir)
{
    size_t k = nd;
    if (dir > 0) {
        while (k-- > 0) {
            if (digits[k] != '9') { digits[k]++; return; }
            digits[k] = '0';
        }
        digits[0] = '1'; /* 9.99 -> 10.0: one digit more in front, keep the count */
        (*exp10)++;
    } else {
        while (k-- > 0) {
            if (digits[k] != '0') { digits[k]--; break; }
            digits[k] = '9';
        }
        if (digits[0] == '0') { /* 1.00 -> 0.999: the neighbour below is 9.99 x 10^(exp10-1) */
            memset(digits, '9', nd);
            (*exp10)--;
        }
    }
}

void ck_float_repr(double v, char *buf, size_t cap)
{
    if (isnan(v)) { snprintf(buf, cap, "nan"); return; }
    if (isinf(v)) { snprintf(buf, cap, v < 0 ? "-inf" : "inf"); return; }
    if (v == 0) { snprintf(buf, cap, signbit(v) ? "-0.0" : "0.0"); return; }
    /*
     * Python's repr: the fewest significant digits that read back as v; among several, the one nearest
     * to v. For each digit count, printf's correctly rounded text is the nearest candidate; when it does
     * not read back, its neighbour on the other side of v still may, because at a power of two the
     * interval of decimals that round to v is twice as wide above v as below it (2**-24 is
     * 5.960464477539063e-08, not 5.9604644775390625e-08).
     */
    bool neg = signbit(v);
    char tmp[40], digits[24];
    size_t nd = 0;
    int exp10 = 0;
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
        nd = split_e(tmp, digits, &exp10);
        if (c_strtod(tmp, NULL) == v) break;
        char alt[24];
        int alt_exp = exp10;
        memcpy(alt, digits, nd);
        step_digits(alt, nd, &alt_exp, fabs(c_strtod(tmp, NULL)) < fabs(v) ? 1 : -1);
        if (digits_roundtrip(alt, nd, alt_exp, neg, v)) {
            memcpy(digits, alt, nd);
            exp10 = alt_exp;
            break;
        }
    }
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    /* value = d.ddd x 10^exp10 */
    int decpt = exp10 + 1;    /* value = 0.dddd x 10^decpt */
    char out[64];
    size_t o = 0;
    if (neg) out[o++] = '-';
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            out[o++] = '0';
            out[o++] = '.';
            for (int k = 0; k < -decpt; k++) out[o++] = '0';
            for (size_t k = 0; k < nd; k++) out[o++] = digits[k];
        } else {
            for (int k = 0; k < decpt; k++) out[o++] = (size_t)k < nd ? digits[k] : '0';
            out[o++] = '.';
            if ((size_t)decpt < nd)
                for (size_t k = (size_t)decpt; k < nd; k++) out[o++] = digits[k];
            else
                out[o++] = '0';
        }
        out[o] = '\0';
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (size_t k = 1; k < nd; k++) out[o++] = digits[k];
        }
        o += (size_t)snprintf(out + o, sizeof out - o, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    }
    snprintf(buf, cap, "%s", out);
}
