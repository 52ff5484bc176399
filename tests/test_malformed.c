/*
 * test_malformed.c: broken and hostile inputs give a clean error (a status and a message), never a
 * crash, a hang, a huge allocation or a partial success. Truncation of real torch fixtures at every
 * byte, truncation of data.pkl alone at every byte, stack/MARK/memo errors, length fields that lie
 * (refused before allocating: checked with a small CKPT_LIMIT_MAX_ALLOC), storage records of the wrong
 * size or missing, overflowing sizes, tensors reaching outside their storage, and files that are not
 * checkpoints at all (each described for what it is).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "pickle_opcodes.h"
#include "support.h"
#include "zip.h"

/* ---- helpers ---- */

static bool clean_error(ckpt_status s)
{
    return s == CKPT_ERR_ZIP || s == CKPT_ERR_FORMAT || s == CKPT_ERR_PICKLE || s == CKPT_ERR_TENSOR;
}

/* Loads and asserts the status, a message containing needle (NULL: any non-empty message). */
static void expect_(const void *p, size_t n, const ckpt_load_options *o, ckpt_status code, const char *needle,
                    const char *file, int line)
{
    ckpt_error *err = ckpt_error_new();
    ckpt_checkpoint *ck = NULL;
    ckpt_status s = ckpt_load_memory(p, n, o, &ck, err);
    ck_assert_msg(s == code, "%s:%d: expected %s, got %s: %s", file, line, ckpt_status_name(code), ckpt_status_name(s),
                  ckpt_error_message(err));
    if (code != CKPT_OK) {
        ck_assert_ptr_null(ck);
        ck_assert_msg(ckpt_error_message(err)[0] != '\0', "%s:%d: empty message", file, line);
        if (needle)
            ck_assert_msg(strstr(ckpt_error_message(err), needle) != NULL, "%s:%d: message '%s' lacks '%s'", file, line,
                          ckpt_error_message(err), needle);
    }
    ckpt_checkpoint_free(ck);
    ckpt_error_free(err);
}
#define EXPECT(p, n, code, needle) expect_(p, n, NULL, code, needle, __FILE__, __LINE__)

/* A checkpoint around a pickle (and storage records), then EXPECT. */
static void expect_pickle_(const void *pkl, size_t n, const tst_record *rec, size_t nrec, const ckpt_load_options *o,
                           ckpt_status code, const char *needle, const char *file, int line)
{
    size_t len;
    uint8_t *z = tst_make_checkpoint(pkl, n, rec, nrec, &len);
    expect_(z, len, o, code, needle, file, line);
    free(z);
}
#define EXPECT_PICKLE(lit, code, needle) expect_pickle_(TST_PKL(lit), NULL, 0, NULL, code, needle, __FILE__, __LINE__)

/* The members of a real zip, read with libckpt's own reader (stored and verified). */
typedef struct {
    char name[256];
    uint8_t *data;
    size_t len;
} member;

static size_t read_members(const uint8_t *zip, size_t len, member *out, size_t cap)
{
    ck_arena arena;
    ck_arena_init(&arena, UINT64_MAX);
    ck_zip z;
    ckpt_error *err = ckpt_error_new();
    ck_assert_msg(ck_zip_open(&z, zip, len, &arena, 1000, err) == CKPT_OK, "%s", ckpt_error_message(err));
    ck_assert_uint_le(z.count, cap);
    for (size_t i = 0; i < z.count; i++) {
        const uint8_t *p;
        ck_assert_int_eq(ck_zip_read(&z, &z.members[i], &arena, true, &p, err), CKPT_OK);
        snprintf(out[i].name, sizeof out[i].name, "%s", z.members[i].name);
        out[i].len = (size_t)z.members[i].size;
        out[i].data = malloc(out[i].len ? out[i].len : 1);
        memcpy(out[i].data, p, out[i].len);
    }
    size_t n = z.count;
    ckpt_error_free(err);
    ck_arena_release(&arena);
    return n;
}

/* ---- truncation ---- */

static const char *const truncated_fixtures[] = {"mlp", "nested", "views", "empty"};
#define N_TRUNC (sizeof truncated_fixtures / sizeof truncated_fixtures[0])

/* Every strict prefix of a real torch file is refused with a container or content error. */
START_TEST(truncated_file_every_offset)
{
    char rel[128];
    snprintf(rel, sizeof rel, "fixtures/data/%s.pt", truncated_fixtures[_i]);
    size_t len;
    uint8_t *data = tst_read_file(tst_path(rel), &len);
    ckpt_error *err = ckpt_error_new();
    ckpt_checkpoint *ck = NULL;
    ck_assert_msg(ckpt_load_memory(data, len, NULL, &ck, err) == CKPT_OK, "%s: %s", rel, ckpt_error_message(err));
    ckpt_checkpoint_free(ck);
    for (size_t cut = 0; cut < len; cut++) {
        /* a private copy of exactly `cut` bytes, so ASan sees any read past the end */
        uint8_t *prefix = malloc(cut ? cut : 1);
        memcpy(prefix, data, cut);
        ckpt_status s = ckpt_load_memory(prefix, cut, NULL, &ck, err);
        ck_assert_msg(clean_error(s), "%s cut at %zu: %s: %s", rel, cut, ckpt_status_name(s), ckpt_error_message(err));
        ck_assert_ptr_null(ck);
        ck_assert(ckpt_error_message(err)[0] != '\0');
        free(prefix);
    }
    free(data);
    ckpt_error_free(err);
}
END_TEST

