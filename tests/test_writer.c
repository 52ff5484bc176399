/*
 * test_writer.c: writing .pt files.
 *   - every fixture read -> written -> read gives the same inspect JSON (values, digests, storage keys)
 *     and the same sharing; the written data.pkl is torch's byte for byte; writing is deterministic;
 *   - the layout is torch's: 64-byte aligned data, record order, flags, descriptors, zip64 end records,
 *     the serialization id's CRC half; libzip (ZIP_CHECKCONS) reads every member;
 *   - the builder: every value kind, views and tied storages, v3 dtypes, parameters, cycles;
 *   - errors name the key; a failed save leaves no file (also when the disk fills up);
 *   - more than 65535 members (zip64 counts); dedup; the fast CRC-32 equals zlib's;
 *   - on demand (CKPT_TEST_ZIP64=1): a checkpoint over 4 GiB round-trips.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

#include "arena.h"
#include "tensors.h"
#include "libzip_ref.h"
#include "support.h"
#include "util.h"
#include "zip.h"

/* ---- helpers ---- */

static const char *fixture_dir(void)
{
    const char *d = getenv("CKPT_FIXTURE_DIR");
    return d ? d : tst_path("fixtures/data");
}

static char **list_fixtures(size_t *n)
{
    DIR *d = opendir(fixture_dir());
    ck_assert_msg(d != NULL, "cannot open %s", fixture_dir());
    char **names = NULL;
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 4 || strcmp(e->d_name + l - 3, ".pt") != 0) continue;
        names = realloc(names, (count + 1) * sizeof *names);
        names[count++] = strndup(e->d_name, l - 3);
    }
    closedir(d);
    *n = count;
    return names;
}

static char *make_tmpdir(void)
{
    char *t = strdup("/tmp/ckpt-writer-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t));
    return t;
}

/* Number of entries in a folder (besides . and ..). */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* The inspect JSON without the fields that name the file. */
static json_t *json_of(const ckpt_checkpoint *ck)
{
    char *text = NULL;
    ck_assert_int_eq(ckpt_checkpoint_to_json(ck, "x", 0, &text, NULL), CKPT_OK);
    json_error_t je;
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &je);
    ck_assert_msg(j != NULL, "%s", je.text);
    ckpt_free(text);
    json_object_del(j, "file");
    json_object_del(j, "archive_prefix");
    return j;
}

/* Tensors i and j share a storage in a exactly when they do in b. */
static void assert_same_sharing(const ckpt_checkpoint *a, const ckpt_checkpoint *b, const char *what)
{
    size_t n = ckpt_checkpoint_num_tensors(a);
    ck_assert_uint_eq(n, ckpt_checkpoint_num_tensors(b));
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            bool sa = ckpt_tensor_storage(ckpt_checkpoint_tensor(a, i, NULL)) == ckpt_tensor_storage(ckpt_checkpoint_tensor(a, j, NULL));
            bool sb = ckpt_tensor_storage(ckpt_checkpoint_tensor(b, i, NULL)) == ckpt_tensor_storage(ckpt_checkpoint_tensor(b, j, NULL));
            ck_assert_msg(sa == sb, "%s: tensors %zu and %zu share a storage %s", what, i, j, sa ? "before only" : "after only");
        }
}

static uint8_t *read_member(const ck_zip *z, const char *name, size_t *len)
{
    const ck_zip_member *m = ck_zip_find(z, name, strlen(name));
    ck_assert_msg(m != NULL, "member %s missing", name);
    *len = (size_t)m->size;
    return (uint8_t *)z->data + m->data_offset;
}

/*
 * The layout torch.save writes: records in order, stored, data 64-aligned behind an FB extra field of
 * 'Z's, flags 0x0808 (0x0800 when empty), zero CRC/sizes in the local header, the serialization id's
 * second half the combined CRC of the data descriptors.
 */
static void check_layout(const uint8_t *d, size_t len, const char *prefix, size_t nstorages)
{
    ck_arena a;
    ck_arena_init(&a, 0);
    ck_zip z;
    ckpt_error *err = ckpt_error_new();
    ck_assert_msg(ck_zip_open(&z, d, len, &a, 1u << 24, err) == CKPT_OK, "%s", ckpt_error_message(err));
    ck_assert(z.zip64); /* torch always ends with zip64 records */
    const char *order[] = {"data.pkl", ".format_version", ".storage_alignment", "byteorder"};
    ck_assert_uint_eq(z.count, 4 + nstorages + 2);
    char want[256];
    uint64_t combined = 0;
    for (size_t i = 0; i < z.count; i++) {
        const ck_zip_member *m = &z.members[i];
        if (i < 4) snprintf(want, sizeof want, "%s/%s", prefix, order[i]);
        else if (i < 4 + nstorages) snprintf(want, sizeof want, "%s/data/%zu", prefix, i - 4);
        else snprintf(want, sizeof want, "%s/%s", prefix, i == z.count - 2 ? "version" : ".data/serialization_id");
        ck_assert_str_eq(m->name, want);
        ck_assert_uint_eq(m->method, 0);
        ck_assert_uint_eq(m->data_offset % 64, 0);
        ck_assert_uint_eq(m->flags, m->size ? 0x0808 : 0x0800);
        const uint8_t *l = d + m->local_offset;
        ck_assert_uint_eq(ck_le16(l + 4), 0);           /* version needed */
        ck_assert_uint_eq(ck_le32(l + 14), 0);          /* CRC in the descriptor */
        ck_assert_uint_eq(ck_le32(l + 18), 0);
        ck_assert_uint_eq(ck_le32(l + 22), 0);
        uint16_t nlen = ck_le16(l + 26), xlen = ck_le16(l + 28);
        const uint8_t *x = l + 30 + nlen;
        ck_assert(x[0] == 'F' && x[1] == 'B');
        ck_assert_uint_eq(ck_le16(x + 2) + 4u, xlen);
        for (unsigned k = 4; k < xlen; k++) ck_assert_uint_eq(x[k], 'Z');
        if (m->size && i + 1 < z.count) combined = combined ^ ((uint64_t)m->crc + 0x9e3779b9u + (combined << 6) + (combined >> 2));
    }
    size_t n;
    snprintf(want, sizeof want, "%s/.data/serialization_id", prefix);
    const uint8_t *sid = read_member(&z, want, &n);
    ck_assert_uint_eq(n, 40);
    char crcpart[21];
    snprintf(crcpart, sizeof crcpart, "%020llu", (unsigned long long)combined);
    ck_assert_msg(memcmp(sid + 20, crcpart, 20) == 0, "serialization id %.40s, CRC half expected %s", (const char *)sid,
                  crcpart);
    snprintf(want, sizeof want, "%s/version", prefix);
    const uint8_t *ver = read_member(&z, want, &n);
    ck_assert(n == 2 && memcmp(ver, "3\n", 2) == 0);
    snprintf(want, sizeof want, "%s/.format_version", prefix);
    ck_assert(memcmp(read_member(&z, want, &n), "1", 1) == 0 && n == 1);
    snprintf(want, sizeof want, "%s/.storage_alignment", prefix);
    ck_assert(memcmp(read_member(&z, want, &n), "64", 2) == 0 && n == 2);
    ckpt_error_free(err);
    ck_arena_release(&a);
}

