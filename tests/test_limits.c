/*
 * test_limits.c: every resource limit of ckpt_load_options: its documented default, that exceeding it
 * is CKPT_ERR_LIMIT with a message naming it, that the value just under it loads, and that oversized
 * big ints and strings are refused from their declared length, before their bytes are read or parsed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickle_builder.h"
#include "support.h"

static void put(pk *b, const void *d, size_t n) { pk_raw(b, d, n); }
/* Appends a string literal, embedded NULs included. */
#define PUT(b, lit) put((b), (lit), sizeof(lit) - 1)
static void rep(pk *b, const char *s, size_t n) { for (size_t i = 0; i < n; i++) put(b, s, strlen(s)); }

/* Loads the pickle (wrapped in a checkpoint, with optional storage records) with one limit set. */
static ckpt_status load_with(const pk *b, const tst_record *recs, size_t nrecs, ckpt_limit which, uint64_t value,
                             unsigned flags, char *msg, size_t msg_cap)
{
    size_t zlen;
    uint8_t *zip = tst_make_checkpoint(b->p, b->len, recs, nrecs, &zlen);
    ckpt_load_options *o = ckpt_load_options_new();
    ck_assert_int_eq(ckpt_load_options_set_limit(o, which, value), CKPT_OK);
    ckpt_load_options_set_flags(o, flags);
    ckpt_error *err = ckpt_error_new();
    ckpt_checkpoint *c = NULL;
    ckpt_status s = ckpt_load_memory(zip, zlen, o, &c, err);
    if (msg) snprintf(msg, msg_cap, "%s", ckpt_error_message(err));
    ckpt_checkpoint_free(c);
    ckpt_error_free(err);
    ckpt_load_options_free(o);
    free(zip);
    return s;
}

#define EXPECT_OK(b, which, value) do { char m_[1024]; ckpt_status s_ = load_with(&(b), NULL, 0, which, value, 0, m_, sizeof m_); \
    ck_assert_msg(s_ == CKPT_OK, "limit %llu: expected success, got %s: %s", (unsigned long long)(value), ckpt_status_name(s_), m_); } while (0)
#define EXPECT_LIMIT(b, which, value, needle) do { char m_[1024]; ckpt_status s_ = load_with(&(b), NULL, 0, which, value, 0, m_, sizeof m_); \
    ck_assert_msg(s_ == CKPT_ERR_LIMIT, "limit %llu: expected CKPT_ERR_LIMIT, got %s: %s", (unsigned long long)(value), ckpt_status_name(s_), m_); \
    ck_assert_msg(strstr(m_, needle) != NULL, "message '%s' lacks '%s'", m_, needle); } while (0)

START_TEST(test_defaults_documented)
{
    /* the README's limits table */
    ck_assert_uint_eq(ckpt_load_options_get_limit(NULL, CKPT_LIMIT_MAX_ALLOC), 0); /* derived: 4 x input + 64 MiB */
    ck_assert_uint_eq(ckpt_load_options_get_limit(NULL, CKPT_LIMIT_MAX_DEPTH), 1000);
    ck_assert_uint_eq(ckpt_load_options_get_limit(NULL, CKPT_LIMIT_MAX_MEMO), 1u << 24);
    ck_assert_uint_eq(ckpt_load_options_get_limit(NULL, CKPT_LIMIT_MAX_STACK), 1u << 24);
    ck_assert_uint_eq(ckpt_load_options_get_limit(NULL, CKPT_LIMIT_MAX_STRING), 1ull << 30);
    ck_assert_uint_eq(ckpt_load_options_get_limit(NULL, CKPT_LIMIT_MAX_INT_BYTES), 1024);
    ck_assert_uint_eq(ckpt_load_options_get_limit(NULL, CKPT_LIMIT_MAX_OPCODES), 1ull << 32);
    ck_assert_uint_eq(ckpt_load_options_get_limit(NULL, CKPT_LIMIT_MAX_MEMBERS), 1u << 20);
    ck_assert_uint_eq(ckpt_load_options_get_limit(NULL, CKPT_LIMIT_MAX_NDIM), 64);
    ckpt_load_options *o = ckpt_load_options_new();
    ck_assert_int_eq(ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_DEPTH, 7), CKPT_OK);
    ck_assert_uint_eq(ckpt_load_options_get_limit(o, CKPT_LIMIT_MAX_DEPTH), 7);
    ck_assert_int_eq(ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_DEPTH, 0), CKPT_OK); /* 0 restores */
    ck_assert_uint_eq(ckpt_load_options_get_limit(o, CKPT_LIMIT_MAX_DEPTH), 1000);
    ck_assert_int_eq(ckpt_load_options_set_limit(o, CKPT_LIMIT_COUNT_, 1), CKPT_ERR_INVALID_ARG);
    ck_assert_int_eq(ckpt_load_options_set_limit(o, (ckpt_limit)-1, 1), CKPT_ERR_INVALID_ARG);
    ck_assert_int_eq(ckpt_load_options_set_limit(NULL, CKPT_LIMIT_MAX_DEPTH, 1), CKPT_ERR_INVALID_ARG);
    ckpt_load_options_free(o);
}
END_TEST

