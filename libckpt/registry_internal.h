/*
 * registry_internal.h: allowlist entries and lookup.
 *
 * An entry says what libckpt does when a pickle uses a global: its kind (function, class, constant,
 * storage type, dtype) and the handlers that turn REDUCE / NEWOBJ on it into data. Entries are never
 * freed while their registry lives, so a load may keep pointers to them while another thread edits the
 * registry.
 */
#ifndef CK_REGISTRY_INTERNAL_H
#define CK_REGISTRY_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include "ckpt/registry.h"
#include "node.h"
#include "strmap.h"

struct ck_unpickler;
struct ck_reg_entry;

/* Turns a call of an allowed global into a value. args is a tuple; kwargs a dict or NULL. */
typedef ckpt_status (*ck_call_fn)(struct ck_unpickler *u, const struct ck_reg_entry *e, ckpt_value *args,
                                  ckpt_value *kwargs, ckpt_value **out, ckpt_error *err);

typedef enum ck_global_kind {
    CK_G_FUNCTION = 0,  /* callable with REDUCE */
    CK_G_CLASS,         /* callable with REDUCE / NEWOBJ / INST / OBJ; instances may accept BUILD */
    CK_G_CONSTANT,      /* a value, never called (qschemes, layouts) */
    CK_G_STORAGE_TYPE,  /* torch.FloatStorage...: names an element type in persistent ids */
    CK_G_DTYPE          /* torch.float32...: GLOBAL pushes a dtype node */
} ck_global_kind;

/* Entry flags. */
#define CK_RF_UNTYPED 0x1u /* storage type torch.storage.UntypedStorage: numel counts bytes */

typedef struct ck_reg_entry {
    const char *module;
    const char *name;
    uint8_t kind;           /* ck_global_kind */
    uint8_t dtype;          /* for CK_G_DTYPE and CK_G_STORAGE_TYPE */
    uint8_t flags;          /* CK_RF_* */
    const char *type_name;  /* Python type of what it builds or is ("torch.qscheme"), or NULL */
    ck_call_fn call;        /* REDUCE (and INST/OBJ for classes); NULL: calling it is an error */
    ck_call_fn newobj;      /* NEWOBJ / NEWOBJ_EX; NULL: an error */
} ck_reg_entry;

struct ckpt_registry {
    pthread_rwlock_t lock;
    bool with_defaults;
    bool is_static;      /* the shared default registry: read-only */
    ck_strmap user;      /* "module\0name" -> ck_reg_entry* (owned) */
    ck_reg_entry **owned;
    size_t owned_len, owned_cap;
};

/*
 * The entry for an exact (already normalised) module + name pair, or NULL when not allowed.
 * reg == NULL means the default registry.
 */
const ck_reg_entry *ck_registry_lookup(const ckpt_registry *reg, const char *module, const char *name);
/* The built-in entry for a pair (whether or not a registry includes it), or NULL. */
const ck_reg_entry *ck_default_lookup(const char *module, const char *name);

/* The built-in table behind the default registry (allowlist.c). */
const ck_reg_entry *ck_default_entries(size_t *count);

/* True for names that can never be allowed; *why (may be NULL) says why. */
bool ck_never_allowed(const char *module, const char *name, const char **why);

/*
 * Python 3's view of a protocol 0-2 global (Lib/_compat_pickle.py): __builtin__ -> builtins,
 * copy_reg -> copyreg, and so on. Returns pointers to static strings or to the inputs.
 */
void ck_normalize_global(const char **module, const char **name);

#endif
