/*
 * test_scan.c: ckpt_scan_* / ckpt_disassemble_* and the `ckpt scan` / `ckpt dis` commands, on torch-made
 * fixtures and hand-made malicious files: memoised STACK_GLOBAL operands, protocol-0 STRING operands,
 * dotted names, pickles under any member name, payloads followed by a truncated stream, INST, EXT codes,
 * legacy streams, several pickles back to back.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "pickle_builder.h"
#include "support.h"

static ckpt_scan_result *scan(const void *p, size_t n, const ckpt_registry *reg, ckpt_status want)
{
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_load_options_set_registry(o, reg);
    ckpt_error *err = ckpt_error_new();
    ckpt_scan_result *r = NULL;
    ckpt_status s = ckpt_scan_memory(p, n, o, &r, err);
    ck_assert_msg(s == want, "scan gave %s (%s), expected %s", ckpt_status_name(s), ckpt_error_message(err),
                  ckpt_status_name(want));
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(ckpt_scan_error_code(r), s);
    ckpt_error_free(err);
    ckpt_load_options_free(o);
    return r;
}

/* Index of a global in the result, asserting it is there with the given status. */
static size_t expect(const ckpt_scan_result *r, const char *name, ckpt_global_status st)
{
    for (size_t i = 0; i < ckpt_scan_num_globals(r); i++)
        if (strcmp(ckpt_scan_global_name(r, i), name) == 0) {
            ck_assert_msg(ckpt_scan_global_status(r, i) == st, "%s is %s", name,
                          ckpt_global_status_name(ckpt_scan_global_status(r, i)));
            return i;
        }
    ck_abort_msg("global %s not reported", name);
    return 0;
}

static bool has(const ckpt_scan_result *r, const char *name)
{
    for (size_t i = 0; i < ckpt_scan_num_globals(r); i++)
        if (strcmp(ckpt_scan_global_name(r, i), name) == 0) return true;
    return false;
}

/* ---- malicious pickles ---- */

/* STACK_GLOBAL twice from memoised strings: "os" / "system" are pushed once and fetched from the memo. */
static void pk_memo_stack_global(pk *b)
{
    pk_proto(b, 4);
    pk_str(b, "os");
    pk_memoize(b);
    pk_str(b, "system");
    pk_memoize(b);
    pk_stack_global(b);
    pk_str(b, "id");
    pk_tuple1(b);
    pk_reduce(b);
    pk_op(b, '0'); /* POP */
    pk_binget(b, 0);
    pk_binget(b, 1);
    pk_stack_global(b);
    pk_str(b, "id");
    pk_tuple1(b);
    pk_reduce(b);
    pk_stop(b);
}

/* Protocol 0: STRING operands (quoted text) for STACK_GLOBAL, then eval. */
static void pk_p0_strings(pk *b)
{
    pk_line(b, 'S', "'builtins'");
    pk_line(b, 'S', "\"eval\"");
    pk_stack_global(b);
    pk_mark(b);
    pk_line(b, 'S', "'1+1'");
    pk_tuple(b);
    pk_reduce(b);
    pk_stop(b);
}

START_TEST(memoised_and_text_operands)
{
    pk b = {0};
    pk_memo_stack_global(&b);
    ckpt_scan_result *r = scan(b.p, b.len, NULL, CKPT_OK);
    size_t i = expect(r, "os.system", CKPT_GLOBAL_NEVER_ALLOWED);
    ck_assert_uint_eq(ckpt_scan_global_count(r, i), 2);
    ck_assert_uint_eq(ckpt_scan_global_first_offset(r, i), 22); /* the first STACK_GLOBAL */
    ck_assert_str_eq(ckpt_scan_global_first_record(r, i), "");
    ck_assert_str_eq(ckpt_scan_format(r), "pickle");
    ck_assert_int_eq(ckpt_scan_worst(r), CKPT_GLOBAL_NEVER_ALLOWED);
    ckpt_scan_result_free(r);
    pk_free(&b);
    pk_p0_strings(&b);
    r = scan(b.p, b.len, NULL, CKPT_OK); /* a text pickle: found by its shape, not by sniffing */
    expect(r, "builtins.eval", CKPT_GLOBAL_NEVER_ALLOWED);
    ck_assert_uint_eq(ckpt_scan_num_globals(r), 1);
    ckpt_scan_result_free(r);
    pk_free(&b);
}
END_TEST

