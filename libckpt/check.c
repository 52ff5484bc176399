/*
 * check.c: comparing a checkpoint read in model mode with a schema (include/ckpt/model.h), all at
 * once: the keys load_state_dict(strict=True) would call missing or unexpected, the shapes it would call
 * a size mismatch, dtypes that differ, and for module trees the attributes each pickled module lacks
 * or carries against its class (what "'ConvNormAct' object has no attribute 'aa'" reports one at a
 * time), plus pickled classes the schema does not know. Every pass is linear: the state dict and module
 * list were computed during the load; lookups go through hash maps. The report owns copies of every
 * string, so it outlives the checkpoint and the schema.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"
#include "schema_internal.h"
#include "tensors.h"

struct ckpt_finding {
    ckpt_finding_kind kind;
    const char *key;       /* key, or module path */
    const char *cls;
    const char *attribute;
    const char *hint;
    bool has_expected_shape, has_found_shape;
    size_t expected_ndim, found_ndim;
    const int64_t *expected_shape, *found_shape;
    ckpt_dtype expected_dtype, found_dtype;
    const char *found_type;
};

struct ckpt_report {
    ck_arena arena;
    ckpt_finding *items[CKPT_FINDING_KIND_COUNT_];
    size_t count[CKPT_FINDING_KIND_COUNT_], cap[CKPT_FINDING_KIND_COUNT_];
};

static const char *const kind_names[CKPT_FINDING_KIND_COUNT_] = {
    "missing_keys", "unexpected_keys", "shape_mismatches", "dtype_mismatches",
    "missing_attributes", "unexpected_attributes", "unknown_classes",
};

const char *ckpt_finding_kind_name(ckpt_finding_kind kind)
{
    return (unsigned)kind < CKPT_FINDING_KIND_COUNT_ ? kind_names[kind] : "unknown";
}

/* ---- what the checker asks of a loaded checkpoint ---- */

ckpt_status ck_model_of(const ckpt_checkpoint *ck, ckpt_error *err)
{
    if (!ck) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL checkpoint");
    if (!ck->model)
        return ck_error_set(err, CKPT_ERR_STATE, "the checkpoint was not loaded in model mode: load it with "
                            "CKPT_LOAD_MODEL to extract its state dict and modules");
    if (ck->model->source == CKPT_MODEL_NONE || !ck->model->state_dict)
        return ck_error_set(err, CKPT_ERR_NOT_FOUND, "no model and no state dict found in the checkpoint (model mode "
                            "looks at the root, the keys 'model', 'state_dict', 'model_state_dict'... and then the "
                            "first nn.Module or state dict in walk order)");
    return CKPT_OK;
}

char *ck_module_class_name(const ckpt_checkpoint *ck, const ckpt_value *obj)
{
    const char *t = obj->type_name ? obj->type_name : "?";
    size_t n = strlen(t);
    char *out = malloc(n + 1);
    if (!out) return NULL;
    if (ck->format != CKPT_FORMAT_TORCHSCRIPT) {
        memcpy(out, t, n + 1);
        return out;
    }
    /* __torch__.torch.nn.modules.linear.___torch_mangle_0.Linear -> torch.nn.modules.linear.Linear */
    size_t o = 0;
    const char *p = t;
    if (strncmp(p, "__torch__.", 10) == 0) p += 10;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (!(len > 15 && strncmp(p, "___torch_mangle_", 16) == 0 && dot)) {
            if (o) out[o++] = '.';
            memcpy(out + o, p, len);
            o += len;
        }
        p += len + (dot ? 1 : 0);
        if (!dot) break;
    }
    out[o] = '\0';
    return out;
}

