/*
 * test_external.c: files written by other projects (../shared/corpus/external, never copied here;
 * every test prints SKIP when the corpus is absent).
 *
 * - Every payload file (malicious*, GHSA-*, *_sploit*, *exploit*, unsafe_*, the magic-bypass and bad
 *   torch files, the numpy/cloudpickle/logging/... samples) is refused as a file. Most are bare
 *   pickles, refused for not being a checkpoint at all; so each one is also put inside a torch zip as
 *   data.pkl (and each member of a payload zip), where the restricted unpickler must refuse it too.
 * - The zip checkpoints PyTorch 2.x wrote (candle, picklescan's new_pytorch_model.bin) load and match
 *   torch 1.13's view of them (tests/fixtures/external/<name>.json, written by gen_external_refs.py),
 *   element digests included.
 */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "support.h"
#include "zip.h"

static bool starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }
static bool ends(const char *s, const char *p)
{
    size_t a = strlen(s), b = strlen(p);
    return a >= b && strcmp(s + a - b, p) == 0;
}

/* The corpus README's list of files that carry payloads. */
static bool is_payload(const char *base)
{
    static const char *const exact[] = {"pytorch_magic_bypass.pt", "bad_pytorch.pt", "dns_exfiltration.npy",
                                        "cloudpickle_codeinjection.pkl", "io_FileIO.pkl", "logging_FileHandler.pkl",
                                        "types_CodeType.pkl", "urllib_request_urlopen.pkl"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcmp(base, exact[i]) == 0) return true;
    return starts(base, "malicious") || starts(base, "GHSA-") || strstr(base, "_sploit") || strstr(base, "exploit") ||
           starts(base, "unsafe_") || (starts(base, "object_array") && (ends(base, ".npy") || ends(base, ".npz")));
}

typedef struct {
    char path[4096];
    char label[512];
} corpus_file;

