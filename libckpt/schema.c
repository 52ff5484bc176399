/*
 * schema.c: schemas (include/ckpt/model.h): what the current code expects of a state dict (keys,
 * dtypes, shapes) and of pickled modules (each class's attributes). Parsed strictly with jansson (a
 * schema file is untrusted input too), or taken from another checkpoint (`ckpt check --like REF`).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "json_util.h"
#include "schema_internal.h"
#include "tensors.h"

#define SCHEMA_MAX_FILE ((size_t)256 << 20)
#define SCHEMA_MAX_NDIM 64

static ckpt_schema *schema_new(uint64_t budget)
{
    ckpt_schema *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    ck_arena_init(&s->arena, budget);
    ck_strmap_init(&s->key_index, &s->arena);
    ck_strmap_init(&s->class_index, &s->arena);
    ck_strmap_init(&s->short_index, &s->arena);
    return s;
}

void ckpt_schema_free(ckpt_schema *s)
{
    if (!s) return;
    ck_arena_release(&s->arena);
    free(s);
}

static ckpt_status schema_oom(ckpt_schema *s, ckpt_error *err)
{
    if (s->arena.over_budget)
        return ck_error_set(err, CKPT_ERR_LIMIT, "schema: allocation limit of %llu bytes reached",
                            (unsigned long long)s->arena.budget);
    return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
}

/* Grows an arena array by one slot. */
static void *push_slot(ckpt_schema *s, void **arr, size_t *n, size_t *cap, size_t elem, size_t align)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        void *g = ck_arena_grow(&s->arena, *arr, *cap * elem, ncap * elem, align);
        if (!g) return NULL;
        *arr = g;
        *cap = ncap;
    }
    return (char *)*arr + (*n)++ * elem;
}

ckpt_status ck_schema_add_key(ckpt_schema *s, const char *name, size_t len, ck_schema_key **out, ckpt_error *err)
{
    ck_schema_key *k = push_slot(s, (void **)&s->keys, &s->nkeys, &s->keys_cap, sizeof *k, _Alignof(ck_schema_key));
    char *copy = ck_arena_strndup(&s->arena, name, len);
    if (!k || !copy) return schema_oom(s, err);
    memset(k, 0, sizeof *k);
    k->name = copy;
    k->len = len;
    void *old = NULL;
    if (!ck_strmap_add(&s->key_index, copy, len, k, &old)) return schema_oom(s, err);
    if (old) {
        s->nkeys--;
        return ck_error_set(err, CKPT_ERR_FORMAT, "schema: key '%.200s' is listed twice", copy);
    }
    *out = k;
    return CKPT_OK;
}

ckpt_status ck_schema_add_class(ckpt_schema *s, const char *name, ck_schema_class **out, ckpt_error *err)
{
    void *old = ck_strmap_get(&s->class_index, name, strlen(name));
    if (old) {
        *out = old;
        return CKPT_OK;
    }
    ck_schema_class *c = ck_arena_zalloc(&s->arena, sizeof *c, _Alignof(ck_schema_class));
    char *copy = ck_arena_strndup(&s->arena, name, strlen(name));
    ck_schema_class **slot = push_slot(s, (void **)&s->classes, &s->nclasses, &s->classes_cap, sizeof *slot,
                                       _Alignof(ck_schema_class *));
    if (!c || !copy || !slot) return schema_oom(s, err);
    c->name = copy;
    ck_strmap_init(&c->attr_set, &s->arena);
    *slot = c;
    size_t len = strlen(copy);
    if (!ck_strmap_put(&s->class_index, copy, len, c)) return schema_oom(s, err);
    /* the name after the last dot, for "the same class lives elsewhere" hints (first one wins) */
    const char *dot = strrchr(copy, '.');
    const char *shortn = dot ? dot + 1 : copy;
    if (!ck_strmap_add(&s->short_index, shortn, strlen(shortn), c, NULL)) return schema_oom(s, err);
    s->has_classes = true;
    *out = c;
    return CKPT_OK;
}