ckpt_status ck_module_attrs(const ckpt_checkpoint *ck, const ckpt_value *obj, ck_attr_fn fn, void *user)
{
    const ckpt_value *st = obj->kind == CKPT_KIND_OBJECT ? obj->u.obj->state : NULL;
    if (!st || st->kind != CKPT_KIND_DICT) return CKPT_OK;
    for (uint32_t i = 0; i < st->u.dict.len; i++) {
        const ckpt_value *k = st->u.dict.entries[i].key;
        if (k->kind != CKPT_KIND_STR || ck_module_internal_attr(k->u.s.ptr, k->u.s.len)) continue;
        ckpt_status s = fn(k->u.s.ptr, k->u.s.len, user);
        if (s) return s;
    }
    if (ck->format == CKPT_FORMAT_TORCHSCRIPT) return CKPT_OK; /* scripted attributes are all in the state */
    static const char *const parts[] = {"_parameters", "_buffers", "_modules"};
    for (size_t p = 0; p < 3; p++) {
        const ckpt_value *d = ck_dict_get_str(st, parts[p], strlen(parts[p]));
        if (!d || d->kind != CKPT_KIND_DICT) continue;
        for (uint32_t i = 0; i < d->u.dict.len; i++) {
            const ckpt_value *k = d->u.dict.entries[i].key;
            if (k->kind != CKPT_KIND_STR) continue;
            ckpt_status s = fn(k->u.s.ptr, k->u.s.len, user);
            if (s) return s;
        }
    }
    return CKPT_OK;
}

/* ---- building the report ---- */

static ckpt_status report_oom(ckpt_report *r, ckpt_error *err)
{
    if (r->arena.over_budget) return ck_error_set(err, CKPT_ERR_LIMIT, "report larger than its allocation limit");
    return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
}

static ckpt_finding *add(ckpt_report *r, ckpt_finding_kind kind)
{
    if (r->count[kind] == r->cap[kind]) {
        size_t ncap = r->cap[kind] ? r->cap[kind] * 2 : 16;
        ckpt_finding *g = ck_arena_grow(&r->arena, r->items[kind], r->cap[kind] * sizeof *g, ncap * sizeof *g,
                                        _Alignof(ckpt_finding));
        if (!g) return NULL;
        r->items[kind] = g;
        r->cap[kind] = ncap;
    }
    ckpt_finding *f = &r->items[kind][r->count[kind]++];
    memset(f, 0, sizeof *f);
    f->kind = kind;
    return f;
}

static const char *copy(ckpt_report *r, const char *s, size_t n) { return ck_arena_strndup(&r->arena, s, n); }
static const char *copyz(ckpt_report *r, const char *s) { return s ? copy(r, s, strlen(s)) : NULL; }

static const int64_t *copy_shape(ckpt_report *r, const int64_t *dims, size_t n, bool *ok)
{
    *ok = true;
    if (!n) return NULL;
    int64_t *d = ck_arena_alloc(&r->arena, n * sizeof *d, _Alignof(int64_t));
    if (!d) {
        *ok = false;
        return NULL;
    }
    memcpy(d, dims, n * sizeof *d);
    return d;
}

