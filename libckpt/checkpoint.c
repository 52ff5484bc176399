/*
 * checkpoint.c: loading a checkpoint: recognise the input, read the container, run the restricted
 * unpickler with the persistent-id handler of the format, tie storages to their records, and index
 * tensors by dotted key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_internal.h"
#include "byteorder.h"
#include "dtype.h"
#include "errors.h"
#include "formats.h"
#include "model_internal.h"
#include "pickle_opcodes.h"
#include "safetensors.h"
#include "sniff.h"
#include "unpickler.h"
#include "util.h"
#include "walk.h"
#include "zip.h"

/* ---- globals seen by the pickle ---- */

static void on_global(void *vctx, const char *module, const char *name, const ck_reg_entry *e, uint64_t offset, int op)
{
    (void)e; (void)offset; (void)op;
    ck_globals_ctx *g = vctx;
    char *full = ck_arena_qualname(g->arena, module, name);
    if (!full) { g->failed = true; return; }
    if (!ck_strmap_add(&g->seen, full, strlen(full), full, NULL)) g->failed = true;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

void ck_checkpoint_unpickler(ckpt_checkpoint *c, ck_unpickler *u, const ckpt_load_options *opts, ck_globals_ctx *g)
{
    if (!g->arena) {
        g->arena = &c->store.arena;
        ck_strmap_init(&g->seen, g->arena);
    }
    ck_unpickler_init(u, &c->store, &c->limits);
    u->registry = opts ? opts->registry : NULL;
    u->load_flags = c->flags;
    u->on_global = on_global;
    u->on_global_ctx = g;
}

ckpt_status ck_checkpoint_collect_globals(ckpt_checkpoint *c, ck_globals_ctx *g, ckpt_error *err)
{
    if (g->failed) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory recording globals");
    c->nglobals = g->seen.count;
    if (!c->nglobals) return CKPT_OK;
    c->globals = ck_arena_alloc(&c->store.arena, c->nglobals * sizeof *c->globals, _Alignof(char *));
    if (!c->globals) return ck_out_of_memory(&c->store, err);
    size_t k = 0;
    for (size_t i = 0; i < g->seen.cap; i++)
        if (g->seen.slots[i].key) c->globals[k++] = g->seen.slots[i].value;
    qsort(c->globals, c->nglobals, sizeof *c->globals, cmp_str);
    return CKPT_OK;
}

/* ---- persistent ids of the zip format: ('storage', storage_type, key, location, numel) ---- */

static bool valid_storage_key(const char *k, size_t n)
{
    if (n == 0 || n > 128) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = k[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static ckpt_status zip_persistent_load(ck_unpickler *u, void *ctx, ckpt_value *pid, ckpt_value **out, ckpt_error *err)
{
    ckpt_checkpoint *c = ctx;
    if (pid->kind != CKPT_KIND_TUPLE)
        return ck_error_set(err, CKPT_ERR_PICKLE, "persistent id must be a tuple ('storage', type, key, location, numel), got %s",
                            ck_type_name(pid));
    if (pid->u.seq.len != 5)
        return ck_error_set(err, CKPT_ERR_PICKLE, "persistent id has %u items; ('storage', type, key, location, numel) expected",
                            pid->u.seq.len);
    ckpt_value **it = pid->u.seq.items;
    const char *tag = ck_text_of(it[0]);
    /* the whole tag: a str/bytes may hold NULs, and torch compares all of it */
    if (!tag || it[0]->u.s.len != 7 || memcmp(tag, "storage", 7) != 0)
        return ck_error_set(err, CKPT_ERR_PICKLE, "only 'storage' persistent ids are allowed");
    /* element type: a storage class global, or a dtype */
    ckpt_dtype dtype;
    bool untyped = false;
    ckpt_value *ty = it[1];
    if (ty->kind == CKPT_KIND_DTYPE) {
        dtype = (ckpt_dtype)ty->u.dtype;
    } else if (ty->kind == CKPT_KIND_GLOBAL && ty->u.global.entry && ty->u.global.entry->kind == CK_G_STORAGE_TYPE) {
        dtype = (ckpt_dtype)ty->u.global.entry->dtype;
        untyped = ty->u.global.entry->flags & CK_RF_UNTYPED;
    } else {
        return ck_error_set(err, CKPT_ERR_PICKLE, "persistent id: storage type must be a storage class or a dtype, got %s",
                            ck_type_name(ty));
    }
    const char *key = ck_text_of(it[2]), *location = ck_text_of(it[3]);
    if (!key || !valid_storage_key(key, it[2]->u.s.len))
        return ck_error_set(err, CKPT_ERR_PICKLE, "persistent id: storage key must be a short alphanumeric string");
    if (!location) return ck_error_set(err, CKPT_ERR_PICKLE, "persistent id: location must be a string");
    if (!ck_is_small_int(it[4]) || ck_small_int(it[4]) < 0)
        return ck_error_set(err, CKPT_ERR_PICKLE, "persistent id: numel must be a non-negative 64-bit int");
    (void)u;
    return ck_checkpoint_storage(c, key, it[2]->u.s.len, dtype, untyped, location, it[3]->u.s.len,
                                 (uint64_t)ck_small_int(it[4]), out, err);
}

ckpt_status ck_checkpoint_storage(ckpt_checkpoint *c, const char *key, size_t klen, ckpt_dtype dtype, bool untyped,
                                  const char *location, size_t loclen, uint64_t numel, ckpt_value **out, ckpt_error *err)
{
    uint64_t nbytes;
    size_t itemsize = ckpt_dtype_itemsize(dtype);
    if (ck_mul_overflow_u64(numel, itemsize, &nbytes) || nbytes > INT64_MAX)
        return ck_error_set(err, CKPT_ERR_TENSOR, "storage '%.*s': %llu elements x %zu bytes overflows", (int)klen, key,
                            (unsigned long long)numel, itemsize);
    ckpt_value *existing = ck_strmap_get(&c->storage_by_key, key, klen);
    if (existing) {
        ckpt_storage *s = existing->u.storage;
        if (s->dtype != (uint8_t)dtype || s->numel != numel || (s->flags & CK_SF_VIEW))
            return ck_error_set(err, CKPT_ERR_TENSOR,
                                "storage '%s' is named twice with different types or sizes (%s x %llu, then %s x %llu)", s->key,
                                ckpt_dtype_name((ckpt_dtype)s->dtype), (unsigned long long)s->numel, ckpt_dtype_name(dtype),
                                (unsigned long long)numel);
        *out = existing; /* the same storage object: views and tied weights stay shared */
        return CKPT_OK;
    }
    ck_store *st = &c->store;
    ckpt_storage *s = ck_arena_zalloc(&st->arena, sizeof *s, _Alignof(ckpt_storage));
    ckpt_value *v = ck_new(st, CKPT_KIND_STORAGE);
    if (!s || !v) return ck_out_of_memory(st, err);
    s->key = ck_arena_strndup(&st->arena, key, klen);
    s->location = ck_arena_strndup(&st->arena, location, loclen);
    if (!s->key || !s->location) return ck_out_of_memory(st, err);
    s->numel = numel;
    s->nbytes = nbytes;
    s->dtype = (uint8_t)dtype;
    s->flags = untyped ? CK_SF_UNTYPED : 0;
    v->u.storage = s;
    v->type_name = untyped ? "torch.storage.UntypedStorage" : "torch.storage.TypedStorage";
    if (c->nstorages == c->storages_cap) {
        size_t ncap = c->storages_cap ? c->storages_cap * 2 : 16;
        ckpt_storage **n = ck_arena_grow(&st->arena, c->storages, c->storages_cap * sizeof *n, ncap * sizeof *n,
                                         _Alignof(ckpt_storage *));
        if (!n) return ck_out_of_memory(st, err);
        c->storages = n;
        c->storages_cap = ncap;
    }
    s->index = (uint32_t)c->nstorages;
    c->storages[c->nstorages++] = s;
    if (!ck_strmap_put(&c->storage_by_key, s->key, klen, v)) return ck_out_of_memory(st, err);
    *out = v;
    return CKPT_OK;
}

/* ---- storage data ---- */

ckpt_status ck_storage_swap_unit(const ckpt_storage *st, unsigned *unit, ckpt_error *err)
{
    if (!(st->flags & CK_SF_UNTYPED)) {
        *unit = ck_dtype_swap_unit((ckpt_dtype)st->dtype);
        return CKPT_OK;
    }
    /* untyped (v3) storages: the dtype of the tensors that view them decides (PyTorch itself swaps them
     * as bytes, i.e. not at all, which gives wrong values for uint16/32/64, complex32 and bits16) */
    if (st->flags & CK_SF_SWAP_MIXED)
        return ck_error_set(err, CKPT_ERR_UNSUPPORTED,
                            "storage '%s' is viewed as dtypes of different sizes in a big-endian file: its byte order "
                            "cannot be converted", st->key);
    *unit = st->view_swap ? st->view_swap : 1;
    return CKPT_OK;
}

ckpt_status ck_storage_attach(ckpt_checkpoint *c, ckpt_storage *st, const uint8_t *bytes, unsigned how, bool big_endian,
                              ckpt_error *err)
{
    bool in_place = how != CK_ATTACH_COPY;
    bool swap = big_endian != !ck_host_is_little_endian();
    unsigned unit = 1;
    if (swap) {
        ckpt_status s = ck_storage_swap_unit(st, &unit, err);
        if (s) return s;
        if (unit <= 1) swap = false;
    }
    st->flags |= CK_SF_RESOLVED;
    if (in_place && !swap) {
        st->data = bytes;
        return CKPT_OK;
    }
    if (how == CK_ATTACH_PRIVATE) { /* a copy already made for this storage: swap it where it is */
        ck_swap_elements((uint8_t *)bytes, st->nbytes, unit);
        st->data = bytes;
        return CKPT_OK;
    }
    uint8_t *p = ck_arena_alloc(&c->store.arena, st->nbytes ? (size_t)st->nbytes : 1, 64);
    if (!p) return ck_out_of_memory(&c->store, err);
    if (st->nbytes) memcpy(p, bytes, (size_t)st->nbytes);
    if (swap) ck_swap_elements(p, st->nbytes, unit);
    st->data = p;
    return CKPT_OK;
}

ckpt_status ck_checkpoint_view_storage(ckpt_checkpoint *c, ckpt_storage *base, const char *key, size_t klen,
                                       uint64_t offset, uint64_t numel, ckpt_value **out, ckpt_error *err)
{
    uint64_t end;
    if (ck_add_overflow_u64(offset, numel, &end) || end > base->numel)
        return ck_error_set(err, CKPT_ERR_TENSOR,
                            "storage view '%.*s' (elements %llu + %llu) extends past storage '%s' of %llu elements", (int)klen,
                            key, (unsigned long long)offset, (unsigned long long)numel, base->key,
                            (unsigned long long)base->numel);
    size_t isz = ckpt_dtype_itemsize((ckpt_dtype)base->dtype);
    ckpt_value *existing = ck_strmap_get(&c->storage_by_key, key, klen);
    if (existing) {
        ckpt_storage *s = existing->u.storage;
        if (!(s->flags & CK_SF_VIEW) || s->base != base || s->base_offset != offset * isz || s->numel != numel)
            return ck_error_set(err, CKPT_ERR_TENSOR, "storage key '%s' names two different storages", s->key);
        *out = existing;
        return CKPT_OK;
    }
    ckpt_status s = ck_checkpoint_storage(c, key, klen, (ckpt_dtype)base->dtype, base->flags & CK_SF_UNTYPED,
                                          base->location, strlen(base->location), numel, out, err);
    if (s) return s;
    ckpt_storage *v = (*out)->u.storage;
    v->flags |= CK_SF_VIEW;
    v->base = base;
    v->base_offset = offset * isz; /* cannot overflow: offset <= base->numel and base->nbytes fits */
    return CKPT_OK;
}

void ck_checkpoint_resolve_views(ckpt_checkpoint *c)
{
    for (size_t i = 0; i < c->nstorages; i++) {
        ckpt_storage *v = c->storages[i];
        if (!(v->flags & CK_SF_VIEW)) continue;
        v->flags |= CK_SF_RESOLVED;
        v->data = v->base->data ? v->base->data + v->base_offset : NULL;
    }
}

/* ---- tensor index ---- */

typedef struct {
    ckpt_checkpoint *c;
    size_t cap;
    bool failed;
    ckpt_error *err;
    ckpt_status status;
    uint64_t logical; /* numel x itemsize summed over the tensors so far */
    bool too_big;
    char where[200]; /* the key of the tensor that passed the bound */
} index_ctx;

static ckpt_walk_action index_tensor(const char *path, size_t len, const ckpt_value *v, void *user)
{
    index_ctx *x = user;
    if (v->kind == CKPT_KIND_SPARSE) {
        /* PyTorch validates every sparse tensor it loads; so does libckpt, once the data is there */
        x->status = ck_sparse_check(v->u.sparse, x->err);
        if (x->status) {
            ck_error_append(x->err, " (sparse tensor '%.*s')", (int)CK_MIN(len, 200), path);
            return CKPT_WALK_STOP;
        }
        return CKPT_WALK_CONTINUE;
    }
    if (v->kind != CKPT_KIND_TENSOR) return CKPT_WALK_CONTINUE;
    ckpt_checkpoint *c = x->c;
    /* stride-0 views can describe far more elements than the file holds; digests and contiguous copies
     * cost the logical size, so it is bounded like an allocation */
    if (ck_add_overflow_u64(x->logical, ckpt_tensor_nbytes(v->u.tensor), &x->logical) || x->logical > c->max_logical) {
        x->too_big = true;
        snprintf(x->where, sizeof x->where, "%.*s", (int)CK_MIN(len, sizeof x->where - 1), path);
        return CKPT_WALK_STOP;
    }
    if (c->ntensors == x->cap) {
        size_t ncap = x->cap ? x->cap * 2 : 64;
        ck_tensor_ref *n = ck_arena_grow(&c->store.arena, c->tensors, x->cap * sizeof *n, ncap * sizeof *n,
                                         _Alignof(ck_tensor_ref));
        if (!n) { x->failed = true; return CKPT_WALK_STOP; }
        c->tensors = n;
        x->cap = ncap;
    }
    const char *key = ck_arena_strndup(&c->store.arena, path, len);
    if (!key) { x->failed = true; return CKPT_WALK_STOP; }
    c->tensors[c->ntensors++] = (ck_tensor_ref){v->u.tensor, key};
    return CKPT_WALK_CONTINUE;
}

static ckpt_status build_tensor_index(ckpt_checkpoint *c, ckpt_error *err)
{
    index_ctx x = {.c = c, .err = err};
    if (!c->root) return CKPT_OK;
    ckpt_status s = ck_walk(c->root, c->store.next_id, c->limits.max_depth, index_tensor, &x, err);
    if (s) return s;
    if (x.status) return x.status;
    if (x.failed) return ck_out_of_memory(&c->store, err);
    if (x.too_big)
        return ck_error_set(err, CKPT_ERR_LIMIT,
                            "the tensors describe more than %llu bytes of elements (numel x itemsize summed, passed at "
                            "tensor '%s'): views with zero or overlapping strides claim far more data than the file "
                            "holds (CKPT_LIMIT_MAX_ALLOC; raise it only for files you have reason to trust)",
                            (unsigned long long)c->max_logical, x.where);
    return CKPT_OK;
}

/* ---- the zip format ---- */

static ckpt_status read_small_record(ckpt_checkpoint *c, const ck_zip *z, const char *name, const uint8_t **p, size_t *n,
                                     bool *present, ckpt_error *err)
{
    const ck_zip_member *m = ck_zip_find(z, name, strlen(name));
    *present = m != NULL;
    if (!m) return CKPT_OK;
    if (m->size > 4096) return ck_error_set(err, CKPT_ERR_ZIP, "record '%s' is %llu bytes; a few bytes expected", name, (unsigned long long)m->size);
    uint8_t *copy;
    ckpt_status s = ck_zip_read_copy(z, m, &c->store.arena, true, &copy, err);
    if (s) return s;
    *p = copy;
    *n = (size_t)m->size;
    return CKPT_OK;
}

static ckpt_status load_zip(ckpt_checkpoint *c, const uint8_t *data, size_t len, const ckpt_load_options *opts,
                            bool data_is_borrowable, ckpt_error *err)
{
    ck_arena *arena = &c->store.arena;
    ck_zip z;
    ckpt_status s = ck_zip_open(&z, data, len, arena, c->limits.max_members, err);
    if (s) return s;
    if (c->map.data == data) z.fd = c->map.fd;
    if (z.count == 0) return ck_error_set(err, CKPT_ERR_FORMAT, "the zip archive is empty: not a PyTorch checkpoint");
    /* the archive prefix: the folder of the first central-directory entry (as PyTorch's reader) */
    const char *first = z.members[0].name;
    const char *slash = strchr(first, '/');
    if (!slash || slash == first)
        return ck_error_set(err, CKPT_ERR_FORMAT, "zip member '%s' is not in a folder: not a PyTorch checkpoint", first);
    size_t plen = (size_t)(slash - first);
    c->prefix = ck_arena_strndup(arena, first, plen);
    if (!c->prefix) return ck_out_of_memory(&c->store, err);
    bool torchscript = false;
    for (size_t i = 0; i < z.count; i++) {
        const ck_zip_member *m = &z.members[i];
        if (m->name_len <= plen + 1 || memcmp(m->name, first, plen + 1) != 0)
            return ck_error_set(err, CKPT_ERR_FORMAT, "zip member '%s' is outside the archive folder '%s/' (PyTorch refuses "
                                "such archives)", m->name, c->prefix);
        const char *rel = m->name + plen + 1;
        if (strcmp(rel, "constants.pkl") == 0 || strncmp(rel, "code/", 5) == 0) torchscript = true;
    }
    char name[600];
    if (torchscript) {
        c->format = CKPT_FORMAT_TORCHSCRIPT;
        if (!(c->flags & CKPT_LOAD_TORCHSCRIPT))
            return ck_error_set(err, CKPT_ERR_UNSUPPORTED,
                                "this is a TorchScript archive (torch.jit.save: it has constants.pkl / code/), not a plain "
                                "checkpoint. TorchScript archives carry code; libckpt never runs it and does not load them "
                                "as checkpoints (PyTorch <= 2.5.1 ran such files even with weights_only=True: "
                                "CVE-2025-32434). To read its data.pkl as data (module attributes, parameters, buffers), "
                                "load with the CKPT_LOAD_TORCHSCRIPT flag; `ckpt inspect` does");
    }
    /* version: .data/version, else version (1 .. 10, as PyTorch's reader) */
    const uint8_t *rec;
    size_t rlen;
    bool present;
    snprintf(name, sizeof name, "%s/.data/version", c->prefix);
    if ((s = read_small_record(c, &z, name, &rec, &rlen, &present, err))) return s;
    if (!present) {
        snprintf(name, sizeof name, "%s/version", c->prefix);
        if ((s = read_small_record(c, &z, name, &rec, &rlen, &present, err))) return s;
    }
    if (!present) return ck_error_set(err, CKPT_ERR_FORMAT, "no '%s/version' record: not a PyTorch checkpoint", c->prefix);
    uint64_t version = 0;
    size_t k = 0;
    while (k < rlen && rec[k] >= '0' && rec[k] <= '9' && version < 1000000) version = version * 10 + (rec[k++] - '0');
    if (k == 0 || version < 1 || version > 10)
        return ck_error_set(err, CKPT_ERR_UNSUPPORTED, "record '%s' gives file format version '%.*s'; PyTorch reads 1 to 10",
                            name, (int)CK_MIN(rlen, 20), (const char *)rec);
    snprintf(name, sizeof name, "%s/byteorder", c->prefix);
    if ((s = read_small_record(c, &z, name, &rec, &rlen, &present, err))) return s;
    if (present) {
        if (rlen == 6 && memcmp(rec, "little", 6) == 0) c->big_endian = false;
        else if (rlen == 3 && memcmp(rec, "big", 3) == 0) c->big_endian = true;
        else return ck_error_set(err, CKPT_ERR_FORMAT, "record '%s' must be 'little' or 'big'", name);
    }
    /* the pickle: copied out of the file so its bytes cannot change under the parser */
    snprintf(name, sizeof name, "%s/data.pkl", c->prefix);
    const ck_zip_member *pm = ck_zip_find(&z, name, strlen(name));
    if (!pm) return ck_error_set(err, CKPT_ERR_FORMAT, "no '%s' record: not a PyTorch checkpoint", name);
    uint8_t *pkl;
    if ((s = ck_zip_read_copy(&z, pm, arena, true, &pkl, err))) return s;
    ck_globals_ctx g = {0};
    ck_unpickler u;
    ck_checkpoint_unpickler(c, &u, opts, &g);
    u.persistent_load = zip_persistent_load;
    u.persistent_ctx = c;
    u.record = pm->name;
    if (torchscript) ck_torchscript_unpickler(c, &u); /* __torch__ classes and torch.jit._pickle helpers as data */
    size_t pos = 0;
    s = ck_unpickle(&u, pkl, (size_t)pm->size, &pos, &c->root, err);
    if (!s && pos != pm->size)
        s = ck_error_set(err, CKPT_ERR_PICKLE, "%llu bytes after the pickle's STOP opcode (hidden data is refused)",
                         (unsigned long long)(pm->size - pos));
    if (s) {
        if (s == CKPT_ERR_PICKLE && pos != pm->size && !err->record[0]) ck_error_at_offset(err, (int64_t)pos, -1);
        ck_error_in_record(err, pm->name);
        return s;
    }
    if ((s = ck_checkpoint_collect_globals(c, &g, err))) return s;
    /* model mode: which attributes of each scripted class are parameters and buffers (code/, as text) */
    if (torchscript && (c->flags & CKPT_LOAD_MODEL) && (s = ck_ts_read_classes(c, &z, err))) return s;
    /* storages: each must be a record of exactly numel x itemsize bytes */
    bool skip = c->flags & CKPT_LOAD_SKIP_DATA;
    bool in_place = ck_attach_mode(c, data_is_borrowable) == CK_ATTACH_IN_PLACE;
    bool verify = !(c->flags & CKPT_LOAD_NO_DATA_CRC);
    for (size_t i = 0; i < c->nstorages; i++) {
        ckpt_storage *st = c->storages[i];
        snprintf(name, sizeof name, "%s/data/%s", c->prefix, st->key);
        const ck_zip_member *m = ck_zip_find(&z, name, strlen(name));
        if (!m) return ck_error_set(err, CKPT_ERR_TENSOR, "storage record '%s' is missing", name);
        if (m->size != st->nbytes)
            return ck_error_set(err, CKPT_ERR_TENSOR,
                                "storage record '%s' has %llu bytes, but the pickle declares %llu elements of %s (%llu bytes)",
                                name, (unsigned long long)m->size, (unsigned long long)st->numel,
                                ckpt_dtype_name((ckpt_dtype)st->dtype), (unsigned long long)st->nbytes);
        if (skip) {
            st->flags |= CK_SF_RESOLVED;
            continue;
        }
        if (in_place && m->method == 0) {
            const uint8_t *p;
            if ((s = ck_zip_read(&z, m, arena, verify, &p, err)) ||
                (s = ck_storage_attach(c, st, p, CK_ATTACH_IN_PLACE, c->big_endian, err)))
                return s;
        } else {
            uint8_t *p;
            if ((s = ck_zip_read_copy(&z, m, arena, verify, &p, err)) ||
                (s = ck_storage_attach(c, st, p, CK_ATTACH_PRIVATE, c->big_endian, err)))
                return s;
        }
    }
    return CKPT_OK;
}

/* ---- entry points ---- */

static ckpt_status load_span(ckpt_checkpoint *c, const uint8_t *data, size_t len, const ckpt_load_options *opts,
                             bool borrowable, ckpt_error *err)
{
    char desc[160];
    ck_input_kind kind = ck_sniff(data, len, desc, sizeof desc);
    switch (kind) {
    case CK_INPUT_ZIP:
        c->format = CKPT_FORMAT_ZIP;
        return load_zip(c, data, len, opts, borrowable, err);
    case CK_INPUT_LEGACY:
        c->format = CKPT_FORMAT_LEGACY;
        return ck_load_legacy(c, data, len, opts, borrowable, err);
    case CK_INPUT_TAR:
        c->format = CKPT_FORMAT_TAR;
        return ck_load_tar(c, data, len, opts, borrowable, err);
    case CK_INPUT_SAFETENSORS:
        return ck_st_load(c, data, len, borrowable, err);
    case CK_INPUT_PICKLE:
        /* a legacy stream written with another pickle protocol than 2 has a differently encoded magic number */
        if (ck_legacy_probe(data, len)) {
            c->format = CKPT_FORMAT_LEGACY;
            return ck_load_legacy(c, data, len, opts, borrowable, err);
        }
        break;
    case CK_INPUT_OTHER: break;
    }
    return ck_error_set(err, CKPT_ERR_FORMAT, "not a PyTorch checkpoint: the input is %s", desc);
}

static ckpt_status finish(ckpt_checkpoint *c, ckpt_status s, ckpt_checkpoint **out, ckpt_error *err)
{
    if (!s) s = build_tensor_index(c, err);
    if (!s && (c->flags & CKPT_LOAD_MODEL)) s = ck_model_build(c, err); /* the state dict (model.c) */
    /* the mapping is needed only while tensors point into it */
    bool keep = false;
    for (size_t i = 0; i < c->nstorages && !keep; i++) {
        const uint8_t *p = c->storages[i]->data;
        keep = p && c->map.data && p >= c->map.data && p < c->map.data + c->map.len;
    }
    if (!keep) ck_unmap_file(&c->map);
    if (s) {
        ckpt_checkpoint_free(c);
        *out = NULL;
        return s;
    }
    *out = c;
    return CKPT_OK;
}

static ckpt_checkpoint *new_checkpoint(const ckpt_load_options *opts, uint64_t input_len)
{
    ckpt_checkpoint *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    ck_limits_resolve(opts, input_len, &c->limits);
    /* the logical size of the tensors is bounded by MAX_ALLOC, but never below its default, so a small
     * allocation budget for an mmap load does not refuse ordinary files */
    ck_limits defaults;
    ck_limits_resolve(NULL, input_len, &defaults);
    c->max_logical = CK_MAX(c->limits.max_alloc, defaults.max_alloc);
    c->flags = opts ? opts->flags : 0;
    c->accept_module_pids = c->flags & CKPT_LOAD_MODEL;
    ck_store_init(&c->store, c->limits.max_alloc);
    ck_strmap_init(&c->storage_by_key, &c->store.arena);
    c->prefix = "";
    c->map.fd = -1; /* no file (ckpt_load_memory): ck_unmap_file must not close fd 0 */
    return c;
}

ckpt_status ckpt_load_file(const char *path, const ckpt_load_options *opts, ckpt_checkpoint **out, ckpt_error *err)
{
    ckpt_error local;
    if (!err) { ck_error_init(&local); err = &local; }
    if (!out) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!path) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "path is NULL");
    ck_mapped map;
    ckpt_status s = ck_map_file(path, &map, err);
    if (s) return s;
    ckpt_checkpoint *c = new_checkpoint(opts, map.len);
    if (!c) {
        ck_unmap_file(&map);
        return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    }
    c->map = map;
    /* without CKPT_LOAD_MMAP tensors are copied out and the mapping is dropped after the load */
    bool borrowable = (c->flags & CKPT_LOAD_MMAP) && map.is_mmap;
    if (!map.is_mmap && (c->flags & CKPT_LOAD_MMAP)) borrowable = true; /* a private read buffer: just as stable */
    s = load_span(c, map.data, map.len, opts, borrowable, err);
    return finish(c, s, out, err);
}

ckpt_status ckpt_load_memory(const void *data, size_t len, const ckpt_load_options *opts, ckpt_checkpoint **out,
                             ckpt_error *err)
{
    ckpt_error local;
    if (!err) { ck_error_init(&local); err = &local; }
    if (!out) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!data && len) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "data is NULL");
    ckpt_checkpoint *c = new_checkpoint(opts, len);
    if (!c) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    bool borrowable = c->flags & CKPT_LOAD_BORROW;
    ckpt_status s = load_span(c, data ? data : (const void *)"", len, opts, borrowable, err);
    return finish(c, s, out, err);
}

