/*
 * tar.c: the tar format of torch.save in PyTorch 0.1-0.3 (docs/pytorch-format-notes.md §3.6).
 *
 * Writer: torch 0.2/0.3 torch/serialization.py _save (tarfile PAX_FORMAT; members sys_info, pickle,
 * tensors, storages). Reader followed here: torch 1.13 torch/serialization.py _legacy_load.legacy_load
 * (lines 857-930), which reads three members:
 *   storages: pickle num_storages; per storage a pickle (key, location, storage_type) then an int64
 *             element count and count x itemsize bytes of little-endian data; then a pickle
 *             storage_views = [(view_key, root_key, offset, numel)], each a slice of a root storage
 *   tensors:  pickle num_tensors; per tensor a pickle (key, storage_key, tensor_type) then int32 ndim,
 *             4 padding bytes, ndim int64 sizes, ndim int64 strides, int64 storage offset (little-endian)
 *   pickle:   the object; a persistent id is the decimal key of a tensor or storage, or a tuple
 *             (cls, source_file, source) naming a module class of a whole-model pickle.
 * The tar container is read strictly: ustar headers with valid checksums, regular members and pax
 * headers only, each known member once, nothing but zero blocks after the end-of-archive marker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "formats.h"
#include "tensors.h"

#define TAR_BLOCK 512u

const char *const ck_tar_member_names[CK_TAR_COUNT] = {"sys_info", "pickle", "tensors", "storages"};

static ckpt_status tar_fail(ckpt_error *err, uint64_t off, const char *fmt, ...) CK_PRINTF(3, 4);
static ckpt_status tar_fail(ckpt_error *err, uint64_t off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ck_error_vset(err, CKPT_ERR_FORMAT, fmt, ap);
    va_end(ap);
    ck_error_at_offset(err, (int64_t)off, -1);
    return CKPT_ERR_FORMAT;
}

/* A numeric header field: octal digits (space/NUL padded), or GNU base-256 (high bit of byte 0). */
static bool tar_number(const uint8_t *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (p[0] & 0x80) {
        if (p[0] != 0x80) return false; /* negative or over 2^63: never a size */
        for (size_t i = 1; i < n; i++) {
            if (v >> 55) return false;
            v = v << 8 | p[i];
        }
        *out = v;
        return true;
    }
    size_t i = 0;
    while (i < n && p[i] == ' ') i++;
    size_t digits = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '7'; i++, digits++) {
        if (v >> 60) return false;
        v = v * 8 + (uint64_t)(p[i] - '0');
    }
    for (; i < n; i++)
        if (p[i] != ' ' && p[i] != '\0') return false;
    *out = v;
    return true; /* an empty field is 0, as tarfile's nti reads it */
}

static bool zero_block(const uint8_t *p)
{
    for (size_t i = 0; i < TAR_BLOCK; i++)
        if (p[i]) return false;
    return true;
}

/* Python's tarfile accepts the unsigned and the signed checksum; so does this. */
static bool checksum_ok(const uint8_t *h)
{
    uint64_t want;
    if (!tar_number(h + 148, 8, &want)) return false;
    uint64_t us = 0;
    int64_t ss = 0;
    for (size_t i = 0; i < TAR_BLOCK; i++) {
        uint8_t b = (i >= 148 && i < 156) ? ' ' : h[i];
        us += b;
        ss += (int8_t)b;
    }
    return want == us || (int64_t)want == ss;
}

