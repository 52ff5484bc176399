/*
 * safetensors_write.c: a value tree to safetensors (format rules in safetensors.h), the way the
 * reference implementation writes it: tensors sorted by dtype (larger alignment first, in the Rust
 * Dtype order) then name, compact JSON with "__metadata__" first, the header padded with spaces to a
 * multiple of 8. Tensors are named by their dotted keys; non-contiguous tensors are written as their
 * logical elements in row-major order.
 *
 * Shared storages follow safetensors' own rule (safetensors.torch._remove_duplicate_names, used by
 * save_model): of the names whose tensor covers the whole storage (offset 0, every byte), the first in
 * sorted order is kept and every other name viewing that storage is dropped and recorded in
 * __metadata__ as {dropped: kept}; when no name covers the whole storage the save fails. A state
 * dict's `_metadata` attribute (module versions) has no place in the format and is left out, like
 * save_model does; any other value that is not a tensor fails the save unless
 * CKPT_SAVE_DROP_NON_TENSORS is set.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"
#include "dtype.h"
#include "ptrmap.h"
#include "safetensors.h"
#include "strmap.h"
#include "text.h"
#include "util.h"
#include "walk_paths.h"

/* The reference writer's order (safetensors Dtype enum: BOOL, F4, F6_*, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0,
 * I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64); it sorts by this, descending. */
static int dtype_rank(ckpt_dtype d)
{
    static const ckpt_dtype order[] = {
        CKPT_DTYPE_BOOL,     CKPT_DTYPE_UINT8,   CKPT_DTYPE_INT8,    CKPT_DTYPE_FLOAT8_E5M2, CKPT_DTYPE_FLOAT8_E4M3FN,
        CKPT_DTYPE_FLOAT8_E8M0FNU, CKPT_DTYPE_INT16, CKPT_DTYPE_UINT16, CKPT_DTYPE_FLOAT16, CKPT_DTYPE_BFLOAT16,
        CKPT_DTYPE_INT32,    CKPT_DTYPE_UINT32,  CKPT_DTYPE_FLOAT32, CKPT_DTYPE_COMPLEX64, CKPT_DTYPE_FLOAT64,
        CKPT_DTYPE_INT64,    CKPT_DTYPE_UINT64,
    };
    for (int i = 0; i < (int)CK_ARRAY_LEN(order); i++)
        if (order[i] == d) return i;
    return -1;
}

typedef struct {
    char *name;
    const ckpt_value *node;
    const ckpt_tensor *t;
    bool dropped;
} found;

typedef struct {
    const ckpt_save_options *opts;
    const ckpt_value *root;
    found *items;
    size_t count, cap;
    ck_ptrmap skip;       /* values to leave out: `_metadata`, the root's `__metadata__` */
    const ckpt_value *root_metadata;
    ckpt_error *err;
    ckpt_status status;
} collect_ctx;


static bool is_container(const ckpt_value *v)
{
    switch (v->kind) {
    case CKPT_KIND_LIST:
    case CKPT_KIND_TUPLE:
    case CKPT_KIND_DICT:
    case CKPT_KIND_SET:
    case CKPT_KIND_FROZENSET: return true;
    default: return false;
    }
}

