/*
 * test_formats.c: the formats other than the torch.save zip (legacy stream, tar, TorchScript read as
 * data), big-endian files, and the tensor kinds beyond plain strided tensors (quantized, sparse, meta,
 * v3 dtypes, subclasses, device rebuilds). The fixtures' values are checked against torch by
 * test_fixtures; this suite checks the API, the refusals and malformed inputs, and the external corpus.
 */
#include <dirent.h>
#include <fnmatch.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

/* ---- a small pickle builder (protocol 2, the opcodes torch's pickler uses) ---- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} pk;

static void pk_raw(pk *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}
static void pk_op(pk *b, char op) { pk_raw(b, &op, 1); }
static void pk_init(pk *b)
{
    memset(b, 0, sizeof *b);
    pk_raw(b, "\x80\x02", 2);
}
static void pk_global(pk *b, const char *mod, const char *name)
{
    pk_op(b, 'c');
    pk_raw(b, mod, strlen(mod));
    pk_op(b, '\n');
    pk_raw(b, name, strlen(name));
    pk_op(b, '\n');
}
static void pk_int(pk *b, int64_t v)
{
    if (v >= 0 && v < 256) {
        uint8_t x[2] = {'K', (uint8_t)v};
        pk_raw(b, x, 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        uint32_t u = (uint32_t)(int32_t)v;
        uint8_t x[5] = {'J', (uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
        pk_raw(b, x, 5);
    } else {
        uint8_t x[10] = {0x8a, 8};
        for (int i = 0; i < 8; i++) x[2 + i] = (uint8_t)((uint64_t)v >> (8 * i));
        pk_raw(b, x, 10);
    }
}
static void pk_str(pk *b, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    uint8_t x[5] = {'X', (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    pk_raw(b, x, 5);
    pk_raw(b, s, n);
}
static void pk_float(pk *b, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    uint8_t x[9] = {'G'};
    for (int i = 0; i < 8; i++) x[1 + i] = (uint8_t)(u >> (56 - 8 * i));
    pk_raw(b, x, 9);
}
static void pk_bool(pk *b, bool v) { pk_op(b, v ? '\x88' : '\x89'); }
static void pk_ints(pk *b, size_t n, const int64_t *v)
{
    pk_op(b, '(');
    for (size_t i = 0; i < n; i++) pk_int(b, v[i]);
    pk_op(b, 't');
}
static void pk_float_list(pk *b, size_t n, const double *v)
{
    pk_raw(b, "](", 2);
    for (size_t i = 0; i < n; i++) pk_float(b, v[i]);
    pk_op(b, 'e');
}
static void pk_int_list(pk *b, size_t n, const int64_t *v)
{
    pk_raw(b, "](", 2);
    for (size_t i = 0; i < n; i++) pk_int(b, v[i]);
    pk_op(b, 'e');
}
static void pk_odict(pk *b)
{
    pk_global(b, "collections", "OrderedDict");
    pk_op(b, ')');
    pk_op(b, 'R');
}
static void pk_pid(pk *b, const char *mod, const char *cls, const char *key, int64_t numel)
{
    pk_op(b, '(');
    pk_str(b, "storage");
    pk_global(b, mod, cls);
    pk_str(b, key);
    pk_str(b, "cpu");
    pk_int(b, numel);
    pk_op(b, 't');
    pk_op(b, 'Q');
}
/* _rebuild_tensor_v2 / _v3 call of a contiguous 1-D or 2-D tensor */
static void pk_tensor(pk *b, const char *cls, const char *key, int64_t numel, size_t ndim, const int64_t *shape,
                      const int64_t *stride, int64_t offset, const char *v3_dtype)
{
    pk_global(b, "torch._utils", v3_dtype ? "_rebuild_tensor_v3" : "_rebuild_tensor_v2");
    pk_op(b, '(');
    if (v3_dtype) pk_pid(b, "torch.storage", "UntypedStorage", key, numel);
    else pk_pid(b, "torch", cls, key, numel);
    pk_int(b, offset);
    pk_ints(b, ndim, shape);
    pk_ints(b, ndim, stride);
    pk_bool(b, false);
    pk_odict(b);
    if (v3_dtype) pk_global(b, "torch", v3_dtype);
    pk_op(b, 't');
    pk_op(b, 'R');
}
static void pk_vec(pk *b, const char *cls, const char *key, int64_t n)
{
    int64_t shape[1] = {n}, stride[1] = {1};
    pk_tensor(b, cls, key, n, 1, shape, stride, 0, NULL);
}
static void pk_layout(pk *b, const char *layout)
{
    pk_global(b, "torch.serialization", "_get_layout");
    pk_op(b, '(');
    pk_str(b, layout);
    pk_op(b, 't');
    pk_op(b, 'R');
}
static void pk_stop(pk *b) { pk_op(b, '.'); }

/* ---- helpers ---- */

static const char *fixture(const char *name)
{
    static __thread char buf[4096];
    const char *d = getenv("CKPT_FIXTURE_DIR");
    snprintf(buf, sizeof buf, "%s/%s", d ? d : tst_path("fixtures/data"), name);
    return buf;
}

static ckpt_checkpoint *load_flags(const char *path, unsigned flags, const ckpt_registry *reg)
{
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_load_options_set_flags(o, flags);
    if (reg) ckpt_load_options_set_registry(o, reg);
    ckpt_error *err = ckpt_error_new();
    ckpt_checkpoint *ck = NULL;
    ckpt_status s = ckpt_load_file(path, o, &ck, err);
    ck_assert_msg(s == CKPT_OK, "%s: %s", path, ckpt_error_message(err));
    ckpt_error_free(err);
    ckpt_load_options_free(o);
    return ck;
}

static ckpt_status load_mem(const void *data, size_t len, unsigned flags, const ckpt_registry *reg,
                            ckpt_checkpoint **out, ckpt_error *err)
{
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_load_options_set_flags(o, flags);
    if (reg) ckpt_load_options_set_registry(o, reg);
    ckpt_checkpoint *ck = NULL;
    ckpt_status s = ckpt_load_memory(data, len, o, &ck, err);
    ckpt_load_options_free(o);
    if (out) *out = ck;
    else ckpt_checkpoint_free(ck);
    return s;
}

static void *contiguous(const ckpt_tensor *t, size_t *n)
{
    *n = (size_t)ckpt_tensor_nbytes(t);
    void *p = malloc(*n ? *n : 1);
    ck_assert_int_eq(ckpt_tensor_copy_contiguous(t, p, *n, NULL), CKPT_OK);
    return p;
}

/* Every tensor of a and b: same keys, dtypes, shapes and elements. */
static void assert_same_tensors(const ckpt_checkpoint *a, const ckpt_checkpoint *b)
{
    ck_assert_uint_eq(ckpt_checkpoint_num_tensors(a), ckpt_checkpoint_num_tensors(b));
    ck_assert_uint_gt(ckpt_checkpoint_num_tensors(a), 0);
    for (size_t i = 0; i < ckpt_checkpoint_num_tensors(a); i++) {
        const char *ka, *kb;
        const ckpt_tensor *ta = ckpt_checkpoint_tensor(a, i, &ka), *tb = ckpt_checkpoint_tensor(b, i, &kb);
        ck_assert_str_eq(ka, kb);
        ck_assert_int_eq(ckpt_tensor_dtype(ta), ckpt_tensor_dtype(tb));
        size_t na, nb;
        void *pa = contiguous(ta, &na), *pb = contiguous(tb, &nb);
        ck_assert_uint_eq(na, nb);
        ck_assert_msg(memcmp(pa, pb, na) == 0, "tensor '%s' differs", ka);
        free(pa);
        free(pb);
    }
}