/* Adds an attribute to a class (once); *added says whether it was new. */
ckpt_status ck_schema_add_attr(ckpt_schema *s, ck_schema_class *c, const char *name, size_t len, bool optional,
                               bool *added, ckpt_error *err)
{
    if (ck_strmap_get(&c->attr_set, name, len)) {
        *added = false;
        return CKPT_OK;
    }
    char *copy = ck_arena_strndup(&s->arena, name, len);
    ck_schema_attr *slot = optional ? push_slot(s, (void **)&c->optional, &c->noptional, &c->optional_cap,
                                                sizeof *slot, _Alignof(ck_schema_attr))
                                    : push_slot(s, (void **)&c->attrs, &c->nattrs, &c->attrs_cap, sizeof *slot,
                                                _Alignof(ck_schema_attr));
    if (!copy || !slot) return schema_oom(s, err);
    *slot = (ck_schema_attr){copy, len};
    if (!ck_strmap_put(&c->attr_set, copy, len, optional ? CK_ATTR_OPTIONAL : CK_ATTR_REQUIRED)) return schema_oom(s, err);
    *added = true;
    return CKPT_OK;
}

/* ---- parsing ---- */

static ckpt_status bad(ckpt_error *err, const char *where, const char *what)
{
    return ck_error_set(err, CKPT_ERR_FORMAT, "schema: %.300s: %s", where, what);
}

static ckpt_status only_members(const json_t *obj, const char *const *allowed, size_t n, const char *where,
                                ckpt_error *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        bool ok = false;
        for (size_t i = 0; i < n && !ok; i++) ok = strcmp(k, allowed[i]) == 0;
        if (!ok) {
            char what[400];
            snprintf(what, sizeof what, "unknown member '%.100s' (expected one of:", k);
            for (size_t i = 0; i < n; i++) {
                size_t l = strlen(what);
                snprintf(what + l, sizeof what - l, " %s", allowed[i]);
            }
            size_t l = strlen(what);
            snprintf(what + l, sizeof what - l, ")");
            return bad(err, where, what);
        }
    }
    return CKPT_OK;
}

static ckpt_status parse_key(ckpt_schema *s, const char *name, size_t nlen, const json_t *spec, ckpt_error *err)
{
    char where[300];
    snprintf(where, sizeof where, "keys['%.200s']", name);
    if (!json_is_object(spec)) return bad(err, where, "must be an object ({\"dtype\": ..., \"shape\": [...]} or {})");
    static const char *const allowed[] = {"dtype", "shape"};
    ckpt_status st = only_members(spec, allowed, 2, where, err);
    ck_schema_key *k;
    if (!st) st = ck_schema_add_key(s, name, nlen, &k, err);
    if (st) return st;
    const json_t *dt = json_object_get(spec, "dtype"), *sh = json_object_get(spec, "shape");
    if (dt) {
        if (!json_is_string(dt)) return bad(err, where, "dtype must be a string (\"float32\")");
        ckpt_dtype d = ckpt_dtype_from_name(json_string_value(dt));
        if (d == CKPT_DTYPE_INVALID) {
            char what[200];
            snprintf(what, sizeof what, "unknown dtype '%.60s'", json_string_value(dt));
            return bad(err, where, what);
        }
        k->has_dtype = true;
        k->dtype = d;
    }
    if (sh) {
        if (!json_is_array(sh)) return bad(err, where, "shape must be an array of sizes");
        size_t nd = json_array_size(sh);
        if (nd > SCHEMA_MAX_NDIM) return bad(err, where, "shape has more than 64 dimensions");
        k->has_shape = true;
        k->ndim = (uint32_t)nd;
        if (nd) {
            k->shape = ck_arena_alloc(&s->arena, nd * sizeof *k->shape, _Alignof(int64_t));
            if (!k->shape) return schema_oom(s, err);
        }
        for (size_t i = 0; i < nd; i++) {
            const json_t *x = json_array_get(sh, i);
            if (!json_is_integer(x) || json_integer_value(x) < 0)
                return bad(err, where, "every size must be a non-negative integer");
            k->shape[i] = (int64_t)json_integer_value(x);
        }
    }
    return CKPT_OK;
}

