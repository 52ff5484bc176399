/*
 * test_model.c: model mode (CKPT_LOAD_MODEL), state-dict extraction, schemas and checks.
 *
 * - Every whole-model fixture made by torch 1.13 (tests/fixtures/gen_models.py) gives exactly the state
 *   dict torch gives for the same file (<name>.sd.json: keys in order, dtypes, shapes, element digests,
 *   which keys share a storage) and the module list named_modules() gives; the default load still
 *   refuses them.
 * - ckpt_check against the schemas tools/ckpt-schema.py wrote from the new code gives exactly the
 *   expected reports (<old>.<schema>.check.json, computed from torch's view and cross-checked against
 *   torch's own load_state_dict / AttributeError in the generator).
 * - Security: model mode still refuses never-allowed names, refuses calls of names outside the registry,
 *   refuses opaque objects that are not modules, every payload of the external corpus; a memo DAG of
 *   modules (2^n paths) is refused in linear time, 100,000-deep nesting is refused by the limits (and
 *   5,000-deep extracted, iteratively), a cycle is refused.
 * - Schema parsing is strict; findings are available through accessors and as JSON.
 * CKPT_FIXTURE_DIR points the suite at freshly generated fixtures (the CI interop run).
 */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "pickle_builder.h"
#include "support.h"

static const char *fixture_dir(void)
{
    const char *d = getenv("CKPT_FIXTURE_DIR");
    return d ? d : tst_path("fixtures/data");
}

static const char *fx(const char *name)
{
    static char buf[8][4096];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", fixture_dir(), name);
    return buf[k];
}

static ckpt_status load_opts(const char *path, unsigned flags, const ckpt_registry *reg, ckpt_checkpoint **out,
                             ckpt_error *err)
{
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_load_options_set_flags(o, flags);
    if (reg) ckpt_load_options_set_registry(o, reg);
    ckpt_status s = ckpt_load_file(path, o, out, err);
    ckpt_load_options_free(o);
    return s;
}

static ckpt_checkpoint *load_model(const char *path, const ckpt_registry *reg)
{
    ckpt_error *err = ckpt_error_new();
    ckpt_checkpoint *ck = NULL;
    ckpt_status s = load_opts(path, CKPT_LOAD_MODEL | CKPT_LOAD_TORCHSCRIPT, reg, &ck, err);
    ck_assert_msg(s == CKPT_OK, "%s: %s", path, ckpt_error_message(err));
    ckpt_error_free(err);
    return ck;
}

static json_t *read_json(const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    ck_assert_msg(j != NULL, "%s: %s", path, je.text);
    return j;
}

static const char *key_of(const ckpt_value *sd, size_t i)
{
    size_t n;
    return ckpt_value_str(ckpt_value_dict_key(sd, i), &n);
}

/* ---- state dicts against torch ---- */

static void compare_state_dict(const char *ref_name)
{
    json_t *ref = read_json(fx(ref_name));
    const char *file = json_string_value(json_object_get(ref, "file"));
    ckpt_checkpoint *ck = load_model(fx(file), NULL);
    const char *source = json_string_value(json_object_get(ref, "source"));
    ckpt_model_source want = strcmp(source, "torchscript") == 0 ? CKPT_MODEL_TORCHSCRIPT : CKPT_MODEL_MODULE;
    ck_assert_int_eq(ckpt_checkpoint_model_source(ck), want);
    ck_assert_str_eq(ckpt_checkpoint_model_path(ck), json_string_value(json_object_get(ref, "path")));
    ck_assert_str_eq(ckpt_checkpoint_model_stripped_prefix(ck), json_string_value(json_object_get(ref, "stripped")));
    const ckpt_value *sd = ckpt_checkpoint_state_dict(ck);
    ck_assert_ptr_nonnull(sd);
    ck_assert_str_eq(ckpt_value_type_name(sd), "collections.OrderedDict");
    json_t *keys = json_object_get(ref, "keys");
    ck_assert_msg(ckpt_value_len(sd) == json_array_size(keys), "%s: %zu keys, torch has %zu", file, ckpt_value_len(sd),
                  json_array_size(keys));
    const ckpt_storage *groups[256];
    size_t ngroups = 0;
    for (size_t i = 0; i < json_array_size(keys); i++) {
        json_t *e = json_array_get(keys, i);
        const char *k = json_string_value(json_object_get(e, "key"));
        ck_assert_msg(strcmp(key_of(sd, i), k) == 0, "%s: key %zu is '%s', torch has '%s'", file, i, key_of(sd, i), k);
        const ckpt_value *v = ckpt_value_dict_value(sd, i);
        const ckpt_tensor *t = ckpt_value_tensor(v);
        ck_assert_msg(t != NULL, "%s: %s is not a tensor", file, k);
        ck_assert_str_eq(ckpt_dtype_name(ckpt_tensor_dtype(t)), json_string_value(json_object_get(e, "dtype")));
        json_t *shape = json_object_get(e, "shape");
        ck_assert_uint_eq(ckpt_tensor_ndim(t), json_array_size(shape));
        for (size_t d = 0; d < json_array_size(shape); d++)
            ck_assert_int_eq(ckpt_tensor_shape(t)[d], json_integer_value(json_array_get(shape, d)));
        /* like torch's detach(): plain tensors, no grad */
        ck_assert(!ckpt_tensor_is_parameter(t));
        ck_assert_int_eq(ckpt_tensor_requires_grad(t), json_is_true(json_object_get(e, "requires_grad")));
        ck_assert_str_eq(ckpt_value_type_name(v), "torch.Tensor");
        uint64_t h;
        ck_assert_int_eq(ckpt_tensor_xxh3_64(t, &h, NULL), CKPT_OK);
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
        ck_assert_msg(strcmp(hex, json_string_value(json_object_get(e, "xxh3_64"))) == 0, "%s: %s values differ", file, k);
        /* storage groups in order of first appearance: shared parameters stay one storage */
        const ckpt_storage *st = ckpt_tensor_storage(t);
        size_t g = 0;
        while (g < ngroups && groups[g] != st) g++;
        if (g == ngroups) groups[ngroups++] = st;
        ck_assert_msg((json_int_t)g == json_integer_value(json_object_get(e, "storage")), "%s: %s storage group %zu", file,
                      k, g);
    }
    json_t *mods = json_object_get(ref, "modules");
    ck_assert_uint_eq(ckpt_checkpoint_num_modules(ck), json_array_size(mods));
    for (size_t i = 0; i < json_array_size(mods); i++) {
        const char *path;
        const ckpt_value *m = ckpt_checkpoint_module(ck, i, &path);
        ck_assert_str_eq(path, json_string_value(json_object_get(json_array_get(mods, i), "path")));
        ck_assert_str_eq(ckpt_value_type_name(m), json_string_value(json_object_get(json_array_get(mods, i), "class")));
    }
    ck_assert_ptr_null(ckpt_checkpoint_module(ck, json_array_size(mods), NULL));
    ckpt_checkpoint_free(ck);
    json_decref(ref);
}

static size_t for_each_fixture(const char *suffix, void (*fn)(const char *name))
{
    DIR *d = opendir(fixture_dir());
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    size_t n = 0, sl = strlen(suffix);
    char names[64][256];
    while ((e = readdir(d)) && n < 64) {
        size_t l = strlen(e->d_name);
        if (l > sl && strcmp(e->d_name + l - sl, suffix) == 0) snprintf(names[n++], sizeof names[0], "%s", e->d_name);
    }
    closedir(d);
    for (size_t i = 0; i < n; i++) fn(names[i]);
    return n;
}

START_TEST(state_dicts_match_torch)
{
    /* 11 whole models + legacy_model.pth + torchscript.pt */
    ck_assert_uint_ge(for_each_fixture(".sd.json", compare_state_dict), 13);
}
END_TEST

