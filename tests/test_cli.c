/*
 * test_cli.c: the `ckpt` tool as a user runs it. Exit status 0 for a checkpoint, 1 when a global is
 * refused, 2 for malformed input, I/O errors and usage errors; `inspect --json` prints a document
 * that parses and has exactly the keys of docs/inspect-json.md (and equals torch's view of the
 * fixture); errors go to stderr and nothing (no partial JSON) to stdout. The binary comes from
 * $CKPT_EXE (set by meson).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"
#include "support.h"
#include "zip.h"

typedef struct {
    int status; /* exit status, or -1 when killed */
    char *out, *err;
} run_result;

static char *slurp(int fd)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1 >= cap) buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0) break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    close(fd);
    return buf;
}

/* Runs $CKPT_EXE with up to 4 arguments (NULL-terminated). */
static run_result run(const char *a1, const char *a2, const char *a3, const char *a4)
{
    const char *exe = getenv("CKPT_EXE");
    ck_assert_msg(exe && *exe, "CKPT_EXE is not set (run the suite through meson test)");
    int out[2], err[2];
    ck_assert_int_eq(pipe(out), 0);
    ck_assert_int_eq(pipe(err), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(out[0]);
        close(err[0]);
        close(out[1]);
        close(err[1]);
        execl(exe, "ckpt", a1, a2, a3, a4, (char *)NULL);
        _exit(126);
    }
    close(out[1]);
    close(err[1]);
    run_result r;
    /* stderr is small; read stdout first (it can be large), then stderr */
    r.out = slurp(out[0]);
    r.err = slurp(err[0]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

static void done(run_result *r)
{
    free(r->out);
    free(r->err);
}

static char tmpdir[512];

static void setup(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/ckpt_cli_XXXXXX", t && *t ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Writes bytes to tmpdir/name; returns the path (static buffer). */
static const char *write_tmp(const char *name, const void *p, size_t n)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
    return path;
}

/* ---- exit codes ---- */

START_TEST(inspect_fixture_exits_0)
{
    run_result r = run("inspect", tst_path("fixtures/data/mlp.pt"), NULL, NULL);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "0.weight"));
    ck_assert_ptr_nonnull(strstr(r.out, "float32"));
    ck_assert_ptr_nonnull(strstr(r.out, "4 tensors"));
    ck_assert_ptr_nonnull(strstr(r.out, "torch._utils._rebuild_tensor_v2"));
    ck_assert_str_eq(r.err, "");
    done(&r);
    r = run("version", NULL, NULL, NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, ckpt_version_string()));
    done(&r);
}
END_TEST

START_TEST(refused_global_exits_1)
{
    static const char pkl[] = "\x80\x02" "cos\nsystem\nX\x04\x00\x00\x00" "true\x85R.";
    size_t len;
    uint8_t *z = tst_make_checkpoint(pkl, sizeof pkl - 1, NULL, 0, &len);
    const char *path = write_tmp("evil.pt", z, len);
    free(z);
    for (int json = 0; json < 2; json++) {
        run_result r = run("inspect", path, json ? "--json" : NULL, NULL);
        ck_assert_msg(r.status == 1, "exit %d: %s", r.status, r.err);
        ck_assert_str_eq(r.out, "");
        ck_assert_ptr_nonnull(strstr(r.err, "global 'os.system' is not allowed"));
        ck_assert_ptr_nonnull(strstr(r.err, "archive/data.pkl: byte 2, opcode GLOBAL"));
        ck_assert_ptr_nonnull(strstr(r.err, "--allow os.system"));
        done(&r);
    }
    const char *ext = tst_external("modelscan/tests/data/unsafe_zip_pytorch.pt");
    if (ext) {
        run_result r = run("inspect", ext, NULL, NULL);
        ck_assert_msg(r.status == 1, "exit %d: %s", r.status, r.err);
        done(&r);
    }
}
END_TEST