static ckpt_status parse_class(ckpt_schema *s, const char *name, const json_t *spec, ckpt_error *err)
{
    char where[300];
    snprintf(where, sizeof where, "classes['%.200s']", name);
    if (!json_is_object(spec)) return bad(err, where, "must be an object ({\"attributes\": [...]})");
    static const char *const allowed[] = {"attributes", "optional_attributes"};
    ckpt_status st = only_members(spec, allowed, 2, where, err);
    if (st) return st;
    const char *dot = strrchr(name, '.');
    if (!*name || !dot || dot == name || !dot[1]) return bad(err, where, "a class is named \"module.Class\"");
    if (ck_strmap_get(&s->class_index, name, strlen(name))) return bad(err, where, "class listed twice");
    const json_t *attrs = json_object_get(spec, "attributes"), *opt = json_object_get(spec, "optional_attributes");
    if (!json_is_array(attrs)) return bad(err, where, "needs \"attributes\": an array of names");
    if (opt && !json_is_array(opt)) return bad(err, where, "\"optional_attributes\" must be an array of names");
    ck_schema_class *c;
    if ((st = ck_schema_add_class(s, name, &c, err))) return st;
    for (int o = 0; o < 2; o++) {
        const json_t *list = o ? opt : attrs;
        for (size_t i = 0; i < json_array_size(list); i++) {
            const json_t *a = json_array_get(list, i);
            if (!json_is_string(a) || json_string_length(a) == 0)
                return bad(err, where, "every attribute must be a non-empty string");
            bool added;
            if ((st = ck_schema_add_attr(s, c, json_string_value(a), json_string_length(a), o, &added, err))) return st;
            if (!added) {
                char what[200];
                snprintf(what, sizeof what, "attribute '%.100s' is listed twice", json_string_value(a));
                return bad(err, where, what);
            }
        }
    }
    return CKPT_OK;
}

ckpt_status ckpt_schema_parse(const void *json, size_t len, ckpt_schema **out, ckpt_error *err)
{
    ckpt_error local;
    if (!err) { ck_error_init(&local); err = &local; }
    if (!out) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!json && len) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "json is NULL");
    json_error_t je;
    /* strict JSON: duplicate names refused, no NUL in strings, nothing after the document */
    json_t *doc = json_loadb(json ? json : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!doc)
        return ck_error_set(err, CKPT_ERR_FORMAT, "schema: line %d, column %d: %s", je.line, je.column, je.text);
    ckpt_status st = CKPT_OK;
    ckpt_schema *s = NULL;
    static const char *const top[] = {"keys", "classes"};
    if (!json_is_object(doc)) st = bad(err, "document", "must be an object {\"keys\": {...}, \"classes\": {...}}");
    if (!st) st = only_members(doc, top, 2, "document", err);
    if (!st && !(s = schema_new((uint64_t)len * 8 + (16u << 20)))) st = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    const json_t *keys = st ? NULL : json_object_get(doc, "keys");
    const json_t *classes = st ? NULL : json_object_get(doc, "classes");
    if (!st && keys && !json_is_object(keys)) st = bad(err, "keys", "must be an object of key -> {dtype, shape}");
    if (!st && classes && !json_is_object(classes)) st = bad(err, "classes", "must be an object of class -> {attributes}");
    if (!st && keys) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)keys, k, v) {
            /* jansson keys are NUL-terminated and cannot hold NUL (JSON_ALLOW_NUL is not set) */
            if ((st = parse_key(s, k, strlen(k), v, err))) break;
        }
    }
    if (!st && classes) {
        s->has_classes = true; /* {"classes": {}}: check classes, knowing none */
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)classes, k, v) {
            if ((st = parse_class(s, k, v, err))) break;
        }
    }
    json_decref(doc);
    if (st) {
        ckpt_schema_free(s);
        return st;
    }
    *out = s;
    return CKPT_OK;
}

ckpt_status ckpt_schema_load_file(const char *path, ckpt_schema **out, ckpt_error *err)
{
    ckpt_error local;
    if (!err) { ck_error_init(&local); err = &local; }
    if (!out) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!path) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f) return ck_error_set(err, CKPT_ERR_IO, "cannot open schema '%.300s'", path);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    ckpt_status st = buf ? CKPT_OK : ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    while (!st) {
        if (n == cap) {
            if (cap >= SCHEMA_MAX_FILE) {
                st = ck_error_set(err, CKPT_ERR_LIMIT, "schema '%.300s' is larger than %zu bytes", path, SCHEMA_MAX_FILE);
                break;
            }
            char *g = realloc(buf, cap * 2);
            if (!g) {
                st = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
                break;
            }
            buf = g;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) st = ck_error_set(err, CKPT_ERR_IO, "cannot read schema '%.300s'", path);
            break;
        }
    }
    fclose(f);
    if (!st) {
        st = ckpt_schema_parse(buf, n, out, err);
        if (st) {
            char detail[CK_ERROR_DETAIL_MAX];
            snprintf(detail, sizeof detail, "%s", ckpt_error_detail(err));
            ck_error_set(err, st, "%.300s: %s", path, detail);
        }
    }
    free(buf);
    return st;
}