START_TEST(dotted_inst_ext_and_python2_names)
{
    pk b = {0};
    pk_proto(&b, 4);
    pk_mark(&b);
    pk_str(&b, "pathlib"); /* CPython would walk "os.system" from pathlib to os.system */
    pk_str(&b, "os.system");
    pk_stack_global(&b);
    pk_op(&b, 0x82); /* EXT1 7 */
    pk_op(&b, 7);
    pk_global(&b, "__builtin__", "set"); /* protocol 4: no Python 2 renaming */
    pk_global(&b, "mypkg", "Net");
    pk_tuple(&b);
    pk_stop(&b);
    ckpt_scan_result *r = scan(b.p, b.len, NULL, CKPT_OK);
    size_t i = expect(r, "pathlib.os.system", CKPT_GLOBAL_NEVER_ALLOWED);
    ck_assert_ptr_nonnull(strstr(ckpt_scan_global_reason(r, i), "dotted"));
    expect(r, "copyreg._extension_registry[7]", CKPT_GLOBAL_NOT_ALLOWED);
    expect(r, "__builtin__.set", CKPT_GLOBAL_NOT_ALLOWED);
    expect(r, "mypkg.Net", CKPT_GLOBAL_NOT_ALLOWED);
    ckpt_scan_result_free(r);
    /* the same pickle with the registry allowing mypkg.Net */
    ckpt_registry *reg = ckpt_registry_new(0);
    const char *n = "mypkg.Net";
    ck_assert_int_eq(ckpt_registry_add_safe_globals(reg, &n, 1, NULL), CKPT_OK);
    r = scan(b.p, b.len, reg, CKPT_OK);
    expect(r, "mypkg.Net", CKPT_GLOBAL_ALLOWED);
    ckpt_scan_result_free(r);
    ckpt_registry_free(reg);
    pk_free(&b);
    /* protocol 2: Python 2 names normalised; INST resolves like GLOBAL */
    pk_proto(&b, 2);
    pk_mark(&b);
    pk_global(&b, "__builtin__", "set");
    pk_mark(&b);
    pk_line(&b, 'S', "'ls'");
    pk_inst(&b, "os", "system");
    pk_tuple(&b);
    pk_stop(&b);
    r = scan(b.p, b.len, NULL, CKPT_OK);
    expect(r, "builtins.set", CKPT_GLOBAL_ALLOWED);
    expect(r, "os.system", CKPT_GLOBAL_NEVER_ALLOWED);
    ckpt_scan_result_free(r);
    pk_free(&b);
}
END_TEST

START_TEST(payload_then_truncated_stream)
{
    pk b = {0};
    pk_proto(&b, 2);
    pk_global(&b, "posix", "system");
    pk_str(&b, "touch /tmp/pwned");
    pk_tuple1(&b);
    pk_reduce(&b); /* Python has run the payload by now */
    pk_str(&b, "truncated");
    b.len -= 3;    /* ... and the stream ends inside an argument, without STOP */
    ckpt_scan_result *r = scan(b.p, b.len, NULL, CKPT_ERR_PICKLE);
    expect(r, "posix.system", CKPT_GLOBAL_NEVER_ALLOWED);
    ck_assert_ptr_nonnull(strstr(ckpt_scan_error_message(r), "only 6 bytes remain"));
    ckpt_scan_result_free(r);
    /* a load stops at the global, before the truncation */
    size_t zlen;
    uint8_t *z = tst_make_checkpoint(b.p, b.len, NULL, 0, &zlen);
    tst_assert_load_fails(z, zlen, CKPT_ERR_BLOCKED, "posix.system");
    free(z);
    pk_free(&b);
}
END_TEST

START_TEST(every_pickle_in_a_zip)
{
    /* a valid checkpoint whose storage record 0 happens to start like a pickle, plus pickles under odd names */
    pk main = {0}, evil = {0}, hidden = {0};
    pk_proto(&main, 2);
    pk_global(&main, "torch._utils", "_rebuild_tensor_v2");
    pk_mark(&main); /* (storage, 0, (4,), (1,), False, OrderedDict()) */
    pk_mark(&main);
    pk_str(&main, "storage");
    pk_global(&main, "torch", "ByteStorage");
    pk_str(&main, "0");
    pk_str(&main, "cpu");
    pk_int(&main, 4);
    pk_tuple(&main);
    pk_op(&main, 'Q'); /* BINPERSID */
    pk_int(&main, 0);
    pk_int(&main, 4);
    pk_tuple1(&main);
    pk_int(&main, 1);
    pk_tuple1(&main);
    pk_false(&main);
    pk_global(&main, "collections", "OrderedDict");
    pk_empty_tuple(&main);
    pk_reduce(&main);
    pk_tuple(&main);
    pk_reduce(&main);
    pk_stop(&main);
    pk_p0_strings(&evil);
    pk_memo_stack_global(&hidden);
    const uint8_t looks_like_pickle[4] = {0x80, 0x02, 'c', '.'};
    tst_record recs[] = {
        {"data/0", looks_like_pickle, 4},      /* referenced storage: tensor bytes, never unpickled */
        {"data.txt", evil.p, evil.len},        /* any name */
        {"data/7", hidden.p, hidden.len},      /* under data/ but not a referenced storage */
        {"README", "not a pickle\n", 13},
    };
    size_t zlen;
    uint8_t *z = tst_make_checkpoint(main.p, main.len, recs, 4, &zlen);
    /* the checkpoint itself loads (the extra members are not read by a load) */
    ckpt_checkpoint *ck = NULL;
    ckpt_error *err = ckpt_error_new();
    ck_assert_msg(tst_load_mem(z, zlen, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    ck_assert_uint_eq(ckpt_checkpoint_num_tensors(ck), 1);
    ckpt_checkpoint_free(ck);
    ckpt_scan_result *r = scan(z, zlen, NULL, CKPT_OK);
    ck_assert_str_eq(ckpt_scan_format(r), "zip");
    ck_assert_uint_eq(ckpt_scan_num_pickles(r), 3);
    ck_assert_str_eq(ckpt_scan_pickle_record(r, 0), "archive/data.pkl");
    ck_assert_str_eq(ckpt_scan_pickle_record(r, 1), "archive/data.txt");
    ck_assert_str_eq(ckpt_scan_pickle_record(r, 2), "archive/data/7");
    expect(r, "torch._utils._rebuild_tensor_v2", CKPT_GLOBAL_ALLOWED);
    expect(r, "torch.ByteStorage", CKPT_GLOBAL_ALLOWED);
    size_t i = expect(r, "builtins.eval", CKPT_GLOBAL_NEVER_ALLOWED);
    ck_assert_str_eq(ckpt_scan_global_first_record(r, i), "archive/data.txt");
    i = expect(r, "os.system", CKPT_GLOBAL_NEVER_ALLOWED);
    ck_assert_str_eq(ckpt_scan_global_first_record(r, i), "archive/data/7");
    ck_assert_uint_eq(ckpt_scan_num_globals(r), 5);
    /* JSON Lines shape */
    char *text;
    ck_assert_int_eq(ckpt_scan_result_to_json(r, "x.pt", &text, err), CKPT_OK);
    ck_assert_ptr_null(strchr(text, '\n'));
    json_error_t je;
    json_t *doc = json_loads(text, 0, &je);
    ck_assert_ptr_nonnull(doc);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "file")), "x.pt");
    ck_assert(json_is_null(json_object_get(doc, "error")));
    json_t *g = json_array_get(json_object_get(doc, "globals"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(g, "name")), "torch._utils._rebuild_tensor_v2");
    ck_assert_str_eq(json_string_value(json_object_get(g, "status")), "allowed");
    ck_assert_int_eq(json_integer_value(json_object_get(g, "count")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(g, "first_offset")), 2);
    json_decref(doc);
    ckpt_free(text);
    ckpt_scan_result_free(r);
    free(z);
    /* a broken zip: the container error, no globals */
    uint8_t *z2 = tst_make_checkpoint(main.p, main.len, NULL, 0, &zlen);
    z2[zlen - 22 + 16] ^= 0x40; /* central directory offset */
    r = scan(z2, zlen, NULL, CKPT_ERR_ZIP);
    ck_assert_uint_eq(ckpt_scan_num_globals(r), 0);
    ckpt_scan_result_free(r);
    free(z2);
    ckpt_error_free(err);
    pk_free(&main);
    pk_free(&evil);
    pk_free(&hidden);
}
END_TEST

