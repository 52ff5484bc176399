/*
 * registry.h: the allowlist of globals a pickle may name.
 *
 * A pickle can name any Python global ("module.name") and call it. libckpt never imports or calls
 * anything: a global is usable only when its exact module + name pair is in the registry, and then only
 * through libckpt's own handler for it, which turns the call into data. Anything else stops the load
 * with CKPT_ERR_BLOCKED before any later opcode runs.
 *
 * The default registry holds exactly what current PyTorch's weights-only unpickler allows by default
 * (tensor rebuild functions, typed storages, dtypes, torch.Size, torch.device, OrderedDict, Counter...).
 *
 * Names. Everywhere a name is taken it is "module.name" (the module is everything before the last dot),
 * or "pickled.module.Name=real.module.Name": an alias, like PyTorch's (obj, "module.name") form. An alias
 * allows a class under the name an older release pickled it as (timm moved timm.models.layers.X to
 * timm.layers.X); nodes built from it report the real name.
 *
 * What an allowed user global becomes. A class the pickle instantiates (REDUCE, NEWOBJ, NEWOBJ_EX,
 * INST, OBJ) becomes a CKPT_KIND_OBJECT node: class name, constructor args, keyword args, the state BUILD
 * gave it, and the items APPEND(S)/SETITEM(S) added. A function reached by REDUCE becomes a
 * CKPT_KIND_CALL node with its args. Nothing is ever executed. Whether a user name is a class or a
 * function decides only OBJECT vs CALL for REDUCE: libckpt knows the built-in ones, otherwise it follows
 * Python's naming convention (CapWords = class) unless ckpt_registry_add_safe_global says otherwise.
 * A handler (below) can turn the finished node into a native value.
 *
 * Scopes. ckpt_registry_safe_globals_push adds names for the calling thread only, until the matching
 * pop; other threads never see them (PyTorch's `with safe_globals(...)` widens every thread's view).
 *
 * Thread safety: a registry may be shared by any number of concurrent loads. Adding or clearing entries
 * while loads run is safe: each load works on a snapshot taken when it starts, so it sees the registry
 * entirely before or entirely after a change, never a mix. Free a registry only after every load using
 * it has returned and every scope pushed on it has been popped.
 */
#ifndef CKPT_REGISTRY_H
#define CKPT_REGISTRY_H

#include <stdbool.h>
#include "common.h"
#include "error.h"
#include "value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ckpt_registry ckpt_registry;

/* Flags for ckpt_registry_new. */
#define CKPT_REGISTRY_EMPTY 0x1u /* start without the default (PyTorch weights-only) allowlist */

CKPT_API ckpt_registry *ckpt_registry_new(unsigned flags);
CKPT_API void ckpt_registry_free(ckpt_registry *reg);

/* The shared, immutable default registry (never free it; scopes may still be pushed on it). */
CKPT_API const ckpt_registry *ckpt_registry_default(void);

/*
 * Allows each name (like torch.serialization.add_safe_globals). Names whose only use is running code or
 * touching the system (os.*, subprocess.*, builtins.eval, ...) are refused with CKPT_ERR_INVALID_ARG
 * and a message saying why; so are dotted attribute paths. All-or-nothing: on error nothing is added.
 * Re-adding a name replaces its entry.
 */
CKPT_API ckpt_status ckpt_registry_add_safe_globals(ckpt_registry *reg, const char *const *names,
                                                    size_t count, ckpt_error *err);

/* Flags for ckpt_registry_add_safe_global. */
#define CKPT_GLOBAL_CLASS 0x1u    /* REDUCE on it builds an OBJECT node */
#define CKPT_GLOBAL_FUNCTION 0x2u /* REDUCE on it records a CALL node */
/* One name, saying whether it is a class or a function (0: guess as ckpt_registry_add_safe_globals). */
CKPT_API ckpt_status ckpt_registry_add_safe_global(ckpt_registry *reg, const char *name, unsigned flags,
                                                   ckpt_error *err);

