/*
 * handler.c: running registry handlers (ckpt_global_handler) on the objects and calls of a finished
 * pickle, and the constructors handlers build values with.
 *
 * Handlers run after STOP, when every BUILD and APPEND has happened, in post-order: the nodes an object
 * contains are finished before it (except along a reference cycle, where the first node met is finished
 * last). The walk is iterative with a colour per node id, so it is linear in the nodes reachable from
 * the objects that have handlers. A handler's result replaces the node in place (same id), so every
 * reference to the object (memo, containers, other objects) sees the native value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"
#include "dtype.h"
#include "globals.h"
#include "pickle_opcodes.h"
#include "tensors.h"
#include "text.h"
#include "unpickler.h"
#include "util.h"

struct ckpt_handler_ctx {
    ck_unpickler *u;
    const ck_reg_entry *entry;
    uint32_t first_new_id; /* nodes at or above this id were made by handlers: they may be filled in */
};

/* Child i of a node for the finishing walk (containers, dict keys and values, object parts). */
static bool raw_child(const ckpt_value *v, size_t i, ckpt_value **out)
{
    *out = NULL;
    switch (v->kind) {
    case CKPT_KIND_LIST:
    case CKPT_KIND_TUPLE:
    case CKPT_KIND_SET:
    case CKPT_KIND_FROZENSET:
        if (i < v->u.seq.len) { *out = v->u.seq.items[i]; return true; }
        i -= v->u.seq.len;
        break;
    case CKPT_KIND_DICT:
        if (i / 2 < v->u.dict.len) {
            *out = i % 2 ? v->u.dict.entries[i / 2].val : v->u.dict.entries[i / 2].key;
            return true;
        }
        i -= (size_t)v->u.dict.len * 2;
        break;
    case CKPT_KIND_OBJECT:
    case CKPT_KIND_CALL:
        if (i < 5) {
            const ck_object *o = v->u.obj;
            ckpt_value *parts[5] = {o->args, o->kwargs, o->state, o->list_items, o->dict_items};
            *out = parts[i];
            return true;
        }
        i -= 5;
        break;
    case CKPT_KIND_TENSOR:
        if (i == 0) { *out = v->u.tensor->extra; return true; }
        i--;
        break;
    default: break;
    }
    if (i == 0) { *out = v->attrs; return true; }
    return false;
}

static const ck_pending *find_pending(const ck_pending *list, size_t n, const ckpt_value *node)
{
    size_t lo = 0, hi = n; /* creation order is id order */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (list[mid].node->id < node->id) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && list[lo].node == node ? &list[lo] : NULL;
}

static ckpt_status finish_node(ck_unpickler *u, ckpt_value *node, const ck_pending *pend, uint32_t first_new,
                               ckpt_error *err)
{
    node->flags &= (uint8_t)~CK_NF_PENDING;
    const ck_reg_entry *e = node->u.obj->entry;
    if (!e || !e->handler) return CKPT_OK;
    struct ckpt_handler_ctx ctx = {u, e, first_new};
    ckpt_error local;
    ckpt_error *he = err ? err : &local;
    ck_error_init(he);
    ckpt_value *out = NULL;
    ckpt_status s = e->handler(&ctx, node, e->handler_user, &out, he);
    if (s) {
        char detail[CK_ERROR_DETAIL_MAX];
        snprintf(detail, sizeof detail, "%s", he->code ? he->detail : "the handler failed without a message");
        ck_error_set(err, s, "handler of %s.%s (for the %s at byte %llu) failed: %s", node->u.obj->module,
                     node->u.obj->name, pend ? ck_pickle_opcode_name(pend->op) : "object",
                     pend ? (unsigned long long)pend->offset : 0ull, detail);
        if (pend) ck_error_at_offset(err, (int64_t)pend->offset, pend->op);
        return s;
    }
    if (out && out != node) {
        uint32_t id = node->id;
        *node = *out; /* the node becomes the native value wherever it is referenced */
        node->id = id;
        node->flags &= (uint8_t)~CK_NF_PENDING;
    }
    return CKPT_OK;
}

typedef struct {
    ckpt_value *v;
    size_t next;
} frame;

ckpt_status ck_run_handlers(ck_unpickler *u, const ck_pending *list, size_t n, ckpt_error *err)
{
    uint32_t nodes = u->store->next_id;
    enum { WHITE = 0, GRAY = 1, BLACK = 2 };
    uint8_t *color = calloc(nodes ? nodes : 1, 1);
    size_t cap = 64, depth = 0;
    frame *stack = malloc(cap * sizeof *stack);
    ckpt_status s = CKPT_OK;
    if (!color || !stack) {
        s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory running handlers");
        goto done;
    }
    for (size_t k = 0; k < n && !s; k++) {
        ckpt_value *root = list[k].node;
        if (color[root->id] != WHITE) continue;
        color[root->id] = GRAY;
        stack[depth++] = (frame){root, 0};
        while (depth && !s) {
            frame *f = &stack[depth - 1];
            ckpt_value *c;
            if (raw_child(f->v, f->next++, &c)) {
                if (!c || c->id >= nodes || color[c->id] != WHITE) continue;
                color[c->id] = GRAY;
                if (depth == cap) {
                    frame *ns = realloc(stack, 2 * cap * sizeof *stack);
                    if (!ns) {
                        s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory running handlers");
                        break;
                    }
                    stack = ns;
                    cap *= 2;
                }
                stack[depth++] = (frame){c, 0};
                continue;
            }
            ckpt_value *v = f->v;
            depth--;
            color[v->id] = BLACK;
            if ((v->flags & CK_NF_PENDING) && (v->kind == CKPT_KIND_OBJECT || v->kind == CKPT_KIND_CALL))
                s = finish_node(u, v, find_pending(list, n, v), nodes, err);
        }
        depth = 0;
    }
done:
    free(color);
    free(stack);
    return s;
}