START_TEST(default_load_stays_weights_only)
{
    static const char *const files[] = {"model_sequential.pth", "model_protocol1.pth", "model_protocol4.pth",
                                        "model_timm_old.pth", "model_features.pth", "model_training.pth",
                                        "model_legacy.pth", "model_newest.pth", "model_dataparallel.pth"};
    ckpt_error *err = ckpt_error_new();
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        ckpt_checkpoint *ck = NULL;
        ck_assert_int_eq(load_opts(fx(files[i]), 0, NULL, &ck, err), CKPT_ERR_BLOCKED);
        ck_assert_ptr_null(ck);
        ck_assert_msg(strstr(ckpt_error_message(err), "CKPT_LOAD_MODEL") != NULL, "%s: %s", files[i],
                      ckpt_error_message(err));
    }
    /* TorchScript without model mode: read as data, no state dict */
    ckpt_checkpoint *ck = NULL;
    ck_assert_int_eq(load_opts(fx("model_ts.pth"), CKPT_LOAD_TORCHSCRIPT, NULL, &ck, err), CKPT_OK);
    ck_assert_ptr_null(ckpt_checkpoint_state_dict(ck));
    ck_assert_int_eq(ckpt_checkpoint_model_source(ck), CKPT_MODEL_NONE);
    ck_assert_ptr_null(ckpt_checkpoint_model_path(ck));
    ck_assert_uint_eq(ckpt_checkpoint_num_modules(ck), 0);
    ckpt_report *r = NULL;
    ckpt_schema *s = NULL;
    ck_assert_int_eq(ckpt_schema_parse("{}", 2, &s, err), CKPT_OK);
    ck_assert_int_eq(ckpt_check(ck, s, &r, err), CKPT_ERR_STATE);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(ckpt_error_message(err), "CKPT_LOAD_MODEL") != NULL, "%s", ckpt_error_message(err));
    ckpt_schema_free(s);
    ck_assert_int_eq(ckpt_schema_from_checkpoint(ck, &s, err), CKPT_ERR_STATE);
    ck_assert_ptr_null(s);
    ckpt_checkpoint_free(ck);
    ckpt_error_free(err);
}
END_TEST

START_TEST(state_dict_sources)
{
    /* a training checkpoint whose 'model' is a state dict: taken as it is (the same tensors) */
    ckpt_checkpoint *ck = load_model(tst_path("fixtures/data/training.pt"), NULL);
    ck_assert_int_eq(ckpt_checkpoint_model_source(ck), CKPT_MODEL_STATE_DICT);
    ck_assert_str_eq(ckpt_checkpoint_model_path(ck), "model");
    const ckpt_value *sd = ckpt_checkpoint_state_dict(ck);
    ck_assert_uint_eq(ckpt_value_len(sd), 4);
    ck_assert_str_eq(key_of(sd, 0), "0.weight");
    ck_assert_ptr_eq(ckpt_value_tensor(ckpt_value_dict_value(sd, 0)), ckpt_checkpoint_find_tensor(ck, "model.0.weight"));
    ck_assert_uint_eq(ckpt_checkpoint_num_modules(ck), 0);
    ckpt_checkpoint_free(ck);
    /* a plain state dict file: the root */
    ck = load_model(tst_path("fixtures/data/tied.pt"), NULL);
    ck_assert_int_eq(ckpt_checkpoint_model_source(ck), CKPT_MODEL_STATE_DICT);
    ck_assert_str_eq(ckpt_checkpoint_model_path(ck), "");
    sd = ckpt_checkpoint_state_dict(ck);
    ck_assert_uint_eq(ckpt_value_len(sd), 2);
    ck_assert_ptr_eq(ckpt_tensor_storage(ckpt_value_tensor(ckpt_value_dict_value(sd, 0))),
                     ckpt_tensor_storage(ckpt_value_tensor(ckpt_value_dict_value(sd, 1))));
    ckpt_checkpoint_free(ck);
    /* nothing model-like: no state dict, not an error */
    ck = load_model(tst_path("fixtures/data/nested.pt"), NULL);
    ck_assert_int_eq(ckpt_checkpoint_model_source(ck), CKPT_MODEL_NONE);
    ck_assert_ptr_null(ckpt_checkpoint_state_dict(ck));
    ckpt_error *err = ckpt_error_new();
    ckpt_schema *s;
    ck_assert_int_eq(ckpt_schema_from_checkpoint(ck, &s, err), CKPT_ERR_NOT_FOUND);
    ckpt_error_free(err);
    ckpt_checkpoint_free(ck);
}
END_TEST

/* A torch zip around a pickle that uses storage "0" (n float32 elements) or none. */
static ckpt_status load_pickle_model(const pk *b, size_t floats, const ckpt_load_options *o, ckpt_checkpoint **ck,
                                     ckpt_error *err)
{
    float *data = calloc(floats ? floats : 1, sizeof *data);
    for (size_t i = 0; i < floats; i++) data[i] = (float)i / 4;
    tst_record rec = {"data/0", data, floats * sizeof *data};
    ckpt_load_options *own = NULL;
    if (!o) {
        own = ckpt_load_options_new();
        ckpt_load_options_set_flags(own, CKPT_LOAD_MODEL);
        o = own;
    }
    ckpt_status s = tst_load_pickle(b->p, b->len, &rec, floats ? 1 : 0, o, ck, err);
    ckpt_load_options_free(own);
    free(data);
    return s;
}

/* _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', n), offset, (len,), (1,), False, OrderedDict()) */
static void pk_tensor(pk *b, int offset, int len, int numel)
{
    pk_global(b, "torch._utils", "_rebuild_tensor_v2");
    pk_mark(b);
    pk_mark(b);
    pk_str(b, "storage");
    pk_global(b, "torch", "FloatStorage");
    pk_str(b, "0");
    pk_str(b, "cpu");
    pk_int(b, numel);
    pk_tuple(b);
    pk_op(b, 'Q'); /* BINPERSID */
    pk_int(b, offset);
    pk_int(b, len);
    pk_tuple1(b);
    pk_int(b, 1);
    pk_tuple1(b);
    pk_false(b);
    pk_global(b, "collections", "OrderedDict");
    pk_empty_tuple(b);
    pk_reduce(b);
    pk_tuple(b);
    pk_reduce(b);
}

/* The state of an empty module on the stack ({_parameters: {}, _buffers: {}} and "_modules" {} open). */
static void pk_module_state_open(pk *b)
{
    pk_empty_dict(b);
    pk_str(b, "_parameters");
    pk_empty_dict(b);
    pk_setitem(b);
    pk_str(b, "_buffers");
    pk_empty_dict(b);
    pk_setitem(b);
    pk_str(b, "_modules");
    pk_empty_dict(b);
}

START_TEST(object_constructors)
{
    /* NEWOBJ_EX, copyreg.__newobj__, copyreg._reconstructor, BUILD with (dict, slots): each builds the module */
    for (int how = 0; how < 4; how++) {
        pk b = {0};
        pk_proto(&b, how == 2 ? 1 : 4);
        pk_global(&b, "pkgx.nets", "Net");
        if (how == 0) {
            pk_empty_tuple(&b);
            pk_empty_dict(&b);
            pk_newobj_ex(&b);
        } else if (how == 1) {
            pk_binput(&b, 0);
            pk_op(&b, '0'); /* POP */
            pk_global(&b, "copyreg", "__newobj__");
            pk_binget(&b, 0);
            pk_tuple1(&b);
            pk_reduce(&b);
        } else if (how == 2) {
            pk_binput(&b, 0);
            pk_op(&b, '0');
            pk_global(&b, "copy_reg", "_reconstructor"); /* protocol 1 spelling */
            pk_binget(&b, 0);
            pk_global(&b, "__builtin__", "object");
            pk_none(&b);
            pk_tuple3(&b);
            pk_reduce(&b);
        } else {
            pk_empty_tuple(&b);
            pk_newobj(&b);
        }
        pk_module_state_open(&b);
        pk_setitem(&b);
        pk_str(&b, "_parameters");
        pk_empty_dict(&b);
        pk_str(&b, "w");
        pk_tensor(&b, 0, 3, 3);
        pk_setitem(&b);
        pk_setitem(&b);
        if (how == 3) { /* ({...}, {"slot": 1}) */
            pk_empty_dict(&b);
            pk_str(&b, "slot");
            pk_int(&b, 1);
            pk_setitem(&b);
            pk_tuple2(&b);
        }
        pk_build(&b);
        pk_stop(&b);
        ckpt_checkpoint *ck = NULL;
        ckpt_error *err = ckpt_error_new();
        ck_assert_msg(load_pickle_model(&b, 3, NULL, &ck, err) == CKPT_OK, "%d: %s", how, ckpt_error_message(err));
        ck_assert_int_eq(ckpt_checkpoint_model_source(ck), CKPT_MODEL_MODULE);
        const ckpt_value *sd = ckpt_checkpoint_state_dict(ck);
        ck_assert_uint_eq(ckpt_value_len(sd), 1);
        ck_assert_str_eq(key_of(sd, 0), "w");
        const ckpt_value *root = ckpt_checkpoint_root(ck);
        ck_assert_str_eq(ckpt_value_type_name(root), "pkgx.nets.Net");
        if (how == 3) ck_assert_ptr_nonnull(ckpt_value_dict_get(ckpt_value_object_state(root), "slot"));
        /* without model mode: refused at the class */
        ck_assert_int_eq(tst_load_pickle(b.p, b.len, NULL, 0, NULL, NULL, err), CKPT_ERR_BLOCKED);
        ckpt_checkpoint_free(ck);
        ckpt_error_free(err);
        pk_free(&b);
    }
}
END_TEST

