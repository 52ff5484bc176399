/* text.h: text decoding and formatting shared by the VM and the JSON writer. */
#ifndef CK_TEXT_H
#define CK_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* UTF-8 as Python's 'surrogatepass' decoder accepts it (lone surrogates allowed, no overlongs). */
bool ck_utf8_valid(const uint8_t *p, size_t n, bool allow_surrogates);
/* Appends the UTF-8 encoding of code point cp (<= 0x10FFFF) to out; returns bytes written (1-4). */
size_t ck_utf8_put(uint8_t *out, uint32_t cp);

/*
 * Decodes a protocol-0 STRING argument (a Python repr: quoted with ' or ", backslash escapes) into raw
 * bytes. out must hold n bytes. Returns the length, or -1 when the quoting or an escape is invalid.
 */
long ck_unescape_string(const uint8_t *p, size_t n, uint8_t *out);
/* Decodes protocol-0 UNICODE (raw-unicode-escape) into UTF-8; out must hold 4*n bytes. -1 on error. */
long ck_raw_unicode_escape(const uint8_t *p, size_t n, uint8_t *out);

/* Parses a decimal integer text [+-]digits exactly (no spaces, no prefixes). */
typedef enum { CK_INT_OK, CK_INT_BIG, CK_INT_BAD } ck_int_parse;
ck_int_parse ck_parse_decimal_i64(const char *p, size_t n, int64_t *out);
/* Converts decimal text [+-]digits to little-endian two's complement; returns length or 0 on error. */
size_t ck_decimal_to_le(const char *p, size_t n, uint8_t *out, size_t cap);
/* Exact decimal text of a little-endian two's complement integer into a malloc'd string. */
char *ck_le_to_decimal(const uint8_t *b, size_t n);

/* Python float() syntax check for protocol-0 FLOAT lines, then the value. false when invalid. */
bool ck_parse_float(const char *p, size_t n, double *out);
/* Python's repr(float): shortest round-trip text ("0.1", "1e+16", "nan", "-inf", "-0.0"). buf >= 32. */
void ck_float_repr(double v, char *buf, size_t cap);

#endif