static ckpt_walk_action collect(const char *path, size_t len, const ckpt_value *v, bool first, void *user)
{
    collect_ctx *x = user;
    if (ck_ptrmap_get(&x->skip, v, NULL)) return CKPT_WALK_SKIP;
    if (first && v->attrs && v->attrs->kind == CKPT_KIND_DICT) {
        /* the attributes BUILD set: `_metadata` is left out; the root's `__metadata__` is the header's */
        const ckpt_value *a = v->attrs;
        for (uint32_t i = 0; i < a->u.dict.len; i++) {
            const ckpt_value *k = a->u.dict.entries[i].key, *val = a->u.dict.entries[i].val;
            if (k->kind != CKPT_KIND_STR) continue;
            bool meta = strcmp(k->u.s.ptr, "_metadata") == 0;
            bool header = v == x->root && strcmp(k->u.s.ptr, "__metadata__") == 0;
            if (header) x->root_metadata = val;
            if ((meta || header) && !ck_ptrmap_put(&x->skip, val, 1)) goto nomem;
        }
    }
    if (v->kind == CKPT_KIND_TENSOR) {
        if (len == 0) {
            x->status = ck_error_set(x->err, CKPT_ERR_UNSUPPORTED,
                                     "the root is a single tensor: safetensors needs named tensors; put it in a dict");
            return CKPT_WALK_STOP;
        }
        if (x->count == x->cap) {
            size_t ncap = x->cap ? x->cap * 2 : 64;
            found *n = realloc(x->items, ncap * sizeof *n);
            if (!n) goto nomem;
            x->items = n;
            x->cap = ncap;
        }
        char *name = strndup(path, len);
        if (!name) goto nomem;
        x->items[x->count++] = (found){name, v, v->u.tensor, false};
        return CKPT_WALK_CONTINUE;
    }
    if (!first) return CKPT_WALK_CONTINUE;
    if (is_container(v)) return CKPT_WALK_CONTINUE;
    if (x->opts && (x->opts->flags & CKPT_SAVE_DROP_NON_TENSORS)) return CKPT_WALK_SKIP;
    x->status = ck_error_set(x->err, CKPT_ERR_UNSUPPORTED,
                             "'%s' is a %s, not a tensor: safetensors holds only named tensors (save as .pt to keep it, or "
                             "set CKPT_SAVE_DROP_NON_TENSORS / `ckpt convert --drop-non-tensors` to leave such values out)",
                             len ? path : "<root>", ck_type_name(v));
    return CKPT_WALK_STOP;
nomem:
    x->status = ck_error_set(x->err, CKPT_ERR_NOMEM, "out of memory");
    return CKPT_WALK_STOP;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_items(const void *a, const void *b)
{
    const ck_st_item *x = a, *y = b;
    if (x->rank != y->rank) return x->rank > y->rank ? -1 : 1;
    return strcmp(x->name, y->name);
}

static bool covers_storage(const ckpt_tensor *t)
{
    return t->storage_offset == 0 && t->numel * ckpt_dtype_itemsize((ckpt_dtype)t->dtype) == t->storage->nbytes;
}

/* safetensors' shared-storage rule: keep the first complete name, record the others as aliases */
static ckpt_status resolve_shared(collect_ctx *x, json_t *meta)
{
    ckpt_status s = CKPT_OK;
    size_t *group = malloc((x->count ? x->count : 1) * sizeof *group);
    bool *done = calloc(x->count ? x->count : 1, sizeof *done);
    if (!group || !done) {
        s = ck_error_set(x->err, CKPT_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* members of one storage are found through a chain: next[i] = the next item on the same storage */
    size_t *next = malloc((x->count ? x->count : 1) * sizeof *next);
    if (!next) {
        s = ck_error_set(x->err, CKPT_ERR_NOMEM, "out of memory");
        goto out;
    }
    ck_ptrmap last_of;
    ck_ptrmap_init(&last_of);
    for (size_t i = 0; i < x->count; i++) {
        next[i] = SIZE_MAX;
        uint32_t last;
        if (ck_ptrmap_get(&last_of, x->items[i].t->storage, &last)) next[last - 1] = i;
        if (i + 1 > UINT32_MAX || !ck_ptrmap_put(&last_of, x->items[i].t->storage, (uint32_t)(i + 1))) {
            s = ck_error_set(x->err, CKPT_ERR_NOMEM, "out of memory");
            break;
        }
    }
    ck_ptrmap_release(&last_of);
    for (size_t i = 0; i < x->count && !s; i++) {
        if (done[i]) continue;
        size_t n = 0;
        for (size_t j = i; j != SIZE_MAX; j = next[j]) {
            group[n++] = j;
            done[j] = true;
        }
        if (n < 2) continue;
        const char *keep = NULL;
        for (size_t g = 0; g < n; g++) {
            const found *f = &x->items[group[g]];
            if (covers_storage(f->t) && (!keep || strcmp(f->name, keep) < 0)) keep = f->name;
        }
        if (!keep) {
            char names[512] = "";
            for (size_t g = 0; g < n && strlen(names) < 400; g++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s'%s'", g ? ", " : "",
                         x->items[group[g]].name);
            s = ck_error_set(x->err, CKPT_ERR_UNSUPPORTED,
                             "tensors %s share one storage and none of them covers all of it: safetensors stores each "
                             "tensor separately and keeps only a name covering the whole storage (the safetensors "
                             "library refuses this too); save as .pt to keep the views", names);
            break;
        }
        for (size_t g = 0; g < n; g++) {
            found *f = &x->items[group[g]];
            if (strcmp(f->name, keep) == 0) continue;
            f->dropped = true;
            json_t *prev = json_object_get(meta, f->name);
            if (prev && (!json_is_string(prev) || strcmp(json_string_value(prev), keep) != 0)) {
                s = ck_error_set(x->err, CKPT_ERR_UNSUPPORTED,
                                 "tensor '%s' shares the storage of '%s' and would be recorded in __metadata__ as an "
                                 "alias, but __metadata__ already has a key '%s'", f->name, keep, f->name);
                break;
            }
            if (json_object_set_new(meta, f->name, json_string(keep)) != 0) {
                s = ck_error_set(x->err, CKPT_ERR_NOMEM, "out of memory");
                break;
            }
        }
    }
    free(next);
out:
    free(group);
    free(done);
    return s;
}

void ck_st_plan_release(ck_st_plan *plan)
{
    for (size_t i = 0; i < plan->count; i++) free(plan->items[i].name);
    free(plan->items);
    free(plan->header);
    memset(plan, 0, sizeof *plan);
}

ckpt_status ck_st_prepare(const ckpt_value *root, const ckpt_save_options *opts, ck_st_plan *plan, ckpt_error *err)
{
    memset(plan, 0, sizeof *plan);
    collect_ctx x;
    memset(&x, 0, sizeof x);
    x.opts = opts;
    x.root = root;
    x.err = err;
    ck_ptrmap_init(&x.skip);
    json_t *meta = json_object(), *doc = json_object();
    ckpt_status s = meta && doc ? ck_walk_paths(root, true, collect, &x, err) : ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    if (!s) s = x.status;
    /* __metadata__: the root's attribute, then the options' entries */
    if (!s && x.root_metadata) {
        const ckpt_value *m = x.root_metadata;
        if (m->kind != CKPT_KIND_DICT) {
            s = ck_error_set(err, CKPT_ERR_UNSUPPORTED, "the root's __metadata__ attribute must be a dict of str to str");
        } else {
            for (uint32_t i = 0; i < m->u.dict.len && !s; i++) {
                const ckpt_value *k = m->u.dict.entries[i].key, *v = m->u.dict.entries[i].val;
                if (k->kind != CKPT_KIND_STR || v->kind != CKPT_KIND_STR ||
                    !ck_utf8_valid((const uint8_t *)k->u.s.ptr, k->u.s.len, false) ||
                    !ck_utf8_valid((const uint8_t *)v->u.s.ptr, v->u.s.len, false) || memchr(k->u.s.ptr, 0, k->u.s.len) ||
                    memchr(v->u.s.ptr, 0, v->u.s.len))
                    s = ck_error_set(err, CKPT_ERR_UNSUPPORTED, "__metadata__ entries must be UTF-8 str to str without NUL");
                else if (json_object_set_new(meta, k->u.s.ptr, json_stringn(v->u.s.ptr, v->u.s.len)) != 0)
                    s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
            }
        }
    }
    for (size_t i = 0; !s && opts && i < opts->nmeta; i++)
        if (json_object_set_new(meta, opts->meta_keys[i], json_string(opts->meta_values[i])) != 0)
            s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    /* every tensor: a usable name, a safetensors dtype, data */
    for (size_t i = 0; i < x.count && !s; i++) {
        const found *f = &x.items[i];
        size_t nl = strlen(f->name);
        if (!ck_utf8_valid((const uint8_t *)f->name, nl, false))
            s = ck_error_set(err, CKPT_ERR_UNSUPPORTED, "tensor key '%s' is not valid UTF-8", f->name);
        else if (strcmp(f->name, "__metadata__") == 0)
            s = ck_error_set(err, CKPT_ERR_UNSUPPORTED, "a tensor named '__metadata__' clashes with the safetensors header key");
        else if (!ck_st_dtype_name((ckpt_dtype)f->t->dtype))
            s = ck_error_set(err, CKPT_ERR_UNSUPPORTED, "tensor '%s' has dtype %s, which safetensors cannot store (save as .pt)",
                             f->name, ckpt_dtype_name((ckpt_dtype)f->t->dtype));
        else if (!f->t->storage)
            s = ck_error_set(err, CKPT_ERR_UNSUPPORTED, "tensor '%s' has no storage", f->name);
        else if (f->t->numel && !f->t->storage->data)
            s = ck_error_set(err, CKPT_ERR_STATE, "tensor '%s' has no data (loaded with CKPT_LOAD_SKIP_DATA?)", f->name);
    }
    /* two paths may spell the same name ("a.b" as one key, or "a" then "b") */
    if (!s && x.count > 1) {
        char **names = malloc(x.count * sizeof *names);
        if (!names) s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
        for (size_t i = 0; names && i < x.count; i++) names[i] = x.items[i].name;
        if (names) {
            qsort(names, x.count, sizeof *names, cmp_names);
            for (size_t i = 1; i < x.count && !s; i++)
                if (strcmp(names[i - 1], names[i]) == 0)
                    s = ck_error_set(err, CKPT_ERR_UNSUPPORTED, "two tensors would both be named '%s' in the safetensors "
                                     "header (a key containing dots, or the same key in nested containers)", names[i]);
        }
        free(names);
    }
    if (!s) s = resolve_shared(&x, meta);
    if (!s) {
        size_t kept = 0;
        for (size_t i = 0; i < x.count; i++) kept += !x.items[i].dropped;
        plan->items = calloc(kept ? kept : 1, sizeof *plan->items);
        if (!plan->items) s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
        for (size_t i = 0; plan->items && i < x.count; i++) {
            found *f = &x.items[i];
            if (f->dropped) continue;
            ck_st_item *it = &plan->items[plan->count++];
            it->name = f->name;
            f->name = NULL;
            it->t = f->t;
            it->nbytes = f->t->numel * ckpt_dtype_itemsize((ckpt_dtype)f->t->dtype);
            it->rank = dtype_rank((ckpt_dtype)f->t->dtype);
        }
        if (plan->items) qsort(plan->items, plan->count, sizeof *plan->items, cmp_items);
    }
    /* the header */
    if (!s && json_object_size(meta) && json_object_set(doc, "__metadata__", meta) != 0)
        s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    uint64_t off = 0;
    for (size_t i = 0; !s && i < plan->count; i++) {
        const ck_st_item *it = &plan->items[i];
        json_t *e = json_object(), *shape = json_array(), *offs = json_array();
        bool ok = e && shape && offs;
        for (uint32_t d = 0; ok && d < it->t->ndim; d++) ok = json_array_append_new(shape, json_integer(it->t->shape[d])) == 0;
        ok = ok && json_array_append_new(offs, json_integer((json_int_t)off)) == 0 &&
             json_array_append_new(offs, json_integer((json_int_t)(off + it->nbytes))) == 0;
        ok = ok && json_object_set_new(e, "dtype", json_string(ck_st_dtype_name((ckpt_dtype)it->t->dtype))) == 0;
        ok = ok && json_object_set_new(e, "shape", shape) == 0;
        shape = NULL;
        ok = ok && json_object_set_new(e, "data_offsets", offs) == 0;
        offs = NULL;
        ok = ok && json_object_set_new(doc, it->name, e) == 0;
        e = NULL;
        json_decref(shape);
        json_decref(offs);
        if (!ok) s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
        if (ck_add_overflow_u64(off, it->nbytes, &off) || off > INT64_MAX)
            s = ck_error_set(err, CKPT_ERR_LIMIT, "tensor data larger than 2^63 bytes");
    }
    if (!s) {
        char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text) {
            s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory writing the safetensors header");
        } else {
            size_t n = strlen(text), padded = (n + 7) & ~(size_t)7;
            if (padded > CK_ST_MAX_HEADER) {
                s = ck_error_set(err, CKPT_ERR_LIMIT, "the safetensors header would be %zu bytes, above the format's "
                                 "limit of 100,000,000: too many tensors for one file (shard it)", padded);
            } else if (!(plan->header = malloc(padded))) {
                s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
            } else {
                memcpy(plan->header, text, n);
                memset(plan->header + n, ' ', padded - n); /* the reference writer pads with spaces to 8 */
                plan->header_len = padded;
            }
            json_free_t free_fn;
            json_get_alloc_funcs(NULL, &free_fn);
            free_fn(text);
        }
    }
    for (size_t i = 0; i < x.count; i++) free(x.items[i].name);
    free(x.items);
    ck_ptrmap_release(&x.skip);
    json_decref(meta);
    json_decref(doc);
    if (s) ck_st_plan_release(plan);
    return s;
}

/* ---- streaming ---- */

typedef struct {
    ck_sink *sink;
    ckpt_error *err;
    uint8_t *buf;
    size_t used, cap;
    unsigned swap;
    ckpt_status status;
} gather_ctx;

static void gather_flush(gather_ctx *g)
{
    if (g->status || !g->used) return;
    ck_swap_elements(g->buf, g->used, g->swap);
    g->status = ck_sink_write(g->sink, g->buf, g->used, g->err);
    g->used = 0;
}

static void gather_run(const uint8_t *p, size_t n, void *user)
{
    gather_ctx *g = user;
    while (n && !g->status) {
        size_t take = CK_MIN(n, g->cap - g->used);
        if (g->swap > 1) take -= take % g->swap; /* whole elements, so they can be swapped */
        if (!take) {
            gather_flush(g);
            continue;
        }
        memcpy(g->buf + g->used, p, take);
        g->used += take;
        p += take;
        n -= take;
        if (g->used == g->cap) gather_flush(g);
    }
}

ckpt_status ck_st_write(const ck_st_plan *plan, ck_sink *sink, ckpt_error *err)
{
    uint8_t len[8];
    ck_put_le64(len, plan->header_len);
    ckpt_status s = ck_sink_write(sink, len, 8, err);
    if (!s) s = ck_sink_write(sink, plan->header, plan->header_len, err);
    gather_ctx g = {sink, err, NULL, 0, 1u << 20, 0, CKPT_OK};
    bool little = ck_host_is_little_endian();
    for (size_t i = 0; i < plan->count && !s; i++) {
        const ckpt_tensor *t = plan->items[i].t;
        if (!t->numel) continue;
        unsigned swap = little ? 0 : ck_dtype_info_of((ckpt_dtype)t->dtype)->swap_unit;
        if (swap <= 1 && ckpt_tensor_is_contiguous(t)) { /* straight from the tensor's memory */
            s = ck_sink_write(sink, ckpt_tensor_data(t), (size_t)plan->items[i].nbytes, err);
            continue;
        }
        if (!g.buf && !(g.buf = malloc(g.cap))) {
            s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
            break;
        }
        g.swap = swap;
        ck_tensor_for_each_run(t, gather_run, &g);
        gather_flush(&g);
        s = g.status;
    }
    free(g.buf);
    return s;
}
