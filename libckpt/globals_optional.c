/*
 * globals_optional.c: built-in handlers that are off by default (ckpt_registry_enable_handlers,
 * ckpt_registry_add_preset), and the table naming them. Each handler receives the finished generic
 * OBJECT/CALL node and returns a native value, or declines (NULL) when the node is not in the shape it
 * knows, so the caller still gets every byte as a generic node. NumPy handlers are in globals_numpy.c.
 */
#include <string.h>

#include "globals.h"
#include "util.h"

#define CLS(m, n, h, p) {m, n, CK_G_CLASS, h, p}
#define FUN(m, n, h, p) {m, n, CK_G_FUNCTION, h, p}
#define NP CK_PRESET_NUMPY
#define STD CK_PRESET_STDLIB

static const ck_optional_entry optional[] = {
    /* numpy (globals_numpy.c); numpy 2 renamed numpy.core to numpy._core */
    CLS("numpy", "ndarray", ck_h_np_ndarray, NP),
    CLS("numpy", "dtype", ck_h_np_dtype, NP),
    FUN("numpy.core.multiarray", "_reconstruct", ck_h_np_reconstruct, NP),
    FUN("numpy._core.multiarray", "_reconstruct", ck_h_np_reconstruct, NP),
    FUN("numpy.core.multiarray", "scalar", ck_h_np_scalar, NP),
    FUN("numpy._core.multiarray", "scalar", ck_h_np_scalar, NP),
    FUN("numpy.core.numeric", "_frombuffer", ck_h_np_frombuffer, NP),
    FUN("numpy._core.numeric", "_frombuffer", ck_h_np_frombuffer, NP),
    /* Python standard library */
    CLS("argparse", "Namespace", ck_h_namespace, STD),
    CLS("collections", "defaultdict", ck_h_defaultdict, STD),
    CLS("builtins", "slice", ck_h_slice, STD),
    CLS("builtins", "range", ck_h_range, STD),
    /* values only (a defaultdict's factory): allowed by the preset, built as generic nodes if called */
    CLS("builtins", "list", NULL, STD),
    CLS("builtins", "dict", NULL, STD),
    CLS("builtins", "tuple", NULL, STD),
    CLS("builtins", "int", NULL, STD),
    CLS("builtins", "float", NULL, STD),
    CLS("builtins", "str", NULL, STD),
};

const ck_optional_entry *ck_optional_entries(size_t *count)
{
    *count = CK_ARRAY_LEN(optional);
    return optional;
}

const ck_optional_entry *ck_optional_lookup(const char *module, const char *name)
{
    for (size_t i = 0; i < CK_ARRAY_LEN(optional); i++)
        if (strcmp(optional[i].module, module) == 0 && strcmp(optional[i].name, name) == 0) return &optional[i];
    return NULL;
}

/* ---- stdlib ---- */

static bool is_empty_tuple(const ckpt_value *v) { return !v || (v->kind == CKPT_KIND_TUPLE && v->u.seq.len == 0); }

/* argparse.Namespace(**kw): NEWOBJ + BUILD({attrs}) -> a dict typed argparse.Namespace. */
ckpt_status ck_h_namespace(ckpt_handler_ctx *ctx, const ckpt_value *node, void *user, ckpt_value **out, ckpt_error *err)
{
    (void)user;
    const ck_object *o = node->u.obj;
    if (!is_empty_tuple(o->args) || o->list_items || o->dict_items) return CKPT_OK; /* not the usual shape */
    if (o->state && o->state->kind != CKPT_KIND_DICT) return CKPT_OK;
    ckpt_value *d = ckpt_handler_new_container(ctx, CKPT_KIND_DICT);
    if (!d) return ck_error_set(err, CKPT_ERR_LIMIT, "allocation limit reached");
    const ckpt_value *parts[2] = {o->kwargs, o->state};
    for (int k = 0; k < 2; k++) {
        const ckpt_value *src = parts[k];
        if (!src || src->kind != CKPT_KIND_DICT) continue;
        for (uint32_t i = 0; i < src->u.dict.len; i++) {
            ckpt_status s = ckpt_handler_dict_set(ctx, d, src->u.dict.entries[i].key, src->u.dict.entries[i].val, err);
            if (s) return s;
        }
    }
    ckpt_status s = ckpt_handler_set_type_name(ctx, d, "argparse.Namespace", err);
    if (!s) *out = d;
    return s;
}

