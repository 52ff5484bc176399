/*
 * test_fixtures.c: every fixture written by real torch loads and matches torch's own view
 * (tests/fixtures/data/<name>.json, written by ref_inspect.py from torch.load) field by field:
 * shapes, strides, offsets, storage keys and sizes, values, and XXH3 digests of every tensor's
 * elements. CKPT_FIXTURE_DIR points the suite at freshly generated fixtures (the CI interop run).
 *
 * A fixture that needs globals outside the default allowlist has a sidecar <name>.allow (lines
 * `allow MODULE.NAME`, `preset NAME`, `handler MODULE.NAME`, `#` comments): it is compared using a
 * registry built from those lines, and the default registry must refuse it, naming a global that the
 * sidecar allows.
 */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "support.h"

static const char *fixture_dir(void)
{
    const char *d = getenv("CKPT_FIXTURE_DIR");
    return d ? d : tst_path("fixtures/data");
}

/* Names of all <name>.pt fixtures that have a <name>.json reference. */
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

/* Deep JSON equality with a path for the first difference. */
static int json_diff(json_t *a, json_t *b, char *path, size_t cap)
{
    if (json_typeof(a) != json_typeof(b) && !(json_is_boolean(a) && json_is_boolean(b))) return 1;
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b)) return 1;
        const char *k;
        json_t *v;
        json_object_foreach(a, k, v) {
            json_t *w = json_object_get(b, k);
            size_t l = strlen(path);
            snprintf(path + l, cap - l, ".%s", k);
            if (!w || json_diff(v, w, path, cap)) return 1;
            path[l] = '\0';
        }
        return 0;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) return 1;
        for (size_t i = 0; i < json_array_size(a); i++) {
            size_t l = strlen(path);
            snprintf(path + l, cap - l, "[%zu]", i);
            if (json_diff(json_array_get(a, i), json_array_get(b, i), path, cap)) return 1;
            path[l] = '\0';
        }
        return 0;
    }
    return !json_equal(a, b);
}

/* The registry a fixture's <name>.allow sidecar asks for, or NULL (the default registry) when it has none. */
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
        ckpt_status s = strcmp(line, "allow") == 0     ? ckpt_registry_add_safe_globals(r, &a, 1, err)
                        : strcmp(line, "preset") == 0  ? ckpt_registry_add_preset(r, a, err)
                        : strcmp(line, "handler") == 0 ? ckpt_registry_enable_handlers(r, &a, 1, err)
                                                       : CKPT_ERR_INVALID_ARG;
        ck_assert_msg(s == CKPT_OK, "%s: '%s %s': %s", path, line, a, ckpt_error_message(err));
    }
    fclose(f);
    ckpt_error_free(err);
    return r;
}

