/*
 * model.c: model mode after the load: every opaque object must be an nn.Module; then the model is found
 * and its state dict computed with PyTorch's rules (torch/nn/modules/module.py state_dict and
 * _save_to_state_dict; docs/pytorch-format-notes.md §6):
 *   for each module, depth first from the model: its _parameters (None skipped), then its _buffers that
 *   are not None and not in _non_persistent_buffers_set, then each non-None child of _modules with the
 *   prefix "<name>.".
 * PyTorch recurses without remembering where it has been, so a submodule reachable at two paths is
 * listed under both; the walk here is iterative (the stack lives on the heap, bounded by the depth
 * limit), refuses cycles (PyTorch would recurse forever), and bounds the total work by the number of
 * nodes the file holds, so a small file whose modules share children at every level (a memo DAG that
 * would expand to 2^n entries) is refused instead of expanding.
 * TorchScript archives keep parameters and buffers as plain attributes; which is which comes from the
 * class declarations in code/ (ts_code.c), in attribute (slot) order, as torch.jit.load(f).state_dict().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "globals.h"
#include "model_internal.h"
#include "tensors.h"
#include "walk.h"

#define MAX_KEY ((size_t)1 << 20) /* longest state-dict key / module path */

/* nn.Module.__init__'s own attributes, over the versions (1.0 .. newest), and __getstate__'s leftovers. */
static const char *const internal_attrs[] = {
    "training", "_parameters", "_buffers", "_non_persistent_buffers_set", "_backward_pre_hooks",
    "_backward_hooks", "_is_full_backward_hook", "_forward_hooks", "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_state_dict_hooks",
    "_state_dict_pre_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks", "_modules",
    "_compiled_call_impl",
};

bool ck_module_internal_attr(const char *name, size_t len)
{
    for (size_t i = 0; i < CK_ARRAY_LEN(internal_attrs); i++)
        if (strlen(internal_attrs[i]) == len && memcmp(internal_attrs[i], name, len) == 0) return true;
    return false;
}

/* ---- what is a module ---- */

static const ckpt_value *state_of(const ckpt_value *v)
{
    if (!v || v->kind != CKPT_KIND_OBJECT || !v->u.obj->state || v->u.obj->state->kind != CKPT_KIND_DICT) return NULL;
    return v->u.obj->state;
}

static const ckpt_value *member(const ckpt_value *d, const char *name)
{
    return d && d->kind == CKPT_KIND_DICT ? ck_dict_get_str(d, name, strlen(name)) : NULL;
}

static bool is_dict(const ckpt_value *v) { return v && v->kind == CKPT_KIND_DICT; }

/* A pickled nn.Module: an object whose __dict__ has the _parameters, _buffers and _modules dicts. */
static bool is_pickled_module(const ckpt_value *v)
{
    const ckpt_value *st = state_of(v);
    return st && is_dict(member(st, "_parameters")) && is_dict(member(st, "_buffers")) && is_dict(member(st, "_modules"));
}

static bool is_module(const ckpt_checkpoint *c, const ckpt_value *v)
{
    if (c->format == CKPT_FORMAT_TORCHSCRIPT) {
        const ck_ts_class *cl = ck_ts_class_of(c, v);
        return cl && cl->module && state_of(v);
    }
    return is_pickled_module(v);
}

static bool is_tensor_like(const ckpt_value *v) { return v->kind == CKPT_KIND_TENSOR || v->kind == CKPT_KIND_SPARSE; }

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/*
 * A state dict: a dict of str keys whose values are tensors (an `..._extra_state` entry may be anything),
 * with at least one tensor, or state_dict()'s `_metadata` attribute.
 */
static bool is_state_dict(const ckpt_value *v)
{
    if (!is_dict(v)) return false;
    bool tensor = false;
    for (uint32_t i = 0; i < v->u.dict.len; i++) {
        const ckpt_value *k = v->u.dict.entries[i].key, *x = v->u.dict.entries[i].val;
        if (k->kind != CKPT_KIND_STR) return false;
        if (is_tensor_like(x)) tensor = true;
        else if (!ends_with(k->u.s.ptr, k->u.s.len, "_extra_state")) return false;
    }
    return tensor || (v->attrs && ck_dict_get_str(v->attrs, "_metadata", 9));
}

