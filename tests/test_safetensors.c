/*
 * test_safetensors.c: the safetensors reader refuses everything the format forbids (each case names
 * what is wrong), loads valid files into the checkpoint model (zero copy when borrowed and aligned),
 * and the writer produces the reference library's layout: files written by the Python safetensors
 * library come back byte for byte; shared storages follow safetensors' alias rule; values the format
 * cannot hold fail with their key.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "support.h"

/* 8-byte length + header + data */
static uint8_t *make_st(const char *header, const void *data, size_t dlen, size_t *out_len)
{
    size_t h = strlen(header);
    uint8_t *p = malloc(8 + h + dlen + 1);
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(p + 8, header, h);
    if (dlen) memcpy(p + 8 + h, data, dlen);
    *out_len = 8 + h + dlen;
    return p;
}

#define FAILS(header, data, dlen, code, needle)                                                                        \
    do {                                                                                                               \
        size_t n_;                                                                                                     \
        uint8_t *f_ = make_st(header, data, dlen, &n_);                                                                \
        tst_assert_load_fails(f_, n_, code, needle);                                                                   \
        free(f_);                                                                                                      \
    } while (0)

static const float four[4] = {1, 2, 3, 4};

START_TEST(reader_refuses_malformed_headers)
{
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    size_t n;
    uint8_t *f = make_st(ok, four, 8, &n);
    ckpt_checkpoint *ck = NULL;
    ck_assert_int_eq(tst_load_mem(f, n, &ck, NULL), CKPT_OK);
    ckpt_checkpoint_free(ck);
    /* the declared header length */
    f[0] = 0xff;
    f[1] = 0xff;
    tst_assert_load_fails(f, n, CKPT_ERR_FORMAT, "past the end of the file");
    memset(f, 0, 8);
    f[4] = 1; /* 2^32 > 100,000,000 */
    tst_assert_load_fails(f, n, CKPT_ERR_FORMAT, NULL);
    free(f);
    FAILS(" {\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", four, 8, CKPT_ERR_FORMAT, NULL);
    FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", four, 8, CKPT_ERR_FORMAT, "not valid JSON");
    FAILS("{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", four, 8, CKPT_ERR_FORMAT, "UTF-8");
    FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
          "\"data_offsets\":[0,8]}}", four, 8, CKPT_ERR_FORMAT, "duplicate");
    FAILS("{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", four, 8, CKPT_ERR_FORMAT, NULL);
    FAILS("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", four, 8, CKPT_ERR_UNSUPPORTED, "'Q4'");
    FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}}", four, 8, CKPT_ERR_FORMAT, "'extra'");
    FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", four, 8, CKPT_ERR_FORMAT, "required");
    FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", four, 8, CKPT_ERR_FORMAT, "shape[0]");
    FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", four, 8, CKPT_ERR_FORMAT, "shape[0]");
    FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}}", four, 8, CKPT_ERR_FORMAT, "data_offsets");
    FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", four, 8, CKPT_ERR_FORMAT, "end before");
    FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", four, 8, CKPT_ERR_TENSOR, "need 12");
    FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", four, 8,
          CKPT_ERR_TENSOR, "overflows");
    FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}", four, 8,
          CKPT_ERR_FORMAT, "not valid JSON");
    /* the data must be tiled exactly */
    FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", four, 8, CKPT_ERR_FORMAT, "a gap");
    FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],"
          "\"data_offsets\":[4,8]}}", four, 8, CKPT_ERR_FORMAT, "overlap");
    FAILS(ok, four, 12, CKPT_ERR_FORMAT, "trailing bytes");
    FAILS(ok, four, 4, CKPT_ERR_FORMAT, "truncated");
    FAILS("{}", four, 4, CKPT_ERR_FORMAT, "trailing bytes");
    /* __metadata__ is a map of str to str */
    FAILS("{\"__metadata__\":{\"k\":1}}", NULL, 0, CKPT_ERR_FORMAT, "__metadata__['k']");
    FAILS("{\"__metadata__\":[]}", NULL, 0, CKPT_ERR_FORMAT, "__metadata__");
}
END_TEST

