/*
 * test_pickle.c: the restricted pickle VM through the public API. Each test wraps hand-written pickle
 * bytes in a minimal torch zip (tst_make_checkpoint) and checks the resulting values with the value
 * API, or the error (code, message, byte offset, opcode). Expected values were checked against
 * CPython's pickle.loads where the pickle is valid Python; where libckpt is deliberately stricter than
 * Python the test says so.
 *
 * String literals are split after every \x escape ("\x00" "abc") because C hex escapes swallow all the
 * hex digits that follow.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "pickle_opcodes.h"
#include "support.h"

/* ---- helpers ---- */

static ckpt_checkpoint *load_ok_(const void *p, size_t n, const tst_record *rec, size_t nrec, const char *file, int line)
{
    ckpt_error *err = ckpt_error_new();
    ckpt_checkpoint *ck = NULL;
    ckpt_status s = tst_load_pickle(p, n, rec, nrec, NULL, &ck, err);
    ck_assert_msg(s == CKPT_OK, "%s:%d: load failed: %s: %s", file, line, ckpt_status_name(s), ckpt_error_message(err));
    ck_assert_ptr_nonnull(ck);
    ckpt_error_free(err);
    return ck;
}
#define LOAD_OK(lit) load_ok_(TST_PKL(lit), NULL, 0, __FILE__, __LINE__)

/*
 * Asserts that the load fails with `code`, a message containing `needle` (NULL: any), and, when
 * opcode >= 0, that the error names that opcode at byte `offset` of archive/data.pkl.
 */
static void fails_(const void *p, size_t n, const tst_record *rec, size_t nrec, const ckpt_load_options *opts,
                   ckpt_status code, const char *needle, int opcode, int64_t offset, const char *file, int line)
{
    ckpt_error *err = ckpt_error_new();
    ckpt_checkpoint *ck = NULL;
    ckpt_status s = tst_load_pickle(p, n, rec, nrec, opts, &ck, err);
    ck_assert_msg(s == code, "%s:%d: expected %s, got %s: %s", file, line, ckpt_status_name(code), ckpt_status_name(s),
                  ckpt_error_message(err));
    ck_assert_ptr_null(ck);
    ck_assert_int_eq(ckpt_error_code(err), code);
    if (needle)
        ck_assert_msg(strstr(ckpt_error_message(err), needle) != NULL, "%s:%d: message '%s' lacks '%s'", file, line,
                      ckpt_error_message(err), needle);
    if (opcode >= 0) {
        ck_assert_msg(ckpt_error_opcode(err) == opcode, "%s:%d: error names opcode %d, expected %d (%s)", file, line,
                      ckpt_error_opcode(err), opcode, ckpt_error_message(err));
        ck_assert_msg(ckpt_error_offset(err) == offset, "%s:%d: error at byte %lld, expected %lld (%s)", file, line,
                      (long long)ckpt_error_offset(err), (long long)offset, ckpt_error_message(err));
        ck_assert_msg(ckpt_error_record(err) && strcmp(ckpt_error_record(err), "archive/data.pkl") == 0,
                      "%s:%d: error record '%s'", file, line, ckpt_error_record(err) ? ckpt_error_record(err) : "(null)");
        char opname[64];
        snprintf(opname, sizeof opname, "opcode %s", ck_pickle_opcode_name((uint8_t)opcode));
        ck_assert_msg(strstr(ckpt_error_message(err), opname) != NULL, "%s:%d: message '%s' lacks '%s'", file, line,
                      ckpt_error_message(err), opname);
    }
    ckpt_error_free(err);
}
/* FAILS(pickle literal, status, needle): any place. FAILS_AT(..., opcode, offset): the named opcode and byte. */
#define FAILS(lit, code, needle) fails_(TST_PKL(lit), NULL, 0, NULL, code, needle, -1, -1, __FILE__, __LINE__)
#define FAILS_AT(lit, code, needle, op, off) fails_(TST_PKL(lit), NULL, 0, NULL, code, needle, op, off, __FILE__, __LINE__)

static void expect_int(const ckpt_value *v, int64_t want)
{
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(ckpt_value_kind(v), CKPT_KIND_INT);
    int64_t got = 0;
    ck_assert_int_eq(ckpt_value_int64(v, &got), CKPT_OK);
    ck_assert_int_eq(got, want);
}

static void expect_bigint(const ckpt_value *v, const char *dec)
{
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(ckpt_value_kind(v), CKPT_KIND_INT);
    char *s = ckpt_value_int_to_string(v);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, dec);
    ckpt_free(s);
}

static void expect_bytes(const ckpt_value *v, ckpt_kind kind, const char *want, size_t want_len)
{
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(ckpt_value_kind(v), kind);
    size_t n = 0;
    const char *p = ckpt_value_str(v, &n);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(n, want_len);
    ck_assert(memcmp(p, want, n) == 0);
}
static void expect_str(const ckpt_value *v, const char *s) { expect_bytes(v, CKPT_KIND_STR, s, strlen(s)); }

static void expect_float(const ckpt_value *v, double want)
{
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(ckpt_value_kind(v), CKPT_KIND_FLOAT);
    double got = ckpt_value_float(v);
    if (isnan(want)) ck_assert(isnan(got));
    else ck_assert(memcmp(&got, &want, sizeof got) == 0); /* bit-exact: -0.0 is not 0.0 */
}

static void expect_kind_len(const ckpt_value *v, ckpt_kind kind, size_t len)
{
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(ckpt_value_kind(v), kind);
    ck_assert_uint_eq(ckpt_value_len(v), len);
}

/* Root of a checkpoint that must load; the checkpoint is kept in *ck for freeing. */
#define ROOT(ck) ckpt_checkpoint_root(ck)

/* The JSON document of a checkpoint, parsed. */
static json_t *to_json(const ckpt_checkpoint *ck)
{
    char *text = NULL;
    ck_assert_int_eq(ckpt_checkpoint_to_json(ck, "t", 0, &text, NULL), CKPT_OK);
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    ck_assert_msg(doc != NULL, "JSON does not parse: %s", jerr.text);
    ckpt_free(text);
    return doc;
}

/* ---- float repr in JSON ---- */

/* A pickle holding a list of BINFLOATs (protocol 2, APPENDS in batches). Caller frees. */
static uint8_t *float_list_pickle(const double *v, size_t n, size_t *len)
{
    uint8_t *p = malloc(16 + n * 9 + (n / 500 + 1) * 2);
    size_t o = 0;
    p[o++] = 0x80;
    p[o++] = 2;
    p[o++] = ']';
    for (size_t i = 0; i < n; i++) {
        if (i % 500 == 0) p[o++] = '(';
        p[o++] = 'G';
        uint64_t bits;
        memcpy(&bits, &v[i], 8);
        for (int k = 0; k < 8; k++) p[o++] = (uint8_t)(bits >> (56 - 8 * k));
        if (i % 500 == 499 || i == n - 1) p[o++] = 'e';
    }
    p[o++] = '.';
    *len = o;
    return p;
}

/* Python's repr() of every double in tests/fixtures/float_repr/vectors.txt (gen_float_repr.py). */
START_TEST(float_repr_matches_python)
{
    FILE *f = fopen(tst_path("fixtures/float_repr/vectors.txt"), "r");
    ck_assert_ptr_nonnull(f);
    size_t cap = 2048, n = 0;
    double *vals = malloc(cap * sizeof *vals);
    char (*want)[40] = malloc(cap * sizeof *want);
    char line[128];
    while (fgets(line, sizeof line, f)) {
        unsigned long long bits;
        char text[40];
        ck_assert_int_eq(sscanf(line, "%llx %39s", &bits, text), 2);
        ck_assert_uint_lt(n, cap);
        uint64_t b = bits;
        memcpy(&vals[n], &b, 8);
        snprintf(want[n], sizeof want[n], "%s", text);
        n++;
    }
    fclose(f);
    ck_assert_uint_gt(n, 500);
    size_t len;
    uint8_t *pkl = float_list_pickle(vals, n, &len);
    ckpt_checkpoint *ck = load_ok_(pkl, len, NULL, 0, __FILE__, __LINE__);
    json_t *doc = to_json(ck);
    json_t *values = json_object_get(doc, "values");
    ck_assert_uint_eq(json_array_size(values), n + 1);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(values, i + 1);
        ck_assert_str_eq(json_string_value(json_object_get(e, "type")), "float");
        const char *got = json_string_value(json_object_get(e, "value"));
        ck_assert_msg(got && strcmp(got, want[i]) == 0, "float %zu: libckpt writes '%s', Python's repr is '%s'", i,
                      got ? got : "(null)", want[i]);
    }
    json_decref(doc);
    ckpt_checkpoint_free(ck);
    free(pkl);
    free(vals);
    free(want);
}
END_TEST

/* The documented examples, plus powers of two whose shortest repr has a neighbour digit (2**-24). */
START_TEST(float_repr_examples)
{
    static const struct { double v; const char *repr; } cases[] = {
        {0.1, "0.1"}, {1e16, "1e+16"}, {1e-05, "1e-05"}, {0.0001, "0.0001"}, {100.0, "100.0"}, {-0.0, "-0.0"},
        {0.0, "0.0"}, {1e15, "1000000000000000.0"}, {5e-324, "5e-324"}, {1.7976931348623157e308, "1.7976931348623157e+308"},
        {5.960464477539063e-08, "5.960464477539063e-08"}, /* 2**-24 */
        {5.684341886080802e-14, "5.684341886080802e-14"}, /* 2**-44 */
        {-2.5, "-2.5"}, {123456789012345680.0, "1.2345678901234568e+17"},
    };
    double v[32];
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n; i++) v[i] = cases[i].v;
    v[n] = NAN;
    v[n + 1] = INFINITY;
    v[n + 2] = -INFINITY;
    size_t len;
    uint8_t *pkl = float_list_pickle(v, n + 3, &len);
    ckpt_checkpoint *ck = load_ok_(pkl, len, NULL, 0, __FILE__, __LINE__);
    json_t *doc = to_json(ck);
    json_t *values = json_object_get(doc, "values");
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(values, i + 1), "value")), cases[i].repr);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(values, n + 1), "value")), "nan");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(values, n + 2), "value")), "inf");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(values, n + 3), "value")), "-inf");
    json_decref(doc);
    ckpt_checkpoint_free(ck);
    free(pkl);
}
END_TEST