/* data.pkl alone cut at every byte inside an otherwise valid zip: always a pickle error naming data.pkl. */
START_TEST(truncated_pickle_every_offset)
{
    char rel[128];
    snprintf(rel, sizeof rel, "fixtures/data/%s.pt", truncated_fixtures[_i]);
    size_t len;
    uint8_t *data = tst_read_file(tst_path(rel), &len);
    member m[64];
    size_t n = read_members(data, len, m, 64);
    size_t pk = n;
    for (size_t i = 0; i < n; i++)
        if (strlen(m[i].name) > 9 && strcmp(m[i].name + strlen(m[i].name) - 9, "/data.pkl") == 0) pk = i;
    ck_assert_uint_lt(pk, n);
    tst_record rec[64];
    for (size_t i = 0; i < n; i++) rec[i] = (tst_record){m[i].name, m[i].data, m[i].len};
    /* the rebuilt zip with the whole pickle loads */
    size_t zlen;
    uint8_t *z = tst_make_zip(rec, n, &zlen);
    EXPECT(z, zlen, CKPT_OK, NULL);
    free(z);
    ckpt_error *err = ckpt_error_new();
    for (size_t cut = 0; cut < m[pk].len; cut++) {
        rec[pk].len = cut;
        z = tst_make_zip(rec, n, &zlen);
        ckpt_checkpoint *ck = NULL;
        ckpt_status s = ckpt_load_memory(z, zlen, NULL, &ck, err);
        ck_assert_msg(s == CKPT_ERR_PICKLE, "%s data.pkl cut at %zu: %s: %s", rel, cut, ckpt_status_name(s),
                      ckpt_error_message(err));
        ck_assert_str_eq(ckpt_error_record(err), m[pk].name);
        ck_assert_int_le(ckpt_error_offset(err), (int64_t)cut);
        free(z);
    }
    for (size_t i = 0; i < n; i++) free(m[i].data);
    free(data);
    ckpt_error_free(err);
}
END_TEST

/* ---- pickle structure ---- */

START_TEST(stack_and_memo_errors)
{
    EXPECT_PICKLE("\x80\x02" "R.", CKPT_ERR_PICKLE, "stack underflow");
    EXPECT_PICKLE("\x80\x02" "a.", CKPT_ERR_PICKLE, "stack underflow");
    EXPECT_PICKLE("\x80\x02" "N\x86.", CKPT_ERR_PICKLE, "stack underflow");
    EXPECT_PICKLE("\x80\x02" "Nt.", CKPT_ERR_PICKLE, "no MARK");
    EXPECT_PICKLE("\x80\x02" "}Nu.", CKPT_ERR_PICKLE, "no MARK");
    EXPECT_PICKLE("\x80\x02" "]Ne.", CKPT_ERR_PICKLE, "no MARK");
    EXPECT_PICKLE("\x80\x02" "h\x05" ".", CKPT_ERR_PICKLE, "memo entry 5 was never set");
    EXPECT_PICKLE("\x80\x02" "j\xff\xff\xff\xff" ".", CKPT_ERR_PICKLE, "memo entry 4294967295 was never set");
    EXPECT_PICKLE("\x80\x02" "(N.", CKPT_ERR_PICKLE, "MARK(s) still open");
}
END_TEST

/*
 * A length field claiming far more than the pickle holds is refused before anything is allocated:
 * with CKPT_LIMIT_MAX_ALLOC at 1 MiB the error is never "out of memory" (nor a limit hit while
 * allocating): it is the string/int limit, or "only N bytes remain".
 */
START_TEST(lying_length_fields)
{
    static const struct { const char *pkl; size_t len; } lies[] = {
        {TST_PKL("\x80\x02X\xff\xff\xff\xff" "abc.")},                                  /* BINUNICODE 4 GiB */
        {TST_PKL("\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\x7f" "abc.")},               /* BINUNICODE8 */
        {TST_PKL("\x80\x04\x8e\x00\x00\x00\x00\x00\x00\x00\x40" "abc.")},               /* BINBYTES8 2**62 */
        {TST_PKL("\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xff" "abc.")},               /* BINBYTES8 2**64-1 */
        {TST_PKL("\x80\x05\x96\x00\x00\x00\x00\x00\x00\x01\x00" "abc.")},               /* BYTEARRAY8 */
        {TST_PKL("\x80\x03" "B\xff\xff\xff\x7f" "abc.")},                                /* BINBYTES */
        {TST_PKL("T\xff\xff\xff\x7f" "abc.")},                                            /* BINSTRING */
        {TST_PKL("\x80\x02\x8b\xff\xff\xff\x7f" "abc.")},                                /* LONG4 */
        {TST_PKL("\x80\x02X\x00\x00\x00\x10" "abc.")},                                   /* 256 MiB: under the string limit */
        {TST_PKL("\x80\x04\x95\x00\x00\x00\x00\x00\x01\x00\x00" "N.")},                /* FRAME of 2**40 bytes */
        {TST_PKL("\x80\x02\x8a\xff" "abc.")},                                             /* LONG1 of 255 bytes */
    };
    ckpt_load_options *small = ckpt_load_options_new();
    ckpt_load_options_set_limit(small, CKPT_LIMIT_MAX_ALLOC, 1u << 20);
    ckpt_load_options *open_limits = ckpt_load_options_new();
    ckpt_load_options_set_limit(open_limits, CKPT_LIMIT_MAX_ALLOC, 1u << 20);
    ckpt_load_options_set_limit(open_limits, CKPT_LIMIT_MAX_STRING, UINT64_MAX);
    ckpt_load_options_set_limit(open_limits, CKPT_LIMIT_MAX_INT_BYTES, UINT64_MAX);
    ckpt_error *err = ckpt_error_new();
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        const ckpt_load_options *opts[] = {NULL, small, open_limits};
        for (size_t k = 0; k < 3; k++) {
            ckpt_status s = tst_load_pickle(lies[i].pkl, lies[i].len, NULL, 0, opts[k], NULL, err);
            const char *msg = ckpt_error_message(err);
            ck_assert_msg(s == CKPT_ERR_PICKLE || s == CKPT_ERR_LIMIT, "lie %zu, options %zu: %s: %s", i, k,
                          ckpt_status_name(s), msg);
            ck_assert_msg(!strstr(msg, "allocation limit") && !strstr(msg, "out of memory"),
                          "lie %zu, options %zu: allocated before checking: %s", i, k, msg);
            if (s == CKPT_ERR_LIMIT)
                ck_assert_msg(strstr(msg, "CKPT_LIMIT_MAX_STRING") || strstr(msg, "CKPT_LIMIT_MAX_INT_BYTES"),
                              "lie %zu: %s", i, msg);
            if (k == 2) /* with the size limits open, the error is that the bytes are not there */
                ck_assert_msg(s == CKPT_ERR_PICKLE && (strstr(msg, "remain") || strstr(msg, "truncated")),
                              "lie %zu without limits: %s", i, msg);
        }
    }
    ckpt_error_free(err);
    ckpt_load_options_free(small);
    ckpt_load_options_free(open_limits);
}
END_TEST