START_TEST(reader_loads_valid_files)
{
    /* zero-size tensors share an offset; null metadata; header padding; every dtype width */
    char h[512];
    snprintf(h, sizeof h, "%s", "{\"__metadata__\":null,\"z1\":{\"dtype\":\"I64\",\"shape\":[0,3],\"data_offsets\":[0,0]},"
             "\"z0\":{\"dtype\":\"BOOL\",\"shape\":[0],\"data_offsets\":[0,0]},"
             "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
             "\"s\":{\"dtype\":\"U16\",\"shape\":[],\"data_offsets\":[16,18]}}");
    while (strlen(h) % 8) strcat(h, " "); /* padded like the reference writer: the data is 8-aligned */
    uint8_t data[18];
    memcpy(data, four, 16);
    data[16] = 0x34;
    data[17] = 0x12;
    size_t n;
    uint8_t *f = make_st(h, data, sizeof data, &n);
    ckpt_checkpoint *ck = NULL;
    ckpt_error *err = ckpt_error_new();
    ck_assert_msg(tst_load_mem(f, n, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    ck_assert_int_eq(ckpt_checkpoint_format(ck), CKPT_FORMAT_SAFETENSORS);
    ck_assert_str_eq(ckpt_format_name(ckpt_checkpoint_format(ck)), "safetensors");
    ck_assert_str_eq(ckpt_checkpoint_archive_prefix(ck), "");
    ck_assert_uint_eq(ckpt_checkpoint_num_tensors(ck), 4);
    const char *key;
    ckpt_checkpoint_tensor(ck, 0, &key); /* file order: offsets, then name */
    ck_assert_str_eq(key, "z0");
    ckpt_checkpoint_tensor(ck, 2, &key);
    ck_assert_str_eq(key, "a");
    const ckpt_tensor *a = ckpt_checkpoint_find_tensor(ck, "a");
    ck_assert(memcmp(ckpt_tensor_data(a), four, 16) == 0);
    ck_assert_int_eq(ckpt_tensor_stride(a)[0], 2);
    const ckpt_tensor *s = ckpt_checkpoint_find_tensor(ck, "s");
    ck_assert_uint_eq(ckpt_tensor_ndim(s), 0);
    ck_assert_uint_eq(*(const uint16_t *)ckpt_tensor_data(s), 0x1234);
    ck_assert_ptr_null(ckpt_value_attrs(ckpt_checkpoint_root(ck)));
    ckpt_checkpoint_free(ck);

    /* borrowed memory: aligned tensors point into it, unaligned ones are copied */
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_load_options_set_flags(o, CKPT_LOAD_BORROW);
    uint8_t *aligned = aligned_alloc(64, (n + 63) / 64 * 64);
    memcpy(aligned, f, n);
    ck_assert_int_eq(ckpt_load_memory(aligned, n, o, &ck, err), CKPT_OK);
    size_t hl = strlen(h);
    const uint8_t *pa = ckpt_tensor_data(ckpt_checkpoint_find_tensor(ck, "a"));
    ck_assert_ptr_eq(pa, aligned + 8 + hl);
    ckpt_checkpoint_free(ck);
    ckpt_load_options_free(o);
    free(aligned);
    free(f);

    /* metadata becomes the root's __metadata__ attribute */
    /* (in the writer's canonical form, so writing it again gives the same bytes) */
    snprintf(h, sizeof h, "%s", "{\"__metadata__\":{\"format\":\"pt\",\"x\":\"\xc3\xa9\"},\"t\":{\"dtype\":\"F32\","
             "\"shape\":[1],\"data_offsets\":[0,4]}}");
    while (strlen(h) % 8) strcat(h, " ");
    f = make_st(h, four, 4, &n);
    ck_assert_int_eq(tst_load_mem(f, n, &ck, err), CKPT_OK);
    const ckpt_value *md = ckpt_value_dict_get(ckpt_value_attrs(ckpt_checkpoint_root(ck)), "__metadata__");
    ck_assert_str_eq(ckpt_value_str(ckpt_value_dict_get(md, "format"), NULL), "pt");
    ck_assert_str_eq(ckpt_value_str(ckpt_value_dict_get(md, "x"), NULL), "\xc3\xa9");
    /* and survives safetensors -> pt -> safetensors */
    void *pt;
    size_t ptlen;
    ck_assert_int_eq(ckpt_save_memory(ckpt_checkpoint_root(ck), NULL, &pt, &ptlen, err), CKPT_OK);
    ckpt_checkpoint *ck2 = NULL;
    ck_assert_int_eq(ckpt_load_memory(pt, ptlen, NULL, &ck2, err), CKPT_OK);
    ckpt_save_options *so = ckpt_save_options_new();
    ckpt_save_options_set_format(so, CKPT_SAVE_SAFETENSORS);
    void *st;
    size_t stlen;
    ck_assert_int_eq(ckpt_save_memory(ckpt_checkpoint_root(ck2), so, &st, &stlen, err), CKPT_OK);
    ck_assert(stlen == n && memcmp(st, f, n) == 0);
    ckpt_free(st);
    ckpt_free(pt);
    ckpt_save_options_free(so);
    ckpt_checkpoint_free(ck2);
    ckpt_checkpoint_free(ck);
    free(f);
    ckpt_error_free(err);
}
END_TEST

/* The writer's header, parsed here independently. */
static json_t *header_of(const uint8_t *p, size_t len, size_t *data_start)
{
    ck_assert_uint_ge(len, 8);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)p[i] << (8 * i);
    ck_assert_uint_eq(n % 8, 0);
    ck_assert_uint_le(8 + n, len);
    json_error_t je;
    json_t *j = json_loadb((const char *)p + 8, n, JSON_REJECT_DUPLICATES, &je);
    ck_assert_msg(j != NULL, "%s", je.text);
    *data_start = 8 + n;
    return j;
}

START_TEST(writer_layout_and_views)
{
    ckpt_error *err = ckpt_error_new();
    ckpt_builder *b = ckpt_builder_new();
    ckpt_value *root = ckpt_builder_ordered_dict(b);
    float m[6] = {0, 1, 2, 3, 4, 5};
    int64_t shape[2] = {2, 3}, tshape[2] = {3, 2}, tstride[2] = {1, 3}, one = 1;
    const ckpt_storage *s = ckpt_builder_storage(b, CKPT_DTYPE_FLOAT32, m, sizeof m, err);
    /* a transposed view alone on its storage: written as its logical elements */
    ckpt_builder_dict_set_str(b, root, "zt", ckpt_builder_tensor(b, s, CKPT_DTYPE_INVALID, 2, tshape, tstride, 0, 0, err), err);
    uint8_t u8 = 7;
    int64_t i64 = -5;
    ckpt_builder_dict_set_str(b, root, "b_u8", ckpt_builder_tensor_from_data(b, CKPT_DTYPE_UINT8, &u8, 1, &one, 0, err), err);
    ckpt_builder_dict_set_str(b, root, "a_i64", ckpt_builder_tensor_from_data(b, CKPT_DTYPE_INT64, &i64, 1, &one, 0, err), err);
    ckpt_builder_dict_set_str(b, root, "c_i64", ckpt_builder_tensor_from_data(b, CKPT_DTYPE_INT64, &i64, 0, NULL, 0, err), err);
    ckpt_save_options *so = ckpt_save_options_new();
    ckpt_save_options_set_format(so, CKPT_SAVE_SAFETENSORS);
    ck_assert_int_eq(ckpt_save_options_add_metadata(so, "format", "pt", err), CKPT_OK);
    void *out;
    size_t len, ds;
    ck_assert_msg(ckpt_save_memory(root, so, &out, &len, err) == CKPT_OK, "%s", ckpt_error_message(err));
    json_t *h = header_of(out, len, &ds);
    /* __metadata__ first, then by dtype (larger alignment first), then name */
    const char *expect[] = {"__metadata__", "a_i64", "c_i64", "zt", "b_u8"};
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach(h, k, v) {
        ck_assert_uint_lt(i, 5);
        ck_assert_str_eq(k, expect[i++]);
    }
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(h, "__metadata__"), "format")), "pt");
    json_t *zt = json_object_get(h, "zt");
    ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(zt, "data_offsets"), 0)), 16);
    const float *ztd = (const float *)((const uint8_t *)out + ds + 16);
    const float want[6] = {0, 3, 1, 4, 2, 5}; /* the transpose, row-major */
    ck_assert(memcmp(ztd, want, sizeof want) == 0);
    ck_assert(((const char *)out)[ds - 1] == ' ' || ((const char *)out)[ds - 1] == '}');
    json_decref(h);
    ckpt_checkpoint *ck = NULL;
    ck_assert_int_eq(ckpt_load_memory(out, len, NULL, &ck, err), CKPT_OK);
    ck_assert(memcmp(ckpt_tensor_data(ckpt_checkpoint_find_tensor(ck, "zt")), want, sizeof want) == 0);
    ckpt_checkpoint_free(ck);
    ckpt_free(out);

    /* views of one storage: the name covering it all is kept, the others become aliases */
    ckpt_value *views = ckpt_builder_ordered_dict(b);
    int64_t row = 3;
    ckpt_builder_dict_set_str(b, views, "w", ckpt_builder_tensor(b, s, CKPT_DTYPE_INVALID, 2, shape, NULL, 0, 0, err), err);
    ckpt_builder_dict_set_str(b, views, "row1", ckpt_builder_tensor(b, s, CKPT_DTYPE_INVALID, 1, &row, NULL, 3, 0, err), err);
    ckpt_builder_dict_set_str(b, views, "a_tied", ckpt_builder_tensor(b, s, CKPT_DTYPE_INVALID, 2, shape, NULL, 0, 0, err), err);
    ck_assert_int_eq(ckpt_save_memory(views, so, &out, &len, err), CKPT_OK);
    h = header_of(out, len, &ds);
    ck_assert_uint_eq(json_object_size(h), 2); /* __metadata__ + the kept name */
    json_t *meta = json_object_get(h, "__metadata__");
    ck_assert_str_eq(json_string_value(json_object_get(meta, "w")), "a_tied");
    ck_assert_str_eq(json_string_value(json_object_get(meta, "row1")), "a_tied");
    ck_assert_ptr_nonnull(json_object_get(h, "a_tied"));
    json_decref(h);
    ckpt_free(out);

    /* ...and with no name covering the storage, the save fails and says why */
    ckpt_value *partial = ckpt_builder_ordered_dict(b);
    ckpt_builder_dict_set_str(b, partial, "r0", ckpt_builder_tensor(b, s, CKPT_DTYPE_INVALID, 1, &row, NULL, 0, 0, err), err);
    ckpt_builder_dict_set_str(b, partial, "r1", ckpt_builder_tensor(b, s, CKPT_DTYPE_INVALID, 1, &row, NULL, 3, 0, err), err);
    ck_assert_int_eq(ckpt_save_memory(partial, so, &out, &len, err), CKPT_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(ckpt_error_message(err), "none of them covers"), "%s", ckpt_error_message(err));

    /* values that are not tensors: an error naming the key, or left out on request */
    ckpt_value *mixed = ckpt_builder_dict(b);
    ckpt_builder_dict_set_str(b, mixed, "epoch", ckpt_builder_int(b, 3), err);
    ckpt_builder_dict_set_str(b, mixed, "w", ckpt_builder_tensor_from_data(b, CKPT_DTYPE_INT64, &i64, 1, &one, 0, err), err);
    ck_assert_int_eq(ckpt_save_memory(mixed, so, &out, &len, err), CKPT_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(ckpt_error_message(err), "'epoch' is a int"), "%s", ckpt_error_message(err));
    ckpt_save_options_set_flags(so, CKPT_SAVE_DROP_NON_TENSORS);
    ck_assert_int_eq(ckpt_save_memory(mixed, so, &out, &len, err), CKPT_OK);
    ck_assert_int_eq(ckpt_load_memory(out, len, NULL, &ck, err), CKPT_OK);
    ck_assert_uint_eq(ckpt_checkpoint_num_tensors(ck), 1);
    ckpt_checkpoint_free(ck);
    ckpt_free(out);
    /* a dtype safetensors lacks */
    ckpt_value *cplx = ckpt_builder_dict(b);
    double z[2] = {1, 2};
    ckpt_builder_dict_set_str(b, cplx, "z", ckpt_builder_tensor_from_data(b, CKPT_DTYPE_COMPLEX128, z, 0, NULL, 0, err), err);
    ck_assert_int_eq(ckpt_save_memory(cplx, so, &out, &len, err), CKPT_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(ckpt_error_message(err), "complex128"), "%s", ckpt_error_message(err));
    ckpt_save_options_free(so);
    ckpt_builder_free(b);
    ckpt_error_free(err);
}
END_TEST