/* GLOBAL module.name, ('x',), REDUCE (or NEWOBJ), STOP */
static ckpt_status call_global(const char *module, const char *name, bool newobj, ckpt_error *err)
{
    pk b = {0};
    pk_proto(&b, 2);
    pk_global(&b, module, name);
    pk_str(&b, "x");
    pk_tuple1(&b);
    if (newobj) pk_newobj(&b);
    else pk_reduce(&b);
    pk_stop(&b);
    ckpt_status s = load_pickle_model(&b, 0, NULL, NULL, err);
    pk_free(&b);
    return s;
}

START_TEST(model_mode_refuses_code)
{
    ckpt_error *err = ckpt_error_new();
    /* never-allowed names stay refused, named as the refused global */
    static const char *const never[][2] = {{"os", "system"},          {"posix", "system"},   {"nt", "system"},
                                           {"builtins", "eval"},      {"builtins", "exec"},  {"subprocess", "Popen"},
                                           {"builtins", "__import__"}, {"torch", "load"},    {"pickle", "loads"},
                                           {"functools", "partial"},  {"operator", "attrgetter"}};
    for (size_t i = 0; i < sizeof never / sizeof *never; i++)
        for (int newobj = 0; newobj < 2; newobj++) {
            ck_assert_int_eq(call_global(never[i][0], never[i][1], newobj, err), CKPT_ERR_BLOCKED);
            char full[128];
            snprintf(full, sizeof full, "%s.%s", never[i][0], never[i][1]);
            ck_assert_str_eq(ckpt_error_global(err), full);
            ck_assert_msg(strstr(ckpt_error_message(err), "never be allowed") != NULL, "%s", ckpt_error_message(err));
        }
    /* a name outside the registry may be a class of a module, never called */
    ck_assert_int_eq(call_global("textwrap", "dedent", false, err), CKPT_ERR_BLOCKED);
    ck_assert_str_eq(ckpt_error_global(err), "textwrap.dedent");
    ck_assert_msg(strstr(ckpt_error_message(err), "called with REDUCE") != NULL, "%s", ckpt_error_message(err));
    ck_assert_msg(strstr(ckpt_error_message(err), "--allow textwrap.dedent") != NULL, "%s", ckpt_error_message(err));
    /* instantiated, but not a module: refused after the load */
    ck_assert_int_eq(call_global("pkgx", "Helper", true, err), CKPT_ERR_BLOCKED);
    ck_assert_msg(strstr(ckpt_error_message(err), "is not an nn.Module") != NULL, "%s", ckpt_error_message(err));
    ck_assert_str_eq(ckpt_error_global(err), "pkgx.Helper");
    /* INST and OBJ call the class */
    pk b = {0};
    pk_mark(&b);
    pk_inst(&b, "pkgx", "Net");
    pk_stop(&b);
    ck_assert_int_eq(load_pickle_model(&b, 0, NULL, NULL, err), CKPT_ERR_BLOCKED);
    ck_assert_msg(strstr(ckpt_error_message(err), "called with INST") != NULL, "%s", ckpt_error_message(err));
    pk_free(&b);
    pk_proto(&b, 1);
    pk_mark(&b);
    pk_global(&b, "pkgx", "Net");
    pk_obj(&b);
    pk_stop(&b);
    ck_assert_int_eq(load_pickle_model(&b, 0, NULL, NULL, err), CKPT_ERR_BLOCKED);
    pk_free(&b);
    /* copyreg: only the three object constructors; _reconstructor only with base object and no state */
    ck_assert_int_eq(call_global("copyreg", "_extension_registry", false, err), CKPT_ERR_BLOCKED);
    for (int k = 0; k < 3; k++) {
        pk_proto(&b, 2);
        pk_global(&b, "copyreg", "_reconstructor");
        pk_global(&b, "pkgx", "Net");
        if (k == 1) pk_global(&b, "builtins", "object");
        else pk_global(&b, "builtins", k == 0 ? "dict" : "list");
        if (k == 1) pk_str(&b, "state");
        else pk_none(&b);
        pk_tuple3(&b);
        pk_reduce(&b);
        pk_stop(&b);
        ck_assert_int_eq(load_pickle_model(&b, 0, NULL, NULL, err), CKPT_ERR_UNSUPPORTED);
        pk_free(&b);
    }
    /* _reconstructor of a function name, or of a never-allowed class */
    pk_proto(&b, 2);
    pk_global(&b, "copyreg", "__newobj__");
    pk_global(&b, "os", "system");
    pk_tuple1(&b);
    pk_reduce(&b);
    pk_stop(&b);
    ck_assert_int_eq(load_pickle_model(&b, 0, NULL, NULL, err), CKPT_ERR_BLOCKED);
    ck_assert_str_eq(ckpt_error_global(err), "os.system");
    pk_free(&b);
    /* an Enum member by name of an opaque class: getattr stays refused */
    pk_proto(&b, 4);
    pk_global(&b, "builtins", "getattr");
    pk_global(&b, "pkgx", "Phase");
    pk_str(&b, "TRAIN");
    pk_tuple2(&b);
    pk_reduce(&b);
    pk_stop(&b);
    ck_assert_int_eq(load_pickle_model(&b, 0, NULL, NULL, err), CKPT_ERR_BLOCKED);
    ck_assert_str_eq(ckpt_error_global(err), "builtins.getattr");
    pk_free(&b);
    /* items appended to an opaque module object: not a module any more */
    pk_proto(&b, 2);
    pk_global(&b, "pkgx", "Net");
    pk_empty_tuple(&b);
    pk_newobj(&b);
    pk_module_state_open(&b);
    pk_setitem(&b);
    pk_build(&b);
    pk_str(&b, "item");
    pk_append(&b);
    pk_stop(&b);
    ck_assert_int_eq(load_pickle_model(&b, 0, NULL, NULL, err), CKPT_ERR_BLOCKED);
    pk_free(&b);
    /* a function kept as a value (F.relu in TransformerEncoderLayer) is inert and allowed */
    pk_proto(&b, 2);
    pk_global(&b, "pkgx", "Net");
    pk_empty_tuple(&b);
    pk_newobj(&b);
    pk_module_state_open(&b);
    pk_setitem(&b);
    pk_str(&b, "activation");
    pk_global(&b, "torch.nn.functional", "relu");
    pk_setitem(&b);
    pk_build(&b);
    pk_stop(&b);
    ckpt_checkpoint *ck = NULL;
    ck_assert_msg(load_pickle_model(&b, 0, NULL, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    ck_assert_int_eq(ckpt_value_kind(ckpt_value_dict_get(ckpt_value_object_state(ckpt_checkpoint_root(ck)), "activation")),
                     CKPT_KIND_GLOBAL);
    ckpt_checkpoint_free(ck);
    pk_free(&b);
    ckpt_error_free(err);
}
END_TEST

/* Payload names of the external corpus README. */
static bool is_payload(const char *base)
{
    static const char *const exact[] = {"pytorch_magic_bypass.pt", "bad_pytorch.pt", "dns_exfiltration.npy",
                                        "cloudpickle_codeinjection.pkl", "io_FileIO.pkl", "logging_FileHandler.pkl",
                                        "types_CodeType.pkl", "urllib_request_urlopen.pkl"};
    for (size_t i = 0; i < sizeof exact / sizeof *exact; i++)
        if (strcmp(base, exact[i]) == 0) return true;
    return strncmp(base, "malicious", 9) == 0 || strncmp(base, "GHSA-", 5) == 0 || strstr(base, "_sploit") ||
           strstr(base, "exploit") || strncmp(base, "unsafe_", 7) == 0;
}

static void payloads_in(const char *dir, int *tried)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        DIR *sub = opendir(path);
        if (sub) {
            closedir(sub);
            payloads_in(path, tried);
            continue;
        }
        if (!is_payload(e->d_name)) continue;
        size_t len;
        uint8_t *data = tst_read_file(path, &len);
        ckpt_error *err = ckpt_error_new();
        ckpt_load_options *o = ckpt_load_options_new();
        ckpt_load_options_set_flags(o, CKPT_LOAD_MODEL);
        ckpt_checkpoint *ck = NULL;
        /* as the file, and as a checkpoint's data.pkl */
        ck_assert_msg(ckpt_load_file(path, o, &ck, err) != CKPT_OK, "%s loads in model mode", path);
        if (len < 4 || memcmp(data, "PK", 2) != 0) {
            ckpt_status s = tst_load_pickle(data, len, NULL, 0, o, &ck, err);
            ck_assert_msg(s != CKPT_OK, "%s loads as data.pkl in model mode", path);
            ck_assert_msg(s != CKPT_ERR_NOMEM, "%s: %s", path, ckpt_error_message(err));
        }
        (*tried)++;
        ckpt_load_options_free(o);
        ckpt_error_free(err);
        free(data);
    }
    closedir(d);
}

