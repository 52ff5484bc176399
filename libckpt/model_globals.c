/*
 * model_globals.c: what model mode (CKPT_LOAD_MODEL) lets a pickle name beyond the registry.
 *
 * torch.save(model) pickles every module with its class: protocol 2+ as `GLOBAL pkg.Class`, `()`,
 * NEWOBJ, then BUILD with the instance __dict__; protocol 0/1 as copyreg._reconstructor(cls, object,
 * None) then BUILD; the legacy format passes the class through a ('module', cls, file, source)
 * persistent id. Python would create the instance with cls.__new__ (no __init__, no other code) and set
 * its __dict__. Model mode records such an instance as an object node (class name, state), never
 * resolving or calling anything:
 *   - a name the registry does not allow and that is not never-allowed gets the opaque entry below: the
 *     pickle may use it as a value (an activation function stored in an attribute) or as the class of
 *     NEWOBJ / NEWOBJ_EX; REDUCE, INST and OBJ on it (calls that would run code) are refused;
 *   - copyreg._reconstructor(cls, object, None), copyreg.__newobj__(cls, *args) and
 *     copyreg.__newobj_ex__(cls, args, kwargs) stand for NEWOBJ on cls (pickle_vm.c);
 *   - never-allowed names (os.system, builtins.eval...) are refused as in any load.
 * After the load every object of an opaque class must be an nn.Module (its state has _parameters,
 * _buffers and _modules dicts): model.c refuses anything else, so no other kind of object gets in.
 */
#include <string.h>

#include "registry_internal.h"

static const ck_reg_entry opaque = {.module = "", .name = "", .kind = CK_G_CLASS, .flags = CK_RF_MODEL};

static const ck_reg_entry ctors[] = {
    {.module = "copyreg", .name = "_reconstructor", .kind = CK_G_FUNCTION, .flags = CK_RF_MODEL_CTOR},
    {.module = "copyreg", .name = "__newobj__", .kind = CK_G_FUNCTION, .flags = CK_RF_MODEL_CTOR},
    {.module = "copyreg", .name = "__newobj_ex__", .kind = CK_G_FUNCTION, .flags = CK_RF_MODEL_CTOR},
};

const ck_reg_entry *ck_model_opaque_entry(void) { return &opaque; }

const ck_reg_entry *ck_model_lookup(const char *module, const char *name)
{
    if (ck_never_allowed(module, name, NULL)) return NULL;
    if (strcmp(module, "copyreg") == 0) {
        for (size_t i = 0; i < sizeof ctors / sizeof *ctors; i++)
            if (strcmp(ctors[i].name, name) == 0) return &ctors[i];
        return NULL; /* the rest of copyreg (extension registry, pickle hooks) has no place in a model */
    }
    return &opaque;
}
