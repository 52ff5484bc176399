/*
 * test_registry.c: the allowlist registry (add, aliases, list, clear, never-allowed names, presets,
 * built-in handler names) and thread-local scopes (push/pop, nesting, restore after a failed load,
 * out-of-order pops). What allowed globals become is in test_objects.c; concurrency in
 * test_registry_threads.c.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pickle_builder.h"
#include "support.h"

#include "registry_helpers.h"

/* ---- registry API ---- */

START_TEST(add_and_lookup)
{
    ckpt_registry *r = ckpt_registry_new(0);
    const char *names[] = {"argparse.Namespace", "mypkg.sub.Config"};
    ck_assert(!ckpt_registry_is_allowed(r, "argparse", "Namespace"));
    ck_assert_int_eq(ckpt_registry_add_safe_globals(r, names, 2, NULL), CKPT_OK);
    ck_assert(ckpt_registry_is_allowed(r, "argparse", "Namespace"));
    ck_assert(ckpt_registry_is_allowed(r, "mypkg.sub", "Config"));
    ck_assert(!ckpt_registry_is_allowed(r, "mypkg", "sub.Config")); /* exact pairs only */
    ck_assert(ckpt_registry_is_allowed(r, "torch", "Size"));          /* defaults stay */
    ck_assert(ckpt_registry_is_allowed(r, "__builtin__", "set"));     /* Python 2 spelling */
    ck_assert_uint_eq(count_safe(r), 2);
    /* the default registry is read-only but has no user names */
    ck_assert_int_eq(ckpt_registry_add_safe_globals((ckpt_registry *)ckpt_registry_default(), names, 1, NULL),
                     CKPT_ERR_INVALID_ARG);
    ck_assert_uint_eq(count_safe(NULL), 0);
    ckpt_registry_free(r);
}
END_TEST

START_TEST(bad_names_are_refused_all_or_nothing)
{
    static const char *const bad[] = {"", "nodot", ".x", "x.", "a..b", "a b.c", "a.b=c", "a.b=c.d=e.f", "a.b\n"};
    ckpt_registry *r = ckpt_registry_new(0);
    ckpt_error *err = ckpt_error_new();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *names[] = {"good.Name", bad[i]};
        ck_assert_msg(ckpt_registry_add_safe_globals(r, names, 2, err) == CKPT_ERR_INVALID_ARG, "'%s' accepted", bad[i]);
        ck_assert_uint_eq(count_safe(r), 0); /* nothing added, not even the good name */
    }
    ck_assert_int_eq(ckpt_registry_add_safe_globals(r, NULL, 1, err), CKPT_ERR_INVALID_ARG);
    ckpt_error_free(err);
    ckpt_registry_free(r);
}
END_TEST