/* A one-member zip whose member is deflated (zip tools do this; torch 1.13 reads such files). */
static uint8_t *deflated_zip(const char *name, const void *data, size_t n, size_t *out_len)
{
    uint8_t *comp = malloc(n + 64);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    ck_assert_int_eq(deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)n;
    zs.next_out = comp;
    zs.avail_out = (uInt)(n + 64);
    ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t clen = zs.total_out;
    deflateEnd(&zs);
    uint32_t crc = (uint32_t)crc32(0, data, (uInt)n);
    size_t nl = strlen(name);
    pk b = {0};
    pk_u32(&b, 0x04034b50);
    pk_raw(&b, "\x14\0\0\0\x08\0\0\0\x21\0", 10); /* version, flags, method 8, time, date */
    pk_u32(&b, crc);
    pk_u32(&b, (uint32_t)clen);
    pk_u32(&b, (uint32_t)n);
    pk_raw(&b, (uint8_t[]){(uint8_t)nl, 0, 0, 0}, 4);
    pk_raw(&b, name, nl);
    pk_raw(&b, comp, clen);
    size_t cd = b.len;
    pk_u32(&b, 0x02014b50);
    pk_raw(&b, "\x14\0\x14\0\0\0\x08\0\0\0\x21\0", 12);
    pk_u32(&b, crc);
    pk_u32(&b, (uint32_t)clen);
    pk_u32(&b, (uint32_t)n);
    pk_raw(&b, (uint8_t[]){(uint8_t)nl, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 18);
    pk_raw(&b, name, nl);
    size_t cd_size = b.len - cd;
    pk_u32(&b, 0x06054b50);
    pk_raw(&b, "\0\0\0\0\x01\0\x01\0", 8);
    pk_u32(&b, (uint32_t)cd_size);
    pk_u32(&b, (uint32_t)cd);
    pk_raw(&b, "\0\0", 2);
    free(comp);
    *out_len = b.len;
    return b.p;
}

START_TEST(deflated_member)
{
    pk b = {0};
    pk_memo_stack_global(&b);
    size_t zlen;
    uint8_t *z = deflated_zip("model/notes.bin", b.p, b.len, &zlen);
    ckpt_scan_result *r = scan(z, zlen, NULL, CKPT_OK);
    ck_assert_uint_eq(ckpt_scan_num_pickles(r), 1);
    ck_assert_str_eq(ckpt_scan_pickle_record(r, 0), "model/notes.bin");
    expect(r, "os.system", CKPT_GLOBAL_NEVER_ALLOWED);
    ckpt_scan_result_free(r);
    free(z);
    pk_free(&b);
}
END_TEST

/* NumPy: an object array's .npy data is a pickle after the header; .npz members too. */
START_TEST(npy_object_arrays)
{
    static const char header[] = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }        \n";
    pk b = {0};
    pk_raw(&b, "\x93NUMPY\x01\x00", 8);
    pk_raw(&b, (uint8_t[]){(uint8_t)(sizeof header - 1), 0}, 2);
    pk_raw(&b, header, sizeof header - 1);
    size_t at = b.len;
    pk_memo_stack_global(&b);
    ckpt_scan_result *r = scan(b.p, b.len, NULL, CKPT_OK);
    ck_assert_str_eq(ckpt_scan_format(r), "npy");
    size_t i = expect(r, "os.system", CKPT_GLOBAL_NEVER_ALLOWED);
    ck_assert_uint_eq(ckpt_scan_global_first_offset(r, i), at + 22); /* file offsets */
    ckpt_scan_result_free(r);
    size_t zlen;
    uint8_t *z = deflated_zip("arr_0.npy", b.p, b.len, &zlen);
    r = scan(z, zlen, NULL, CKPT_OK);
    ck_assert_str_eq(ckpt_scan_pickle_record(r, 0), "arr_0.npy");
    expect(r, "os.system", CKPT_GLOBAL_NEVER_ALLOWED);
    ckpt_scan_result_free(r);
    free(z);
    /* numbers only: no pickle, nothing to report, not an error */
    b.len = at;
    pk_raw(&b, "\0\0\0\0\0\0\0\0", 8);
    r = scan(b.p, b.len, NULL, CKPT_OK);
    ck_assert_uint_eq(ckpt_scan_num_pickles(r), 0);
    ckpt_scan_result_free(r);
    pk_free(&b);
}
END_TEST

