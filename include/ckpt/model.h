/*
 * model.h: whole-model pickles (torch.save(model)) read in model mode, the state dict PyTorch would
 * give, and checks of a checkpoint against a schema of what the current code expects.
 *
 * Model mode. Load with CKPT_LOAD_MODEL (checkpoint.h): the classes of module objects are recorded as
 * opaque objects (class name + pickled __dict__), never resolved or called; the legacy format's module
 * persistent ids give their class; TorchScript archives (with CKPT_LOAD_TORCHSCRIPT) are read as data.
 * During the load libckpt finds the model (the root, a module or state dict under a well-known key of a
 * training checkpoint, or the first module in walk order) and computes the state dict with PyTorch's
 * rules (nn.Module.state_dict): each module's non-None _parameters, then its _buffers minus those in
 * _non_persistent_buffers_set, then its submodules in _modules order, with dotted keys; a submodule
 * reachable at two paths is listed under both; every entry is a new tensor (like torch's detach())
 * sharing the storage of the pickled parameter, so tied weights stay one storage. The loaded checkpoint
 * stays immutable: any number of threads may read the state dict and the module list.
 *
 * Not reproduced (libckpt never runs class code): get_extra_state() (a module's `_extra_state` entry
 * exists only in files that are state dicts already, where it is kept), state_dict hooks, and the
 * `_metadata` versions (class attributes, not pickled; load_state_dict treats missing versions as the
 * oldest, which matters only to modules whose loading code converts old layouts).
 */
#ifndef CKPT_MODEL_H
#define CKPT_MODEL_H

#include <stdbool.h>
#include "checkpoint.h"
#include "common.h"
#include "error.h"
#include "tensor.h"
#include "value.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where a model-mode load found its state dict. Values are stable; new ones are only appended. */
typedef enum ckpt_model_source {
    CKPT_MODEL_NONE = 0,    /* no model and no state dict (or not loaded with CKPT_LOAD_MODEL) */
    CKPT_MODEL_MODULE,      /* a pickled nn.Module tree: the state dict is computed from it */
    CKPT_MODEL_STATE_DICT,  /* a state dict already in the file (its entries, unchanged) */
    CKPT_MODEL_TORCHSCRIPT  /* a TorchScript module tree (torch.jit.load(f).state_dict()) */
} ckpt_model_source;

CKPT_API ckpt_model_source ckpt_checkpoint_model_source(const ckpt_checkpoint *ckpt);
/*
 * The state dict (a collections.OrderedDict of str -> tensor; `_extra_state` entries may hold other
 * values), owned by the checkpoint; NULL for CKPT_MODEL_NONE. It is an ordinary value: walk it with
 * ckpt_value_dict_*, or save it (writer.h) as a file torch.load(weights_only=True) reads.
 */
CKPT_API const ckpt_value *ckpt_checkpoint_state_dict(const ckpt_checkpoint *ckpt);
/*
 * The dotted path of what the state dict came from ("" for the root, "model", "model.module" for a
 * DataParallel's inner module...), and the key prefix removed from a state dict whose keys all carried
 * it ("module.", as DataParallel saves them) or "". NULL for CKPT_MODEL_NONE.
 */
CKPT_API const char *ckpt_checkpoint_model_path(const ckpt_checkpoint *ckpt);
CKPT_API const char *ckpt_checkpoint_model_stripped_prefix(const ckpt_checkpoint *ckpt);

/*
 * The module objects of a module tree, each once at the first path that reaches it, in state_dict()
 * order (like named_modules()): path "" is the model itself. The value is an OBJECT node: its class is
 * ckpt_value_type_name, its pickled __dict__ ckpt_value_object_state.
 */
CKPT_API size_t ckpt_checkpoint_num_modules(const ckpt_checkpoint *ckpt);
CKPT_API const ckpt_value *ckpt_checkpoint_module(const ckpt_checkpoint *ckpt, size_t i, const char **path);

/* ---- schemas: what the current code expects ---- */

/*
 * A schema (immutable once made; may be shared by threads):
 *   {"keys": {"conv.weight": {"dtype": "float32", "shape": [8, 3, 3, 3]}, "conv.bias": {}, ...},
 *    "classes": {"timm.layers.conv_bn_act.ConvNormAct": {"attributes": ["conv", "bn", "act", "aa"]},
 *                "torch.nn.modules.container.Sequential": {"attributes": ["0"], "optional_attributes": ["1"]}}}
 * Both members are optional; a key entry may give dtype, shape, both or neither (presence only). Key
 * order is the expected state-dict order. A class's attributes are those found in an instance's
 * __dict__ or its _parameters, _buffers or _modules, leaving out nn.Module's own bookkeeping
 * (training, _parameters, _forward_hooks...): "attributes" every instance has (a pickled instance
 * lacking one is reported), "optional_attributes" (may be absent) only some have, like a container's
 * children (neither is reported as unexpected). tools/ckpt-schema.py writes one from a live model.
 * Parsing is strict: unknown members, duplicate names, wrong types, unknown dtypes and negative sizes
 * are errors (CKPT_ERR_FORMAT) naming the place.
 */
typedef struct ckpt_schema ckpt_schema;

CKPT_API ckpt_status ckpt_schema_parse(const void *json, size_t len, ckpt_schema **out, ckpt_error *err);
CKPT_API ckpt_status ckpt_schema_load_file(const char *path, ckpt_schema **out, ckpt_error *err);
/*
 * The schema of a checkpoint loaded with CKPT_LOAD_MODEL (`ckpt check --like REF`): its state dict's
 * keys, dtypes and shapes, and for a module tree each class's attributes (union over its instances).
 * CKPT_ERR_STATE when not loaded in model mode, CKPT_ERR_NOT_FOUND when it holds no model.
 */