/* A zip checkpoint (prefix "archive") from a pickle and storage records. */
static uint8_t *zip_of(pk *b, const tst_record *rec, size_t n, size_t *len)
{
    uint8_t *z = tst_make_checkpoint(b->p, b->len, rec, n, len);
    free(b->p);
    b->p = NULL;
    return z;
}

static void assert_zip_fails(pk *b, const tst_record *rec, size_t n, ckpt_status code, const char *needle)
{
    size_t len;
    uint8_t *z = zip_of(b, rec, n, &len);
    tst_assert_load_fails(z, len, code, needle);
    free(z);
}

/* ---- legacy stream ---- */

static const uint8_t magic_pickle[15] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};

/* magic, 1001, sys_info (little_endian as given, type sizes), then the object pickle `obj`. */
static void legacy_head(pk *out, bool little, int64_t int_size, int64_t version)
{
    memset(out, 0, sizeof *out);
    pk_raw(out, magic_pickle, sizeof magic_pickle);
    pk_raw(out, "\x80\x02", 2);
    pk_int(out, version);
    pk_stop(out);
    pk_raw(out, "\x80\x02}(", 4);
    pk_str(out, "protocol_version");
    pk_int(out, 1001);
    pk_str(out, "little_endian");
    pk_bool(out, little);
    pk_str(out, "type_sizes");
    pk_raw(out, "}(", 2);
    pk_str(out, "short");
    pk_int(out, 2);
    pk_str(out, "int");
    pk_int(out, int_size);
    pk_str(out, "long");
    pk_int(out, 4);
    pk_raw(out, "uu", 2);
    pk_stop(out);
}

static void legacy_pid(pk *b, const char *key, int64_t numel, const char *view_key, int64_t off, int64_t n)
{
    pk_op(b, '(');
    pk_str(b, "storage");
    pk_global(b, "torch", "FloatStorage");
    pk_str(b, key);
    pk_str(b, "cpu");
    pk_int(b, numel);
    if (view_key) {
        pk_op(b, '(');
        pk_str(b, view_key);
        pk_int(b, off);
        pk_int(b, n);
        pk_op(b, 't');
    } else {
        pk_op(b, 'N');
    }
    pk_op(b, 't');
    pk_op(b, 'Q');
}

/* {"t": _rebuild_tensor(pid, 0, (n,), (1,))} for a FloatStorage "10" of `numel` (or its view). */
static void legacy_object(pk *b, int64_t numel, const char *view_key, int64_t off, int64_t n)
{
    pk_raw(b, "\x80\x02}", 3);
    pk_str(b, "t");
    pk_global(b, "torch._utils", "_rebuild_tensor");
    pk_op(b, '(');
    legacy_pid(b, "10", numel, view_key, off, n);
    pk_int(b, 0);
    int64_t shape[1] = {view_key ? n : numel}, stride[1] = {1};
    pk_ints(b, 1, shape);
    pk_ints(b, 1, stride);
    pk_op(b, 't');
    pk_op(b, 'R');
    pk_op(b, 's');
    pk_stop(b);
}

static void legacy_keys(pk *b, int nkeys, const char *const *keys)
{
    pk_raw(b, "\x80\x02]", 3);
    if (nkeys) {
        pk_op(b, '(');
        for (int i = 0; i < nkeys; i++) pk_str(b, keys[i]);
        pk_op(b, 'e');
    }
    pk_stop(b);
}

static void legacy_storage(pk *b, uint64_t count, bool big_endian_count, size_t nfloats)
{
    uint8_t c[8];
    for (int i = 0; i < 8; i++) c[big_endian_count ? 7 - i : i] = (uint8_t)(count >> (8 * i));
    pk_raw(b, c, 8);
    for (size_t i = 0; i < nfloats; i++) {
        float f = (float)i + 0.5f;
        pk_raw(b, &f, 4);
    }
}

/* A complete, valid legacy stream: one FloatStorage "10" of 6 floats. */
static void legacy_valid(pk *b)
{
    legacy_head(b, true, 4, 1001);
    legacy_object(b, 6, NULL, 0, 0);
    const char *keys[] = {"10"};
    legacy_keys(b, 1, keys);
    legacy_storage(b, 6, false, 6);
}

