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

static Suite *suite(void)
{
    Suite *s = suite_create("pickle");
    TCase *tc = tcase_create("floats");
    tcase_add_test(tc, float_repr_matches_python);
    tcase_add_test(tc, float_repr_examples);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tst_run(suite()); }