/* Applies the path and size records of a pax extended header ("LEN key=value\n"...). */
static ckpt_status pax_records(const uint8_t *p, uint64_t n, uint64_t off, char *path, size_t path_cap, bool *has_path,
                               uint64_t *size, bool *has_size, ckpt_error *err)
{
    uint64_t i = 0;
    while (i < n) {
        uint64_t len = 0, j = i;
        while (j < n && p[j] >= '0' && p[j] <= '9' && len < 1000000) len = len * 10 + (uint64_t)(p[j++] - '0');
        if (j == i || j >= n || p[j] != ' ' || len <= j - i + 1 || !ck_fits(n, i, len) || p[i + len - 1] != '\n')
            return tar_fail(err, off + i, "malformed pax extended header record");
        const uint8_t *kv = p + j + 1, *end = p + i + len - 1;
        const uint8_t *eq = memchr(kv, '=', (size_t)(end - kv));
        if (!eq) return tar_fail(err, off + i, "pax extended header record without '='");
        size_t klen = (size_t)(eq - kv), vlen = (size_t)(end - eq - 1);
        if (klen == 4 && memcmp(kv, "path", 4) == 0) {
            if (vlen >= path_cap || memchr(eq + 1, '\0', vlen)) return tar_fail(err, off + i, "pax path too long");
            memcpy(path, eq + 1, vlen);
            path[vlen] = '\0';
            *has_path = true;
        } else if (klen == 4 && memcmp(kv, "size", 4) == 0) {
            uint64_t v = 0;
            if (vlen == 0 || vlen > 19) return tar_fail(err, off + i, "invalid pax size");
            for (size_t k = 0; k < vlen; k++) {
                uint8_t ch = eq[1 + k];
                if (ch < '0' || ch > '9') return tar_fail(err, off + i, "invalid pax size");
                v = v * 10 + (uint64_t)(ch - '0');
            }
            *size = v;
            *has_size = true;
        }
        i += len;
    }
    return CKPT_OK;
}

