/*
 * torchscript.c: reading a TorchScript archive's data.pkl as data (CKPT_LOAD_TORCHSCRIPT only).
 *
 * torch.jit.save writes the module tree as a pickle (docs/pytorch-format-notes.md §7): each scripted
 * module is `GLOBAL __torch__.<qualified class>`, EMPTY_TUPLE, NEWOBJ, then BUILD with a dict of its
 * attributes (training, parameters, buffers, submodules, other attributes); typed containers go through
 * torch.jit._pickle helpers (restore_type_tag(value, "Dict[str, float]"), build_intlist([1, 2]), ...);
 * tensors are the usual _rebuild_tensor_v2 calls on `data/<key>` storages. PyTorch's own reader resolves
 * the __torch__ classes by compiling the archive's code/ and runs it; libckpt never reads code/:
 *   - a __torch__.* class becomes an object node (class name, BUILD state = attributes), nothing else;
 *   - the torch.jit._pickle helpers give their data argument back (what torch/jit/_pickle.py does);
 *   - every other global goes through the registry as in any checkpoint.
 * The result is the module tree: parameters and buffers are found under their attribute paths
 * ("fc.weight"), in the order of the scripted module's attributes, which is model.state_dict()'s order
 * for modules whose parameters precede their submodules. constants.pkl (tensors the code uses, never in
 * a state dict) is not read. Model mode (CKPT_LOAD_MODEL) gives torch.jit.load(f).state_dict() exactly,
 * from the __parameters__/__buffers__ declarations of code/ (ts_code.c, model.c).
 */
#include <stdio.h>
#include <string.h>

#include "formats.h"
#include "globals.h"

/* NEWOBJ / REDUCE on a __torch__ class: an object node recording the class and the arguments. */
static CK_HANDLER(ts_object)
{
    (void)err;
    ckpt_value *v = ck_new(u->store, CKPT_KIND_OBJECT);
    ck_object *o = ck_arena_zalloc(&u->store->arena, sizeof *o, _Alignof(ck_object));
    char *tn = ck_arena_qualname(&u->store->arena, e->module, e->name);
    if (!v || !o || !tn) return ck_out_of_memory(u->store, err);
    o->module = e->module;
    o->name = e->name;
    o->entry = e;
    o->args = args;
    o->kwargs = kwargs;
    v->u.obj = o;
    v->type_name = tn;
    *out = v;
    return CKPT_OK;
}

/* torch.jit._pickle.build_{intlist,tensorlist,doublelist,boollist}(data) and build_tensor_from_id(data): data */
static CK_HANDLER(ts_identity)
{
    (void)u;
    ckpt_status s = ck_no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 1, 1, err);
    if (s) return s;
    *out = args->u.seq.items[0];
    return CKPT_OK;
}

/* torch.jit._pickle.restore_type_tag(value, type_str): value (the tag only guides TorchScript's types) */
static CK_HANDLER(ts_restore_type_tag)
{
    (void)u;
    ckpt_status s = ck_no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 2, 2, err);
    const char *tag;
    if (!s) s = ck_arg_str(e, args, 1, &tag, NULL, err);
    if (s) return s;
    *out = args->u.seq.items[0];
    return CKPT_OK;
}

#define JIT(nm, h) {.module = "torch.jit._pickle", .name = nm, .kind = CK_G_FUNCTION, .call = h}
static const ck_reg_entry jit_helpers[] = {
    JIT("build_intlist", ts_identity),      JIT("build_tensorlist", ts_identity),
    JIT("build_doublelist", ts_identity),   JIT("build_boollist", ts_identity),
    JIT("build_tensor_from_id", ts_identity), JIT("restore_type_tag", ts_restore_type_tag),
};

static const ck_reg_entry *ts_resolve(void *ctx, const char *module, const char *name)
{
    ckpt_checkpoint *c = ctx;
    if (strcmp(module, "torch.jit._pickle") == 0) {
        for (size_t i = 0; i < CK_ARRAY_LEN(jit_helpers); i++)
            if (strcmp(jit_helpers[i].name, name) == 0) return &jit_helpers[i];
        return NULL;
    }
    if (strncmp(module, "__torch__", 9) != 0 || (module[9] != '\0' && module[9] != '.')) return NULL;
    /* module and name were copied into the checkpoint's arena by the VM; the entry lives there too */
    ck_reg_entry *e = ck_arena_zalloc(&c->store.arena, sizeof *e, _Alignof(ck_reg_entry));
    if (!e) return NULL; /* out of memory: refused as unknown, which stops the load */
    e->module = module;
    e->name = name;
    e->kind = CK_G_CLASS;
    e->call = ts_object;
    e->newobj = ts_object;
    return e;
}

void ck_torchscript_unpickler(ckpt_checkpoint *c, ck_unpickler *u)
{
    u->resolve = ts_resolve;
    u->resolve_ctx = c;
}