static bool same_shape(const int64_t *a, size_t na, const int64_t *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

static ckpt_status check_keys(ckpt_report *r, const ckpt_value *sd, const ckpt_schema *s, ckpt_error *err)
{
    for (size_t i = 0; i < s->nkeys; i++) {
        const ck_schema_key *k = &s->keys[i];
        if (ck_dict_get_str(sd, k->name, k->len)) continue;
        ckpt_finding *f = add(r, CKPT_FINDING_MISSING_KEY);
        if (!f || !(f->key = copy(r, k->name, k->len))) return report_oom(r, err);
    }
    for (uint32_t i = 0; i < sd->u.dict.len; i++) {
        const ckpt_value *key = sd->u.dict.entries[i].key, *v = sd->u.dict.entries[i].val;
        if (key->kind != CKPT_KIND_STR) continue;
        const ck_schema_key *k = ck_strmap_get(&s->key_index, key->u.s.ptr, key->u.s.len);
        if (!k) {
            ckpt_finding *f = add(r, CKPT_FINDING_UNEXPECTED_KEY);
            if (!f || !(f->key = copy(r, key->u.s.ptr, key->u.s.len))) return report_oom(r, err);
            continue;
        }
        size_t nd = 0;
        const int64_t *shape = NULL;
        ckpt_dtype dt = CKPT_DTYPE_INVALID;
        bool tensor = ck_value_shape_dtype(v, &nd, &shape, &dt) == CKPT_OK;
        bool ok = true;
        if (k->has_shape && (!tensor || !same_shape(k->shape, k->ndim, shape, nd))) {
            ckpt_finding *f = add(r, CKPT_FINDING_SHAPE_MISMATCH);
            if (!f || !(f->key = copy(r, key->u.s.ptr, key->u.s.len))) return report_oom(r, err);
            f->has_expected_shape = true;
            f->expected_ndim = k->ndim;
            f->expected_shape = copy_shape(r, k->shape, k->ndim, &ok);
            if (ok && tensor) {
                f->has_found_shape = true;
                f->found_ndim = nd;
                f->found_shape = copy_shape(r, shape, nd, &ok);
            }
            if (!ok) return report_oom(r, err);
        }
        if (k->has_dtype && (!tensor || k->dtype != dt)) {
            ckpt_finding *f = add(r, CKPT_FINDING_DTYPE_MISMATCH);
            if (!f || !(f->key = copy(r, key->u.s.ptr, key->u.s.len))) return report_oom(r, err);
            f->expected_dtype = k->dtype;
            f->found_dtype = dt;
            if (!tensor && !(f->found_type = copyz(r, ck_type_name(v)))) return report_oom(r, err);
        }
    }
    return CKPT_OK;
}

typedef struct {
    const char *name;
    size_t len;
} attr_name;

typedef struct {
    ck_strmap names; /* the module's attributes (malloc'd map) */
    attr_name *order;
    size_t n, cap;
} attr_set;

static ckpt_status collect_attr(const char *name, size_t len, void *user)
{
    attr_set *a = user;
    void *old = NULL;
    if (!ck_strmap_add(&a->names, name, len, (void *)name, &old)) return CKPT_ERR_NOMEM;
    if (old) return CKPT_OK;
    if (a->n == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 16;
        attr_name *g = realloc(a->order, ncap * sizeof *g);
        if (!g) return CKPT_ERR_NOMEM;
        a->order = g;
        a->cap = ncap;
    }
    a->order[a->n++] = (attr_name){name, len};
    return CKPT_OK;
}

/* The hint for an unknown class whose name the schema knows in another module. */
static const char *move_hint(ckpt_report *r, const ckpt_schema *s, const char *cls)
{
    const char *dot = strrchr(cls, '.');
    const char *shortn = dot ? dot + 1 : cls;
    const ck_schema_class *c = ck_strmap_get(&s->short_index, shortn, strlen(shortn));
    if (!c || strcmp(c->name, cls) == 0) return NULL;
#define HINT_FMT "the schema has %s: if the class moved there, read the old name as the new class with the " \
                 "registry alias %s=%s (C: ckpt_registry_add_alias; CLI: --allow %s=%s)"
    int n = snprintf(NULL, 0, HINT_FMT, c->name, cls, c->name, cls, c->name);
    char *h = n > 0 ? ck_arena_alloc(&r->arena, (size_t)n + 1, 1) : NULL;
    if (h) snprintf(h, (size_t)n + 1, HINT_FMT, c->name, cls, c->name, cls, c->name);
    return h;
#undef HINT_FMT
}

static ckpt_status check_classes(ckpt_report *r, const ckpt_checkpoint *ck, const ckpt_schema *s, ckpt_error *err)
{
    const ck_model *m = ck->model;
    ck_strmap reported; /* unknown classes already listed */
    ck_strmap_init(&reported, &r->arena);
    ckpt_status st = CKPT_OK;
    char *cls = NULL;
    attr_set a = {0};
    for (size_t i = 0; i < m->nmodules && !st; i++) {
        const ck_model_module *mod = &m->modules[i];
        free(cls);
        if (!(cls = ck_module_class_name(ck, mod->obj))) {
            st = report_oom(r, err);
            break;
        }
        size_t cl = strlen(cls);
        const ck_schema_class *sc = ck_strmap_get(&s->class_index, cls, cl);
        if (!sc) {
            if (ck_strmap_get(&reported, cls, cl)) continue;
            ckpt_finding *f = add(r, CKPT_FINDING_UNKNOWN_CLASS);
            const char *kept = f ? copy(r, cls, cl) : NULL;
            if (!f || !kept || !(f->key = copyz(r, mod->path)) || !ck_strmap_put(&reported, kept, cl, (void *)kept)) {
                st = report_oom(r, err);
                break;
            }
            f->cls = kept;
            f->hint = move_hint(r, s, cls);
            continue;
        }
        ck_strmap_init(&a.names, NULL);
        a.n = 0;
        if ((st = ck_module_attrs(ck, mod->obj, collect_attr, &a))) {
            ck_strmap_release(&a.names);
            st = report_oom(r, err);
            break;
        }
        /* what the current class expects and the pickle lacks, then what the pickle has and the class does not */
        for (size_t k = 0; k < sc->nattrs && !st; k++) { /* the required ones */
            const ck_schema_attr *want = &sc->attrs[k];
            if (ck_strmap_get(&a.names, want->name, want->len)) continue;
            ckpt_finding *f = add(r, CKPT_FINDING_MISSING_ATTRIBUTE);
            if (!f || !(f->key = copyz(r, mod->path)) || !(f->cls = copy(r, cls, cl)) ||
                !(f->attribute = copy(r, want->name, want->len)))
                st = report_oom(r, err);
        }
        for (size_t k = 0; k < a.n && !st; k++) {
            const attr_name *an = &a.order[k];
            if (ck_strmap_get(&sc->attr_set, an->name, an->len)) continue;
            ckpt_finding *f = add(r, CKPT_FINDING_UNEXPECTED_ATTRIBUTE);
            if (!f || !(f->key = copyz(r, mod->path)) || !(f->cls = copy(r, cls, cl)) || !(f->attribute = copy(r, an->name, an->len)))
                st = report_oom(r, err);
        }
        ck_strmap_release(&a.names);
    }
    free(cls);
    free(a.order);
    return st;
}

ckpt_status ckpt_check(const ckpt_checkpoint *ck, const ckpt_schema *s, ckpt_report **out, ckpt_error *err)
{
    ckpt_error local;
    if (!err) { ck_error_init(&local); err = &local; }
    if (!out) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!s) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL schema");
    ckpt_status st = ck_model_of(ck, err);
    if (st) return st;
    ckpt_report *r = calloc(1, sizeof *r);
    if (!r) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    ck_arena_init(&r->arena, UINT64_MAX);
    st = check_keys(r, ck->model->state_dict, s, err);
    if (!st && s->has_classes) st = check_classes(r, ck, s, err);
    if (st) {
        ckpt_report_free(r);
        return st;
    }
    *out = r;
    return CKPT_OK;
}