static void check_fixture(const char *name)
{
    char pt[4096], ref_path[4096];
    snprintf(pt, sizeof pt, "%s/%s.pt", fixture_dir(), name);
    snprintf(ref_path, sizeof ref_path, "%s/%s.json", fixture_dir(), name);
    json_error_t jerr;
    json_t *ref = json_load_file(ref_path, JSON_ALLOW_NUL, &jerr);
    ck_assert_msg(ref != NULL, "%s: %s", ref_path, jerr.text);

    ckpt_error *err = ckpt_error_new();
    ckpt_checkpoint *ck = NULL;
    ckpt_registry *reg = sidecar_registry(name);
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_load_options_set_registry(o, reg);
    if (reg) {
        /* refused by default, naming a global the sidecar allows */
        ck_assert_int_eq(ckpt_load_file(pt, NULL, &ck, err), CKPT_ERR_BLOCKED);
        const char *g = ckpt_error_global(err), *dot = g ? strrchr(g, '.') : NULL;
        ck_assert_msg(dot != NULL, "%s: no refused global in '%s'", pt, ckpt_error_message(err));
        char module[512];
        snprintf(module, sizeof module, "%.*s", (int)(dot - g), g);
        ck_assert_msg(ckpt_registry_is_allowed(reg, module, dot + 1), "%s: refused '%s', which %s.allow does not allow",
                      pt, g, name);
    }
    /* TorchScript fixtures are read as data (the other formats ignore the flag) */
    ckpt_load_options_set_flags(o, CKPT_LOAD_TORCHSCRIPT);
    ckpt_status s = ckpt_load_file(pt, o, &ck, err);
    ck_assert_msg(s == CKPT_OK, "%s: %s", pt, ckpt_error_message(err));
    char *text = NULL;
    ck_assert_int_eq(ckpt_checkpoint_to_json(ck, name, 0, &text, err), CKPT_OK);
    json_t *got = json_loads(text, JSON_ALLOW_NUL, &jerr);
    ck_assert_msg(got != NULL, "libckpt JSON does not parse: %s", jerr.text);
    json_object_del(ref, "file");
    json_object_del(got, "file");
    char path[1024] = "";
    if (json_diff(ref, got, path, sizeof path)) {
        char *a = json_dumps(ref, JSON_INDENT(1)), *b = json_dumps(got, JSON_INDENT(1));
        ck_abort_msg("%s differs from torch's view at %s\n--- torch\n%.3000s\n--- libckpt\n%.3000s", name, path, a, b);
    }

    /* every indexed tensor is found again by its key, and its contiguous copy hashes to the digest */
    for (size_t i = 0; i < ckpt_checkpoint_num_tensors(ck); i++) {
        const char *key;
        const ckpt_tensor *t = ckpt_checkpoint_tensor(ck, i, &key);
        ck_assert_ptr_eq(ckpt_checkpoint_find_tensor(ck, key), t);
        if (!ckpt_tensor_storage(t)) continue; /* meta tensors and wrappers have no data */
        uint64_t h;
        ck_assert_int_eq(ckpt_tensor_xxh3_64(t, &h, NULL), CKPT_OK);
        size_t n = (size_t)ckpt_tensor_nbytes(t);
        void *copy = malloc(n ? n : 1);
        ck_assert_int_eq(ckpt_tensor_copy_contiguous(t, copy, n, NULL), CKPT_OK);
        ck_assert_uint_eq(XXH3_64bits(copy, n), h);
        free(copy);
    }

    /* mmap mode and metadata-only mode agree with the copying load */
    ckpt_load_options_set_flags(o, CKPT_LOAD_MMAP | CKPT_LOAD_TORCHSCRIPT);
    ckpt_checkpoint *mm = NULL;
    ck_assert_int_eq(ckpt_load_file(pt, o, &mm, err), CKPT_OK);
    char *text2 = NULL;
    ck_assert_int_eq(ckpt_checkpoint_to_json(mm, name, 0, &text2, err), CKPT_OK);
    ck_assert_str_eq(text, text2);
    ckpt_load_options_set_flags(o, CKPT_LOAD_SKIP_DATA | CKPT_LOAD_TORCHSCRIPT);
    ckpt_checkpoint *meta = NULL;
    ck_assert_int_eq(ckpt_load_file(pt, o, &meta, err), CKPT_OK);
    ck_assert_uint_eq(ckpt_checkpoint_num_tensors(meta), ckpt_checkpoint_num_tensors(ck));
    for (size_t i = 0; i < ckpt_checkpoint_num_tensors(meta); i++) {
        const ckpt_tensor *t = ckpt_checkpoint_tensor(meta, i, NULL);
        ck_assert(ckpt_tensor_numel(t) == 0 || ckpt_tensor_data(t) == NULL);
    }
    ckpt_checkpoint_free(meta);
    ckpt_checkpoint_free(mm);
    ckpt_load_options_free(o);
    ckpt_free(text2);
    ckpt_free(text);
    json_decref(got);
    json_decref(ref);
    ckpt_checkpoint_free(ck);
    ckpt_error_free(err);
    ckpt_registry_free(reg);
}