/* ---- every opcode of protocols 0-5 ---- */

/* ('storage', torch.FloatStorage, '0', 'cpu', 2) + BINPERSID: a storage of two floats (record data/0) */
#define STORAGE_PID                                                                                          \
    "(X\x07\x00\x00\x00" "storage" "ctorch\nFloatStorage\n" "X\x01\x00\x00\x00" "0" "X\x03\x00\x00\x00" "cpu" \
    "K\x02" "tQ"
/* torch._utils._rebuild_tensor_v2(storage, 0, (2,), (1,), False, OrderedDict()) */
#define TENSOR2                                                                                              \
    "ctorch._utils\n_rebuild_tensor_v2\n(" STORAGE_PID "K\x00" "K\x02\x85" "K\x01\x85" "\x89"                  \
    "ccollections\nOrderedDict\n)R" "tR"

static const float tensor_data[2] = {1.5f, -2.0f};
static const tst_record tensor_rec[] = {{"data/0", tensor_data, sizeof tensor_data}};

static void chk_tuple12(const ckpt_value *r)
{
    expect_kind_len(r, CKPT_KIND_TUPLE, 2);
    expect_int(ckpt_value_item(r, 0), 1);
    expect_int(ckpt_value_item(r, 1), 2);
}
static void chk_list12(const ckpt_value *r)
{
    expect_kind_len(r, CKPT_KIND_LIST, 2);
    expect_int(ckpt_value_item(r, 0), 1);
    expect_int(ckpt_value_item(r, 1), 2);
}
static void chk_set12(const ckpt_value *r)
{
    expect_kind_len(r, CKPT_KIND_SET, 2);
    expect_int(ckpt_value_item(r, 0), 1);
    expect_int(ckpt_value_item(r, 1), 2);
}
static void chk_none(const ckpt_value *r) { ck_assert_int_eq(ckpt_value_kind(r), CKPT_KIND_NONE); }
static void chk_1(const ckpt_value *r) { expect_int(r, 1); }
static void chk_5(const ckpt_value *r) { expect_int(r, 5); }
static void chk_7(const ckpt_value *r) { expect_int(r, 7); }
static void chk_42(const ckpt_value *r) { expect_int(r, 42); }
static void chk_m1(const ckpt_value *r) { expect_int(r, -1); }
static void chk_255(const ckpt_value *r) { expect_int(r, 255); }
static void chk_65535(const ckpt_value *r) { expect_int(r, 65535); }
static void chk_half(const ckpt_value *r) { expect_float(r, 0.5); }
static void chk_1p5(const ckpt_value *r) { expect_float(r, 1.5); }
static void chk_true(const ckpt_value *r) { ck_assert_int_eq(ckpt_value_kind(r), CKPT_KIND_BOOL); ck_assert(ckpt_value_bool(r)); }
static void chk_false(const ckpt_value *r) { ck_assert_int_eq(ckpt_value_kind(r), CKPT_KIND_BOOL); ck_assert(!ckpt_value_bool(r)); }
static void chk_big64(const ckpt_value *r) { expect_bigint(r, "18446744073709551616"); }
static void chk_bigm64(const ckpt_value *r) { expect_bigint(r, "-18446744073709551616"); }
static void chk_big20(const ckpt_value *r) { expect_bigint(r, "12345678901234567890"); }
static void chk_ab(const ckpt_value *r) { expect_str(r, "ab"); }
static void chk_abc(const ckpt_value *r) { expect_str(r, "abc"); }
static void chk_hi(const ckpt_value *r) { expect_str(r, "hi"); }
static void chk_bytes_abc(const ckpt_value *r) { expect_bytes(r, CKPT_KIND_BYTES, "abc", 3); }
static void chk_bytes_hi(const ckpt_value *r) { expect_bytes(r, CKPT_KIND_BYTES, "hi", 2); }
static void chk_bytearray_abc(const ckpt_value *r) { expect_bytes(r, CKPT_KIND_BYTEARRAY, "abc", 3); }
static void chk_list1(const ckpt_value *r)
{
    expect_kind_len(r, CKPT_KIND_LIST, 1);
    expect_int(ckpt_value_item(r, 0), 1);
}
static void chk_empty_list(const ckpt_value *r) { expect_kind_len(r, CKPT_KIND_LIST, 0); }
static void chk_empty_tuple(const ckpt_value *r) { expect_kind_len(r, CKPT_KIND_TUPLE, 0); }
static void chk_empty_dict(const ckpt_value *r)
{
    expect_kind_len(r, CKPT_KIND_DICT, 0);
    ck_assert_str_eq(ckpt_value_type_name(r), "dict");
}
static void chk_empty_set(const ckpt_value *r) { expect_kind_len(r, CKPT_KIND_SET, 0); }
static void chk_tuple1(const ckpt_value *r)
{
    expect_kind_len(r, CKPT_KIND_TUPLE, 1);
    expect_int(ckpt_value_item(r, 0), 1);
}
static void chk_tuple123(const ckpt_value *r)
{
    expect_kind_len(r, CKPT_KIND_TUPLE, 3);
    for (int i = 0; i < 3; i++) expect_int(ckpt_value_item(r, (size_t)i), i + 1);
}
static void chk_dup(const ckpt_value *r)
{
    expect_kind_len(r, CKPT_KIND_TUPLE, 2);
    ck_assert_int_eq(ckpt_value_kind(ckpt_value_item(r, 0)), CKPT_KIND_LIST);
    ck_assert_ptr_eq(ckpt_value_item(r, 0), ckpt_value_item(r, 1)); /* DUP pushes the same object */
}
static void chk_dict_a1(const ckpt_value *r)
{
    expect_kind_len(r, CKPT_KIND_DICT, 1);
    expect_int(ckpt_value_dict_get(r, "a"), 1);
}
static void chk_dict_12(const ckpt_value *r)
{
    expect_kind_len(r, CKPT_KIND_DICT, 1);
    expect_int(ckpt_value_dict_key(r, 0), 1);
    expect_int(ckpt_value_dict_value(r, 0), 2);
}
static void chk_dict_1234(const ckpt_value *r)
{
    expect_kind_len(r, CKPT_KIND_DICT, 2);
    expect_int(ckpt_value_dict_key(r, 0), 1);
    expect_int(ckpt_value_dict_value(r, 0), 2);
    expect_int(ckpt_value_dict_key(r, 1), 3);
    expect_int(ckpt_value_dict_value(r, 1), 4);
}
static void chk_odict_attr(const ckpt_value *r)
{
    expect_kind_len(r, CKPT_KIND_DICT, 0);
    ck_assert_str_eq(ckpt_value_type_name(r), "collections.OrderedDict");
    const ckpt_value *attrs = ckpt_value_attrs(r);
    ck_assert_ptr_nonnull(attrs);
    expect_int(ckpt_value_dict_get(attrs, "a"), 1);
}
static void chk_f16(const ckpt_value *r)
{
    ck_assert_int_eq(ckpt_value_kind(r), CKPT_KIND_DTYPE);
    ck_assert_int_eq(ckpt_value_dtype(r), CKPT_DTYPE_FLOAT16);
}
static void chk_f32(const ckpt_value *r)
{
    ck_assert_int_eq(ckpt_value_kind(r), CKPT_KIND_DTYPE);
    ck_assert_int_eq(ckpt_value_dtype(r), CKPT_DTYPE_FLOAT32);
}
static void chk_frozenset12(const ckpt_value *r)
{
    expect_kind_len(r, CKPT_KIND_FROZENSET, 2);
    expect_int(ckpt_value_item(r, 0), 1);
    expect_int(ckpt_value_item(r, 1), 2);
}
static void chk_storage(const ckpt_value *r)
{
    ck_assert_int_eq(ckpt_value_kind(r), CKPT_KIND_STORAGE);
    const ckpt_storage *st = ckpt_value_storage(r);
    ck_assert_str_eq(ckpt_storage_key(st), "0");
    ck_assert_str_eq(ckpt_storage_location(st), "cpu");
    ck_assert_int_eq(ckpt_storage_dtype(st), CKPT_DTYPE_FLOAT32);
    ck_assert_uint_eq(ckpt_storage_numel(st), 2);
    ck_assert(memcmp(ckpt_storage_data(st), tensor_data, sizeof tensor_data) == 0);
}
static void chk_tensor(const ckpt_value *r)
{
    ck_assert_int_eq(ckpt_value_kind(r), CKPT_KIND_TENSOR);
    ck_assert(!ckpt_tensor_is_parameter(ckpt_value_tensor(r)));
    ck_assert_str_eq(ckpt_value_type_name(r), "torch.Tensor");
}
static void chk_parameter(const ckpt_value *r)
{
    ck_assert_int_eq(ckpt_value_kind(r), CKPT_KIND_TENSOR);
    const ckpt_tensor *t = ckpt_value_tensor(r);
    ck_assert(ckpt_tensor_is_parameter(t));
    ck_assert(ckpt_tensor_requires_grad(t));
    ck_assert_int_eq(ckpt_tensor_dtype(t), CKPT_DTYPE_FLOAT32);
    ck_assert_uint_eq(ckpt_tensor_numel(t), 2);
    ck_assert(memcmp(ckpt_tensor_data(t), tensor_data, sizeof tensor_data) == 0);
    ck_assert_str_eq(ckpt_value_type_name(r), "torch.nn.parameter.Parameter");
}

typedef struct {
    uint8_t op;
    const char *pkl;
    size_t len;
    ckpt_status want;
    const char *needle;            /* for failures */
    int64_t err_offset;            /* for failures: byte of the refused opcode */
    void (*check)(const ckpt_value *root);
    bool tensor;                   /* needs the data/0 record */
} op_case;

#define OK(op, lit, fn) {op, lit, sizeof(lit) - 1, CKPT_OK, NULL, -1, fn, false}
#define OKT(op, lit, fn) {op, lit, sizeof(lit) - 1, CKPT_OK, NULL, -1, fn, true}
#define REFUSED(op, lit, code, needle, off) {op, lit, sizeof(lit) - 1, code, needle, off, NULL, false}

