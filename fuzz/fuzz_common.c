/* fuzz_common.c: see fuzz_common.h. */
#include "fuzz_common.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---- a tiny zip writer (stored members, torch's layout) ---- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} fz_buf;

static void put(fz_buf *b, const void *d, size_t n)
{
    if (n > b->cap - b->len) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (n > ncap - b->len) ncap *= 2;
        uint8_t *np = realloc(b->p, ncap);
        if (!np) abort();
        b->p = np;
        b->cap = ncap;
    }
    if (n) memcpy(b->p + b->len, d, n);
    b->len += n;
}
static void u16(fz_buf *b, unsigned v) { uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)}; put(b, x, 2); }
static void u32(fz_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}

uint8_t *fz_make_zip(const fz_member *m, size_t n, size_t *out_len)
{
    fz_buf b = {0};
    uint32_t *offs = malloc((n ? n : 1) * sizeof *offs), *crcs = malloc((n ? n : 1) * sizeof *crcs);
    if (!offs || !crcs) abort();
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(m[i].name);
        offs[i] = (uint32_t)b.len;
        crcs[i] = (uint32_t)crc32(0, m[i].data, (uInt)m[i].len);
        size_t start = b.len + 30 + nl + 4;
        size_t pad = (64 - start % 64) % 64;
        u32(&b, 0x04034b50); u16(&b, 20); u16(&b, 0); u16(&b, 0); u16(&b, 0); u16(&b, 0x21);
        u32(&b, crcs[i]); u32(&b, (uint32_t)m[i].len); u32(&b, (uint32_t)m[i].len);
        u16(&b, (unsigned)nl); u16(&b, (unsigned)(4 + pad));
        put(&b, m[i].name, nl);
        u16(&b, 0x4246); u16(&b, (unsigned)pad);
        for (size_t k = 0; k < pad; k++) put(&b, "Z", 1);
        put(&b, m[i].data, m[i].len);
    }
    uint32_t cd = (uint32_t)b.len;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(m[i].name);
        u32(&b, 0x02014b50); u16(&b, 20); u16(&b, 20); u16(&b, 0); u16(&b, 0); u16(&b, 0); u16(&b, 0x21);
        u32(&b, crcs[i]); u32(&b, (uint32_t)m[i].len); u32(&b, (uint32_t)m[i].len);
        u16(&b, (unsigned)nl); u16(&b, 0); u16(&b, 0); u16(&b, 0); u16(&b, 0); u32(&b, 0); u32(&b, offs[i]);
        put(&b, m[i].name, nl);
    }
    uint32_t cd_size = (uint32_t)b.len - cd;
    u32(&b, 0x06054b50); u16(&b, 0); u16(&b, 0); u16(&b, (unsigned)n); u16(&b, (unsigned)n);
    u32(&b, cd_size); u32(&b, cd); u16(&b, 0);
    free(offs);
    free(crcs);
    *out_len = b.len;
    return b.p;
}

uint8_t *fz_wrap_checkpoint(const uint8_t *data, size_t len, size_t *out_len)
{
    enum { MAX_RECORDS = 32 };
    fz_member m[MAX_RECORDS + 2];
    size_t n = 0;
    const uint8_t *p = data, *end = data + len;
    /* the pickle, then each separator-delimited storage record */
    for (size_t rec = 0; n < MAX_RECORDS + 1; rec++) {
        const uint8_t *sep = NULL;
        for (const uint8_t *q = p; (size_t)(end - q) >= FZ_SEP_LEN; q++)
            if (memcmp(q, FZ_SEP, FZ_SEP_LEN) == 0) { sep = q; break; }
        const uint8_t *stop = sep ? sep : end;
        if (rec == 0) snprintf(m[n].name, sizeof m[n].name, "archive/data.pkl");
        else snprintf(m[n].name, sizeof m[n].name, "archive/data/%zu", rec - 1);
        m[n].data = p;
        m[n].len = (size_t)(stop - p);
        n++;
        if (!sep) break;
        p = sep + FZ_SEP_LEN;
    }
    snprintf(m[n].name, sizeof m[n].name, "archive/version");
    m[n].data = (const uint8_t *)"3\n";
    m[n].len = 2;
    n++;
    return fz_make_zip(m, n, out_len);
}

const uint8_t *fz_checkpoint_bytes(const uint8_t *data, size_t len, size_t *out_len, uint8_t **owned)
{
    *owned = NULL;
    if (len >= 2 && data[0] == 'P' && data[1] == 'K') {
        *out_len = len;
        return data;
    }
    *owned = fz_wrap_checkpoint(data, len, out_len);
    return *owned;
}

ckpt_load_options *fz_options(unsigned flags)
{
    ckpt_load_options *o = ckpt_load_options_new();
    if (!o) abort();
    ckpt_load_options_set_flags(o, flags);
    ckpt_load_options_set_registry(o, fz_registry());
    /* the defaults, but with a fixed 32 MiB allocation ceiling (fewer slow runs): far below -rss_limit_mb=2048 */
    ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_ALLOC, 32u << 20);
    /* a 5-byte LONG_BINPUT may allocate and clear a memo of the whole allowance: keep runs fast */
    ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_MEMO, 1u << 16);
    return o;
}

const ckpt_registry *fz_registry(void)
{
    static ckpt_registry *reg;
    if (!reg) {
        reg = ckpt_registry_new(0);
        if (!reg) abort();
        static const char *const names[] = {"argparse.Namespace", "numpy.dtype", "__main__.Net",
                                            "collections.defaultdict", "mymodule.make_thing"};
        if (ckpt_registry_add_safe_globals(reg, names, sizeof names / sizeof names[0], NULL) != CKPT_OK) abort();
    }
    return reg;
}