/*
 * Protocol-0 STRING and UNICODE decode through a scratch buffer (up to 4 bytes per input byte for
 * UNICODE); that buffer counts against CKPT_LIMIT_MAX_ALLOC, so a long text line cannot allocate past it.
 */
START_TEST(text_decoding_is_budgeted)
{
    size_t n = 3u << 20; /* a 3 MiB line: 12 MiB of scratch for UNICODE */
    char *pkl = malloc(n + 8);
    pkl[0] = 'V';
    memset(pkl + 1, 'a', n);
    memcpy(pkl + 1 + n, "\n.", 2);
    ckpt_load_options *small = ckpt_load_options_new();
    ckpt_load_options_set_limit(small, CKPT_LIMIT_MAX_ALLOC, 8u << 20);
    ckpt_error *err = ckpt_error_new();
    ckpt_status s = tst_load_pickle(pkl, n + 3, NULL, 0, small, NULL, err);
    ck_assert_msg(s == CKPT_ERR_LIMIT && strstr(ckpt_error_message(err), "CKPT_LIMIT_MAX_ALLOC"), "%s: %s",
                  ckpt_status_name(s), ckpt_error_message(err));
    /* the same line loads when the budget covers the scratch buffer */
    ckpt_load_options_set_limit(small, CKPT_LIMIT_MAX_ALLOC, 64u << 20);
    ckpt_checkpoint *ck = NULL;
    s = tst_load_pickle(pkl, n + 3, NULL, 0, small, &ck, err);
    ck_assert_msg(s == CKPT_OK, "%s", ckpt_error_message(err));
    size_t len = 0;
    ck_assert_ptr_nonnull(ckpt_value_str(ckpt_checkpoint_root(ck), &len));
    ck_assert_uint_eq(len, n);
    ckpt_checkpoint_free(ck);
    ckpt_error_free(err);
    ckpt_load_options_free(small);
    free(pkl);
}
END_TEST

/* ---- storages and tensors ---- */

typedef struct {
    uint8_t b[4096];
    size_t n;
} pk;
static void put(pk *p, const void *d, size_t n)
{
    ck_assert_uint_le(p->n + n, sizeof p->b);
    memcpy(p->b + p->n, d, n);
    p->n += n;
}
#define PUT(p, lit) put(p, lit, sizeof(lit) - 1)
/* any 64-bit int as LONG1 with 8 bytes */
static void int64(pk *p, int64_t v)
{
    uint8_t b[10] = {0x8a, 8};
    for (int i = 0; i < 8; i++) b[2 + i] = (uint8_t)((uint64_t)v >> (8 * i));
    put(p, b, 10);
}

/* _rebuild_tensor_v2(FloatStorage key '0' of `numel`, offset, sizes, strides, False, OrderedDict()) */
static void tensor_pickle(pk *p, int64_t numel, int64_t offset, const int64_t *sizes, size_t nsizes,
                          const int64_t *strides, size_t nstrides)
{
    p->n = 0;
    PUT(p, "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n(");
    PUT(p, "(X\x07\x00\x00\x00" "storage" "ctorch\nFloatStorage\n" "X\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpu");
    int64(p, numel);
    PUT(p, "tQ");
    int64(p, offset);
    PUT(p, "(");
    for (size_t i = 0; i < nsizes; i++) int64(p, sizes[i]);
    PUT(p, "t(");
    for (size_t i = 0; i < nstrides; i++) int64(p, strides[i]);
    PUT(p, "t\x89" "ccollections\nOrderedDict\n)RtR.");
}

static const float four_floats[4] = {1, 2, 3, 4};

static void expect_tensor_(int64_t numel, int64_t offset, const int64_t *sizes, size_t nsizes, const int64_t *strides,
                           size_t nstrides, size_t record_len, ckpt_status code, const char *needle, const char *file,
                           int line)
{
    pk p;
    tensor_pickle(&p, numel, offset, sizes, nsizes, strides, nstrides);
    tst_record rec = {"data/0", four_floats, record_len};
    expect_pickle_(p.b, p.n, &rec, 1, NULL, code, needle, file, line);
}
#define ARR(...) (const int64_t[]){__VA_ARGS__}, sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)
#define EXPECT_TENSOR(numel, off, sizes, strides, rec_len, code, needle) \
    expect_tensor_(numel, off, sizes, strides, rec_len, code, needle, __FILE__, __LINE__)

START_TEST(storage_record_size)
{
    EXPECT_TENSOR(4, 0, ARR(4), ARR(1), 16, CKPT_OK, NULL);
    EXPECT_TENSOR(4, 0, ARR(4), ARR(1), 15, CKPT_ERR_TENSOR, "has 15 bytes, but the pickle declares 4 elements of float32 (16 bytes)");
    EXPECT_TENSOR(4, 0, ARR(2), ARR(1), 12, CKPT_ERR_TENSOR, "has 12 bytes");
    EXPECT_TENSOR(3, 0, ARR(2), ARR(1), 16, CKPT_ERR_TENSOR, "has 16 bytes, but the pickle declares 3 elements");
    EXPECT_TENSOR(0, 0, ARR(0), ARR(1), 16, CKPT_ERR_TENSOR, "has 16 bytes");
    /* the record is missing */
    pk p;
    tensor_pickle(&p, 4, 0, ARR(4), ARR(1));
    expect_pickle_(p.b, p.n, NULL, 0, NULL, CKPT_ERR_TENSOR, "storage record 'archive/data/0' is missing", __FILE__, __LINE__);
    tst_record other = {"data/1", four_floats, 16};
    expect_pickle_(p.b, p.n, &other, 1, NULL, CKPT_ERR_TENSOR, "is missing", __FILE__, __LINE__);
    /* metadata-only loads still require the record, with the right size */
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_load_options_set_flags(o, CKPT_LOAD_SKIP_DATA);
    expect_pickle_(p.b, p.n, NULL, 0, o, CKPT_ERR_TENSOR, "is missing", __FILE__, __LINE__);
    tst_record short_rec = {"data/0", four_floats, 8};
    expect_pickle_(p.b, p.n, &short_rec, 1, o, CKPT_ERR_TENSOR, "has 8 bytes", __FILE__, __LINE__);
    ckpt_load_options_free(o);
}
END_TEST