START_TEST(malformed_exits_2)
{
    size_t len;
    uint8_t *data = tst_read_file(tst_path("fixtures/data/mlp.pt"), &len);
    const char *cases[][2] = {{"truncated.pt", NULL}, {"empty.pt", ""}, {"text.pt", "hello\n"},
                              {"page.pt", "<!doctype html><html></html>"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = cases[i][1] ? write_tmp(cases[i][0], cases[i][1], strlen(cases[i][1]))
                                       : write_tmp(cases[i][0], data, len / 2);
        for (int json = 0; json < 2; json++) {
            run_result r = run("inspect", path, json ? "--json" : NULL, NULL);
            ck_assert_msg(r.status == 2, "%s: exit %d: %s", cases[i][0], r.status, r.err);
            ck_assert_msg(r.out[0] == '\0', "%s: stdout is not empty: %s", cases[i][0], r.out);
            ck_assert_msg(strstr(r.err, path) != NULL, "%s: stderr does not name the file: %s", cases[i][0], r.err);
            done(&r);
        }
    }
    /* a CRC error inside a tensor record */
    uint8_t *bad = malloc(len);
    memcpy(bad, data, len);
    ck_arena arena;
    ck_arena_init(&arena, UINT64_MAX);
    ck_zip z;
    ck_assert_int_eq(ck_zip_open(&z, data, len, &arena, 100, NULL), CKPT_OK);
    const ck_zip_member *rec = ck_zip_find(&z, "mlp/data/0", 10);
    ck_assert_ptr_nonnull(rec);
    bad[rec->data_offset + 5] ^= 0x55;
    ck_arena_release(&arena);
    const char *path = write_tmp("corrupt.pt", bad, len);
    run_result r = run("inspect", path, NULL, NULL);
    ck_assert_msg(r.status == 2, "exit %d: %s", r.status, r.err);
    ck_assert_ptr_nonnull(strstr(r.err, "CRC-32 mismatch"));
    done(&r);
    free(bad);
    free(data);
    /* I/O errors and usage errors */
    r = run("inspect", "/nonexistent/model.pt", NULL, NULL);
    ck_assert_int_eq(r.status, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "/nonexistent/model.pt"));
    done(&r);
    r = run("inspect", tmpdir, NULL, NULL);
    ck_assert_int_eq(r.status, 2);
    done(&r);
    r = run("inspect", NULL, NULL, NULL);
    ck_assert_int_eq(r.status, 2);
    done(&r);
    r = run("inspect", tst_path("fixtures/data/mlp.pt"), "--no-such-option", NULL);
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.out, "");
    done(&r);
    r = run(NULL, NULL, NULL, NULL);
    ck_assert_int_eq(r.status, 2);
    done(&r);
    r = run("no-such-command", NULL, NULL, NULL);
    ck_assert_int_eq(r.status, 2);
    done(&r);
}
END_TEST

/* ---- --json ---- */

static void expect_keys(json_t *obj, const char *const *keys, size_t n, const char *what)
{
    ck_assert_msg(json_is_object(obj), "%s is not an object", what);
    ck_assert_msg(json_object_size(obj) == n, "%s has %zu keys, %zu expected", what, json_object_size(obj), n);
    for (size_t i = 0; i < n; i++) ck_assert_msg(json_object_get(obj, keys[i]) != NULL, "%s lacks '%s'", what, keys[i]);
}

static bool is_int_array(json_t *a)
{
    if (!json_is_array(a)) return false;
    for (size_t i = 0; i < json_array_size(a); i++)
        if (!json_is_integer(json_array_get(a, i))) return false;
    return true;
}