START_TEST(streams_legacy_and_back_to_back)
{
    /* legacy torch.save: magic, protocol, sys_info, object, storage keys, then raw storage bytes */
    static const uint8_t magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
    pk b = {0};
    pk_raw(&b, magic, sizeof magic);
    pk_proto(&b, 2);
    pk_op(&b, 'M');
    pk_op(&b, 0xe9);
    pk_op(&b, 0x03);
    pk_stop(&b);
    pk_proto(&b, 2);
    pk_empty_dict(&b);
    pk_stop(&b);
    size_t main_at = b.len;
    pk_proto(&b, 2);
    pk_global(&b, "collections", "OrderedDict");
    pk_global(&b, "mypkg", "Net");
    pk_tuple2(&b);
    pk_stop(&b);
    pk_proto(&b, 2);
    pk_empty_list(&b);
    pk_stop(&b);
    pk_raw(&b, "\x08\0\0\0\0\0\0\0\x80\x02\x63os\nsystem\n.", 22); /* storage bytes: never unpickled */
    ckpt_scan_result *r = scan(b.p, b.len, NULL, CKPT_OK);
    ck_assert_str_eq(ckpt_scan_format(r), "legacy");
    ck_assert_uint_eq(ckpt_scan_num_pickles(r), 5);
    size_t i = expect(r, "collections.OrderedDict", CKPT_GLOBAL_ALLOWED);
    ck_assert_uint_eq(ckpt_scan_global_first_offset(r, i), main_at + 2); /* file offsets for streams */
    expect(r, "mypkg.Net", CKPT_GLOBAL_NOT_ALLOWED);
    ck_assert(!has(r, "os.system"));
    ckpt_scan_result_free(r);
    pk_free(&b);
    /* a bare file with two pickles: the second one is read too */
    pk_proto(&b, 2);
    pk_none(&b);
    pk_stop(&b);
    pk_memo_stack_global(&b);
    r = scan(b.p, b.len, NULL, CKPT_OK);
    ck_assert_uint_eq(ckpt_scan_num_pickles(r), 2);
    expect(r, "os.system", CKPT_GLOBAL_NEVER_ALLOWED);
    ckpt_scan_result_free(r);
    pk_free(&b);
    /* Python's STOP ignores what else is on the stack: so does a scan (a load refuses it) */
    pk_proto(&b, 2);
    pk_mark(&b);
    pk_global(&b, "mypkg", "A");
    pk_global(&b, "mypkg", "B");
    pk_stop(&b);
    r = scan(b.p, b.len, NULL, CKPT_OK);
    ck_assert_uint_eq(ckpt_scan_num_globals(r), 2);
    ckpt_scan_result_free(r);
    pk_free(&b);
    /* not a pickle at all */
    r = scan("hello world\n", 12, NULL, CKPT_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(ckpt_scan_error_message(r), "text"));
    ckpt_scan_result_free(r);
}
END_TEST

/* ---- tar (PyTorch 0.1-0.3) ---- */

/* Appends a ustar member (header with checksum, data padded to 512 bytes) to b. */
static void tar_add(pk *b, const char *name, const pk *data)
{
    uint8_t h[512] = {0};
    memcpy(h, name, strlen(name));
    memcpy(h + 100, "0000600", 8);
    memcpy(h + 108, "0000000", 8);
    memcpy(h + 116, "0000000", 8);
    snprintf((char *)h + 124, 12, "%011zo", data->len);
    memcpy(h + 136, "00000000000", 12);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    pk_raw(b, h, 512);
    pk_raw(b, data->p, data->len);
    static const uint8_t zero[512];
    pk_raw(b, zero, (512 - data->len % 512) % 512);
}

static void pk_le64(pk *b, uint64_t v)
{
    for (int i = 0; i < 8; i++) pk_op(b, (uint8_t)(v >> (8 * i)));
}

/* Where a tar checkpoint built by tar_checkpoint hides a payload (os.system called on a str). */
enum tar_payload { IN_NONE, IN_SYS_INFO, IN_STORAGE_HEADER, IN_STORAGE_VIEWS, IN_TENSOR_HEADER, IN_PICKLE,
                   AFTER_SYS_INFO /* a second pickle hidden after sys_info's STOP */ };

static void pk_payload(pk *b)
{
    pk_global(b, "os", "system");
    pk_str(b, "id");
    pk_tuple1(b);
    pk_reduce(b);
}

/*
 * A tar checkpoint of one FloatStorage (key 1, 3 elements) and one tensor (key 2) on it, with the
 * payload at `where`. `storage_class`: the class named by the storage header.
 */