/* ---- from a checkpoint ---- */

static const int64_t *value_shape(const ckpt_value *v, size_t *ndim)
{
    if (v->kind == CKPT_KIND_TENSOR) {
        *ndim = v->u.tensor->ndim;
        return v->u.tensor->shape;
    }
    *ndim = v->u.sparse->ndim;
    return v->u.sparse->shape;
}

ckpt_status ck_value_shape_dtype(const ckpt_value *v, size_t *ndim, const int64_t **shape, ckpt_dtype *dtype)
{
    if (v->kind != CKPT_KIND_TENSOR && v->kind != CKPT_KIND_SPARSE) return CKPT_ERR_TYPE;
    *shape = value_shape(v, ndim);
    *dtype = (ckpt_dtype)(v->kind == CKPT_KIND_TENSOR ? v->u.tensor->dtype : v->u.sparse->dtype);
    return CKPT_OK;
}

/*
 * A class's attributes over its instances: those every instance has are "attributes", the others
 * (a container's children, say) "optional_attributes".
 */
typedef struct seen_attr {
    const char *name;
    size_t len;
    uint64_t count;    /* instances that have it */
    uint64_t last;     /* the instance that counted it last (an instance may name it twice) */
} seen_attr;

typedef struct seen_class {
    ck_schema_class *c;
    uint64_t instances;
    ck_strmap index;   /* name -> seen_attr * */
    seen_attr **order;
    size_t n, cap;
} seen_class;

typedef struct {
    ckpt_schema *s;
    seen_class *sc;
    ckpt_error *err;
} attr_ctx;

static ckpt_status count_attr(const char *name, size_t len, void *user)
{
    attr_ctx *x = user;
    seen_class *sc = x->sc;
    seen_attr *a = ck_strmap_get(&sc->index, name, len);
    if (!a) {
        a = ck_arena_zalloc(&x->s->arena, sizeof *a, _Alignof(seen_attr));
        seen_attr **slot = a ? push_slot(x->s, (void **)&sc->order, &sc->n, &sc->cap, sizeof *slot, _Alignof(seen_attr *))
                             : NULL;
        if (!slot || !ck_strmap_put(&sc->index, name, len, a)) return schema_oom(x->s, x->err);
        *slot = a;
        a->name = name;
        a->len = len;
    }
    if (a->last != sc->instances) {
        a->last = sc->instances;
        a->count++;
    }
    return CKPT_OK;
}

static ckpt_status class_attrs(ckpt_schema *s, const ckpt_checkpoint *ck, ckpt_error *err)
{
    const ck_model *m = ck->model;
    ck_strmap by_class; /* ck_schema_class * -> seen_class * */
    ck_strmap_init(&by_class, &s->arena);
    seen_class **all = NULL;
    size_t nall = 0, capall = 0;
    ckpt_status st = CKPT_OK;
    char *name = NULL;
    for (size_t i = 0; i < m->nmodules && !st; i++) {
        free(name);
        if (!(name = ck_module_class_name(ck, m->modules[i].obj))) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
        attr_ctx x = {s, NULL, err};
        ck_schema_class *c;
        if ((st = ck_schema_add_class(s, name, &c, err))) break;
        x.sc = ck_strmap_get(&by_class, (const char *)&c, sizeof c);
        if (!x.sc) {
            x.sc = ck_arena_zalloc(&s->arena, sizeof *x.sc, _Alignof(seen_class));
            seen_class **slot = x.sc ? push_slot(s, (void **)&all, &nall, &capall, sizeof *slot, _Alignof(seen_class *)) : NULL;
            if (!slot) {
                st = schema_oom(s, err);
                break;
            }
            *slot = x.sc;
            x.sc->c = c;
            ck_strmap_init(&x.sc->index, &s->arena);
            /* keyed by the class pointer's bytes, which live as long as the schema */
            if (!ck_strmap_put(&by_class, (const char *)&(*slot)->c, sizeof c, x.sc)) {
                st = schema_oom(s, err);
                break;
            }
        }
        x.sc->instances++;
        st = ck_module_attrs(ck, m->modules[i].obj, count_attr, &x);
    }
    free(name);
    for (size_t k = 0; k < nall && !st; k++) {
        const seen_class *sc = all[k];
        for (size_t i = 0; i < sc->n && !st; i++) {
            bool added;
            st = ck_schema_add_attr(s, sc->c, sc->order[i]->name, sc->order[i]->len, sc->order[i]->count < sc->instances,
                                    &added, err);
        }
    }
    return st;
}