START_TEST(storage_numel_overflow)
{
    /* numel x itemsize does not fit in 64 bits (or in int64): refused before any record is read */
    EXPECT_TENSOR(INT64_C(1) << 62, 0, ARR(1), ARR(1), 16, CKPT_ERR_TENSOR, "overflows");
    EXPECT_TENSOR(INT64_C(1) << 61, 0, ARR(1), ARR(1), 16, CKPT_ERR_TENSOR, "overflows");
    EXPECT_TENSOR(INT64_MAX, 0, ARR(1), ARR(1), 16, CKPT_ERR_TENSOR, "overflows");
    EXPECT_TENSOR(-1, 0, ARR(1), ARR(1), 16, CKPT_ERR_PICKLE, "numel must be a non-negative");
    /* a huge but representable storage with a tiny record: a size mismatch, nothing allocated */
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_ALLOC, 1u << 20);
    pk p;
    tensor_pickle(&p, INT64_C(1) << 40, 0, ARR(4), ARR(1));
    tst_record rec = {"data/0", four_floats, 16};
    expect_pickle_(p.b, p.n, &rec, 1, o, CKPT_ERR_TENSOR, "has 16 bytes", __FILE__, __LINE__);
    ckpt_load_options_free(o);
}
END_TEST

START_TEST(tensor_outside_storage)
{
    /* a storage of 4 floats */
    EXPECT_TENSOR(4, 0, ARR(2, 2), ARR(2, 1), 16, CKPT_OK, NULL);
    EXPECT_TENSOR(4, 3, ARR(1), ARR(1), 16, CKPT_OK, NULL);
    EXPECT_TENSOR(4, 0, ARR(2, 2), ARR(1, 2), 16, CKPT_OK, NULL);         /* transposed */
    EXPECT_TENSOR(4, 0, ARR(5), ARR(0), 16, CKPT_OK, NULL);               /* expanded: stride 0 */
    EXPECT_TENSOR(4, 4, ARR(0), ARR(1), 16, CKPT_OK, NULL);               /* empty, offset at the end */
    EXPECT_TENSOR(4, 0, ARR(3, 0, 5), ARR(INT64_MAX, 1, INT64_MAX), 16, CKPT_OK, NULL); /* no element exists */
    EXPECT_TENSOR(4, 0, ARR(5), ARR(1), 16, CKPT_ERR_TENSOR, "extends past storage");
    EXPECT_TENSOR(4, 1, ARR(4), ARR(1), 16, CKPT_ERR_TENSOR, "extends past storage");
    EXPECT_TENSOR(4, 0, ARR(2, 2), ARR(3, 1), 16, CKPT_ERR_TENSOR, "extends past storage");
    EXPECT_TENSOR(4, 4, ARR(1), ARR(1), 16, CKPT_ERR_TENSOR, "extends past storage");
    EXPECT_TENSOR(4, 3, ARR(), ARR(), 16, CKPT_OK, NULL);                 /* 0-dim */
    EXPECT_TENSOR(4, 4, ARR(), ARR(), 16, CKPT_ERR_TENSOR, "extends past storage");
    /* an empty tensor's offset must still be inside the storage, however large */
    EXPECT_TENSOR(4, 5, ARR(0), ARR(1), 16, CKPT_ERR_TENSOR, "storage offset 5 is outside");
    EXPECT_TENSOR(4, INT64_C(1) << 62, ARR(0), ARR(1), 16, CKPT_ERR_TENSOR, "is outside storage");
    EXPECT_TENSOR(4, INT64_MAX, ARR(3, 0), ARR(1, 1), 16, CKPT_ERR_TENSOR, "is outside storage");
    /* negative sizes, strides and offsets */
    EXPECT_TENSOR(4, 0, ARR(2), ARR(-1), 16, CKPT_ERR_TENSOR, "negative stride");
    EXPECT_TENSOR(4, 3, ARR(4), ARR(-1), 16, CKPT_ERR_TENSOR, "negative stride");
    EXPECT_TENSOR(4, 0, ARR(-1), ARR(1), 16, CKPT_ERR_TENSOR, "negative size");
    EXPECT_TENSOR(4, -1, ARR(1), ARR(1), 16, CKPT_ERR_TENSOR, "negative storage offset");
    /* arithmetic that wraps */
    EXPECT_TENSOR(4, 0, ARR(2), ARR(INT64_C(1) << 62), 16, CKPT_ERR_TENSOR, NULL);
    EXPECT_TENSOR(4, 0, ARR(INT64_C(1) << 32, INT64_C(1) << 32), ARR(0, 0), 16, CKPT_ERR_TENSOR, "overflows");
    EXPECT_TENSOR(4, 0, ARR(INT64_MAX, 2), ARR(0, 0), 16, CKPT_ERR_TENSOR, "overflows");
    EXPECT_TENSOR(4, 0, ARR(INT64_MAX), ARR(1), 16, CKPT_ERR_TENSOR, NULL);
    EXPECT_TENSOR(4, 2, ARR(2), ARR(INT64_MAX), 16, CKPT_ERR_TENSOR, NULL);
    /* sizes and strides must pair up */
    EXPECT_TENSOR(4, 0, ARR(2, 2), ARR(1), 16, CKPT_ERR_TENSOR, "2 sizes but 1 strides");
}
END_TEST

START_TEST(tensor_dims_limit)
{
    int64_t sizes[65], strides[65];
    for (int i = 0; i < 65; i++) sizes[i] = 1, strides[i] = 1;
    expect_tensor_(4, 0, sizes, 64, strides, 64, 16, CKPT_OK, NULL, __FILE__, __LINE__);
    expect_tensor_(4, 0, sizes, 65, strides, 65, 16, CKPT_ERR_LIMIT, "CKPT_LIMIT_MAX_NDIM", __FILE__, __LINE__);
}
END_TEST