static const op_case op_cases[] = {
    /* protocol 0 */
    OK(OP_MARK, "(K\x01" "K\x02" "t.", chk_tuple12),
    OK(OP_STOP, "N.", chk_none),
    OK(OP_POP, "K\x01" "K\x02" "0.", chk_1),
    OK(OP_POP_MARK, "K\x07" "(K\x01" "K\x02" "1.", chk_7),
    OK(OP_DUP, "]2\x86.", chk_dup),
    OK(OP_FLOAT, "F0.5\n.", chk_half),
    OK(OP_INT, "I42\n.", chk_42),
    OK(OP_LONG, "L12345678901234567890L\n.", chk_big20),
    OK(OP_NONE, "N.", chk_none),
    /* a text persistent id is a str, never the ('storage', ...) tuple the zip format needs */
    REFUSED(OP_PERSID, "Pabc\n.", CKPT_ERR_PICKLE, "persistent id must be a tuple", 0),
    OK(OP_REDUCE, "c__builtin__\nset\n((K\x01" "K\x02" "ltR.", chk_set12),
    OK(OP_STRING, "S'ab'\n.", chk_ab),
    OK(OP_UNICODE, "Vab\n.", chk_ab),
    OK(OP_APPEND, "]K\x01" "a.", chk_list1),
    OK(OP_BUILD, "ccollections\nOrderedDict\n)R}X\x01\x00\x00\x00" "aK\x01" "sb.", chk_odict_attr),
    OK(OP_GLOBAL, "ctorch\nfloat16\n.", chk_f16),
    OK(OP_DICT, "(X\x01\x00\x00\x00" "aK\x01" "d.", chk_dict_a1),
    OK(OP_GET, "K\x05" "p0\n0g0\n.", chk_5),
    OK(OP_INST, "((K\x01" "K\x02" "li__builtin__\nset\n.", chk_set12),
    OK(OP_LIST, "(K\x01" "K\x02" "l.", chk_list12),
    OK(OP_OBJ, "(c__builtin__\nset\n(K\x01" "K\x02" "lo.", chk_set12),
    OK(OP_PUT, "K\x05" "p3\n.", chk_5),
    OK(OP_SETITEM, "}K\x01" "K\x02" "s.", chk_dict_12),
    OK(OP_TUPLE, "(K\x01" "t.", chk_tuple1),
    /* protocol 1 */
    OK(OP_BININT, "J\xff\xff\xff\xff.", chk_m1),
    OK(OP_BININT1, "K\xff.", chk_255),
    OK(OP_BININT2, "M\xff\xff.", chk_65535),
    OKT(OP_BINPERSID, "\x80\x02" STORAGE_PID ".", chk_storage),
    OK(OP_BINSTRING, "T\x03\x00\x00\x00" "abc.", chk_abc),
    OK(OP_SHORT_BINSTRING, "U\x03" "abc.", chk_abc),
    OK(OP_BINUNICODE, "X\x02\x00\x00\x00" "hi.", chk_hi),
    OK(OP_EMPTY_DICT, "}.", chk_empty_dict),
    OK(OP_APPENDS, "](K\x01" "K\x02" "e.", chk_list12),
    OK(OP_BINGET, "K\x05" "q\x00" "0h\x00" ".", chk_5),
    OK(OP_LONG_BINGET, "K\x05" "r\x00\x00\x00\x00" "0j\x00\x00\x00\x00" ".", chk_5),
    OK(OP_EMPTY_LIST, "].", chk_empty_list),
    OK(OP_BINPUT, "K\x05" "q\x07" ".", chk_5),
    OK(OP_LONG_BINPUT, "K\x05" "r\x07\x00\x00\x00" ".", chk_5),
    OK(OP_EMPTY_TUPLE, ").", chk_empty_tuple),
    OK(OP_SETITEMS, "}(K\x01" "K\x02" "K\x03" "K\x04" "u.", chk_dict_1234),
    OK(OP_BINFLOAT, "G?\xf8\x00\x00\x00\x00\x00\x00" ".", chk_1p5),
    /* protocol 2 */
    OK(OP_PROTO, "\x80\x05" "N.", chk_none),
    OKT(OP_NEWOBJ, "\x80\x02" "ctorch.nn.parameter\nParameter\n" TENSOR2 "\x88\x86\x81.", chk_parameter),
    REFUSED(OP_EXT1, "\x80\x02\x82\x01.", CKPT_ERR_BLOCKED, "extension code 1 ", 2),
    REFUSED(OP_EXT2, "\x80\x02\x83\x01\x02.", CKPT_ERR_BLOCKED, "extension code 513 ", 2),
    REFUSED(OP_EXT4, "\x80\x02\x84\x01\x00\x00\x01.", CKPT_ERR_BLOCKED, "extension code 16777217 ", 2),
    OK(OP_TUPLE1, "K\x01\x85.", chk_tuple1),
    OK(OP_TUPLE2, "K\x01" "K\x02\x86.", chk_tuple12),
    OK(OP_TUPLE3, "K\x01" "K\x02" "K\x03\x87.", chk_tuple123),
    OK(OP_NEWTRUE, "\x88.", chk_true),
    OK(OP_NEWFALSE, "\x89.", chk_false),
    OK(OP_LONG1, "\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.", chk_big64),
    OK(OP_LONG4, "\x80\x02\x8b\x09\x00\x00\x00" "\x00\x00\x00\x00\x00\x00\x00\x00\xff.", chk_bigm64),
    /* protocol 3 */
    OK(OP_BINBYTES, "\x80\x03" "B\x03\x00\x00\x00" "abc.", chk_bytes_abc),
    OK(OP_SHORT_BINBYTES, "\x80\x03" "C\x03" "abc.", chk_bytes_abc),
    /* protocol 4 */
    OK(OP_SHORT_BINUNICODE, "\x80\x04\x8c\x02" "hi.", chk_hi),
    OK(OP_BINUNICODE8, "\x80\x04\x8d\x02\x00\x00\x00\x00\x00\x00\x00" "hi.", chk_hi),
    OK(OP_BINBYTES8, "\x80\x04\x8e\x02\x00\x00\x00\x00\x00\x00\x00" "hi.", chk_bytes_hi),
    OK(OP_EMPTY_SET, "\x80\x04\x8f.", chk_empty_set),
    OK(OP_ADDITEMS, "\x80\x04\x8f(K\x01" "K\x02\x90.", chk_set12),
    OK(OP_FROZENSET, "\x80\x04(K\x01" "K\x02\x91.", chk_frozenset12),
    OKT(OP_NEWOBJ_EX, "\x80\x04" "ctorch.nn.parameter\nParameter\n" TENSOR2 "\x85}\x92.", chk_parameter),
    OK(OP_STACK_GLOBAL, "\x80\x04\x8c\x05" "torch\x8c\x07" "float32\x93.", chk_f32),
    OK(OP_MEMOIZE, "\x80\x04K\x05\x94" "0h\x00" ".", chk_5),
    OK(OP_FRAME, "\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00" "K\x05" ".", chk_5),
    /* protocol 5 */
    OK(OP_BYTEARRAY8, "\x80\x05\x96\x03\x00\x00\x00\x00\x00\x00\x00" "abc.", chk_bytearray_abc),
    REFUSED(OP_NEXT_BUFFER, "\x80\x05\x97.", CKPT_ERR_UNSUPPORTED, "out-of-band buffers", 2),
    OK(OP_READONLY_BUFFER, "\x80\x05" "C\x03" "abc\x98.", chk_bytes_abc),
};

#define N_OP_CASES (sizeof op_cases / sizeof op_cases[0])

START_TEST(opcode_case)
{
    const op_case *c = &op_cases[_i];
    ck_assert_msg(memchr(c->pkl, c->op, c->len) != NULL, "case %d does not contain opcode %s", _i,
                  ck_pickle_opcode_name(c->op));
    const tst_record *rec = c->tensor ? tensor_rec : NULL;
    size_t nrec = c->tensor ? 1 : 0;
    if (c->want == CKPT_OK) {
        ckpt_checkpoint *ck = load_ok_(c->pkl, c->len, rec, nrec, __FILE__, __LINE__);
        c->check(ROOT(ck));
        ckpt_checkpoint_free(ck);
    } else {
        fails_(c->pkl, c->len, rec, nrec, NULL, c->want, c->needle, c->op, c->err_offset, __FILE__, __LINE__);
    }
}
END_TEST

/* The table above covers every opcode of protocols 0-5 (pickle_opcodes.h), and only those. */
/* value.h: ckpt_value_type_name gives "torch.nn.parameter.Parameter" for Parameters, however built */
START_TEST(parameter_type_name)
{
    ckpt_checkpoint *ck = load_ok_(TST_PKL("\x80\x02" TENSOR2 "."), tensor_rec, 1, __FILE__, __LINE__);
    chk_tensor(ROOT(ck));
    ckpt_checkpoint_free(ck);
    ck = load_ok_(TST_PKL("\x80\x02" "ctorch._utils\n_rebuild_parameter\n" TENSOR2 "\x88" "ccollections\nOrderedDict\n)R\x87R."),
                  tensor_rec, 1, __FILE__, __LINE__);
    chk_parameter(ROOT(ck));
    ckpt_checkpoint_free(ck);
}
END_TEST

START_TEST(every_opcode_is_covered)
{
    size_t n_opcodes = 0;
    for (int b = 0; b < 256; b++) {
        if (ck_pickle_opcode_protocol((uint8_t)b) < 0) continue;
        n_opcodes++;
        bool found = false;
        for (size_t i = 0; i < N_OP_CASES; i++) found |= op_cases[i].op == b;
        ck_assert_msg(found, "opcode %s (0x%02x) has no test case", ck_pickle_opcode_name((uint8_t)b), b);
    }
    ck_assert_uint_eq(n_opcodes, 68); /* Lib/pickle.py, protocols 0-5 */
    ck_assert_uint_eq(N_OP_CASES, n_opcodes);
}
END_TEST