bool ck_reaches_entry(const ck_store *st, const ckpt_value *root, const ck_reg_entry *entry)
{
    uint32_t nodes = st->next_id;
    uint8_t *seen = calloc(nodes / 8 + 1, 1);
    size_t cap = 64, depth = 0;
    frame *stack = malloc(cap * sizeof *stack);
    bool found = true; /* out of memory: report it found, so the caller refuses (fails closed) */
    if (!seen || !stack) goto done;
    found = false;
    stack[depth++] = (frame){(ckpt_value *)root, 0};
    seen[root->id / 8] |= (uint8_t)(1u << (root->id % 8));
    while (depth && !found) {
        frame *f = &stack[depth - 1];
        if (f->v->kind == CKPT_KIND_GLOBAL && f->v->u.global.entry == entry) {
            found = true;
            break;
        }
        ckpt_value *c;
        if (!raw_child(f->v, f->next++, &c)) {
            depth--;
            continue;
        }
        if (!c || c->id >= nodes || (seen[c->id / 8] & (1u << (c->id % 8)))) continue;
        seen[c->id / 8] |= (uint8_t)(1u << (c->id % 8));
        if (depth == cap) {
            frame *ns = realloc(stack, 2 * cap * sizeof *stack);
            if (!ns) {
                found = true;
                break;
            }
            stack = ns;
            cap *= 2;
        }
        stack[depth++] = (frame){c, 0};
    }
done:
    free(seen);
    free(stack);
    return found;
}

/* ---- constructors for handlers ---- */

ck_store *ck_handler_store(ckpt_handler_ctx *ctx) { return ctx->u->store; }

ckpt_value *ckpt_handler_new_none(ckpt_handler_ctx *ctx) { return ctx ? ck_new(ck_handler_store(ctx), CKPT_KIND_NONE) : NULL; }
ckpt_value *ckpt_handler_new_bool(ckpt_handler_ctx *ctx, bool b) { return ctx ? ck_new_bool(ck_handler_store(ctx), b) : NULL; }
ckpt_value *ckpt_handler_new_int(ckpt_handler_ctx *ctx, int64_t v) { return ctx ? ck_new_int(ck_handler_store(ctx), v) : NULL; }
ckpt_value *ckpt_handler_new_float(ckpt_handler_ctx *ctx, double v) { return ctx ? ck_new_float(ck_handler_store(ctx), v) : NULL; }

ckpt_value *ckpt_handler_new_str(ckpt_handler_ctx *ctx, const char *s, size_t len)
{
    if (!ctx || (!s && len) || !ck_utf8_valid((const uint8_t *)(s ? s : ""), len, true)) return NULL;
    return ck_new_bytes_kind(ck_handler_store(ctx), CKPT_KIND_STR, s ? s : "", len);
}

ckpt_value *ckpt_handler_new_bytes(ckpt_handler_ctx *ctx, const void *p, size_t len)
{
    if (!ctx || (!p && len)) return NULL;
    return ck_new_bytes_kind(ck_handler_store(ctx), CKPT_KIND_BYTES, p ? p : "", len);
}

ckpt_value *ckpt_handler_new_container(ckpt_handler_ctx *ctx, ckpt_kind kind)
{
    if (!ctx) return NULL;
    switch (kind) {
    case CKPT_KIND_LIST:
    case CKPT_KIND_TUPLE:
    case CKPT_KIND_SET: return ck_new_seq(ck_handler_store(ctx), kind, 0);
    case CKPT_KIND_DICT: return ck_new_dict(ck_handler_store(ctx), 0);
    default: return NULL;
    }
}

static ckpt_status check_own(ckpt_handler_ctx *ctx, const ckpt_value *v, ckpt_error *err)
{
    if (!ctx || !v) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL handler context or value");
    if (v->id < ctx->first_new_id)
        return ck_error_set(err, CKPT_ERR_INVALID_ARG,
                            "a handler may only fill in values it created (values read from the file are immutable)");
    return CKPT_OK;
}