/* Fixtures convert: state dicts lose only what safetensors has no place for. */
START_TEST(fixtures_to_safetensors)
{
    const char *names[] = {"mlp", "cnn_bn", "lstm", "transformer", "tied", "views", "empty", "parameters"};
    ckpt_error *err = ckpt_error_new();
    ckpt_save_options *so = ckpt_save_options_new();
    ckpt_save_options_set_format(so, CKPT_SAVE_SAFETENSORS);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char src[4096];
        snprintf(src, sizeof src, "%s/%s.pt", tst_path("fixtures/data"), names[i]);
        ckpt_checkpoint *ck = NULL, *back = NULL;
        ck_assert_int_eq(ckpt_load_file(src, NULL, &ck, err), CKPT_OK);
        void *out;
        size_t len;
        ck_assert_msg(ckpt_save_memory(ckpt_checkpoint_root(ck), so, &out, &len, err) == CKPT_OK, "%s: %s", names[i],
                      ckpt_error_message(err));
        ck_assert_msg(ckpt_load_memory(out, len, NULL, &back, err) == CKPT_OK, "%s: %s", names[i], ckpt_error_message(err));
        /* every kept tensor has the same elements; dropped names are aliases of a kept one */
        size_t kept = 0;
        const ckpt_value *meta = ckpt_value_dict_get(ckpt_value_attrs(ckpt_checkpoint_root(back)), "__metadata__");
        for (size_t t = 0; t < ckpt_checkpoint_num_tensors(ck); t++) {
            const char *key;
            const ckpt_tensor *a = ckpt_checkpoint_tensor(ck, t, &key);
            const ckpt_tensor *bt = ckpt_checkpoint_find_tensor(back, key);
            if (!bt) {
                const ckpt_value *alias = ckpt_value_dict_get(meta, key);
                ck_assert_msg(alias != NULL, "%s: '%s' neither written nor recorded as an alias", names[i], key);
                ck_assert_ptr_eq(ckpt_tensor_storage(ckpt_checkpoint_find_tensor(ck, ckpt_value_str(alias, NULL))),
                                 ckpt_tensor_storage(a));
                continue;
            }
            kept++;
            uint64_t ha, hb;
            ck_assert_int_eq(ckpt_tensor_xxh3_64(a, &ha, NULL), CKPT_OK);
            ck_assert_int_eq(ckpt_tensor_xxh3_64(bt, &hb, NULL), CKPT_OK);
            ck_assert_msg(ha == hb, "%s: '%s' changed", names[i], key);
            ck_assert_uint_eq(ckpt_tensor_ndim(a), ckpt_tensor_ndim(bt));
        }
        ck_assert_uint_eq(kept, ckpt_checkpoint_num_tensors(back));
        ckpt_free(out);
        ckpt_checkpoint_free(back);
        ckpt_checkpoint_free(ck);
    }
    ckpt_save_options_free(so);
    ckpt_error_free(err);
}
END_TEST

