/*
 * errors.h: how library code reports failures into a ckpt_error.
 *
 * The code that finds a problem sets the code and description; the layers above add where it happened
 * (the record, the byte offset, the opcode), so each layer only says what it knows.
 */
#ifndef CK_ERRORS_H
#define CK_ERRORS_H

#include <stdarg.h>
#include "ckpt/error.h"
#include "util.h"

#define CK_ERROR_DETAIL_MAX 1024
#define CK_ERROR_MESSAGE_MAX 2048

struct ckpt_error {
    ckpt_status code;
    int64_t offset; /* -1 when unknown */
    int opcode;     /* -1 when unknown */
    char record[256];
    char global[512];
    char detail[CK_ERROR_DETAIL_MAX];
    char message[CK_ERROR_MESSAGE_MAX];
};

void ck_error_init(ckpt_error *e);
/* Sets code and description (printf-style) and clears any location; returns code. */
ckpt_status ck_error_set(ckpt_error *e, ckpt_status code, const char *fmt, ...) CK_PRINTF(3, 4);
ckpt_status ck_error_vset(ckpt_error *e, ckpt_status code, const char *fmt, va_list ap) CK_PRINTF(3, 0);
/* Adds location parts that are still unknown (the innermost layer that knows a part wins). */
void ck_error_at_offset(ckpt_error *e, int64_t offset, int opcode);
void ck_error_in_record(ckpt_error *e, const char *record);
void ck_error_set_global(ckpt_error *e, const char *module, const char *name);
/* Appends text to the description (e.g. a hint). */
void ck_error_append(ckpt_error *e, const char *fmt, ...) CK_PRINTF(2, 3);
/* Copies src into dst (dst may be NULL). */
void ck_error_copy(ckpt_error *dst, const ckpt_error *src);

#endif