ckpt_status ckpt_handler_append(ckpt_handler_ctx *ctx, ckpt_value *c, const ckpt_value *item, ckpt_error *err)
{
    ckpt_status s = check_own(ctx, c, err);
    if (s) return s;
    if (!item) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL item");
    if (c->kind == CKPT_KIND_SET) return ck_set_add(ck_handler_store(ctx), c, (ckpt_value *)item, err);
    if (c->kind != CKPT_KIND_LIST && c->kind != CKPT_KIND_TUPLE)
        return ck_error_set(err, CKPT_ERR_TYPE, "cannot append to a %s", ck_type_name(c));
    return ck_seq_push(ck_handler_store(ctx), c, (ckpt_value *)item, err);
}

ckpt_status ckpt_handler_dict_set(ckpt_handler_ctx *ctx, ckpt_value *d, const ckpt_value *key, const ckpt_value *val,
                                  ckpt_error *err)
{
    ckpt_status s = check_own(ctx, d, err);
    if (s) return s;
    if (!key || !val) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL key or value");
    if (d->kind != CKPT_KIND_DICT) return ck_error_set(err, CKPT_ERR_TYPE, "cannot set an item on a %s", ck_type_name(d));
    return ck_dict_set(ck_handler_store(ctx), d, (ckpt_value *)key, (ckpt_value *)val, err);
}

ckpt_status ckpt_handler_set_type_name(ckpt_handler_ctx *ctx, ckpt_value *v, const char *type_name, ckpt_error *err)
{
    ckpt_status s = check_own(ctx, v, err);
    if (s) return s;
    if (!type_name) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL type name");
    char *copy = ck_arena_strndup(&ck_handler_store(ctx)->arena, type_name, strlen(type_name));
    if (!copy) return ck_out_of_memory(ck_handler_store(ctx), err);
    v->type_name = copy;
    if (v->kind == CKPT_KIND_TENSOR) v->u.tensor->type_name = copy;
    return CKPT_OK;
}

ckpt_status ckpt_handler_new_tensor(ckpt_handler_ctx *ctx, ckpt_dtype dtype, size_t ndim, const int64_t *shape,
                                    const int64_t *stride, const void *data, size_t nbytes, ckpt_value **out,
                                    ckpt_error *err)
{
    if (!ctx || !out || (ndim && !shape) || (nbytes && !data))
        return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    ck_unpickler *u = ctx->u;
    ck_store *st = u->store;
    size_t itemsize = ckpt_dtype_itemsize(dtype);
    if (!itemsize) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "invalid dtype %d", (int)dtype);
    if (ndim > u->limits->max_ndim)
        return ck_error_set(err, CKPT_ERR_LIMIT, "%zu dimensions exceed CKPT_LIMIT_MAX_NDIM (%llu)", ndim,
                            (unsigned long long)u->limits->max_ndim);
    if (nbytes % itemsize)
        return ck_error_set(err, CKPT_ERR_TENSOR, "%zu bytes is not a whole number of %s elements", nbytes,
                            ckpt_dtype_name(dtype));
    ckpt_value *v = ck_new(st, CKPT_KIND_TENSOR);
    ckpt_tensor *t = ck_arena_zalloc(&st->arena, sizeof *t, _Alignof(ckpt_tensor));
    ckpt_storage *sg = ck_arena_zalloc(&st->arena, sizeof *sg, _Alignof(ckpt_storage));
    int64_t *dims = ndim ? ck_arena_alloc(&st->arena, 2 * ndim * sizeof *dims, _Alignof(int64_t)) : NULL;
    if (!v || !t || !sg || (ndim && !dims)) return ck_out_of_memory(st, err);
    sg->key = "";
    sg->location = "cpu";
    sg->nbytes = nbytes;
    sg->numel = nbytes / itemsize;
    sg->dtype = (uint8_t)dtype;
    sg->flags = CK_SF_RESOLVED | CK_SF_INLINE;
    t->storage = sg;
    t->dtype = (uint8_t)dtype;
    t->ndim = (uint32_t)ndim;
    t->type_name = "torch.Tensor";
    if (ndim) {
        t->shape = dims;
        t->stride = dims + ndim;
        memcpy(t->shape, shape, ndim * sizeof *dims);
        if (stride) {
            memcpy(t->stride, stride, ndim * sizeof *dims);
        } else {
            int64_t acc = 1;
            for (size_t i = ndim; i-- > 0;) {
                t->stride[i] = acc;
                if (shape[i] > 0 && ck_mul_overflow_i64(acc, shape[i], &acc))
                    return ck_error_set(err, CKPT_ERR_TENSOR, "tensor size overflows");
            }
        }
    }
    ckpt_status s = ck_tensor_validate(t, (uint32_t)CK_MIN(u->limits->max_ndim, UINT32_MAX), err);
    if (s) return s;
    if (!(u->load_flags & CKPT_LOAD_SKIP_DATA) && nbytes) {
        uint8_t *copy = ck_arena_alloc_large(&st->arena, nbytes);
        if (!copy) return ck_out_of_memory(st, err);
        memcpy(copy, data, nbytes);
        /* little-endian in, host order kept */
        if (!ck_host_is_little_endian()) ck_swap_elements(copy, nbytes, ck_dtype_swap_unit(dtype));
        sg->data = copy;
    }
    v->u.tensor = t;
    *out = v;
    return CKPT_OK;
}