/* ---- persistent ids: ('storage', storage type or dtype, key, location, numel) ---- */

#define PID_HEAD "\x80\x02("
#define PID_TAG "X\x07\x00\x00\x00" "storage"
#define PID_TYPE "ctorch\nFloatStorage\n"
#define PID_KEY "X\x01\x00\x00\x00" "0"
#define PID_LOC "X\x03\x00\x00\x00" "cpu"
#define PID_NUMEL "K\x04"

START_TEST(persistent_id_rules)
{
    tst_record rec = {"data/0", four_floats, 16};
#define PID_OK(lit) expect_pickle_(TST_PKL(lit), &rec, 1, NULL, CKPT_OK, NULL, __FILE__, __LINE__)
#define PID_BAD(lit, code, needle) expect_pickle_(TST_PKL(lit), &rec, 1, NULL, code, needle, __FILE__, __LINE__)
    PID_OK(PID_HEAD PID_TAG PID_TYPE PID_KEY PID_LOC PID_NUMEL "tQ.");
    /* the tag may be bytes (torch decodes it as ASCII), the type a dtype; the location any string */
    PID_OK(PID_HEAD "C\x07" "storage" PID_TYPE PID_KEY PID_LOC PID_NUMEL "tQ.");
    PID_OK(PID_HEAD PID_TAG "ctorch\nfloat32\n" PID_KEY PID_LOC PID_NUMEL "tQ.");
    PID_OK(PID_HEAD PID_TAG PID_TYPE PID_KEY "X\x06\x00\x00\x00" "cuda:1" PID_NUMEL "tQ.");
    /* anything else is refused */
    PID_BAD(PID_HEAD "X\x07\x00\x00\x00" "Storage" PID_TYPE PID_KEY PID_LOC PID_NUMEL "tQ.", CKPT_ERR_PICKLE,
            "only 'storage' persistent ids");
    PID_BAD(PID_HEAD "X\x06\x00\x00\x00" "module" PID_TYPE PID_KEY PID_LOC PID_NUMEL "tQ.", CKPT_ERR_PICKLE,
            "only 'storage' persistent ids");
    PID_BAD(PID_HEAD PID_TAG PID_TYPE PID_KEY PID_LOC "tQ.", CKPT_ERR_PICKLE, "has 4 items");
    PID_BAD(PID_HEAD PID_TAG PID_TYPE PID_KEY PID_LOC PID_NUMEL "NtQ.", CKPT_ERR_PICKLE, "has 6 items"); /* legacy form */
    PID_BAD("\x80\x02]" PID_TAG "aQ.", CKPT_ERR_PICKLE, "must be a tuple");
    PID_BAD("\x80\x02K\x01Q.", CKPT_ERR_PICKLE, "must be a tuple");
    PID_BAD(PID_HEAD PID_TAG "ctorch\nSize\n" PID_KEY PID_LOC PID_NUMEL "tQ.", CKPT_ERR_PICKLE, "storage type must be");
    PID_BAD(PID_HEAD PID_TAG PID_KEY PID_KEY PID_LOC PID_NUMEL "tQ.", CKPT_ERR_PICKLE, "storage type must be");
    PID_BAD(PID_HEAD PID_TAG PID_TYPE "X\x04\x00\x00\x00" "../0" PID_LOC PID_NUMEL "tQ.", CKPT_ERR_PICKLE,
            "storage key must be");
    PID_BAD(PID_HEAD PID_TAG PID_TYPE "X\x00\x00\x00\x00" PID_LOC PID_NUMEL "tQ.", CKPT_ERR_PICKLE, "storage key must be");
    PID_BAD(PID_HEAD PID_TAG PID_TYPE "K\x00" PID_LOC PID_NUMEL "tQ.", CKPT_ERR_PICKLE, "storage key must be");
    PID_BAD(PID_HEAD PID_TAG PID_TYPE PID_KEY "N" PID_NUMEL "tQ.", CKPT_ERR_PICKLE, "location must be a string");
    PID_BAD(PID_HEAD PID_TAG PID_TYPE PID_KEY PID_LOC "G@\x10\x00\x00\x00\x00\x00\x00" "tQ.", CKPT_ERR_PICKLE,
            "numel must be");
    PID_BAD(PID_HEAD PID_TAG PID_TYPE PID_KEY PID_LOC "\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01" "tQ.",
            CKPT_ERR_PICKLE, "numel must be");
    /* the same key twice: one storage; with another type or size: refused */
    ckpt_checkpoint *ck = NULL;
    ck_assert_int_eq(tst_load_pickle(TST_PKL(PID_HEAD PID_TAG PID_TYPE PID_KEY PID_LOC PID_NUMEL "tQ" PID_HEAD PID_TAG
                                             PID_TYPE PID_KEY PID_LOC PID_NUMEL "tQ\x86."),
                                     &rec, 1, NULL, &ck, NULL),
                     CKPT_OK);
    const ckpt_value *r = ckpt_checkpoint_root(ck);
    ck_assert_ptr_eq(ckpt_value_item(r, 0), ckpt_value_item(r, 1));
    ckpt_checkpoint_free(ck);
    PID_BAD(PID_HEAD PID_TAG PID_TYPE PID_KEY PID_LOC PID_NUMEL "tQ" PID_HEAD PID_TAG "ctorch\nIntStorage\n" PID_KEY PID_LOC
            PID_NUMEL "tQ\x86.", CKPT_ERR_TENSOR, "named twice with different types or sizes");
    PID_BAD(PID_HEAD PID_TAG PID_TYPE PID_KEY PID_LOC PID_NUMEL "tQ" PID_HEAD PID_TAG PID_TYPE PID_KEY PID_LOC "K\x02"
            "tQ\x86.", CKPT_ERR_TENSOR, "named twice");
#undef PID_OK
#undef PID_BAD
}
END_TEST