void ckpt_report_free(ckpt_report *r)
{
    if (!r) return;
    ck_arena_release(&r->arena);
    free(r);
}

size_t ckpt_report_count(const ckpt_report *r, ckpt_finding_kind kind)
{
    return r && (unsigned)kind < CKPT_FINDING_KIND_COUNT_ ? r->count[kind] : 0;
}

size_t ckpt_report_total(const ckpt_report *r)
{
    size_t n = 0;
    for (int k = 0; r && k < CKPT_FINDING_KIND_COUNT_; k++) n += r->count[k];
    return n;
}

const ckpt_finding *ckpt_report_finding(const ckpt_report *r, ckpt_finding_kind kind, size_t i)
{
    if (!r || (unsigned)kind >= CKPT_FINDING_KIND_COUNT_ || i >= r->count[kind]) return NULL;
    return &r->items[kind][i];
}

ckpt_finding_kind ckpt_finding_kind_of(const ckpt_finding *f) { return f ? f->kind : CKPT_FINDING_KIND_COUNT_; }
const char *ckpt_finding_key(const ckpt_finding *f) { return f ? f->key : NULL; }
const char *ckpt_finding_class(const ckpt_finding *f) { return f ? f->cls : NULL; }
const char *ckpt_finding_attribute(const ckpt_finding *f) { return f ? f->attribute : NULL; }
const char *ckpt_finding_hint(const ckpt_finding *f) { return f ? f->hint : NULL; }
const char *ckpt_finding_found_type(const ckpt_finding *f) { return f ? f->found_type : NULL; }

