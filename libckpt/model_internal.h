/*
 * model_internal.h: model mode (CKPT_LOAD_MODEL): the state dict and module list extracted during the
 * load (model.c), TorchScript class declarations (ts_code.c), schemas and reports (schema.c, check.c).
 */
#ifndef CK_MODEL_INTERNAL_H
#define CK_MODEL_INTERNAL_H

#include "checkpoint_internal.h"
#include "ckpt/model.h"
#include "zip.h"

/* One module object, at the first path that reaches it in state_dict() order. */
typedef struct ck_model_module {
    const char *path;       /* dotted, "" for the root */
    const ckpt_value *obj;  /* the OBJECT node */
    const char *class_name; /* "pkg.mod.Class" as the file names it (TorchScript: "__torch__....") */
} ck_model_module;

typedef struct ck_model {
    ckpt_model_source source;
    const char *path;       /* where in the file the model or state dict was found ("" = the root) */
    const char *stripped;   /* key prefix removed from a state dict ("module."), or "" */
    ckpt_value *state_dict; /* collections.OrderedDict in the checkpoint's store */
    ck_model_module *modules;
    size_t nmodules;
} ck_model;

/* Model mode, after the load: checks the opaque objects and extracts the state dict (sets c->model). */
ckpt_status ck_model_build(ckpt_checkpoint *c, ckpt_error *err);

/* nn.Module's own bookkeeping attributes (all versions), which schemas and checks leave out. */
bool ck_module_internal_attr(const char *name, size_t len);

/* ---- TorchScript: which attributes of a scripted module class are parameters and buffers ---- */

typedef struct ck_ts_class {
    const char *name;       /* "__torch__.torch.nn.modules.linear.Linear" */
    bool module;            /* declares __parameters__ (a module class) */
    ck_strmap params;       /* attribute names declared in __parameters__ / __buffers__ */
    ck_strmap buffers;
} ck_ts_class;

typedef struct ck_ts_classes {
    ck_strmap by_name;      /* qualified class name -> ck_ts_class * */
} ck_ts_classes;

/*
 * Reads the class declarations of a TorchScript archive's code/ (as text: nothing is compiled or run)
 * into c->ts_classes. Only `class NAME(...):` lines and their `__parameters__ = [...]` and
 * `__buffers__ = [...]` lines are read.
 */
ckpt_status ck_ts_read_classes(ckpt_checkpoint *c, const ck_zip *z, ckpt_error *err);
const ck_ts_class *ck_ts_class_of(const ckpt_checkpoint *c, const ckpt_value *obj);

#endif
