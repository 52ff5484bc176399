/* sink.c: output for savers: a temporary file renamed into place, or memory (see sink.h). */
#define _GNU_SOURCE
#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SINK_BUF (256u * 1024u)   /* small writes are gathered up to this size */
#define SINK_DIRECT (64u * 1024u) /* writes at least this large bypass the buffer */

static ckpt_status fail(ck_sink *s, ckpt_error *err, ckpt_status code, const char *fmt, ...) CK_PRINTF(4, 5);
static ckpt_status fail(ck_sink *s, ckpt_error *err, ckpt_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ck_error_vset(err, code, fmt, ap);
    va_end(ap);
    s->status = code;
    return code;
}

/* A name for the temporary file: hidden, next to the destination, unlikely to collide. */
static char *temp_name(const char *path, unsigned attempt)
{
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = slash ? slash + 1 : path;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long r = (unsigned long long)ts.tv_nsec ^ ((unsigned long long)getpid() << 20) ^
                           ((unsigned long long)attempt * 0x9e3779b97f4a7c15ull) ^ (unsigned long long)(uintptr_t)&ts;
    size_t n = dir_len + strlen(base) + 48;
    char *t = malloc(n);
    if (!t) return NULL;
    snprintf(t, n, "%.*s.%s.tmp-%06llx", (int)dir_len, path, base, r & 0xffffffull);
    return t;
}

ckpt_status ck_sink_open_file(ck_sink *s, const char *path, bool do_fsync, ckpt_error *err)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->fsync = do_fsync;
    size_t plen = strlen(path);
    if (plen == 0 || path[plen - 1] == '/') return fail(s, err, CKPT_ERR_INVALID_ARG, "'%s' is not a file name", path);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return fail(s, err, CKPT_ERR_IO, "cannot write '%s': it is a directory", path);
    s->final_path = strdup(path);
    s->buf = malloc(SINK_BUF);
    if (!s->final_path || !s->buf) return fail(s, err, CKPT_ERR_NOMEM, "out of memory");
    s->buf_cap = SINK_BUF;
    for (unsigned attempt = 0; attempt < 100; attempt++) {
        s->tmp_path = temp_name(path, attempt);
        if (!s->tmp_path) return fail(s, err, CKPT_ERR_NOMEM, "out of memory");
        /* 0666 minus the umask, like any new file (and like torch.save) */
        s->fd = open(s->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (s->fd >= 0) return CKPT_OK;
        int e = errno;
        if (e != EEXIST) {
            ckpt_status st2 = fail(s, err, CKPT_ERR_IO, "cannot create a temporary file next to '%s' (%s): %s", path,
                                   s->tmp_path, strerror(e));
            free(s->tmp_path);
            s->tmp_path = NULL;
            return st2;
        }
        free(s->tmp_path);
        s->tmp_path = NULL;
    }
    return fail(s, err, CKPT_ERR_IO, "cannot create a temporary file next to '%s': too many name collisions", path);
}

void ck_sink_open_memory(ck_sink *s)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

static ckpt_status write_all(ck_sink *s, const uint8_t *p, size_t n, ckpt_error *err)
{
    while (n) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : n;
        ssize_t w = write(s->fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            return fail(s, err, CKPT_ERR_IO, "writing '%s' failed after %llu bytes: %s", s->final_path,
                        (unsigned long long)s->pos, strerror(e));
        }
        if (w == 0) return fail(s, err, CKPT_ERR_IO, "writing '%s' made no progress", s->final_path);
        p += w;
        n -= (size_t)w;
    }
    return CKPT_OK;
}

static ckpt_status flush(ck_sink *s, ckpt_error *err)
{
    if (s->fd < 0 || !s->buf_len) return CKPT_OK;
    ckpt_status st = write_all(s, s->buf, s->buf_len, err);
    s->buf_len = 0;
    return st;
}

ckpt_status ck_sink_write(ck_sink *s, const void *p, size_t n, ckpt_error *err)
{
    if (s->status) return s->status;
    if (!n) return CKPT_OK;
    uint64_t npos;
    if (ck_add_overflow_u64(s->pos, n, &npos)) return fail(s, err, CKPT_ERR_LIMIT, "output larger than 2^64 bytes");
    if (s->fd < 0) { /* memory */
        if (n > s->buf_cap - s->buf_len) {
            size_t need = s->buf_len + n, ncap = s->buf_cap ? s->buf_cap : 4096;
            if (need < s->buf_len) return fail(s, err, CKPT_ERR_NOMEM, "output too large for memory");
            while (ncap < need) ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
            uint8_t *nb = realloc(s->buf, ncap);
            if (!nb) return fail(s, err, CKPT_ERR_NOMEM, "out of memory (%zu bytes of output)", need);
            s->buf = nb;
            s->buf_cap = ncap;
        }
        memcpy(s->buf + s->buf_len, p, n);
        s->buf_len += n;
        s->pos = npos;
        return CKPT_OK;
    }
    ckpt_status st;
    if (n >= SINK_DIRECT) {
        if ((st = flush(s, err))) return st;
        if ((st = write_all(s, p, n, err))) return st;
    } else {
        if (n > s->buf_cap - s->buf_len && (st = flush(s, err))) return st;
        memcpy(s->buf + s->buf_len, p, n);
        s->buf_len += n;
    }
    s->pos = npos;
    return CKPT_OK;
}

static void fsync_folder(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path) + 1) : strdup(".");
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd); /* best effort: some file systems refuse fsync on folders */
        close(fd);
    }
    free(dir);
}

ckpt_status ck_sink_commit(ck_sink *s, ckpt_error *err)
{
    if (s->status) return s->status;
    if (s->fd < 0) return CKPT_OK;
    ckpt_status st = flush(s, err);
    if (st) return st;
    if (s->fsync && fsync(s->fd) != 0) {
        int e = errno;
        return fail(s, err, CKPT_ERR_IO, "fsync of '%s' failed: %s", s->tmp_path, strerror(e));
    }
    int fd = s->fd;
    s->fd = -1;
    if (close(fd) != 0) {
        int e = errno;
        return fail(s, err, CKPT_ERR_IO, "closing '%s' failed: %s", s->tmp_path, strerror(e));
    }
    if (rename(s->tmp_path, s->final_path) != 0) {
        int e = errno;
        return fail(s, err, CKPT_ERR_IO, "cannot rename '%s' to '%s': %s", s->tmp_path, s->final_path, strerror(e));
    }
    free(s->tmp_path);
    s->tmp_path = NULL;
    if (s->fsync) fsync_folder(s->final_path);
    return CKPT_OK;
}

void ck_sink_take_memory(ck_sink *s, void **out, size_t *len)
{
    *out = s->buf ? s->buf : malloc(1);
    *len = s->buf_len;
    s->buf = NULL;
    s->buf_len = s->buf_cap = 0;
}

void ck_sink_abort(ck_sink *s)
{
    if (s->fd >= 0) close(s->fd);
    if (s->tmp_path) unlink(s->tmp_path);
    free(s->tmp_path);
    free(s->final_path);
    free(s->buf);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}