/* Allows `pickled` ("module.name" as the pickle spells it) as the class/function `target`. */
CKPT_API ckpt_status ckpt_registry_add_alias(ckpt_registry *reg, const char *pickled, const char *target,
                                             ckpt_error *err);

/*
 * The user-added names the calling thread sees: the registry's own, then those of the thread's active
 * scopes on it (outermost first), in the order they were added, aliases as "pickled=target". The
 * defaults are not listed. *names receives one block (array + strings) to release with ckpt_free;
 * *count its length.
 */
CKPT_API ckpt_status ckpt_registry_get_safe_globals(const ckpt_registry *reg, char ***names, size_t *count,
                                                    ckpt_error *err);

/* Flags for ckpt_registry_clear_safe_globals. */
#define CKPT_REGISTRY_CLEAR_DEFAULTS 0x1u /* also drop the default allowlist (as if created EMPTY) */
/* Removes every user-added name (scopes are not affected: pop them). The defaults stay unless asked. */
CKPT_API ckpt_status ckpt_registry_clear_safe_globals(ckpt_registry *reg, unsigned flags, ckpt_error *err);

/* True when the exact pair is allowed for the calling thread (after Python 2 name normalisation). */
CKPT_API bool ckpt_registry_is_allowed(const ckpt_registry *reg, const char *module, const char *name);

/* How a global is classified (ckpt_registry_classify, ckpt scan). */
typedef enum ckpt_global_status {
    CKPT_GLOBAL_ALLOWED = 0,
    CKPT_GLOBAL_NOT_ALLOWED = 1,   /* not in the registry: could be allowed if trusted */
    CKPT_GLOBAL_NEVER_ALLOWED = 2  /* runs code or touches the system; cannot be registered */
} ckpt_global_status;
/* "allowed", "not_allowed", "never_allowed". */
CKPT_API const char *ckpt_global_status_name(ckpt_global_status status);
/*
 * Classifies a pair as the calling thread's loads would (after Python 2 name normalisation). For
 * never-allowed names *why (may be NULL) receives the reason (static text); otherwise NULL.
 */
CKPT_API ckpt_global_status ckpt_registry_classify(const ckpt_registry *reg, const char *module,
                                                   const char *name, const char **why);

/* ---- scopes (thread-local) ---- */

typedef uint64_t ckpt_registry_scope;

/*
 * Allows names (same syntax and checks as ckpt_registry_add_safe_globals) for the calling thread only,
 * until ckpt_registry_safe_globals_pop. reg NULL means the default registry. *scope receives the token
 * to pop with. Scopes nest; a failed push changes nothing.
 */
CKPT_API ckpt_status ckpt_registry_safe_globals_push(const ckpt_registry *reg, const char *const *names,
                                                     size_t count, ckpt_registry_scope *scope, ckpt_error *err);
/*
 * Ends a scope: the thread sees the registry exactly as before the push (loads in between, failed or
 * not, change nothing). CKPT_ERR_STATE when `scope` is not this thread's innermost scope on reg
 * (popped out of LIFO order, popped twice, pushed by another thread) or when called from a handler
 * during a load; the scopes are then left as they were.
 */
CKPT_API ckpt_status ckpt_registry_safe_globals_pop(const ckpt_registry *reg, ckpt_registry_scope scope,
                                                    ckpt_error *err);

/* ---- handlers: turning an allowed object or call into a native value ---- */

/* Valid only during the handler call; gives access to the load's allocator. */
typedef struct ckpt_handler_ctx ckpt_handler_ctx;

/*
 * Called once per OBJECT/CALL node of the global, after the whole pickle has been read (so BUILD state
 * and items are final; the nodes it contains have had their own handlers run first, except along a
 * reference cycle). Return CKPT_OK and set *out to the replacement value (new, from the ckpt_handler_*
 * constructors, or any value reachable from `node`), or leave *out NULL to keep the generic node. The
 * replacement takes the node's place everywhere it is referenced. Any other status fails the load with
 * err's message. A handler must not call into the registry or load anything.
 */
typedef ckpt_status (*ckpt_global_handler)(ckpt_handler_ctx *ctx, const ckpt_value *node, void *user,
                                           ckpt_value **out, ckpt_error *err);