/* Every byte that is not an opcode is refused by name at its offset. */
START_TEST(non_opcodes_refused)
{
    for (int b = 0; b < 256; b++) {
        if (ck_pickle_opcode_protocol((uint8_t)b) >= 0) continue;
        uint8_t pkl[4] = {'N', '0', (uint8_t)b, '.'};
        fails_(pkl, sizeof pkl, NULL, 0, NULL, CKPT_ERR_PICKLE, "invalid opcode", b, 2, __FILE__, __LINE__);
    }
}
END_TEST

/* ---- protocol-0 text opcodes ---- */

START_TEST(text_int)
{
    ckpt_checkpoint *ck;
    ck = LOAD_OK("I00\n.");
    chk_false(ROOT(ck));
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("I01\n.");
    chk_true(ROOT(ck));
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("I0\n.");
    expect_int(ROOT(ck), 0);
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("I-7\n.");
    expect_int(ROOT(ck), -7);
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("I+7\n.");
    expect_int(ROOT(ck), 7);
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("I9223372036854775807\n.");
    expect_int(ROOT(ck), INT64_MAX);
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("I-9223372036854775808\n.");
    expect_int(ROOT(ck), INT64_MIN);
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("I9223372036854775808\n.");
    expect_bigint(ROOT(ck), "9223372036854775808");
    int64_t x;
    ck_assert_int_eq(ckpt_value_int64(ROOT(ck), &x), CKPT_ERR_LIMIT);
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("I-9223372036854775809\n.");
    expect_bigint(ROOT(ck), "-9223372036854775809");
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("I-12345678901234567890123456789012345678901234567890\n.");
    expect_bigint(ROOT(ck), "-12345678901234567890123456789012345678901234567890");
    ckpt_checkpoint_free(ck);
    FAILS_AT("I\n.", CKPT_ERR_PICKLE, "invalid integer", OP_INT, 0);
    FAILS_AT("N0Iabc\n.", CKPT_ERR_PICKLE, "invalid integer", OP_INT, 2);
    FAILS_AT("I1 \n.", CKPT_ERR_PICKLE, "invalid integer", OP_INT, 0);
    /* CPython's C unpickler reads I010 as octal 8, pickle.py refuses it: ambiguous, so refused */
    FAILS_AT("I010\n.", CKPT_ERR_PICKLE, "invalid integer", OP_INT, 0);
    FAILS_AT("I12", CKPT_ERR_PICKLE, "no terminating newline", OP_INT, 0);
}
END_TEST

START_TEST(text_long)
{
    ckpt_checkpoint *ck;
    ck = LOAD_OK("L0L\n.");
    expect_int(ROOT(ck), 0);
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("L-1L\n.");
    expect_int(ROOT(ck), -1);
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("L5\n."); /* Python 3 writes no L suffix */
    expect_int(ROOT(ck), 5);
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("L18446744073709551616L\n.");
    expect_bigint(ROOT(ck), "18446744073709551616");
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("L-18446744073709551616\n.");
    expect_bigint(ROOT(ck), "-18446744073709551616");
    ckpt_checkpoint_free(ck);
    FAILS_AT("LL\n.", CKPT_ERR_PICKLE, "invalid integer", OP_LONG, 0);
    FAILS_AT("L1LL\n.", CKPT_ERR_PICKLE, "invalid integer", OP_LONG, 0);
    FAILS_AT("L0x5\n.", CKPT_ERR_PICKLE, "invalid integer", OP_LONG, 0);
}
END_TEST

START_TEST(text_float)
{
    static const struct { const char *pkl; double v; } ok[] = {
        {"F0.1\n.", 0.1}, {"F-0.0\n.", -0.0}, {"F1e+16\n.", 1e16}, {"F1E5\n.", 1e5}, {"F1e-05\n.", 1e-05},
        {"F100\n.", 100.0}, {"F.5\n.", 0.5}, {"F-2.5\n.", -2.5}, {"Finf\n.", INFINITY}, {"F-inf\n.", -INFINITY},
        {"Fnan\n.", NAN}, {"FInfinity\n.", INFINITY},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ckpt_checkpoint *ck = load_ok_(ok[i].pkl, strlen(ok[i].pkl), NULL, 0, __FILE__, __LINE__);
        expect_float(ROOT(ck), ok[i].v);
        ckpt_checkpoint_free(ck);
    }
    FAILS_AT("F\n.", CKPT_ERR_PICKLE, "invalid float", OP_FLOAT, 0);
    FAILS_AT("F1.2.3\n.", CKPT_ERR_PICKLE, "invalid float", OP_FLOAT, 0);
    FAILS_AT("F0x10\n.", CKPT_ERR_PICKLE, "invalid float", OP_FLOAT, 0);
    FAILS_AT("Fabc\n.", CKPT_ERR_PICKLE, "invalid float", OP_FLOAT, 0);
    FAILS_AT("F1e\n.", CKPT_ERR_PICKLE, "invalid float", OP_FLOAT, 0);
}
END_TEST

START_TEST(text_string)
{
    ckpt_checkpoint *ck;
    ck = LOAD_OK("S'a\\n\\x41\\'b'\n.");
    expect_str(ROOT(ck), "a\nA'b");
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("S'\\101\\q\\\\'\n."); /* octal, an unknown escape kept as written, a backslash */
    expect_str(ROOT(ck), "A\\q\\");
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("S\"x'y\"\n.");
    expect_str(ROOT(ck), "x'y");
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("S'\\t\\0\\x00'\n.");
    expect_bytes(ROOT(ck), CKPT_KIND_STR, "\t\0\0", 3);
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("S'caf\\xc3\\xa9'\n."); /* bytes decoded as UTF-8, as torch.load does */
    expect_str(ROOT(ck), "caf\xc3\xa9");
    ckpt_checkpoint_free(ck);
    FAILS_AT("Sabc\n.", CKPT_ERR_PICKLE, "quoted", OP_STRING, 0);
    FAILS_AT("S'abc\"\n.", CKPT_ERR_PICKLE, "quoted", OP_STRING, 0);
    FAILS_AT("S'\n.", CKPT_ERR_PICKLE, "quoted", OP_STRING, 0);
    FAILS_AT("S'\\x4'\n.", CKPT_ERR_PICKLE, "quoted", OP_STRING, 0);
    FAILS_AT("S'ab\\'\n.", CKPT_ERR_PICKLE, "quoted", OP_STRING, 0);
    FAILS_AT("S'\\xff'\n.", CKPT_ERR_PICKLE, "UTF-8", OP_STRING, 0);
}
END_TEST

START_TEST(text_unicode)
{
    ckpt_checkpoint *ck;
    ck = LOAD_OK("Vcaf\xe9" "\\u20ac\n."); /* raw bytes are latin-1, \u escapes code points */
    expect_str(ROOT(ck), "caf\xc3\xa9\xe2\x82\xac");
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("V\\\\u20ac\n."); /* an even run of backslashes escapes nothing */
    expect_str(ROOT(ck), "\\\\u20ac");
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("V\\\\\\u20ac\n.");
    expect_str(ROOT(ck), "\\\\\xe2\x82\xac");
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("V\\U0001f600\n.");
    expect_str(ROOT(ck), "\xf0\x9f\x98\x80");
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("Va\\b\\\n."); /* backslashes not before u/U are literal */
    expect_str(ROOT(ck), "a\\b\\");
    ckpt_checkpoint_free(ck);
    FAILS_AT("V\\u12\n.", CKPT_ERR_PICKLE, "escape", OP_UNICODE, 0);
    FAILS_AT("V\\u12zz\n.", CKPT_ERR_PICKLE, "escape", OP_UNICODE, 0);
    FAILS_AT("V\\U00110000\n.", CKPT_ERR_PICKLE, "escape", OP_UNICODE, 0);
}
END_TEST

START_TEST(text_get_put)
{
    ckpt_checkpoint *ck = LOAD_OK("(K\x01" "p1\nK\x02" "p2\ng2\ng1\nt.");
    expect_kind_len(ROOT(ck), CKPT_KIND_TUPLE, 4);
    expect_int(ckpt_value_item(ROOT(ck), 0), 1);
    expect_int(ckpt_value_item(ROOT(ck), 1), 2);
    expect_int(ckpt_value_item(ROOT(ck), 2), 2);
    expect_int(ckpt_value_item(ROOT(ck), 3), 1);
    ckpt_checkpoint_free(ck);
    FAILS_AT("K\x01" "p1\ng9\n.", CKPT_ERR_PICKLE, "memo entry 9 was never set", OP_GET, 5);
    FAILS_AT("K\x01" "g-1\n.", CKPT_ERR_PICKLE, "invalid memo index", OP_GET, 2);
    FAILS_AT("K\x01" "gx\n.", CKPT_ERR_PICKLE, "invalid memo index", OP_GET, 2);
    FAILS_AT("p1\nN.", CKPT_ERR_PICKLE, "stack underflow", OP_PUT, 0);
    FAILS_AT("K\x01" "h\x00" ".", CKPT_ERR_PICKLE, "memo entry 0 was never set", OP_BINGET, 2);
    FAILS_AT("K\x01" "j\x00\x01\x00\x00" ".", CKPT_ERR_PICKLE, "memo entry 256 was never set", OP_LONG_BINGET, 2);
}
END_TEST

/* ---- memo ---- */