START_TEST(test_max_alloc)
{
    /* metadata fits in 64 KiB, the 256 KiB tensor copy does not: copy mode fails, borrow/skip load */
    static float data[65536];
    tst_record rec = {"data/0", data, sizeof data};
    pk b = {0};
    PUT(&b, "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
              "X\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuJ\x00\x00\x01\x00tQK\x00J\x00\x00\x01\x00\x85K\x01\x85"
              "\x89" "ccollections\nOrderedDict\n)RtR.");
    char m[1024];
    ck_assert_msg(load_with(&b, &rec, 1, CKPT_LIMIT_MAX_ALLOC, 1u << 20, 0, m, sizeof m) == CKPT_OK, "%s", m);
    ck_assert_int_eq(load_with(&b, &rec, 1, CKPT_LIMIT_MAX_ALLOC, 64u << 10, 0, m, sizeof m), CKPT_ERR_LIMIT);
    ck_assert_msg(strstr(m, "exceeds the allocation limit") != NULL, "%s", m);
    ck_assert_int_eq(load_with(&b, &rec, 1, CKPT_LIMIT_MAX_ALLOC, 64u << 10, CKPT_LOAD_BORROW, m, sizeof m), CKPT_OK);
    ck_assert_int_eq(load_with(&b, &rec, 1, CKPT_LIMIT_MAX_ALLOC, 64u << 10, CKPT_LOAD_SKIP_DATA, m, sizeof m), CKPT_OK);
    /* nodes count too: 20,000 small ints in a list under a 64 KiB budget */
    pk big = {0};
    PUT(&big, "\x80\x02](");
    rep(&big, "K\x01", 20000);
    PUT(&big, "e.");
    EXPECT_OK(big, CKPT_LIMIT_MAX_ALLOC, 4u << 20);
    EXPECT_LIMIT(big, CKPT_LIMIT_MAX_ALLOC, 64u << 10, "CKPT_LIMIT_MAX_ALLOC");
    free(b.p);
    free(big.p);
}
END_TEST

START_TEST(test_max_alloc_scratch)
{
    /* decoding a protocol-0 UNICODE line needs a scratch buffer of 4 bytes per input byte: it is
     * counted against the budget like everything else */
    pk b = {0};
    PUT(&b, "\x80\x02V");
    rep(&b, "a", 100000);
    PUT(&b, "\n.");
    EXPECT_OK(b, CKPT_LIMIT_MAX_ALLOC, 4u << 20);
    EXPECT_LIMIT(b, CKPT_LIMIT_MAX_ALLOC, 300u << 10, "CKPT_LIMIT_MAX_ALLOC");
    free(b.p);
}
END_TEST

START_TEST(test_max_alloc_logical_size)
{
    /* a stride-0 view of 2^30 elements over 2 stored floats: refused by default, allowed when raised */
    static const float two[2] = {1, 2};
    tst_record rec = {"data/0", two, sizeof two};
    pk b = {0};
    PUT(&b, "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
              "X\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x02tQK\x00J\x00\x00\x00\x40\x85K\x00\x85"
              "\x89" "ccollections\nOrderedDict\n)RtR.");
    char m[1024];
    ck_assert_int_eq(load_with(&b, &rec, 1, CKPT_LIMIT_MAX_ALLOC, 0, 0, m, sizeof m), CKPT_ERR_LIMIT);
    ck_assert_msg(strstr(m, "the tensors describe more than") != NULL, "%s", m);
    /* a small budget never lowers the logical bound below its default */
    ck_assert_int_eq(load_with(&b, &rec, 1, CKPT_LIMIT_MAX_ALLOC, 1u << 20, 0, m, sizeof m), CKPT_ERR_LIMIT);
    ck_assert_int_eq(load_with(&b, &rec, 1, CKPT_LIMIT_MAX_ALLOC, 8ull << 30, 0, m, sizeof m), CKPT_OK);
    free(b.p);
}
END_TEST

