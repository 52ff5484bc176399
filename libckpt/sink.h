/*
 * sink.h: where a save writes its bytes.
 *
 * A file sink writes to a new temporary file in the destination's folder and renames it over the
 * destination only in ck_sink_commit, after everything was written (and fsync'ed on request), so a
 * failed or interrupted save never leaves a truncated file where a good one was. ck_sink_abort removes
 * the temporary file. A memory sink collects the bytes in a malloc'd buffer.
 *
 * Small writes are buffered; large ones go straight from the caller's memory to write(2), so tensor
 * data is never copied in user space. Errors are sticky: after the first failure every call returns it.
 */
#ifndef CK_SINK_H
#define CK_SINK_H

#include <stdbool.h>
#include <stdint.h>
#include "errors.h"

typedef struct ck_sink {
    int fd;                 /* -1 for a memory sink */
    uint8_t *buf;           /* file: pending small writes; memory: the output */
    size_t buf_len, buf_cap;
    uint64_t pos;           /* bytes accepted so far */
    char *tmp_path, *final_path;
    bool fsync;
    ckpt_status status;     /* first failure, sticky */
} ck_sink;

/* Creates `<dir>/.<name>.tmp-<random>` next to `path`. */
ckpt_status ck_sink_open_file(ck_sink *s, const char *path, bool fsync, ckpt_error *err);
void ck_sink_open_memory(ck_sink *s);
ckpt_status ck_sink_write(ck_sink *s, const void *p, size_t n, ckpt_error *err);
/* File: flush, fsync (on request), close, rename into place, fsync the folder (on request). */
ckpt_status ck_sink_commit(ck_sink *s, ckpt_error *err);
/* Memory: hands the buffer over (*out, *len); the sink no longer owns it. */
void ck_sink_take_memory(ck_sink *s, void **out, size_t *len);
/* Releases everything; a file sink that was not committed deletes its temporary file. */
void ck_sink_abort(ck_sink *s);

#endif