/*
 * Files the Python safetensors library wrote (candle's test data): they load, every tensor's digest is
 * the XXH3 of its byte range (read here without libckpt), and writing them again gives the same bytes.
 */
START_TEST(external_safetensors_files)
{
    const char *files[] = {"candle/jfk-codes.safetensors", "candle/voices.safetensors"};
    for (size_t i = 0; i < 2; i++) {
        const char *path = tst_external(files[i]);
        if (!path) continue;
        size_t len, ds;
        uint8_t *raw = tst_read_file(path, &len);
        json_t *h = header_of(raw, len, &ds);
        ckpt_checkpoint *ck = NULL;
        ckpt_error *err = ckpt_error_new();
        ck_assert_msg(ckpt_load_file(path, NULL, &ck, err) == CKPT_OK, "%s: %s", path, ckpt_error_message(err));
        size_t ntensors = 0;
        const char *k;
        json_t *v;
        json_object_foreach(h, k, v) {
            if (!strcmp(k, "__metadata__")) continue;
            ntensors++;
            json_int_t b0 = json_integer_value(json_array_get(json_object_get(v, "data_offsets"), 0));
            json_int_t b1 = json_integer_value(json_array_get(json_object_get(v, "data_offsets"), 1));
            const ckpt_tensor *t = ckpt_checkpoint_find_tensor(ck, k);
            ck_assert_msg(t != NULL, "%s: %s missing", path, k);
            uint64_t d;
            ck_assert_int_eq(ckpt_tensor_xxh3_64(t, &d, NULL), CKPT_OK);
            ck_assert_uint_eq(d, XXH3_64bits(raw + ds + b0, (size_t)(b1 - b0)));
            ck_assert_str_eq(ckpt_dtype_name(ckpt_tensor_dtype(t)),
                             !strcmp(json_string_value(json_object_get(v, "dtype")), "I64") ? "int64" : "uint8");
        }
        ck_assert_uint_eq(ntensors, ckpt_checkpoint_num_tensors(ck));
        ckpt_save_options *so = ckpt_save_options_new();
        ckpt_save_options_set_format(so, CKPT_SAVE_SAFETENSORS);
        void *out;
        size_t olen;
        ck_assert_int_eq(ckpt_save_memory(ckpt_checkpoint_root(ck), so, &out, &olen, err), CKPT_OK);
        ck_assert_msg(olen == len && memcmp(out, raw, len) == 0, "%s: rewritten bytes differ", path);
        ckpt_free(out);
        ckpt_save_options_free(so);
        ckpt_checkpoint_free(ck);
        ckpt_error_free(err);
        json_decref(h);
        free(raw);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("safetensors");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, reader_refuses_malformed_headers);
    tcase_add_test(tc, reader_loads_valid_files);
    tcase_add_test(tc, writer_layout_and_views);
    tcase_add_test(tc, fixtures_to_safetensors);
    tcase_add_test(tc, external_safetensors_files);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tst_run(suite()); }