/* Allows a name and attaches a handler (user is passed back to it). */
CKPT_API ckpt_status ckpt_registry_add_handler(ckpt_registry *reg, const char *name, ckpt_global_handler fn,
                                               void *user, ckpt_error *err);

/*
 * Allows names with libckpt's built-in handlers for them (off by default), e.g. "argparse.Namespace"
 * (-> dict typed argparse.Namespace), "collections.defaultdict" (-> dict), "builtins.slice",
 * "builtins.range", "numpy.dtype", "numpy.core.multiarray._reconstruct" (-> tensor)... CKPT_ERR_NOT_FOUND
 * for a name without one. ckpt_registry_builtin_handlers lists them.
 */
CKPT_API ckpt_status ckpt_registry_enable_handlers(ckpt_registry *reg, const char *const *names, size_t count,
                                                   ckpt_error *err);
/* NULL-terminated list of the names that have a built-in handler (static). */
CKPT_API const char *const *ckpt_registry_builtin_handlers(void);

/*
 * Enables a named group of built-in handlers: "numpy" (arrays -> tensors, scalars -> int/float/bool/
 * complex, dtypes, under both numpy.core and numpy._core spellings), "stdlib" (argparse.Namespace,
 * collections.defaultdict, builtins.slice, builtins.range). CKPT_ERR_NOT_FOUND for an unknown preset.
 */
CKPT_API ckpt_status ckpt_registry_add_preset(ckpt_registry *reg, const char *preset, ckpt_error *err);
/* NULL-terminated list of preset names (static). */
CKPT_API const char *const *ckpt_registry_presets(void);

/* Constructors for handlers. They return NULL when the load's allocation limit is reached. */
CKPT_API ckpt_value *ckpt_handler_new_none(ckpt_handler_ctx *ctx);
CKPT_API ckpt_value *ckpt_handler_new_bool(ckpt_handler_ctx *ctx, bool b);
CKPT_API ckpt_value *ckpt_handler_new_int(ckpt_handler_ctx *ctx, int64_t v);
CKPT_API ckpt_value *ckpt_handler_new_float(ckpt_handler_ctx *ctx, double v);
CKPT_API ckpt_value *ckpt_handler_new_str(ckpt_handler_ctx *ctx, const char *s, size_t len);
CKPT_API ckpt_value *ckpt_handler_new_bytes(ckpt_handler_ctx *ctx, const void *p, size_t len);
/* An empty LIST, TUPLE, DICT or SET (NULL for other kinds). */
CKPT_API ckpt_value *ckpt_handler_new_container(ckpt_handler_ctx *ctx, ckpt_kind kind);
/* Appends to a list/tuple (set: adds) the handler created. */
CKPT_API ckpt_status ckpt_handler_append(ckpt_handler_ctx *ctx, ckpt_value *container, const ckpt_value *item,
                                         ckpt_error *err);
/* d[key] = val on a dict the handler created (Python semantics). */
CKPT_API ckpt_status ckpt_handler_dict_set(ckpt_handler_ctx *ctx, ckpt_value *dict, const ckpt_value *key,
                                           const ckpt_value *val, ckpt_error *err);
/* Gives a value the handler created a Python type name ("collections.defaultdict"); copied. */
CKPT_API ckpt_status ckpt_handler_set_type_name(ckpt_handler_ctx *ctx, ckpt_value *v, const char *type_name,
                                                ckpt_error *err);
/*
 * A tensor over a copy of `data` (nbytes bytes, little-endian elements). shape/stride have ndim
 * entries (stride in elements; NULL: C-contiguous). Checked like any tensor: every element must lie in
 * the nbytes given. With CKPT_LOAD_SKIP_DATA the tensor has no data.
 */
CKPT_API ckpt_status ckpt_handler_new_tensor(ckpt_handler_ctx *ctx, ckpt_dtype dtype, size_t ndim,
                                             const int64_t *shape, const int64_t *stride, const void *data,
                                             size_t nbytes, ckpt_value **out, ckpt_error *err);

#ifdef __cplusplus
}
#endif
#endif