static size_t list_files(const char *dir, const char *rel, corpus_file *out, size_t n, size_t cap)
{
    DIR *d = opendir(dir);
    if (!d) return n;
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        if (e->d_name[0] == '.') continue;
        char path[4096], label[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        snprintf(label, sizeof label, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        DIR *sub = opendir(path);
        if (sub) {
            closedir(sub);
            n = list_files(path, label, out, n, cap);
            continue;
        }
        snprintf(out[n].path, sizeof out[n].path, "%s", path);
        snprintf(out[n].label, sizeof out[n].label, "%s", label);
        n++;
    }
    closedir(d);
    return n;
}

static corpus_file files[512];

static size_t corpus(void)
{
    const char *root = tst_external("");
    if (!root) return 0;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", root);
    return list_files(dir, "", files, 0, 512);
}

static const char *base_of(const char *label)
{
    const char *s = strrchr(label, '/');
    return s ? s + 1 : label;
}

/* ---- payloads ---- */

START_TEST(payload_files_refused)
{
    size_t n = corpus();
    if (!n) return;
    size_t payloads = 0;
    ckpt_error *err = ckpt_error_new();
    for (size_t i = 0; i < n; i++) {
        if (!is_payload(base_of(files[i].label))) continue;
        payloads++;
        ckpt_checkpoint *ck = NULL;
        ckpt_status s = ckpt_load_file(files[i].path, NULL, &ck, err);
        ck_assert_msg(s != CKPT_OK, "%s: a payload file loaded", files[i].label);
        ck_assert_ptr_null(ck);
        ck_assert_msg(s != CKPT_ERR_NOMEM && s != CKPT_ERR_IO, "%s: %s", files[i].label, ckpt_error_message(err));
        printf("%s: %s: %.160s\n", files[i].label, ckpt_status_name(s), ckpt_error_message(err));
    }
    ckpt_error_free(err);
    ck_assert_uint_ge(payloads, 90);
    /* the one torch-format payload is refused for its global */
    const char *unsafe = tst_external("modelscan/tests/data/unsafe_zip_pytorch.pt");
    if (unsafe) {
        err = ckpt_error_new();
        ckpt_checkpoint *ck = NULL;
        ck_assert_int_eq(ckpt_load_file(unsafe, NULL, &ck, err), CKPT_ERR_BLOCKED);
        ck_assert_str_eq(ckpt_error_global(err), "posix.system");
        ck_assert_str_eq(ckpt_error_record(err), "unsafe_zip_pytorch/data.pkl");
        ckpt_error_free(err);
    }
}
END_TEST

/* Loads bytes as archive/data.pkl of a torch zip; returns the status (message printed). */
static ckpt_status wrapped(const char *label, const uint8_t *p, size_t n, int *blocked)
{
    ckpt_error *err = ckpt_error_new();
    ckpt_checkpoint *ck = NULL;
    ckpt_status s = tst_load_pickle(p, n, NULL, 0, NULL, &ck, err);
    ck_assert_msg(s != CKPT_OK, "%s: the payload loads as a checkpoint's data.pkl", label);
    ck_assert_ptr_null(ck);
    ck_assert_msg(s == CKPT_ERR_BLOCKED || s == CKPT_ERR_PICKLE || s == CKPT_ERR_UNSUPPORTED || s == CKPT_ERR_LIMIT,
                  "%s inside a checkpoint: %s: %s", label, ckpt_status_name(s), ckpt_error_message(err));
    if (s == CKPT_ERR_BLOCKED) (*blocked)++;
    printf("%s as data.pkl: %s %s: %.160s\n", label, ckpt_status_name(s), ckpt_error_global(err) ? ckpt_error_global(err) : "",
           ckpt_error_message(err));
    ckpt_error_free(err);
    return s;
}

/* A .npy of dtype object holds a pickle after its header: skip the header (format versions 1-3). */
static void strip_npy(const uint8_t **p, size_t *n)
{
    if (*n < 10 || memcmp(*p, "\x93NUMPY", 6) != 0) return;
    size_t hdr = (*p)[6] == 1 ? 10 + ((*p)[8] | ((size_t)(*p)[9] << 8))
                              : 12 + ((*p)[8] | ((size_t)(*p)[9] << 8) | ((size_t)(*p)[10] << 16) | ((size_t)(*p)[11] << 24));
    if (hdr > *n) return;
    *p += hdr;
    *n -= hdr;
}

/* Zip members that are not pickles in the first place (torch's small records and tensor data). */
static bool not_a_pickle_member(const char *name)
{
    const char *b = strrchr(name, '/');
    b = b ? b + 1 : name;
    return !strcmp(b, "version") || !strcmp(b, "byteorder") || !strcmp(b, "serialization_id") ||
           (strstr(name, "/data/") && strspn(b, "0123456789") == strlen(b));
}

START_TEST(payload_pickles_refused_inside_a_checkpoint)
{
    size_t n = corpus();
    if (!n) return;
    int tried = 0, blocked = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_payload(base_of(files[i].label))) continue;
        size_t len;
        uint8_t *data = tst_read_file(files[i].path, &len);
        if (len >= 4 && memcmp(data, "PK\x03\x04", 4) == 0) {
            /* a zip of payloads: each member it holds (when libckpt's reader can read them) */
            ck_arena arena;
            ck_arena_init(&arena, UINT64_MAX);
            ck_zip z;
            if (ck_zip_open(&z, data, len, &arena, 1000, NULL) == CKPT_OK) {
                for (size_t k = 0; k < z.count; k++) {
                    const uint8_t *p;
                    if (not_a_pickle_member(z.members[k].name)) continue;
                    if (ck_zip_read(&z, &z.members[k], &arena, true, &p, NULL) != CKPT_OK) continue;
                    size_t plen = (size_t)z.members[k].size;
                    strip_npy(&p, &plen);
                    char label[1024];
                    snprintf(label, sizeof label, "%s!%s", files[i].label, z.members[k].name);
                    wrapped(label, p, plen, &blocked);
                    tried++;
                }
            }
            ck_arena_release(&arena);
        } else {
            const uint8_t *p = data;
            size_t plen = len;
            strip_npy(&p, &plen);
            wrapped(files[i].label, p, plen, &blocked);
            tried++;
        }
        free(data);
    }
    printf("%d payloads tried inside a checkpoint, %d refused for a global\n", tried, blocked);
    ck_assert_int_ge(tried, 90);
    ck_assert_int_ge(blocked, tried * 9 / 10); /* nearly every payload names a global; the rest are malformed */
}
END_TEST