/* A memoised list reached twice is one node: a mutation through one reference shows in the other. */
START_TEST(memo_is_shared)
{
    ckpt_checkpoint *ck = LOAD_OK("(]q\x00" "h\x00" "K\x01" "at.");
    const ckpt_value *r = ROOT(ck);
    expect_kind_len(r, CKPT_KIND_TUPLE, 2);
    const ckpt_value *a = ckpt_value_item(r, 0), *b = ckpt_value_item(r, 1);
    ck_assert_ptr_eq(a, b);
    expect_kind_len(a, CKPT_KIND_LIST, 1);
    /* the shared list is listed once in the JSON walk (at its first path) */
    json_t *doc = to_json(ck);
    json_t *values = json_object_get(doc, "values");
    ck_assert_uint_eq(json_array_size(values), 3);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(values, 1), "key")), "0");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(values, 2), "key")), "0.0");
    json_decref(doc);
    ckpt_checkpoint_free(ck);

    /* a memoised dict used at three places in a protocol-2 state dict */
    ck = LOAD_OK("\x80\x02}q\x00(X\x01\x00\x00\x00" "ah\x00X\x01\x00\x00\x00" "bh\x00X\x01\x00\x00\x00" "c]q\x01h\x01\x86u.");
    r = ROOT(ck);
    ck_assert_ptr_eq(ckpt_value_dict_get(r, "a"), r); /* a self-reference, not a copy */
    ck_assert_ptr_eq(ckpt_value_dict_get(r, "b"), r);
    const ckpt_value *c = ckpt_value_dict_get(r, "c");
    ck_assert_ptr_eq(ckpt_value_item(c, 0), ckpt_value_item(c, 1));
    ckpt_checkpoint_free(ck);
}
END_TEST

/* MEMOIZE stores at the memo's current entry count (Python: len(memo)), whatever indices PUT used. */
START_TEST(memoize_numbering)
{
    ckpt_checkpoint *ck = LOAD_OK("\x80\x04K\x0a\x94" "0K\x0b\x94" "0K\x0c\x94" "0(h\x02" "h\x00" "h\x01" "t.");
    expect_kind_len(ROOT(ck), CKPT_KIND_TUPLE, 3);
    expect_int(ckpt_value_item(ROOT(ck), 0), 12);
    expect_int(ckpt_value_item(ROOT(ck), 1), 10);
    expect_int(ckpt_value_item(ROOT(ck), 2), 11);
    ckpt_checkpoint_free(ck);
    /* BINPUT 9 makes one entry: MEMOIZE then uses index 1 */
    ck = LOAD_OK("\x80\x04K\x05" "q\x09\x94" "0h\x01" "h\x09\x86.");
    expect_kind_len(ROOT(ck), CKPT_KIND_TUPLE, 2);
    expect_int(ckpt_value_item(ROOT(ck), 0), 5);
    expect_int(ckpt_value_item(ROOT(ck), 1), 5);
    ckpt_checkpoint_free(ck);
    /* overwriting index 0 does not add an entry: MEMOIZE uses 1 */
    ck = LOAD_OK("\x80\x04K\x05" "q\x00" "K\x06" "q\x00\x94" "00h\x01" ".");
    expect_int(ROOT(ck), 6);
    ckpt_checkpoint_free(ck);
    FAILS_AT("\x80\x04K\x05\x94" "0h\x01" ".", CKPT_ERR_PICKLE, "memo entry 1 was never set", OP_BINGET, 6);
    FAILS_AT("\x80\x04\x94.", CKPT_ERR_PICKLE, "stack underflow", OP_MEMOIZE, 2);
}
END_TEST

/* ---- frames (as Lib/pickle.py's _Unframer) ---- */

START_TEST(frames)
{
    /* two frames back to back, then opcodes outside any frame */
    ckpt_checkpoint *ck = LOAD_OK("\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00" "K\x05"
                                  "\x95\x02\x00\x00\x00\x00\x00\x00\x00" "K\x06\x86.");
    expect_kind_len(ROOT(ck), CKPT_KIND_TUPLE, 2);
    expect_int(ckpt_value_item(ROOT(ck), 1), 6);
    ckpt_checkpoint_free(ck);
    /* a FRAME that is the last byte of the previous frame: its size is read after that frame */
    ck = LOAD_OK("\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00" "K\x01\x95" "\x02\x00\x00\x00\x00\x00\x00\x00" "K\x02\x86.");
    chk_tuple12(ROOT(ck));
    ckpt_checkpoint_free(ck);
    /* an argument may not straddle the end of a frame: a length field, a payload, a text line */
    FAILS_AT("\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00" "X\x03\x00\x00\x00" "abc.", CKPT_ERR_PICKLE,
             "past the end of the current frame", OP_BINUNICODE, 11);
    FAILS_AT("\x80\x04\x95\x06\x00\x00\x00\x00\x00\x00\x00" "X\x03\x00\x00\x00" "abc.", CKPT_ERR_PICKLE,
             "in the current frame", OP_BINUNICODE, 11);
    FAILS_AT("\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00" "I12\n.", CKPT_ERR_PICKLE, "end of the current frame",
             OP_INT, 11);
    FAILS_AT("\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00" "K\x01\x95" "\x02\x00\x00\x00\x00\x00\x00\x00" "K\x02\x86.",
             CKPT_ERR_PICKLE, "past the end of the current frame", OP_FRAME, 13);
    /* a FRAME inside a frame that still has bytes after the new frame's size field */
    FAILS_AT("\x80\x04\x95\x0d\x00\x00\x00\x00\x00\x00\x00" "K\x01\x95" "\x01\x00\x00\x00\x00\x00\x00\x00" "K\x02\x86.",
             CKPT_ERR_PICKLE, "FRAME inside an unfinished frame", OP_FRAME, 13);
    /* a frame longer than the rest of the pickle */
    FAILS_AT("\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00" "N.", CKPT_ERR_PICKLE, "frame of 255 bytes", OP_FRAME, 2);
    FAILS_AT("\x80\x04\x95\x00\x00\x00", CKPT_ERR_PICKLE, "truncated", OP_FRAME, 2);
}
END_TEST

/* Lib/pickle.py accepts a FRAME whose size field ends its enclosing frame exactly (the outer frame is
 * then used up); only bytes left over after the size field make it "a frame inside a frame". */
START_TEST(frame_ending_with_next_frame_header)
{
    ckpt_checkpoint *ck = LOAD_OK("\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00" "K\x01\x95"
                                  "\x03\x00\x00\x00\x00\x00\x00\x00" "K\x02\x86.");
    chk_tuple12(ROOT(ck));
    ckpt_checkpoint_free(ck);
}
END_TEST

/* ---- stack, MARK fence, STOP ---- */

START_TEST(pop_mark_dup_semantics)
{
    ckpt_checkpoint *ck = LOAD_OK("K\x01" "(0."); /* POP right after MARK discards the MARK (as CPython) */
    expect_int(ROOT(ck), 1);
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("(K\x01" "1K\x02" "."); /* POP_MARK drops the MARK and what follows it */
    expect_int(ROOT(ck), 2);
    ckpt_checkpoint_free(ck);
    FAILS_AT("0.", CKPT_ERR_PICKLE, "stack underflow", OP_POP, 0);
    FAILS_AT("K\x01" "(2.", CKPT_ERR_PICKLE, "behind a MARK", OP_DUP, 3);
    FAILS_AT("2.", CKPT_ERR_PICKLE, "stack is empty", OP_DUP, 0);
    FAILS_AT("K\x01" "(K\x02\x86.", CKPT_ERR_PICKLE, "stack underflow", OP_TUPLE2, 5);
    FAILS_AT("K\x01" "(\x85.", CKPT_ERR_PICKLE, "stack underflow", OP_TUPLE1, 3);
    FAILS_AT("K\x01" "1.", CKPT_ERR_PICKLE, "no MARK", OP_POP_MARK, 2);
    FAILS_AT("K\x01" "t.", CKPT_ERR_PICKLE, "no MARK", OP_TUPLE, 2);
    FAILS_AT("K\x01" "l.", CKPT_ERR_PICKLE, "no MARK", OP_LIST, 2);
    FAILS_AT("K\x01" "d.", CKPT_ERR_PICKLE, "no MARK", OP_DICT, 2);
    FAILS_AT("](K\x01" "a.", CKPT_ERR_PICKLE, "behind a MARK", OP_APPEND, 4);
    FAILS_AT("}(K\x01" "K\x02" "s.", CKPT_ERR_PICKLE, "behind a MARK", OP_SETITEM, 6);
    FAILS_AT("(K\x01" "e.", CKPT_ERR_PICKLE, "no list below its MARK", OP_APPENDS, 3);
    FAILS_AT("(K\x01" "K\x02" "u.", CKPT_ERR_PICKLE, "no dict below its MARK", OP_SETITEMS, 5);
    FAILS_AT("K\x01" "(0" "0.", CKPT_ERR_PICKLE, "empty stack", OP_STOP, 5);
    FAILS_AT("c__builtin__\nset\no.", CKPT_ERR_PICKLE, "no MARK", OP_OBJ, 17);
    FAILS_AT("(c__builtin__\nset\n(o.", CKPT_ERR_PICKLE, "OBJ with no class", OP_OBJ, 19);
    FAILS_AT("(o.", CKPT_ERR_PICKLE, "OBJ with no class", OP_OBJ, 1);
    FAILS_AT("K\x01" "b.", CKPT_ERR_PICKLE, "stack underflow", OP_BUILD, 2);
    FAILS_AT("K\x01" "R.", CKPT_ERR_PICKLE, "stack underflow", OP_REDUCE, 2);
}
END_TEST

START_TEST(stop_rules)
{
    FAILS_AT("K\x01" "K\x02" ".", CKPT_ERR_PICKLE, "2 values on the stack", OP_STOP, 4);
    FAILS_AT("(K\x01" ".", CKPT_ERR_PICKLE, "MARK(s) still open", OP_STOP, 3);
    FAILS_AT(".", CKPT_ERR_PICKLE, "empty stack", OP_STOP, 0);
    FAILS("", CKPT_ERR_PICKLE, "without a STOP");
    FAILS("N", CKPT_ERR_PICKLE, "without a STOP");
    /* nothing may follow STOP in data.pkl (a second pickle would be hidden data) */
    ckpt_error *err = ckpt_error_new();
    ck_assert_int_eq(tst_load_pickle(TST_PKL("N.N."), NULL, 0, NULL, NULL, err), CKPT_ERR_PICKLE);
    ck_assert_ptr_nonnull(strstr(ckpt_error_message(err), "2 bytes after the pickle's STOP"));
    ck_assert_int_eq(ckpt_error_offset(err), 2);
    ck_assert_str_eq(ckpt_error_record(err), "archive/data.pkl");
    ck_assert_int_eq(tst_load_pickle(TST_PKL("N.\n"), NULL, 0, NULL, NULL, err), CKPT_ERR_PICKLE);
    ck_assert_ptr_nonnull(strstr(ckpt_error_message(err), "1 bytes after the pickle's STOP"));
    ckpt_error_free(err);
}
END_TEST