ckpt_status ckpt_schema_from_checkpoint(const ckpt_checkpoint *ck, ckpt_schema **out, ckpt_error *err)
{
    ckpt_error local;
    if (!err) { ck_error_init(&local); err = &local; }
    if (!out) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    ckpt_status st = ck_model_of(ck, err);
    if (st) return st;
    const ck_model *m = ck->model;
    ckpt_schema *s = schema_new(UINT64_MAX);
    if (!s) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    const ckpt_value *sd = m->state_dict;
    for (uint32_t i = 0; i < sd->u.dict.len && !st; i++) {
        const ckpt_value *k = sd->u.dict.entries[i].key, *v = sd->u.dict.entries[i].val;
        ck_schema_key *sk;
        if ((st = ck_schema_add_key(s, k->u.s.ptr, k->u.s.len, &sk, err))) break;
        size_t nd;
        const int64_t *shape;
        ckpt_dtype dt;
        if (ck_value_shape_dtype(v, &nd, &shape, &dt) == CKPT_OK) {
            sk->has_dtype = sk->has_shape = true;
            sk->dtype = dt;
            sk->ndim = (uint32_t)nd;
            if (nd && !(sk->shape = ck_arena_alloc(&s->arena, nd * sizeof *shape, _Alignof(int64_t)))) {
                st = schema_oom(s, err);
                break;
            }
            if (nd) memcpy(sk->shape, shape, nd * sizeof *shape);
        }
    }
    if (m->source == CKPT_MODEL_MODULE || m->source == CKPT_MODEL_TORCHSCRIPT) s->has_classes = true;
    if (!st) st = class_attrs(s, ck, err);
    if (st) {
        ckpt_schema_free(s);
        return st;
    }
    *out = s;
    return CKPT_OK;
}

/* ---- to JSON ---- */

ckpt_status ckpt_schema_to_json(const ckpt_schema *s, unsigned flags, char **out, ckpt_error *err)
{
    ckpt_error local;
    if (!err) { ck_error_init(&local); err = &local; }
    if (!s || !out) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL schema or out");
    *out = NULL;
    json_t *doc = json_object(), *keys = json_object();
    bool ok = doc && keys && json_object_set_new(doc, "keys", keys) == 0;
    for (size_t i = 0; ok && i < s->nkeys; i++) {
        const ck_schema_key *k = &s->keys[i];
        json_t *spec = json_object();
        ok = spec && json_object_setn_new(keys, k->name, k->len, spec) == 0; /* keys are UTF-8 (jansson checks) */
        if (ok && k->has_dtype) ok = json_object_set_new(spec, "dtype", json_string(ckpt_dtype_name(k->dtype))) == 0;
        if (ok && k->has_shape) {
            json_t *shape = json_array();
            ok = shape && json_object_set_new(spec, "shape", shape) == 0;
            for (uint32_t d = 0; ok && d < k->ndim; d++) ok = json_array_append_new(shape, json_integer(k->shape[d])) == 0;
        }
    }
    if (ok && s->has_classes) {
        json_t *classes = json_object();
        ok = classes && json_object_set_new(doc, "classes", classes) == 0;
        for (size_t i = 0; ok && i < s->nclasses; i++) {
            const ck_schema_class *c = s->classes[i];
            json_t *spec = json_object(), *attrs = json_array();
            ok = spec && attrs && json_object_set_new(classes, c->name, spec) == 0 &&
                 json_object_set_new(spec, "attributes", attrs) == 0;
            if (!ok) {
                if (!spec) json_decref(attrs);
                break;
            }
            for (size_t a = 0; ok && a < c->nattrs; a++)
                ok = json_array_append_new(attrs, ck_json_str(c->attrs[a].name, c->attrs[a].len)) == 0;
            if (ok && c->noptional) {
                json_t *opt = json_array();
                ok = opt && json_object_set_new(spec, "optional_attributes", opt) == 0;
                for (size_t a = 0; ok && a < c->noptional; a++)
                    ok = json_array_append_new(opt, ck_json_str(c->optional[a].name, c->optional[a].len)) == 0;
            }
        }
    }
    char *text = ok ? ck_json_dump(doc, flags) : NULL;
    json_decref(doc);
    if (!text) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory writing the schema");
    *out = text;
    return CKPT_OK;
}