/* The benign samples of the same corpus load once inside a checkpoint: ['a', 'b', 'c']. */
START_TEST(benign_pickles_load_inside_a_checkpoint)
{
    static const char *const benign[] = {"picklescan/tests/data/benign0_v0.pkl", "picklescan/tests/data/benign0_v3.pkl",
                                         "picklescan/tests/data/benign0_v4.pkl"};
    for (size_t i = 0; i < sizeof benign / sizeof benign[0]; i++) {
        const char *path = tst_external(benign[i]);
        if (!path) return;
        size_t len;
        uint8_t *data = tst_read_file(path, &len);
        ckpt_checkpoint *ck = NULL;
        ckpt_error *err = ckpt_error_new();
        ck_assert_msg(tst_load_pickle(data, len, NULL, 0, NULL, &ck, err) == CKPT_OK, "%s: %s", benign[i],
                      ckpt_error_message(err));
        const ckpt_value *r = ckpt_checkpoint_root(ck);
        ck_assert_int_eq(ckpt_value_kind(r), CKPT_KIND_LIST);
        ck_assert_uint_eq(ckpt_value_len(r), 3);
        size_t n;
        ck_assert_str_eq(ckpt_value_str(ckpt_value_item(r, 2), &n), "c");
        ckpt_checkpoint_free(ck);
        ckpt_error_free(err);
        free(data);
        /* as a file it is a bare pickle, not a checkpoint */
        ck_assert_int_eq(ckpt_load_file(path, NULL, &ck, NULL), CKPT_ERR_FORMAT);
    }
}
END_TEST

/* ---- PyTorch 2.x checkpoints ---- */

static const struct { const char *ref, *file; } torch_files[] = {
    {"candle_test", "candle/test.pt"},
    {"candle_test_with_key", "candle/test_with_key.pt"},
    {"candle_fortran_tensor_3d", "candle/fortran_tensor_3d.pth"},
    {"picklescan_new_pytorch_model", "picklescan/tests/data/new_pytorch_model.bin"},
};

START_TEST(torch_checkpoints_match_torch)
{
    const char *path = tst_external(torch_files[_i].file);
    if (!path) return;
    char p[4096];
    snprintf(p, sizeof p, "%s", path);
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/external/%s.json", torch_files[_i].ref);
    json_error_t jerr;
    json_t *ref = json_load_file(tst_path(rel), JSON_ALLOW_NUL, &jerr);
    ck_assert_msg(ref != NULL, "%s: %s", rel, jerr.text);
    for (unsigned flags = 0; flags <= CKPT_LOAD_MMAP; flags += CKPT_LOAD_MMAP) {
        ckpt_load_options *o = ckpt_load_options_new();
        ckpt_load_options_set_flags(o, flags);
        ckpt_error *err = ckpt_error_new();
        ckpt_checkpoint *ck = NULL;
        ck_assert_msg(ckpt_load_file(p, o, &ck, err) == CKPT_OK, "%s: %s", torch_files[_i].file, ckpt_error_message(err));
        char *text = NULL;
        ck_assert_int_eq(ckpt_checkpoint_to_json(ck, "x", 0, &text, err), CKPT_OK);
        json_t *got = json_loads(text, JSON_ALLOW_NUL, &jerr);
        ck_assert_ptr_nonnull(got);
        json_object_del(got, "file");
        json_t *want = json_deep_copy(ref);
        json_object_del(want, "file");
        if (!json_equal(want, got)) {
            char *a = json_dumps(want, JSON_INDENT(1)), *b = json_dumps(got, JSON_INDENT(1));
            ck_abort_msg("%s differs from torch's view\n--- torch\n%s\n--- libckpt\n%s", torch_files[_i].file, a, b);
        }
        ck_assert_uint_ge(ckpt_checkpoint_num_tensors(ck), 1);
        json_decref(want);
        json_decref(got);
        ckpt_free(text);
        ckpt_checkpoint_free(ck);
        ckpt_error_free(err);
        ckpt_load_options_free(o);
    }
    json_decref(ref);
}
END_TEST

/* The candle tensors, element by element (torch 1.13: torch.arange(1, 9).reshape(2, 4) and a
 * Fortran-ordered arange(24).reshape(2, 3, 4)). */
