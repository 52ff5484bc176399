/* mapfile.c: map a file read-only (regular files) or read it whole (pipes, devices). */
#define _GNU_SOURCE
#include "mapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

ckpt_status ck_map_file(const char *path, ck_mapped *out, ckpt_error *err)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ck_error_set(err, CKPT_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ck_error_set(err, CKPT_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return ck_error_set(err, CKPT_ERR_IO, "'%s' is a directory", path);
    }
    if (S_ISREG(st.st_mode)) {
        if ((uint64_t)st.st_size > SIZE_MAX) {
            close(fd);
            return ck_error_set(err, CKPT_ERR_IO, "'%s' is too large to map on this system", path);
        }
        out->len = (size_t)st.st_size;
        if (out->len == 0) {
            close(fd);
            out->data = (const uint8_t *)"";
            return CKPT_OK;
        }
        void *p = mmap(NULL, out->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return ck_error_set(err, CKPT_ERR_IO, "cannot map '%s': %s", path, strerror(e));
        }
        out->data = p;
        out->is_mmap = true;
        out->fd = fd; /* kept: copying loads read tensor data with pread, which avoids faulting the mapping */
        return CKPT_OK;
    }
    /* not seekable: read everything */
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    }
    for (;;) {
        if (len == cap) {
            uint8_t *n = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (!n) {
                free(buf);
                close(fd);
                return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory reading '%s'", path);
            }
            buf = n;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r == 0) break;
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(buf);
            close(fd);
            return ck_error_set(err, CKPT_ERR_IO, "cannot read '%s': %s", path, strerror(e));
        }
        len += (size_t)r;
    }
    close(fd);
    if (len == 0) {
        free(buf);
        out->data = (const uint8_t *)"";
        return CKPT_OK;
    }
    out->data = buf;
    out->len = len;
    return CKPT_OK;
}

void ck_unmap_file(ck_mapped *m)
{
    if (m->is_mmap) munmap((void *)m->data, m->len);
    else if (m->len) free((void *)m->data);
    if (m->fd >= 0) close(m->fd);
    memset(m, 0, sizeof *m);
    m->fd = -1;
}