START_TEST(test_max_depth_marks)
{
    pk ok = {0}, over = {0};
    PUT(&ok, "\x80\x02");
    rep(&ok, "(", 8);
    rep(&ok, "t", 8);
    PUT(&ok, ".");
    PUT(&over, "\x80\x02");
    rep(&over, "(", 9);
    rep(&over, "t", 9);
    PUT(&over, ".");
    EXPECT_OK(ok, CKPT_LIMIT_MAX_DEPTH, 9);
    EXPECT_LIMIT(over, CKPT_LIMIT_MAX_DEPTH, 8, "MARK nesting depth exceeds the limit of 8 (CKPT_LIMIT_MAX_DEPTH)");
    free(ok.p);
    free(over.p);
}
END_TEST

START_TEST(test_max_depth_values)
{
    /* nesting built without MARK (EMPTY_LIST then APPEND) is bounded by the walkers */
    pk b = {0};
    PUT(&b, "\x80\x02");
    rep(&b, "]", 20);
    rep(&b, "a", 19);
    PUT(&b, ".");
    EXPECT_OK(b, CKPT_LIMIT_MAX_DEPTH, 21);
    EXPECT_LIMIT(b, CKPT_LIMIT_MAX_DEPTH, 10, "value nesting deeper than 10");
    free(b.p);
}
END_TEST

START_TEST(test_max_memo)
{
    pk ok = {0}, over = {0}, memoize = {0}, huge = {0};
    PUT(&ok, "\x80\x02Nq\x07.");
    PUT(&over, "\x80\x02Nq\x08.");
    EXPECT_OK(ok, CKPT_LIMIT_MAX_MEMO, 8);
    EXPECT_LIMIT(over, CKPT_LIMIT_MAX_MEMO, 8, "memo index 8 exceeds CKPT_LIMIT_MAX_MEMO (8)");
    PUT(&memoize, "\x80\x04N");
    rep(&memoize, "\x94", 9);
    PUT(&memoize, ".");
    EXPECT_LIMIT(memoize, CKPT_LIMIT_MAX_MEMO, 8, "CKPT_LIMIT_MAX_MEMO");
    /* the largest LONG_BINPUT index is refused without allocating a memo for it */
    PUT(&huge, "\x80\x02Nr\xff\xff\xff\xff.");
    EXPECT_LIMIT(huge, CKPT_LIMIT_MAX_MEMO, 0, "memo index 4294967295 exceeds CKPT_LIMIT_MAX_MEMO");
    free(ok.p);
    free(over.p);
    free(memoize.p);
    free(huge.p);
}
END_TEST

START_TEST(test_max_stack)
{
    pk ok = {0}, over = {0};
    PUT(&ok, "\x80\x02(");
    rep(&ok, "N", 16);
    PUT(&ok, "l.");
    PUT(&over, "\x80\x02(");
    rep(&over, "N", 17);
    PUT(&over, "l.");
    EXPECT_OK(ok, CKPT_LIMIT_MAX_STACK, 16);
    EXPECT_LIMIT(over, CKPT_LIMIT_MAX_STACK, 16, "pickle stack depth exceeds the limit of 16 (CKPT_LIMIT_MAX_STACK)");
    free(ok.p);
    free(over.p);
}
END_TEST