/* torch compares the whole tag: 'storage' followed by a NUL and more is not 'storage'. */
START_TEST(persistent_id_tag_is_compared_whole)
{
    tst_record rec = {"data/0", four_floats, 16};
    expect_pickle_(TST_PKL(PID_HEAD "X\x09\x00\x00\x00" "storage\0x" PID_TYPE PID_KEY PID_LOC PID_NUMEL "tQ."), &rec, 1,
                   NULL, CKPT_ERR_PICKLE, "only 'storage' persistent ids", __FILE__, __LINE__);
    expect_pickle_(TST_PKL(PID_HEAD "C\x08" "storage\0" PID_TYPE PID_KEY PID_LOC PID_NUMEL "tQ."), &rec, 1, NULL,
                   CKPT_ERR_PICKLE, "only 'storage' persistent ids", __FILE__, __LINE__);
}
END_TEST

/*
 * torch._tensor._rebuild_from_type_v2(func, type, args, state) calls func(*args); with func being
 * _rebuild_from_type_v2 again, a small file could nest such calls 300000 deep. torch never writes that
 * (func is always a _rebuild_* function), and it must be refused, not recursed into.
 */
static size_t nested_rebuild_pickle(uint8_t *p, size_t levels)
{
    static const char head[] =
        "\x80\x02" "ctorch._tensor\n_rebuild_from_type_v2\nq\x00" "0"
        "ctorch\nTensor\nq\x01" "0"
        "ctorch._utils\n_rebuild_tensor_v2\nq\x02" "0"
        "((X\x07\x00\x00\x00" "storage" "ctorch\nFloatStorage\n" "X\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x04" "tQ"
        "K\x00" "K\x04\x85" "K\x01\x85\x89" "ccollections\nOrderedDict\n)Rtq\x03" "0"
        "(h\x02" "h\x01" "h\x03" "Ntq\x03" "0";
    static const char level[] = "(h\x00" "h\x01" "h\x03" "Ntq\x03" "0";
    static const char tail[] = "h\x00" "h\x03" "R.";
    size_t o = 0;
    memcpy(p + o, head, sizeof head - 1);
    o += sizeof head - 1;
    for (size_t i = 0; i < levels; i++) {
        memcpy(p + o, level, sizeof level - 1);
        o += sizeof level - 1;
    }
    memcpy(p + o, tail, sizeof tail - 1);
    return o + sizeof tail - 1;
}