/* ---- dicts and sets: Python semantics ---- */

START_TEST(dict_duplicate_keys_replace_in_place)
{
    const char *want_keys[] = {"a", "b"};
    ckpt_checkpoint *ck = LOAD_OK("}(X\x01\x00\x00\x00" "aK\x01" "X\x01\x00\x00\x00" "bK\x02" "X\x01\x00\x00\x00" "aK\x03" "u.");
    const ckpt_value *r = ROOT(ck);
    expect_kind_len(r, CKPT_KIND_DICT, 2);
    for (size_t i = 0; i < 2; i++) expect_str(ckpt_value_dict_key(r, i), want_keys[i]);
    expect_int(ckpt_value_dict_value(r, 0), 3);
    expect_int(ckpt_value_dict_value(r, 1), 2);
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("(X\x01\x00\x00\x00" "aK\x01" "X\x01\x00\x00\x00" "bK\x02" "X\x01\x00\x00\x00" "aK\x03" "d.");
    r = ROOT(ck);
    expect_kind_len(r, CKPT_KIND_DICT, 2);
    expect_int(ckpt_value_dict_get(r, "a"), 3);
    expect_str(ckpt_value_dict_key(r, 1), "b");
    ckpt_checkpoint_free(ck);

    /* the same with enough keys for the hash index: 40 keys, then each again with a new value */
    uint8_t pkl[1024];
    size_t o = 0;
    pkl[o++] = '}';
    pkl[o++] = '(';
    for (int round = 0; round < 2; round++)
        for (int k = 0; k < 40; k++) {
            pkl[o++] = 'K';
            pkl[o++] = (uint8_t)k;
            pkl[o++] = 'K';
            pkl[o++] = (uint8_t)(k + 100 * round);
        }
    pkl[o++] = 'u';
    pkl[o++] = '.';
    ck = load_ok_(pkl, o, NULL, 0, __FILE__, __LINE__);
    r = ROOT(ck);
    expect_kind_len(r, CKPT_KIND_DICT, 40);
    for (int k = 0; k < 40; k++) {
        expect_int(ckpt_value_dict_key(r, (size_t)k), k);
        expect_int(ckpt_value_dict_value(r, (size_t)k), k + 100);
    }
    ckpt_checkpoint_free(ck);
}
END_TEST

START_TEST(dict_numeric_keys_are_one)
{
    /* {1: 'one', 1.0: 'flo', True: 'true'} is {1: 'true'}: the first key object stays */
    ckpt_checkpoint *ck = LOAD_OK("}(K\x01" "X\x03\x00\x00\x00" "oneG?\xf0\x00\x00\x00\x00\x00\x00" "X\x03\x00\x00\x00"
                                  "flo\x88X\x04\x00\x00\x00" "trueu.");
    const ckpt_value *r = ROOT(ck);
    expect_kind_len(r, CKPT_KIND_DICT, 1);
    expect_int(ckpt_value_dict_key(r, 0), 1);
    expect_str(ckpt_value_dict_value(r, 0), "true");
    ckpt_checkpoint_free(ck);
    /* the set {1, 1.0, True} has one item */
    ck = LOAD_OK("\x80\x04\x8f(K\x01" "G?\xf0\x00\x00\x00\x00\x00\x00\x88\x90.");
    expect_kind_len(ROOT(ck), CKPT_KIND_SET, 1);
    expect_int(ckpt_value_item(ROOT(ck), 0), 1);
    ckpt_checkpoint_free(ck);
    /* 0 and -0.0 are one key */
    ck = LOAD_OK("}(K\x00" "K\x01" "G\x80\x00\x00\x00\x00\x00\x00\x00" "K\x02" "u.");
    expect_kind_len(ROOT(ck), CKPT_KIND_DICT, 1);
    expect_int(ckpt_value_dict_value(ROOT(ck), 0), 2);
    ckpt_checkpoint_free(ck);
    /* 2**64 as an int and as a float are one key */
    ck = LOAD_OK("}(\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01" "K\x01" "G\x43\xf0\x00\x00\x00\x00\x00\x00" "K\x02" "u.");
    expect_kind_len(ROOT(ck), CKPT_KIND_DICT, 1);
    expect_bigint(ckpt_value_dict_key(ROOT(ck), 0), "18446744073709551616");
    expect_int(ckpt_value_dict_value(ROOT(ck), 0), 2);
    ckpt_checkpoint_free(ck);
    /* 2**64 + 1 is not 2.0**64 */
    ck = LOAD_OK("}(\x8a\x09\x01\x00\x00\x00\x00\x00\x00\x00\x01" "K\x01" "G\x43\xf0\x00\x00\x00\x00\x00\x00" "K\x02" "u.");
    expect_kind_len(ROOT(ck), CKPT_KIND_DICT, 2);
    ckpt_checkpoint_free(ck);
    /* two NaN objects are two keys; one memoised NaN object is one key (Python compares identity first) */
    ck = LOAD_OK("}(G\x7f\xf8\x00\x00\x00\x00\x00\x00" "K\x01" "G\x7f\xf8\x00\x00\x00\x00\x00\x00" "K\x02" "u.");
    expect_kind_len(ROOT(ck), CKPT_KIND_DICT, 2);
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("}(G\x7f\xf8\x00\x00\x00\x00\x00\x00" "q\x00" "K\x01" "h\x00" "K\x02" "u.");
    expect_kind_len(ROOT(ck), CKPT_KIND_DICT, 1);
    expect_int(ckpt_value_dict_value(ROOT(ck), 0), 2);
    ckpt_checkpoint_free(ck);
    /* str 'a' and bytes b'a' differ; equal tuples are one key */
    ck = LOAD_OK("\x80\x03}(X\x01\x00\x00\x00" "aK\x01" "C\x01" "aK\x02" "u.");
    expect_kind_len(ROOT(ck), CKPT_KIND_DICT, 2);
    ckpt_checkpoint_free(ck);
    ck = LOAD_OK("}((K\x01" "K\x02" "tK\x01" "(K\x01" "K\x02" "tK\x02" "u.");
    expect_kind_len(ROOT(ck), CKPT_KIND_DICT, 1);
    expect_int(ckpt_value_dict_value(ROOT(ck), 0), 2);
    ckpt_checkpoint_free(ck);
}
END_TEST

START_TEST(unhashable_keys_refused)
{
    FAILS_AT("}]K\x01" "s.", CKPT_ERR_PICKLE, "unhashable type 'list'", OP_SETITEM, 4);
    FAILS_AT("}}K\x01" "s.", CKPT_ERR_PICKLE, "unhashable type 'dict'", OP_SETITEM, 4);
    FAILS_AT("\x80\x04}\x8f" "K\x01" "s.", CKPT_ERR_PICKLE, "unhashable type 'set'", OP_SETITEM, 6);
    FAILS_AT("\x80\x05}\x96\x00\x00\x00\x00\x00\x00\x00\x00" "K\x01" "s.", CKPT_ERR_PICKLE, "unhashable type 'bytearray'",
             OP_SETITEM, 14);
    FAILS_AT("}]\x85K\x01" "s.", CKPT_ERR_PICKLE, "unhashable", OP_SETITEM, 5);
    FAILS_AT("(]K\x01" "d.", CKPT_ERR_PICKLE, "unhashable", OP_DICT, 4);
    FAILS_AT("}(]K\x01" "u.", CKPT_ERR_PICKLE, "unhashable", OP_SETITEMS, 5);
    FAILS_AT("\x80\x04\x8f(]\x90.", CKPT_ERR_PICKLE, "unhashable", OP_ADDITEMS, 5);
    FAILS_AT("\x80\x04(]\x91.", CKPT_ERR_PICKLE, "unhashable", OP_FROZENSET, 4);
    FAILS_AT("c__builtin__\nset\n]\x85\x85R.", CKPT_ERR_PICKLE, "unhashable", OP_REDUCE, 20);
}
END_TEST

/*
 * Equal keys that are distinct nodes are compared structurally, like Python does. Frozensets nested
 * n deep, each level holding two items that are compared again (P_i = {P_i-1, Q_i-1}, Q_i = {P_i-1,
 * Q_i-1, 0}, and an equal copy built from other nodes) make that comparison cost 2**n: a 3 KB pickle
 * (n = 60) used as two dict keys must be refused by a work limit, not hang the load. Tuples of shared
 * sub-tuples ((t, t) nested) the same.
 */
static size_t put_memo(uint8_t *p, size_t o, uint32_t i, bool pop)
{
    p[o++] = 'r';
    for (int k = 0; k < 4; k++) p[o++] = (uint8_t)(i >> (8 * k));
    if (pop) p[o++] = '0';
    return o;
}
static size_t get_memo(uint8_t *p, size_t o, uint32_t i)
{
    p[o++] = 'j';
    for (int k = 0; k < 4; k++) p[o++] = (uint8_t)(i >> (8 * k));
    return o;
}

static size_t nested_frozensets(uint8_t *p, uint32_t n)
{
    size_t o = 0;
    p[o++] = 0x80;
    p[o++] = 4;
    for (uint32_t c = 0; c < 4; c++) { /* P0 = {1}, Q0 = {2}, P0' = {1}, Q0' = {2} */
        p[o++] = '(';
        p[o++] = 'K';
        p[o++] = (uint8_t)(c % 2 + 1);
        p[o++] = 0x91;
        o = put_memo(p, o, c, true);
    }
    for (uint32_t i = 1; i <= n; i++) {
        uint32_t b = 4 * (i - 1);
        for (uint32_t c = 0; c < 4; c++) {
            uint32_t src = b + (c >= 2 ? 2 : 0);
            p[o++] = '(';
            o = get_memo(p, o, src);
            o = get_memo(p, o, src + 1);
            if (c % 2) {
                p[o++] = 'K';
                p[o++] = 0;
            }
            p[o++] = 0x91;
            o = put_memo(p, o, 4 * i + c, true);
        }
    }
    p[o++] = '}';
    p[o++] = '(';
    o = get_memo(p, o, 4 * n);
    p[o++] = 'K';
    p[o++] = 1;
    o = get_memo(p, o, 4 * n + 2);
    p[o++] = 'K';
    p[o++] = 2;
    p[o++] = 'u';
    p[o++] = '.';
    return o;
}

