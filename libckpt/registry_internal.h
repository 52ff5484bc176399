/*
 * registry_internal.h: allowlist entries, registry snapshots, thread-local scopes and lookup.
 *
 * An entry says what libckpt does when a pickle uses a global: its kind (function, class, constant,
 * storage type, dtype), the native handlers that turn REDUCE / NEWOBJ on it into data, or (user entries)
 * that it becomes a generic OBJECT/CALL node, optionally finished by a ckpt_global_handler.
 *
 * Concurrency. A registry's user entries live in an immutable snapshot; a writer (add, clear) builds a
 * new snapshot under the registry's mutex and swaps it in. A load takes a reference to the current
 * snapshot when it starts (ck_registry_view_acquire) and drops it at the end, so it sees one consistent
 * registry without holding any lock. Entries are pooled and never freed while their registry lives, so
 * nodes and snapshots may keep pointers to them. Scopes are per thread (pthread key): the view captures
 * the thread's scope stack when it is acquired, and pushing/popping is refused while a view is active in
 * that thread (a handler cannot change the registry under the load that calls it).
 */
#ifndef CK_REGISTRY_INTERNAL_H
#define CK_REGISTRY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
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
#define CK_RF_GENERIC 0x2u /* user entry: calls without a native handler build OBJECT/CALL nodes */
#define CK_RF_MODEL 0x4u   /* model mode (CKPT_LOAD_MODEL): a name outside the registry, kept as an opaque
                              reference; NEWOBJ on it records an object that must turn out to be an nn.Module */
#define CK_RF_MODEL_CTOR 0x8u /* model mode: copyreg._reconstructor / __newobj__ / __newobj_ex__, which stand
                                 for NEWOBJ on their class argument (model_globals.c) */

typedef struct ck_reg_entry {
    const char *module;
    const char *name;
    uint8_t kind;           /* ck_global_kind */
    uint8_t dtype;          /* for CK_G_DTYPE and CK_G_STORAGE_TYPE */
    uint8_t flags;          /* CK_RF_* */
    const char *type_name;  /* Python type of what it builds or is ("torch.qscheme"), or NULL */
    ck_call_fn call;        /* REDUCE (and INST/OBJ for classes); NULL: generic node or an error */
    ck_call_fn newobj;      /* NEWOBJ / NEWOBJ_EX; NULL: generic node or an error */
    /* alias: the class/function this pickled name stands for (nodes report it); NULL otherwise */
    const char *target_module, *target_name;
    ckpt_global_handler handler; /* finishes the OBJECT/CALL node (after the pickle), or NULL */
    void *handler_user;
} ck_reg_entry;

/* An immutable set of user entries (see above). */
typedef struct ck_reg_snapshot {
    atomic_uint refs;
    bool with_defaults;
    ck_strmap map;              /* "module\0name" -> const ck_reg_entry * */
    const ck_reg_entry **order; /* insertion order (for get_safe_globals) */
    size_t count;
} ck_reg_snapshot;

struct ckpt_registry {
    pthread_mutex_t lock;        /* writers, snapshot acquisition */
    bool is_static;              /* the shared default registry: no user entries */
    ck_reg_snapshot *current;    /* NULL only for the default registry */
    void **pool;                 /* every entry ever made for this registry, and its pool_index key:
                                    malloc'd blocks freed with the registry */
    size_t pool_len, pool_cap;
    ck_strmap pool_index;        /* spec text -> entry: re-adding the same spec reuses its entry */
    atomic_uint_least64_t next_scope; /* scope tokens, unique per registry */
};

typedef struct ck_scope ck_scope;

/* What one load resolves names against. */
typedef struct ck_reg_view {
    const ckpt_registry *reg;  /* never NULL once acquired */
    ck_reg_snapshot *snap;     /* NULL: defaults only */
    const ck_scope *scopes;    /* the thread's innermost scope when acquired (any registry) */
    bool acquired;
    bool counted;              /* counted in the thread's active views (pop is refused meanwhile) */
} ck_reg_view;

/* reg NULL means the default registry. Fails only when out of memory (thread-local state). */
ckpt_status ck_registry_view_acquire(ck_reg_view *v, const ckpt_registry *reg, ckpt_error *err);
void ck_registry_view_release(ck_reg_view *v);
/* The entry for an exact (already normalised) pair, or NULL when not allowed. */
const ck_reg_entry *ck_view_lookup(const ck_reg_view *v, const char *module, const char *name);

/* One-shot lookup (acquires and releases a view). reg == NULL means the default registry. */
const ck_reg_entry *ck_registry_lookup(const ckpt_registry *reg, const char *module, const char *name);
/* The built-in entry for a pair (whether or not a registry includes it), or NULL. */
const ck_reg_entry *ck_default_lookup(const char *module, const char *name);

/* The built-in table behind the default registry (allowlist.c). */
const ck_reg_entry *ck_default_entries(size_t *count);

/* Built-in handlers that are off by default (globals_optional.c). */
typedef struct ck_optional_entry {
    const char *module, *name;
    uint8_t kind;               /* CK_G_CLASS or CK_G_FUNCTION */
    ckpt_global_handler handler;
    unsigned presets;           /* CK_PRESET_* bits */
} ck_optional_entry;
#define CK_PRESET_NUMPY 0x1u
#define CK_PRESET_STDLIB 0x2u
const ck_optional_entry *ck_optional_entries(size_t *count);
const ck_optional_entry *ck_optional_lookup(const char *module, const char *name);
/* The preset bit for a name ("numpy"), or 0. */
unsigned ck_preset_bit(const char *name);

/*
 * Model mode (CKPT_LOAD_MODEL, model_globals.c): the entry for a name the registry does not allow, or
 * NULL when it can never be allowed. copyreg._reconstructor, copyreg.__newobj__ and copyreg.__newobj_ex__
 * get CK_RF_MODEL_CTOR entries; every other name one shared CK_RF_MODEL entry (the node keeps the name).
 */
const ck_reg_entry *ck_model_lookup(const char *module, const char *name);
/* The shared entry of opaque model-mode names (to recognise their objects after the load). */
const ck_reg_entry *ck_model_opaque_entry(void);

/* True for names that can never be allowed; *why (may be NULL) says why. */
bool ck_never_allowed(const char *module, const char *name, const char **why);

/*
 * Python 3's view of a protocol 0-2 global (Lib/_compat_pickle.py): __builtin__ -> builtins,
 * copy_reg -> copyreg, and so on. Returns pointers to static strings or to the inputs.
 */
void ck_normalize_global(const char **module, const char **name);

#endif
