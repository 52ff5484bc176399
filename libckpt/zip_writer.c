/* zip_writer.c: torch's zip layout (see zip_writer.h), streamed to a sink. */
#include "zip_writer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytebuf.h"
#include "util.h"
#include "zip.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_DESCRIPTOR 0x08074b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u
#define FLAG_DESCRIPTOR 0x0008u
#define FLAG_UTF8 0x0800u
#define MAX32 0xffffffffu
#define MAX16 0xffffu
/* members this large (in one ck_zipw_data call) get their CRC computed on the worker thread */
#define CRC_ASYNC_MIN (1u << 20)

/* ---- CRC worker: one job at a time, the writer waits for it before the next call ---- */

struct ck_crc_worker {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const uint8_t *p;
    size_t n;
    uint32_t crc;
    int state; /* 0 idle, 1 job posted, 2 job done, 3 quit */
};

static void *crc_main(void *arg)
{
    ck_crc_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->state != 1 && w->state != 3) pthread_cond_wait(&w->cv, &w->mu);
        if (w->state == 3) break;
        const uint8_t *p = w->p;
        size_t n = w->n;
        uint32_t crc = w->crc;
        pthread_mutex_unlock(&w->mu);
        crc = ck_crc32(crc, p, n);
        pthread_mutex_lock(&w->mu);
        w->crc = crc;
        w->state = 2;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static ck_crc_worker *worker_start(void)
{
    ck_crc_worker *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, crc_main, w) != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
        return NULL;
    }
    return w;
}

static void worker_post(ck_crc_worker *w, uint32_t crc, const uint8_t *p, size_t n)
{
    pthread_mutex_lock(&w->mu);
    w->p = p;
    w->n = n;
    w->crc = crc;
    w->state = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static uint32_t worker_wait(ck_crc_worker *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->state != 2) pthread_cond_wait(&w->cv, &w->mu);
    w->state = 0;
    uint32_t crc = w->crc;
    pthread_mutex_unlock(&w->mu);
    return crc;
}

static void worker_stop(ck_crc_worker *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->state = 3;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

/* ---- members ---- */

ckpt_status ck_zipw_init(ck_zipw *z, ck_sink *sink, const char *prefix, ckpt_error *err)
{
    memset(z, 0, sizeof *z);
    z->sink = sink;
    z->prefix = strdup(prefix);
    if (!z->prefix) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    return CKPT_OK;
}

void ck_zipw_release(ck_zipw *z)
{
    worker_stop(z->worker);
    ck_bb_free(&z->names);
    free(z->entries);
    free(z->prefix);
    memset(z, 0, sizeof *z);
}

/* The local-header extra area: zip64 fields as miniz writes them, then torch's FB padding. */
static void local_extra(ck_bytebuf *b, uint64_t offset, size_t name_len, uint64_t size)
{
    bool big_size = size >= MAX32, big_off = offset >= MAX32;
    /* detail::getPadding in caffe2/serialize/inline_container.cc */
    uint64_t start = offset + 30 + name_len + 4;
    if (big_size || big_off) {
        start += 4;
        if (big_size) start += 16;
        if (big_off) start += 8;
    }
    unsigned pad = (unsigned)((CK_ZIP_ALIGNMENT - start % CK_ZIP_ALIGNMENT) % CK_ZIP_ALIGNMENT);
    if (big_size || big_off) {
        ck_bb_le16(b, 0x0001);
        ck_bb_le16(b, (uint16_t)((big_size ? 16 : 0) + (big_off ? 8 : 0)));
        if (big_size) {
            ck_bb_le64(b, size);
            ck_bb_le64(b, 0); /* miniz writes the compressed size before it is known: 0 */
        }
        if (big_off) ck_bb_le64(b, offset);
    }
    ck_bb_u8(b, 'F');
    ck_bb_u8(b, 'B');
    ck_bb_le16(b, (uint16_t)pad);
    for (unsigned i = 0; i < pad; i++) ck_bb_u8(b, 'Z');
}

static ckpt_status begin(ck_zipw *z, const char *name, uint64_t size, bool streaming, ckpt_error *err);

ckpt_status ck_zipw_begin(ck_zipw *z, const char *name, uint64_t size, ckpt_error *err)
{
    return begin(z, name, size, false, err);
}

ckpt_status ck_zipw_begin_stream(ck_zipw *z, const char *name, ckpt_error *err)
{
    if (z->sink->pos >= MAX32)
        return ck_error_set(err, CKPT_ERR_STATE, "zip writer: a streamed member must start below 4 GiB");
    /* laid out as a non-empty member under 4 GiB: no zip64 extra, flags 0x0808, a 16-byte descriptor */
    return begin(z, name, 1, true, err);
}

static ckpt_status begin(ck_zipw *z, const char *name, uint64_t size, bool streaming, ckpt_error *err)
{
    if (z->open) return ck_error_set(err, CKPT_ERR_STATE, "zip writer: member still open");
    if (z->count == z->cap) {
        size_t ncap = z->cap ? z->cap * 2 : 16;
        ck_zipw_entry *n = realloc(z->entries, ncap * sizeof *n);
        if (!n) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
        z->entries = n;
        z->cap = ncap;
    }
    size_t plen = strlen(z->prefix), nlen = strlen(name);
    if (plen + 1 + nlen > MAX16) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "zip member name too long");
    size_t flen = plen + 1 + nlen;
    if (z->names.len > UINT32_MAX - flen) return ck_error_set(err, CKPT_ERR_LIMIT, "too many zip members");
    uint32_t name_off = (uint32_t)z->names.len;
    ck_bb_put(&z->names, z->prefix, plen);
    ck_bb_u8(&z->names, '/');
    ck_bb_put(&z->names, name, nlen);
    if (z->names.failed) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    const char *full = (const char *)z->names.p + name_off;
    ck_zipw_entry *e = &z->entries[z->count];
    e->name_off = name_off;
    e->name_len = (uint16_t)flen;
    e->offset = z->sink->pos;
    e->size = size;
    e->crc = 0;
    e->flags = (uint16_t)(FLAG_UTF8 | (size ? FLAG_DESCRIPTOR : 0));
    z->count++;

    ck_bytebuf extra = {0};
    local_extra(&extra, e->offset, flen, size);
    ck_bytebuf h = {0};
    ck_bb_le32(&h, SIG_LOCAL);
    ck_bb_le16(&h, 0);        /* version needed (miniz: 0 for stored) */
    ck_bb_le16(&h, e->flags);
    ck_bb_le16(&h, 0);        /* stored */
    ck_bb_le16(&h, 0);        /* DOS time */
    ck_bb_le16(&h, 0);        /* DOS date */
    ck_bb_le32(&h, 0);        /* CRC: in the data descriptor */
    ck_bb_le32(&h, 0);        /* sizes: in the data descriptor */
    ck_bb_le32(&h, 0);
    ck_bb_le16(&h, (uint16_t)flen);
    ck_bb_le16(&h, (uint16_t)extra.len);
    ck_bb_put(&h, full, flen);
    ck_bb_put(&h, extra.p, extra.len);
    ckpt_status s = (h.failed || extra.failed) ? ck_error_set(err, CKPT_ERR_NOMEM, "out of memory")
                                                : ck_sink_write(z->sink, h.p, h.len, err);
    ck_bb_free(&h);
    ck_bb_free(&extra);
    if (s) return s;
    z->open = true;
    z->streaming = streaming;
    z->declared = streaming ? MAX32 - 1 : size;
    z->written = 0;
    z->crc = 0;
    return CKPT_OK;
}