/* The documented shape (docs/inspect-json.md), checked field by field. */
static void check_schema(json_t *doc, const char *file)
{
    static const char *const top[] = {"file", "format", "archive_prefix", "byteorder", "tensors", "values", "globals"};
    expect_keys(doc, top, 7, "the document");
    ck_assert_str_eq(json_string_value(json_object_get(doc, "file")), file);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "format")), "zip");
    ck_assert(json_is_string(json_object_get(doc, "archive_prefix")));
    const char *bo = json_string_value(json_object_get(doc, "byteorder"));
    ck_assert(bo && (strcmp(bo, "little") == 0 || strcmp(bo, "big") == 0));
    static const char *const tkeys[] = {"key", "dtype", "shape", "stride", "storage_offset", "storage_key",
                                        "storage_nbytes", "requires_grad", "is_parameter", "xxh3_64"};
    json_t *tensors = json_object_get(doc, "tensors");
    ck_assert(json_is_array(tensors));
    for (size_t i = 0; i < json_array_size(tensors); i++) {
        json_t *t = json_array_get(tensors, i);
        expect_keys(t, tkeys, 10, "a tensor");
        ck_assert(json_is_string(json_object_get(t, "key")));
        ck_assert(ckpt_dtype_from_name(json_string_value(json_object_get(t, "dtype"))) != CKPT_DTYPE_INVALID);
        ck_assert(is_int_array(json_object_get(t, "shape")));
        ck_assert(is_int_array(json_object_get(t, "stride")));
        ck_assert_uint_eq(json_array_size(json_object_get(t, "shape")), json_array_size(json_object_get(t, "stride")));
        ck_assert(json_is_integer(json_object_get(t, "storage_offset")));
        ck_assert(json_is_string(json_object_get(t, "storage_key")));
        ck_assert(json_is_integer(json_object_get(t, "storage_nbytes")));
        ck_assert(json_is_boolean(json_object_get(t, "requires_grad")));
        ck_assert(json_is_boolean(json_object_get(t, "is_parameter")));
        const char *h = json_string_value(json_object_get(t, "xxh3_64"));
        ck_assert(h && strlen(h) == 16 && strspn(h, "0123456789abcdef") == 16);
    }
    json_t *values = json_object_get(doc, "values");
    ck_assert(json_is_array(values));
    for (size_t i = 0; i < json_array_size(values); i++) {
        json_t *v = json_array_get(values, i);
        ck_assert(json_is_string(json_object_get(v, "key")));
        const char *type = json_string_value(json_object_get(v, "type"));
        ck_assert(type != NULL);
        bool container = !strcmp(type, "list") || !strcmp(type, "tuple") || !strcmp(type, "dict") ||
                         !strcmp(type, "collections.OrderedDict") || !strcmp(type, "set") || !strcmp(type, "frozenset") ||
                         !strcmp(type, "torch.Size");
        bool hex = !strcmp(type, "bytes") || !strcmp(type, "bytearray");
        ck_assert_msg(container == (json_object_get(v, "len") != NULL), "value %zu (%s): len iff container", i, type);
        ck_assert_msg(hex == (json_object_get(v, "hex") != NULL), "value %zu (%s): hex iff bytes", i, type);
        if (container) ck_assert(json_is_integer(json_object_get(v, "len")));
        if (!container && !hex) ck_assert_msg(json_object_get(v, "value") != NULL, "value %zu (%s) has no value", i, type);
        if (!strcmp(type, "int")) ck_assert(json_is_string(json_object_get(v, "value")));
        if (!strcmp(type, "float")) ck_assert(json_is_string(json_object_get(v, "value")));
        if (!strcmp(type, "bool")) ck_assert(json_is_boolean(json_object_get(v, "value")));
        if (!strcmp(type, "NoneType")) ck_assert(json_is_null(json_object_get(v, "value")));
    }
    json_t *globals = json_object_get(doc, "globals");
    ck_assert(json_is_array(globals));
    for (size_t i = 0; i < json_array_size(globals); i++) {
        const char *g = json_string_value(json_array_get(globals, i));
        ck_assert(g && strchr(g, '.'));
        if (i) ck_assert_msg(strcmp(json_string_value(json_array_get(globals, i - 1)), g) < 0, "globals not sorted/unique");
    }
}

START_TEST(json_follows_the_schema)
{
    static const char *const fixtures[] = {"mlp", "nested", "training", "dtypes", "views"};
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        char rel[128], path[4096];
        snprintf(rel, sizeof rel, "fixtures/data/%s.pt", fixtures[i]);
        snprintf(path, sizeof path, "%s", tst_path(rel));
        run_result r = run("inspect", path, "--json", NULL);
        ck_assert_msg(r.status == 0, "%s: exit %d: %s", fixtures[i], r.status, r.err);
        json_error_t jerr;
        json_t *doc = json_loads(r.out, JSON_ALLOW_NUL, &jerr);
        ck_assert_msg(doc != NULL, "%s: output does not parse: %s (line %d)", fixtures[i], jerr.text, jerr.line);
        check_schema(doc, path);
        /* and it is torch's view of the file (the reference written by ref_inspect.py) */
        snprintf(rel, sizeof rel, "fixtures/data/%s.json", fixtures[i]);
        json_t *ref = json_load_file(tst_path(rel), JSON_ALLOW_NUL, &jerr);
        ck_assert_ptr_nonnull(ref);
        json_object_del(ref, "file");
        json_object_del(doc, "file");
        ck_assert_msg(json_equal(ref, doc), "%s: ckpt inspect --json differs from torch's view", fixtures[i]);
        /* --mmap gives the same document */
        run_result m = run("inspect", path, "--json", "--mmap");
        ck_assert_int_eq(m.status, 0);
        json_t *doc2 = json_loads(m.out, JSON_ALLOW_NUL, &jerr);
        ck_assert_ptr_nonnull(doc2);
        json_object_del(doc2, "file");
        ck_assert(json_equal(doc, doc2));
        json_decref(doc2);
        done(&m);
        json_decref(ref);
        json_decref(doc);
        done(&r);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("ckpt");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, inspect_fixture_exits_0);
    tcase_add_test(tc, refused_global_exits_1);
    tcase_add_test(tc, malformed_exits_2);
    tcase_add_test(tc, json_follows_the_schema);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tst_run(suite()); }