static uint8_t *tar_checkpoint(enum tar_payload where, const char *storage_class, size_t *len)
{
    pk sys = {0}, st = {0}, te = {0}, obj = {0}, out = {0};
    pk_proto(&sys, 2);
    if (where == IN_SYS_INFO) pk_payload(&sys);
    else {
        pk_empty_dict(&sys);
        pk_str(&sys, "little_endian");
        pk_true(&sys);
        pk_setitem(&sys);
    }
    pk_stop(&sys);
    if (where == AFTER_SYS_INFO) {
        pk_proto(&sys, 2);
        pk_payload(&sys);
        pk_stop(&sys);
    }

    pk_proto(&st, 2); pk_int(&st, 1); pk_stop(&st);
    pk_proto(&st, 2);
    pk_int(&st, 1);
    if (where == IN_STORAGE_HEADER) pk_payload(&st);
    else pk_str(&st, "cpu");
    pk_global(&st, "torch", storage_class);
    pk_tuple3(&st);
    pk_stop(&st);
    pk_le64(&st, 3);
    static const float f[3] = {1, 2, 3};
    pk_raw(&st, f, sizeof f);
    pk_proto(&st, 2);
    pk_empty_list(&st);
    if (where == IN_STORAGE_VIEWS) {
        pk_payload(&st);
        pk_append(&st);
    }
    pk_stop(&st);

    pk_proto(&te, 2); pk_int(&te, 1); pk_stop(&te);
    pk_proto(&te, 2);
    pk_int(&te, 2);
    pk_int(&te, 1);
    if (where == IN_TENSOR_HEADER) pk_payload(&te);
    else pk_global(&te, "torch", "FloatTensor");
    pk_tuple3(&te);
    pk_stop(&te);
    pk_le64(&te, 1);                             /* ndim (int32 + 4 bytes torch skips) */
    pk_le64(&te, 3); pk_le64(&te, 1); pk_le64(&te, 0); /* size, stride, offset */

    pk_proto(&obj, 2);
    if (where == IN_PICKLE) pk_payload(&obj);
    else {
        pk_str(&obj, "2");
        pk_op(&obj, 'Q'); /* BINPERSID */
    }
    pk_stop(&obj);

    tar_add(&out, "sys_info", &sys);
    tar_add(&out, "pickle", &obj);
    tar_add(&out, "tensors", &te);
    tar_add(&out, "storages", &st);
    static const uint8_t zero[1024];
    pk_raw(&out, zero, sizeof zero);
    pk_free(&sys); pk_free(&st); pk_free(&te); pk_free(&obj);
    *len = out.len;
    return out.p;
}

START_TEST(tar_members_every_pickle)
{
    size_t len;
    uint8_t *t = tar_checkpoint(IN_NONE, "FloatStorage", &len);
    /* the file itself is a valid checkpoint: the loader reads the tensor the scan steps over */
    ckpt_checkpoint *ck = NULL;
    ck_assert_int_eq(ckpt_load_memory(t, len, NULL, &ck, NULL), CKPT_OK);
    ck_assert_uint_eq(ckpt_tensor_numel(ckpt_value_tensor(ckpt_checkpoint_root(ck))), 3);
    ckpt_checkpoint_free(ck);
    ckpt_scan_result *r = scan(t, len, NULL, CKPT_OK);
    ck_assert_str_eq(ckpt_scan_format(r), "tar");
    /* sys_info; storages: count, header, views; tensors: count, header; pickle */
    static const char *const records[] = {"sys_info", "storages", "storages", "storages", "tensors", "tensors", "pickle"};
    ck_assert_uint_eq(ckpt_scan_num_pickles(r), 7);
    for (size_t i = 0; i < 7; i++) ck_assert_str_eq(ckpt_scan_pickle_record(r, i), records[i]);
    ck_assert_int_eq(ckpt_scan_worst(r), CKPT_GLOBAL_ALLOWED);
    expect(r, "torch.FloatStorage", CKPT_GLOBAL_ALLOWED);
    expect(r, "torch.FloatTensor", CKPT_GLOBAL_ALLOWED);
    ckpt_scan_result_free(r);
    free(t);

    /* a payload in any of the pickles is found, in its member */
    static const struct { enum tar_payload where; const char *record; } cases[] = {
        {IN_SYS_INFO, "sys_info"}, {IN_STORAGE_HEADER, "storages"}, {IN_STORAGE_VIEWS, "storages"},
        {IN_TENSOR_HEADER, "tensors"}, {IN_PICKLE, "pickle"}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        t = tar_checkpoint(cases[c].where, "FloatStorage", &len);
        r = scan(t, len, NULL, CKPT_OK);
        size_t i = expect(r, "os.system", CKPT_GLOBAL_NEVER_ALLOWED);
        ck_assert_str_eq(ckpt_scan_global_first_record(r, i), cases[c].record);
        ck_assert_int_eq(ckpt_scan_worst(r), CKPT_GLOBAL_NEVER_ALLOWED);
        ckpt_scan_result_free(r);
        free(t);
    }
}
END_TEST