START_TEST(legacy_stream_built_by_hand)
{
    pk b;
    legacy_valid(&b);
    ckpt_checkpoint *ck;
    ckpt_error *err = ckpt_error_new();
    ck_assert_msg(load_mem(b.p, b.len, 0, NULL, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    ck_assert_int_eq(ckpt_checkpoint_format(ck), CKPT_FORMAT_LEGACY);
    ck_assert_str_eq(ckpt_checkpoint_archive_prefix(ck), "");
    const ckpt_tensor *t = ckpt_checkpoint_find_tensor(ck, "t");
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(ckpt_tensor_numel(t), 6);
    ck_assert_str_eq(ckpt_storage_key(ckpt_tensor_storage(t)), "10");
    ck_assert(((const float *)ckpt_tensor_data(t))[5] == 5.5f);
    ckpt_checkpoint_free(ck);
    /* borrow mode points into the caller's buffer */
    ck_assert_int_eq(load_mem(b.p, b.len, CKPT_LOAD_BORROW, NULL, &ck, err), CKPT_OK);
    const uint8_t *d = ckpt_tensor_data(ckpt_checkpoint_find_tensor(ck, "t"));
    ck_assert(d >= b.p && d + 24 <= b.p + b.len);
    ckpt_checkpoint_free(ck);
    /* metadata only */
    ck_assert_int_eq(load_mem(b.p, b.len, CKPT_LOAD_SKIP_DATA, NULL, &ck, err), CKPT_OK);
    ck_assert_ptr_null(ckpt_tensor_data(ckpt_checkpoint_find_tensor(ck, "t")));
    ckpt_checkpoint_free(ck);
    /* a trailing byte is hidden data; a missing one truncates the storage */
    pk_raw(&b, "", 1);
    tst_assert_load_fails(b.p, b.len, CKPT_ERR_FORMAT, "follow the last storage");
    tst_assert_load_fails(b.p, b.len - 2, CKPT_ERR_TENSOR, "truncated");
    tst_assert_load_fails(b.p, b.len - 1 - 24 - 4, CKPT_ERR_TENSOR, "element count");
    free(b.p);
    ckpt_error_free(err);
}
END_TEST

START_TEST(legacy_counts_and_sys_info)
{
    const char *keys[] = {"10"};
    pk b;
    /* a count that disagrees with the declared size is refused before the data is used */
    legacy_head(&b, true, 4, 1001);
    legacy_object(&b, 6, NULL, 0, 0);
    legacy_keys(&b, 1, keys);
    legacy_storage(&b, 7, false, 6);
    tst_assert_load_fails(b.p, b.len, CKPT_ERR_TENSOR, "element count of 7");
    free(b.p);
    /* big-endian counts (torch < 1.5 on big-endian hosts) only when sys_info says big-endian */
    legacy_head(&b, true, 4, 1001);
    legacy_object(&b, 6, NULL, 0, 0);
    legacy_keys(&b, 1, keys);
    legacy_storage(&b, 6, true, 6);
    tst_assert_load_fails(b.p, b.len, CKPT_ERR_TENSOR, "element count");
    free(b.p);
    legacy_head(&b, false, 4, 1001);
    legacy_object(&b, 6, NULL, 0, 0);
    legacy_keys(&b, 1, keys);
    legacy_storage(&b, 6, true, 6);
    ck_assert_int_eq(load_mem(b.p, b.len, 0, NULL, NULL, NULL), CKPT_OK);
    free(b.p);
    /* type sizes PyTorch never wrote; a protocol version it does not read */
    legacy_head(&b, true, 8, 1001);
    legacy_object(&b, 6, NULL, 0, 0);
    legacy_keys(&b, 1, keys);
    legacy_storage(&b, 6, false, 6);
    tst_assert_load_fails(b.p, b.len, CKPT_ERR_UNSUPPORTED, "C int has");
    free(b.p);
    legacy_head(&b, true, 4, 1000);
    tst_assert_load_fails(b.p, b.len, CKPT_ERR_UNSUPPORTED, "protocol version");
    free(b.p);
}
END_TEST

START_TEST(legacy_key_list)
{
    pk b;
    /* a storage the object uses but the list omits (torch would leave it uninitialised) */
    legacy_head(&b, true, 4, 1001);
    legacy_object(&b, 6, NULL, 0, 0);
    legacy_keys(&b, 0, NULL);
    tst_assert_load_fails(b.p, b.len, CKPT_ERR_TENSOR, "0 keys");
    free(b.p);
    /* listed twice, or unknown */
    const char *twice[] = {"10", "10"}, *other[] = {"11"};
    legacy_head(&b, true, 4, 1001);
    legacy_object(&b, 6, NULL, 0, 0);
    legacy_keys(&b, 2, twice);
    legacy_storage(&b, 6, false, 6);
    legacy_storage(&b, 6, false, 6);
    tst_assert_load_fails(b.p, b.len, CKPT_ERR_TENSOR, "2 keys");
    free(b.p);
    legacy_head(&b, true, 4, 1001);
    legacy_object(&b, 6, NULL, 0, 0);
    legacy_keys(&b, 1, other);
    legacy_storage(&b, 6, false, 6);
    tst_assert_load_fails(b.p, b.len, CKPT_ERR_TENSOR, "not a storage the object uses");
    free(b.p);
}
END_TEST

START_TEST(legacy_views)
{
    const char *keys[] = {"10"};
    pk b;
    legacy_head(&b, true, 4, 1001);
    legacy_object(&b, 6, "11", 2, 3);
    legacy_keys(&b, 1, keys);
    legacy_storage(&b, 6, false, 6);
    ckpt_checkpoint *ck;
    ckpt_error *err = ckpt_error_new();
    ck_assert_msg(load_mem(b.p, b.len, 0, NULL, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    const ckpt_tensor *t = ckpt_checkpoint_find_tensor(ck, "t");
    ck_assert_str_eq(ckpt_storage_key(ckpt_tensor_storage(t)), "11");
    ck_assert_uint_eq(ckpt_storage_nbytes(ckpt_tensor_storage(t)), 12);
    ck_assert(((const float *)ckpt_tensor_data(t))[0] == 2.5f);
    ckpt_checkpoint_free(ck);
    free(b.p);
    /* a view past the end of its root, and a tensor past the end of its view */
    legacy_head(&b, true, 4, 1001);
    legacy_object(&b, 6, "11", 4, 3);
    legacy_keys(&b, 1, keys);
    legacy_storage(&b, 6, false, 6);
    tst_assert_load_fails(b.p, b.len, CKPT_ERR_TENSOR, "extends past storage '10'");
    free(b.p);
    ckpt_error_free(err);
}
END_TEST

START_TEST(legacy_persistent_ids)
{
    /* an unknown tag, and a storage id without its view field */
    pk b;
    legacy_head(&b, true, 4, 1001);
    pk_raw(&b, "\x80\x02(", 3);
    pk_str(&b, "tensor");
    pk_op(&b, 't');
    pk_op(&b, 'Q');
    pk_stop(&b);
    tst_assert_load_fails(b.p, b.len, CKPT_ERR_PICKLE, "unknown persistent id type tensor");
    free(b.p);
    legacy_head(&b, true, 4, 1001);
    pk_raw(&b, "\x80\x02", 2);
    pk_pid(&b, "torch", "FloatStorage", "10", 6);
    pk_stop(&b);
    tst_assert_load_fails(b.p, b.len, CKPT_ERR_PICKLE, "view_metadata");
    free(b.p);
    /* a module class the registry allows is still a whole-model pickle: refused with a clear message */
    ckpt_registry *reg = ckpt_registry_new(0);
    const char *names[] = {"mypkg.Net"};
    ck_assert_int_eq(ckpt_registry_add_safe_globals(reg, names, 1, NULL), CKPT_OK);
    legacy_head(&b, true, 4, 1001);
    pk_raw(&b, "\x80\x02(", 3);
    pk_str(&b, "module");
    pk_global(&b, "mypkg", "Net");
    pk_str(&b, "/src/mypkg.py");
    pk_str(&b, "class Net: pass\n");
    pk_op(&b, 't');
    pk_op(&b, 'Q');
    pk_stop(&b);
    ckpt_error *err = ckpt_error_new();
    ck_assert_int_eq(load_mem(b.p, b.len, 0, reg, NULL, err), CKPT_ERR_BLOCKED);
    ck_assert_ptr_nonnull(strstr(ckpt_error_message(err), "whole-model pickle"));
    ck_assert_str_eq(ckpt_error_global(err), "mypkg.Net");
    ckpt_error_free(err);
    ckpt_registry_free(reg);
    free(b.p);
}
END_TEST

START_TEST(legacy_whole_model_fixture_is_refused)
{
    size_t len;
    uint8_t *data = tst_read_file(fixture("legacy_model.pth"), &len);
    ckpt_error *err = ckpt_error_new();
    ck_assert_int_eq(load_mem(data, len, 0, NULL, NULL, err), CKPT_ERR_BLOCKED);
    ck_assert_str_eq(ckpt_error_global(err), "torch.nn.modules.container.Sequential");
    ck_assert_msg(strstr(ckpt_error_message(err), "whole-model pickle") != NULL, "%s", ckpt_error_message(err));
    /* allowing the classes reaches the module persistent id, which weights-only mode refuses too */
    ckpt_registry *reg = ckpt_registry_new(0);
    const char *names[] = {"torch.nn.modules.container.Sequential", "torch.nn.modules.linear.Linear",
                           "torch.nn.modules.activation.ReLU"};
    ck_assert_int_eq(ckpt_registry_add_safe_globals(reg, names, 3, NULL), CKPT_OK);
    ck_assert_int_eq(load_mem(data, len, 0, reg, NULL, err), CKPT_ERR_BLOCKED);
    ck_assert_msg(strstr(ckpt_error_message(err), "whole-model pickle (torch.save(model))") != NULL, "%s",
                  ckpt_error_message(err));
    ckpt_registry_free(reg);
    ckpt_error_free(err);
    free(data);
}
END_TEST

START_TEST(legacy_fixtures_api)
{
    /* storage views of torch 0.4: a view shares its root's bytes; data in place with MMAP */
    ckpt_checkpoint *ck = load_flags(fixture("legacy_views.pt"), CKPT_LOAD_MMAP, NULL);
    ck_assert_int_eq(ckpt_checkpoint_format(ck), CKPT_FORMAT_LEGACY);
    const ckpt_tensor *whole = ckpt_checkpoint_find_tensor(ck, "whole"), *a = ckpt_checkpoint_find_tensor(ck, "view_a");
    const ckpt_tensor *a2 = ckpt_checkpoint_find_tensor(ck, "view_a_again");
    ck_assert_ptr_eq(ckpt_tensor_storage(a), ckpt_tensor_storage(a2));
    ck_assert_str_eq(ckpt_storage_key(ckpt_tensor_storage(a)), "1001");
    ck_assert_ptr_eq((const uint8_t *)ckpt_tensor_data(a), (const uint8_t *)ckpt_tensor_data(whole) + 3 * 4);
    ckpt_checkpoint_free(ck);
    /* the Hugging Face-style protocol-4 stream is found by its magic number, not its first bytes */
    ck = load_flags(fixture("legacy_protocol4.pt"), 0, NULL);
    ck_assert_int_eq(ckpt_checkpoint_format(ck), CKPT_FORMAT_LEGACY);
    ckpt_checkpoint *ck2 = load_flags(fixture("legacy_state_dict.pt"), 0, NULL);
    assert_same_tensors(ck, ck2);
    ckpt_checkpoint_free(ck2);
    ckpt_checkpoint_free(ck);
    /* a bare pickle whose first value is not the magic number stays "not a checkpoint" */
    tst_assert_load_fails("\x80\x04K\x07.", 5, CKPT_ERR_FORMAT, "bare pickle");
}
END_TEST

/* ---- tar ---- */

static void tar_fix_checksum(uint8_t *h)
{
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
}

START_TEST(tar_format)
{
    ckpt_checkpoint *ck = load_flags(fixture("tar_state_dict.pt"), 0, NULL);
    ck_assert_int_eq(ckpt_checkpoint_format(ck), CKPT_FORMAT_TAR);
    ck_assert_str_eq(ckpt_format_name(ckpt_checkpoint_format(ck)), "tar");
    const ckpt_tensor *w = ckpt_checkpoint_find_tensor(ck, "weight");
    ck_assert_ptr_eq(ckpt_checkpoint_find_tensor(ck, "same_weight"), w);    /* one tensor object */
    ck_assert_str_eq(ckpt_storage_key(ckpt_tensor_storage(ckpt_checkpoint_find_tensor(ck, "weight_view"))), "102");
    ckpt_checkpoint_free(ck);

    size_t len;
    uint8_t *data = tst_read_file(fixture("tar_state_dict.pt"), &len);
    uint8_t *m = malloc(len);
    /* header checksum */
    memcpy(m, data, len);
    m[0] ^= 1;
    tst_assert_load_fails(m, len, CKPT_ERR_FORMAT, "checksum");
    /* a member PyTorch's format does not have */
    memcpy(m, data, len);
    ck_assert_int_eq(memcmp(m, "sys_info", 8), 0);
    m[7] = 'x';
    tar_fix_checksum(m);
    tst_assert_load_fails(m, len, CKPT_ERR_FORMAT, "not part of a PyTorch checkpoint");
    /* data hidden after the end-of-archive marker */
    memcpy(m, data, len);
    m[len - 1] = 1;
    tst_assert_load_fails(m, len, CKPT_ERR_FORMAT, "after the tar end-of-archive");
    /* truncated */
    tst_assert_load_fails(data, 1536, CKPT_ERR_FORMAT, NULL);
    free(m);
    free(data);
}
END_TEST

/* ---- TorchScript ---- */

START_TEST(torchscript_archives)
{
    size_t len;
    uint8_t *data = tst_read_file(fixture("torchscript.pt"), &len);
    tst_assert_load_fails(data, len, CKPT_ERR_UNSUPPORTED, "TorchScript archive");
    tst_assert_load_fails(data, len, CKPT_ERR_UNSUPPORTED, "CKPT_LOAD_TORCHSCRIPT");
    free(data);
    ckpt_checkpoint *ck = load_flags(fixture("torchscript.pt"), CKPT_LOAD_TORCHSCRIPT, NULL);
    ck_assert_int_eq(ckpt_checkpoint_format(ck), CKPT_FORMAT_TORCHSCRIPT);
    const ckpt_value *root = ckpt_checkpoint_root(ck);
    ck_assert_int_eq(ckpt_value_kind(root), CKPT_KIND_OBJECT);
    ck_assert_str_eq(ckpt_value_type_name(root), "__torch__.libckpt_ts_fixture.Model");
    ck_assert_str_eq(ckpt_value_global_module(root), "__torch__.libckpt_ts_fixture");
    const ckpt_tensor *w = ckpt_checkpoint_find_tensor(ck, "block.fc.weight");
    ck_assert_ptr_nonnull(w);
    ck_assert_uint_eq(ckpt_tensor_ndim(w), 2);
    ck_assert_ptr_nonnull(ckpt_checkpoint_find_tensor(ck, "block.steps"));
    /* restore_type_tag and build_intlist gave their data back */
    const ckpt_value *sizes = ckpt_checkpoint_find(ck, "sizes");
    ck_assert_int_eq(ckpt_value_kind(sizes), CKPT_KIND_LIST);
    ck_assert_uint_eq(ckpt_value_len(sizes), 3);
    ck_assert_int_eq(ckpt_value_kind(ckpt_checkpoint_find(ck, "table")), CKPT_KIND_DICT);
    ckpt_checkpoint_free(ck);
    /* the flag changes nothing for other files */
    ck = load_flags(fixture("mlp.pt"), CKPT_LOAD_TORCHSCRIPT, NULL);
    ck_assert_int_eq(ckpt_checkpoint_format(ck), CKPT_FORMAT_ZIP);
    ckpt_checkpoint_free(ck);
    /* __torch__ names mean nothing outside a TorchScript archive */
    pk b;
    pk_init(&b);
    pk_global(&b, "__torch__", "M");
    pk_op(&b, ')');
    pk_op(&b, '\x81');
    pk_stop(&b);
    size_t zlen;
    uint8_t *z = zip_of(&b, NULL, 0, &zlen);
    ckpt_error *err = ckpt_error_new();
    ck_assert_int_eq(load_mem(z, zlen, CKPT_LOAD_TORCHSCRIPT, NULL, NULL, err), CKPT_ERR_BLOCKED);
    ck_assert_str_eq(ckpt_error_global(err), "__torch__.M");
    ckpt_error_free(err);
    free(z);
}
END_TEST

/* ---- big-endian ---- */

START_TEST(big_endian_twins)
{
    static const char *const pairs[][2] = {{"dtypes.pt", "big_endian.pt"}, {"v3_dtypes.pt", "v3_big_endian.pt"}};
    for (size_t i = 0; i < 2; i++) {
        ckpt_checkpoint *le = load_flags(fixture(pairs[i][0]), 0, NULL);
        ckpt_checkpoint *be = load_flags(fixture(pairs[i][1]), 0, NULL);
        ckpt_checkpoint *be_mmap = load_flags(fixture(pairs[i][1]), CKPT_LOAD_MMAP, NULL);
        ck_assert(!ckpt_checkpoint_big_endian(le));
        ck_assert(ckpt_checkpoint_big_endian(be));
        assert_same_tensors(le, be);
        assert_same_tensors(le, be_mmap);
        ckpt_checkpoint_free(le);
        ckpt_checkpoint_free(be);
        ckpt_checkpoint_free(be_mmap);
    }
    /* an untyped storage viewed as uint16 and uint32 has no single byte order to convert */
    pk b;
    pk_init(&b);
    pk_raw(&b, "}(", 2);
    pk_str(&b, "a");
    int64_t s2[1] = {4}, s4[1] = {2}, st[1] = {1};
    pk_tensor(&b, NULL, "0", 8, 1, s2, st, 0, "uint16");
    pk_str(&b, "b");
    pk_tensor(&b, NULL, "0", 8, 1, s4, st, 0, "uint32");
    pk_op(&b, 'u');
    pk_stop(&b);
    uint8_t bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    tst_record rec[] = {{"byteorder", "big", 3}, {"data/0", bytes, 8}};
    assert_zip_fails(&b, rec, 2, CKPT_ERR_UNSUPPORTED, "different sizes");
}
END_TEST

/* ---- tensor kinds ---- */

START_TEST(quantized_api)
{
    ckpt_checkpoint *ck = load_flags(fixture("quantized.pt"), 0, NULL);
    const ckpt_tensor *t = ckpt_checkpoint_find_tensor(ck, "per_tensor_quint8");
    ck_assert_int_eq(ckpt_tensor_dtype(t), CKPT_DTYPE_QUINT8);
    ck_assert_int_eq(ckpt_tensor_qscheme(t), CKPT_QSCHEME_PER_TENSOR_AFFINE);
    ck_assert(ckpt_tensor_q_scale(t) == 0.0625);
    ck_assert_int_eq(ckpt_tensor_q_zero_point(t), 3);
    ck_assert_int_eq(ckpt_tensor_q_axis(t), -1);
    ck_assert_ptr_null(ckpt_tensor_q_scales(t));
    ck_assert_int_eq(ckpt_tensor_q_zero_point(ckpt_checkpoint_find_tensor(ck, "per_tensor_qint8")), -2);

    t = ckpt_checkpoint_find_tensor(ck, "per_channel_axis1");
    ck_assert_int_eq(ckpt_tensor_qscheme(t), CKPT_QSCHEME_PER_CHANNEL_AFFINE);
    ck_assert_str_eq(ckpt_qscheme_name(ckpt_tensor_qscheme(t)), "per_channel_affine");
    ck_assert_int_eq(ckpt_tensor_q_axis(t), 1);
    const ckpt_tensor *sc = ckpt_tensor_q_scales(t), *zp = ckpt_tensor_q_zero_points(t);
    ck_assert_int_eq(ckpt_tensor_dtype(sc), CKPT_DTYPE_FLOAT64);
    ck_assert_int_eq(ckpt_tensor_dtype(zp), CKPT_DTYPE_INT64);
    ck_assert_uint_eq(ckpt_tensor_numel(sc), 4);
    ck_assert(((const double *)ckpt_tensor_data(sc))[3] == 0.0625);
    ck_assert_int_eq(((const int64_t *)ckpt_tensor_data(zp))[3], 4);

    t = ckpt_checkpoint_find_tensor(ck, "per_channel_float_qparams");
    ck_assert_int_eq(ckpt_tensor_qscheme(t), CKPT_QSCHEME_PER_CHANNEL_AFFINE_FLOAT_QPARAMS);
    ck_assert_int_eq(ckpt_tensor_dtype(ckpt_tensor_q_zero_points(t)), CKPT_DTYPE_FLOAT32);
    ck_assert(((const float *)ckpt_tensor_data(ckpt_tensor_q_zero_points(t)))[1] == -1.0f);
    ck_assert_int_eq(ckpt_tensor_qscheme(ckpt_checkpoint_find_tensor(ck, "per_tensor_view")), CKPT_QSCHEME_PER_TENSOR_AFFINE);
    /* quint4x2: 12 values in 6 bytes */
    t = ckpt_checkpoint_find_tensor(ck, "per_tensor_quint4x2");
    ck_assert_uint_eq(ckpt_tensor_numel(t), 12);
    ck_assert_uint_eq(ckpt_tensor_nbytes(t), 6);
    ck_assert_uint_eq(ckpt_storage_nbytes(ckpt_tensor_storage(t)), 6);
    ckpt_checkpoint_free(ck);
    ck = load_flags(fixture("mlp.pt"), 0, NULL);
    ck_assert_int_eq(ckpt_tensor_qscheme(ckpt_checkpoint_tensor(ck, 0, NULL)), CKPT_QSCHEME_NONE);
    ckpt_checkpoint_free(ck);
}
END_TEST

/* _rebuild_qtensor(QInt8Storage "0" of 6, 0, (2, 3), (3, 1), params, False, OrderedDict()) with
 * params written by emit(b) */
static void pk_qtensor(pk *b, const char *storage_class, void (*params)(pk *))
{
    pk_init(b);
    pk_global(b, "torch._utils", "_rebuild_qtensor");
    pk_op(b, '(');
    pk_pid(b, "torch", storage_class, "0", 6);
    pk_int(b, 0);
    int64_t shape[2] = {2, 3}, stride[2] = {3, 1};
    pk_ints(b, 2, shape);
    pk_ints(b, 2, stride);
    params(b);
    pk_bool(b, false);
    pk_odict(b);
    pk_op(b, 't');
    pk_op(b, 'R');
    pk_stop(b);
}

static void params_axis5(pk *b)
{
    pk_op(b, '(');
    pk_global(b, "torch", "per_channel_affine");
    static const double sc[2] = {0.1, 0.1};
    static const int64_t zp[2] = {0, 0};
    pk_float_list(b, 2, sc);
    pk_int_list(b, 2, zp);
    pk_int(b, 5);
    pk_op(b, 't');
}
static void params_short_lists(pk *b)
{
    pk_op(b, '(');
    pk_global(b, "torch", "per_channel_affine");
    static const double sc[1] = {0.1};
    static const int64_t zp[1] = {0};
    pk_float_list(b, 1, sc);
    pk_int_list(b, 1, zp);
    pk_int(b, 0);
    pk_op(b, 't');
}
static void params_symmetric(pk *b)
{
    pk_op(b, '(');
    pk_global(b, "torch", "per_tensor_symmetric");
    pk_float(b, 0.5);
    pk_int(b, 0);
    pk_op(b, 't');
}
static void params_lists(pk *b)
{
    pk_op(b, '(');
    pk_global(b, "torch", "per_channel_affine");
    static const double sc[2] = {0.5, 0.25};
    static const int64_t zp[2] = {1, 2};
    pk_float_list(b, 2, sc);
    pk_int_list(b, 2, zp);
    pk_int(b, 0);
    pk_op(b, 't');
}

START_TEST(quantized_refusals)
{
    uint8_t q[6] = {1, 2, 3, 4, 5, 6};
    tst_record rec[] = {{"data/0", q, 6}};
    pk b;
    pk_qtensor(&b, "QInt8Storage", params_axis5);
    assert_zip_fails(&b, rec, 1, CKPT_ERR_TENSOR, "axis 5");
    pk_qtensor(&b, "QInt8Storage", params_short_lists);
    assert_zip_fails(&b, rec, 1, CKPT_ERR_TENSOR, "1-D with 2 entries");
    pk_qtensor(&b, "QInt8Storage", params_symmetric);
    assert_zip_fails(&b, rec, 1, CKPT_ERR_UNSUPPORTED, "per_tensor_symmetric");
    pk_qtensor(&b, "ByteStorage", params_symmetric);
    assert_zip_fails(&b, rec, 1, CKPT_ERR_TENSOR, "not a quantized dtype");
    /* lists of per-channel parameters (torch 1.13 accepts them) become tensors */
    pk_qtensor(&b, "QInt8Storage", params_lists);
    size_t len;
    uint8_t *z = zip_of(&b, rec, 1, &len);
    ckpt_checkpoint *ck;
    ck_assert_int_eq(load_mem(z, len, CKPT_LOAD_SKIP_DATA, NULL, &ck, NULL), CKPT_OK);
    const ckpt_tensor *t = ckpt_value_tensor(ckpt_checkpoint_root(ck));
    ck_assert(((const double *)ckpt_tensor_data(ckpt_tensor_q_scales(t)))[1] == 0.25);
    ck_assert_int_eq(((const int64_t *)ckpt_tensor_data(ckpt_tensor_q_zero_points(t)))[1], 2);
    ckpt_checkpoint_free(ck);
    free(z);
}
END_TEST

START_TEST(sparse_api)
{
    ckpt_checkpoint *ck = load_flags(fixture("sparse.pt"), 0, NULL);
    ck_assert_ptr_null(ckpt_checkpoint_find_tensor(ck, "coo"));
    const ckpt_value *v = ckpt_checkpoint_find(ck, "coo");
    ck_assert_int_eq(ckpt_value_kind(v), CKPT_KIND_SPARSE);
    ck_assert_str_eq(ckpt_value_type_name(v), "torch.Tensor");
    const ckpt_sparse *s = ckpt_value_sparse(v);
    ck_assert_int_eq(ckpt_sparse_layout(s), CKPT_LAYOUT_SPARSE_COO);
    ck_assert_int_eq(ckpt_sparse_dtype(s), CKPT_DTYPE_FLOAT32);
    ck_assert_uint_eq(ckpt_sparse_ndim(s), 2);
    ck_assert_int_eq(ckpt_sparse_shape(s)[1], 3);
    ck_assert(!ckpt_sparse_is_coalesced(s));
    ck_assert_ptr_eq(ckpt_sparse_indices(s), ckpt_checkpoint_find_tensor(ck, "coo.indices"));
    ck_assert_ptr_eq(ckpt_sparse_values(s), ckpt_checkpoint_find_tensor(ck, "coo.values"));
    ck_assert_ptr_null(ckpt_sparse_plain_indices(s));
    /* torch 1.13 does not save the coalesced flag (torch >= 2.1 does: newer_kinds.pt) */
    ck_assert(!ckpt_sparse_is_coalesced(ckpt_value_sparse(ckpt_checkpoint_find(ck, "coo_coalesced"))));
    s = ckpt_value_sparse(ckpt_checkpoint_find(ck, "csr_int32"));
    ck_assert_int_eq(ckpt_sparse_layout(s), CKPT_LAYOUT_SPARSE_CSR);
    ck_assert_str_eq(ckpt_layout_name(ckpt_sparse_layout(s)), "sparse_csr");
    ck_assert_int_eq(ckpt_tensor_dtype(ckpt_sparse_indices(s)), CKPT_DTYPE_INT32);
    ck_assert_ptr_eq(ckpt_sparse_plain_indices(s), ckpt_checkpoint_find_tensor(ck, "csr_int32.col_indices"));
    ckpt_checkpoint_free(ck);
    ck = load_flags(fixture("newer_kinds.pt"), 0, NULL);
    ck_assert_int_eq(ckpt_sparse_layout(ckpt_value_sparse(ckpt_checkpoint_find(ck, "bsc"))), CKPT_LAYOUT_SPARSE_BSC);
    ck_assert(ckpt_sparse_is_coalesced(ckpt_value_sparse(ckpt_checkpoint_find(ck, "coo_coalesced"))));
    ck_assert_ptr_nonnull(ckpt_checkpoint_find_tensor(ck, "csc.row_indices"));
    ckpt_checkpoint_free(ck);
}
END_TEST

/* _rebuild_sparse_tensor(layout, (compressed "0", plain "1", values "2", Size(shape))), int64 indices */
static uint8_t *csr_zip(const char *layout, const int64_t *crow, size_t ncrow, const int64_t *col, size_t ncol,
                        int64_t rows, int64_t cols, size_t *len)
{
    pk b;
    pk_init(&b);
    pk_global(&b, "torch._utils", "_rebuild_sparse_tensor");
    pk_op(&b, '(');
    pk_layout(&b, layout);
    pk_op(&b, '(');
    pk_vec(&b, "LongStorage", "0", (int64_t)ncrow);
    pk_vec(&b, "LongStorage", "1", (int64_t)ncol);
    pk_vec(&b, "FloatStorage", "2", (int64_t)ncol);
    int64_t size[2] = {rows, cols};
    pk_ints(&b, 2, size);
    pk_op(&b, 't');
    pk_op(&b, 't');
    pk_op(&b, 'R');
    pk_stop(&b);
    static float vals[16];
    tst_record rec[] = {{"data/0", crow, ncrow * 8}, {"data/1", col, ncol * 8}, {"data/2", vals, ncol * 4}};
    return zip_of(&b, rec, 3, len);
}

START_TEST(sparse_checks)
{
    size_t len;
    uint8_t *z;
    int64_t crow_ok[] = {0, 1, 3}, col_ok[] = {2, 0, 1};
    z = csr_zip("torch.sparse_csr", crow_ok, 3, col_ok, 3, 2, 3, &len);
    ck_assert_int_eq(tst_load_mem(z, len, NULL, NULL), CKPT_OK);
    free(z);
    int64_t col_big[] = {3, 0, 1};
    z = csr_zip("torch.sparse_csr", crow_ok, 3, col_big, 3, 2, 3, &len);
    tst_assert_load_fails(z, len, CKPT_ERR_TENSOR, "outside");
    /* the index data is what is wrong: a metadata-only load does not look at it */
    ck_assert_int_eq(load_mem(z, len, CKPT_LOAD_SKIP_DATA, NULL, NULL, NULL), CKPT_OK);
    free(z);
    int64_t col_unsorted[] = {2, 1, 0};
    z = csr_zip("torch.sparse_csr", crow_ok, 3, col_unsorted, 3, 2, 3, &len);
    tst_assert_load_fails(z, len, CKPT_ERR_TENSOR, "sorted and distinct");
    free(z);
    /* compressed indices running past nnz before coming back (must not read past the plain indices) */
    int64_t crow_wild[] = {0, 5, 3};
    z = csr_zip("torch.sparse_csr", crow_wild, 3, col_ok, 3, 2, 3, &len);
    tst_assert_load_fails(z, len, CKPT_ERR_TENSOR, "crow_indices[1] = 5");
    free(z);
    int64_t crow_end[] = {0, 1, 2};
    z = csr_zip("torch.sparse_csr", crow_end, 3, col_ok, 3, 2, 3, &len);
    tst_assert_load_fails(z, len, CKPT_ERR_TENSOR, "not nnz");
    free(z);
    /* wrong number of compressed indices; the CSC reading of the same arrays */
    z = csr_zip("torch.sparse_csr", crow_ok, 3, col_ok, 3, 3, 3, &len);
    tst_assert_load_fails(z, len, CKPT_ERR_TENSOR, "compressed indices have 3 entries, 4 expected");
    free(z);
    int64_t ccol[] = {0, 1, 2, 3}, row[] = {1, 0, 1};
    z = csr_zip("torch.sparse_csc", ccol, 4, row, 3, 2, 3, &len);
    ck_assert_int_eq(tst_load_mem(z, len, NULL, NULL), CKPT_OK);
    free(z);
    z = csr_zip("torch.strided", crow_ok, 3, col_ok, 3, 2, 3, &len);
    tst_assert_load_fails(z, len, CKPT_ERR_UNSUPPORTED, "layout torch.strided");
    free(z);

    /* COO: an index outside the size */
    pk b;
    pk_init(&b);
    pk_global(&b, "torch._utils", "_rebuild_sparse_tensor");
    pk_op(&b, '(');
    pk_layout(&b, "torch.sparse_coo");
    pk_op(&b, '(');
    int64_t ishape[2] = {1, 2}, istride[2] = {2, 1};
    pk_tensor(&b, "LongStorage", "0", 2, 2, ishape, istride, 0, NULL);
    pk_vec(&b, "FloatStorage", "1", 2);
    int64_t size[1] = {4};
    pk_ints(&b, 1, size);
    pk_op(&b, 't');
    pk_op(&b, 't');
    pk_op(&b, 'R');
    pk_stop(&b);
    int64_t idx[2] = {1, 4};
    float vals[2] = {1, 2};
    tst_record rec[] = {{"data/0", idx, 16}, {"data/1", vals, 8}};
    assert_zip_fails(&b, rec, 2, CKPT_ERR_TENSOR, "index 4 of entry 1");
}
END_TEST

START_TEST(meta_and_device_tensors)
{
    ckpt_checkpoint *ck = load_flags(fixture("meta.pt"), 0, NULL);
    const ckpt_tensor *t = ckpt_checkpoint_find_tensor(ck, "meta_transposed");
    ck_assert_str_eq(ckpt_tensor_device(t), "meta");
    ck_assert_ptr_null(ckpt_tensor_storage(t));
    ck_assert_ptr_null(ckpt_tensor_data(t));
    ck_assert_int_eq(ckpt_tensor_stride(t)[0], 1);
    uint64_t h;
    ck_assert_int_eq(ckpt_tensor_xxh3_64(t, &h, NULL), CKPT_ERR_STATE);
    float buf[6];
    ck_assert_int_eq(ckpt_tensor_copy_contiguous(t, buf, sizeof buf, NULL), CKPT_ERR_STATE);
    ck_assert(ckpt_tensor_requires_grad(ckpt_checkpoint_find_tensor(ck, "meta_grad")));
    ck_assert_str_eq(ckpt_tensor_device(ckpt_checkpoint_find_tensor(ck, "real")), "cpu");
    ckpt_checkpoint_free(ck);

    ck = load_flags(fixture("newer_kinds.pt"), 0, NULL);
    t = ckpt_checkpoint_find_tensor(ck, "xla");
    ck_assert_str_eq(ckpt_tensor_device(t), "xla:0");
    ck_assert(((const float *)ckpt_tensor_data(t))[1] == 0.75f);
    t = ckpt_checkpoint_find_tensor(ck, "param_with_state");
    ck_assert(ckpt_tensor_is_parameter(t) && ckpt_tensor_requires_grad(t));
    ck_assert_str_eq(ckpt_tensor_type_name(t), "torch.nn.parameter.Parameter");
    ck_assert_int_eq(ckpt_tensor_storage_offset(ckpt_checkpoint_find_tensor(ck, "tensor_with_state")), 1);
    ckpt_checkpoint_free(ck);

    /* a device rebuild that would convert the dtype is not data */
    pk b;
    pk_init(&b);
    pk_global(&b, "torch._utils", "_rebuild_device_tensor_from_cpu_tensor");
    pk_op(&b, '(');
    pk_vec(&b, "FloatStorage", "0", 2);
    pk_global(&b, "torch", "float16");
    pk_str(&b, "xla:0");
    pk_bool(&b, false);
    pk_op(&b, 't');
    pk_op(&b, 'R');
    pk_stop(&b);
    float f[2] = {1, 2};
    tst_record rec[] = {{"data/0", f, 8}};
    assert_zip_fails(&b, rec, 1, CKPT_ERR_UNSUPPORTED, "converting float32 data to float16");
    pk_init(&b);
    pk_global(&b, "torch._utils", "_rebuild_device_tensor_from_numpy");
    pk_op(&b, '(');
    pk_op(&b, 'N');
    pk_global(&b, "torch", "float32");
    pk_str(&b, "xla:0");
    pk_bool(&b, false);
    pk_op(&b, 't');
    pk_op(&b, 'R');
    pk_stop(&b);
    assert_zip_fails(&b, NULL, 0, CKPT_ERR_UNSUPPORTED, "NumPy");
}
END_TEST

START_TEST(lazy_conj_neg_refused)
{
    pk b;
    pk_init(&b);
    pk_global(&b, "torch._utils", "_rebuild_tensor_v2");
    pk_op(&b, '(');
    pk_pid(&b, "torch", "FloatStorage", "0", 2);
    pk_int(&b, 0);
    int64_t shape[1] = {2}, stride[1] = {1};
    pk_ints(&b, 1, shape);
    pk_ints(&b, 1, stride);
    pk_bool(&b, false);
    pk_odict(&b);
    pk_raw(&b, "}", 1);
    pk_str(&b, "neg");
    pk_bool(&b, true);
    pk_op(&b, 's');
    pk_op(&b, 't');
    pk_op(&b, 'R');
    pk_stop(&b);
    float f[2] = {1, 2};
    tst_record rec[] = {{"data/0", f, 8}};
    assert_zip_fails(&b, rec, 1, CKPT_ERR_UNSUPPORTED, "lazy 'neg' bit");
}
END_TEST

/* _rebuild_from_type_v2(func, mypkg.MyTensor, args, {"inner": 1}) */
static void pk_subclass(pk *b, bool wrapper)
{
    pk_init(b);
    pk_global(b, "torch._tensor", "_rebuild_from_type_v2");
    pk_op(b, '(');
    pk_global(b, "torch._utils", wrapper ? "_rebuild_wrapper_subclass" : "_rebuild_tensor_v2");
    pk_global(b, "mypkg", "MyTensor");
    int64_t shape[2] = {2, 3}, stride[2] = {3, 1};
    pk_op(b, '(');
    if (wrapper) {
        pk_global(b, "mypkg", "MyTensor");
        pk_global(b, "torch", "float32");
        pk_ints(b, 2, shape);
        pk_ints(b, 2, stride);
        pk_int(b, 0);
        pk_layout(b, "torch.strided");
        pk_global(b, "torch", "device");
        pk_op(b, '(');
        pk_str(b, "cuda:1");
        pk_op(b, 't');
        pk_op(b, 'R');
        pk_bool(b, false);
    } else {
        pk_pid(b, "torch", "FloatStorage", "0", 6);
        pk_int(b, 0);
        pk_ints(b, 2, shape);
        pk_ints(b, 2, stride);
        pk_bool(b, false);
        pk_odict(b);
    }
    pk_op(b, 't');
    pk_raw(b, "}", 1);
    pk_str(b, "inner");
    pk_int(b, 1);
    pk_op(b, 's');
    pk_op(b, 't');
    pk_op(b, 'R');
    pk_stop(b);
}

START_TEST(tensor_subclasses)
{
    float f[6] = {1, 2, 3, 4, 5, 6};
    tst_record rec[] = {{"data/0", f, 24}};
    ckpt_registry *reg = ckpt_registry_new(0);
    const char *names[] = {"mypkg.MyTensor"};
    ck_assert_int_eq(ckpt_registry_add_safe_globals(reg, names, 1, NULL), CKPT_OK);
    for (int wrapper = 0; wrapper < 2; wrapper++) {
        pk b;
        pk_subclass(&b, wrapper);
        size_t len;
        uint8_t *z = zip_of(&b, rec, 1, &len);
        /* refused by default: the subclass is not allowed */
        ckpt_error *err = ckpt_error_new();
        ck_assert_int_eq(load_mem(z, len, 0, NULL, NULL, err), CKPT_ERR_BLOCKED);
        ck_assert_str_eq(ckpt_error_global(err), "mypkg.MyTensor");
        ckpt_checkpoint *ck;
        ck_assert_msg(load_mem(z, len, 0, reg, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
        const ckpt_tensor *t = ckpt_value_tensor(ckpt_checkpoint_root(ck));
        ck_assert_str_eq(ckpt_tensor_type_name(t), "mypkg.MyTensor");
        ck_assert_uint_eq(ckpt_tensor_numel(t), 6);
        if (wrapper) {
            ck_assert_ptr_null(ckpt_tensor_storage(t));
            ck_assert_str_eq(ckpt_tensor_device(t), "cuda:1");
        } else {
            ck_assert(((const float *)ckpt_tensor_data(t))[5] == 6.0f);
        }
        char *json = NULL;
        ck_assert_int_eq(ckpt_checkpoint_to_json(ck, "x", 0, &json, NULL), CKPT_OK);
        ck_assert_ptr_nonnull(strstr(json, "\"type\":\"mypkg.MyTensor\""));
        ckpt_free(json);
        ckpt_checkpoint_free(ck);
        ckpt_error_free(err);
        free(z);
    }
    ckpt_registry_free(reg);
    /* nested tensors: not on PyTorch's current allowlist, refused by name */
    pk b;
    pk_init(&b);
    pk_global(&b, "torch._utils", "_rebuild_nested_tensor");
    pk_stop(&b);
    assert_zip_fails(&b, NULL, 0, CKPT_ERR_BLOCKED, "torch._utils._rebuild_nested_tensor");
}
END_TEST

/* ---- the external corpus ---- */

/* torch's view of an external file (tests/fixtures/external/<name>.json, by ref_inspect.py) */
static void assert_matches_torch(const ckpt_checkpoint *ck, const char *ref_name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", tst_path(ref_name));
    json_error_t jerr;
    json_t *ref = json_load_file(path, 0, &jerr);
    ck_assert_msg(ref != NULL, "%s: %s", path, jerr.text);
    char *text = NULL;
    ck_assert_int_eq(ckpt_checkpoint_to_json(ck, "x", 0, &text, NULL), CKPT_OK);
    json_t *got = json_loads(text, 0, &jerr);
    ck_assert_ptr_nonnull(got);
    json_object_del(ref, "file");
    json_object_del(got, "file");
    ck_assert_msg(json_equal(ref, got), "%s differs from torch's view", ref_name);
    json_decref(ref);
    json_decref(got);
    ckpt_free(text);
}

START_TEST(corpus_real_checkpoints)
{
    /* Hugging Face's legacy-format pytorch_model.bin: exactly torch's tensors (reference written by
     * `ref_inspect.py .../picklescan/tests/data/pytorch_model.bin`) */
    const char *p = tst_external("picklescan/tests/data/pytorch_model.bin");
    if (p) {
        ckpt_checkpoint *ck = load_flags(p, 0, NULL);
        assert_matches_torch(ck, "fixtures/external/picklescan_pytorch_model.json");
        ck_assert_int_eq(ckpt_checkpoint_format(ck), CKPT_FORMAT_LEGACY);
        ck_assert_uint_eq(ckpt_checkpoint_num_tensors(ck), 38);
        const char *key;
        const ckpt_tensor *t = ckpt_checkpoint_tensor(ck, 0, &key);
        ck_assert_str_eq(key, "distilbert.embeddings.word_embeddings.weight");
        ck_assert_int_eq(ckpt_tensor_shape(t)[0], 28996);
        ckpt_checkpoint *mm = load_flags(p, CKPT_LOAD_MMAP, NULL);
        assert_same_tensors(ck, mm);
        ckpt_checkpoint_free(mm);
        ckpt_checkpoint_free(ck);
    }
    static const char *const zips[] = {"candle/test.pt", "candle/test_with_key.pt", "candle/fortran_tensor_3d.pth",
                                       "picklescan/tests/data/new_pytorch_model.bin"};
    for (size_t i = 0; i < sizeof zips / sizeof *zips; i++) {
        if (!(p = tst_external(zips[i]))) continue;
        ckpt_checkpoint *ck = load_flags(p, 0, NULL);
        ck_assert_int_eq(ckpt_checkpoint_format(ck), CKPT_FORMAT_ZIP);
        ck_assert_uint_ge(ckpt_checkpoint_num_tensors(ck), 1);
        ckpt_checkpoint_free(ck);
    }
}
END_TEST

static bool is_malicious(const char *name)
{
    static const char *const pats[] = {"malicious*", "GHSA-*", "*_sploit*", "*exploit*", "unsafe_*",
                                       "dns_exfiltration.npy", "object_array*.np?", "cloudpickle_codeinjection.pkl",
                                       "io_FileIO.pkl", "logging_FileHandler.pkl", "types_CodeType.pkl",
                                       "urllib_request_urlopen.pkl", "pytorch_magic_bypass.pt"};
    for (size_t i = 0; i < sizeof pats / sizeof *pats; i++)
        if (fnmatch(pats[i], name, 0) == 0) return true;
    return false;
}

/* The payload as the object pickle of a legacy stream, and as data.pkl of a zip. */
static void assert_refused_in_both_formats(const uint8_t *payload, size_t n, const char *name)
{
    pk b;
    legacy_head(&b, true, 4, 1001);
    pk_raw(&b, payload, n);
    ckpt_error *err = ckpt_error_new();
    ckpt_status s = load_mem(b.p, b.len, CKPT_LOAD_TORCHSCRIPT, NULL, NULL, err);
    ck_assert_msg(s != CKPT_OK, "%s as a legacy stream loaded", name);
    free(b.p);
    size_t zlen;
    uint8_t *z = tst_make_checkpoint(payload, n, NULL, 0, &zlen);
    s = load_mem(z, zlen, CKPT_LOAD_TORCHSCRIPT, NULL, NULL, err);
    ck_assert_msg(s != CKPT_OK, "%s as data.pkl loaded", name);
    free(z);
    ckpt_error_free(err);
}

START_TEST(corpus_malicious_refused)
{
    static const char *const dirs[] = {"picklescan/tests/data", "picklescan/tests/data2", "modelscan/tests/data"};
    size_t seen = 0;
    for (size_t d = 0; d < 3; d++) {
        const char *dir = tst_external(dirs[d]);
        if (!dir) continue;
        char root[4096];
        snprintf(root, sizeof root, "%s", dir);
        DIR *dh = opendir(root);
        ck_assert_ptr_nonnull(dh);
        struct dirent *e;
        while ((e = readdir(dh))) {
            if (!is_malicious(e->d_name)) continue;
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", root, e->d_name);
            static const unsigned flags[] = {0, CKPT_LOAD_MMAP | CKPT_LOAD_TORCHSCRIPT, CKPT_LOAD_SKIP_DATA};
            for (size_t f = 0; f < 3; f++) {
                ckpt_load_options *o = ckpt_load_options_new();
                ckpt_load_options_set_flags(o, flags[f]);
                ckpt_checkpoint *ck = NULL;
                ckpt_status s = ckpt_load_file(path, o, &ck, NULL);
                ck_assert_msg(s != CKPT_OK, "malicious file %s loaded", path);
                ckpt_load_options_free(o);
            }
            size_t len;
            uint8_t *data = tst_read_file(path, &len);
            if (len >= 2 && data[0] == 0x80) assert_refused_in_both_formats(data, len, e->d_name);
            free(data);
            seen++;
        }
        closedir(dh);
    }
    if (seen) ck_assert_uint_ge(seen, 50);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("formats");
    TCase *tc = tcase_create("formats");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, legacy_stream_built_by_hand);
    tcase_add_test(tc, legacy_counts_and_sys_info);
    tcase_add_test(tc, legacy_key_list);
    tcase_add_test(tc, legacy_views);
    tcase_add_test(tc, legacy_persistent_ids);
    tcase_add_test(tc, legacy_whole_model_fixture_is_refused);
    tcase_add_test(tc, legacy_fixtures_api);
    tcase_add_test(tc, tar_format);
    tcase_add_test(tc, torchscript_archives);
    tcase_add_test(tc, big_endian_twins);
    tcase_add_test(tc, quantized_api);
    tcase_add_test(tc, quantized_refusals);
    tcase_add_test(tc, sparse_api);
    tcase_add_test(tc, sparse_checks);
    tcase_add_test(tc, meta_and_device_tensors);
    tcase_add_test(tc, lazy_conj_neg_refused);
    tcase_add_test(tc, tensor_subclasses);
    tcase_add_test(tc, corpus_real_checkpoints);
    tcase_add_test(tc, corpus_malicious_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tst_run(suite()); }