/* t_i = (t_i-1, t_i-1) and a copy u_i = (u_i-1, u_i-1), as two keys */
static size_t nested_tuples(uint8_t *p, uint32_t n)
{
    size_t o = 0;
    p[o++] = 0x80;
    p[o++] = 2;
    p[o++] = 'K';
    p[o++] = 1;
    p[o++] = 0x85;
    o = put_memo(p, o, 0, true);
    p[o++] = 'K';
    p[o++] = 1;
    p[o++] = 0x85;
    o = put_memo(p, o, 1, true);
    for (uint32_t i = 1; i <= n; i++)
        for (uint32_t c = 0; c < 2; c++) {
            o = get_memo(p, o, 2 * (i - 1) + c);
            o = get_memo(p, o, 2 * (i - 1) + c);
            p[o++] = 0x86;
            o = put_memo(p, o, 2 * i + c, true);
        }
    p[o++] = '}';
    p[o++] = '(';
    o = get_memo(p, o, 2 * n);
    p[o++] = 'K';
    p[o++] = 1;
    o = get_memo(p, o, 2 * n + 1);
    p[o++] = 'K';
    p[o++] = 2;
    p[o++] = 'u';
    p[o++] = '.';
    return o;
}

START_TEST(key_comparison_work_is_bounded)
{
    uint8_t *p = malloc(64 * 1024);
    /* small nests compare fully: the two keys are equal, so the dict has one entry */
    size_t n = nested_frozensets(p, 8);
    ckpt_checkpoint *ck = load_ok_(p, n, NULL, 0, __FILE__, __LINE__);
    expect_kind_len(ROOT(ck), CKPT_KIND_DICT, 1);
    expect_int(ckpt_value_dict_value(ROOT(ck), 0), 2);
    ckpt_checkpoint_free(ck);
    n = nested_tuples(p, 8);
    ck = load_ok_(p, n, NULL, 0, __FILE__, __LINE__);
    expect_kind_len(ROOT(ck), CKPT_KIND_DICT, 1);
    ckpt_checkpoint_free(ck);
    /* deep ones are refused by the work limit, quickly */
    n = nested_frozensets(p, 60);
    fails_(p, n, NULL, 0, NULL, CKPT_ERR_LIMIT, "takes too long", -1, -1, __FILE__, __LINE__);
    n = nested_tuples(p, 60);
    fails_(p, n, NULL, 0, NULL, CKPT_ERR_LIMIT, "takes too long", -1, -1, __FILE__, __LINE__);
    free(p);
}
END_TEST

/* ---- BUILD, APPEND(S), SETITEM(S), ADDITEMS target checks ---- */

START_TEST(build_rules)
{
    ckpt_checkpoint *ck = LOAD_OK("ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00" "kK\x01" "u}X\x01\x00\x00\x00" "aK\x02" "sb.");
    const ckpt_value *r = ROOT(ck);
    expect_kind_len(r, CKPT_KIND_DICT, 1); /* __dict__ is not an entry */
    expect_int(ckpt_value_dict_get(r, "k"), 1);
    ck_assert_ptr_null(ckpt_value_dict_get(r, "a"));
    expect_int(ckpt_value_dict_get(ckpt_value_attrs(r), "a"), 2);
    json_t *doc = to_json(ck);
    json_t *values = json_object_get(doc, "values");
    ck_assert_uint_eq(json_array_size(values), 4);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(values, 2), "key")), "__dict__");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(values, 3), "key")), "__dict__.a");
    json_decref(doc);
    ckpt_checkpoint_free(ck);
    /* (state, slotstate) pairs: both parts become attributes */
    ck = LOAD_OK("ccollections\nOrderedDict\n)RN}X\x01\x00\x00\x00" "aK\x01" "s\x86" "b.");
    expect_int(ckpt_value_dict_get(ckpt_value_attrs(ROOT(ck)), "a"), 1);
    ckpt_checkpoint_free(ck);
    /* BUILD on values without a __dict__ is refused (weights_only: only Tensor/Parameter/OrderedDict) */
    FAILS_AT("]}b.", CKPT_ERR_PICKLE, "BUILD on a list", OP_BUILD, 2);
    FAILS_AT("}}b.", CKPT_ERR_PICKLE, "BUILD on a dict", OP_BUILD, 2);
    FAILS_AT(")}b.", CKPT_ERR_PICKLE, "BUILD on a tuple", OP_BUILD, 2);
    FAILS_AT("K\x01" "}b.", CKPT_ERR_PICKLE, "BUILD on a int", OP_BUILD, 3);
    fails_(TST_PKL("\x80\x02" TENSOR2 "}b."), tensor_rec, 1, NULL, CKPT_ERR_PICKLE, "BUILD on a torch.Tensor", OP_BUILD,
           (int64_t)sizeof("\x80\x02" TENSOR2 "}") - 1, __FILE__, __LINE__);
    FAILS_AT("ccollections\nOrderedDict\n)RK\x01" "b.", CKPT_ERR_PICKLE, "BUILD state must be a dict", OP_BUILD, 29);
    FAILS_AT("ccollections\nOrderedDict\n)R}K\x01" "K\x02" "sb.", CKPT_ERR_PICKLE, "attribute names must be str", OP_BUILD, 33);
}
END_TEST

START_TEST(container_mutation_type_checks)
{
    /* SETITEM on a tuple or a tensor would be type confusion (CVE-2026-24747 class) */
    FAILS_AT(")K\x01" "K\x02" "s.", CKPT_ERR_PICKLE, "SETITEM on a tuple", OP_SETITEM, 5);
    size_t tlen = sizeof("\x80\x02" TENSOR2) - 1;
    fails_(TST_PKL("\x80\x02" TENSOR2 "K\x01" "K\x02" "s."), tensor_rec, 1, NULL, CKPT_ERR_PICKLE, "SETITEM on a torch.Tensor",
           OP_SETITEM, (int64_t)tlen + 4, __FILE__, __LINE__);
    fails_(TST_PKL("\x80\x02" TENSOR2 "(K\x01" "K\x02" "u."), tensor_rec, 1, NULL, CKPT_ERR_PICKLE,
           "SETITEMS on a torch.Tensor", OP_SETITEMS, (int64_t)tlen + 5, __FILE__, __LINE__);
    fails_(TST_PKL("\x80\x02" TENSOR2 "K\x01" "a."), tensor_rec, 1, NULL, CKPT_ERR_PICKLE, "APPEND on a torch.Tensor",
           OP_APPEND, (int64_t)tlen + 2, __FILE__, __LINE__);
    size_t slen = sizeof("\x80\x02" STORAGE_PID) - 1;
    fails_(TST_PKL("\x80\x02" STORAGE_PID "K\x01" "K\x02" "s."), tensor_rec, 1, NULL, CKPT_ERR_PICKLE,
           "SETITEM on a torch.storage.TypedStorage", OP_SETITEM, (int64_t)slen + 4, __FILE__, __LINE__);
    FAILS_AT("](K\x01" "K\x02" "u.", CKPT_ERR_PICKLE, "SETITEMS on a list", OP_SETITEMS, 6);
    FAILS_AT("}K\x01" "a.", CKPT_ERR_PICKLE, "APPEND on a dict", OP_APPEND, 3);
    FAILS_AT(")(K\x01" "e.", CKPT_ERR_PICKLE, "APPENDS on a tuple", OP_APPENDS, 4);
    FAILS_AT("\x80\x04(K\x01\x91K\x02" "K\x03" "s.", CKPT_ERR_PICKLE, "SETITEM on a frozenset", OP_SETITEM, 10);
    FAILS_AT("\x80\x04\x8c\x01" "xK\x01" "a.", CKPT_ERR_PICKLE, "APPEND on a str", OP_APPEND, 7);
    FAILS_AT("\x80\x04](K\x01\x90.", CKPT_ERR_PICKLE, "ADDITEMS on a list", OP_ADDITEMS, 6);
    FAILS_AT("\x80\x04(K\x01\x91(K\x02\x90.", CKPT_ERR_PICKLE, "ADDITEMS on a frozenset", OP_ADDITEMS, 9);
    FAILS_AT("}(K\x01" "u.", CKPT_ERR_PICKLE, "odd number", OP_SETITEMS, 4);
    FAILS_AT("(K\x01" "d.", CKPT_ERR_PICKLE, "odd number", OP_DICT, 3);
}
END_TEST

/* ---- big integers ---- */