START_TEST(corpus_payloads_refused_in_model_mode)
{
    const char *root = tst_external("");
    if (!root) return;
    int tried = 0;
    payloads_in(root, &tried);
    printf("%d payload files refused in model mode\n", tried);
    ck_assert_int_ge(tried, 90);
}
END_TEST

/* Modules M_k with _modules {a: M_{k-1}, b: M_{k-1}} (memo-shared), M_0 holding parameter w. */
static void pk_module_dag(pk *b, int levels)
{
    pk_proto(b, 2);
    for (int k = 0; k <= levels; k++) {
        pk_global(b, "pkgx", "M");
        pk_empty_tuple(b);
        pk_newobj(b);
        pk_empty_dict(b);
        pk_str(b, "_parameters");
        pk_empty_dict(b);
        if (k == 0) {
            pk_str(b, "w");
            pk_tensor(b, 0, 2, 2);
            pk_setitem(b);
        }
        pk_setitem(b);
        pk_str(b, "_buffers");
        pk_empty_dict(b);
        pk_setitem(b);
        pk_str(b, "_modules");
        pk_empty_dict(b);
        if (k > 0) {
            pk_str(b, "a");
            pk_binget(b, (uint8_t)(k - 1));
            pk_setitem(b);
            pk_str(b, "b");
            pk_binget(b, (uint8_t)(k - 1));
            pk_setitem(b);
        }
        pk_setitem(b);
        pk_build(b);
        pk_binput(b, (uint8_t)k);
        if (k < levels) pk_op(b, '0');
    }
    pk_stop(b);
}

