/*
 * registry_helpers.h: shared by the registry and object suites: loading a hand-made pickle with a
 * registry, building registries, a NEWOBJ + BUILD object pickle.
 */
#ifndef CKPT_TEST_REGISTRY_HELPERS_H
#define CKPT_TEST_REGISTRY_HELPERS_H

#include "pickle_builder.h"
#include "support.h"

/* Loads a hand-made pickle wrapped in a minimal checkpoint zip, with `reg` (NULL: default). */
static inline ckpt_status load_pk(const ckpt_registry *reg, const pk *b, ckpt_checkpoint **out, ckpt_error *err)
{
    size_t zlen;
    uint8_t *z = tst_make_checkpoint(b->p, b->len, NULL, 0, &zlen);
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_load_options_set_registry(o, reg);
    ckpt_checkpoint *ck = NULL;
    ckpt_status s = ckpt_load_memory(z, zlen, o, &ck, err);
    ckpt_load_options_free(o);
    free(z);
    if (out) *out = ck;
    else ckpt_checkpoint_free(ck);
    return s;
}

static inline ckpt_registry *reg_with(const char *const *names, size_t n)
{
    ckpt_registry *r = ckpt_registry_new(0);
    ckpt_error *err = ckpt_error_new();
    ck_assert_msg(ckpt_registry_add_safe_globals(r, names, n, err) == CKPT_OK, "%s", ckpt_error_message(err));
    ckpt_error_free(err);
    return r;
}

static inline size_t count_safe(const ckpt_registry *r)
{
    char **names;
    size_t n;
    ck_assert_int_eq(ckpt_registry_get_safe_globals(r, &names, &n, NULL), CKPT_OK);
    ck_assert_ptr_null(names[n]);
    ckpt_free(names);
    return n;
}

/* Namespace-like object: NEWOBJ(cls, ()) + BUILD({'lr': 0.5, 'name': 'run'}) as the root. */
static inline void pk_object(pk *b, const char *module, const char *name)
{
    pk_proto(b, 2);
    pk_global(b, module, name);
    pk_empty_tuple(b);
    pk_newobj(b);
    pk_empty_dict(b);
    pk_mark(b);
    pk_str(b, "lr");
    pk_float(b, 0.5);
    pk_str(b, "name");
    pk_str(b, "run");
    pk_setitems(b);
    pk_build(b);
    pk_stop(b);
}

#endif