START_TEST(tar_broken_layout_scans_the_rest)
{
    /* a storage header naming a class that is no storage type: the bytes after it cannot be stepped
     * over, so the storages member stops there, but tensors and pickle are still scanned */
    size_t len;
    uint8_t *t = tar_checkpoint(IN_PICKLE, "NotAStorage", &len);
    ckpt_scan_result *r = scan(t, len, NULL, CKPT_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(ckpt_scan_error_message(r), "where the next pickle starts"));
    ck_assert_ptr_nonnull(strstr(ckpt_scan_error_message(r), "storages"));
    expect(r, "torch.NotAStorage", CKPT_GLOBAL_NOT_ALLOWED);
    size_t i = expect(r, "os.system", CKPT_GLOBAL_NEVER_ALLOWED);
    ck_assert_str_eq(ckpt_scan_global_first_record(r, i), "pickle");
    expect(r, "torch.FloatTensor", CKPT_GLOBAL_ALLOWED);
    ckpt_scan_result_free(r);
    free(t);
    /* a pickle hidden after sys_info's STOP: the loader refuses the file, the scan says why */
    t = tar_checkpoint(AFTER_SYS_INFO, "FloatStorage", &len);
    tst_assert_load_fails(t, len, CKPT_ERR_PICKLE, "hidden data is refused");
    r = scan(t, len, NULL, CKPT_ERR_PICKLE);
    ck_assert_ptr_nonnull(strstr(ckpt_scan_error_message(r), "sys_info"));
    ck_assert_ptr_nonnull(strstr(ckpt_scan_error_message(r), "hidden data is refused"));
    ckpt_scan_result_free(r);
    free(t);
    /* a lying element count: the storage data would run past the member */
    t = tar_checkpoint(IN_NONE, "FloatStorage", &len);
    uint8_t *count = NULL;
    for (size_t k = 0; k + 8 <= len; k++)
        if (memcmp(t + k, "\x03\0\0\0\0\0\0\0\0\0\x80\x3f", 12) == 0) count = t + k; /* 3, then 1.0f */
    ck_assert_ptr_nonnull(count);
    count[0] = 200;
    r = scan(t, len, NULL, CKPT_ERR_TENSOR);
    ck_assert_ptr_nonnull(strstr(ckpt_scan_error_message(r), "runs past the member"));
    ckpt_scan_result_free(r);
    free(t);
}
END_TEST

START_TEST(torch_fixture_scans_clean)
{
    ckpt_error *err = ckpt_error_new();
    ckpt_scan_result *r = NULL;
    ck_assert_msg(ckpt_scan_file(tst_path("fixtures/data/mlp.pt"), NULL, &r, err) == CKPT_OK, "%s",
                  ckpt_error_message(err));
    ck_assert_uint_eq(ckpt_scan_num_pickles(r), 1); /* storage records are not pickles */
    ck_assert_int_eq(ckpt_scan_worst(r), CKPT_GLOBAL_ALLOWED);
    size_t i = expect(r, "collections.OrderedDict", CKPT_GLOBAL_ALLOWED);
    ck_assert_uint_eq(ckpt_scan_global_first_offset(r, i), 2);
    ck_assert_str_eq(ckpt_scan_global_first_record(r, i), "mlp/data.pkl");
    expect(r, "torch._utils._rebuild_tensor_v2", CKPT_GLOBAL_ALLOWED);
    expect(r, "torch.FloatStorage", CKPT_GLOBAL_ALLOWED);
    /* the globals a load reports are the ones a scan finds */
    ckpt_checkpoint *ck;
    ck_assert_int_eq(ckpt_load_file(tst_path("fixtures/data/mlp.pt"), NULL, &ck, err), CKPT_OK);
    ck_assert_uint_eq(ckpt_checkpoint_num_globals(ck), ckpt_scan_num_globals(r));
    for (size_t k = 0; k < ckpt_checkpoint_num_globals(ck); k++) ck_assert(has(r, ckpt_checkpoint_global(ck, k)));
    ckpt_checkpoint_free(ck);
    ckpt_scan_result_free(r);
    ck_assert_int_eq(ckpt_scan_file("/nonexistent/x.pt", NULL, &r, err), CKPT_ERR_IO);
    ck_assert_ptr_null(r);
    ckpt_error_free(err);
}
END_TEST

/* Every torch-made fixture: clean with the default registry unless it has a .allow sidecar; with the
 * sidecar's registry, clean too. */
START_TEST(fixture_folder)
{
    const char *dir = tst_path("fixtures/data");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "ls %s/*.pt", dir);
    FILE *ls = popen(cmd, "r");
    ck_assert_ptr_nonnull(ls);
    char pt[4096];
    size_t files = 0, flagged = 0;
    while (fgets(pt, sizeof pt, ls)) {
        pt[strcspn(pt, "\n")] = '\0';
        char side[4096];
        snprintf(side, sizeof side, "%.*s.allow", (int)(strlen(pt) - 3), pt);
        size_t len;
        uint8_t *head = tst_read_file(pt, &len);
        bool tar = len >= 262 && memcmp(head + 257, "ustar", 5) == 0;
        free(head);
        if (strstr(pt, "/torchscript.pt")) continue; /* a TorchScript archive names its __torch__ classes */
        FILE *f = fopen(side, "r");
        ckpt_scan_result *r = NULL;
        ckpt_error *err = ckpt_error_new();
        ck_assert_msg(ckpt_scan_file(pt, NULL, &r, err) == CKPT_OK, "%s: %s", pt, ckpt_error_message(err));
        const char *format = ckpt_scan_format(r);
        if (tar) ck_assert_uint_ge(ckpt_scan_num_pickles(r), 4); /* at least one per member */
        else ck_assert_uint_eq(ckpt_scan_num_pickles(r), (strcmp(format, "legacy") == 0 ? 5u : 1u));
        ck_assert_msg((ckpt_scan_worst(r) == CKPT_GLOBAL_ALLOWED) == (f == NULL), "%s", pt);
        ckpt_scan_result_free(r);
        if (f) {
            flagged++;
            ckpt_registry *reg = ckpt_registry_new(0);
            char line[512];
            while (fgets(line, sizeof line, f)) {
                line[strcspn(line, "\n")] = '\0';
                const char *arg = strchr(line, ' ') + 1;
                if (strncmp(line, "allow ", 6) == 0) ck_assert_int_eq(ckpt_registry_add_safe_globals(reg, &arg, 1, NULL), 0);
                else if (strncmp(line, "preset ", 7) == 0) ck_assert_int_eq(ckpt_registry_add_preset(reg, arg, NULL), 0);
                else ck_assert_int_eq(ckpt_registry_enable_handlers(reg, &arg, 1, NULL), 0);
            }
            fclose(f);
            ckpt_load_options *o = ckpt_load_options_new();
            ckpt_load_options_set_registry(o, reg);
            ck_assert_int_eq(ckpt_scan_file(pt, o, &r, err), CKPT_OK);
            ck_assert_msg(ckpt_scan_worst(r) == CKPT_GLOBAL_ALLOWED, "%s with its sidecar", pt);
            ckpt_scan_result_free(r);
            ckpt_load_options_free(o);
            ckpt_registry_free(reg);
        }
        ckpt_error_free(err);
        files++;
    }
    pclose(ls);
    ck_assert_uint_ge(files, 19);
    ck_assert_uint_ge(flagged, 6);
}
END_TEST

