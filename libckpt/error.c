/* error.c: the caller-owned error object (see include/ckpt/error.h and errors.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "pickle_opcodes.h"

void ck_error_init(ckpt_error *e)
{
    e->code = CKPT_OK;
    e->offset = -1;
    e->opcode = -1;
    e->record[0] = e->global[0] = e->detail[0] = e->message[0] = '\0';
}

static void render(ckpt_error *e)
{
    char where[512];
    size_t n = 0;
    where[0] = '\0';
    if (e->record[0]) n += (size_t)snprintf(where + n, sizeof where - n, "%s", e->record);
    if (e->offset >= 0 && n < sizeof where)
        n += (size_t)snprintf(where + n, sizeof where - n, "%sbyte %lld", n ? ": " : "", (long long)e->offset);
    if (e->opcode >= 0 && n < sizeof where)
        n += (size_t)snprintf(where + n, sizeof where - n, "%sopcode %s", n ? ", " : "",
                              ck_pickle_opcode_name((uint8_t)e->opcode));
    if (where[0])
        snprintf(e->message, sizeof e->message, "%s: %s", where, e->detail);
    else
        snprintf(e->message, sizeof e->message, "%s", e->detail);
}

ckpt_status ck_error_vset(ckpt_error *e, ckpt_status code, const char *fmt, va_list ap)
{
    if (!e) return code;
    ck_error_init(e);
    e->code = code;
    vsnprintf(e->detail, sizeof e->detail, fmt, ap);
    render(e);
    return code;
}

ckpt_status ck_error_set(ckpt_error *e, ckpt_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ck_error_vset(e, code, fmt, ap);
    va_end(ap);
    return code;
}

void ck_error_at_offset(ckpt_error *e, int64_t offset, int opcode)
{
    if (!e || e->code == CKPT_OK) return;
    if (e->offset < 0) e->offset = offset;
    if (e->opcode < 0) e->opcode = opcode;
    render(e);
}

void ck_error_in_record(ckpt_error *e, const char *record)
{
    if (!e || e->code == CKPT_OK || e->record[0] || !record) return;
    snprintf(e->record, sizeof e->record, "%s", record);
    render(e);
}

void ck_error_set_global(ckpt_error *e, const char *module, const char *name)
{
    if (!e) return;
    snprintf(e->global, sizeof e->global, "%s.%s", module, name);
}

void ck_error_append(ckpt_error *e, const char *fmt, ...)
{
    if (!e) return;
    size_t n = strlen(e->detail);
    va_list ap;
    va_start(ap, fmt);
    if (n < sizeof e->detail) vsnprintf(e->detail + n, sizeof e->detail - n, fmt, ap);
    va_end(ap);
    render(e);
}

void ck_error_copy(ckpt_error *dst, const ckpt_error *src)
{
    if (dst && src && dst != src) memcpy(dst, src, sizeof *dst);
}

/* ---- public API ---- */

ckpt_error *ckpt_error_new(void)
{
    ckpt_error *e = malloc(sizeof *e);
    if (e) ck_error_init(e);
    return e;
}

void ckpt_error_free(ckpt_error *err) { free(err); }
void ckpt_error_clear(ckpt_error *err)
{
    if (err) ck_error_init(err);
}
ckpt_status ckpt_error_code(const ckpt_error *err) { return err ? err->code : CKPT_OK; }
const char *ckpt_error_message(const ckpt_error *err) { return err ? err->message : ""; }
const char *ckpt_error_detail(const ckpt_error *err) { return err ? err->detail : ""; }
const char *ckpt_error_record(const ckpt_error *err) { return err && err->record[0] ? err->record : NULL; }
int64_t ckpt_error_offset(const ckpt_error *err) { return err ? err->offset : -1; }
int ckpt_error_opcode(const ckpt_error *err) { return err ? err->opcode : -1; }
const char *ckpt_error_global(const ckpt_error *err)
{
    return err && err->code == CKPT_ERR_BLOCKED && err->global[0] ? err->global : NULL;
}

const char *ckpt_status_name(ckpt_status status)
{
    switch (status) {
    case CKPT_OK: return "CKPT_OK";
    case CKPT_ERR_INVALID_ARG: return "CKPT_ERR_INVALID_ARG";
    case CKPT_ERR_NOMEM: return "CKPT_ERR_NOMEM";
    case CKPT_ERR_IO: return "CKPT_ERR_IO";
    case CKPT_ERR_FORMAT: return "CKPT_ERR_FORMAT";
    case CKPT_ERR_ZIP: return "CKPT_ERR_ZIP";
    case CKPT_ERR_PICKLE: return "CKPT_ERR_PICKLE";
    case CKPT_ERR_BLOCKED: return "CKPT_ERR_BLOCKED";
    case CKPT_ERR_TENSOR: return "CKPT_ERR_TENSOR";
    case CKPT_ERR_LIMIT: return "CKPT_ERR_LIMIT";
    case CKPT_ERR_UNSUPPORTED: return "CKPT_ERR_UNSUPPORTED";
    case CKPT_ERR_NOT_FOUND: return "CKPT_ERR_NOT_FOUND";
    case CKPT_ERR_STATE: return "CKPT_ERR_STATE";
    case CKPT_ERR_TYPE: return "CKPT_ERR_TYPE";
    }
    return "CKPT_ERR_UNKNOWN";
}

unsigned ckpt_version_number(void) { return CKPT_VERSION_NUMBER; }
const char *ckpt_version_string(void) { return CKPT_VERSION_STRING; }
void ckpt_free(void *ptr) { free(ptr); }