START_TEST(candle_elements)
{
    const char *path = tst_external("candle/test.pt");
    if (!path) return;
    ckpt_checkpoint *ck = NULL;
    ck_assert_int_eq(ckpt_load_file(path, NULL, &ck, NULL), CKPT_OK);
    const ckpt_tensor *t = ckpt_checkpoint_find_tensor(ck, "test");
    ck_assert_ptr_nonnull(t);
    int64_t v[8];
    ck_assert_int_eq(ckpt_tensor_copy_contiguous(t, v, sizeof v, NULL), CKPT_OK);
    for (int i = 0; i < 8; i++) ck_assert_int_eq(v[i], i + 1);
    ckpt_checkpoint_free(ck);
    path = tst_external("candle/fortran_tensor_3d.pth");
    if (!path) return;
    ck_assert_int_eq(ckpt_load_file(path, NULL, &ck, NULL), CKPT_OK);
    t = ckpt_checkpoint_find_tensor(ck, "tensor_fortran");
    ck_assert_ptr_nonnull(t);
    ck_assert(!ckpt_tensor_is_contiguous(t));
    int64_t w[24];
    ck_assert_int_eq(ckpt_tensor_copy_contiguous(t, w, sizeof w, NULL), CKPT_OK);
    const int64_t *raw = ckpt_tensor_data(t);
    const int64_t *st = ckpt_tensor_stride(t);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) ck_assert_int_eq(w[(i * 3 + j) * 4 + k], raw[i * st[0] + j * st[1] + k * st[2]]);
    ckpt_checkpoint_free(ck);
}
END_TEST

/* picklescan's pytorch_model.bin is the legacy (torch < 1.6) format: it loads as such (test_formats
 * compares it with torch's view, tests/fixtures/external/picklescan_pytorch_model.json). */
START_TEST(legacy_format_loads)
{
    const char *path = tst_external("picklescan/tests/data/pytorch_model.bin");
    if (!path) return;
    ckpt_error *err = ckpt_error_new();
    ckpt_checkpoint *ck = NULL;
    ck_assert_msg(ckpt_load_file(path, NULL, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    ck_assert_int_eq(ckpt_checkpoint_format(ck), CKPT_FORMAT_LEGACY);
    ckpt_checkpoint_free(ck);
    ckpt_error_free(err);
}
END_TEST

/* Other projects' data files are named for what they are. */
START_TEST(other_formats_named)
{
    static const struct { const char *file; ckpt_status code; const char *needle; } cases[] = {
        {"candle/test.npy", CKPT_ERR_FORMAT, "a NumPy .npy array"},
        {"candle/test.npz", CKPT_ERR_FORMAT, "not in a folder"},
        /* candle's .safetensors files load since issue 6: test_safetensors checks them */
        {"modelscan/tests/data/password_protected.zip", CKPT_ERR_ZIP, "encrypted (flag bit 0x1)"},
        {"picklescan/tests/data/benign_password_protected.zip", CKPT_ERR_ZIP, "encrypted (flag bit 0x1)"},
        {"picklescan/tests/data/malicious1.7z", CKPT_ERR_FORMAT, "a 7-Zip archive"},
        {"picklescan/tests/data/bad_pytorch.pt", CKPT_ERR_FORMAT, "unrecognised binary data"},
        {"picklescan/tests/data/pytorch_magic_bypass.pt", CKPT_ERR_FORMAT, "a bare pickle"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = tst_external(cases[i].file);
        if (!path) continue;
        ckpt_error *err = ckpt_error_new();
        ckpt_checkpoint *ck = NULL;
        ckpt_status s = ckpt_load_file(path, NULL, &ck, err);
        ck_assert_msg(s == cases[i].code, "%s: %s: %s", cases[i].file, ckpt_status_name(s), ckpt_error_message(err));
        ck_assert_msg(strstr(ckpt_error_message(err), cases[i].needle) != NULL, "%s: '%s' lacks '%s'", cases[i].file,
                      ckpt_error_message(err), cases[i].needle);
        ckpt_error_free(err);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("external");
    TCase *tc = tcase_create("corpus");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, payload_files_refused);
    tcase_add_test(tc, payload_pickles_refused_inside_a_checkpoint);
    tcase_add_test(tc, benign_pickles_load_inside_a_checkpoint);
    tcase_add_loop_test(tc, torch_checkpoints_match_torch, 0, (int)(sizeof torch_files / sizeof torch_files[0]));
    tcase_add_test(tc, candle_elements);
    tcase_add_test(tc, legacy_format_loads);
    tcase_add_test(tc, other_formats_named);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tst_run(suite()); }