START_TEST(never_allowed_names)
{
    static const char *const never[] = {
        "os.system", "posix.system", "nt.system", "sys.modules", "subprocess.Popen", "subprocess.run",
        "builtins.eval", "builtins.exec", "builtins.compile", "builtins.__import__", "builtins.getattr",
        "builtins.open", "importlib.import_module", "pickle.loads", "_pickle.loads", "marshal.loads",
        "runpy.run_path", "os.path.join", "shutil.rmtree", "socket.socket", "ctypes.CDLL", "torch.load",
        "numpy.load", "functools.partial", "operator.attrgetter", "types.FunctionType", "webbrowser.open",
        "torch.hub.load", "torch.jit.load", "ok.Name=os.system",
    };
    ckpt_registry *r = ckpt_registry_new(0);
    ckpt_error *err = ckpt_error_new();
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        ck_assert_msg(ckpt_registry_add_safe_globals(r, &never[i], 1, err) == CKPT_ERR_INVALID_ARG, "%s accepted",
                      never[i]);
        ck_assert_msg(strstr(ckpt_error_message(err), "can never be allowed") != NULL, "%s", ckpt_error_message(err));
    }
    ck_assert_uint_eq(count_safe(r), 0);
    /* the same names, classified */
    const char *why = NULL;
    ck_assert_int_eq(ckpt_registry_classify(r, "os", "system", &why), CKPT_GLOBAL_NEVER_ALLOWED);
    ck_assert_ptr_nonnull(why);
    ck_assert_int_eq(ckpt_registry_classify(r, "pathlib", "os.system", &why), CKPT_GLOBAL_NEVER_ALLOWED);
    ck_assert_ptr_nonnull(strstr(why, "dotted"));
    ck_assert_int_eq(ckpt_registry_classify(r, "__builtin__", "eval", &why), CKPT_GLOBAL_NEVER_ALLOWED);
    ck_assert_int_eq(ckpt_registry_classify(r, "argparse", "Namespace", &why), CKPT_GLOBAL_NOT_ALLOWED);
    ck_assert_ptr_null(why);
    ck_assert_int_eq(ckpt_registry_classify(r, "collections", "OrderedDict", &why), CKPT_GLOBAL_ALLOWED);
    /* never-allowed is a second fence: names close to dangerous ones are fine */
    const char *fine[] = {"ossify.Thing", "osmodule.X", "mypkg.os.Thing", "pathlib.PurePosixPath"};
    ck_assert_int_eq(ckpt_registry_add_safe_globals(r, fine, 4, err), CKPT_OK);
    ckpt_error_free(err);
    ckpt_registry_free(r);
}
END_TEST