void ckpt_checkpoint_free(ckpt_checkpoint *c)
{
    if (!c) return;
    ck_unmap_file(&c->map);
    ck_store_release(&c->store);
    free(c);
}

ckpt_format ckpt_checkpoint_format(const ckpt_checkpoint *c) { return c ? c->format : CKPT_FORMAT_ZIP; }
const char *ckpt_format_name(ckpt_format f)
{
    switch (f) {
    case CKPT_FORMAT_ZIP: return "zip";
    case CKPT_FORMAT_LEGACY: return "legacy";
    case CKPT_FORMAT_TAR: return "tar";
    case CKPT_FORMAT_TORCHSCRIPT: return "torchscript";
    case CKPT_FORMAT_SAFETENSORS: return "safetensors";
    }
    return "unknown";
}
const char *ckpt_checkpoint_archive_prefix(const ckpt_checkpoint *c) { return c ? c->prefix : ""; }
bool ckpt_checkpoint_big_endian(const ckpt_checkpoint *c) { return c && c->big_endian; }
const ckpt_value *ckpt_checkpoint_root(const ckpt_checkpoint *c) { return c ? c->root : NULL; }
size_t ckpt_checkpoint_num_globals(const ckpt_checkpoint *c) { return c ? c->nglobals : 0; }
const char *ckpt_checkpoint_global(const ckpt_checkpoint *c, size_t i) { return c && i < c->nglobals ? c->globals[i] : NULL; }
size_t ckpt_checkpoint_num_tensors(const ckpt_checkpoint *c) { return c ? c->ntensors : 0; }
const ckpt_tensor *ckpt_checkpoint_tensor(const ckpt_checkpoint *c, size_t i, const char **key)
{
    if (!c || i >= c->ntensors) return NULL;
    if (key) *key = c->tensors[i].key;
    return c->tensors[i].t;
}

ckpt_status ckpt_walk(const ckpt_checkpoint *c, const ckpt_value *start, ckpt_walk_fn fn, void *user, ckpt_error *err)
{
    if (!c || !fn) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL checkpoint or callback");
    if (!start) start = c->root;
    return ck_walk(start, c->store.next_id, c->limits.max_depth, (ck_walk_fn)fn, user, err);
}