/* ---- disassembly ---- */

typedef struct {
    char *text;
    size_t len;
    size_t lines;
} sink;

static void collect(const char *line, void *user)
{
    sink *s = user;
    size_t n = strlen(line);
    s->text = realloc(s->text, s->len + n + 2);
    memcpy(s->text + s->len, line, n);
    s->len += n;
    s->text[s->len++] = '\n';
    s->text[s->len] = '\0';
    s->lines++;
}

START_TEST(disassembly)
{
    sink s = {0};
    ckpt_error *err = ckpt_error_new();
    ck_assert_int_eq(ckpt_disassemble_file(tst_path("fixtures/data/mlp.pt"), NULL, collect, &s, err), CKPT_OK);
    ck_assert_ptr_nonnull(strstr(s.text, "== pickle 0 in mlp/data.pkl at byte 0"));
    ck_assert_ptr_nonnull(strstr(s.text, "       2  GLOBAL            'collections OrderedDict'"));
    ck_assert_ptr_nonnull(strstr(s.text, "-> collections.OrderedDict"));
    ck_assert_ptr_nonnull(strstr(s.text, "-> torch._utils._rebuild_tensor_v2"));
    ck_assert_ptr_nonnull(strstr(s.text, "BINPERSID"));
    free(s.text);
    memset(&s, 0, sizeof s);
    /* hostile: a 5000-byte string, deep MARK nesting, then truncation */
    pk b = {0};
    pk_proto(&b, 2);
    char *big = malloc(5001);
    memset(big, 'A', 5000);
    big[5000] = '\0';
    big[10] = '\n';
    pk_str(&b, big);
    free(big);
    for (int i = 0; i < 3000; i++) pk_mark(&b);
    ck_assert_int_eq(ckpt_disassemble_memory(b.p, b.len, NULL, collect, &s, err), CKPT_ERR_LIMIT);
    ck_assert_ptr_nonnull(strstr(s.text, "...(5000 bytes)"));
    ck_assert_ptr_nonnull(strstr(s.text, "AAAA\\nAAA"));
    ck_assert_ptr_nonnull(strstr(s.text, "error: "));
    ck_assert_ptr_nonnull(strstr(s.text, "CKPT_LIMIT_MAX_DEPTH"));
    for (char *line = s.text; line; line = strchr(line + 1, '\n')) ck_assert_int_lt((int)strcspn(line + 1, "\n"), 400);
    free(s.text);
    memset(&s, 0, sizeof s);
    pk_free(&b);
    pk_memo_stack_global(&b);
    b.len -= 4;
    ck_assert_int_eq(ckpt_disassemble_memory(b.p, b.len, NULL, collect, &s, err), CKPT_ERR_PICKLE);
    ck_assert_ptr_nonnull(strstr(s.text, "STACK_GLOBAL"));
    ck_assert_ptr_nonnull(strstr(s.text, "-> os.system"));
    ck_assert_ptr_nonnull(strstr(s.text, "error: byte"));
    free(s.text);
    pk_free(&b);
    ckpt_error_free(err);
}
END_TEST

/* ---- the commands ---- */

static const char *cli(void)
{
    const char *c = getenv("CKPT_EXE");
    ck_assert_msg(c != NULL, "CKPT_EXE is not set (run through meson test)");
    return c;
}