bool ckpt_finding_shape(const ckpt_finding *f, bool found, size_t *ndim, const int64_t **dims)
{
    bool has = f && (found ? f->has_found_shape : f->has_expected_shape);
    if (ndim) *ndim = has ? (found ? f->found_ndim : f->expected_ndim) : 0;
    if (dims) *dims = has ? (found ? f->found_shape : f->expected_shape) : NULL;
    return has;
}

ckpt_dtype ckpt_finding_dtype(const ckpt_finding *f, bool found)
{
    if (!f) return CKPT_DTYPE_INVALID;
    return found ? f->found_dtype : f->expected_dtype;
}

/* ---- JSON ---- */

static json_t *jshape(const int64_t *d, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_integer(d[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *jstr0(const char *s) { return ck_json_str(s, strlen(s)); }

static json_t *finding_json(const ckpt_finding *f)
{
    switch (f->kind) {
    case CKPT_FINDING_MISSING_KEY:
    case CKPT_FINDING_UNEXPECTED_KEY: return jstr0(f->key);
    case CKPT_FINDING_SHAPE_MISMATCH:
        return json_pack("{s:o, s:o, s:o}", "key", jstr0(f->key), "expected",
                         jshape(f->expected_shape, f->expected_ndim), "found",
                         f->has_found_shape ? jshape(f->found_shape, f->found_ndim) : json_null());
    case CKPT_FINDING_DTYPE_MISMATCH:
        return json_pack("{s:o, s:s, s:s}", "key", jstr0(f->key), "expected", ckpt_dtype_name(f->expected_dtype), "found",
                         f->found_type ? f->found_type : ckpt_dtype_name(f->found_dtype));
    case CKPT_FINDING_MISSING_ATTRIBUTE:
    case CKPT_FINDING_UNEXPECTED_ATTRIBUTE:
        return json_pack("{s:o, s:o, s:o}", "path", jstr0(f->key), "class", jstr0(f->cls), "attribute",
                         jstr0(f->attribute));
    case CKPT_FINDING_UNKNOWN_CLASS: {
        json_t *o = json_pack("{s:o, s:o}", "path", jstr0(f->key), "class", jstr0(f->cls));
        if (o && f->hint && json_object_set_new(o, "hint", jstr0(f->hint))) {
            json_decref(o);
            return NULL;
        }
        return o;
    }
    default: return NULL;
    }
}

ckpt_status ckpt_report_to_json(const ckpt_report *r, unsigned flags, char **out, ckpt_error *err)
{
    ckpt_error local;
    if (!err) { ck_error_init(&local); err = &local; }
    if (!r || !out) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL report or out");
    *out = NULL;
    json_t *doc = json_object();
    bool ok = doc != NULL;
    for (int k = 0; ok && k < CKPT_FINDING_KIND_COUNT_; k++) {
        json_t *list = json_array();
        ok = list && json_object_set_new(doc, kind_names[k], list) == 0;
        for (size_t i = 0; ok && i < r->count[k]; i++) {
            json_t *j = finding_json(&r->items[k][i]);
            ok = j && json_array_append_new(list, j) == 0;
        }
    }
    char *text = ok ? ck_json_dump(doc, flags) : NULL;
    json_decref(doc);
    if (!text) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory writing the report");
    *out = text;
    return CKPT_OK;
}