static void check_libzip(const char *path)
{
#ifdef TST_HAVE_LIBZIP
    size_t len;
    uint8_t *d = tst_read_file(path, &len);
    char why[512] = "";
    tst_zip_entry *entries = NULL;
    long n = tst_libzip_read(d, len, &entries, why, sizeof why);
    ck_assert_msg(n > 0, "libzip (ZIP_CHECKCONS) refuses %s: %s", path, why);
    tst_libzip_free(entries, n);
    free(d);
#else
    printf("SKIP libzip check of %s: built without libzip\n", path);
#endif
}

/* ---- fixtures ---- */

/* The registry a fixture's <name>.allow sidecar asks for (see test_fixtures.c), or NULL. */
static ckpt_registry *sidecar_registry(const char *name)
{
    char path[4096], line[1024];
    snprintf(path, sizeof path, "%s/%s.allow", fixture_dir(), name);
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    ckpt_registry *r = ckpt_registry_new(0);
    ckpt_error *err = ckpt_error_new();
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#') continue;
        char *arg = strchr(line, ' ');
        ck_assert_msg(arg != NULL, "%s: bad line '%s'", path, line);
        *arg++ = '\0';
        const char *a = arg;
        ckpt_status st = strcmp(line, "allow") == 0     ? ckpt_registry_add_safe_globals(r, &a, 1, err)
                         : strcmp(line, "preset") == 0  ? ckpt_registry_add_preset(r, a, err)
                         : strcmp(line, "handler") == 0 ? ckpt_registry_enable_handlers(r, &a, 1, err)
                                                        : CKPT_ERR_INVALID_ARG;
        ck_assert_msg(st == CKPT_OK, "%s: '%s %s': %s", path, line, a, ckpt_error_message(err));
    }
    fclose(f);
    ckpt_error_free(err);
    return r;
}

/*
 * What a round trip keeps, per fixture. By default (torch.save zips) everything: the inspect JSON except
 * the file name, and data.pkl byte for byte. The exceptions, and why:
 */
typedef enum { RT_PICKLE, RT_JSON, RT_JSON_NO_GLOBALS, RT_VALUES } rt_level;
static const struct {
    const char *name;
    rt_level level;
} rt_exceptions[] = {
    {"newer_kinds", RT_JSON},           /* pickled by hand (newest torch's forms), not by CPython's pickler */
    {"v3_dtypes", RT_JSON},             /* likewise */
    {"v3_big_endian", RT_JSON},         /* likewise; data is written in host order */
    {"numpy_array", RT_JSON},           /* a big-endian array is written little-endian */
    {"numpy_scalar", RT_JSON_NO_GLOBALS}, /* the numpy preset made the scalars Python numbers */
};

static rt_level level_of(const ckpt_checkpoint *ck, const char *name)
{
    if (ckpt_checkpoint_format(ck) != CKPT_FORMAT_ZIP) return RT_VALUES; /* legacy, tar: a new layout and keys */
    for (size_t i = 0; i < CK_ARRAY_LEN(rt_exceptions); i++)
        if (strcmp(rt_exceptions[i].name, name) == 0) return rt_exceptions[i].level;
    return RT_PICKLE;
}

/* The storage a tensor's bytes live in (a legacy view storage stands for the storage it slices). */
static const ckpt_storage *root_of(const ckpt_storage *s)
{
    while (s && (s->flags & CK_SF_VIEW)) s = s->base;
    return s;
}

/* Legacy/tar inputs: every tensor (key, dtype, shape, flags, digest) and every value are the same, and
 * tensors whose bytes overlapped still share a storage. */
static void assert_same_values(const ckpt_checkpoint *a, const ckpt_checkpoint *b, const char *what)
{
    json_t *ja = json_of(a), *jb = json_of(b);
    ck_assert_msg(json_equal(json_object_get(ja, "values"), json_object_get(jb, "values")), "%s: values differ", what);
    json_t *ta = json_object_get(ja, "tensors"), *tb = json_object_get(jb, "tensors");
    ck_assert_uint_eq(json_array_size(ta), json_array_size(tb));
    static const char *const fields[] = {"key", "dtype", "shape", "requires_grad", "is_parameter", "xxh3_64"};
    for (size_t i = 0; i < json_array_size(ta); i++)
        for (size_t f = 0; f < CK_ARRAY_LEN(fields); f++)
            ck_assert_msg(json_equal(json_object_get(json_array_get(ta, i), fields[f]),
                                     json_object_get(json_array_get(tb, i), fields[f])),
                          "%s: tensor %zu differs in %s", what, i, fields[f]);
    size_t n = ckpt_checkpoint_num_tensors(a);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            bool sa = root_of(ckpt_tensor_storage(ckpt_checkpoint_tensor(a, i, NULL))) ==
                      root_of(ckpt_tensor_storage(ckpt_checkpoint_tensor(a, j, NULL)));
            bool sb = ckpt_tensor_storage(ckpt_checkpoint_tensor(b, i, NULL)) ==
                      ckpt_tensor_storage(ckpt_checkpoint_tensor(b, j, NULL));
            ck_assert_msg(sa == sb, "%s: tensors %zu and %zu share bytes %s", what, i, j, sa ? "before only" : "after only");
        }
    json_decref(ja);
    json_decref(jb);
}