/* Runs the CLI with stdout to a file; returns the exit status, *out the output (malloc'd). */
static int run_cli(const char *args, char **out)
{
    char cmd[8192], tmp[] = "/tmp/ckpt_scan_outXXXXXX";
    int fd = mkstemp(tmp);
    ck_assert_int_ge(fd, 0);
    close(fd);
    snprintf(cmd, sizeof cmd, "%s %s > %s 2>/dev/null", cli(), args, tmp);
    int st = system(cmd);
    size_t n;
    *out = (char *)tst_read_file(tmp, &n);
    (*out)[n] = '\0';
    unlink(tmp);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

START_TEST(scan_command)
{
    char dir[] = "/tmp/ckpt_scan_dirXXXXXX", path[512], args[2048];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    size_t n;
    uint8_t *mlp = tst_read_file(tst_path("fixtures/data/mlp.pt"), &n);
    snprintf(path, sizeof path, "%s/clean", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/clean/mlp.pt", dir);
    write_file(path, mlp, n);
    snprintf(path, sizeof path, "%s/clean/notes.json", dir); /* not a pickle: skipped in a directory */
    write_file(path, "{\"a\": 1}\n", 9);
    pk b = {0};
    pk_memo_stack_global(&b);
    snprintf(path, sizeof path, "%s/evil", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/evil/memo.pkl", dir);
    write_file(path, b.p, b.len);
    pk_free(&b);
    pk_proto(&b, 2);
    pk_global(&b, "argparse", "Namespace");
    pk_empty_tuple(&b);
    pk_newobj(&b);
    pk_stop(&b);
    snprintf(path, sizeof path, "%s/evil/args.bin", dir);
    write_file(path, b.p, b.len);
    pk_free(&b);
    pk_proto(&b, 2);
    pk_global(&b, "posix", "system");
    pk_str(&b, "x");
    b.len -= 2; /* truncated */
    snprintf(path, sizeof path, "%s/evil/truncated.pt", dir);
    write_file(path, b.p, b.len);
    pk_free(&b);
    snprintf(path, sizeof path, "%s/broken.pt", dir);
    write_file(path, mlp, n / 2); /* a cut zip */
    char *out;
    /* clean folder: 0, one line (the JSON file is skipped) */
    snprintf(args, sizeof args, "scan -r --json %s/clean", dir);
    ck_assert_int_eq(run_cli(args, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"status\":\"allowed\""));
    ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
    free(out);
    /* the whole tree: 1, one JSON line per file, in name order */
    snprintf(args, sizeof args, "scan -r --json %s", dir);
    ck_assert_int_eq(run_cli(args, &out), 1);
    const char *order[] = {"broken.pt", "clean/mlp.pt", "evil/args.bin", "evil/memo.pkl", "evil/truncated.pt"};
    char *line = out;
    for (size_t i = 0; i < 5; i++) {
        char *nl = strchr(line, '\n');
        ck_assert_ptr_nonnull(nl);
        *nl = '\0';
        json_error_t je;
        json_t *doc = json_loads(line, 0, &je);
        ck_assert_msg(doc != NULL, "bad JSON line: %s", line);
        const char *file = json_string_value(json_object_get(doc, "file"));
        ck_assert_msg(strstr(file, order[i]) != NULL, "line %zu is %s", i, file);
        json_t *g = json_object_get(doc, "globals"), *e = json_object_get(doc, "error");
        if (i == 0) ck_assert(json_is_string(e) && json_array_size(g) == 0);
        if (i == 2) ck_assert_str_eq(json_string_value(json_object_get(json_array_get(g, 0), "status")), "not_allowed");
        if (i == 3) {
            ck_assert_str_eq(json_string_value(json_object_get(json_array_get(g, 0), "name")), "os.system");
            ck_assert_str_eq(json_string_value(json_object_get(json_array_get(g, 0), "status")), "never_allowed");
            ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(g, 0), "count")), 2);
        }
        if (i == 4) ck_assert(json_is_string(e) && json_array_size(g) == 1);
        json_decref(doc);
        line = nl + 1;
    }
    ck_assert_str_eq(line, "");
    free(out);
    /* the fixture folder: the fixtures with sidecars reference globals outside the defaults */
    snprintf(args, sizeof args, "scan -r %s", tst_path("fixtures/data"));
    ck_assert_int_eq(run_cli(args, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "numpy.core.multiarray._reconstruct"));
    ck_assert_ptr_null(strstr(out, ".json:")); /* not pickles: skipped */
    free(out);
    /* single files: clean 0, not allowed 1 (--allow makes it 0), parse error 2, refusal outranks the error */
    snprintf(args, sizeof args, "scan %s/evil/args.bin", dir);
    ck_assert_int_eq(run_cli(args, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "not_allowed"));
    free(out);
    snprintf(args, sizeof args, "scan --allow argparse.Namespace %s/evil/args.bin", dir);
    ck_assert_int_eq(run_cli(args, &out), 0);
    free(out);
    snprintf(args, sizeof args, "scan %s/broken.pt", dir);
    ck_assert_int_eq(run_cli(args, &out), 2);
    free(out);
    snprintf(args, sizeof args, "scan %s/evil/truncated.pt", dir);
    ck_assert_int_eq(run_cli(args, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "error"));
    free(out);
    snprintf(args, sizeof args, "scan %s", dir); /* a directory without -r */
    ck_assert_int_eq(run_cli(args, &out), 2);
    free(out);
    snprintf(args, sizeof args, "scan --allow os.system %s/clean/mlp.pt", dir);
    ck_assert_int_eq(run_cli(args, &out), 2);
    free(out);
    /* dis and inspect take the same options */
    snprintf(args, sizeof args, "dis %s/evil/memo.pkl", dir);
    ck_assert_int_eq(run_cli(args, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "STACK_GLOBAL"));
    free(out);
    snprintf(args, sizeof args, "inspect %s/evil/args.bin", dir); /* a bare pickle is not a checkpoint */
    ck_assert_int_eq(run_cli(args, &out), 2);
    free(out);
    const char *rm[] = {"clean/mlp.pt", "clean/notes.json", "evil/memo.pkl", "evil/args.bin", "evil/truncated.pt",
                        "broken.pt", "clean", "evil", ""};
    for (size_t i = 0; i < sizeof rm / sizeof rm[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, rm[i]);
        remove(path);
    }
    free(mlp);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("scan");
    TCase *tc = tcase_create("scan");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, memoised_and_text_operands);
    tcase_add_test(tc, dotted_inst_ext_and_python2_names);
    tcase_add_test(tc, payload_then_truncated_stream);
    tcase_add_test(tc, every_pickle_in_a_zip);
    tcase_add_test(tc, deflated_member);
    tcase_add_test(tc, npy_object_arrays);
    tcase_add_test(tc, streams_legacy_and_back_to_back);
    tcase_add_test(tc, torch_fixture_scans_clean);
    tcase_add_test(tc, tar_members_every_pickle);
    tcase_add_test(tc, tar_broken_layout_scans_the_rest);
    tcase_add_test(tc, fixture_folder);
    tcase_add_test(tc, disassembly);
    tcase_add_test(tc, scan_command);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tst_run(suite()); }