ckpt_status ck_tar_members(const uint8_t *data, size_t len, uint64_t max_members, ck_tar_member m[CK_TAR_COUNT],
                               ckpt_error *err)
{
    uint64_t pos = 0, count = 0;
    char pax_path[256];
    bool has_path = false, has_size = false;
    uint64_t pax_size = 0;
    for (;;) {
        if (!ck_fits(len, pos, TAR_BLOCK)) return tar_fail(err, pos, "truncated tar archive: no end-of-archive marker");
        const uint8_t *h = data + pos;
        if (zero_block(h)) break;
        if (++count > max_members)
            return tar_fail(err, pos, "tar archive has more members than CKPT_LIMIT_MAX_MEMBERS");
        if (!checksum_ok(h)) return tar_fail(err, pos, "tar header checksum mismatch");
        if (memcmp(h + 257, "ustar", 5) != 0) return tar_fail(err, pos, "tar header is not a ustar header");
        uint64_t size;
        if (!tar_number(h + 124, 12, &size)) return tar_fail(err, pos, "invalid size in a tar header");
        char type = (char)h[156];
        uint64_t body = pos + TAR_BLOCK;
        if (type == 'x' || type == 'g') {
            if (!ck_fits(len, body, size)) return tar_fail(err, pos, "truncated pax header");
            if (type == 'x') {
                ckpt_status s = pax_records(data + body, size, body, pax_path, sizeof pax_path, &has_path, &pax_size,
                                            &has_size, err);
                if (s) return s;
            }
        } else if (type == '0' || type == '\0') {
            char name[256];
            if (has_path) {
                snprintf(name, sizeof name, "%s", pax_path);
            } else {
                size_t nl = strnlen((const char *)h, 100), pl = strnlen((const char *)h + 345, 155);
                if (pl) snprintf(name, sizeof name, "%.*s/%.*s", (int)pl, (const char *)h + 345, (int)nl, (const char *)h);
                else snprintf(name, sizeof name, "%.*s", (int)nl, (const char *)h);
            }
            if (has_size) size = pax_size;
            has_path = has_size = false;
            int which = -1;
            for (int k = 0; k < CK_TAR_COUNT; k++)
                if (strcmp(name, ck_tar_member_names[k]) == 0) which = k;
            if (which < 0)
                return tar_fail(err, pos, "tar member '%s' is not part of a PyTorch checkpoint (sys_info, pickle, tensors, "
                                "storages)", name);
            if (m[which].present) return tar_fail(err, pos, "tar member '%s' appears twice", name);
            if (!ck_fits(len, body, size)) return tar_fail(err, pos, "tar member '%s' runs past the end of the file", name);
            m[which] = (ck_tar_member){data + body, size, true};
        } else {
            char t[2] = {type, 0};
            return tar_fail(err, pos, "tar member of type '%s' (only regular files belong to a PyTorch checkpoint)", t);
        }
        uint64_t padded = size + (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
        if (padded < size || !ck_fits(len, body, padded)) return tar_fail(err, pos, "truncated tar member");
        pos = body + padded;
    }
    for (uint64_t i = pos; i < len; i++)
        if (data[i]) return tar_fail(err, i, "data after the tar end-of-archive marker (hidden data is refused)");
    for (int k = CK_TAR_PICKLE; k < CK_TAR_COUNT; k++)
        if (!m[k].present)
            return tar_fail(err, 0, "the tar archive has no '%s' member: not a PyTorch 0.1-0.3 checkpoint", ck_tar_member_names[k]);
    return CKPT_OK;
}

/* ---- members ---- */

typedef struct tar_ctx {
    ckpt_checkpoint *c;
    ck_unpickler *u;
    ck_strmap tensors; /* decimal key -> TENSOR node */
    bool little;       /* sys_info: counts in little-endian order */
    unsigned how;      /* CK_ATTACH_* for storage bytes */
} tar_ctx;

static ckpt_status run(tar_ctx *x, const ck_tar_member *m, const char *name, size_t *pos, ckpt_value **out, ckpt_error *err)
{
    x->u->record = name;
    ckpt_status s = ck_unpickle(x->u, m->data, (size_t)m->size, pos, out, err);
    if (s) ck_error_in_record(err, name);
    return s;
}

static ckpt_status member_fail(ckpt_error *err, ckpt_status code, const char *member, size_t pos, const char *msg)
{
    ck_error_set(err, code, "%s", msg);
    ck_error_at_offset(err, (int64_t)pos, -1);
    ck_error_in_record(err, member);
    return code;
}

/* An int key as the decimal text torch's int(saved_id) would match. */
static bool key_text(const ckpt_value *v, char buf[24], size_t *n)
{
    if (v->kind != CKPT_KIND_INT || !ck_is_small_int(v)) return false;
    *n = (size_t)snprintf(buf, 24, "%lld", (long long)v->u.i);
    return true;
}

static ckpt_status read_count(bool little, const ck_tar_member *m, size_t pos, uint64_t *count, ckpt_error *err)
{
    if (!ck_fits(m->size, pos, 8)) return member_fail(err, CKPT_ERR_TENSOR, "storages", pos, "truncated storage element count");
    *count = little ? ck_le64(m->data + pos) : ck_be64(m->data + pos); /* torch 0.3 wrote the count in host order */
    return CKPT_OK;
}

/* The (key, location, storage class) header of a stored storage: its class's registry entry, or NULL. */
static const ck_reg_entry *storage_header_type(const ckpt_value *v)
{
    ckpt_value **it = v->kind == CKPT_KIND_TUPLE && v->u.seq.len == 3 ? v->u.seq.items : NULL;
    if (!it || it[2]->kind != CKPT_KIND_GLOBAL || !it[2]->u.global.entry ||
        it[2]->u.global.entry->kind != CK_G_STORAGE_TYPE)
        return NULL;
    return it[2]->u.global.entry;
}

/* The number of tensor metadata bytes after a tensor header at pos: ndim (4 + 4 bytes), sizes, strides, offset. */
static ckpt_status tensor_meta_size(const ck_tar_member *m, size_t pos, uint32_t max_ndim, int32_t *ndim_out,
                                    uint64_t *size, ckpt_error *err)
{
    if (!ck_fits(m->size, pos, 8)) return member_fail(err, CKPT_ERR_TENSOR, "tensors", pos, "truncated tensor metadata");
    int32_t ndim = (int32_t)ck_le32(m->data + pos); /* then 4 bytes torch skips (ndim was once 8 bytes) */
    if (ndim < 0) return member_fail(err, CKPT_ERR_TENSOR, "tensors", pos, "negative number of dimensions");
    if ((uint32_t)ndim > max_ndim)
        return member_fail(err, CKPT_ERR_LIMIT, "tensors", pos, "tensor has more dimensions than CKPT_LIMIT_MAX_NDIM");
    uint64_t need = 8 + ((uint64_t)ndim * 2 + 1) * 8;
    if (!ck_fits(m->size, pos, need)) return member_fail(err, CKPT_ERR_TENSOR, "tensors", pos, "truncated tensor metadata");
    *ndim_out = ndim;
    *size = need;
    return CKPT_OK;
}

bool ck_tar_little_endian(const ckpt_value *sys_info)
{
    const ckpt_value *le = sys_info->kind == CKPT_KIND_DICT ? ck_dict_get_str(sys_info, "little_endian", 13) : NULL;
    return le && le->kind == CKPT_KIND_BOOL ? le->u.b : true;
}

/* A pickle's int count of storages or tensors. */
static ckpt_status count_of(const ckpt_value *v, const char *member, size_t pos, int64_t *n, ckpt_error *err)
{
    if (v->kind != CKPT_KIND_INT || !ck_is_small_int(v) || v->u.i < 0)
        return member_fail(err, CKPT_ERR_FORMAT, member, pos,
                           member[0] == 's' ? "the number of storages is not a non-negative int"
                                            : "the number of tensors is not a non-negative int");
    *n = v->u.i;
    return CKPT_OK;
}

ckpt_status ck_tar_walk_pickles(const ck_tar_member *m, int which, bool little, ck_tar_pickle_fn run_one, void *ctx,
                                ckpt_error *err)
{
    const char *name = ck_tar_member_names[which];
    size_t pos = 0, n = (size_t)m->size;
    const ckpt_value *v;
    ckpt_status s;
    if (which == CK_TAR_SYS_INFO || which == CK_TAR_PICKLE) {
        if ((s = run_one(ctx, m->data, n, &pos, &v))) return s;
        if (pos != n)
            return member_fail(err, CKPT_ERR_PICKLE, name, pos, "bytes after the pickle's STOP opcode (hidden data is refused)");
        return CKPT_OK;
    }
    int64_t count;
    if ((s = run_one(ctx, m->data, n, &pos, &v)) || (s = count_of(v, name, pos, &count, err))) return s;
    /* every entry starts with a pickle of at least 2 bytes, so the loop is bounded by the member size */
    for (int64_t i = 0; i < count; i++) {
        if ((s = run_one(ctx, m->data, n, &pos, &v))) return s;
        if (which == CK_TAR_STORAGES) {
            const ck_reg_entry *ty = storage_header_type(v);
            if (!ty)
                return member_fail(err, CKPT_ERR_FORMAT, name, pos,
                                   "a storage header is not (key, location, storage class): the size of the data after "
                                   "it, and so where the next pickle starts, is unknown");
            uint64_t numel, nbytes;
            if ((s = read_count(little, m, pos, &numel, err))) return s;
            pos += 8;
            if (ck_mul_overflow_u64(numel, ckpt_dtype_itemsize((ckpt_dtype)ty->dtype), &nbytes) ||
                !ck_fits(m->size, pos, nbytes))
                return member_fail(err, CKPT_ERR_TENSOR, name, pos, "truncated: a storage's data runs past the member");
            pos += (size_t)nbytes;
        } else {
            int32_t ndim;
            uint64_t meta;
            if ((s = tensor_meta_size(m, pos, UINT32_MAX, &ndim, &meta, err))) return s;
            pos += (size_t)meta;
        }
    }
    if (which == CK_TAR_STORAGES && (s = run_one(ctx, m->data, n, &pos, &v))) return s; /* storage_views */
    if (pos != n)
        return member_fail(err, CKPT_ERR_FORMAT, name, pos, "bytes follow the last entry (hidden data is refused)");
    return CKPT_OK;
}

static ckpt_status read_storages(tar_ctx *x, const ck_tar_member *m, ckpt_error *err)
{
    ckpt_checkpoint *c = x->c;
    size_t pos = 0;
    ckpt_value *v;
    ckpt_status s = run(x, m, "storages", &pos, &v, err);
    if (s) return s;
    int64_t n;
    if ((s = count_of(v, "storages", pos, &n, err))) return s;
    bool skip = c->flags & CKPT_LOAD_SKIP_DATA;
    for (int64_t i = 0; i < n; i++) {
        if ((s = run(x, m, "storages", &pos, &v, err))) return s;
        char key[24];
        size_t klen;
        const ck_reg_entry *ty = storage_header_type(v);
        ckpt_value **it = ty ? v->u.seq.items : NULL;
        if (!ty || !key_text(it[0], key, &klen) || !ck_text_of(it[1]))
            return member_fail(err, CKPT_ERR_FORMAT, "storages", pos,
                               "a storage header must be (key: int, location: str, storage class)");
        uint64_t count;
        if ((s = read_count(x->little, m, pos, &count, err))) return s;
        if (count > INT64_MAX) return member_fail(err, CKPT_ERR_TENSOR, "storages", pos, "storage element count overflows");
        pos += 8;
        ckpt_value *sv;
        if ((s = ck_checkpoint_storage(c, key, klen, (ckpt_dtype)ty->dtype, ty->flags & CK_RF_UNTYPED, it[1]->u.s.ptr,
                                       it[1]->u.s.len, count, &sv, err)))
            return s;
        ckpt_storage *st = sv->u.storage;
        if (st->flags & CK_SF_RESOLVED) return member_fail(err, CKPT_ERR_TENSOR, "storages", pos, "a storage key appears twice");
        if (!ck_fits(m->size, pos, st->nbytes))
            return member_fail(err, CKPT_ERR_TENSOR, "storages", pos, "truncated: a storage's data runs past the member");
        if (skip) st->flags |= CK_SF_RESOLVED;
        else if ((s = ck_storage_attach(c, st, m->data + pos, x->how, false, err))) return s;
        pos += (size_t)st->nbytes;
    }
    ckpt_value *views;
    if ((s = run(x, m, "storages", &pos, &views, err))) return s;
    if (views->kind != CKPT_KIND_LIST)
        return member_fail(err, CKPT_ERR_FORMAT, "storages", pos, "storage_views is not a list");
    for (uint32_t i = 0; i < views->u.seq.len; i++) {
        const ckpt_value *t = views->u.seq.items[i];
        char vkey[24], rkey[24];
        size_t vlen, rlen;
        ckpt_value **it = t->kind == CKPT_KIND_TUPLE && t->u.seq.len == 4 ? t->u.seq.items : NULL;
        if (!it || !key_text(it[0], vkey, &vlen) || !key_text(it[1], rkey, &rlen) || !ck_is_small_int(it[2]) ||
            it[2]->u.i < 0 || !ck_is_small_int(it[3]) || it[3]->u.i < 0)
            return member_fail(err, CKPT_ERR_FORMAT, "storages", pos,
                               "a storage view must be (view_key: int, root_key: int, offset: int, numel: int)");
        ckpt_value *root = ck_strmap_get(&c->storage_by_key, rkey, rlen), *out;
        if (!root || (root->u.storage->flags & CK_SF_VIEW))
            return member_fail(err, CKPT_ERR_TENSOR, "storages", pos, "a storage view names a root storage that is not saved");
        if ((s = ck_checkpoint_view_storage(c, root->u.storage, vkey, vlen, (uint64_t)it[2]->u.i, (uint64_t)it[3]->u.i,
                                            &out, err)))
            return s;
    }
    if (pos != m->size)
        return member_fail(err, CKPT_ERR_FORMAT, "storages", pos, "bytes follow the storage views (hidden data is refused)");
    ck_checkpoint_resolve_views(c);
    return CKPT_OK;
}

static ckpt_status read_tensors(tar_ctx *x, const ck_tar_member *m, ckpt_error *err)
{
    ckpt_checkpoint *c = x->c;
    ck_store *st = &c->store;
    size_t pos = 0;
    ckpt_value *v;
    ckpt_status s = run(x, m, "tensors", &pos, &v, err);
    if (s) return s;
    int64_t n;
    if ((s = count_of(v, "tensors", pos, &n, err))) return s;
    uint32_t max_ndim = (uint32_t)CK_MIN(c->limits.max_ndim, UINT32_MAX);
    for (int64_t i = 0; i < n; i++) {
        if ((s = run(x, m, "tensors", &pos, &v, err))) return s;
        char key[24], skey[24];
        size_t klen, sklen;
        ckpt_value **it = v->kind == CKPT_KIND_TUPLE && v->u.seq.len == 3 ? v->u.seq.items : NULL;
        if (!it || !key_text(it[0], key, &klen) || it[2]->kind != CKPT_KIND_GLOBAL)
            return member_fail(err, CKPT_ERR_FORMAT, "tensors", pos, "a tensor header must be (key: int, storage_key: int, "
                               "tensor class)");
        if (!key_text(it[1], skey, &sklen))
            return member_fail(err, CKPT_ERR_UNSUPPORTED, "tensors", pos, "a tensor without a storage (PyTorch 1.13 cannot "
                               "read it either)");
        ckpt_value *sv = ck_strmap_get(&c->storage_by_key, skey, sklen);
        if (!sv) return member_fail(err, CKPT_ERR_TENSOR, "tensors", pos, "a tensor names a storage that is not saved");
        if (ck_strmap_get(&x->tensors, key, klen) || ck_strmap_get(&c->storage_by_key, key, klen))
            return member_fail(err, CKPT_ERR_TENSOR, "tensors", pos, "a tensor key is used twice");
        int32_t ndim;
        uint64_t meta;
        if ((s = tensor_meta_size(m, pos, max_ndim, &ndim, &meta, err))) return s;
        pos += 8;
        uint64_t need = meta - 8;
        ckpt_value *tv = ck_new(st, CKPT_KIND_TENSOR);
        ckpt_tensor *t = ck_arena_zalloc(&st->arena, sizeof *t, _Alignof(ckpt_tensor));
        int64_t *dims = ck_arena_alloc(&st->arena, (size_t)ndim * 2 * sizeof *dims + 1, _Alignof(int64_t));
        if (!tv || !t || !dims) return ck_out_of_memory(st, err);
        for (int32_t d = 0; d < 2 * ndim; d++) dims[d] = (int64_t)ck_le64(m->data + pos + (size_t)d * 8);
        t->storage = sv->u.storage;
        t->dtype = sv->u.storage->dtype;
        t->ndim = (uint32_t)ndim;
        t->shape = dims;
        t->stride = dims + ndim;
        t->storage_offset = (int64_t)ck_le64(m->data + pos + (size_t)ndim * 16);
        t->type_name = "torch.Tensor";
        tv->u.tensor = t;
        if ((s = ck_tensor_validate(t, max_ndim, err))) {
            ck_error_at_offset(err, (int64_t)pos, -1);
            ck_error_in_record(err, "tensors");
            return s;
        }
        pos += (size_t)need;
        const char *k = ck_arena_strndup(&st->arena, key, klen);
        if (!k || !ck_strmap_put(&x->tensors, k, klen, tv)) return ck_out_of_memory(st, err);
    }
    if (pos != m->size)
        return member_fail(err, CKPT_ERR_FORMAT, "tensors", pos, "bytes follow the last tensor (hidden data is refused)");
    return CKPT_OK;
}

static ckpt_status tar_persistent_load(ck_unpickler *u, void *ctx, ckpt_value *pid, ckpt_value **out, ckpt_error *err)
{
    (void)u;
    tar_ctx *x = ctx;
    if (pid->kind == CKPT_KIND_TUPLE && pid->u.seq.len >= 1) return ck_module_pid(x->c, pid->u.seq.items[0], out, err);
    const char *key = ck_text_of(pid);
    if (!key) return ck_error_set(err, CKPT_ERR_PICKLE, "persistent id must be a key string or a module tuple, got %s",
                                  ck_type_name(pid));
    size_t n = pid->u.s.len, i = key[0] == '-' ? 1 : 0;
    if (n == i || n > 20) return ck_error_set(err, CKPT_ERR_PICKLE, "persistent id '%.24s' is not a decimal key", key);
    for (; i < n; i++)
        if (key[i] < '0' || key[i] > '9') return ck_error_set(err, CKPT_ERR_PICKLE, "persistent id '%.24s' is not a decimal key", key);
    ckpt_value *v = ck_strmap_get(&x->tensors, key, n);
    if (!v) v = ck_strmap_get(&x->c->storage_by_key, key, n);
    if (!v) return ck_error_set(err, CKPT_ERR_TENSOR, "persistent id '%s' names no saved tensor or storage", key);
    *out = v;
    return CKPT_OK;
}

ckpt_status ck_load_tar(ckpt_checkpoint *c, const uint8_t *data, size_t len, const ckpt_load_options *opts,
                        bool borrowable, ckpt_error *err)
{
    ck_tar_member m[CK_TAR_COUNT];
    memset(m, 0, sizeof m);
    ckpt_status s = ck_tar_members(data, len, c->limits.max_members, m, err);
    if (s) return s;
    ck_globals_ctx g = {0};
    ck_unpickler u;
    ck_checkpoint_unpickler(c, &u, opts, &g);
    tar_ctx x = {.c = c, .u = &u, .little = true};
    ck_strmap_init(&x.tensors, &c->store.arena);
    x.how = ck_attach_mode(c, borrowable);
    if (m[CK_TAR_SYS_INFO].present) {
        /* protocol_version 1000; little_endian says the byte order of the storage element counts */
        size_t pos = 0;
        ckpt_value *si;
        if ((s = run(&x, &m[CK_TAR_SYS_INFO], "sys_info", &pos, &si, err))) return s;
        if (pos != m[CK_TAR_SYS_INFO].size)
            return member_fail(err, CKPT_ERR_PICKLE, "sys_info", pos,
                               "bytes after the pickle's STOP opcode (hidden data is refused)");
        if (si->kind != CKPT_KIND_DICT) return member_fail(err, CKPT_ERR_FORMAT, "sys_info", pos, "sys_info is not a dict");
        x.little = ck_tar_little_endian(si);
    }
    if ((s = read_storages(&x, &m[CK_TAR_STORAGES], err)) || (s = read_tensors(&x, &m[CK_TAR_TENSORS], err))) return s;
    u.persistent_load = tar_persistent_load;
    u.persistent_ctx = &x;
    size_t pos = 0;
    if ((s = run(&x, &m[CK_TAR_PICKLE], "pickle", &pos, &c->root, err))) return s;
    if (pos != m[CK_TAR_PICKLE].size)
        return member_fail(err, CKPT_ERR_PICKLE, "pickle", pos, "bytes after the pickle's STOP opcode (hidden data is refused)");
    return ck_checkpoint_collect_globals(c, &g, err);
}