static void round_trip_fixture(const char *name, const char *ext, const char *dir)
{
    char src[4096], dst[4096], dst2[4096];
    snprintf(src, sizeof src, "%s/%s.%s", fixture_dir(), name, ext);
    snprintf(dst, sizeof dst, "%s/%s.pt", dir, name);
    snprintf(dst2, sizeof dst2, "%s/again.pt", dir);
    ckpt_error *err = ckpt_error_new();
    ckpt_registry *reg = sidecar_registry(name);
    ckpt_load_options *lo = ckpt_load_options_new();
    ckpt_save_options *so = ckpt_save_options_new();
    if (reg) {
        ckpt_load_options_set_registry(lo, reg);
        ckpt_save_options_set_registry(so, reg); /* objects of allowed classes are written back */
    }
    ckpt_checkpoint *orig = NULL, *copy = NULL, *copy2 = NULL;
    ckpt_status st = ckpt_load_file(src, lo, &orig, err);
    if (st == CKPT_ERR_UNSUPPORTED && strstr(ckpt_error_message(err), "TorchScript")) {
        /* a TorchScript archive is code, not a checkpoint: it is neither loaded nor converted */
        ckpt_load_options_free(lo);
        ckpt_save_options_free(so);
        ckpt_registry_free(reg);
        ckpt_error_free(err);
        return;
    }
    ck_assert_msg(st == CKPT_OK, "%s: %s", src, ckpt_error_message(err));
    ck_assert_msg(ckpt_checkpoint_save_file(orig, dst, so, err) == CKPT_OK, "%s: %s", dst, ckpt_error_message(err));
    ck_assert_msg(ckpt_load_file(dst, lo, &copy, err) == CKPT_OK, "%s: %s", dst, ckpt_error_message(err));
    ck_assert_str_eq(ckpt_checkpoint_archive_prefix(copy), name); /* torch.save's naming: the file's stem */
    rt_level level = level_of(orig, name);
    if (level == RT_VALUES) {
        assert_same_values(orig, copy, name);
    } else {
        json_t *ja = json_of(orig), *jb = json_of(copy);
        json_object_del(ja, "byteorder"); /* written in host order; data is converted on load either way */
        json_object_del(jb, "byteorder");
        if (level == RT_JSON_NO_GLOBALS) {
            json_object_del(ja, "globals");
            json_object_del(jb, "globals");
        }
        if (!json_equal(ja, jb)) {
            char *x = json_dumps(ja, JSON_INDENT(1)), *y = json_dumps(jb, JSON_INDENT(1));
            ck_abort_msg("%s: JSON differs\n--- original\n%.4000s\n--- written\n%.4000s", name, x, y);
        }
        json_decref(ja);
        json_decref(jb);
        assert_same_sharing(orig, copy, name);
    }

    size_t olen, wlen;
    uint8_t *o = tst_read_file(src, &olen), *w = tst_read_file(dst, &wlen);
    ck_arena a;
    ck_arena_init(&a, 0);
    ck_zip zw;
    ck_assert_int_eq(ck_zip_open(&zw, w, wlen, &a, 1u << 20, err), CKPT_OK);
    check_layout(w, wlen, name, zw.count - 6);
    if (level == RT_PICKLE) { /* data.pkl is torch's own, byte for byte */
        ck_zip zo;
        ck_assert_int_eq(ck_zip_open(&zo, o, olen, &a, 1u << 20, err), CKPT_OK);
        char pkl[512];
        snprintf(pkl, sizeof pkl, "%s/data.pkl", name);
        size_t n1, n2;
        const uint8_t *p1 = read_member(&zo, pkl, &n1), *p2 = read_member(&zw, pkl, &n2);
        ck_assert_msg(n1 == n2 && memcmp(p1, p2, n1) == 0, "%s: data.pkl differs from torch's (%zu vs %zu bytes)", name, n1,
                      n2);
    }
    ck_arena_release(&a);
    check_libzip(dst);

    /* saving the copy again gives the same bytes (deterministic), into memory as well */
    ck_assert_int_eq(ckpt_save_options_set_archive_prefix(so, name, err), CKPT_OK);
    ck_assert_int_eq(ckpt_checkpoint_save_file(copy, dst2, so, err), CKPT_OK);
    size_t alen;
    uint8_t *again = tst_read_file(dst2, &alen);
    ck_assert_msg(alen == wlen && memcmp(again, w, wlen) == 0, "%s: saving the copy gives other bytes", name);
    void *mem;
    size_t mlen;
    ck_assert_int_eq(ckpt_save_memory(ckpt_checkpoint_root(copy), so, &mem, &mlen, err), CKPT_OK);
    ck_assert(mlen == wlen && memcmp(mem, w, wlen) == 0);
    ck_assert_int_eq(ckpt_load_memory(mem, mlen, lo, &copy2, err), CKPT_OK);
    ckpt_free(mem);
    free(again);
    free(o);
    free(w);
    unlink(dst);
    unlink(dst2);
    ckpt_checkpoint_free(orig);
    ckpt_checkpoint_free(copy);
    ckpt_checkpoint_free(copy2);
    ckpt_save_options_free(so);
    ckpt_load_options_free(lo);
    ckpt_registry_free(reg);
    ckpt_error_free(err);
}

START_TEST(fixtures_round_trip)
{
    size_t n;
    char **names = list_fixtures(&n);
    ck_assert_uint_ge(n, 10);
    char *dir = make_tmpdir();
    for (size_t i = 0; i < n; i++) {
        round_trip_fixture(names[i], "pt", dir);
        free(names[i]);
    }
    free(names);
    ck_assert_int_eq(count_entries(dir), 0); /* no temporary files left behind */
    remove_tree(dir);
    free(dir);
}
END_TEST

/* A checkpoint read with CKPT_LOAD_MMAP (tensors point into the input file) saves the same bytes. */
START_TEST(mmap_loaded_saves_the_same)
{
    char src[4096];
    snprintf(src, sizeof src, "%s/transformer.pt", fixture_dir());
    ckpt_load_options *lo = ckpt_load_options_new();
    ckpt_load_options_set_flags(lo, CKPT_LOAD_MMAP);
    ckpt_checkpoint *a = NULL, *b = NULL;
    ck_assert_int_eq(ckpt_load_file(src, NULL, &a, NULL), CKPT_OK);
    ck_assert_int_eq(ckpt_load_file(src, lo, &b, NULL), CKPT_OK);
    void *ma, *mb;
    size_t la, lb;
    ck_assert_int_eq(ckpt_save_memory(ckpt_checkpoint_root(a), NULL, &ma, &la, NULL), CKPT_OK);
    ck_assert_int_eq(ckpt_save_memory(ckpt_checkpoint_root(b), NULL, &mb, &lb, NULL), CKPT_OK);
    ck_assert(la == lb && memcmp(ma, mb, la) == 0);
    ckpt_free(ma);
    ckpt_free(mb);
    ckpt_checkpoint_free(a);
    ckpt_checkpoint_free(b);
    ckpt_load_options_free(lo);
}
END_TEST

/* ---- builder ---- */

static const ckpt_value *get(const ckpt_checkpoint *ck, const char *key)
{
    const ckpt_value *v = ckpt_checkpoint_find(ck, key);
    ck_assert_msg(v != NULL, "key '%s' missing", key);
    return v;
}