ckpt_status ck_zipw_data(ck_zipw *z, const void *p, size_t n, ckpt_error *err)
{
    if (!z->open) return ck_error_set(err, CKPT_ERR_STATE, "zip writer: no member open");
    if (n > z->declared - z->written) {
        if (z->streaming)
            return ck_error_set(err, CKPT_ERR_LIMIT, "the pickle exceeds 4 GiB, more than libckpt writes in one record");
        return ck_error_set(err, CKPT_ERR_STATE, "zip writer: more data than declared for member %zu", z->count - 1);
    }
    if (!n) return CKPT_OK;
    if (n >= CRC_ASYNC_MIN && z->sink->fd >= 0 && !z->no_worker) {
        if (!z->worker && !(z->worker = worker_start())) z->no_worker = true;
    }
    ckpt_status s;
    if (n >= CRC_ASYNC_MIN && z->worker && z->sink->fd >= 0) {
        /* the CRC reads the same bytes on another core while write(2) copies them */
        worker_post(z->worker, z->crc, p, n);
        s = ck_sink_write(z->sink, p, n, err);
        z->crc = worker_wait(z->worker);
    } else {
        z->crc = ck_crc32(z->crc, p, n);
        s = ck_sink_write(z->sink, p, n, err);
    }
    if (s) return s;
    z->written += n;
    return CKPT_OK;
}

ckpt_status ck_zipw_end(ck_zipw *z, ckpt_error *err)
{
    if (!z->open) return ck_error_set(err, CKPT_ERR_STATE, "zip writer: no member open");
    ck_zipw_entry *e = &z->entries[z->count - 1];
    if (z->streaming) {
        if (!z->written) return ck_error_set(err, CKPT_ERR_STATE, "zip writer: empty streamed member");
        e->size = z->declared = z->written;
        z->streaming = false;
    }
    if (z->written != z->declared)
        return ck_error_set(err, CKPT_ERR_STATE, "zip writer: member %zu got %llu of %llu bytes", z->count - 1,
                            (unsigned long long)z->written, (unsigned long long)z->declared);
    z->open = false;
    e->crc = z->crc;
    if (!e->size) return CKPT_OK; /* miniz writes no descriptor for empty members */
    uint8_t d[24];
    size_t dn;
    ck_put_le32(d, SIG_DESCRIPTOR);
    ck_put_le32(d + 4, e->crc);
    if (e->size >= MAX32 || e->offset >= MAX32) {
        ck_put_le64(d + 8, e->size);
        ck_put_le64(d + 16, e->size);
        dn = 24;
    } else {
        ck_put_le32(d + 8, (uint32_t)e->size);
        ck_put_le32(d + 12, (uint32_t)e->size);
        dn = 16;
    }
    z->combined_crc = ck_hash_combine(z->combined_crc, e->crc);
    return ck_sink_write(z->sink, d, dn, err);
}