/* ---- exercising a checkpoint ---- */

typedef struct {
    char **keys;
    size_t n, cap;
    size_t visits;
    const ckpt_tensor *nul_keyed[64]; /* tensors whose path holds a NUL (a str key "a\0b") */
    size_t n_nul;
} walk_ctx;

static ckpt_walk_action collect(const char *path, size_t len, const ckpt_value *v, void *user)
{
    walk_ctx *w = user;
    if (ckpt_value_kind(v) == CKPT_KIND_TENSOR && memchr(path, '\0', len) && w->n_nul < 64)
        w->nul_keyed[w->n_nul++] = ckpt_value_tensor(v);
    if (strlen(path) > len || path[len] != '\0') abort(); /* NUL-terminated at len (a key may hold NULs) */
    w->visits++;
    /* touch every accessor of the node */
    ckpt_kind k = ckpt_value_kind(v);
    (void)ckpt_value_type_name(v);
    size_t slen = 0;
    const char *s = ckpt_value_str(v, &slen);
    if (s && s[slen] != '\0') abort();
    if (k == CKPT_KIND_INT) {
        int64_t x;
        (void)ckpt_value_int64(v, &x);
        char *dec = ckpt_value_int_to_string(v);
        if (!dec) abort();
        ckpt_free(dec);
        uint8_t scratch[8];
        const uint8_t *bytes;
        if (ckpt_value_int_bytes(v, scratch, &bytes) == 0) abort();
    }
    for (size_t i = 0; i < ckpt_value_len(v) && i < 4; i++) {
        (void)ckpt_value_item(v, i);
        (void)ckpt_value_dict_key(v, i);
        (void)ckpt_value_dict_value(v, i);
    }
    (void)ckpt_value_attrs(v);
    (void)ckpt_value_global_module(v);
    (void)ckpt_value_object_args(v);
    (void)ckpt_value_object_state(v);
    if (w->n < 512 && len < 4096) {
        if (w->n == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 64;
            w->keys = realloc(w->keys, w->cap * sizeof *w->keys);
            if (!w->keys) abort();
        }
        w->keys[w->n] = strndup(path, len);
        if (!w->keys[w->n]) abort();
        w->n++;
    }
    return CKPT_WALK_CONTINUE;
}

void fz_exercise(const ckpt_checkpoint *ck, uint64_t max_bytes)
{
    ckpt_error *err = ckpt_error_new();
    /* the walk first: it tells which tensors have keys that a C string cannot carry */
    walk_ctx w = {0};
    ckpt_status s = ckpt_walk(ck, NULL, collect, &w, err);
    (void)s;
    size_t nt = ckpt_checkpoint_num_tensors(ck);
    for (size_t i = 0; i < nt; i++) {
        const char *key = NULL;
        const ckpt_tensor *t = ckpt_checkpoint_tensor(ck, i, &key);
        if (!t || !key) abort();
        size_t nd = ckpt_tensor_ndim(t);
        const int64_t *shape = ckpt_tensor_shape(t), *stride = ckpt_tensor_stride(t);
        uint64_t numel = 1;
        for (size_t d = 0; d < nd; d++) numel *= (uint64_t)shape[d];
        (void)stride;
        if (numel != ckpt_tensor_numel(t)) abort();
        (void)ckpt_tensor_is_contiguous(t);
        const ckpt_storage *st = ckpt_tensor_storage(t);
        if (st) {
            (void)ckpt_storage_key(st);
            (void)ckpt_storage_location(st);
            const uint8_t *sd = ckpt_storage_data(st);
            /* every byte the storage claims must be readable (ASan checks the touch) */
            uint64_t sn = ckpt_storage_nbytes(st);
            if (sd && sn) {
                volatile uint8_t x = sd[0];
                x ^= sd[sn - 1];
                (void)x;
            }
        }
        uint64_t nbytes = ckpt_tensor_nbytes(t);
        if (nbytes <= max_bytes) {
            uint64_t h;
            ckpt_status hs = ckpt_tensor_xxh3_64(t, &h, err);
            if (hs == CKPT_OK && ckpt_tensor_data(t)) {
                void *buf = malloc(nbytes ? (size_t)nbytes : 1);
                if (!buf) abort();
                if (ckpt_tensor_copy_contiguous(t, buf, (size_t)nbytes, err) != CKPT_OK) abort();
                free(buf);
            }
        }
        /* the index key finds a value (not always this tensor: "a.b" may also be key "b" of dict "a") */
        bool nul_key = false;
        for (size_t k = 0; k < w.n_nul; k++) nul_key |= w.nul_keyed[k] == t;
        if (!nul_key && nt <= 64 && strlen(key) < 1000 && ckpt_checkpoint_find_tensor(ck, key) == NULL) {
            if (ckpt_checkpoint_find(ck, key) == NULL) {
                fprintf(stderr, "tensor key '%s' not found by ckpt_checkpoint_find\n", key);
                abort();
            }
        }
    }
    for (size_t i = 0; i < w.n; i++) {
        (void)ckpt_checkpoint_find(ck, w.keys[i]);
        free(w.keys[i]);
    }
    free(w.keys);
    for (size_t i = 0; i < ckpt_checkpoint_num_globals(ck); i++)
        if (!ckpt_checkpoint_global(ck, i)) abort();
    (void)ckpt_checkpoint_find(ck, "");
    (void)ckpt_checkpoint_find(ck, "a.b.c.0.1.2");
    ckpt_error_free(err);
}
