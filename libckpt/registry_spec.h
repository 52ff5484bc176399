/*
 * registry_spec.h: helpers shared by registry.c and registry_scope.c: parsed names, entry
 * construction, snapshot references and the thread-local scope stack.
 */
#ifndef CK_REGISTRY_SPEC_H
#define CK_REGISTRY_SPEC_H

#include "registry_internal.h"

typedef struct ck_name {
    char module[1024];
    char name[1024];
} ck_name;

/* "module.name" or "pickled.module.Name=target.module.Name", validated (never-allowed names refused). */
typedef struct ck_spec {
    ck_name pickled, target;
    bool is_alias;
} ck_spec;

ckpt_status ck_parse_spec(const char *full, ck_spec *out, ckpt_error *err);
/* A malloc'd entry for a spec (see registry.c); NULL when out of memory. */
ck_reg_entry *ck_make_entry(const ck_spec *sp, unsigned flags, bool builtin, ckpt_global_handler fn, void *user);
/* "module.name" / "module.name=target.name" into buf; returns the length it needs. */
size_t ck_entry_label(const ck_reg_entry *e, char *buf, size_t cap);

size_t ck_reg_make_key(char *buf, const char *module, const char *name);
const void *ck_reg_map_get(const ck_strmap *m, const char *module, const char *name);
const ckpt_registry *ck_registry_or_default(const ckpt_registry *reg);

/* A reference to the registry's current snapshot (NULL for the default registry). */
ck_reg_snapshot *ck_registry_snapshot_acquire(const ckpt_registry *reg);
void ck_registry_snapshot_release(ck_reg_snapshot *s);

/* The entry a scope in the chain (innermost first) gives reg's pair, or NULL. */
const ck_reg_entry *ck_scope_lookup(const ck_scope *top, const ckpt_registry *reg, const char *module,
                                    const char *name);
/* base entries, then the chain's entries for reg (outermost scope first), into a malloc'd array. */
ckpt_status ck_scope_collect(const ck_scope *top, const ckpt_registry *reg, const ck_reg_entry *const *base,
                             size_t nbase, const ck_reg_entry ***out, size_t *n);

ckpt_global_status ck_classify_entry(const ck_reg_entry *e, const char *module, const char *name, const char **why);

#endif