static ckpt_status oom(ckpt_checkpoint *c, ckpt_error *err) { return ck_out_of_memory(&c->store, err); }

/* ---- opaque objects must be modules ---- */

typedef struct {
    ckpt_status s;
    ckpt_error *err;
} opaque_ctx;

static ckpt_walk_action check_opaque(const char *path, size_t len, const ckpt_value *v, void *user)
{
    opaque_ctx *x = user;
    if (v->kind != CKPT_KIND_OBJECT || v->u.obj->entry != ck_model_opaque_entry()) return CKPT_WALK_CONTINUE;
    const ck_object *o = v->u.obj;
    if (is_pickled_module(v) && !o->list_items && !o->dict_items) return CKPT_WALK_CONTINUE;
    x->s = ck_error_set(x->err, CKPT_ERR_BLOCKED,
                        "model mode: the %s object at '%.*s' is not an nn.Module (a module's pickled state has "
                        "_parameters, _buffers and _modules); model mode reads only module classes without their "
                        "code. If '%s' is plain data you trust, allow it: C: ckpt_registry_add_safe_globals(reg, "
                        "(const char *[]){\"%s\"}, 1, err); CLI: --allow %s",
                        v->type_name, (int)CK_MIN(len, 200), len ? path : "<root>", v->type_name, v->type_name,
                        v->type_name);
    ck_error_set_global(x->err, o->module, o->name);
    return CKPT_WALK_STOP;
}

/* ---- finding the model ---- */

typedef struct {
    const ckpt_checkpoint *c;
    char *module_path, *sd_path;
    const ckpt_value *module, *sd;
    bool failed;
} find_ctx;