START_TEST(list_and_clear)
{
    const char *names[] = {"a.One", "b.two", "timm.models.layers.DropPath=timm.layers.DropPath"};
    ckpt_registry *r = reg_with(names, 3);
    char **list;
    size_t n;
    ck_assert_int_eq(ckpt_registry_get_safe_globals(r, &list, &n, NULL), CKPT_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(list[0], "a.One");
    ck_assert_str_eq(list[1], "b.two");
    ck_assert_str_eq(list[2], "timm.models.layers.DropPath=timm.layers.DropPath");
    ckpt_free(list);
    /* re-adding keeps one entry, at its first place */
    ck_assert_int_eq(ckpt_registry_add_safe_globals(r, names, 1, NULL), CKPT_OK);
    ck_assert_uint_eq(count_safe(r), 3);
    ck_assert_int_eq(ckpt_registry_clear_safe_globals(r, 0, NULL), CKPT_OK);
    ck_assert_uint_eq(count_safe(r), 0);
    ck_assert(!ckpt_registry_is_allowed(r, "a", "One"));
    ck_assert(ckpt_registry_is_allowed(r, "torch", "Size")); /* defaults stay unless asked */
    ck_assert_int_eq(ckpt_registry_clear_safe_globals(r, CKPT_REGISTRY_CLEAR_DEFAULTS, NULL), CKPT_OK);
    ck_assert(!ckpt_registry_is_allowed(r, "torch", "Size"));
    ck_assert_int_eq(ckpt_registry_clear_safe_globals(r, 0x80, NULL), CKPT_ERR_INVALID_ARG);
    ckpt_registry_free(r);
    /* an empty registry starts without defaults; a default-table name added back keeps its native handler */
    r = ckpt_registry_new(CKPT_REGISTRY_EMPTY);
    ck_assert(!ckpt_registry_is_allowed(r, "collections", "OrderedDict"));
    const char *od = "collections.OrderedDict";
    ck_assert_int_eq(ckpt_registry_add_safe_globals(r, &od, 1, NULL), CKPT_OK);
    pk b = {0};
    pk_proto(&b, 2);
    pk_global(&b, "collections", "OrderedDict");
    pk_empty_tuple(&b);
    pk_reduce(&b);
    pk_stop(&b);
    ckpt_checkpoint *ck;
    ck_assert_int_eq(load_pk(r, &b, &ck, NULL), CKPT_OK);
    ck_assert_int_eq(ckpt_value_kind(ckpt_checkpoint_root(ck)), CKPT_KIND_DICT);
    ck_assert_str_eq(ckpt_value_type_name(ckpt_checkpoint_root(ck)), "collections.OrderedDict");
    ckpt_checkpoint_free(ck);
    pk_free(&b);
    ckpt_registry_free(r);
}
END_TEST

START_TEST(aliases)
{
    ckpt_registry *r = ckpt_registry_new(0);
    ck_assert_int_eq(ckpt_registry_add_alias(r, "timm.models.layers.DropPath", "timm.layers.DropPath", NULL), CKPT_OK);
    ck_assert_int_eq(ckpt_registry_add_alias(r, "ok.Name", "os.system", NULL), CKPT_ERR_INVALID_ARG);
    pk b = {0};
    pk_object(&b, "timm.models.layers", "DropPath");
    ckpt_checkpoint *ck;
    ckpt_error *err = ckpt_error_new();
    ck_assert_msg(load_pk(r, &b, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    const ckpt_value *root = ckpt_checkpoint_root(ck);
    ck_assert_int_eq(ckpt_value_kind(root), CKPT_KIND_OBJECT);
    ck_assert_str_eq(ckpt_value_type_name(root), "timm.layers.DropPath"); /* the real class */
    ck_assert_str_eq(ckpt_value_global_module(root), "timm.layers");
    ck_assert_uint_eq(ckpt_checkpoint_num_globals(ck), 1);
    ck_assert_str_eq(ckpt_checkpoint_global(ck, 0), "timm.models.layers.DropPath"); /* what the file names */
    ckpt_checkpoint_free(ck);
    /* not under the new name unless allowed */
    pk_free(&b);
    pk_object(&b, "timm.layers", "DropPath");
    ck_assert_int_eq(load_pk(r, &b, NULL, err), CKPT_ERR_BLOCKED);
    /* an alias to a built-in keeps its native handler */
    ck_assert_int_eq(ckpt_registry_add_alias(r, "my_collections.OD", "collections.OrderedDict", NULL), CKPT_OK);
    pk_free(&b);
    pk_proto(&b, 2);
    pk_global(&b, "my_collections", "OD");
    pk_empty_tuple(&b);
    pk_reduce(&b);
    pk_stop(&b);
    ck_assert_msg(load_pk(r, &b, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    ck_assert_str_eq(ckpt_value_type_name(ckpt_checkpoint_root(ck)), "collections.OrderedDict");
    ckpt_checkpoint_free(ck);
    pk_free(&b);
    ckpt_error_free(err);
    ckpt_registry_free(r);
}
END_TEST

START_TEST(presets_and_builtin_handlers)
{
    ckpt_registry *r = ckpt_registry_new(0);
    ckpt_error *err = ckpt_error_new();
    ck_assert_int_eq(ckpt_registry_add_preset(r, "nope", err), CKPT_ERR_NOT_FOUND);
    ck_assert_int_eq(ckpt_registry_add_preset(r, NULL, err), CKPT_ERR_NOT_FOUND);
    const char *x = "mypkg.Thing";
    ck_assert_int_eq(ckpt_registry_enable_handlers(r, &x, 1, err), CKPT_ERR_NOT_FOUND);
    ck_assert_uint_eq(count_safe(r), 0);
    ck_assert_int_eq(ckpt_registry_add_preset(r, "numpy", err), CKPT_OK);
    ck_assert(ckpt_registry_is_allowed(r, "numpy.core.multiarray", "_reconstruct"));
    ck_assert(ckpt_registry_is_allowed(r, "numpy._core.multiarray", "scalar"));
    ck_assert(ckpt_registry_is_allowed(r, "numpy", "dtype"));
    ck_assert(!ckpt_registry_is_allowed(r, "argparse", "Namespace"));
    bool found = false, size = false, list = false;
    for (const char *const *h = ckpt_registry_builtin_handlers(); *h; h++) {
        found |= strcmp(*h, "argparse.Namespace") == 0;
        size |= strcmp(*h, "torch.Size") == 0;
        list |= strcmp(*h, "builtins.list") == 0; /* allowed by the stdlib preset, but no handler */
    }
    ck_assert(found && size && !list);
    /* a default global's native handler, in an empty registry */
    ckpt_registry *e = ckpt_registry_new(CKPT_REGISTRY_EMPTY);
    const char *sz = "torch.Size";
    ck_assert(!ckpt_registry_is_allowed(e, "torch", "Size"));
    ck_assert_int_eq(ckpt_registry_enable_handlers(e, &sz, 1, err), CKPT_OK);
    pk b = {0};
    pk_proto(&b, 2);
    pk_global(&b, "torch", "Size");
    pk_mark(&b);
    pk_int(&b, 2);
    pk_int(&b, 3);
    pk_tuple(&b);
    pk_tuple1(&b);
    pk_reduce(&b);
    pk_stop(&b);
    ckpt_checkpoint *ck;
    ck_assert_msg(load_pk(e, &b, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    ck_assert_str_eq(ckpt_value_type_name(ckpt_checkpoint_root(ck)), "torch.Size");
    ck_assert_uint_eq(ckpt_value_len(ckpt_checkpoint_root(ck)), 2);
    ckpt_checkpoint_free(ck);
    pk_free(&b);
    ckpt_registry_free(e);
    ck_assert_str_eq(ckpt_registry_presets()[0], "numpy");
    ckpt_error_free(err);
    ckpt_registry_free(r);
}
END_TEST

/* ---- scopes ---- */

static ckpt_status load_obj(const ckpt_registry *reg, const char *module, const char *name)
{
    pk b = {0};
    pk_object(&b, module, name);
    ckpt_status s = load_pk(reg, &b, NULL, NULL);
    pk_free(&b);
    return s;
}

START_TEST(scopes_nest_and_restore)
{
    ckpt_registry *r = ckpt_registry_new(0);
    const char *base = "base.Kept";
    ck_assert_int_eq(ckpt_registry_add_safe_globals(r, &base, 1, NULL), CKPT_OK);
    const char *a[] = {"outer.A"}, *b[] = {"inner.B", "outer.A2"};
    ckpt_registry_scope sa, sb;
    ck_assert_int_eq(ckpt_registry_safe_globals_push(r, a, 1, &sa, NULL), CKPT_OK);
    ck_assert_int_eq(load_obj(r, "outer", "A"), CKPT_OK);
    ck_assert_int_eq(load_obj(r, "inner", "B"), CKPT_ERR_BLOCKED);
    ck_assert_int_eq(ckpt_registry_safe_globals_push(r, b, 2, &sb, NULL), CKPT_OK);
    ck_assert_int_eq(load_obj(r, "inner", "B"), CKPT_OK);
    ck_assert_int_eq(load_obj(r, "outer", "A"), CKPT_OK);
    ck_assert_int_eq(load_obj(r, "base", "Kept"), CKPT_OK);
    char **list;
    size_t n;
    ck_assert_int_eq(ckpt_registry_get_safe_globals(r, &list, &n, NULL), CKPT_OK);
    ck_assert_uint_eq(n, 4);
    ck_assert_str_eq(list[0], "base.Kept");
    ck_assert_str_eq(list[1], "outer.A");
    ck_assert_str_eq(list[2], "inner.B");
    ckpt_free(list);
    /* out of LIFO order: refused, nothing changes */
    ckpt_error *err = ckpt_error_new();
    ck_assert_int_eq(ckpt_registry_safe_globals_pop(r, sa, err), CKPT_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(ckpt_error_message(err), "out of order"));
    ck_assert_int_eq(load_obj(r, "inner", "B"), CKPT_OK);
    ck_assert_int_eq(load_obj(r, "outer", "A"), CKPT_OK);
    ck_assert_int_eq(ckpt_registry_safe_globals_pop(r, sb, err), CKPT_OK);
    ck_assert_int_eq(load_obj(r, "inner", "B"), CKPT_ERR_BLOCKED);
    ck_assert_int_eq(load_obj(r, "outer", "A"), CKPT_OK);
    ck_assert_int_eq(ckpt_registry_safe_globals_pop(r, sb, err), CKPT_ERR_STATE); /* twice */
    ck_assert_int_eq(ckpt_registry_safe_globals_pop(r, sa, err), CKPT_OK);
    ck_assert_int_eq(load_obj(r, "outer", "A"), CKPT_ERR_BLOCKED);
    ck_assert_int_eq(load_obj(r, "base", "Kept"), CKPT_OK);
    ck_assert_uint_eq(count_safe(r), 1);
    ck_assert_int_eq(ckpt_registry_safe_globals_pop(r, 12345, err), CKPT_ERR_STATE);
    ckpt_error_free(err);
    ckpt_registry_free(r);
}
END_TEST

START_TEST(scope_restores_after_failed_load)
{
    ckpt_registry *r = ckpt_registry_new(0);
    const char *names[] = {"argparse.Namespace"};
    char **before;
    size_t nb;
    ck_assert_int_eq(ckpt_registry_get_safe_globals(r, &before, &nb, NULL), CKPT_OK);
    ckpt_registry_scope s;
    ck_assert_int_eq(ckpt_registry_safe_globals_push(r, names, 1, &s, NULL), CKPT_OK);
    ck_assert(ckpt_registry_is_allowed(r, "argparse", "Namespace"));
    /* failed loads in between: blocked, malformed */
    ck_assert_int_eq(load_obj(r, "other", "Thing"), CKPT_ERR_BLOCKED);
    pk b = {0};
    pk_proto(&b, 2);
    pk_global(&b, "argparse", "Namespace");
    pk_empty_tuple(&b);
    pk_newobj(&b); /* no STOP */
    ck_assert_int_eq(load_pk(r, &b, NULL, NULL), CKPT_ERR_PICKLE);
    pk_free(&b);
    ck_assert_int_eq(ckpt_registry_safe_globals_pop(r, s, NULL), CKPT_OK);
    ck_assert(!ckpt_registry_is_allowed(r, "argparse", "Namespace"));
    char **after;
    size_t na;
    ck_assert_int_eq(ckpt_registry_get_safe_globals(r, &after, &na, NULL), CKPT_OK);
    ck_assert_uint_eq(na, nb);
    ckpt_free(before);
    ckpt_free(after);
    /* a failed push changes nothing */
    const char *bad[] = {"ok.Name", "os.system"};
    s = 99;
    ck_assert_int_eq(ckpt_registry_safe_globals_push(r, bad, 2, &s, NULL), CKPT_ERR_INVALID_ARG);
    ck_assert(!ckpt_registry_is_allowed(r, "ok", "Name"));
    ck_assert_int_eq(ckpt_registry_safe_globals_pop(r, s, NULL), CKPT_ERR_STATE);
    /* scopes work on the default registry too (NULL) */
    ck_assert_int_eq(ckpt_registry_safe_globals_push(NULL, names, 1, &s, NULL), CKPT_OK);
    ck_assert_int_eq(load_obj(NULL, "argparse", "Namespace"), CKPT_OK);
    ck_assert_int_eq(load_obj(r, "argparse", "Namespace"), CKPT_ERR_BLOCKED); /* another registry */
    ck_assert_int_eq(ckpt_registry_safe_globals_pop(r, s, NULL), CKPT_ERR_STATE);
    ck_assert_int_eq(ckpt_registry_safe_globals_pop(ckpt_registry_default(), s, NULL), CKPT_OK);
    ck_assert_int_eq(load_obj(NULL, "argparse", "Namespace"), CKPT_ERR_BLOCKED);
    ckpt_registry_free(r);
}
END_TEST

static ckpt_registry_scope handler_scope;
static ckpt_status pop_in_handler(ckpt_handler_ctx *ctx, const ckpt_value *node, void *user, ckpt_value **out,
                                  ckpt_error *err)
{
    (void)ctx; (void)node; (void)out; (void)err;
    ck_assert_int_eq(ckpt_registry_safe_globals_pop(user, handler_scope, NULL), CKPT_ERR_STATE);
    return CKPT_OK;
}

START_TEST(no_pop_during_a_load)
{
    ckpt_registry *r = ckpt_registry_new(0);
    ck_assert_int_eq(ckpt_registry_add_handler(r, "mypkg.H", pop_in_handler, r, NULL), CKPT_OK);
    const char *names[] = {"argparse.Namespace"};
    ck_assert_int_eq(ckpt_registry_safe_globals_push(r, names, 1, &handler_scope, NULL), CKPT_OK);
    ck_assert_int_eq(load_obj(r, "mypkg", "H"), CKPT_OK);
    ck_assert_int_eq(ckpt_registry_safe_globals_pop(r, handler_scope, NULL), CKPT_OK);
    ckpt_registry_free(r);
}
END_TEST

typedef struct {
    ckpt_registry *r;
    ckpt_registry_scope scope;
    ckpt_status load, pop;
} other_thread;

static void *in_other_thread(void *p)
{
    other_thread *o = p;
    o->load = load_obj(o->r, "argparse", "Namespace");
    o->pop = ckpt_registry_safe_globals_pop(o->r, o->scope, NULL);
    return NULL;
}

START_TEST(scope_is_thread_local)
{
    ckpt_registry *r = ckpt_registry_new(0);
    const char *names[] = {"argparse.Namespace"};
    other_thread o = {r, 0, CKPT_OK, CKPT_OK};
    ck_assert_int_eq(ckpt_registry_safe_globals_push(r, names, 1, &o.scope, NULL), CKPT_OK);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, in_other_thread, &o), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(o.load, CKPT_ERR_BLOCKED); /* the other thread does not see this thread's scope */
    ck_assert_int_eq(o.pop, CKPT_ERR_STATE);    /* and cannot pop it */
    ck_assert_int_eq(load_obj(r, "argparse", "Namespace"), CKPT_OK);
    ck_assert_int_eq(ckpt_registry_safe_globals_pop(r, o.scope, NULL), CKPT_OK);
    ckpt_registry_free(r);
}
END_TEST

/* Regression (found by the TSan run of test_registry_threads): ckpt_load_memory closed fd 0, because
 * the checkpoint's zeroed file mapping had fd 0 and freeing it closed that descriptor. */
START_TEST(load_memory_leaves_fd_0_open)
{
    if (fcntl(0, F_GETFD) == -1) ck_assert_int_eq(open("/dev/null", O_RDONLY), 0); /* make descriptor 0 exist */
    pk b = {0};
    pk_proto(&b, 2);
    pk_none(&b);
    pk_stop(&b);
    ck_assert_int_eq(load_pk(NULL, &b, NULL, NULL), CKPT_OK);
    ck_assert_int_eq(load_pk(NULL, &b, NULL, NULL), CKPT_OK);
    ck_assert_msg(fcntl(0, F_GETFD) != -1, "descriptor 0 was closed by a load from memory");
    pk_free(&b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("registry");
    TCase *api = tcase_create("api");
    tcase_add_test(api, add_and_lookup);
    tcase_add_test(api, bad_names_are_refused_all_or_nothing);
    tcase_add_test(api, never_allowed_names);
    tcase_add_test(api, list_and_clear);
    tcase_add_test(api, aliases);
    tcase_add_test(api, presets_and_builtin_handlers);
    tcase_add_test(api, load_memory_leaves_fd_0_open);
    suite_add_tcase(s, api);
    TCase *sc = tcase_create("scopes");
    tcase_add_test(sc, scopes_nest_and_restore);
    tcase_add_test(sc, scope_restores_after_failed_load);
    tcase_add_test(sc, no_pop_during_a_load);
    tcase_add_test(sc, scope_is_thread_local);
    suite_add_tcase(s, sc);
    return s;
}

int main(void) { return tst_run(suite()); }