static int64_t get_int(const ckpt_checkpoint *ck, const char *key)
{
    int64_t x;
    ck_assert_int_eq(ckpt_value_int64(get(ck, key), &x), CKPT_OK);
    return x;
}

START_TEST(builder_every_value_kind)
{
    ckpt_error *err = ckpt_error_new();
    ckpt_builder *b = ckpt_builder_new();
    ckpt_value *root = ckpt_builder_dict(b);
#define SET(k, v) ck_assert_msg(ckpt_builder_dict_set_str(b, root, k, v, err) == CKPT_OK, "%s", ckpt_error_message(err))
    SET("none", ckpt_builder_none(b));
    SET("t", ckpt_builder_bool(b, true));
    SET("f", ckpt_builder_bool(b, false));
    int64_t ints[] = {0, 255, 256, 65535, 65536, -1, INT32_MIN, INT32_MAX, (int64_t)INT32_MAX + 1, INT64_MIN, INT64_MAX};
    ckpt_value *il = ckpt_builder_list(b);
    for (size_t i = 0; i < CK_ARRAY_LEN(ints); i++) ck_assert_int_eq(ckpt_builder_append(b, il, ckpt_builder_int(b, ints[i]), err), CKPT_OK);
    SET("ints", il);
    SET("big", ckpt_builder_int_decimal(b, "-1606938044258990275541962092341162602522202993782792835301376", err));
    uint8_t huge[300];
    memset(huge, 0x5a, sizeof huge);
    huge[299] = 0x01;
    SET("huge", ckpt_builder_int_bytes(b, huge, sizeof huge)); /* LONG4 */
    SET("nan", ckpt_builder_float(b, NAN));
    SET("negzero", ckpt_builder_float(b, -0.0));
    SET("c", ckpt_builder_complex(b, 1.5, -2.0));
    SET("s", ckpt_builder_str(b, "h\xc3\xa9llo \xf0\x9f\x98\x80", CKPT_NUL_TERMINATED, err));
    SET("bytes", ckpt_builder_bytes(b, "\x00\xff\x80z", 4));
    SET("bytes0", ckpt_builder_bytes(b, "", 0));
    SET("ba", ckpt_builder_bytearray(b, "\x01\x02", 2));
    SET("ba0", ckpt_builder_bytearray(b, "", 0));
    SET("dtype", ckpt_builder_dtype(b, CKPT_DTYPE_BFLOAT16, err));
    SET("cpu", ckpt_builder_device(b, "cpu", err));
    SET("cuda", ckpt_builder_device(b, "cuda:1", err));
    int64_t dims[] = {2, 3};
    SET("size", ckpt_builder_size(b, dims, 2, err));
    ckpt_value *tup = ckpt_builder_tuple(b);
    for (int i = 0; i < 5; i++) ck_assert_int_eq(ckpt_builder_append(b, tup, ckpt_builder_int(b, i), err), CKPT_OK);
    SET("tuple5", tup);
    SET("tuple0", ckpt_builder_tuple(b));
    ckpt_value *set = ckpt_builder_set(b), *fs = ckpt_builder_frozenset(b);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(ckpt_builder_append(b, set, ckpt_builder_int(b, i), err), CKPT_OK);
        ck_assert_int_eq(ckpt_builder_append(b, set, ckpt_builder_int(b, i), err), CKPT_OK); /* no duplicates */
        ck_assert_int_eq(ckpt_builder_append(b, fs, ckpt_builder_str(b, i ? "x" : "y", 1, err), err), CKPT_OK);
    }
    SET("set", set);
    SET("frozenset", fs);
    /* non-str keys */
    ckpt_value *odd = ckpt_builder_dict(b), *key = ckpt_builder_tuple(b);
    ckpt_builder_append(b, key, ckpt_builder_int(b, 1), err);
    ckpt_builder_append(b, key, ckpt_builder_str(b, "k", 1, err), err);
    ck_assert_int_eq(ckpt_builder_dict_set(b, odd, key, ckpt_builder_int(b, 7), err), CKPT_OK);
    ck_assert_int_eq(ckpt_builder_dict_set(b, odd, ckpt_builder_int(b, 3), ckpt_builder_int(b, 8), err), CKPT_OK);
    ck_assert_int_eq(ckpt_builder_dict_set(b, odd, ckpt_builder_none(b), ckpt_builder_int(b, 9), err), CKPT_OK);
    SET("odd", odd);
    /* a list that contains itself, and a list reachable twice */
    ckpt_value *cyc = ckpt_builder_list(b);
    ckpt_builder_append(b, cyc, ckpt_builder_int(b, 1), err);
    ckpt_builder_append(b, cyc, cyc, err);
    SET("cycle", cyc);
    SET("cycle_again", cyc);
    /* a tuple reaching itself through a list (Python's "subtle" memo case) */
    ckpt_value *rt = ckpt_builder_tuple(b), *rl = ckpt_builder_list(b);
    ckpt_builder_append(b, rt, rl, err);
    ckpt_builder_append(b, rl, rt, err);
    SET("rec_tuple", rt);
    /* a state dict with _metadata */
    ckpt_value *sd = ckpt_builder_ordered_dict(b), *md = ckpt_builder_ordered_dict(b), *ver = ckpt_builder_dict(b);
    ckpt_builder_dict_set_str(b, ver, "version", ckpt_builder_int(b, 2), err);
    ckpt_builder_dict_set_str(b, md, "", ver, err);
    ck_assert_int_eq(ckpt_builder_set_attr(b, sd, "_metadata", md, err), CKPT_OK);
    float w[12];
    for (int i = 0; i < 12; i++) w[i] = (float)i * 0.5f;
    int64_t shape[2] = {3, 4}, vshape[1] = {4}, tshape[2] = {4, 3}, tstride[2] = {1, 4};
    const ckpt_storage *ws = ckpt_builder_storage(b, CKPT_DTYPE_FLOAT32, w, sizeof w, err);
    ck_assert_ptr_nonnull(ws);
    ckpt_value *weight = ckpt_builder_tensor(b, ws, CKPT_DTYPE_INVALID, 2, shape, NULL, 0, CKPT_TENSOR_PARAMETER |
                                                                                             CKPT_TENSOR_REQUIRES_GRAD, err);
    ckpt_value *row = ckpt_builder_tensor(b, ws, CKPT_DTYPE_FLOAT32, 1, vshape, NULL, 8, 0, err);
    ckpt_value *tr = ckpt_builder_tensor(b, ws, CKPT_DTYPE_INVALID, 2, tshape, tstride, 0, CKPT_TENSOR_REQUIRES_GRAD, err);
    ckpt_value *scalar = ckpt_builder_tensor(b, ws, CKPT_DTYPE_INVALID, 0, NULL, NULL, 11, 0, err);
    ck_assert(weight && row && tr && scalar);
    ckpt_builder_dict_set_str(b, sd, "w", weight, err);
    ckpt_builder_dict_set_str(b, sd, "row2", row, err);
    ckpt_builder_dict_set_str(b, sd, "t", tr, err);
    ckpt_builder_dict_set_str(b, sd, "tied", weight, err); /* the same tensor object twice */
    ckpt_builder_dict_set_str(b, sd, "scalar", scalar, err);
    uint16_t u16[3] = {1, 65535, 300};
    int64_t three = 3, zero = 0;
    ckpt_builder_dict_set_str(b, sd, "u16", ckpt_builder_tensor_from_data(b, CKPT_DTYPE_UINT16, u16, 1, &three, 0, err), err);
    uint8_t f8[3] = {0x38, 0x40, 0xb8};
    ckpt_builder_dict_set_str(b, sd, "f8", ckpt_builder_tensor_from_data(b, CKPT_DTYPE_FLOAT8_E4M3FN, f8, 1, &three, 0, err), err);
    ckpt_builder_dict_set_str(b, sd, "empty", ckpt_builder_tensor_from_data(b, CKPT_DTYPE_INT64, NULL, 1, &zero, 0, err), err);
    SET("state_dict", sd);