START_TEST(test_max_string)
{
#define S(lit) lit, sizeof(lit) - 1
    struct { const char *ok; size_t ok_len; const char *over; size_t over_len; } cases[] = {
        {S("\x80\x02X\x0a\x00\x00\x00" "0123456789."), S("\x80\x02X\x0b\x00\x00\x00" "0123456789a.")}, /* BINUNICODE */
        {S("\x80\x03" "C\x0a" "0123456789."), S("\x80\x03" "C\x0b" "0123456789a.")},                     /* SHORT_BINBYTES */
        {S("\x80\x02S'01234567'\n."), S("\x80\x02S'012345678'\n.")},                                     /* STRING (text) */
        {S("\x80\x02V0123456789\n."), S("\x80\x02V0123456789a\n.")},                                     /* UNICODE (text) */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pk ok = {0}, over = {0};
        put(&ok, cases[i].ok, cases[i].ok_len);
        put(&over, cases[i].over, cases[i].over_len);
        EXPECT_OK(ok, CKPT_LIMIT_MAX_STRING, 10);
        EXPECT_LIMIT(over, CKPT_LIMIT_MAX_STRING, 10, "CKPT_LIMIT_MAX_STRING");
        free(ok.p);
        free(over.p);
    }
    /* declared lengths are refused before the bytes are looked for: no payload follows these */
    struct { const char *p; size_t n; } declared[] = {
        {S("\x80\x04\x8d\x0b\x00\x00\x00\x00\x00\x00\x00")}, /* BINUNICODE8 */
        {S("\x80\x04\x8e\x0b\x00\x00\x00\x00\x00\x00\x00")}, /* BINBYTES8 */
        {S("\x80\x05\x96\x0b\x00\x00\x00\x00\x00\x00\x00")}, /* BYTEARRAY8 */
        {S("\x80\x03" "B\x0b\x00\x00\x00")},                  /* BINBYTES */
    };
#undef S
    for (size_t i = 0; i < 4; i++) {
        pk b = {0};
        put(&b, declared[i].p, declared[i].n);
        EXPECT_LIMIT(b, CKPT_LIMIT_MAX_STRING, 10, "declared length 11 exceeds CKPT_LIMIT_MAX_STRING (10)");
        free(b.p);
    }
    /* text arguments of GLOBAL are bounded too */
    pk g = {0};
    PUT(&g, "\x80\x02" "ccollections_and_more\nOrderedDict\n)R.");
    EXPECT_LIMIT(g, CKPT_LIMIT_MAX_STRING, 10, "text argument longer than CKPT_LIMIT_MAX_STRING");
    free(g.p);
}
END_TEST

START_TEST(test_max_int_bytes)
{
    pk ok = {0}, over = {0}, long4 = {0}, long4_huge = {0};
    PUT(&ok, "\x80\x02\x8a\x08" "\x01\x02\x03\x04\x05\x06\x07\x08.");
    PUT(&over, "\x80\x02\x8a\x09" "\x01\x02\x03\x04\x05\x06\x07\x08\x09.");
    EXPECT_OK(ok, CKPT_LIMIT_MAX_INT_BYTES, 8);
    EXPECT_LIMIT(over, CKPT_LIMIT_MAX_INT_BYTES, 8, "integer of 9 bytes exceeds CKPT_LIMIT_MAX_INT_BYTES (8)");
    /* LONG4: refused from its declared length; none of the 9 bytes is present */
    PUT(&long4, "\x80\x02\x8b\x09\x00\x00\x00");
    EXPECT_LIMIT(long4, CKPT_LIMIT_MAX_INT_BYTES, 8, "integer of 9 bytes exceeds CKPT_LIMIT_MAX_INT_BYTES (8)");
    PUT(&long4_huge, "\x80\x02\x8b\xff\xff\xff\x7f");
    EXPECT_LIMIT(long4_huge, CKPT_LIMIT_MAX_INT_BYTES, 0, "exceeds CKPT_LIMIT_MAX_INT_BYTES (1024)");
    /* text ints: the digit count decides before any digit is converted */
    pk t_ok = {0}, t_over = {0}, t_long = {0};
    PUT(&t_ok, "\x80\x02I1234567890123456789012\n."); /* 22 digits: ~10 bytes */
    PUT(&t_over, "\x80\x02I12345678901234567890123456789012345678901234567890\n.");
    EXPECT_OK(t_ok, CKPT_LIMIT_MAX_INT_BYTES, 16);
    EXPECT_LIMIT(t_over, CKPT_LIMIT_MAX_INT_BYTES, 16, "integer of 50 digits exceeds CKPT_LIMIT_MAX_INT_BYTES (16 bytes)");
    /* 4 million digits with the default limit: a quadratic conversion would take hours */
    PUT(&t_long, "\x80\x02L");
    rep(&t_long, "9", 4000000);
    PUT(&t_long, "L\n.");
    EXPECT_LIMIT(t_long, CKPT_LIMIT_MAX_INT_BYTES, 0, "integer of 4000000 digits exceeds CKPT_LIMIT_MAX_INT_BYTES");
    free(ok.p); free(over.p); free(long4.p); free(long4_huge.p); free(t_ok.p); free(t_over.p); free(t_long.p);
}
END_TEST