CKPT_API ckpt_status ckpt_schema_from_checkpoint(const ckpt_checkpoint *ckpt, ckpt_schema **out, ckpt_error *err);
CKPT_API void ckpt_schema_free(ckpt_schema *schema);
/* The schema as JSON (the format above), NUL-terminated; release with ckpt_free. */
CKPT_API ckpt_status ckpt_schema_to_json(const ckpt_schema *schema, unsigned flags, char **out, ckpt_error *err);

/* ---- checking a checkpoint against a schema ---- */

/* Kinds of findings. Values are stable; new kinds are only appended. */
typedef enum ckpt_finding_kind {
    CKPT_FINDING_MISSING_KEY = 0,      /* a schema key the state dict lacks (schema order) */
    CKPT_FINDING_UNEXPECTED_KEY,       /* a state-dict key the schema lacks (state-dict order) */
    CKPT_FINDING_SHAPE_MISMATCH,       /* both have the key; shapes differ (state-dict order) */
    CKPT_FINDING_DTYPE_MISMATCH,       /* both have the key; dtypes differ (state-dict order) */
    CKPT_FINDING_MISSING_ATTRIBUTE,    /* a module lacks an attribute its class expects (module order) */
    CKPT_FINDING_UNEXPECTED_ATTRIBUTE, /* a module has an attribute its class no longer has */
    CKPT_FINDING_UNKNOWN_CLASS,        /* a pickled module class the schema does not know (first path) */
    CKPT_FINDING_KIND_COUNT_
} ckpt_finding_kind;

/* "missing_keys", "unexpected_keys", ... (the JSON member names). */
CKPT_API const char *ckpt_finding_kind_name(ckpt_finding_kind kind);

typedef struct ckpt_report ckpt_report;
typedef struct ckpt_finding ckpt_finding;

/*
 * Compares a checkpoint loaded with CKPT_LOAD_MODEL with a schema, all findings at once (like
 * load_state_dict's missing_keys / unexpected_keys / size mismatches, and the attributes Python would
 * miss). Class checks run only when the schema has "classes". *out receives a report to free with
 * ckpt_report_free (also when it is clean). CKPT_ERR_STATE when not loaded in model mode,
 * CKPT_ERR_NOT_FOUND when the checkpoint holds no model or state dict.
 */
CKPT_API ckpt_status ckpt_check(const ckpt_checkpoint *ckpt, const ckpt_schema *schema, ckpt_report **out,
                                ckpt_error *err);
CKPT_API void ckpt_report_free(ckpt_report *report);
/* Number of findings of one kind; ckpt_report_total: of every kind (0: clean). */
CKPT_API size_t ckpt_report_count(const ckpt_report *report, ckpt_finding_kind kind);
CKPT_API size_t ckpt_report_total(const ckpt_report *report);
/* Finding i of a kind (owned by the report), or NULL. */
CKPT_API const ckpt_finding *ckpt_report_finding(const ckpt_report *report, ckpt_finding_kind kind, size_t i);

CKPT_API ckpt_finding_kind ckpt_finding_kind_of(const ckpt_finding *f);
/* The state-dict key (key findings) or module path (attribute and class findings). */
CKPT_API const char *ckpt_finding_key(const ckpt_finding *f);
/* The module's class (attribute and class findings), else NULL. */
CKPT_API const char *ckpt_finding_class(const ckpt_finding *f);
/* The attribute (attribute findings), else NULL. */
CKPT_API const char *ckpt_finding_attribute(const ckpt_finding *f);
/*
 * Unknown classes: when the schema has a class of the same name in another module (timm moved
 * timm.models.layers.X to timm.layers.X), a suggestion naming it and the registry alias that reads the
 * old name as the new class; else NULL.
 */
CKPT_API const char *ckpt_finding_hint(const ckpt_finding *f);
/*
 * Shape mismatches: the expected (schema) or found (checkpoint) shape. Returns false when there is none
 * (the found value is not a tensor); *dims may be NULL for 0-d shapes.
 */
CKPT_API bool ckpt_finding_shape(const ckpt_finding *f, bool found, size_t *ndim, const int64_t **dims);
/* Dtype mismatches: the expected or found dtype (CKPT_DTYPE_INVALID when the found value is not a tensor). */
CKPT_API ckpt_dtype ckpt_finding_dtype(const ckpt_finding *f, bool found);
/* Dtype mismatches: the found value's type name when it is not a tensor ("int"), else NULL. */
CKPT_API const char *ckpt_finding_found_type(const ckpt_finding *f);

/*
 * The report as the `ckpt check --json` document:
 *   {"missing_keys": [str..], "unexpected_keys": [str..],
 *    "shape_mismatches": [{"key", "expected": [int..], "found": [int..]|null}],
 *    "dtype_mismatches": [{"key", "expected": str, "found": str}],
 *    "missing_attributes": [{"path", "class", "attribute"}], "unexpected_attributes": [...],
 *    "unknown_classes": [{"path", "class"[, "hint"]}]}
 * flags: CKPT_JSON_PRETTY. Release with ckpt_free.
 */
CKPT_API ckpt_status ckpt_report_to_json(const ckpt_report *report, unsigned flags, char **out, ckpt_error *err);

#ifdef __cplusplus
}
#endif
#endif