START_TEST(module_dag_stays_linear)
{
    ckpt_error *err = ckpt_error_new();
    /* 8 levels: 256 paths to one parameter, as PyTorch lists them; 9 module objects */
    pk b = {0};
    pk_module_dag(&b, 8);
    ckpt_checkpoint *ck = NULL;
    ck_assert_msg(load_pickle_model(&b, 2, NULL, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    const ckpt_value *sd = ckpt_checkpoint_state_dict(ck);
    ck_assert_uint_eq(ckpt_value_len(sd), 256);
    ck_assert_str_eq(key_of(sd, 0), "a.a.a.a.a.a.a.a.w");
    ck_assert_str_eq(key_of(sd, 255), "b.b.b.b.b.b.b.b.w");
    ck_assert_uint_eq(ckpt_checkpoint_num_modules(ck), 9);
    const ckpt_storage *st = ckpt_tensor_storage(ckpt_value_tensor(ckpt_value_dict_value(sd, 0)));
    for (size_t i = 0; i < 256; i++) ck_assert_ptr_eq(ckpt_tensor_storage(ckpt_value_tensor(ckpt_value_dict_value(sd, i))), st);
    /* the checker over it: its schema matches it */
    ckpt_schema *s;
    ckpt_report *r;
    ck_assert_int_eq(ckpt_schema_from_checkpoint(ck, &s, err), CKPT_OK);
    ck_assert_int_eq(ckpt_check(ck, s, &r, err), CKPT_OK);
    ck_assert_uint_eq(ckpt_report_total(r), 0);
    ckpt_report_free(r);
    ckpt_schema_free(s);
    ckpt_checkpoint_free(ck);
    pk_free(&b);
    /* 60 levels: 2^60 paths from a file of a few KB: refused, promptly */
    pk_module_dag(&b, 60);
    ck_assert_int_eq(load_pickle_model(&b, 2, NULL, &ck, err), CKPT_ERR_LIMIT);
    ck_assert_msg(strstr(ckpt_error_message(err), "DAG") != NULL, "%s", ckpt_error_message(err));
    pk_free(&b);
    ckpt_error_free(err);
}
END_TEST

/* `levels` modules nested through _modules['m'], the innermost with buffer w. */
static void pk_module_chain(pk *b, int levels)
{
    pk_proto(b, 2);
    for (int k = 0; k < levels; k++) {
        pk_global(b, "pkgx", "M");
        pk_empty_tuple(b);
        pk_newobj(b);
        pk_module_state_open(b);
        pk_str(b, "m");
    }
    pk_global(b, "pkgx", "M");
    pk_empty_tuple(b);
    pk_newobj(b);
    pk_empty_dict(b);
    pk_str(b, "_parameters");
    pk_empty_dict(b);
    pk_setitem(b);
    pk_str(b, "_buffers");
    pk_empty_dict(b);
    pk_str(b, "w");
    pk_tensor(b, 0, 2, 2);
    pk_setitem(b);
    pk_setitem(b);
    pk_str(b, "_modules");
    pk_empty_dict(b);
    pk_setitem(b);
    pk_build(b);
    for (int k = 0; k < levels; k++) {
        pk_setitem(b); /* 'm' -> child in _modules */
        pk_setitem(b); /* '_modules' -> dict in the state */
        pk_build(b);
    }
    pk_stop(b);
}

START_TEST(deep_nesting_is_iterative)
{
    ckpt_error *err = ckpt_error_new();
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_load_options_set_flags(o, CKPT_LOAD_MODEL);
    ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_ALLOC, (uint64_t)3 << 30);
    pk b = {0};
    /* 100,000 levels: refused by the default depth limit */
    pk_module_chain(&b, 100000);
    ckpt_checkpoint *ck = NULL;
    ck_assert_int_eq(load_pickle_model(&b, 2, o, &ck, err), CKPT_ERR_LIMIT);
    /* and with the depth limit raised, by the length of its dotted paths (1 MiB) */
    ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_DEPTH, 1000000);
    ck_assert_int_eq(load_pickle_model(&b, 2, o, &ck, err), CKPT_ERR_LIMIT);
    pk_free(&b);
    /* 90,000 levels: the walker goes all the way down (iteratively), but every module path repeats the
     * ones above it (90,000^2 bytes): refused by the budget of half CKPT_LIMIT_MAX_ALLOC, with a message */
    pk_module_chain(&b, 90000);
    ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_ALLOC, (uint64_t)512 << 20);
    ck_assert_int_eq(load_pickle_model(&b, 2, o, &ck, err), CKPT_ERR_LIMIT);
    ck_assert_msg(strstr(ckpt_error_message(err), "module paths add up") != NULL, "%s", ckpt_error_message(err));
    pk_free(&b);
    /* 5,000 levels (beyond the default depth limit of 1,000): extracted */
    pk_module_chain(&b, 5000);
    ck_assert_msg(load_pickle_model(&b, 2, o, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    const ckpt_value *sd = ckpt_checkpoint_state_dict(ck);
    ck_assert_uint_eq(ckpt_value_len(sd), 1);
    size_t n;
    const char *key = ckpt_value_str(ckpt_value_dict_key(sd, 0), &n);
    ck_assert_uint_eq(n, 2 * 5000 + 1);
    ck_assert_int_eq(key[n - 1], 'w');
    ck_assert_uint_eq(ckpt_checkpoint_num_modules(ck), 5001);
    ckpt_schema *s;
    ckpt_report *r;
    ck_assert_int_eq(ckpt_schema_from_checkpoint(ck, &s, err), CKPT_OK);
    ck_assert_int_eq(ckpt_check(ck, s, &r, err), CKPT_OK);
    ck_assert_uint_eq(ckpt_report_total(r), 0);
    ckpt_report_free(r);
    ckpt_schema_free(s);
    ckpt_checkpoint_free(ck);
    pk_free(&b);
    ckpt_load_options_free(o);
    ckpt_error_free(err);
}
END_TEST

START_TEST(module_cycle_refused)
{
    pk b = {0};
    pk_proto(&b, 2);
    pk_global(&b, "pkgx", "M");
    pk_empty_tuple(&b);
    pk_newobj(&b);
    pk_binput(&b, 0);
    pk_module_state_open(&b);
    pk_str(&b, "self");
    pk_binget(&b, 0);
    pk_setitem(&b);
    pk_setitem(&b);
    pk_build(&b);
    pk_stop(&b);
    ckpt_error *err = ckpt_error_new();
    ck_assert_int_eq(load_pickle_model(&b, 0, NULL, NULL, err), CKPT_ERR_PICKLE);
    ck_assert_msg(strstr(ckpt_error_message(err), "contains itself") != NULL, "%s", ckpt_error_message(err));
    pk_free(&b);
    ckpt_error_free(err);
}
END_TEST

START_TEST(state_dict_rules)
{
    /* a module whose _parameters hold a non-tensor, or whose _modules hold a non-module: named errors */
    for (int k = 0; k < 2; k++) {
        pk b = {0};
        pk_proto(&b, 2);
        pk_global(&b, "pkgx", "M");
        pk_empty_tuple(&b);
        pk_newobj(&b);
        pk_module_state_open(&b);
        pk_str(&b, "x");
        pk_int(&b, 3);
        pk_setitem(&b);
        pk_setitem(&b);
        if (k == 0) {
            pk_str(&b, "_parameters");
            pk_empty_dict(&b);
            pk_str(&b, "p");
            pk_str(&b, "not a tensor");
            pk_setitem(&b);
            pk_setitem(&b);
        }
        pk_build(&b);
        pk_stop(&b);
        ckpt_error *err = ckpt_error_new();
        ck_assert_int_eq(load_pickle_model(&b, 0, NULL, NULL, err), CKPT_ERR_UNSUPPORTED);
        ck_assert_msg(strstr(ckpt_error_message(err), k == 0 ? "_parameters['p'] is a str" : "_modules['x'] is a int") != NULL,
                      "%s", ckpt_error_message(err));
        ckpt_error_free(err);
        pk_free(&b);
    }
    /* a DataParallel-style state dict: the "module." prefix every key carries is dropped */
    pk b = {0};
    pk_proto(&b, 2);
    pk_empty_dict(&b);
    pk_str(&b, "module.fc.weight");
    pk_tensor(&b, 0, 2, 4);
    pk_setitem(&b);
    pk_str(&b, "module.fc.bias");
    pk_tensor(&b, 2, 2, 4);
    pk_setitem(&b);
    pk_stop(&b);
    ckpt_checkpoint *ck = NULL;
    ck_assert_int_eq(load_pickle_model(&b, 4, NULL, &ck, NULL), CKPT_OK);
    ck_assert_int_eq(ckpt_checkpoint_model_source(ck), CKPT_MODEL_STATE_DICT);
    ck_assert_str_eq(ckpt_checkpoint_model_stripped_prefix(ck), "module.");
    ck_assert_str_eq(key_of(ckpt_checkpoint_state_dict(ck), 1), "fc.bias");
    ckpt_checkpoint_free(ck);
    pk_free(&b);
}
END_TEST

/* Regression (fuzz_model): an attribute name holding a NUL byte was cut at it when compared, so a
 * checkpoint's own schema reported it missing. */
START_TEST(attribute_names_with_nul)
{
    pk b = {0};
    pk_proto(&b, 2);
    pk_global(&b, "pkgx", "M");
    pk_empty_tuple(&b);
    pk_newobj(&b);
    pk_module_state_open(&b);
    pk_setitem(&b);
    pk_op(&b, 'X');
    pk_u32(&b, 3);
    pk_raw(&b, "a\0b", 3);
    pk_int(&b, 1);
    pk_setitem(&b);
    pk_build(&b);
    pk_stop(&b);
    ckpt_checkpoint *ck = NULL;
    ck_assert_int_eq(load_pickle_model(&b, 0, NULL, &ck, NULL), CKPT_OK);
    ckpt_schema *s;
    ckpt_report *r;
    ck_assert_int_eq(ckpt_schema_from_checkpoint(ck, &s, NULL), CKPT_OK);
    ck_assert_int_eq(ckpt_check(ck, s, &r, NULL), CKPT_OK);
    ck_assert_uint_eq(ckpt_report_total(r), 0);
    ckpt_report_free(r);
    ckpt_schema_free(s);
    /* against a schema expecting "a": the pickled "a\0b" is another attribute */
    static const char js[] = "{\"classes\": {\"pkgx.M\": {\"attributes\": [\"a\"]}}}";
    ck_assert_int_eq(ckpt_schema_parse(js, sizeof js - 1, &s, NULL), CKPT_OK);
    ck_assert_int_eq(ckpt_check(ck, s, &r, NULL), CKPT_OK);
    ck_assert_uint_eq(ckpt_report_count(r, CKPT_FINDING_MISSING_ATTRIBUTE), 1);
    ck_assert_uint_eq(ckpt_report_count(r, CKPT_FINDING_UNEXPECTED_ATTRIBUTE), 1);
    ckpt_report_free(r);
    ckpt_schema_free(s);
    ckpt_checkpoint_free(ck);
    pk_free(&b);
}
END_TEST

/* ---- checks against the schemas of the new code ---- */

static void strip_hints(json_t *rep)
{
    json_t *u = json_object_get(rep, "unknown_classes");
    for (size_t i = 0; i < json_array_size(u); i++) json_object_del(json_array_get(u, i), "hint");
}

static void expect_report(const char *file, const char *schema_file, const char *alias, const char *expected)
{
    ckpt_registry *reg = NULL;
    if (alias) {
        reg = ckpt_registry_new(0);
        ck_assert_int_eq(ckpt_registry_add_safe_globals(reg, &alias, 1, NULL), CKPT_OK);
    }
    ckpt_checkpoint *ck = load_model(fx(file), reg);
    ckpt_error *err = ckpt_error_new();
    ckpt_schema *s = NULL;
    ck_assert_msg(ckpt_schema_load_file(fx(schema_file), &s, err) == CKPT_OK, "%s", ckpt_error_message(err));
    ckpt_report *r = NULL;
    ck_assert_int_eq(ckpt_check(ck, s, &r, err), CKPT_OK);
    char *text = NULL;
    ck_assert_int_eq(ckpt_report_to_json(r, 0, &text, err), CKPT_OK);
    json_t *got = json_loads(text, 0, NULL), *want = read_json(fx(expected));
    ck_assert_ptr_nonnull(got);
    /* the exact members, in order */
    const char *k;
    json_t *v;
    size_t i = 0;
    json_object_foreach(got, k, v) ck_assert_str_eq(k, ckpt_finding_kind_name((ckpt_finding_kind)i++));
    ck_assert_uint_eq(i, CKPT_FINDING_KIND_COUNT_);
    strip_hints(got);
    ck_assert_msg(json_equal(got, want), "%s against %s:\n%s", file, schema_file, text);
    size_t total = 0;
    json_object_foreach(want, k, v) total += json_array_size(v);
    ck_assert_uint_eq(ckpt_report_total(r), total);
    json_decref(got);
    json_decref(want);
    ckpt_free(text);
    ckpt_report_free(r);
    ckpt_schema_free(s);
    ckpt_error_free(err);
    ckpt_checkpoint_free(ck);
    ckpt_registry_free(reg);
}

START_TEST(check_reports_match)
{
    expect_report("model_mlp_old.pth", "model_mlp_new.schema.json", NULL, "model_mlp_old.model_mlp_new.check.json");
    expect_report("model_timm_old.pth", "model_timm_new.schema.json", NULL, "model_timm_old.model_timm_new.check.json");
    expect_report("model_timm_old.pth", "model_timm_new.schema.json",
                  "timm.models.layers.conv_bn_act.ConvNormAct=timm.layers.conv_bn_act.ConvNormAct",
                  "model_timm_old.model_timm_new.alias.check.json");
}
END_TEST

START_TEST(finding_accessors)
{
    ckpt_checkpoint *ck = load_model(fx("model_timm_old.pth"), NULL);
    ckpt_schema *s = NULL;
    ckpt_report *r = NULL;
    ck_assert_int_eq(ckpt_schema_load_file(fx("model_timm_new.schema.json"), &s, NULL), CKPT_OK);
    ck_assert_int_eq(ckpt_check(ck, s, &r, NULL), CKPT_OK);
    /* the class moved: the hint names where, and the alias that reads the old name */
    ck_assert_uint_eq(ckpt_report_count(r, CKPT_FINDING_UNKNOWN_CLASS), 1);
    const ckpt_finding *f = ckpt_report_finding(r, CKPT_FINDING_UNKNOWN_CLASS, 0);
    ck_assert_int_eq(ckpt_finding_kind_of(f), CKPT_FINDING_UNKNOWN_CLASS);
    ck_assert_str_eq(ckpt_finding_key(f), "stem.0");
    ck_assert_str_eq(ckpt_finding_class(f), "timm.models.layers.conv_bn_act.ConvNormAct");
    ck_assert_ptr_nonnull(strstr(ckpt_finding_hint(f), "--allow timm.models.layers.conv_bn_act.ConvNormAct="
                                                      "timm.layers.conv_bn_act.ConvNormAct"));
    ck_assert_ptr_null(ckpt_report_finding(r, CKPT_FINDING_UNKNOWN_CLASS, 1));
    ck_assert_ptr_null(ckpt_report_finding(r, CKPT_FINDING_KIND_COUNT_, 0));
    ckpt_report_free(r);
    ckpt_schema_free(s);
    ckpt_checkpoint_free(ck);
    /* mismatches */
    ck = load_model(fx("model_mlp_old.pth"), NULL);
    ck_assert_int_eq(ckpt_schema_load_file(fx("model_mlp_new.schema.json"), &s, NULL), CKPT_OK);
    ck_assert_int_eq(ckpt_check(ck, s, &r, NULL), CKPT_OK);
    f = ckpt_report_finding(r, CKPT_FINDING_SHAPE_MISMATCH, 0);
    size_t nd;
    const int64_t *d;
    ck_assert(ckpt_finding_shape(f, false, &nd, &d));
    ck_assert_uint_eq(nd, 2);
    ck_assert_int_eq(d[0], 16);
    ck_assert(ckpt_finding_shape(f, true, &nd, &d));
    ck_assert_int_eq(d[0], 8);
    f = ckpt_report_finding(r, CKPT_FINDING_DTYPE_MISMATCH, 0);
    ck_assert_str_eq(ckpt_finding_key(f), "scale");
    ck_assert_int_eq(ckpt_finding_dtype(f, false), CKPT_DTYPE_FLOAT64);
    ck_assert_int_eq(ckpt_finding_dtype(f, true), CKPT_DTYPE_FLOAT32);
    ck_assert_ptr_null(ckpt_finding_found_type(f));
    f = ckpt_report_finding(r, CKPT_FINDING_MISSING_ATTRIBUTE, 0);
    ck_assert_str_eq(ckpt_finding_attribute(f), "classifier");
    ck_assert_str_eq(ckpt_finding_class(f), "netfix.nets.MlpNet");
    ckpt_report_free(r);
    ckpt_schema_free(s);
    /* presence-only keys, and a schema member that is not a tensor in the file */
    static const char js[] = "{\"keys\": {\"fc1.weight\": {}, \"act\": {}, \"scale\": {\"shape\": [1]}}}";
    ck_assert_int_eq(ckpt_schema_parse(js, sizeof js - 1, &s, NULL), CKPT_OK);
    ck_assert_int_eq(ckpt_check(ck, s, &r, NULL), CKPT_OK);
    ck_assert_uint_eq(ckpt_report_count(r, CKPT_FINDING_MISSING_KEY), 1);   /* act */
    ck_assert_uint_eq(ckpt_report_count(r, CKPT_FINDING_UNEXPECTED_KEY), 3); /* fc1.bias, head.* */
    ck_assert_uint_eq(ckpt_report_count(r, CKPT_FINDING_SHAPE_MISMATCH), 0);
    ck_assert_uint_eq(ckpt_report_count(r, CKPT_FINDING_UNKNOWN_CLASS), 0); /* no "classes": not checked */
    ckpt_report_free(r);
    ckpt_schema_free(s);
    ckpt_checkpoint_free(ck);
}
END_TEST

START_TEST(schema_like_checkpoint)
{
    ckpt_checkpoint *mlp = load_model(fx("model_mlp_old.pth"), NULL), *dp = load_model(fx("model_dataparallel.pth"), NULL);
    ckpt_checkpoint *feats = load_model(fx("model_features.pth"), NULL);
    ckpt_schema *s = NULL, *s2 = NULL;
    ckpt_report *r = NULL;
    ckpt_error *err = ckpt_error_new();
    ck_assert_int_eq(ckpt_schema_from_checkpoint(mlp, &s, err), CKPT_OK);
    /* the same model inside DataParallel matches, also after a round trip through JSON */
    ck_assert_int_eq(ckpt_check(dp, s, &r, err), CKPT_OK);
    ck_assert_uint_eq(ckpt_report_total(r), 0);
    ckpt_report_free(r);
    char *text = NULL;
    ck_assert_int_eq(ckpt_schema_to_json(s, CKPT_JSON_PRETTY, &text, err), CKPT_OK);
    ck_assert_int_eq(ckpt_schema_parse(text, strlen(text), &s2, err), CKPT_OK);
    char *text2 = NULL;
    ck_assert_int_eq(ckpt_schema_to_json(s2, CKPT_JSON_PRETTY, &text2, err), CKPT_OK);
    ck_assert_str_eq(text, text2);
    ck_assert_ptr_nonnull(strstr(text, "\"netfix.nets.MlpNet\""));
    ck_assert_ptr_null(strstr(text, "\"training\"")); /* nn.Module's own attributes are left out */
    ck_assert_int_eq(ckpt_check(mlp, s2, &r, err), CKPT_OK);
    ck_assert_uint_eq(ckpt_report_total(r), 0);
    ckpt_report_free(r);
    /* another model: everything differs */
    ck_assert_int_eq(ckpt_check(feats, s2, &r, err), CKPT_OK);
    ck_assert_uint_eq(ckpt_report_count(r, CKPT_FINDING_MISSING_KEY), 5);
    ck_assert_uint_eq(ckpt_report_count(r, CKPT_FINDING_UNEXPECTED_KEY), 10);
    ck_assert_uint_ge(ckpt_report_count(r, CKPT_FINDING_UNKNOWN_CLASS), 3);
    ckpt_report_free(r);
    ckpt_free(text);
    ckpt_free(text2);
    ckpt_schema_free(s);
    ckpt_schema_free(s2);
    /* a TorchScript module's classes are named like the eager ones */
    ckpt_checkpoint *ts = load_model(fx("model_ts.pth"), NULL);
    ck_assert_int_eq(ckpt_schema_from_checkpoint(ts, &s, err), CKPT_OK);
    ck_assert_int_eq(ckpt_schema_to_json(s, 0, &text, err), CKPT_OK);
    ck_assert_ptr_nonnull(strstr(text, "\"torch.nn.modules.linear.Linear\""));
    ck_assert_ptr_null(strstr(text, "__torch__"));
    ck_assert_ptr_null(strstr(text, "mangle"));
    ckpt_free(text);
    ck_assert_int_eq(ckpt_check(ts, s, &r, err), CKPT_OK);
    ck_assert_uint_eq(ckpt_report_total(r), 0);
    ckpt_report_free(r);
    ckpt_schema_free(s);
    ckpt_checkpoint_free(ts);
    ckpt_checkpoint_free(feats);
    ckpt_checkpoint_free(mlp);
    ckpt_checkpoint_free(dp);
    ckpt_error_free(err);
}
END_TEST

START_TEST(schema_parse_strict)
{
    static const struct {
        const char *json, *needle;
    } bad[] = {
        {"", "line"},
        {"[]", "must be an object"},
        {"{\"keys\": {}, \"extra\": 1}", "unknown member 'extra'"},
        {"{\"keys\": []}", "keys: must be an object"},
        {"{\"keys\": {\"a\": 1}}", "keys['a']: must be an object"},
        {"{\"keys\": {\"a\": {\"dtype\": \"float32\", \"stride\": [1]}}}", "unknown member 'stride'"},
        {"{\"keys\": {\"a\": {\"dtype\": \"float33\"}}}", "unknown dtype 'float33'"},
        {"{\"keys\": {\"a\": {\"dtype\": 32}}}", "dtype must be a string"},
        {"{\"keys\": {\"a\": {\"shape\": [2, -1]}}}", "non-negative integer"},
        {"{\"keys\": {\"a\": {\"shape\": [2.0]}}}", "non-negative integer"},
        {"{\"keys\": {\"a\": {\"shape\": 2}}}", "shape must be an array"},
        {"{\"keys\": {\"a\": {\"shape\": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
         "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}}}",
         "more than 64"},
        {"{\"keys\": {\"a\": {}, \"a\": {}}}", "duplicate"},
        {"{\"keys\": {\"a\": {\"shape\": [99999999999999999999]}}}", "line"},
        {"{\"classes\": {\"NoModule\": {\"attributes\": []}}}", "\"module.Class\""},
        {"{\"classes\": {\"m.C\": {\"attributes\": [\"a\", \"a\"]}}}", "listed twice"},
        {"{\"classes\": {\"m.C\": {\"attributes\": [\"\"]}}}", "non-empty string"},
        {"{\"classes\": {\"m.C\": {}}}", "needs \"attributes\""},
        {"{\"classes\": {\"m.C\": {\"attributes\": [], \"x\": 1}}}", "unknown member 'x'"},
        {"{\"classes\": []}", "classes: must be an object"},
        {"{} {}", "line"},
        {"{\"keys\": {\"\\u0000\": {}}}", "line"},
        {"{\"keys\": {\"\xff\": {}}}", "line"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ckpt_error *err = ckpt_error_new();
        ckpt_schema *s = (ckpt_schema *)1;
        ck_assert_int_eq(ckpt_schema_parse(bad[i].json, strlen(bad[i].json), &s, err), CKPT_ERR_FORMAT);
        ck_assert_ptr_null(s);
        ck_assert_msg(strstr(ckpt_error_message(err), bad[i].needle) != NULL, "%zu: %s", i, ckpt_error_message(err));
        ckpt_error_free(err);
    }
    /* 100,000 nested arrays: refused by the parser's depth limit, no recursion blow-up */
    size_t n = 100000;
    char *deep = malloc(2 * n + 16);
    memcpy(deep, "{\"keys\":", 8);
    memset(deep + 8, '[', n);
    memset(deep + 8 + n, ']', n);
    memcpy(deep + 8 + 2 * n, "}", 2);
    ckpt_schema *s = NULL;
    ck_assert_int_eq(ckpt_schema_parse(deep, strlen(deep), &s, NULL), CKPT_ERR_FORMAT);
    free(deep);
    /* accepted: presence-only keys, aliases of dtype names, empty classes */
    static const char ok[] = "{\"keys\": {\"a\": {}, \"b\": {\"dtype\": \"torch.half\", \"shape\": []}}, \"classes\": {}}";
    ck_assert_int_eq(ckpt_schema_parse(ok, sizeof ok - 1, &s, NULL), CKPT_OK);
    char *text;
    ck_assert_int_eq(ckpt_schema_to_json(s, 0, &text, NULL), CKPT_OK);
    ck_assert_str_eq(text, "{\"keys\":{\"a\":{},\"b\":{\"dtype\":\"float16\",\"shape\":[]}},\"classes\":{}}");
    ckpt_free(text);
    ckpt_schema_free(s);
    ck_assert_int_eq(ckpt_schema_parse(NULL, 0, NULL, NULL), CKPT_ERR_INVALID_ARG);
    ck_assert_int_eq(ckpt_schema_load_file("/nonexistent/s.json", &s, NULL), CKPT_ERR_IO);
    ck_assert_int_eq(ckpt_check(NULL, NULL, NULL, NULL), CKPT_ERR_INVALID_ARG);
    ckpt_schema_free(NULL);
    ckpt_report_free(NULL);
}
END_TEST

/* ---- TorchScript declarations ---- */

static ckpt_status load_ts(const char *code, ckpt_checkpoint **ck, ckpt_error *err)
{
    pk b = {0};
    pk_proto(&b, 2);
    pk_global(&b, "__torch__", "M");
    pk_empty_tuple(&b);
    pk_newobj(&b);
    pk_empty_dict(&b);
    pk_str(&b, "w");
    pk_tensor(&b, 0, 2, 2);
    pk_setitem(&b);
    pk_str(&b, "t");
    pk_tensor(&b, 0, 1, 2);
    pk_setitem(&b);
    pk_str(&b, "training");
    pk_true(&b);
    pk_setitem(&b);
    pk_build(&b);
    pk_stop(&b);
    float data[2] = {1, 2};
    tst_record m[] = {{"archive/data.pkl", b.p, b.len},
                      {"archive/code/__torch__.py", code, strlen(code)},
                      {"archive/constants.pkl", "\x80\x02).", 4},
                      {"archive/data/0", data, sizeof data},
                      {"archive/version", "3\n", 2}};
    size_t zlen;
    uint8_t *z = tst_make_zip(m, sizeof m / sizeof *m, &zlen);
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_load_options_set_flags(o, CKPT_LOAD_MODEL | CKPT_LOAD_TORCHSCRIPT);
    ckpt_status s = ckpt_load_memory(z, zlen, o, ck, err);
    ckpt_load_options_free(o);
    free(z);
    pk_free(&b);
    return s;
}

START_TEST(torchscript_declarations)
{
    ckpt_error *err = ckpt_error_new();
    ckpt_checkpoint *ck = NULL;
    ck_assert_msg(load_ts("class M(Module):\n  __parameters__ = [\"w\", ]\n  __buffers__ = []\n  w : Tensor\n", &ck, err) ==
                  CKPT_OK, "%s", ckpt_error_message(err));
    const ckpt_value *sd = ckpt_checkpoint_state_dict(ck);
    ck_assert_uint_eq(ckpt_value_len(sd), 1); /* t is a plain tensor attribute */
    ck_assert_str_eq(key_of(sd, 0), "w");
    ckpt_checkpoint_free(ck);
    ck_assert_int_eq(load_ts("class M(Module):\n  __parameters__ = []\n  __buffers__ = [\"t\", \"w\", ]\n", &ck, err), CKPT_OK);
    ck_assert_uint_eq(ckpt_value_len(ckpt_checkpoint_state_dict(ck)), 2);
    ck_assert_str_eq(key_of(ckpt_checkpoint_state_dict(ck), 0), "w"); /* attribute order, as torch */
    ckpt_checkpoint_free(ck);
    static const struct {
        const char *code, *needle;
    } bad[] = {
        {"class N(Module):\n  __parameters__ = []\n", "not declared in the archive's code/"},
        {"class M(Module):\n  __parameters__ = [w]\n", "line 2"},
        {"class M(Module):\n  __parameters__ = [\"w\"]\n", "expected ','"},
        {"class M(Module):\n  __parameters__ = [\"w x\", ]\n", "not an identifier"},
        {"class M(Module):\n  __parameters__ = [] extra\n", "unexpected text"},
        {"  __parameters__ = []\n", "outside a class"},
        {"class M(Module):\n  __parameters__ = []\nclass M(Module):\n  __parameters__ = []\n", "declared twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(load_ts(bad[i].code, &ck, err), CKPT_ERR_UNSUPPORTED);
        ck_assert_msg(strstr(ckpt_error_message(err), bad[i].needle) != NULL, "%zu: %s", i, ckpt_error_message(err));
    }
    ckpt_error_free(err);
}
END_TEST

/* ---- the CLI ---- */

static int run(const char *args, char **out)
{
    const char *exe = getenv("CKPT_EXE");
    ck_assert_msg(exe != NULL, "CKPT_EXE is not set");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", exe, args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += r;
        if (n + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    int st = pclose(p);
    *out = buf;
    return WEXITSTATUS(st);
}

START_TEST(cli_check)
{
    char args[8192], *out;
    snprintf(args, sizeof args, "check %s --schema %s", fx("model_mlp_old.pth"), fx("model_mlp_new.schema.json"));
    ck_assert_int_eq(run(args, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "shape mismatch: fc1.weight: expected [16, 4], found [8, 4]"));
    ck_assert_ptr_nonnull(strstr(out, "<model> (netfix.nets.MlpNet): missing attribute 'classifier'"));
    free(out);
    snprintf(args, sizeof args, "check %s --schema %s --allow "
             "timm.models.layers.conv_bn_act.ConvNormAct=timm.layers.conv_bn_act.ConvNormAct --json",
             fx("model_timm_old.pth"), fx("model_timm_new.schema.json"));
    ck_assert_int_eq(run(args, &out), 1);
    json_t *j = json_loads(out, 0, NULL), *want = read_json(fx("model_timm_old.model_timm_new.alias.check.json"));
    ck_assert_msg(j && json_equal(j, want), "%s", out);
    json_decref(j);
    json_decref(want);
    free(out);
    snprintf(args, sizeof args, "check %s --like %s", fx("model_dataparallel.pth"), fx("model_mlp_old.pth"));
    ck_assert_int_eq(run(args, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "clean"));
    free(out);
    /* errors are 2, never findings: a missing schema, a malformed one, a refused file, bad usage */
    snprintf(args, sizeof args, "check %s --schema /nonexistent.json", fx("model_mlp_old.pth"));
    ck_assert_int_eq(run(args, &out), 2);
    free(out);
    snprintf(args, sizeof args, "check %s --schema %s", fx("model_mlp_old.pth"), fx("model_mlp_old.pth"));
    ck_assert_int_eq(run(args, &out), 2);
    ck_assert_ptr_nonnull(strstr(out, "schema"));
    free(out);
    const char *unsafe = tst_external("modelscan/tests/data/unsafe_zip_pytorch.pt");
    if (unsafe) {
        snprintf(args, sizeof args, "check %s --like %s", unsafe, fx("model_mlp_old.pth"));
        ck_assert_int_eq(run(args, &out), 2);
        ck_assert_ptr_nonnull(strstr(out, "posix.system"));
        free(out);
    }
    snprintf(args, sizeof args, "check %s", fx("model_mlp_old.pth"));
    ck_assert_int_eq(run(args, &out), 2);
    free(out);
    /* convert --model writes the state dict: it loads (weights-only) with the same keys and values */
    char outp[4096];
    snprintf(outp, sizeof outp, "/tmp/ckpt-test-model-%d.pt", (int)getpid());
    snprintf(args, sizeof args, "convert --model %s %s", fx("model_features.pth"), outp);
    ck_assert_int_eq(run(args, &out), 0);
    free(out);
    ckpt_checkpoint *ck = load_model(fx("model_features.pth"), NULL), *conv = NULL;
    ck_assert_int_eq(load_opts(outp, 0, NULL, &conv, NULL), CKPT_OK);
    const ckpt_value *sd = ckpt_checkpoint_state_dict(ck), *root = ckpt_checkpoint_root(conv);
    ck_assert_str_eq(ckpt_value_type_name(root), "collections.OrderedDict");
    ck_assert_uint_eq(ckpt_value_len(root), ckpt_value_len(sd));
    for (size_t i = 0; i < ckpt_value_len(sd); i++) {
        ck_assert_str_eq(key_of(root, i), key_of(sd, i));
        uint64_t a, b2;
        ck_assert_int_eq(ckpt_tensor_xxh3_64(ckpt_value_tensor(ckpt_value_dict_value(sd, i)), &a, NULL), CKPT_OK);
        ck_assert_int_eq(ckpt_tensor_xxh3_64(ckpt_value_tensor(ckpt_value_dict_value(root, i)), &b2, NULL), CKPT_OK);
        ck_assert_uint_eq(a, b2);
    }
    /* tied weights stay one storage in the written file */
    ck_assert_ptr_eq(ckpt_tensor_storage(ckpt_checkpoint_find_tensor(conv, "emb.weight")),
                     ckpt_tensor_storage(ckpt_checkpoint_find_tensor(conv, "out.weight")));
    ckpt_checkpoint_free(conv);
    ckpt_checkpoint_free(ck);
    unlink(outp);
    snprintf(args, sizeof args, "convert %s %s", fx("model_features.pth"), outp);
    ck_assert_int_eq(run(args, &out), 1); /* without --model: the weights-only refusal */
    ck_assert_int_eq(access(outp, F_OK), -1);
    free(out);
    snprintf(args, sizeof args, "convert --model %s %s --check %s", fx("model_mlp_old.pth"), outp,
             fx("model_mlp_new.schema.json"));
    ck_assert_int_eq(run(args, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "missing key: classifier.weight"));
    ck_assert_int_eq(access(outp, F_OK), 0);
    unlink(outp);
    free(out);
    /* inspect --model lists the state dict */
    snprintf(args, sizeof args, "inspect --model %s", fx("legacy_model.pth"));
    ck_assert_int_eq(run(args, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "model: module tree at ''"));
    ck_assert_ptr_nonnull(strstr(out, "2.bias"));
    free(out);
    snprintf(args, sizeof args, "inspect %s", fx("legacy_model.pth"));
    ck_assert_int_eq(run(args, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "--model"));
    free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, state_dicts_match_torch);
    tcase_add_test(tc, default_load_stays_weights_only);
    tcase_add_test(tc, state_dict_sources);
    tcase_add_test(tc, object_constructors);
    tcase_add_test(tc, model_mode_refuses_code);
    tcase_add_test(tc, corpus_payloads_refused_in_model_mode);
    tcase_add_test(tc, module_dag_stays_linear);
    tcase_add_test(tc, deep_nesting_is_iterative);
    tcase_add_test(tc, module_cycle_refused);
    tcase_add_test(tc, state_dict_rules);
    tcase_add_test(tc, attribute_names_with_nul);
    tcase_add_test(tc, check_reports_match);
    tcase_add_test(tc, finding_accessors);
    tcase_add_test(tc, schema_like_checkpoint);
    tcase_add_test(tc, schema_parse_strict);
    tcase_add_test(tc, torchscript_declarations);
    tcase_add_test(tc, cli_check);
    suite_add_tcase(s, tc);
    return tst_run(s);
}
