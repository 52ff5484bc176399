/* schema_internal.h: the layout of schemas (schema.c) and what the checker (check.c) shares with them. */
#ifndef CK_SCHEMA_INTERNAL_H
#define CK_SCHEMA_INTERNAL_H

#include "model_internal.h"

typedef struct ck_schema_key {
    const char *name;
    size_t len;
    bool has_dtype, has_shape;
    ckpt_dtype dtype;
    uint32_t ndim;
    int64_t *shape;
} ck_schema_key;

typedef struct ck_schema_attr {
    const char *name; /* may hold NUL (pickled str keys can): use len */
    size_t len;
} ck_schema_attr;

typedef struct ck_schema_class {
    const char *name;
    ck_schema_attr *attrs;     /* "attributes": every instance has them (in the schema's order) */
    size_t nattrs, attrs_cap;
    ck_schema_attr *optional;  /* "optional_attributes": some instances have them (containers' children) */
    size_t noptional, optional_cap;
    ck_strmap attr_set;     /* both: name -> CK_ATTR_REQUIRED / CK_ATTR_OPTIONAL */
} ck_schema_class;

#define CK_ATTR_REQUIRED ((void *)1)
#define CK_ATTR_OPTIONAL ((void *)2)

struct ckpt_schema {
    ck_arena arena;                 /* everything below */
    ck_schema_key *keys;            /* in the schema's order */
    size_t nkeys, keys_cap;
    ck_strmap key_index;            /* name -> ck_schema_key * */
    bool has_classes;               /* "classes" given: class and attribute checks run */
    ck_schema_class **classes;
    size_t nclasses, classes_cap;
    ck_strmap class_index;          /* "module.Class" -> ck_schema_class * */
    ck_strmap short_index;          /* "Class" -> the first ck_schema_class of that name */
};

ckpt_status ck_schema_add_key(ckpt_schema *s, const char *name, size_t len, ck_schema_key **out, ckpt_error *err);
/* The class of that name, created when absent. */
ckpt_status ck_schema_add_class(ckpt_schema *s, const char *name, ck_schema_class **out, ckpt_error *err);
/* Adds an attribute (required or optional) unless the class has it already (*added false). */
ckpt_status ck_schema_add_attr(ckpt_schema *s, ck_schema_class *c, const char *name, size_t len, bool optional,
                               bool *added, ckpt_error *err);

/* Shape and dtype of a tensor or sparse value; CKPT_ERR_TYPE for anything else. */
ckpt_status ck_value_shape_dtype(const ckpt_value *v, size_t *ndim, const int64_t **shape, ckpt_dtype *dtype);

/* CKPT_OK when ck was loaded in model mode and holds a model or state dict; else the error saying so. */
ckpt_status ck_model_of(const ckpt_checkpoint *ck, ckpt_error *err);
/*
 * The class a schema names a module by: its type name; for TorchScript without the `__torch__.` root and
 * `___torch_mangle_N` components (a scripted torch.nn.modules.linear.Linear is the eager class). malloc'd.
 */
char *ck_module_class_name(const ckpt_checkpoint *ck, const ckpt_value *obj);
/*
 * Calls fn for each attribute a module has where nn.Module looks attributes up: its __dict__ (without
 * nn.Module's own bookkeeping), then the names in _parameters, _buffers and _modules (TorchScript: its
 * attributes). A name may come twice (a __dict__ entry shadowed by a parameter); fn sees both.
 */
typedef ckpt_status (*ck_attr_fn)(const char *name, size_t len, void *user);
ckpt_status ck_module_attrs(const ckpt_checkpoint *ck, const ckpt_value *obj, ck_attr_fn fn, void *user);

#endif
