/*
 * test_objects.c: what allowed user globals become: generic OBJECT / CALL nodes (REDUCE, NEWOBJ,
 * NEWOBJ_EX, INST, OBJ, BUILD with dict or (state, slotstate), APPEND(S)/SETITEM(S) on them), Enum members
 * pickled by name, the blocked-global message, user handlers, and the built-in NumPy / stdlib handlers on
 * hand-made pickles (the torch-made fixtures are compared in test_fixtures).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "registry_helpers.h"

/* ---- generic objects and calls ---- */

START_TEST(newobj_build_is_an_object)
{
    const char *names[] = {"argparse.Namespace"};
    ckpt_registry *r = reg_with(names, 1);
    pk b = {0};
    pk_object(&b, "argparse", "Namespace");
    ckpt_error *err = ckpt_error_new();
    ck_assert_int_eq(load_pk(NULL, &b, NULL, err), CKPT_ERR_BLOCKED);
    ck_assert_str_eq(ckpt_error_global(err), "argparse.Namespace");
    ckpt_checkpoint *ck;
    ck_assert_msg(load_pk(r, &b, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    const ckpt_value *root = ckpt_checkpoint_root(ck);
    ck_assert_int_eq(ckpt_value_kind(root), CKPT_KIND_OBJECT);
    ck_assert_str_eq(ckpt_value_type_name(root), "argparse.Namespace");
    ck_assert_str_eq(ckpt_value_global_name(root), "Namespace");
    ck_assert_uint_eq(ckpt_value_len(ckpt_value_object_args(root)), 0);
    const ckpt_value *st = ckpt_value_object_state(root);
    ck_assert_int_eq(ckpt_value_kind(st), CKPT_KIND_DICT);
    ck_assert_double_eq(ckpt_value_float(ckpt_value_dict_get(st, "lr")), 0.5);
    ck_assert_ptr_null(ckpt_value_object_kwargs(root));
    ck_assert_ptr_null(ckpt_value_object_list_items(root));
    /* attributes are children with dotted paths */
    ck_assert_ptr_eq(ckpt_checkpoint_find(ck, "lr"), ckpt_value_dict_get(st, "lr"));
    char *json;
    ck_assert_int_eq(ckpt_checkpoint_to_json(ck, "x", 0, &json, err), CKPT_OK);
    ck_assert_ptr_nonnull(strstr(json, "{\"key\":\"\",\"type\":\"argparse.Namespace\"}"));
    ck_assert_ptr_nonnull(strstr(json, "{\"key\":\"name\",\"type\":\"str\",\"value\":\"run\"}"));
    ckpt_free(json);
    ckpt_checkpoint_free(ck);
    pk_free(&b);
    ckpt_error_free(err);
    ckpt_registry_free(r);
}
END_TEST

START_TEST(reduce_class_vs_function)
{
    const char *names[] = {"mypkg.Color", "mypkg.make_thing", "mypkg.lowerclass"};
    ckpt_registry *r = reg_with(names, 3);
    ck_assert_int_eq(ckpt_registry_add_safe_global(r, "mypkg.other", CKPT_GLOBAL_CLASS, NULL), CKPT_OK);
    ck_assert_int_eq(ckpt_registry_add_safe_global(r, "mypkg.Both", CKPT_GLOBAL_CLASS | CKPT_GLOBAL_FUNCTION, NULL),
                     CKPT_ERR_INVALID_ARG);
    pk b = {0};
    pk_proto(&b, 2);
    pk_mark(&b);
    pk_global(&b, "mypkg", "Color"); /* an Enum member: Color(2) */
    pk_int(&b, 2);
    pk_tuple1(&b);
    pk_reduce(&b);
    pk_global(&b, "mypkg", "make_thing"); /* a function: recorded, never called */
    pk_str(&b, "x");
    pk_int(&b, 7);
    pk_tuple2(&b);
    pk_reduce(&b);
    pk_global(&b, "mypkg", "other"); /* declared a class */
    pk_empty_tuple(&b);
    pk_reduce(&b);
    pk_tuple(&b);
    pk_stop(&b);
    ckpt_checkpoint *ck;
    ckpt_error *err = ckpt_error_new();
    ck_assert_msg(load_pk(r, &b, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    const ckpt_value *root = ckpt_checkpoint_root(ck);
    const ckpt_value *color = ckpt_value_item(root, 0), *call = ckpt_value_item(root, 1), *other = ckpt_value_item(root, 2);
    ck_assert_int_eq(ckpt_value_kind(color), CKPT_KIND_OBJECT);
    ck_assert_str_eq(ckpt_value_type_name(color), "mypkg.Color");
    int64_t v;
    ck_assert_int_eq(ckpt_value_int64(ckpt_value_item(ckpt_value_object_args(color), 0), &v), CKPT_OK);
    ck_assert_int_eq(v, 2);
    ck_assert_int_eq(ckpt_value_kind(call), CKPT_KIND_CALL);
    ck_assert_str_eq(ckpt_value_global_module(call), "mypkg");
    ck_assert_str_eq(ckpt_value_global_name(call), "make_thing");
    ck_assert_uint_eq(ckpt_value_len(ckpt_value_object_args(call)), 2);
    ck_assert_int_eq(ckpt_value_kind(other), CKPT_KIND_OBJECT);
    ck_assert_ptr_nonnull(ckpt_checkpoint_find(ck, "1.__args__.0"));
    char *json;
    ck_assert_int_eq(ckpt_checkpoint_to_json(ck, "x", 0, &json, err), CKPT_OK);
    ck_assert_ptr_nonnull(strstr(json, "{\"key\":\"1\",\"type\":\"call\",\"value\":\"mypkg.make_thing\"}"));
    ck_assert_ptr_nonnull(strstr(json, "{\"key\":\"0.__args__\",\"type\":\"tuple\",\"len\":1}"));
    ckpt_free(json);
    ckpt_checkpoint_free(ck);
    pk_free(&b);
    ckpt_error_free(err);
    ckpt_registry_free(r);
}
END_TEST

START_TEST(newobj_ex_slotstate_items)
{
    const char *names[] = {"mypkg.Bag"};
    ckpt_registry *r = reg_with(names, 1);
    pk b = {0};
    pk_proto(&b, 4);
    pk_global(&b, "mypkg", "Bag");
    pk_int(&b, 1);
    pk_tuple1(&b);
    pk_empty_dict(&b); /* kwargs */
    pk_str(&b, "size");
    pk_int(&b, 3);
    pk_setitem(&b);
    pk_newobj_ex(&b);
    pk_mark(&b); /* APPENDS on the object: list items */
    pk_int(&b, 10);
    pk_int(&b, 20);
    pk_appends(&b);
    pk_str(&b, "k"); /* SETITEM on the object: dict items */
    pk_str(&b, "v");
    pk_setitem(&b);
    pk_none(&b); /* BUILD (None, slotstate) */
    pk_empty_dict(&b);
    pk_str(&b, "slot");
    pk_true(&b);
    pk_setitem(&b);
    pk_tuple2(&b);
    pk_build(&b);
    pk_empty_dict(&b); /* a second BUILD merges */
    pk_str(&b, "attr");
    pk_int(&b, 5);
    pk_setitem(&b);
    pk_build(&b);
    pk_stop(&b);
    ckpt_checkpoint *ck;
    ckpt_error *err = ckpt_error_new();
    ck_assert_msg(load_pk(r, &b, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    const ckpt_value *o = ckpt_checkpoint_root(ck);
    ck_assert_int_eq(ckpt_value_kind(o), CKPT_KIND_OBJECT);
    ck_assert_ptr_nonnull(ckpt_value_dict_get(ckpt_value_object_kwargs(o), "size"));
    ck_assert_uint_eq(ckpt_value_len(o), 2); /* list items */
    ck_assert_uint_eq(ckpt_value_len(ckpt_value_object_list_items(o)), 2);
    ck_assert_ptr_nonnull(ckpt_value_dict_get(ckpt_value_object_dict_items(o), "k"));
    const ckpt_value *st = ckpt_value_object_state(o);
    ck_assert(ckpt_value_bool(ckpt_value_dict_get(st, "slot")));
    ck_assert_ptr_nonnull(ckpt_value_dict_get(st, "attr"));
    /* walk order: __args__, __kwargs__, attributes, list items, dict items */
    ck_assert_ptr_nonnull(ckpt_checkpoint_find(ck, "__kwargs__.size"));
    ck_assert_ptr_nonnull(ckpt_checkpoint_find(ck, "slot"));
    ck_assert_ptr_nonnull(ckpt_checkpoint_find(ck, "1"));
    ck_assert_str_eq(ckpt_value_str(ckpt_checkpoint_find(ck, "k"), NULL), "v");
    ckpt_checkpoint_free(ck);
    pk_free(&b);
    ckpt_error_free(err);
    ckpt_registry_free(r);
}
END_TEST

START_TEST(inst_and_obj_protocol_0_1)
{
    const char *names[] = {"oldpkg.Point"};
    ckpt_registry *r = reg_with(names, 1);
    pk b = {0};
    pk_mark(&b); /* (I1\nI2\nioldpkg\nPoint\n : INST */
    pk_mark(&b);
    pk_line(&b, 'I', "1");
    pk_line(&b, 'I', "2");
    pk_inst(&b, "oldpkg", "Point");
    pk_mark(&b); /* OBJ: (cls args o */
    pk_global(&b, "oldpkg", "Point");
    pk_line(&b, 'I', "3");
    pk_obj(&b);
    pk_op(&b, 'l'); /* LIST */
    pk_stop(&b);
    ckpt_checkpoint *ck;
    ckpt_error *err = ckpt_error_new();
    ck_assert_msg(load_pk(r, &b, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    const ckpt_value *root = ckpt_checkpoint_root(ck);
    for (int i = 0; i < 2; i++) {
        const ckpt_value *p = ckpt_value_item(root, (size_t)i);
        ck_assert_int_eq(ckpt_value_kind(p), CKPT_KIND_OBJECT);
        ck_assert_str_eq(ckpt_value_type_name(p), "oldpkg.Point");
        ck_assert_uint_eq(ckpt_value_len(ckpt_value_object_args(p)), i == 0 ? 2 : 1);
    }
    ckpt_checkpoint_free(ck);
    /* INST of a class that is not allowed is refused before anything else */
    pk_free(&b);
    pk_mark(&b);
    pk_line(&b, 'S', "'ls'");
    pk_inst(&b, "os", "system");
    pk_stop(&b);
    ck_assert_int_eq(load_pk(r, &b, NULL, err), CKPT_ERR_BLOCKED);
    ck_assert_int_eq(ckpt_error_opcode(err), 'i');
    pk_free(&b);
    ckpt_error_free(err);
    ckpt_registry_free(r);
}
END_TEST

START_TEST(non_dict_state_and_refusals)
{
    const char *names[] = {"mypkg.Blob", "mypkg.func"};
    ckpt_registry *r = reg_with(names, 2);
    pk b = {0};
    pk_proto(&b, 2);
    pk_global(&b, "mypkg", "Blob");
    pk_empty_tuple(&b);
    pk_newobj(&b);
    pk_int(&b, 1); /* a __setstate__ tuple: kept as is */
    pk_str(&b, "x");
    pk_tuple2(&b);
    pk_build(&b);
    pk_stop(&b);
    ckpt_checkpoint *ck;
    ckpt_error *err = ckpt_error_new();
    ck_assert_msg(load_pk(r, &b, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    const ckpt_value *st = ckpt_value_object_state(ckpt_checkpoint_root(ck));
    ck_assert_int_eq(ckpt_value_kind(st), CKPT_KIND_TUPLE);
    ck_assert_ptr_nonnull(ckpt_checkpoint_find(ck, "__state__.1"));
    ckpt_checkpoint_free(ck);
    /* a second non-dict BUILD is refused */
    b.len--;
    pk_int(&b, 2);
    pk_build(&b);
    pk_stop(&b);
    ck_assert_int_eq(load_pk(r, &b, NULL, err), CKPT_ERR_PICKLE);
    ck_assert_ptr_nonnull(strstr(ckpt_error_message(err), "second BUILD"));
    /* BUILD on a plain list, APPEND on a tuple: still refused */
    pk_free(&b);
    pk_proto(&b, 2);
    pk_empty_list(&b);
    pk_empty_dict(&b);
    pk_build(&b);
    pk_stop(&b);
    ck_assert_int_eq(load_pk(r, &b, NULL, err), CKPT_ERR_PICKLE);
    pk_free(&b);
    pk_proto(&b, 2);
    pk_empty_tuple(&b);
    pk_int(&b, 1);
    pk_append(&b);
    pk_stop(&b);
    ck_assert_int_eq(load_pk(r, &b, NULL, err), CKPT_ERR_PICKLE);
    /* NEWOBJ args must be a tuple; the callable must be a global */
    pk_free(&b);
    pk_proto(&b, 2);
    pk_global(&b, "mypkg", "Blob");
    pk_empty_list(&b);
    pk_newobj(&b);
    pk_stop(&b);
    ck_assert_int_eq(load_pk(r, &b, NULL, err), CKPT_ERR_PICKLE);
    pk_free(&b);
    pk_proto(&b, 2);
    pk_str(&b, "not callable");
    pk_empty_tuple(&b);
    pk_reduce(&b);
    pk_stop(&b);
    ck_assert_int_eq(load_pk(r, &b, NULL, err), CKPT_ERR_PICKLE);
    pk_free(&b);
    ckpt_error_free(err);
    ckpt_registry_free(r);
}
END_TEST

/* Python >= 3.11 pickles an Enum member as getattr(EnumClass, 'NAME'): that one use of getattr passes. */
static void pk_getattr(pk *b, const char *module, const char *cls, const char *attr)
{
    pk_global(b, "__builtin__", "getattr");
    pk_global(b, module, cls);
    pk_str(b, attr);
    pk_tuple2(b);
    pk_reduce(b);
}

START_TEST(enum_members_by_name)
{
    const char *names[] = {"mypkg.Phase"};
    ckpt_registry *r = reg_with(names, 1);
    pk b = {0};
    pk_proto(&b, 2);
    pk_getattr(&b, "mypkg", "Phase", "TRAIN");
    pk_stop(&b);
    ckpt_checkpoint *ck;
    ckpt_error *err = ckpt_error_new();
    ck_assert_int_eq(load_pk(NULL, &b, NULL, err), CKPT_ERR_BLOCKED);
    ck_assert_str_eq(ckpt_error_global(err), "mypkg.Phase"); /* the fix is to allow the class */
    ck_assert_msg(load_pk(r, &b, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    const ckpt_value *m = ckpt_checkpoint_root(ck);
    ck_assert_int_eq(ckpt_value_kind(m), CKPT_KIND_OBJECT);
    ck_assert_str_eq(ckpt_value_type_name(m), "mypkg.Phase");
    ck_assert_str_eq(ckpt_value_str(ckpt_value_object_state(m), NULL), "TRAIN");
    ckpt_checkpoint_free(ck);
    /* every other use is refused, naming getattr */
    static const struct { const char *module, *cls, *attr; } bad[] = {
        {"mypkg", "Phase", "__init__"}, {"mypkg", "Phase", "_private"}, {"mypkg", "Phase", "a.b"},
        {"torch", "Size", "count"}, /* a native class: its attributes are code */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pk_free(&b);
        pk_proto(&b, 2);
        pk_getattr(&b, bad[i].module, bad[i].cls, bad[i].attr);
        pk_stop(&b);
        ck_assert_int_eq(load_pk(r, &b, NULL, err), CKPT_ERR_BLOCKED);
        ck_assert_str_eq(ckpt_error_global(err), "builtins.getattr");
        ck_assert_ptr_nonnull(strstr(ckpt_error_message(err), "Enum member"));
    }
    pk_free(&b); /* getattr itself as a value */
    pk_proto(&b, 2);
    pk_empty_list(&b);
    pk_global(&b, "builtins", "getattr");
    pk_append(&b);
    pk_stop(&b);
    ck_assert_int_eq(load_pk(r, &b, NULL, err), CKPT_ERR_BLOCKED);
    ck_assert_int_eq(ckpt_error_offset(err), 3);
    pk_free(&b); /* getattr instantiated */
    pk_proto(&b, 2);
    pk_global(&b, "builtins", "getattr");
    pk_empty_tuple(&b);
    pk_newobj(&b);
    pk_stop(&b);
    ck_assert_int_eq(load_pk(r, &b, NULL, err), CKPT_ERR_BLOCKED);
    /* a scan says the same: allowed only when every use is an Enum member */
    pk_free(&b);
    pk_proto(&b, 2);
    pk_mark(&b);
    pk_getattr(&b, "mypkg", "Phase", "TRAIN");
    pk_binget(&b, 0);
    pk_tuple(&b);
    pk_stop(&b);
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_load_options_set_registry(o, r);
    ckpt_scan_result *sr;
    pk c = {0};
    pk_proto(&c, 2);
    pk_getattr(&c, "mypkg", "Phase", "TRAIN");
    pk_stop(&c);
    ck_assert_int_eq(ckpt_scan_memory(c.p, c.len, o, &sr, err), CKPT_OK);
    ck_assert_str_eq(ckpt_scan_global_name(sr, 0), "builtins.getattr");
    ck_assert_int_eq(ckpt_scan_global_status(sr, 0), CKPT_GLOBAL_ALLOWED);
    ckpt_scan_result_free(sr);
    ck_assert_int_eq(ckpt_scan_memory(c.p, c.len, NULL, &sr, err), CKPT_OK); /* class not allowed */
    ck_assert_int_eq(ckpt_scan_global_status(sr, 0), CKPT_GLOBAL_NEVER_ALLOWED);
    ckpt_scan_result_free(sr);
    pk_free(&c);
    pk_proto(&c, 2);
    pk_getattr(&c, "mypkg", "Phase", "__class__");
    pk_stop(&c);
    ck_assert_int_eq(ckpt_scan_memory(c.p, c.len, o, &sr, err), CKPT_OK);
    ck_assert_int_eq(ckpt_scan_global_status(sr, 0), CKPT_GLOBAL_NEVER_ALLOWED);
    ckpt_scan_result_free(sr);
    pk_free(&c);
    ckpt_load_options_free(o);
    pk_free(&b);
    ckpt_error_free(err);
    ckpt_registry_free(r);
}
END_TEST

/* ---- the blocked-global message ---- */

START_TEST(blocked_message_says_where_and_how)
{
    pk b = {0};
    pk_proto(&b, 2);
    pk_empty_dict(&b);
    pk_str(&b, "a");
    pk_global(&b, "mypkg.models", "Net"); /* at byte 9 */
    pk_setitem(&b);
    pk_stop(&b);
    ckpt_error *err = ckpt_error_new();
    ck_assert_int_eq(load_pk(NULL, &b, NULL, err), CKPT_ERR_BLOCKED);
    const char *m = ckpt_error_message(err);
    ck_assert_str_eq(ckpt_error_global(err), "mypkg.models.Net");
    ck_assert_str_eq(ckpt_error_record(err), "archive/data.pkl");
    ck_assert_int_eq(ckpt_error_offset(err), 9);
    ck_assert_int_eq(ckpt_error_opcode(err), 'c');
    ck_assert_msg(strncmp(m, "archive/data.pkl: byte 9, opcode GLOBAL: global 'mypkg.models.Net'", 66) == 0, "%s", m);
    ck_assert_ptr_nonnull(strstr(m, "ckpt_registry_add_safe_globals(reg, (const char *[]){\"mypkg.models.Net\"}, 1, err)"));
    ck_assert_ptr_nonnull(strstr(m, "--allow mypkg.models.Net"));
    ck_assert_ptr_null(strstr(m, "numpy"));
    pk_free(&b);
    /* NumPy names point at the preset */
    pk_proto(&b, 2);
    pk_global(&b, "numpy.core.multiarray", "scalar");
    pk_stop(&b);
    ck_assert_int_eq(load_pk(NULL, &b, NULL, err), CKPT_ERR_BLOCKED);
    ck_assert_ptr_nonnull(strstr(ckpt_error_message(err), "--allow-preset numpy"));
    pk_free(&b);
    /* never-allowed names say so, and offer no fix */
    pk_proto(&b, 2);
    pk_global(&b, "posix", "system");
    pk_stop(&b);
    ck_assert_int_eq(load_pk(NULL, &b, NULL, err), CKPT_ERR_BLOCKED);
    ck_assert_ptr_nonnull(strstr(ckpt_error_message(err), "can never be allowed"));
    ck_assert_ptr_nonnull(strstr(ckpt_error_message(err), "`--allow posix.system` refuse it"));
    pk_free(&b);
    /* a dotted STACK_GLOBAL name is not walked: refused, and marked never allowed */
    pk_proto(&b, 4);
    pk_str(&b, "pathlib");
    pk_str(&b, "os.system");
    pk_stack_global(&b);
    pk_stop(&b);
    ck_assert_int_eq(load_pk(NULL, &b, NULL, err), CKPT_ERR_BLOCKED);
    ck_assert_str_eq(ckpt_error_global(err), "pathlib.os.system");
    ck_assert_ptr_nonnull(strstr(ckpt_error_message(err), "dotted"));
    pk_free(&b);
    ckpt_error_free(err);
}
END_TEST

/* ---- user handlers ---- */

static int handler_calls;

/* fastcore.foundation.L -> its `items` list (a new list holding the same items). */
static ckpt_status l_to_list(ckpt_handler_ctx *ctx, const ckpt_value *node, void *user, ckpt_value **out, ckpt_error *err)
{
    ck_assert_ptr_eq(user, &handler_calls);
    handler_calls++;
    const ckpt_value *items = ckpt_value_dict_get(ckpt_value_object_state(node), "items");
    if (!items || ckpt_value_kind(items) != CKPT_KIND_LIST) return CKPT_OK; /* decline */
    ckpt_value *list = ckpt_handler_new_container(ctx, CKPT_KIND_LIST);
    for (size_t i = 0; i < ckpt_value_len(items); i++) {
        ckpt_status s = ckpt_handler_append(ctx, list, ckpt_value_item(items, i), err);
        if (s) return s;
    }
    /* values read from the file cannot be changed */
    ck_assert_int_eq(ckpt_handler_append(ctx, (ckpt_value *)items, list, NULL), CKPT_ERR_INVALID_ARG);
    *out = list;
    return CKPT_OK;
}

static ckpt_status fails(ckpt_handler_ctx *ctx, const ckpt_value *node, void *user, ckpt_value **out, ckpt_error *err)
{
    (void)ctx; (void)node; (void)user; (void)out;
    return ckpt_error_code(err) == CKPT_OK ? CKPT_ERR_TYPE : CKPT_ERR_STATE;
}

/* The outer object's handler runs after the inner one: it sees a list, not an L. */
static ckpt_status outer_sees_inner(ckpt_handler_ctx *ctx, const ckpt_value *node, void *user, ckpt_value **out,
                                    ckpt_error *err)
{
    (void)user; (void)err;
    const ckpt_value *inner = ckpt_value_dict_get(ckpt_value_object_state(node), "lr");
    *out = ckpt_handler_new_str(ctx, ckpt_value_type_name(inner), strlen(ckpt_value_type_name(inner)));
    return CKPT_OK;
}

static void pk_L(pk *b, int n)
{
    pk_global(b, "fastcore.foundation", "L");
    pk_empty_tuple(b);
    pk_newobj(b);
    pk_empty_dict(b);
    pk_str(b, "items");
    pk_empty_list(b);
    pk_mark(b);
    for (int i = 0; i < n; i++) pk_int(b, i * 10);
    pk_appends(b);
    pk_setitem(b);
    pk_build(b);
}

START_TEST(user_handler_replaces_node_everywhere)
{
    ckpt_registry *r = ckpt_registry_new(0);
    ck_assert_int_eq(ckpt_registry_add_handler(r, "fastcore.foundation.L", l_to_list, &handler_calls, NULL), CKPT_OK);
    ck_assert_int_eq(ckpt_registry_add_handler(r, "x.y", NULL, NULL, NULL), CKPT_ERR_INVALID_ARG);
    pk b = {0};
    pk_proto(&b, 2);
    pk_empty_dict(&b);
    pk_str(&b, "classes");
    pk_L(&b, 3);
    pk_binput(&b, 0);
    pk_setitem(&b);
    pk_str(&b, "again"); /* the same object through the memo */
    pk_binget(&b, 0);
    pk_setitem(&b);
    pk_stop(&b);
    handler_calls = 0;
    ckpt_checkpoint *ck;
    ckpt_error *err = ckpt_error_new();
    ck_assert_msg(load_pk(r, &b, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    ck_assert_int_eq(handler_calls, 1);
    const ckpt_value *c = ckpt_checkpoint_find(ck, "classes");
    ck_assert_int_eq(ckpt_value_kind(c), CKPT_KIND_LIST);
    ck_assert_uint_eq(ckpt_value_len(c), 3);
    ck_assert_ptr_eq(ckpt_value_dict_get(ckpt_checkpoint_root(ck), "again"), c);
    int64_t v;
    ck_assert_int_eq(ckpt_value_int64(ckpt_value_item(c, 2), &v), CKPT_OK);
    ck_assert_int_eq(v, 20);
    ckpt_checkpoint_free(ck);
    /* post-order: the outer handler sees the inner value already converted */
    ck_assert_int_eq(ckpt_registry_add_handler(r, "mypkg.Outer", outer_sees_inner, NULL, NULL), CKPT_OK);
    pk_free(&b);
    pk_proto(&b, 2);
    pk_global(&b, "mypkg", "Outer");
    pk_empty_tuple(&b);
    pk_newobj(&b);
    pk_empty_dict(&b);
    pk_str(&b, "lr");
    pk_L(&b, 1);
    pk_setitem(&b);
    pk_build(&b);
    pk_stop(&b);
    ck_assert_msg(load_pk(r, &b, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    ck_assert_str_eq(ckpt_value_str(ckpt_checkpoint_root(ck), NULL), "list");
    ckpt_checkpoint_free(ck);
    /* a failing handler fails the load, naming the global and where its object was made */
    ck_assert_int_eq(ckpt_registry_add_handler(r, "fastcore.foundation.L", fails, NULL, NULL), CKPT_OK);
    pk_free(&b);
    pk_proto(&b, 2);
    pk_L(&b, 1);
    pk_stop(&b);
    ck_assert_int_eq(load_pk(r, &b, NULL, err), CKPT_ERR_TYPE);
    ck_assert_ptr_nonnull(strstr(ckpt_error_message(err), "handler of fastcore.foundation.L"));
    ck_assert_int_eq(ckpt_error_offset(err), 26); /* the NEWOBJ */
    pk_free(&b);
    ckpt_error_free(err);
    ckpt_registry_free(r);
}
END_TEST

/* ---- built-in handlers on hand-made pickles (the torch-made fixtures are in test_fixtures) ---- */

/* numpy.dtype(code, False, True) + BUILD (3, order, None, None, None, -1, -1, 0) */
static void pk_np_dtype(pk *b, const char *code, const char *order)
{
    pk_global(b, "numpy", "dtype");
    pk_str(b, code);
    pk_false(b);
    pk_true(b);
    pk_tuple3(b);
    pk_reduce(b);
    pk_mark(b);
    pk_int(b, 3);
    pk_str(b, order);
    pk_none(b);
    pk_none(b);
    pk_none(b);
    pk_int(b, -1);
    pk_int(b, -1);
    pk_int(b, 0);
    pk_tuple(b);
    pk_build(b);
}

/* numpy 2 spelling: numpy._core.multiarray._reconstruct(ndarray, (0,), b'b') + BUILD state */
static void pk_np_array(pk *b, const char *mod, const char *code, const char *order, int64_t d0, int64_t d1,
                        bool fortran, const void *raw, size_t n)
{
    pk_global(b, mod, "_reconstruct");
    pk_global(b, "numpy", "ndarray");
    pk_int(b, 0);
    pk_tuple1(b);
    pk_bytes(b, "b", 1);
    pk_tuple3(b);
    pk_reduce(b);
    pk_mark(b);
    pk_int(b, 1);
    pk_int(b, (int32_t)d0);
    pk_int(b, (int32_t)d1);
    pk_tuple2(b);
    pk_np_dtype(b, code, order);
    if (fortran) pk_true(b); else pk_false(b);
    pk_bytes(b, raw, n);
    pk_tuple(b);
    pk_build(b);
}

START_TEST(numpy_handlers_hand_made)
{
    ckpt_registry *r = ckpt_registry_new(0);
    ck_assert_int_eq(ckpt_registry_add_preset(r, "numpy", NULL), CKPT_OK);
    const int32_t le[6] = {1, 2, 3, 4, 5, 6};
    uint8_t be[24];
    for (int i = 0; i < 6; i++)
        for (int k = 0; k < 4; k++) be[i * 4 + k] = (uint8_t)((uint32_t)le[i] >> (8 * (3 - k)));
    pk b = {0};
    pk_proto(&b, 2);
    pk_mark(&b);
    pk_np_array(&b, "numpy._core.multiarray", "i4", "<", 2, 3, false, le, sizeof le);
    pk_np_array(&b, "numpy.core.multiarray", "i4", ">", 2, 3, false, be, sizeof be);
    pk_np_array(&b, "numpy._core.multiarray", "i4", "<", 2, 3, true, le, sizeof le);
    pk_np_array(&b, "numpy._core.multiarray", "U1", "<", 2, 3, false, le, sizeof le); /* declined */
    pk_global(&b, "numpy._core.multiarray", "scalar");
    pk_np_dtype(&b, "f2", "<");
    pk_bytes(&b, "\x00\x38", 2); /* 0.5 in half precision */
    pk_tuple2(&b);
    pk_reduce(&b);
    pk_global(&b, "numpy.core.multiarray", "scalar");
    pk_np_dtype(&b, "u8", "<");
    pk_bytes(&b, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
    pk_tuple2(&b);
    pk_reduce(&b);
    pk_np_dtype(&b, "f8", ">");
    pk_tuple(&b);
    pk_stop(&b);
    ckpt_checkpoint *ck;
    ckpt_error *err = ckpt_error_new();
    ck_assert_msg(load_pk(r, &b, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    ck_assert_uint_eq(ckpt_checkpoint_num_tensors(ck), 3);
    uint64_t h[3];
    for (size_t i = 0; i < 3; i++) {
        const ckpt_tensor *t = ckpt_value_tensor(ckpt_value_item(ckpt_checkpoint_root(ck), i));
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(ckpt_tensor_dtype(t), CKPT_DTYPE_INT32);
        ck_assert_int_eq(ckpt_tensor_shape(t)[0], 2);
        ck_assert_int_eq(ckpt_tensor_xxh3_64(t, &h[i], NULL), CKPT_OK);
    }
    ck_assert_uint_eq(h[0], XXH3_64bits(le, sizeof le)); /* little, C order */
    ck_assert_uint_eq(h[1], h[0]);                        /* big-endian bytes, same values */
    ck_assert_uint_ne(h[2], h[0]);                        /* Fortran order: other logical order */
    const ckpt_tensor *f = ckpt_value_tensor(ckpt_value_item(ckpt_checkpoint_root(ck), 2));
    ck_assert_int_eq(ckpt_tensor_stride(f)[0], 1);
    ck_assert_int_eq(ckpt_tensor_stride(f)[1], 2);
    const int32_t forder[6] = {1, 3, 5, 2, 4, 6}; /* element (i, j) at i + 2j */
    ck_assert_uint_eq(h[2], XXH3_64bits(forder, sizeof forder));
    const ckpt_value *str_arr = ckpt_value_item(ckpt_checkpoint_root(ck), 3);
    ck_assert_int_eq(ckpt_value_kind(str_arr), CKPT_KIND_CALL); /* unknown dtype: kept generic */
    ck_assert_double_eq(ckpt_value_float(ckpt_value_item(ckpt_checkpoint_root(ck), 4)), 0.5);
    char *dec = ckpt_value_int_to_string(ckpt_value_item(ckpt_checkpoint_root(ck), 5));
    ck_assert_str_eq(dec, "18446744073709551615");
    ckpt_free(dec);
    const ckpt_value *dt = ckpt_value_item(ckpt_checkpoint_root(ck), 6);
    ck_assert_str_eq(ckpt_value_type_name(dt), "numpy.dtype");
    ck_assert_int_eq(ckpt_value_dtype(dt), CKPT_DTYPE_FLOAT64);
    char *json;
    ck_assert_int_eq(ckpt_checkpoint_to_json(ck, "x", 0, &json, err), CKPT_OK);
    ck_assert_ptr_nonnull(strstr(json, "\"type\":\"numpy.dtype\",\"value\":\">f8\""));
    ck_assert_ptr_nonnull(strstr(json, "\"storage_key\":null"));
    ckpt_free(json);
    ckpt_checkpoint_free(ck);
    /* the size must match the shape */
    pk_free(&b);
    pk_proto(&b, 2);
    pk_np_array(&b, "numpy.core.multiarray", "i4", "<", 2, 4, false, le, sizeof le);
    pk_stop(&b);
    ck_assert_int_eq(load_pk(r, &b, NULL, err), CKPT_ERR_TENSOR);
    ck_assert_ptr_nonnull(strstr(ckpt_error_message(err), "numpy"));
    /* without the preset but allowed: the generic nodes */
    const char *names[] = {"numpy.core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype"};
    ckpt_registry *g = reg_with(names, 3);
    pk_free(&b);
    pk_proto(&b, 2);
    pk_np_array(&b, "numpy.core.multiarray", "i4", "<", 2, 3, false, le, sizeof le);
    pk_stop(&b);
    ck_assert_msg(load_pk(g, &b, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    ck_assert_int_eq(ckpt_value_kind(ckpt_checkpoint_root(ck)), CKPT_KIND_CALL);
    ck_assert_uint_eq(ckpt_checkpoint_num_tensors(ck), 0);
    ckpt_checkpoint_free(ck);
    /* metadata-only loads give numpy tensors no data */
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_load_options_set_registry(o, r);
    ckpt_load_options_set_flags(o, CKPT_LOAD_SKIP_DATA);
    size_t zlen;
    uint8_t *z = tst_make_checkpoint(b.p, b.len, NULL, 0, &zlen);
    ck_assert_int_eq(ckpt_load_memory(z, zlen, o, &ck, err), CKPT_OK);
    ck_assert_ptr_null(ckpt_tensor_data(ckpt_value_tensor(ckpt_checkpoint_root(ck))));
    ckpt_checkpoint_free(ck);
    free(z);
    ckpt_load_options_free(o);
    pk_free(&b);
    ckpt_error_free(err);
    ckpt_registry_free(g);
    ckpt_registry_free(r);
}
END_TEST

START_TEST(stdlib_handlers)
{
    ckpt_registry *r = ckpt_registry_new(0);
    ck_assert_int_eq(ckpt_registry_add_preset(r, "stdlib", NULL), CKPT_OK);
    pk b = {0};
    pk_proto(&b, 2);
    pk_mark(&b);
    pk_global(&b, "collections", "defaultdict");
    pk_global(&b, "__builtin__", "list");
    pk_tuple1(&b);
    pk_reduce(&b);
    pk_str(&b, "a");
    pk_empty_list(&b);
    pk_setitem(&b);
    pk_global(&b, "__builtin__", "slice");
    pk_int(&b, 5);
    pk_tuple1(&b);
    pk_reduce(&b);
    pk_global(&b, "__builtin__", "xrange"); /* Python 2: builtins.range */
    pk_int(&b, 2);
    pk_int(&b, 8);
    pk_tuple2(&b);
    pk_reduce(&b);
    pk_global(&b, "collections", "Counter"); /* a default: native already */
    pk_empty_dict(&b);
    pk_str(&b, "x");
    pk_int(&b, 3);
    pk_setitem(&b);
    pk_tuple1(&b);
    pk_reduce(&b);
    pk_tuple(&b);
    pk_stop(&b);
    ckpt_checkpoint *ck;
    ckpt_error *err = ckpt_error_new();
    ck_assert_msg(load_pk(r, &b, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    const ckpt_value *root = ckpt_checkpoint_root(ck);
    const ckpt_value *dd = ckpt_value_item(root, 0), *sl = ckpt_value_item(root, 1), *rg = ckpt_value_item(root, 2);
    ck_assert_str_eq(ckpt_value_type_name(dd), "collections.defaultdict");
    ck_assert_int_eq(ckpt_value_kind(ckpt_value_dict_get(dd, "a")), CKPT_KIND_LIST);
    ck_assert_str_eq(ckpt_value_global_name(ckpt_value_dict_get(ckpt_value_attrs(dd), "default_factory")), "list");
    ck_assert_str_eq(ckpt_value_type_name(sl), "slice");
    ck_assert_int_eq(ckpt_value_kind(ckpt_value_item(sl, 0)), CKPT_KIND_NONE);
    int64_t v;
    ck_assert_int_eq(ckpt_value_int64(ckpt_value_item(sl, 1), &v), CKPT_OK);
    ck_assert_int_eq(v, 5);
    ck_assert_str_eq(ckpt_value_type_name(rg), "range");
    ck_assert_int_eq(ckpt_value_int64(ckpt_value_item(rg, 2), &v), CKPT_OK);
    ck_assert_int_eq(v, 1);
    ck_assert_str_eq(ckpt_value_type_name(ckpt_value_item(root, 3)), "collections.Counter");
    ckpt_checkpoint_free(ck);
    /* Namespace by name, with NEWOBJ + BUILD */
    const char *ns = "argparse.Namespace";
    ck_assert_int_eq(ckpt_registry_enable_handlers(r, &ns, 1, err), CKPT_OK);
    pk_free(&b);
    pk_object(&b, "argparse", "Namespace");
    ck_assert_msg(load_pk(r, &b, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    root = ckpt_checkpoint_root(ck);
    ck_assert_int_eq(ckpt_value_kind(root), CKPT_KIND_DICT);
    ck_assert_str_eq(ckpt_value_type_name(root), "argparse.Namespace");
    ck_assert_str_eq(ckpt_value_str(ckpt_value_dict_get(root, "name"), NULL), "run");
    ckpt_checkpoint_free(ck);
    pk_free(&b);
    ckpt_error_free(err);
    ckpt_registry_free(r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("objects");
    TCase *obj = tcase_create("objects");
    tcase_add_test(obj, newobj_build_is_an_object);
    tcase_add_test(obj, reduce_class_vs_function);
    tcase_add_test(obj, newobj_ex_slotstate_items);
    tcase_add_test(obj, inst_and_obj_protocol_0_1);
    tcase_add_test(obj, non_dict_state_and_refusals);
    tcase_add_test(obj, enum_members_by_name);
    tcase_add_test(obj, blocked_message_says_where_and_how);
    tcase_add_test(obj, user_handler_replaces_node_everywhere);
    tcase_add_test(obj, numpy_handlers_hand_made);
    tcase_add_test(obj, stdlib_handlers);
    suite_add_tcase(s, obj);
    return s;
}

int main(void) { return tst_run(suite()); }
