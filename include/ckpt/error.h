/*
 * error.h: the error object.
 *
 * The caller owns it (like libzip's zip_error_t): create one per thread or per operation, pass it to any
 * call that can fail, read it after a failure. There is no global or thread-local error state. Every
 * `ckpt_error *err` parameter may be NULL when the caller only wants the status code.
 */
#ifndef CKPT_ERROR_H
#define CKPT_ERROR_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ckpt_error ckpt_error;

CKPT_API ckpt_error *ckpt_error_new(void);
CKPT_API void ckpt_error_free(ckpt_error *err);
/* Resets to CKPT_OK with an empty message. */
CKPT_API void ckpt_error_clear(ckpt_error *err);

CKPT_API ckpt_status ckpt_error_code(const ckpt_error *err);
/*
 * The full human-readable message, including where the problem is and what the user can do, e.g.
 *   "archive/data.pkl: byte 14, opcode GLOBAL: global 'os.system' is not allowed ..."
 * Never NULL; "" when there is no error. Valid until the next call that modifies err.
 */
CKPT_API const char *ckpt_error_message(const ckpt_error *err);
/* The bare description without the location prefix. */
CKPT_API const char *ckpt_error_detail(const ckpt_error *err);
/* The zip member (or file part) where the error was found, or NULL. */
CKPT_API const char *ckpt_error_record(const ckpt_error *err);
/* Byte offset within that record (or within the file for container errors), or -1. */
CKPT_API int64_t ckpt_error_offset(const ckpt_error *err);
/* The pickle opcode being executed (0..255), or -1. */
CKPT_API int ckpt_error_opcode(const ckpt_error *err);
/* For CKPT_ERR_BLOCKED: the refused global as "module.name"; otherwise NULL. */
CKPT_API const char *ckpt_error_global(const ckpt_error *err);

#ifdef __cplusplus
}
#endif
#endif