ckpt_status ck_zipw_record(ck_zipw *z, const char *name, const void *p, size_t n, ckpt_error *err)
{
    ckpt_status s = ck_zipw_begin(z, name, n, err);
    if (!s) s = ck_zipw_data(z, p, n, err);
    if (!s) s = ck_zipw_end(z, err);
    return s;
}

ckpt_status ck_zipw_finish(ck_zipw *z, ckpt_error *err)
{
    if (z->open) return ck_error_set(err, CKPT_ERR_STATE, "zip writer: member still open");
    uint64_t cd_off = z->sink->pos, cd_size = 0;
    ck_bytebuf b = {0};
    ckpt_status s = CKPT_OK;
    for (size_t i = 0; i < z->count && !s; i++) {
        const ck_zipw_entry *e = &z->entries[i];
        bool big_size = e->size >= MAX32, big_off = e->offset >= MAX32;
        size_t nlen;
        const char *name = ck_zipw_name(z, i, &nlen);
        unsigned xlen = (big_size || big_off) ? 4u + (big_size ? 16u : 0u) + (big_off ? 8u : 0u) : 0u;
        ck_bb_le32(&b, SIG_CENTRAL);
        ck_bb_le16(&b, 0); /* made by */
        ck_bb_le16(&b, 0); /* version needed */
        ck_bb_le16(&b, e->flags);
        ck_bb_le16(&b, 0);
        ck_bb_le16(&b, 0);
        ck_bb_le16(&b, 0);
        ck_bb_le32(&b, e->crc);
        ck_bb_le32(&b, big_size ? MAX32 : (uint32_t)e->size);
        ck_bb_le32(&b, big_size ? MAX32 : (uint32_t)e->size);
        ck_bb_le16(&b, (uint16_t)nlen);
        ck_bb_le16(&b, (uint16_t)xlen);
        ck_bb_le16(&b, 0); /* comment */
        ck_bb_le16(&b, 0); /* disk */
        ck_bb_le16(&b, 0); /* internal attributes */
        ck_bb_le32(&b, 0); /* external attributes */
        ck_bb_le32(&b, big_off ? MAX32 : (uint32_t)e->offset);
        ck_bb_put(&b, name, nlen);
        if (xlen) {
            ck_bb_le16(&b, 0x0001);
            ck_bb_le16(&b, (uint16_t)(xlen - 4));
            if (big_size) {
                ck_bb_le64(&b, e->size);
                ck_bb_le64(&b, e->size);
            }
            if (big_off) ck_bb_le64(&b, e->offset);
        }
        /* streamed in pieces: a directory of 100,000 entries is never held whole */
        if (b.len >= (64u << 10) || i + 1 == z->count) {
            if (b.failed) s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory building the zip central directory");
            else s = ck_sink_write(z->sink, b.p, b.len, err);
            cd_size += b.len;
            b.len = 0;
        }
    }
    if (s) {
        ck_bb_free(&b);
        return s;
    }
    uint64_t eocd64_off = cd_off + cd_size;
    ck_bb_le32(&b, SIG_EOCD64);
    ck_bb_le64(&b, 44);
    ck_bb_le16(&b, 0x031e); /* made by (miniz) */
    ck_bb_le16(&b, 0x002d); /* needed: 4.5, zip64 */
    ck_bb_le32(&b, 0);
    ck_bb_le32(&b, 0);
    ck_bb_le64(&b, z->count);
    ck_bb_le64(&b, z->count);
    ck_bb_le64(&b, cd_size);
    ck_bb_le64(&b, cd_off);
    ck_bb_le32(&b, SIG_LOCATOR64);
    ck_bb_le32(&b, 0);
    ck_bb_le64(&b, eocd64_off);
    ck_bb_le32(&b, 1);
    ck_bb_le32(&b, SIG_EOCD);
    ck_bb_le16(&b, 0);
    ck_bb_le16(&b, 0);
    ck_bb_le16(&b, (uint16_t)CK_MIN((uint64_t)MAX16, (uint64_t)z->count));
    ck_bb_le16(&b, (uint16_t)CK_MIN((uint64_t)MAX16, (uint64_t)z->count));
    ck_bb_le32(&b, (uint32_t)CK_MIN((uint64_t)MAX32, cd_size));
    ck_bb_le32(&b, (uint32_t)CK_MIN((uint64_t)MAX32, cd_off));
    ck_bb_le16(&b, 0);
    s = b.failed ? ck_error_set(err, CKPT_ERR_NOMEM, "out of memory building the zip central directory")
                 : ck_sink_write(z->sink, b.p, b.len, err);
    ck_bb_free(&b);
    return s;
}