START_TEST(nested_rebuild_from_type_refused)
{
    tst_record rec = {"data/0", four_floats, 16};
    uint8_t small[1024];
    /* no extra level: _rebuild_from_type_v2(_rebuild_tensor_v2, Tensor, args, None) is a tensor */
    size_t n = nested_rebuild_pickle(small, 0);
    ckpt_checkpoint *ck = NULL;
    ckpt_error *err = ckpt_error_new();
    ck_assert_msg(tst_load_pickle(small, n, &rec, 1, NULL, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    ck_assert_int_eq(ckpt_value_kind(ckpt_checkpoint_root(ck)), CKPT_KIND_TENSOR);
    ckpt_checkpoint_free(ck);
    /* one level of nesting is already refused */
    n = nested_rebuild_pickle(small, 1);
    expect_pickle_(small, n, &rec, 1, NULL, CKPT_ERR_PICKLE, "_rebuild_from_type_v2", __FILE__, __LINE__);
    /* and a deep nest is refused the same way (it used to overflow the C stack) */
    size_t levels = 300000;
    uint8_t *big = malloc(1024 + levels * 12);
    n = nested_rebuild_pickle(big, levels);
    expect_pickle_(big, n, &rec, 1, NULL, CKPT_ERR_PICKLE, "_rebuild_from_type_v2", __FILE__, __LINE__);
    free(big);
    ckpt_error_free(err);
}
END_TEST

/* ---- the torch records around data.pkl ---- */

static void expect_zip_(const tst_record *m, size_t n, ckpt_status code, const char *needle, const char *file, int line)
{
    size_t len;
    uint8_t *z = tst_make_zip(m, n, &len);
    expect_(z, len, NULL, code, needle, file, line);
    free(z);
}
#define EXPECT_ZIP(code, needle, ...)                                                                        \
    expect_zip_((const tst_record[]){__VA_ARGS__}, sizeof((const tst_record[]){__VA_ARGS__}) / sizeof(tst_record), \
                code, needle, __FILE__, __LINE__)

START_TEST(container_records)
{
    const tst_record pkl = {"a/data.pkl", "N.", 2};
    EXPECT_ZIP(CKPT_OK, NULL, pkl, {"a/version", "3\n", 2});
    EXPECT_ZIP(CKPT_OK, NULL, pkl, {"a/version", "10", 2});
    EXPECT_ZIP(CKPT_OK, NULL, pkl, {"a/.data/version", "6\n", 2}, {"a/version", "99\n", 3}); /* .data/version wins */
    EXPECT_ZIP(CKPT_ERR_UNSUPPORTED, "file format version '11'", pkl, {"a/version", "11", 2});
    EXPECT_ZIP(CKPT_ERR_UNSUPPORTED, "file format version '0'", pkl, {"a/version", "0", 1});
    EXPECT_ZIP(CKPT_ERR_UNSUPPORTED, "PyTorch reads 1 to 10", pkl, {"a/version", "x3", 2});
    EXPECT_ZIP(CKPT_ERR_UNSUPPORTED, "PyTorch reads 1 to 10", pkl, {"a/.data/version", "99", 2}, {"a/version", "3", 1});
    static char big[5000];
    memset(big, '3', sizeof big);
    EXPECT_ZIP(CKPT_ERR_ZIP, "a few bytes expected", pkl, {"a/version", big, sizeof big});
    EXPECT_ZIP(CKPT_OK, NULL, pkl, {"a/byteorder", "little", 6}, {"a/version", "3", 1});
    EXPECT_ZIP(CKPT_OK, NULL, pkl, {"a/byteorder", "big", 3}, {"a/version", "3", 1});
    EXPECT_ZIP(CKPT_ERR_FORMAT, "must be 'little' or 'big'", pkl, {"a/byteorder", "middle", 6}, {"a/version", "3", 1});
    EXPECT_ZIP(CKPT_ERR_FORMAT, "must be 'little' or 'big'", pkl, {"a/byteorder", "little\n", 7}, {"a/version", "3", 1});
    /* every member shares the first member's folder, exactly (PyTorch refuses others) */
    EXPECT_ZIP(CKPT_ERR_FORMAT, "zip member 'b/x' is outside the archive folder 'a/'", pkl, {"a/version", "3", 1}, {"b/x", "", 0});
    EXPECT_ZIP(CKPT_ERR_FORMAT, "outside the archive folder", pkl, {"a/version", "3", 1}, {"A/x", "", 0});
    EXPECT_ZIP(CKPT_ERR_FORMAT, "outside the archive folder", pkl, {"a/version", "3", 1}, {"a", "", 0});
    EXPECT_ZIP(CKPT_ERR_FORMAT, "not in a folder", {"/data.pkl", "N.", 2}, {"/version", "3", 1});
    /* TorchScript archives carry code: refused, with the reason */
    EXPECT_ZIP(CKPT_ERR_UNSUPPORTED, "TorchScript archive", pkl, {"a/constants.pkl", "N.", 2}, {"a/version", "3", 1});
    EXPECT_ZIP(CKPT_ERR_UNSUPPORTED, "CVE-2025-32434", pkl, {"a/code/__torch__.py", "x", 1}, {"a/version", "3", 1});
}
END_TEST

/* byteorder 'big': data is returned in host order, and digests are those of the same values. */
START_TEST(big_endian_records)
{
    static const char pkl[] =
        "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n("
        "(X\x07\x00\x00\x00" "storage" "ctorch\nIntStorage\n" "X\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x02" "tQ"
        "K\x00" "K\x02\x85" "K\x01\x85\x89" "ccollections\nOrderedDict\n)RtR.";
    static const uint8_t be[8] = {0, 0, 0, 1, 0, 0, 1, 2};
    static const uint8_t le[8] = {1, 0, 0, 0, 2, 1, 0, 0};
    const tst_record big[] = {{"a/data.pkl", pkl, sizeof pkl - 1}, {"a/byteorder", "big", 3}, {"a/data/0", be, 8},
                              {"a/version", "3", 1}};
    const tst_record little[] = {{"a/data.pkl", pkl, sizeof pkl - 1}, {"a/byteorder", "little", 6}, {"a/data/0", le, 8},
                                 {"a/version", "3", 1}};
    uint64_t digests[2];
    for (int k = 0; k < 2; k++) {
        for (unsigned flags = 0; flags <= CKPT_LOAD_BORROW; flags += CKPT_LOAD_BORROW) {
            size_t len;
            uint8_t *z = tst_make_zip(k ? big : little, 4, &len);
            ckpt_load_options *o = ckpt_load_options_new();
            ckpt_load_options_set_flags(o, flags);
            ckpt_checkpoint *ck = NULL;
            ckpt_error *err = ckpt_error_new();
            ck_assert_msg(ckpt_load_memory(z, len, o, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
            ck_assert(ckpt_checkpoint_big_endian(ck) == (k == 1));
            const ckpt_tensor *t = ckpt_value_tensor(ckpt_checkpoint_root(ck));
            const int32_t *v = ckpt_tensor_data(t);
            ck_assert_int_eq(v[0], 1);
            ck_assert_int_eq(v[1], 258);
            ck_assert_int_eq(ckpt_tensor_xxh3_64(t, &digests[k], NULL), CKPT_OK);
            ckpt_checkpoint_free(ck);
            ckpt_error_free(err);
            ckpt_load_options_free(o);
            free(z);
        }
    }
    ck_assert_uint_eq(digests[0], digests[1]);
}
END_TEST

/*
 * Dotted paths repeat every key above a node, so a long key reused (through the memo) at every level
 * of a deep nest makes paths grow with the depth and the JSON document with its square: 118 KB of
 * pickle (a 100 KB key, 990 levels) made `ckpt inspect --json` use 23 GB. Paths are capped at 1 MiB
 * and the JSON document at the load's allocation limit.
 */
static uint8_t *long_key_nest(size_t klen, uint32_t depth, size_t *n)
{
    uint8_t *p = malloc(klen + depth * 20 + 64);
    size_t o = 0;
    p[o++] = 0x80;
    p[o++] = 2;
    p[o++] = 'X';
    for (int k = 0; k < 4; k++) p[o++] = (uint8_t)(klen >> (8 * k));
    memset(p + o, 'k', klen);
    o += klen;
    memcpy(p + o, "q\x00" "0}q\x01" "0", 7); /* memo 0: the key; memo 1: the innermost dict */
    o += 7;
    for (uint32_t i = 0; i < depth; i++) {
        memcpy(p + o, "}h\x00" "h\x01" "sq\x01" "0", 9); /* {key: previous}, becomes memo 1 */
        o += 9;
    }
    memcpy(p + o, "h\x01" ".", 3);
    *n = o + 3;
    return p;
}

START_TEST(long_paths_bounded)
{
    /* a modest nest loads and its JSON is complete */
    size_t n;
    uint8_t *p = long_key_nest(1000, 20, &n);
    ckpt_checkpoint *ck = NULL;
    ckpt_error *err = ckpt_error_new();
    ck_assert_msg(tst_load_pickle(p, n, NULL, 0, NULL, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    char *text = NULL;
    ck_assert_int_eq(ckpt_checkpoint_to_json(ck, "x", 0, &text, err), CKPT_OK);
    ck_assert_uint_gt(strlen(text), 20 * 21 / 2 * 1000);
    ckpt_free(text);
    ckpt_checkpoint_free(ck);
    free(p);
    /* paths beyond 1 MiB: the load (which indexes tensors by path) fails cleanly */
    p = long_key_nest(100000, 990, &n);
    ck_assert_int_eq(tst_load_pickle(p, n, NULL, 0, NULL, &ck, err), CKPT_ERR_LIMIT);
    ck_assert_msg(strstr(ckpt_error_message(err), "dotted path longer than") != NULL, "%s", ckpt_error_message(err));
    free(p);
    /* paths under the cap, but a JSON document far larger than the load's allocation limit */
    p = long_key_nest(1000, 300, &n);
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_ALLOC, 8u << 20);
    ck_assert_msg(tst_load_pickle(p, n, NULL, 0, o, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    text = NULL;
    ck_assert_int_eq(ckpt_checkpoint_to_json(ck, "x", 0, &text, err), CKPT_ERR_LIMIT);
    ck_assert_ptr_null(text);
    ck_assert_msg(strstr(ckpt_error_message(err), "CKPT_LIMIT_MAX_ALLOC") != NULL, "%s", ckpt_error_message(err));
    ckpt_checkpoint_free(ck);
    ckpt_load_options_free(o);
    ckpt_error_free(err);
    free(p);
}
END_TEST

/* ---- not a checkpoint ---- */

START_TEST(not_a_checkpoint)
{
    EXPECT("", 0, CKPT_ERR_FORMAT, "an empty file");
    EXPECT("hello, world\n", 13, CKPT_ERR_FORMAT, "a text file");
    static const char html[] = "\n  <!DOCTYPE html>\n<html><head><title>404</title></head><body>Not found</body></html>\n";
    EXPECT(html, sizeof html - 1, CKPT_ERR_FORMAT, "an HTML page");
    static const char lfs[] = "version https://git-lfs.github.com/spec/v1\n"
                              "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n";
    EXPECT(lfs, sizeof lfs - 1, CKPT_ERR_FORMAT, "a Git LFS pointer");
    static const char json[] = "{\"error\": \"not found\"}";
    EXPECT(json, sizeof json - 1, CKPT_ERR_FORMAT, "a JSON document");
    static const char xml[] = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code></Error>";
    EXPECT(xml, sizeof xml - 1, CKPT_ERR_FORMAT, "an XML document");
    /* the legacy format's first pickles (magic number, protocol version), then nothing: read as legacy */
    static const char legacy[] = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19" ".\x80\x02M\xe9\x03" ".";
    EXPECT(legacy, sizeof legacy - 1, CKPT_ERR_PICKLE, "legacy sys_info");
    uint8_t tar[1024] = {0};
    memcpy(tar, "storages", 8);
    memcpy(tar + 257, "ustar\0" "00", 8);
    EXPECT(tar, sizeof tar, CKPT_ERR_FORMAT, "tar header checksum");
    /* safetensors files load (test_safetensors.c); a truncated one is named by its header */
    static const char st[] = "\x3d\x00\x00\x00\x00\x00\x00\x00" "{\"__metadata__\":{\"a\":\"b\"}}   ";
    EXPECT(st, sizeof st - 1, CKPT_ERR_FORMAT, "safetensors header");
    static const char npy[] = "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
    EXPECT(npy, sizeof npy - 1, CKPT_ERR_FORMAT, "a NumPy .npy array");
    static const char gz[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03";
    EXPECT(gz, sizeof gz - 1, CKPT_ERR_FORMAT, "gzip");
    static const char bare[] = "\x80\x02}q\x00.";
    EXPECT(bare, sizeof bare - 1, CKPT_ERR_FORMAT, "a bare pickle (protocol 2)");
    static const char preview[] = "PYTORCH1 and then some bytes";
    EXPECT(preview, sizeof preview - 1, CKPT_ERR_FORMAT, "preview-release");
    static const uint8_t bin[] = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x01};
    EXPECT(bin, sizeof bin, CKPT_ERR_FORMAT, "unrecognised binary data (starts with de ad be ef)");
    /* zips that are not checkpoints */
    tst_record one = {"readme.txt", "hi", 2};
    size_t zlen;
    uint8_t *z = tst_make_zip(&one, 1, &zlen);
    EXPECT(z, zlen, CKPT_ERR_FORMAT, "not in a folder");
    free(z);
    z = tst_make_zip(NULL, 0, &zlen);
    EXPECT(z, zlen, CKPT_ERR_FORMAT, "empty");
    free(z);
    tst_record noversion = {"a/data.pkl", "N.", 2};
    z = tst_make_zip(&noversion, 1, &zlen);
    EXPECT(z, zlen, CKPT_ERR_FORMAT, "no 'a/version' record");
    free(z);
    tst_record nopickle = {"a/version", "3\n", 2};
    z = tst_make_zip(&nopickle, 1, &zlen);
    EXPECT(z, zlen, CKPT_ERR_FORMAT, "no 'a/data.pkl' record");
    free(z);
}
END_TEST

START_TEST(file_errors)
{
    ckpt_error *err = ckpt_error_new();
    ckpt_checkpoint *ck = NULL;
    ck_assert_int_eq(ckpt_load_file("/nonexistent/dir/model.pt", NULL, &ck, err), CKPT_ERR_IO);
    ck_assert_ptr_null(ck);
    ck_assert_ptr_nonnull(strstr(ckpt_error_message(err), "/nonexistent/dir/model.pt"));
    ck_assert_int_eq(ckpt_load_file(tst_path("fixtures"), NULL, &ck, err), CKPT_ERR_IO);
    ck_assert_ptr_nonnull(strstr(ckpt_error_message(err), "is a directory"));
    char path[256];
    snprintf(path, sizeof path, "%s/ckpt_malformed_%ld_empty.pt", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (long)getpid());
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(ckpt_load_file(path, NULL, &ck, err), CKPT_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(ckpt_error_message(err), "an empty file"));
    unlink(path);
    ckpt_error_free(err);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("malformed");
    TCase *tc = tcase_create("truncation");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, truncated_file_every_offset, 0, (int)N_TRUNC);
    tcase_add_loop_test(tc, truncated_pickle_every_offset, 0, (int)N_TRUNC);
    suite_add_tcase(s, tc);
    tc = tcase_create("content");
    tcase_add_test(tc, stack_and_memo_errors);
    tcase_add_test(tc, lying_length_fields);
    tcase_add_test(tc, text_decoding_is_budgeted);
    tcase_add_test(tc, storage_record_size);
    tcase_add_test(tc, storage_numel_overflow);
    tcase_add_test(tc, tensor_outside_storage);
    tcase_add_test(tc, tensor_dims_limit);
    tcase_add_test(tc, nested_rebuild_from_type_refused);
    tcase_add_test(tc, persistent_id_rules);
    tcase_add_test(tc, persistent_id_tag_is_compared_whole);
    tcase_add_test(tc, long_paths_bounded);
    tcase_add_test(tc, container_records);
    tcase_add_test(tc, big_endian_records);
    tcase_add_test(tc, not_a_checkpoint);
    tcase_add_test(tc, file_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tst_run(suite()); }