START_TEST(big_ints)
{
    static const struct { const char *pkl; size_t len; const char *dec; bool fits; } cases[] = {
        {TST_PKL("\x8a\x00."), "0", true},
        {TST_PKL("\x8a\x01\xff."), "-1", true},
        {TST_PKL("\x8a\x02\x01\x00."), "1", true},                                   /* not minimal */
        {TST_PKL("\x8a\x09\xff\xff\xff\xff\xff\xff\xff\xff\xff."), "-1", true},     /* not minimal */
        {TST_PKL("\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80."), "-9223372036854775808", true},
        {TST_PKL("\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f."), "9223372036854775807", true},
        {TST_PKL("\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00."), "9223372036854775808", false},
        {TST_PKL("\x8a\x09\xff\xff\xff\xff\xff\xff\xff\x7f\xff."), "-9223372036854775809", false},
        {TST_PKL("\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x80."), "-2361183241434822606848", false},
        {TST_PKL("\x8b\x09\x00\x00\x00" "\x00\x00\x00\x00\x00\x00\x00\x00\x01."), "18446744073709551616", false},
        {TST_PKL("\x8b\x00\x00\x00\x00" "."), "0", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ckpt_checkpoint *ck = load_ok_(cases[i].pkl, cases[i].len, NULL, 0, __FILE__, __LINE__);
        expect_bigint(ROOT(ck), cases[i].dec);
        int64_t x;
        ck_assert_int_eq(ckpt_value_int64(ROOT(ck), &x), cases[i].fits ? CKPT_OK : CKPT_ERR_LIMIT);
        ckpt_checkpoint_free(ck);
    }
    /* 2**200 through LONG4: exact, minimal little-endian bytes */
    uint8_t pkl[64];
    size_t o = 0;
    pkl[o++] = 0x8b;
    pkl[o++] = 26; /* LONG4 length, little-endian 32-bit */
    pkl[o++] = 0;
    pkl[o++] = 0;
    pkl[o++] = 0;
    for (int k = 0; k < 25; k++) pkl[o++] = 0;
    pkl[o++] = 1;
    pkl[o++] = '.';
    ckpt_checkpoint *ck = load_ok_(pkl, o, NULL, 0, __FILE__, __LINE__);
    expect_bigint(ROOT(ck), "1606938044258990275541962092341162602522202993782792835301376");
    uint8_t scratch[8];
    const uint8_t *bytes;
    ck_assert_uint_eq(ckpt_value_int_bytes(ROOT(ck), scratch, &bytes), 26);
    ck_assert_uint_eq(bytes[25], 1);
    json_t *doc = to_json(ck);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(doc, "values"), 0), "value")),
                     "1606938044258990275541962092341162602522202993782792835301376");
    json_decref(doc);
    ckpt_checkpoint_free(ck);
    /* small ints give minimal bytes too */
    ck = LOAD_OK("J\x00\xff\xff\xff.");
    ck_assert_uint_eq(ckpt_value_int_bytes(ROOT(ck), scratch, &bytes), 2); /* -256 = 00 ff */
    ck_assert_uint_eq(bytes[0], 0x00);
    ck_assert_uint_eq(bytes[1], 0xff);
    ckpt_checkpoint_free(ck);
}
END_TEST

START_TEST(int_size_limits)
{
    /* LONG4 of 1024 bytes (the default CKPT_LIMIT_MAX_INT_BYTES) loads; 1025 is refused before reading */
    size_t n = 1024;
    uint8_t *pkl = calloc(1, 8 + 1025);
    pkl[0] = 0x8b;
    pkl[1] = (uint8_t)n;
    pkl[2] = (uint8_t)(n >> 8);
    pkl[5 + n - 1] = 0x40;
    pkl[5 + n] = '.';
    ckpt_checkpoint *ck = load_ok_(pkl, 6 + n, NULL, 0, __FILE__, __LINE__);
    ck_assert_int_eq(ckpt_value_kind(ROOT(ck)), CKPT_KIND_INT);
    ckpt_checkpoint_free(ck);
    n = 1025;
    pkl[1] = (uint8_t)n;
    pkl[2] = (uint8_t)(n >> 8);
    pkl[5 + n] = '.';
    fails_(pkl, 6 + n, NULL, 0, NULL, CKPT_ERR_LIMIT, "CKPT_LIMIT_MAX_INT_BYTES", OP_LONG4, 0, __FILE__, __LINE__);
    free(pkl);
    FAILS_AT("\x8b\xff\xff\xff\xff" ".", CKPT_ERR_PICKLE, "negative byte count", OP_LONG4, 0);
    /* a settable limit */
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_INT_BYTES, 8);
    fails_(TST_PKL("\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01."), NULL, 0, o, CKPT_ERR_LIMIT,
           "CKPT_LIMIT_MAX_INT_BYTES", OP_LONG1, 0, __FILE__, __LINE__);
    fails_(TST_PKL("I123456789012345678901234567890\n."), NULL, 0, o, CKPT_ERR_LIMIT, "CKPT_LIMIT_MAX_INT_BYTES", OP_INT,
           0, __FILE__, __LINE__);
    ckpt_load_options_free(o);
}
END_TEST

/* ---- other rules ---- */

START_TEST(protocol_and_global_rules)
{
    FAILS_AT("\x80\x06N.", CKPT_ERR_PICKLE, "unsupported pickle protocol 6", OP_PROTO, 0);
    /* Python 2 names are normalised only below protocol 3 (Python's fix_imports) */
    ckpt_checkpoint *ck = LOAD_OK("\x80\x02" "c__builtin__\nset\n)R.");
    expect_kind_len(ROOT(ck), CKPT_KIND_SET, 0);
    ck_assert_uint_eq(ckpt_checkpoint_num_globals(ck), 1);
    ck_assert_str_eq(ckpt_checkpoint_global(ck, 0), "builtins.set");
    ckpt_checkpoint_free(ck);
    FAILS_AT("\x80\x03" "c__builtin__\nset\n)R.", CKPT_ERR_BLOCKED, "'__builtin__.set'", OP_GLOBAL, 2);
    FAILS_AT("\x80\x04K\x01" "K\x02\x93.", CKPT_ERR_PICKLE, "STACK_GLOBAL operands must be str", OP_STACK_GLOBAL, 6);
    FAILS_AT("c__builtin__\nset\n]R.", CKPT_ERR_PICKLE, "arguments must be a tuple", OP_REDUCE, 18);
    FAILS_AT("]]\x85R.", CKPT_ERR_PICKLE, "REDUCE target is a list", OP_REDUCE, 3);
    FAILS_AT("\x80\x02" "c__builtin__\nset\n)\x81.", CKPT_ERR_PICKLE, "cannot be used with NEWOBJ", OP_NEWOBJ, 20);
    FAILS_AT("c\nset\n)R.", CKPT_ERR_PICKLE, "empty module name", OP_GLOBAL, 0);
    FAILS_AT("ctorch\n", CKPT_ERR_PICKLE, "truncated", OP_GLOBAL, 0);
    /* READONLY_BUFFER makes sense only for out-of-band buffers */
    FAILS_AT("\x80\x05\x96\x01\x00\x00\x00\x00\x00\x00\x00" "a\x98.", CKPT_ERR_UNSUPPORTED, "READONLY_BUFFER", OP_READONLY_BUFFER, 12);
    /* strings must be UTF-8 (surrogates pass, as Python's surrogatepass) */
    FAILS_AT("X\x02\x00\x00\x00\xc3(.", CKPT_ERR_PICKLE, "not valid UTF-8", OP_BINUNICODE, 0);
    ck = LOAD_OK("X\x03\x00\x00\x00\xed\xa0\x80.");
    ck_assert_int_eq(ckpt_value_kind(ROOT(ck)), CKPT_KIND_STR);
    ckpt_checkpoint_free(ck);
}
END_TEST

START_TEST(resource_limits)
{
    /* MARK nesting beyond the depth limit */
    uint8_t *pkl = malloc(2100);
    memset(pkl, '(', 1001);
    pkl[1001] = '.';
    fails_(pkl, 1002, NULL, 0, NULL, CKPT_ERR_LIMIT, "CKPT_LIMIT_MAX_DEPTH", OP_MARK, 1000, __FILE__, __LINE__);
    free(pkl);
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_STACK, 3);
    fails_(TST_PKL("NNNN."), NULL, 0, o, CKPT_ERR_LIMIT, "CKPT_LIMIT_MAX_STACK", OP_NONE, 3, __FILE__, __LINE__);
    ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_MEMO, 4);
    fails_(TST_PKL("Nq\x04."), NULL, 0, o, CKPT_ERR_LIMIT, "CKPT_LIMIT_MAX_MEMO", OP_BINPUT, 1, __FILE__, __LINE__);
    ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_STRING, 3);
    fails_(TST_PKL("X\x04\x00\x00\x00" "abcd."), NULL, 0, o, CKPT_ERR_LIMIT, "CKPT_LIMIT_MAX_STRING", OP_BINUNICODE, 0,
           __FILE__, __LINE__);
    fails_(TST_PKL("Vabcd\n."), NULL, 0, o, CKPT_ERR_LIMIT, "CKPT_LIMIT_MAX_STRING", OP_UNICODE, 0, __FILE__, __LINE__);
    ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_OPCODES, 3);
    fails_(TST_PKL("NNN0."), NULL, 0, o, CKPT_ERR_LIMIT, "CKPT_LIMIT_MAX_OPCODES", -1, -1, __FILE__, __LINE__);
    ckpt_load_options_free(o);
    /* the default memo limit: an index of 2**24 is refused before anything is allocated */
    FAILS_AT("Nr\x00\x00\x00\x01.", CKPT_ERR_LIMIT, "CKPT_LIMIT_MAX_MEMO", OP_LONG_BINPUT, 1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pickle");
    TCase *tc = tcase_create("floats");
    tcase_add_test(tc, float_repr_matches_python);
    tcase_add_test(tc, float_repr_examples);
    suite_add_tcase(s, tc);
    tc = tcase_create("opcodes");
    tcase_add_loop_test(tc, opcode_case, 0, (int)N_OP_CASES);
    tcase_add_test(tc, every_opcode_is_covered);
    tcase_add_test(tc, parameter_type_name);
    tcase_add_test(tc, non_opcodes_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("text");
    tcase_add_test(tc, text_int);
    tcase_add_test(tc, text_long);
    tcase_add_test(tc, text_float);
    tcase_add_test(tc, text_string);
    tcase_add_test(tc, text_unicode);
    tcase_add_test(tc, text_get_put);
    suite_add_tcase(s, tc);
    tc = tcase_create("semantics");
    tcase_add_test(tc, memo_is_shared);
    tcase_add_test(tc, memoize_numbering);
    tcase_add_test(tc, frames);
    tcase_add_test(tc, frame_ending_with_next_frame_header);
    tcase_add_test(tc, pop_mark_dup_semantics);
    tcase_add_test(tc, stop_rules);
    tcase_add_test(tc, dict_duplicate_keys_replace_in_place);
    tcase_add_test(tc, dict_numeric_keys_are_one);
    tcase_add_test(tc, unhashable_keys_refused);
    tcase_add_test(tc, build_rules);
    tcase_add_test(tc, container_mutation_type_checks);
    tcase_add_test(tc, big_ints);
    tcase_add_test(tc, int_size_limits);
    tcase_add_test(tc, protocol_and_global_rules);
    tcase_add_test(tc, resource_limits);
    suite_add_tcase(s, tc);
    tc = tcase_create("limits");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, key_comparison_work_is_bounded);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tst_run(suite()); }