START_TEST(all_fixtures_match_torch)
{
    size_t n;
    char **names = list_fixtures(&n);
    ck_assert_msg(n >= 10, "only %zu fixtures found in %s", n, fixture_dir());
    for (size_t i = 0; i < n; i++) {
        check_fixture(names[i]);
        free(names[i]);
    }
    free(names);
}
END_TEST

/* Tied weights and views share one storage object; distinct storages stay distinct. */
START_TEST(shared_storages_stay_shared)
{
    char pt[4096];
    snprintf(pt, sizeof pt, "%s/views.pt", fixture_dir());
    ckpt_checkpoint *ck = NULL;
    ckpt_error *err = ckpt_error_new();
    ck_assert_msg(ckpt_load_file(pt, NULL, &ck, err) == CKPT_OK, "%s", ckpt_error_message(err));
    size_t n = ckpt_checkpoint_num_tensors(ck);
    ck_assert_uint_ge(n, 3);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            const ckpt_storage *a = ckpt_tensor_storage(ckpt_checkpoint_tensor(ck, i, NULL));
            const ckpt_storage *b = ckpt_tensor_storage(ckpt_checkpoint_tensor(ck, j, NULL));
            bool same_key = strcmp(ckpt_storage_key(a), ckpt_storage_key(b)) == 0;
            ck_assert(same_key == (a == b));
        }
    ckpt_checkpoint_free(ck);

    snprintf(pt, sizeof pt, "%s/tied.pt", fixture_dir());
    ck_assert_int_eq(ckpt_load_file(pt, NULL, &ck, err), CKPT_OK);
    size_t shared = 0;
    n = ckpt_checkpoint_num_tensors(ck);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (ckpt_tensor_storage(ckpt_checkpoint_tensor(ck, i, NULL)) == ckpt_tensor_storage(ckpt_checkpoint_tensor(ck, j, NULL)))
                shared++;
    ck_assert_uint_ge(shared, 1);
    ckpt_checkpoint_free(ck);
    ckpt_error_free(err);
}
END_TEST

/* Dotted keys reach into nested containers, and dict keys containing dots match whole. */
START_TEST(find_by_dotted_key)
{
    char pt[4096];
    snprintf(pt, sizeof pt, "%s/training.pt", fixture_dir());
    ckpt_checkpoint *ck = NULL;
    ck_assert_int_eq(ckpt_load_file(pt, NULL, &ck, NULL), CKPT_OK);
    const ckpt_value *epoch = ckpt_checkpoint_find(ck, "epoch");
    int64_t e = 0;
    ck_assert_ptr_nonnull(epoch);
    ck_assert_int_eq(ckpt_value_int64(epoch, &e), CKPT_OK);
    ck_assert_int_eq(e, 3);
    ck_assert_ptr_nonnull(ckpt_checkpoint_find(ck, "args.name"));
    ck_assert_ptr_null(ckpt_checkpoint_find(ck, "args.nope"));
    ck_assert_ptr_null(ckpt_checkpoint_find(ck, "epoch.x"));
    ck_assert_ptr_eq(ckpt_checkpoint_find(ck, ""), ckpt_checkpoint_root(ck));
    /* an optimizer state entry under an int key */
    size_t n = ckpt_checkpoint_num_tensors(ck);
    bool found_state = false;
    for (size_t i = 0; i < n; i++) {
        const char *key;
        ckpt_checkpoint_tensor(ck, i, &key);
        if (strncmp(key, "optimizer.state.", 16) == 0) found_state = true;
        ck_assert_ptr_nonnull(ckpt_checkpoint_find_tensor(ck, key));
    }
    ck_assert(found_state);
    ckpt_checkpoint_free(ck);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("fixtures");
    TCase *tc = tcase_create("torch");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, all_fixtures_match_torch);
    tcase_add_test(tc, shared_storages_stay_shared);
    tcase_add_test(tc, find_by_dotted_key);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tst_run(suite()); }