/* collections.defaultdict(factory) + SETITEMS -> a dict typed collections.defaultdict; the factory is
 * kept as the attribute default_factory. */
ckpt_status ck_h_defaultdict(ckpt_handler_ctx *ctx, const ckpt_value *node, void *user, ckpt_value **out, ckpt_error *err)
{
    (void)user;
    const ck_object *o = node->u.obj;
    if (!o->args || o->args->kind != CKPT_KIND_TUPLE || o->args->u.seq.len > 1 || o->list_items || o->state) return CKPT_OK;
    ckpt_value *d = ckpt_handler_new_container(ctx, CKPT_KIND_DICT);
    if (!d) return ck_error_set(err, CKPT_ERR_LIMIT, "allocation limit reached");
    const ckpt_value *items = o->dict_items;
    for (uint32_t i = 0; items && i < items->u.dict.len; i++) {
        ckpt_status s = ckpt_handler_dict_set(ctx, d, items->u.dict.entries[i].key, items->u.dict.entries[i].val, err);
        if (s) return s;
    }
    ckpt_status s = ckpt_handler_set_type_name(ctx, d, "collections.defaultdict", err);
    if (s) return s;
    if (o->args->u.seq.len == 1) {
        ckpt_value *attrs = ckpt_handler_new_container(ctx, CKPT_KIND_DICT);
        ckpt_value *k = ckpt_handler_new_str(ctx, "default_factory", 15);
        if (!attrs || !k) return ck_error_set(err, CKPT_ERR_LIMIT, "allocation limit reached");
        if ((s = ckpt_handler_dict_set(ctx, attrs, k, o->args->u.seq.items[0], err))) return s;
        d->attrs = attrs;
    }
    *out = d;
    return CKPT_OK;
}

/* slice(start, stop, step) / range(start, stop, step) -> a 3-tuple typed "slice" / "range". */
static ckpt_status triple(ckpt_handler_ctx *ctx, const ckpt_value *node, const char *type, bool ints, ckpt_value **out,
                          ckpt_error *err)
{
    const ck_object *o = node->u.obj;
    if (!o->args || o->args->kind != CKPT_KIND_TUPLE || o->args->u.seq.len < 1 || o->args->u.seq.len > 3 || o->state ||
        o->kwargs || o->list_items || o->dict_items)
        return CKPT_OK;
    ckpt_value *const *a = o->args->u.seq.items;
    uint32_t n = o->args->u.seq.len;
    for (uint32_t i = 0; ints && i < n; i++)
        if (a[i]->kind != CKPT_KIND_INT && a[i]->kind != CKPT_KIND_BOOL)
            return ck_error_set(err, CKPT_ERR_PICKLE, "range() argument %u is a %s, not an int", i, ck_type_name(a[i]));
    ckpt_value *t = ckpt_handler_new_container(ctx, CKPT_KIND_TUPLE);
    ckpt_value *none = ckpt_handler_new_none(ctx), *zero = ckpt_handler_new_int(ctx, 0), *one = ckpt_handler_new_int(ctx, 1);
    if (!t || !none || !zero || !one) return ck_error_set(err, CKPT_ERR_LIMIT, "allocation limit reached");
    /* one argument is the stop; fill in Python's defaults so the tuple is always (start, stop, step) */
    const ckpt_value *parts[3];
    parts[0] = n == 1 ? (ints ? zero : none) : a[0];
    parts[1] = n == 1 ? a[0] : a[1];
    parts[2] = n == 3 ? a[2] : (ints ? one : none);
    for (int i = 0; i < 3; i++) {
        ckpt_status s = ckpt_handler_append(ctx, t, parts[i], err);
        if (s) return s;
    }
    ckpt_status s = ckpt_handler_set_type_name(ctx, t, type, err);
    if (!s) *out = t;
    return s;
}

ckpt_status ck_h_slice(ckpt_handler_ctx *ctx, const ckpt_value *node, void *user, ckpt_value **out, ckpt_error *err)
{
    (void)user;
    return triple(ctx, node, "slice", false, out, err);
}

ckpt_status ck_h_range(ckpt_handler_ctx *ctx, const ckpt_value *node, void *user, ckpt_value **out, ckpt_error *err)
{
    (void)user;
    return triple(ctx, node, "range", true, out, err);
}