#undef SET

    void *mem;
    size_t len;
    ck_assert_msg(ckpt_save_memory(root, NULL, &mem, &len, err) == CKPT_OK, "%s", ckpt_error_message(err));
    ckpt_checkpoint *ck = NULL;
    ck_assert_msg(ckpt_load_memory(mem, len, NULL, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    ck_assert(ckpt_value_kind(get(ck, "none")) == CKPT_KIND_NONE);
    ck_assert(ckpt_value_bool(get(ck, "t")) && !ckpt_value_bool(get(ck, "f")));
    for (size_t i = 0; i < CK_ARRAY_LEN(ints); i++) {
        char k[32];
        snprintf(k, sizeof k, "ints.%zu", i);
        ck_assert_int_eq(get_int(ck, k), ints[i]);
    }
    char *dec = ckpt_value_int_to_string(get(ck, "big"));
    ck_assert_str_eq(dec, "-1606938044258990275541962092341162602522202993782792835301376");
    ckpt_free(dec);
    uint8_t scratch[8];
    const uint8_t *hb;
    ck_assert_uint_eq(ckpt_value_int_bytes(get(ck, "huge"), scratch, &hb), 300);
    ck_assert(memcmp(hb, huge, 300) == 0);
    ck_assert(isnan(ckpt_value_float(get(ck, "nan"))));
    ck_assert(signbit(ckpt_value_float(get(ck, "negzero"))));
    double re, im;
    ckpt_value_complex(get(ck, "c"), &re, &im);
    ck_assert(re == 1.5 && im == -2.0);
    size_t sl;
    ck_assert_str_eq(ckpt_value_str(get(ck, "s"), &sl), "h\xc3\xa9llo \xf0\x9f\x98\x80");
    ck_assert(ckpt_value_kind(get(ck, "bytes")) == CKPT_KIND_BYTES);
    ck_assert(memcmp(ckpt_value_str(get(ck, "bytes"), &sl), "\x00\xff\x80z", 4) == 0 && sl == 4);
    ck_assert(ckpt_value_str(get(ck, "bytes0"), &sl) && sl == 0);
    ck_assert(ckpt_value_kind(get(ck, "ba")) == CKPT_KIND_BYTEARRAY);
    ck_assert(memcmp(ckpt_value_str(get(ck, "ba"), &sl), "\x01\x02", 2) == 0 && sl == 2);
    ck_assert(ckpt_value_kind(get(ck, "ba0")) == CKPT_KIND_BYTEARRAY);
    ck_assert_int_eq(ckpt_value_dtype(get(ck, "dtype")), CKPT_DTYPE_BFLOAT16);
    ck_assert_str_eq(ckpt_value_str(get(ck, "cuda"), NULL), "cuda:1");
    ck_assert_str_eq(ckpt_value_type_name(get(ck, "size")), "torch.Size");
    ck_assert_int_eq(get_int(ck, "size.1"), 3);
    ck_assert_uint_eq(ckpt_value_len(get(ck, "tuple5")), 5);
    ck_assert_uint_eq(ckpt_value_len(get(ck, "set")), 3);
    ck_assert(ckpt_value_kind(get(ck, "frozenset")) == CKPT_KIND_FROZENSET);
    ck_assert_int_eq(get_int(ck, "odd.3"), 8);
    const ckpt_value *c = get(ck, "cycle");
    ck_assert_ptr_eq(ckpt_value_item(c, 1), c);
    ck_assert_ptr_eq(get(ck, "cycle_again"), c);
    const ckpt_value *rtl = get(ck, "rec_tuple");
    ck_assert_ptr_eq(ckpt_value_item(ckpt_value_item(rtl, 0), 0), rtl);
    const ckpt_value *lsd = get(ck, "state_dict");
    ck_assert_str_eq(ckpt_value_type_name(lsd), "collections.OrderedDict");
    int64_t version = 0;
    const ckpt_value *md_l = ckpt_value_dict_get(ckpt_value_attrs(lsd), "_metadata");
    ck_assert_str_eq(ckpt_value_type_name(md_l), "collections.OrderedDict");
    ck_assert_int_eq(ckpt_value_int64(ckpt_value_dict_get(ckpt_value_dict_get(md_l, ""), "version"), &version), CKPT_OK);
    ck_assert_int_eq(version, 2);
    const ckpt_tensor *lw = ckpt_checkpoint_find_tensor(ck, "state_dict.w");
    const ckpt_tensor *lrow = ckpt_checkpoint_find_tensor(ck, "state_dict.row2");
    const ckpt_tensor *lt = ckpt_checkpoint_find_tensor(ck, "state_dict.t");
    ck_assert(ckpt_tensor_is_parameter(lw) && ckpt_tensor_requires_grad(lw));
    ck_assert(!ckpt_tensor_is_parameter(lt) && ckpt_tensor_requires_grad(lt));
    ck_assert_ptr_eq(ckpt_tensor_storage(lw), ckpt_tensor_storage(lrow)); /* one storage, written once */
    ck_assert_ptr_eq(ckpt_tensor_storage(lw), ckpt_tensor_storage(lt));
    ck_assert_int_eq(ckpt_tensor_storage_offset(lrow), 8);
    ck_assert_int_eq(ckpt_tensor_stride(lt)[0], 1);
    ck_assert(memcmp(ckpt_tensor_data(lrow), w + 8, 4 * sizeof(float)) == 0);
    ck_assert_ptr_eq(get(ck, "state_dict.tied"), get(ck, "state_dict.w"));
    const ckpt_tensor *ls = ckpt_checkpoint_find_tensor(ck, "state_dict.scalar");
    ck_assert(ckpt_tensor_ndim(ls) == 0 && *(const float *)ckpt_tensor_data(ls) == w[11]);
    const ckpt_tensor *lu = ckpt_checkpoint_find_tensor(ck, "state_dict.u16");
    ck_assert_int_eq(ckpt_tensor_dtype(lu), CKPT_DTYPE_UINT16);
    ck_assert(memcmp(ckpt_tensor_data(lu), u16, sizeof u16) == 0);
    ck_assert_int_eq(ckpt_tensor_dtype(ckpt_checkpoint_find_tensor(ck, "state_dict.f8")), CKPT_DTYPE_FLOAT8_E4M3FN);
    ck_assert_uint_eq(ckpt_tensor_numel(ckpt_checkpoint_find_tensor(ck, "state_dict.empty")), 0);
    /* v3 dtypes use UntypedStorage + _rebuild_tensor_v3, the rest typed storages */
    bool has_v3 = false, has_untyped = false;
    for (size_t i = 0; i < ckpt_checkpoint_num_globals(ck); i++) {
        has_v3 |= strcmp(ckpt_checkpoint_global(ck, i), "torch._utils._rebuild_tensor_v3") == 0;
        has_untyped |= strcmp(ckpt_checkpoint_global(ck, i), "torch.storage.UntypedStorage") == 0;
    }
    ck_assert(has_v3 && has_untyped);

    /* the loaded tree saves to the same bytes */
    void *mem2;
    size_t len2;
    ck_assert_int_eq(ckpt_checkpoint_save_file(ck, "/dev/null/x.pt", NULL, err), CKPT_ERR_IO);
    ck_assert_int_eq(ckpt_save_memory(ckpt_checkpoint_root(ck), NULL, &mem2, &len2, err), CKPT_OK);
    ck_assert(len2 == len && memcmp(mem, mem2, len) == 0);
    ckpt_free(mem2);
    ckpt_free(mem);
    ckpt_checkpoint_free(ck);
    ckpt_builder_free(b);
    ckpt_error_free(err);
}
END_TEST

START_TEST(builder_refuses_what_torch_cannot_load)
{
    ckpt_error *err = ckpt_error_new();
    ckpt_builder *b = ckpt_builder_new();
    float data[4] = {1, 2, 3, 4};
    int64_t shape[1] = {5}, two[1] = {2};
    const ckpt_storage *s = ckpt_builder_storage(b, CKPT_DTYPE_FLOAT32, data, sizeof data, err);
    /* out of bounds, negative stride, a typed storage viewed as another dtype */
    ck_assert_ptr_null(ckpt_builder_tensor(b, s, CKPT_DTYPE_INVALID, 1, shape, NULL, 0, 0, err));
    ck_assert_int_eq(ckpt_error_code(err), CKPT_ERR_TENSOR);
    int64_t neg[1] = {-1};
    ck_assert_ptr_null(ckpt_builder_tensor(b, s, CKPT_DTYPE_INVALID, 1, two, neg, 3, 0, err));
    ck_assert_ptr_null(ckpt_builder_tensor(b, s, CKPT_DTYPE_INT32, 1, two, NULL, 0, 0, err));
    ck_assert_int_eq(ckpt_error_code(err), CKPT_ERR_INVALID_ARG);
    ck_assert_ptr_null(ckpt_builder_storage(b, CKPT_DTYPE_QINT8, data, 4, err));
    ck_assert_ptr_null(ckpt_builder_storage(b, CKPT_DTYPE_FLOAT32, data, 6, err)); /* not whole elements */
    ck_assert_ptr_null(ckpt_builder_device(b, "CUDA", err));
    ck_assert_ptr_null(ckpt_builder_device(b, "cuda:", err));
    ck_assert_ptr_null(ckpt_builder_str(b, "\xff", 1, err));
    ck_assert_ptr_null(ckpt_builder_int_decimal(b, "12a", err));
    ckpt_value *d = ckpt_builder_dict(b);
    ck_assert_int_eq(ckpt_builder_set_attr(b, d, "x", ckpt_builder_none(b), err), CKPT_ERR_TYPE);
    ck_assert_int_eq(ckpt_builder_dict_set(b, d, ckpt_builder_list(b), ckpt_builder_none(b), err), CKPT_ERR_PICKLE);

    /* a tuple containing itself directly cannot be pickled (Python recurses forever) */
    ckpt_value *t = ckpt_builder_tuple(b);
    ckpt_builder_append(b, t, t, err);
    ckpt_value *root = ckpt_builder_dict(b);
    ckpt_builder_dict_set_str(b, root, "loop", t, err);
    void *mem;
    size_t len;
    ck_assert_int_eq(ckpt_save_memory(root, NULL, &mem, &len, err), CKPT_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(ckpt_error_message(err), "'loop'"), "%s", ckpt_error_message(err));

    /* a loaded checkpoint is immutable: the builder will not append to its containers */
    char src[4096];
    snprintf(src, sizeof src, "%s/nested.pt", fixture_dir());
    ckpt_checkpoint *ck = NULL;
    ck_assert_int_eq(ckpt_load_file(src, NULL, &ck, err), CKPT_OK);
    ckpt_value *foreign = (ckpt_value *)ckpt_checkpoint_find(ck, "list");
    ck_assert_int_eq(ckpt_builder_append(b, foreign, ckpt_builder_none(b), err), CKPT_ERR_INVALID_ARG);
    /* ...but its values can be put in a new tree and saved */
    ckpt_value *mix = ckpt_builder_ordered_dict(b);
    ck_assert_int_eq(ckpt_builder_dict_set_str(b, mix, "from_file", ckpt_checkpoint_find(ck, "inner"), err), CKPT_OK);
    ck_assert_int_eq(ckpt_builder_dict_set_str(b, mix, "own", ckpt_builder_int(b, 1), err), CKPT_OK);
    ck_assert_int_eq(ckpt_save_memory(mix, NULL, &mem, &len, err), CKPT_OK);
    ckpt_checkpoint *back = NULL;
    ck_assert_int_eq(ckpt_load_memory(mem, len, NULL, &back, err), CKPT_OK);
    ck_assert_uint_eq(ckpt_checkpoint_num_tensors(back), 1);
    uint64_t h1, h2;
    ckpt_tensor_xxh3_64(ckpt_checkpoint_find_tensor(back, "from_file.tensors.0"), &h1, NULL);
    ckpt_tensor_xxh3_64(ckpt_checkpoint_find_tensor(ck, "inner.tensors.0"), &h2, NULL);
    ck_assert_uint_eq(h1, h2);
    ckpt_free(mem);
    ckpt_checkpoint_free(back);
    ckpt_checkpoint_free(ck);

    /* a checkpoint loaded without data cannot be saved; the error names the key */
    ckpt_load_options *lo = ckpt_load_options_new();
    ckpt_load_options_set_flags(lo, CKPT_LOAD_SKIP_DATA);
    snprintf(src, sizeof src, "%s/mlp.pt", fixture_dir());
    ck_assert_int_eq(ckpt_load_file(src, lo, &ck, err), CKPT_OK);
    ck_assert_int_eq(ckpt_save_memory(ckpt_checkpoint_root(ck), NULL, &mem, &len, err), CKPT_ERR_STATE);
    ck_assert_msg(strstr(ckpt_error_message(err), "0.weight"), "%s", ckpt_error_message(err));
    ckpt_checkpoint_free(ck);
    ckpt_load_options_free(lo);

    /* a registry without OrderedDict refuses a state dict, naming the global */
    ckpt_registry *reg = ckpt_registry_new(CKPT_REGISTRY_EMPTY);
    ckpt_save_options *so = ckpt_save_options_new();
    ckpt_save_options_set_registry(so, reg);
    ck_assert_int_eq(ckpt_save_memory(mix, so, &mem, &len, err), CKPT_ERR_BLOCKED);
    ck_assert_msg(strstr(ckpt_error_message(err), "collections.OrderedDict"), "%s", ckpt_error_message(err));
    ckpt_save_options_free(so);
    ckpt_registry_free(reg);
    ckpt_builder_free(b);
    ckpt_error_free(err);
}
END_TEST

/* ---- failures leave nothing ---- */

START_TEST(failed_save_leaves_no_file)
{
    char *dir = make_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/model.pt", dir);
    FILE *f = fopen(path, "wb");
    fputs("old", f);
    fclose(f);
    ckpt_error *err = ckpt_error_new();
    ckpt_builder *b = ckpt_builder_new();
    ckpt_value *t = ckpt_builder_tuple(b);
    ckpt_builder_append(b, t, t, err);
    /* fails while pickling: the old file stays, the temporary file is gone */
    ck_assert_int_ne(ckpt_save_file(t, path, NULL, err), CKPT_OK);
    size_t n;
    char *old = (char *)tst_read_file(path, &n);
    ck_assert(n == 3 && memcmp(old, "old", 3) == 0);
    free(old);
    ck_assert_int_eq(count_entries(dir), 1);

    /* fails while writing (the file size limit stands in for a full disk) */
    enum { BIG = 8 << 20 };
    uint8_t *data = calloc(1, BIG);
    int64_t shape = BIG;
    ckpt_value *root = ckpt_builder_dict(b);
    ckpt_builder_dict_set_str(b, root, "x", ckpt_builder_tensor_from_data(b, CKPT_DTYPE_UINT8, data, 1, &shape, 0, err), err);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {1 << 20, 1 << 20};
        setrlimit(RLIMIT_FSIZE, &rl);
        ckpt_status s = ckpt_save_file(root, path, NULL, err);
        _exit(s == CKPT_ERR_IO && strstr(ckpt_error_message(err), "File too large") ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's save did not fail with an I/O error");
    old = (char *)tst_read_file(path, &n);
    ck_assert(n == 3 && memcmp(old, "old", 3) == 0); /* untouched */
    free(old);
    ck_assert_int_eq(count_entries(dir), 1); /* the temporary file is gone */

    /* success replaces the file atomically */
    ckpt_save_options *so = ckpt_save_options_new();
    ckpt_save_options_set_flags(so, CKPT_SAVE_FSYNC);
    ck_assert_int_eq(ckpt_save_file(root, path, so, err), CKPT_OK);
    ck_assert_int_eq(count_entries(dir), 1);
    ckpt_checkpoint *ck = NULL;
    ck_assert_int_eq(ckpt_load_file(path, NULL, &ck, err), CKPT_OK);
    ck_assert_str_eq(ckpt_checkpoint_archive_prefix(ck), "model");
    ckpt_checkpoint_free(ck);
    check_libzip(path);
    ckpt_save_options_free(so);
    free(data);
    ckpt_builder_free(b);
    ckpt_error_free(err);
    remove_tree(dir);
    free(dir);
}
END_TEST

/* ---- zip64, dedup, CRC ---- */

/* More than 65535 members: the end record's counts saturate and the zip64 record carries them. */
START_TEST(more_than_65535_members)
{
    enum { N = 70000 };
    ckpt_error *err = ckpt_error_new();
    ckpt_builder *b = ckpt_builder_new();
    ckpt_value *root = ckpt_builder_ordered_dict(b);
    int32_t *vals = malloc(N * sizeof *vals);
    for (int i = 0; i < N; i++) {
        vals[i] = i * 7;
        char k[32];
        snprintf(k, sizeof k, "t%d", i);
        ckpt_value *t = ckpt_builder_tensor_from_data(b, CKPT_DTYPE_INT32, &vals[i], 0, NULL, 0, err);
        ck_assert_int_eq(ckpt_builder_dict_set_str(b, root, k, t, err), CKPT_OK);
    }
    char *dir = make_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/many.pt", dir);
    ck_assert_msg(ckpt_save_file(root, path, NULL, err) == CKPT_OK, "%s", ckpt_error_message(err));
    size_t len;
    uint8_t *d = tst_read_file(path, &len);
    /* the classic end record: counts saturated at 0xffff */
    ck_assert_uint_eq(ck_le32(d + len - 22), 0x06054b50u);
    ck_assert_uint_eq(ck_le16(d + len - 22 + 10), 0xffff);
    ckpt_checkpoint *ck = NULL;
    ck_assert_msg(ckpt_load_file(path, NULL, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    ck_assert_uint_eq(ckpt_checkpoint_num_tensors(ck), N);
    ck_assert_int_eq(*(const int32_t *)ckpt_tensor_data(ckpt_checkpoint_find_tensor(ck, "t69999")), 69999 * 7);
    ckpt_checkpoint_free(ck);
    check_libzip(path);
    free(d);
    free(vals);
    remove_tree(dir);
    free(dir);
    ckpt_builder_free(b);
    ckpt_error_free(err);
}
END_TEST

START_TEST(dedup_stores_identical_storages_once)
{
    ckpt_error *err = ckpt_error_new();
    ckpt_builder *b = ckpt_builder_new();
    ckpt_value *root = ckpt_builder_ordered_dict(b);
    float a[64], c[64];
    int32_t ia[64];
    for (int i = 0; i < 64; i++) a[i] = c[i] = (float)i;
    memcpy(ia, a, sizeof ia); /* same bytes, other dtype: never merged */
    int64_t n = 64;
    ckpt_builder_dict_set_str(b, root, "a", ckpt_builder_tensor_from_data(b, CKPT_DTYPE_FLOAT32, a, 1, &n, 0, err), err);
    ckpt_builder_dict_set_str(b, root, "c", ckpt_builder_tensor_from_data(b, CKPT_DTYPE_FLOAT32, c, 1, &n, 0, err), err);
    ckpt_builder_dict_set_str(b, root, "i", ckpt_builder_tensor_from_data(b, CKPT_DTYPE_INT32, ia, 1, &n, 0, err), err);
    for (int dedup = 0; dedup < 2; dedup++) {
        ckpt_save_options *so = ckpt_save_options_new();
        ckpt_save_options_set_flags(so, dedup ? CKPT_SAVE_DEDUP : 0);
        void *mem;
        size_t len;
        ck_assert_int_eq(ckpt_save_memory(root, so, &mem, &len, err), CKPT_OK);
        ckpt_checkpoint *ck = NULL;
        ck_assert_int_eq(ckpt_load_memory(mem, len, NULL, &ck, err), CKPT_OK);
        const ckpt_storage *sa = ckpt_tensor_storage(ckpt_checkpoint_find_tensor(ck, "a"));
        const ckpt_storage *sc = ckpt_tensor_storage(ckpt_checkpoint_find_tensor(ck, "c"));
        const ckpt_storage *si = ckpt_tensor_storage(ckpt_checkpoint_find_tensor(ck, "i"));
        ck_assert((sa == sc) == (dedup == 1));
        ck_assert_ptr_ne(sa, si);
        ck_assert(memcmp(ckpt_storage_data(sc), c, sizeof c) == 0);
        ckpt_checkpoint_free(ck);
        ckpt_free(mem);
        ckpt_save_options_free(so);
    }
    ckpt_builder_free(b);
    ckpt_error_free(err);
}
END_TEST

START_TEST(crc32_matches_zlib)
{
    enum { N = 1 << 20 };
    uint8_t *buf = malloc(N + 64);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < N + 64; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
    for (int it = 0; it < 3000; it++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t off = x % 64, len = it < 2000 ? (size_t)(x >> 8) % 4096 : (size_t)(x >> 8) % N;
        uint32_t seed = (uint32_t)(x >> 32);
        ck_assert_uint_eq(ck_crc32(seed, buf + off, len), ck_crc32_reference(seed, buf + off, len));
    }
    ck_assert_uint_eq(ck_crc32(0, buf, N), (uint32_t)crc32(0, buf, N));
    printf("crc32: %s\n", ck_crc32_accelerated() ? "PCLMULQDQ path tested against zlib" : "zlib only on this CPU");
    free(buf);
}
END_TEST

/*
 * A checkpoint over 4 GiB (zip64 sizes and offsets, 24-byte data descriptors). Needs about 5 GB of
 * disk and a minute: runs only with CKPT_TEST_ZIP64=1.
 */
START_TEST(zip64_over_4gib)
{
    if (!getenv("CKPT_TEST_ZIP64")) {
        printf("SKIP zip64_over_4gib: set CKPT_TEST_ZIP64=1 to write and read a 4.5 GiB checkpoint (needs ~5 GB in "
               "$TMPDIR)\n");
        return;
    }
    const uint64_t big = (9ull << 29); /* 4.5 GiB */
    uint8_t *p = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ck_assert(p != MAP_FAILED);
    for (uint64_t i = 0; i < big; i += 1 << 20) p[i] = (uint8_t)(i >> 20); /* a few non-zero bytes */
    p[big - 1] = 0xab;
    ckpt_error *err = ckpt_error_new();
    ckpt_builder *b = ckpt_builder_new();
    ckpt_value *root = ckpt_builder_ordered_dict(b);
    int64_t shape = (int64_t)big;
    ckpt_builder_dict_set_str(b, root, "big", ckpt_builder_tensor_from_data(b, CKPT_DTYPE_UINT8, p, 1, &shape, 0, err), err);
    float after[3] = {1, 2, 3};
    int64_t three = 3;
    ckpt_builder_dict_set_str(b, root, "after", ckpt_builder_tensor_from_data(b, CKPT_DTYPE_FLOAT32, after, 1, &three, 0, err),
                              err);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[4096];
    snprintf(path, sizeof path, "%s/ckpt-zip64-%d.pt", tmp, (int)getpid());
    ck_assert_msg(ckpt_save_file(root, path, NULL, err) == CKPT_OK, "%s", ckpt_error_message(err));
    ckpt_load_options *lo = ckpt_load_options_new();
    ckpt_load_options_set_flags(lo, CKPT_LOAD_MMAP);
    ckpt_checkpoint *ck = NULL;
    ck_assert_msg(ckpt_load_file(path, lo, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    const ckpt_tensor *t = ckpt_checkpoint_find_tensor(ck, "big");
    ck_assert_uint_eq(ckpt_tensor_numel(t), big);
    ck_assert_uint_eq((uintptr_t)ckpt_tensor_data(t) % 64, 0);
    ck_assert(memcmp(ckpt_tensor_data(t), p, 1 << 20) == 0);
    ck_assert_uint_eq(((const uint8_t *)ckpt_tensor_data(t))[big - 1], 0xab);
    ck_assert(memcmp(ckpt_tensor_data(ckpt_checkpoint_find_tensor(ck, "after")), after, sizeof after) == 0);
    ckpt_checkpoint_free(ck);
    ckpt_load_options_free(lo);
    printf("zip64_over_4gib: %s written and read back\n", path);
    if (!getenv("CKPT_TEST_ZIP64_KEEP")) unlink(path);
    munmap(p, big);
    ckpt_builder_free(b);
    ckpt_error_free(err);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("writer");
    TCase *tc = tcase_create("pt");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, crc32_matches_zlib);
    tcase_add_test(tc, fixtures_round_trip);
    tcase_add_test(tc, mmap_loaded_saves_the_same);
    tcase_add_test(tc, builder_every_value_kind);
    tcase_add_test(tc, builder_refuses_what_torch_cannot_load);
    tcase_add_test(tc, failed_save_leaves_no_file);
    tcase_add_test(tc, more_than_65535_members);
    tcase_add_test(tc, dedup_stores_identical_storages_once);
    tcase_add_test(tc, zip64_over_4gib);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tst_run(suite()); }
