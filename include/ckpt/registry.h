/*
 * registry.h: the allowlist of globals a pickle may name.
 *
 * A pickle can name any Python global ("module.name") and call it. libckpt never imports or calls
 * anything: a global is usable only when its exact module + name pair is in the registry, and then only
 * through libckpt's own handler for it, which turns the call into data. Anything else stops the load
 * with CKPT_ERR_BLOCKED before any later opcode runs.
 *
 * The default registry holds exactly what current PyTorch's weights-only unpickler allows by default
 * (tensor rebuild functions, typed storages, dtypes, torch.Size, torch.device, OrderedDict, ...).
 *
 * Thread safety: a registry may be shared by any number of concurrent loads. Adding or clearing
 * entries while loads run is safe (they see the registry before or after the change, never a mix).
 */
#ifndef CKPT_REGISTRY_H
#define CKPT_REGISTRY_H

#include <stdbool.h>
#include "common.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ckpt_registry ckpt_registry;

/* Flags for ckpt_registry_new. */
#define CKPT_REGISTRY_EMPTY 0x1u /* start without the default (PyTorch weights-only) allowlist */

CKPT_API ckpt_registry *ckpt_registry_new(unsigned flags);
CKPT_API void ckpt_registry_free(ckpt_registry *reg);

/*
 * Allows each "module.name" in names (like torch.serialization.add_safe_globals). The module is
 * everything before the last dot. An allowed class becomes a generic object node when the pickle builds
 * it; an allowed function reached by REDUCE becomes a call node; neither is ever executed. Names whose
 * only use is running code or touching the system (os.system, builtins.eval, subprocess.*, ...) are
 * refused with CKPT_ERR_INVALID_ARG and a message saying why. All-or-nothing: on error nothing is added.
 */
CKPT_API ckpt_status ckpt_registry_add_safe_globals(ckpt_registry *reg, const char *const *names,
                                                    size_t count, ckpt_error *err);

/* True when the exact pair is allowed (after Python 2 name normalisation, e.g. __builtin__). */
CKPT_API bool ckpt_registry_is_allowed(const ckpt_registry *reg, const char *module, const char *name);

/* The shared, immutable default registry (never free it). */
CKPT_API const ckpt_registry *ckpt_registry_default(void);

#ifdef __cplusplus
}
#endif
#endif