static char *dup_path(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static ckpt_walk_action find_first(const char *path, size_t len, const ckpt_value *v, void *user)
{
    find_ctx *x = user;
    if (is_module(x->c, v)) {
        x->module = v;
        if (!(x->module_path = dup_path(path, len))) x->failed = true;
        return CKPT_WALK_STOP;
    }
    if (!x->sd && is_state_dict(v)) {
        x->sd = v;
        if (!(x->sd_path = dup_path(path, len))) x->failed = true;
        return CKPT_WALK_SKIP; /* a module inside a state dict is not the model */
    }
    return CKPT_WALK_CONTINUE;
}

/* Keys of training checkpoints that hold the model or its state dict, in the order they are tried. */
static const char *const model_keys[] = {"model", "state_dict", "model_state_dict", "module", "net", "network",
                                         "model_state", "weights"};

static const char *const wrappers[] = {"torch.nn.parallel.data_parallel.DataParallel",
                                       "torch.nn.parallel.distributed.DistributedDataParallel"};

/* ---- the walk ---- */

typedef struct frame {
    const ckpt_value *mod;
    size_t prefix_len; /* path[0 .. prefix_len) is "<module path>." ("" for the model) */
    uint32_t next;     /* next entry of _modules (TorchScript: of the attributes) */
} frame;

typedef struct extract {
    ckpt_checkpoint *c;
    ck_model *m;
    ckpt_value *sd;
    size_t mods_cap;
    uint8_t *listed;   /* node id -> module already in m->modules */
    uint8_t *on_path;  /* node id -> module on the current path (a cycle if met again) */
    uint32_t nodes;
    char *path;
    size_t pcap;
    uint64_t work, max_work;
    uint64_t bytes, max_bytes; /* of keys and module paths: a deep nest repeats its prefixes */
    ckpt_error *err;
} extract;

static bool bit(const uint8_t *b, uint32_t id) { return b[id / 8] & (1u << (id % 8)); }
static void set_bit(uint8_t *b, uint32_t id) { b[id / 8] |= (uint8_t)(1u << (id % 8)); }
static void clear_bit(uint8_t *b, uint32_t id) { b[id / 8] &= (uint8_t)~(1u << (id % 8)); }

static const char *shown(const extract *x, size_t len) { return len ? x->path : "<model>"; }

static ckpt_status spend(extract *x)
{
    if (++x->work <= x->max_work) return CKPT_OK;
    return ck_error_set(x->err, CKPT_ERR_LIMIT,
                        "the module tree lists more than %llu modules and entries, more than the file's %u values can "
                        "describe without sharing submodules along many paths (a DAG that would expand to an "
                        "exponential state dict)",
                        (unsigned long long)x->max_work, x->nodes);
}

/* Counts bytes of keys and module paths: each repeats its parents' names, so a deep nest costs its
 * depth squared; refused past the budget with a message rather than by the allocator. */
static ckpt_status spend_bytes(extract *x, size_t n)
{
    x->bytes += n;
    if (x->bytes <= x->max_bytes) return CKPT_OK;
    return ck_error_set(x->err, CKPT_ERR_LIMIT,
                        "the state dict's keys and module paths add up to more than %llu bytes (half of "
                        "CKPT_LIMIT_MAX_ALLOC): modules nested this deep repeat their prefixes in every key and path",
                        (unsigned long long)x->max_bytes);
}

/* path[0 .. at) + text, NUL-terminated; returns the new length. */
static ckpt_status path_put(extract *x, size_t at, const char *text, size_t n, const char *tail, size_t *out)
{
    size_t tl = strlen(tail), need;
    if (ck_add_overflow_size(at, n, &need) || ck_add_overflow_size(need, tl + 1, &need) || need > MAX_KEY)
        return ck_error_set(x->err, CKPT_ERR_LIMIT, "state-dict key longer than %zu bytes under '%.200s'", MAX_KEY,
                            shown(x, at));
    if (need > x->pcap) {
        size_t cap = x->pcap ? x->pcap : 256;
        while (cap < need) cap *= 2;
        char *p = realloc(x->path, cap);
        if (!p) return ck_error_set(x->err, CKPT_ERR_NOMEM, "out of memory");
        x->path = p;
        x->pcap = cap;
    }
    memcpy(x->path + at, text, n);
    memcpy(x->path + at + n, tail, tl + 1);
    *out = at + n + tl;
    return CKPT_OK;
}

/* A state-dict entry: like torch's tensor.detach(), a new plain tensor sharing the storage. */
static ckpt_status detached(extract *x, const ckpt_value *v, ckpt_value **out)
{
    if (v->kind != CKPT_KIND_TENSOR) {
        *out = (ckpt_value *)v;
        return CKPT_OK;
    }
    ck_store *st = &x->c->store;
    ckpt_value *n = ck_new(st, CKPT_KIND_TENSOR);
    ckpt_tensor *t = ck_arena_alloc(&st->arena, sizeof *t, _Alignof(ckpt_tensor));
    if (!n || !t) return oom(x->c, x->err);
    *t = *v->u.tensor; /* shape/stride arrays, storage and quantizer are immutable: shared */
    t->requires_grad = false;
    t->extra = NULL;
    if (t->is_parameter || !t->subclass) {
        t->is_parameter = false;
        t->subclass = false;
        t->type_name = "torch.Tensor";
    } else {
        n->type_name = t->type_name; /* detach() keeps a tensor subclass */
    }
    n->u.tensor = t;
    *out = n;
    return CKPT_OK;
}

static ckpt_status emit(extract *x, size_t prefix_len, const ckpt_value *name, const ckpt_value *v, bool detach)
{
    ckpt_status s = spend(x);
    size_t klen;
    if (!s) s = path_put(x, prefix_len, name->u.s.ptr, name->u.s.len, "", &klen);
    if (!s) s = spend_bytes(x, klen);
    if (s) return s;
    ck_store *st = &x->c->store;
    ckpt_value *key = ck_new_bytes_kind(st, CKPT_KIND_STR, x->path, klen), *val = (ckpt_value *)v;
    if (!key) return oom(x->c, x->err);
    if (detach && (s = detached(x, v, &val))) return s;
    /* destination[prefix + name] = ...: an equal key keeps its place, as in the OrderedDict */
    return ck_dict_set(st, x->sd, key, val, x->err);
}

static ckpt_status list_module(extract *x, const ckpt_value *obj, size_t prefix_len)
{
    if (bit(x->listed, obj->id)) return CKPT_OK;
    set_bit(x->listed, obj->id);
    ck_model *m = x->m;
    ck_arena *a = &x->c->store.arena;
    if (m->nmodules == x->mods_cap) {
        size_t ncap = x->mods_cap ? x->mods_cap * 2 : 16;
        ck_model_module *n = ck_arena_grow(a, m->modules, x->mods_cap * sizeof *n, ncap * sizeof *n,
                                           _Alignof(ck_model_module));
        if (!n) return oom(x->c, x->err);
        m->modules = n;
        x->mods_cap = ncap;
    }
    ckpt_status s = spend_bytes(x, prefix_len);
    if (s) return s;
    const char *path = ck_arena_strndup(a, x->path, prefix_len ? prefix_len - 1 : 0);
    if (!path) return oom(x->c, x->err);
    m->modules[m->nmodules++] = (ck_model_module){path, obj, obj->type_name};
    return CKPT_OK;
}

static ckpt_status bad_member(extract *x, size_t prefix_len, const ckpt_value *obj, const char *what)
{
    return ck_error_set(x->err, CKPT_ERR_UNSUPPORTED, "module '%.200s' (%s): %s", prefix_len ? x->path : "<model>",
                        obj->type_name, what);
}

/* Names of a set of str (the non-persistent buffers), for lookups. */
static ckpt_status name_set(extract *x, const ckpt_value *set, ck_strmap *out, size_t prefix_len, const ckpt_value *obj)
{
    ck_strmap_init(out, NULL);
    if (!set || set->kind == CKPT_KIND_NONE) return CKPT_OK;
    if (set->kind != CKPT_KIND_SET && set->kind != CKPT_KIND_FROZENSET && set->kind != CKPT_KIND_LIST)
        return bad_member(x, prefix_len, obj, "_non_persistent_buffers_set is not a set");
    for (uint32_t i = 0; i < set->u.seq.len; i++) {
        const ckpt_value *k = set->u.seq.items[i];
        if (k->kind == CKPT_KIND_STR && !ck_strmap_put(out, k->u.s.ptr, k->u.s.len, (void *)k)) {
            ck_strmap_release(out);
            return ck_error_set(x->err, CKPT_ERR_NOMEM, "out of memory");
        }
    }
    return CKPT_OK;
}

/* _parameters, then persistent _buffers, of a pickled module. */
static ckpt_status emit_pickled(extract *x, const ckpt_value *obj, size_t prefix_len)
{
    const ckpt_value *st = state_of(obj);
    static const char *const parts[] = {"_parameters", "_buffers"};
    ck_strmap skip;
    ckpt_status s = name_set(x, member(st, "_non_persistent_buffers_set"), &skip, prefix_len, obj);
    for (int p = 0; p < 2 && !s; p++) {
        const ckpt_value *d = member(st, parts[p]);
        for (uint32_t i = 0; i < d->u.dict.len && !s; i++) {
            const ckpt_value *k = d->u.dict.entries[i].key, *v = d->u.dict.entries[i].val;
            char what[160];
            if (k->kind != CKPT_KIND_STR) {
                snprintf(what, sizeof what, "%s has a %s key (names are str)", parts[p], ck_type_name(k));
                s = bad_member(x, prefix_len, obj, what);
            } else if (v->kind == CKPT_KIND_NONE || (p == 1 && ck_strmap_get(&skip, k->u.s.ptr, k->u.s.len))) {
                continue;
            } else if (!is_tensor_like(v)) {
                snprintf(what, sizeof what, "%s['%.40s'] is a %s, not a tensor", parts[p], k->u.s.ptr, ck_type_name(v));
                s = bad_member(x, prefix_len, obj, what);
            } else {
                s = emit(x, prefix_len, k, v, true);
            }
        }
    }
    ck_strmap_release(&skip);
    return s;
}

/* TorchScript: the declared parameters, then the declared buffers, in attribute order. */
static ckpt_status emit_scripted(extract *x, const ckpt_value *obj, size_t prefix_len)
{
    const ck_ts_class *cl = ck_ts_class_of(x->c, obj);
    const ckpt_value *st = state_of(obj);
    for (int p = 0; p < 2; p++) {
        const ck_strmap *names = p == 0 ? &cl->params : &cl->buffers;
        for (uint32_t i = 0; i < st->u.dict.len; i++) {
            const ckpt_value *k = st->u.dict.entries[i].key, *v = st->u.dict.entries[i].val;
            if (k->kind != CKPT_KIND_STR || !ck_strmap_get(names, k->u.s.ptr, k->u.s.len)) continue;
            if (!is_tensor_like(v)) continue; /* torch lists tensor-valued slots only (an Optional[Tensor] None) */
            ckpt_status s = emit(x, prefix_len, k, v, true);
            if (s) return s;
        }
    }
    return CKPT_OK;
}

/* The next child module of f->mod from f->next on; *child NULL when there is none. */
static ckpt_status next_child(extract *x, frame *f, const ckpt_value **name, const ckpt_value **child)
{
    *child = NULL;
    const ckpt_value *st = state_of(f->mod);
    bool scripted = x->c->format == CKPT_FORMAT_TORCHSCRIPT;
    const ckpt_value *d = scripted ? st : member(st, "_modules");
    while (f->next < d->u.dict.len) {
        const ck_dict_entry *e = &d->u.dict.entries[f->next++];
        if (scripted) {
            if (e->key->kind == CKPT_KIND_STR && is_module(x->c, e->val)) {
                *name = e->key;
                *child = e->val;
                return CKPT_OK;
            }
            continue;
        }
        if (e->val->kind == CKPT_KIND_NONE) continue;
        char what[200];
        if (e->key->kind != CKPT_KIND_STR) {
            snprintf(what, sizeof what, "_modules has a %s key (names are str)", ck_type_name(e->key));
            return bad_member(x, f->prefix_len, f->mod, what);
        }
        if (!is_module(x->c, e->val)) {
            snprintf(what, sizeof what, "_modules['%.40s'] is a %s, not a module", e->key->u.s.ptr, ck_type_name(e->val));
            return bad_member(x, f->prefix_len, f->mod, what);
        }
        *name = e->key;
        *child = e->val;
        return CKPT_OK;
    }
    return CKPT_OK;
}

static ckpt_status visit(extract *x, const ckpt_value *obj, size_t prefix_len)
{
    ckpt_status s = spend(x);
    if (!s) s = list_module(x, obj, prefix_len);
    if (s) return s;
    return x->c->format == CKPT_FORMAT_TORCHSCRIPT ? emit_scripted(x, obj, prefix_len) : emit_pickled(x, obj, prefix_len);
}

static ckpt_status walk_modules(extract *x, const ckpt_value *model)
{
    uint64_t max_depth = x->c->limits.max_depth;
    size_t cap = 64, depth = 0;
    frame *stack = malloc(cap * sizeof *stack);
    if (!stack) return ck_error_set(x->err, CKPT_ERR_NOMEM, "out of memory");
    size_t plen;
    ckpt_status s = path_put(x, 0, "", 0, "", &plen);
    if (!s) s = visit(x, model, 0);
    if (!s) {
        set_bit(x->on_path, model->id);
        stack[depth++] = (frame){model, 0, 0};
    }
    while (!s && depth) {
        frame *f = &stack[depth - 1];
        const ckpt_value *name = NULL, *child;
        if ((s = next_child(x, f, &name, &child))) break;
        if (!child) {
            clear_bit(x->on_path, f->mod->id);
            depth--;
            continue;
        }
        size_t clen;
        if ((s = path_put(x, f->prefix_len, name->u.s.ptr, name->u.s.len, ".", &clen))) break;
        if (bit(x->on_path, child->id)) {
            s = ck_error_set(x->err, CKPT_ERR_PICKLE,
                             "module '%.200s' (%s) contains itself: a cycle in _modules, which PyTorch's state_dict() "
                             "would follow forever", x->path, child->type_name);
            break;
        }
        if (depth >= max_depth) {
            s = ck_error_set(x->err, CKPT_ERR_LIMIT, "modules nested deeper than %llu at '%.200s' (CKPT_LIMIT_MAX_DEPTH)",
                             (unsigned long long)max_depth, x->path);
            break;
        }
        if (depth == cap) {
            frame *n = realloc(stack, 2 * cap * sizeof *stack);
            if (!n) {
                s = ck_error_set(x->err, CKPT_ERR_NOMEM, "out of memory");
                break;
            }
            stack = n;
            cap *= 2;
        }
        if ((s = visit(x, child, clen))) break;
        set_bit(x->on_path, child->id);
        stack[depth++] = (frame){child, clen, 0};
    }
    free(stack);
    return s;
}

/* A state dict already in the file: its entries, without a prefix every key carries ("module."). */
static ckpt_status take_state_dict(extract *x, const ckpt_value *d)
{
    static const char prefix[] = "module.";
    size_t pl = sizeof prefix - 1;
    bool strip = d->u.dict.len > 0;
    for (uint32_t i = 0; i < d->u.dict.len && strip; i++) {
        const ckpt_value *k = d->u.dict.entries[i].key;
        strip = k->u.s.len > pl && memcmp(k->u.s.ptr, prefix, pl) == 0;
    }
    x->m->stripped = strip ? prefix : "";
    ck_store *st = &x->c->store;
    for (uint32_t i = 0; i < d->u.dict.len; i++) {
        const ckpt_value *k = d->u.dict.entries[i].key;
        ckpt_value *key = (ckpt_value *)k;
        if (strip && !(key = ck_new_bytes_kind(st, CKPT_KIND_STR, k->u.s.ptr + pl, k->u.s.len - pl)))
            return oom(x->c, x->err);
        ckpt_status s = ck_dict_set(st, x->sd, key, d->u.dict.entries[i].val, x->err);
        if (s) return s;
    }
    return CKPT_OK;
}

static bool class_is(const ckpt_value *v, const char *name) { return v->type_name && strcmp(v->type_name, name) == 0; }

static ckpt_status find_model(ckpt_checkpoint *c, const ckpt_value **out, char **path, bool *module, ckpt_error *err)
{
    const ckpt_value *root = c->root;
    *out = NULL;
    *path = NULL;
    if (is_module(c, root)) {
        *out = root;
        *module = true;
    } else if (is_dict(root)) {
        for (size_t i = 0; i < CK_ARRAY_LEN(model_keys) && !*out; i++) {
            const ckpt_value *v = member(root, model_keys[i]);
            if (v && (is_module(c, v) || is_state_dict(v))) {
                *out = v;
                *module = is_module(c, v);
                *path = dup_path(model_keys[i], strlen(model_keys[i]));
                if (!*path) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
            }
        }
        if (!*out && is_state_dict(root)) {
            *out = root;
            *module = false;
        }
    }
    if (!*out) {
        find_ctx f = {.c = c};
        ckpt_status s = ck_walk(root, c->store.next_id, c->limits.max_depth, find_first, &f, err);
        if (!s && f.failed) s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
        if (s) {
            free(f.module_path);
            free(f.sd_path);
            return s;
        }
        *out = f.module ? f.module : f.sd;
        *module = f.module != NULL;
        *path = f.module ? f.module_path : f.sd_path;
        free(f.module ? f.sd_path : f.module_path);
    }
    if (!*path && !(*path = dup_path("", 0))) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    return CKPT_OK;
}

ckpt_status ck_model_build(ckpt_checkpoint *c, ckpt_error *err)
{
    ck_arena *a = &c->store.arena;
    ck_model *m = ck_arena_zalloc(a, sizeof *m, _Alignof(ck_model));
    if (!m) return oom(c, err);
    m->stripped = "";
    c->model = m;
    if (!c->root) return CKPT_OK;
    ckpt_status s;
    if (c->format != CKPT_FORMAT_TORCHSCRIPT) {
        opaque_ctx o = {CKPT_OK, err};
        if ((s = ck_walk(c->root, c->store.next_id, c->limits.max_depth, check_opaque, &o, err))) return s;
        if (o.s) return o.s;
    } else if (c->root->kind == CKPT_KIND_OBJECT && !ck_ts_class_of(c, c->root)) {
        return ck_error_set(err, CKPT_ERR_UNSUPPORTED,
                            "TorchScript: the module class %s is not declared in the archive's code/ (its "
                            "__parameters__ and __buffers__ lines say which attributes are in the state dict)",
                            c->root->type_name);
    }
    const ckpt_value *target;
    char *path;
    bool module = false;
    if ((s = find_model(c, &target, &path, &module, err))) return s;
    if (!target) {
        free(path);
        return CKPT_OK;
    }
    /* DataParallel / DistributedDataParallel: the model is the wrapped `module` */
    for (size_t w = 0; module && w < CK_ARRAY_LEN(wrappers); w++) {
        const ckpt_value *inner = member(member(state_of(target), "_modules"), "module");
        if (!class_is(target, wrappers[w]) || !inner || !is_module(c, inner)) continue;
        size_t pl = strlen(path);
        char *np = malloc(pl + 8);
        if (!np) {
            free(path);
            return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
        }
        snprintf(np, pl + 8, "%s%smodule", path, pl ? "." : "");
        free(path);
        path = np;
        target = inner;
        w = (size_t)-1; /* nested wrappers */
    }
    m->path = ck_arena_strndup(a, path, strlen(path));
    free(path);
    if (!m->path) return oom(c, err);
    extract x = {.c = c, .m = m, .nodes = c->store.next_id, .max_bytes = c->limits.max_alloc / 2, .err = err};
    x.sd = ck_new_typed_dict(&c->store, "collections.OrderedDict", 0);
    if (!x.sd) return oom(c, err);
    if (module) {
        m->source = c->format == CKPT_FORMAT_TORCHSCRIPT ? CKPT_MODEL_TORCHSCRIPT : CKPT_MODEL_MODULE;
        x.max_work = 8 * (uint64_t)x.nodes + 65536;
        x.listed = calloc((size_t)x.nodes / 8 + 1, 1);
        x.on_path = calloc((size_t)x.nodes / 8 + 1, 1);
        s = x.listed && x.on_path ? walk_modules(&x, target) : ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
        free(x.listed);
        free(x.on_path);
        free(x.path);
    } else {
        m->source = CKPT_MODEL_STATE_DICT;
        s = take_state_dict(&x, target);
    }
    if (s) {
        m->source = CKPT_MODEL_NONE;
        m->nmodules = 0;
        return s;
    }
    m->state_dict = x.sd;
    return CKPT_OK;
}

/* ---- public accessors ---- */

static const ck_model *model_of(const ckpt_checkpoint *c)
{
    return c && c->model && c->model->source != CKPT_MODEL_NONE ? c->model : NULL;
}

ckpt_model_source ckpt_checkpoint_model_source(const ckpt_checkpoint *c)
{
    const ck_model *m = model_of(c);
    return m ? m->source : CKPT_MODEL_NONE;
}

const ckpt_value *ckpt_checkpoint_state_dict(const ckpt_checkpoint *c)
{
    const ck_model *m = model_of(c);
    return m ? m->state_dict : NULL;
}

const char *ckpt_checkpoint_model_path(const ckpt_checkpoint *c)
{
    const ck_model *m = model_of(c);
    return m ? m->path : NULL;
}

const char *ckpt_checkpoint_model_stripped_prefix(const ckpt_checkpoint *c)
{
    const ck_model *m = model_of(c);
    return m ? m->stripped : NULL;
}

size_t ckpt_checkpoint_num_modules(const ckpt_checkpoint *c)
{
    const ck_model *m = model_of(c);
    return m ? m->nmodules : 0;
}

const ckpt_value *ckpt_checkpoint_module(const ckpt_checkpoint *c, size_t i, const char **path)
{
    const ck_model *m = model_of(c);
    if (!m || i >= m->nmodules) return NULL;
    if (path) *path = m->modules[i].path;
    return m->modules[i].obj;
}