/* Text ints below the limit convert exactly (the conversion works nine digits at a time). */
START_TEST(test_text_int_round_trip)
{
    const char *digits = "98765432109876543210";
    size_t lens[] = {1, 8, 9, 10, 17, 18, 19, 20, 27, 28, 100, 999, 2400};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        for (int neg = 0; neg < 2; neg++) {
            char text[2600];
            size_t n = 0;
            if (neg) text[n++] = '-';
            for (size_t k = 0; k < lens[li]; k++) text[n++] = digits[(k * 7 + li) % 20];
            if (text[neg] == '0') text[neg] = '7'; /* no leading zero: Python's int(text, 0) refuses it */
            text[n] = '\0';
            pk b = {0};
            PUT(&b, "\x80\x02L");
            put(&b, text, n);
            PUT(&b, "L\n.");
            size_t zlen;
            uint8_t *zip = tst_make_checkpoint(b.p, b.len, NULL, 0, &zlen);
            ckpt_checkpoint *c = NULL;
            ck_assert_int_eq(ckpt_load_memory(zip, zlen, NULL, &c, NULL), CKPT_OK);
            char *dec = ckpt_value_int_to_string(ckpt_checkpoint_root(c));
            ck_assert_str_eq(dec, text);
            ckpt_free(dec);
            ckpt_checkpoint_free(c);
            free(zip);
            free(b.p);
        }
    }
}
END_TEST

START_TEST(test_max_opcodes)
{
    pk b = {0};
    PUT(&b, "\x80\x02(");
    rep(&b, "N", 7);
    PUT(&b, "l."); /* PROTO MARK 7xNONE LIST STOP = 11 opcodes */
    EXPECT_OK(b, CKPT_LIMIT_MAX_OPCODES, 11);
    EXPECT_LIMIT(b, CKPT_LIMIT_MAX_OPCODES, 10, "more than 10 opcodes (CKPT_LIMIT_MAX_OPCODES)");
    free(b.p);
}
END_TEST

START_TEST(test_max_members)
{
    pk b = {0};
    PUT(&b, "\x80\x02N.");
    tst_record rec = {"extra", "x", 1};
    char m[1024];
    /* data.pkl, extra, version */
    ck_assert_int_eq(load_with(&b, &rec, 1, CKPT_LIMIT_MAX_MEMBERS, 3, 0, m, sizeof m), CKPT_OK);
    ck_assert_int_eq(load_with(&b, &rec, 1, CKPT_LIMIT_MAX_MEMBERS, 2, 0, m, sizeof m), CKPT_ERR_LIMIT);
    ck_assert_msg(strstr(m, "zip has 3 members, more than CKPT_LIMIT_MAX_MEMBERS (2)") != NULL, "%s", m);
    free(b.p);
}
END_TEST

START_TEST(test_max_ndim)
{
    static const float f[1] = {1};
    tst_record rec = {"data/0", f, sizeof f};
    pk b = {0};
    PUT(&b, "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
              "X\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x01tQK\x00(K\x01K\x01K\x01t(K\x01K\x01K\x01t"
              "\x89" "ccollections\nOrderedDict\n)RtR.");
    char m[1024];
    ck_assert_int_eq(load_with(&b, &rec, 1, CKPT_LIMIT_MAX_NDIM, 3, 0, m, sizeof m), CKPT_OK);
    ck_assert_int_eq(load_with(&b, &rec, 1, CKPT_LIMIT_MAX_NDIM, 2, 0, m, sizeof m), CKPT_ERR_LIMIT);
    ck_assert_msg(strstr(m, "3 dimensions exceed CKPT_LIMIT_MAX_NDIM (2)") != NULL, "%s", m);
    free(b.p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("limits");
    TCase *tc = tcase_create("limits");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_defaults_documented);
    tcase_add_test(tc, test_max_alloc);
    tcase_add_test(tc, test_max_alloc_scratch);
    tcase_add_test(tc, test_max_alloc_logical_size);
    tcase_add_test(tc, test_max_depth_marks);
    tcase_add_test(tc, test_max_depth_values);
    tcase_add_test(tc, test_max_memo);
    tcase_add_test(tc, test_max_stack);
    tcase_add_test(tc, test_max_string);
    tcase_add_test(tc, test_max_int_bytes);
    tcase_add_test(tc, test_text_int_round_trip);
    tcase_add_test(tc, test_max_opcodes);
    tcase_add_test(tc, test_max_members);
    tcase_add_test(tc, test_max_ndim);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tst_run(suite()); }
