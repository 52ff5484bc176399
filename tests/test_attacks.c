/*
 * test_attacks.c: the attack corpus (tests/attacks/data, written by tests/attacks/gen_attacks.py).
 *
 * Every file is loaded from disk (copy and mmap) and from memory (copy and borrow) and must fail with
 * exactly the status and message its MANIFEST line names, without touching anything outside the
 * library's memory: no file appears, no child process runs, no descriptor leaks (ASan checks the
 * memory side when tools/test.sh runs this suite in the sanitizer build).
 *
 * The memo "billion laughs" files load (they are valid pickles whose tree expansion is 2^64 paths);
 * their tests prove every walker stays linear in time and memory: the load under a small allocation
 * budget, the tensor index, ckpt_walk, JSON, digests, find, the scan-mode VM, saving as .pt and as
 * safetensors (and loading those back), the model-mode search, and free.
 * NOTE for later walkers: every new consumer of the value graph (converters, model-mode schema checks,
 * savers/writers) must be added to test_laughs_* below, over the same files, in the same change.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"
#include "node.h"
#include "options.h"
#include "unpickler.h"
#include "walk.h"

#define MARKER "/tmp/libckpt-attack-pwned"

typedef struct {
    char file[128];
    char status[48];
    char needle[256];
    char what[256];
} entry;

static entry entries[256];
static size_t n_entries;

static void read_manifest(void)
{
    if (n_entries) return;
    /* runs while the suite is built, outside any test: no ck_assert here */
    FILE *f = fopen(tst_path("attacks/data/MANIFEST"), "r");
    if (!f) {
        fprintf(stderr, "tests/attacks/data/MANIFEST missing: run tests/attacks/gen_attacks.py\n");
        exit(1);
    }
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        line[strcspn(line, "\n")] = '\0';
        if (n_entries == sizeof entries / sizeof entries[0]) {
            fprintf(stderr, "MANIFEST has more than %zu entries\n", n_entries);
            exit(1);
        }
        entry *e = &entries[n_entries++];
        char *fields[4] = {0};
        char *p = line;
        for (int i = 0; i < 4; i++) {
            fields[i] = p;
            char *tab = strchr(p, '\t');
            if (tab) { *tab = '\0'; p = tab + 1; } else { p = p + strlen(p); }
        }
        snprintf(e->file, sizeof e->file, "%s", fields[0]);
        snprintf(e->status, sizeof e->status, "%s", fields[1]);
        snprintf(e->needle, sizeof e->needle, "%s", fields[2]);
        snprintf(e->what, sizeof e->what, "%s", fields[3]);
    }
    fclose(f);
}

static const char *data_path(const char *file)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s", tst_path("attacks/data/"));
    strncat(buf, file, sizeof buf - strlen(buf) - 1);
    return buf;
}

static void expect(const entry *e, ckpt_status s, ckpt_checkpoint *c, ckpt_error *err, const char *how)
{
    ck_assert_msg(strcmp(ckpt_status_name(s), e->status) == 0, "%s (%s) via %s: expected %s, got %s: %s", e->file,
                  e->what, how, e->status, ckpt_status_name(s), ckpt_error_message(err));
    if (s == CKPT_OK) {
        /* a file that loads never had its payload parsed: no code-running global was even seen */
        for (size_t i = 0; i < ckpt_checkpoint_num_globals(c); i++)
            ck_assert_msg(strcmp(ckpt_checkpoint_global(c, i), "os.system") != 0, "%s: os.system was unpickled", e->file);
    } else {
        ck_assert_msg(c == NULL, "%s: a failed load returned a checkpoint", e->file);
        ck_assert_msg(strstr(ckpt_error_message(err), e->needle) != NULL, "%s (%s) via %s: message '%s' lacks '%s'",
                      e->file, e->what, how, ckpt_error_message(err), e->needle);
    }
    ckpt_checkpoint_free(c);
}

/* ---- "nothing outside the library's memory was touched" ---- */

static volatile sig_atomic_t children;
static void on_sigchld(int sig) { (void)sig; children++; }

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

static int dir_entries(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

START_TEST(test_manifest_complete)
{
    read_manifest();
    /* the generator wrote every class: a truncated manifest must not make the suite vacuous */
    ck_assert_uint_ge(n_entries, 60);
    for (size_t i = 0; i < n_entries; i++) {
        struct stat st;
        ck_assert_msg(stat(data_path(entries[i].file), &st) == 0, "%s listed but missing", entries[i].file);
        ck_assert_msg(ckpt_status_name(CKPT_OK) != NULL && entries[i].status[0], "%s has no status", entries[i].file);
    }
}
END_TEST

START_TEST(test_attack_file)
{
    read_manifest();
    ck_assert_uint_lt((size_t)_i, n_entries);
    const entry *e = &entries[_i];
    unlink(MARKER);
    char tmpl[] = "/tmp/ckpt-attack-cwd-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    char old[4096];
    ck_assert_ptr_nonnull(getcwd(old, sizeof old));
    ck_assert_int_eq(chdir(tmpl), 0);
    struct sigaction sa = {0}, prev;
    sa.sa_handler = on_sigchld;
    sigaction(SIGCHLD, &sa, &prev);
    children = 0;
    int fds = count_fds();

    const char *path = data_path(e->file);
    ckpt_error *err = ckpt_error_new();
    ckpt_checkpoint *c = NULL;
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_status s = ckpt_load_file(path, NULL, &c, err);
    expect(e, s, c, err, "ckpt_load_file");
    ckpt_load_options_set_flags(o, CKPT_LOAD_MMAP);
    s = ckpt_load_file(path, o, &c, err);
    expect(e, s, c, err, "ckpt_load_file(MMAP)");
    size_t len;
    uint8_t *buf = tst_read_file(path, &len);
    s = ckpt_load_memory(buf, len, NULL, &c, err);
    expect(e, s, c, err, "ckpt_load_memory");
    ckpt_load_options_set_flags(o, CKPT_LOAD_BORROW);
    s = ckpt_load_memory(buf, len, o, &c, err);
    expect(e, s, c, err, "ckpt_load_memory(BORROW)");
    free(buf);
    ckpt_load_options_free(o);
    ckpt_error_free(err);

    ck_assert_msg(access(MARKER, F_OK) != 0, "%s: the payload ran (%s exists)", e->file, MARKER);
    ck_assert_msg(dir_entries(tmpl) == 0, "%s: the load created files in the working directory", e->file);
    ck_assert_msg(children == 0, "%s: a child process ran during the load", e->file);
    ck_assert_msg(count_fds() == fds, "%s: file descriptors leaked (%d before, %d after)", e->file, fds, count_fds());
    sigaction(SIGCHLD, &prev, NULL);
    ck_assert_int_eq(chdir(old), 0);
    rmdir(tmpl);
}
END_TEST

/* ---- billion laughs: linear in every walker ---- */

typedef struct {
    size_t visits;
    size_t max_path;
} walk_count;

static ckpt_walk_action count_visit(const char *path, size_t len, const ckpt_value *v, void *user)
{
    (void)path; (void)v;
    walk_count *w = user;
    w->visits++;
    if (len > w->max_path) w->max_path = len;
    return CKPT_WALK_CONTINUE;
}

/* Loads a laughs file under a 2 MiB allocation budget (the expanded tree would need ~2^64 nodes). */
static ckpt_checkpoint *load_laughs(const char *file)
{
    ckpt_load_options *o = ckpt_load_options_new();
    ck_assert_int_eq(ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_ALLOC, 2u << 20), CKPT_OK);
    ckpt_error *err = ckpt_error_new();
    ckpt_checkpoint *c = NULL;
    ckpt_status s = ckpt_load_file(data_path(file), o, &c, err);
    ck_assert_msg(s == CKPT_OK, "%s: %s", file, ckpt_error_message(err));
    ckpt_error_free(err);
    ckpt_load_options_free(o);
    return c;
}

/*
 * The savers over the same graph: the .pt pickler memoizes shared nodes, so the file stays small and
 * loads back with the same shape (same tensor count, same walk); the safetensors converter names each
 * tensor once, by its first path, and leaves out the empty containers, but never expands the DAG.
 */
static void save_laughs(const ckpt_checkpoint *c, const char *file, size_t max_visits, size_t tensors)
{
    ckpt_error *err = ckpt_error_new();
    void *pt = NULL;
    size_t len = 0;
    ck_assert_msg(ckpt_save_memory(ckpt_checkpoint_root(c), NULL, &pt, &len, err) == CKPT_OK, "%s: %s", file,
                  ckpt_error_message(err));
    ck_assert_msg(len < 64 * max_visits + 4096, "%s: saved %zu bytes for %zu nodes", file, len, max_visits);
    ckpt_load_options *o = ckpt_load_options_new();
    ck_assert_int_eq(ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_ALLOC, 2u << 20), CKPT_OK);
    ckpt_checkpoint *back = NULL;
    ck_assert_msg(ckpt_load_memory(pt, len, o, &back, err) == CKPT_OK, "%s: %s", file, ckpt_error_message(err));
    ck_assert_uint_eq(ckpt_checkpoint_num_tensors(back), tensors);
    walk_count a = {0}, b = {0};
    ck_assert_int_eq(ckpt_walk(c, NULL, count_visit, &a, NULL), CKPT_OK);
    ck_assert_int_eq(ckpt_walk(back, NULL, count_visit, &b, NULL), CKPT_OK);
    ck_assert_uint_eq(a.visits, b.visits);
    ckpt_checkpoint_free(back);
    ckpt_load_options_free(o);
    ckpt_free(pt);

    ckpt_save_options *so = ckpt_save_options_new();
    ckpt_save_options_set_format(so, CKPT_SAVE_SAFETENSORS);
    ckpt_save_options_set_flags(so, CKPT_SAVE_DROP_NON_TENSORS);
    void *st = NULL;
    ck_assert_msg(ckpt_save_memory(ckpt_checkpoint_root(c), so, &st, &len, err) == CKPT_OK, "%s: %s", file,
                  ckpt_error_message(err));
    ck_assert_msg(len < 64 * max_visits + 4096, "%s: safetensors of %zu bytes", file, len);
    ck_assert_msg(ckpt_load_memory(st, len, NULL, &back, err) == CKPT_OK, "%s: %s", file, ckpt_error_message(err));
    ck_assert_uint_eq(ckpt_checkpoint_num_tensors(back), tensors);
    ckpt_checkpoint_free(back);
    ckpt_free(st);
    ckpt_save_options_free(so);
    ckpt_error_free(err);
}

static void check_laughs(const char *file, size_t max_visits, size_t tensors, const char *deep_key)
{
    ckpt_checkpoint *c = load_laughs(file);
    /* the tensor index is one walk: a shared tensor is listed once */
    ck_assert_uint_eq(ckpt_checkpoint_num_tensors(c), tensors);
    for (size_t i = 0; i < tensors; i++) {
        uint64_t h;
        ck_assert_int_eq(ckpt_tensor_xxh3_64(ckpt_checkpoint_tensor(c, i, NULL), &h, NULL), CKPT_OK);
    }
    walk_count w = {0};
    ck_assert_int_eq(ckpt_walk(c, NULL, count_visit, &w, NULL), CKPT_OK);
    ck_assert_msg(w.visits <= max_visits, "%s: walk made %zu visits (a linear walk makes at most %zu)", file, w.visits,
                  max_visits);
    char *json = NULL;
    ck_assert_int_eq(ckpt_checkpoint_to_json(c, file, 0, &json, NULL), CKPT_OK);
    ck_assert_msg(strlen(json) < 200 * max_visits, "%s: JSON of %zu bytes for %zu nodes", file, strlen(json),
                  max_visits);
    ckpt_free(json);
    /* find walks one path, however many paths lead to the same node */
    ck_assert_ptr_nonnull(ckpt_checkpoint_find(c, deep_key));
    ck_assert_ptr_null(ckpt_checkpoint_find(c, "0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.nope"));
    save_laughs(c, file, max_visits, tensors);
    ckpt_checkpoint_free(c);

    /* model mode searches the same graph for a module or a state dict, once per node */
    ckpt_load_options *o = ckpt_load_options_new();
    ck_assert_int_eq(ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_ALLOC, 2u << 20), CKPT_OK);
    ckpt_load_options_set_flags(o, CKPT_LOAD_MODEL);
    ckpt_error *err = ckpt_error_new();
    if (ckpt_load_file(data_path(file), o, &c, err) == CKPT_OK) {
        /* nothing to convert (test_model's module_dag_stays_linear covers a DAG of modules) */
        ck_assert_uint_eq(ckpt_checkpoint_num_modules(c), 0);
        ck_assert_ptr_null(ckpt_checkpoint_state_dict(c));
        ckpt_schema *schema = NULL;
        ck_assert_int_eq(ckpt_schema_from_checkpoint(c, &schema, err), CKPT_ERR_NOT_FOUND);
        ckpt_checkpoint_free(c);
    } else {
        ck_assert_msg(strstr(ckpt_error_message(err), "no model and no state dict found") != NULL, "%s: %s", file,
                      ckpt_error_message(err));
    }
    ckpt_error_free(err);
    ckpt_load_options_free(o);
}

static ckpt_walk_action nop_visit(const char *p, size_t l, const ckpt_value *v, void *u)
{
    (void)p; (void)l; (void)v;
    (*(size_t *)u)++;
    return CKPT_WALK_CONTINUE;
}

/* The scan-mode VM (what `ckpt scan` runs) over the same data.pkl, under the same small budget. */
static void scan_laughs(const char *file)
{
    size_t len;
    uint8_t *zip = tst_read_file(data_path(file), &len);
    /* data.pkl is the first member, stored: its bytes start after the local header */
    size_t nlen = zip[26] | (zip[27] << 8), xlen = zip[28] | (zip[29] << 8);
    size_t plen = zip[22] | (zip[23] << 8) | ((size_t)zip[24] << 16);
    const uint8_t *pkl = zip + 30 + nlen + xlen;
    ck_limits lim;
    ck_limits_resolve(NULL, plen, &lim);
    lim.max_alloc = 2u << 20;
    ck_store st;
    ck_store_init(&st, lim.max_alloc);
    ck_unpickler u;
    ck_unpickler_init(&u, &st, &lim);
    u.mode = CK_MODE_SCAN;
    ckpt_error err;
    ck_error_init(&err);
    size_t pos = 0;
    ckpt_value *root = NULL;
    ckpt_status s = ck_unpickle(&u, pkl, plen, &pos, &root, &err);
    /* scan mode has no persistent loader: a laughs file with a tensor stops at its BINPERSID, after a
     * linear amount of work; the others scan through */
    if (s == CKPT_OK) {
        size_t visits = 0;
        ck_assert_int_eq(ck_walk(root, st.next_id, lim.max_depth, nop_visit, &visits, &err), CKPT_OK);
        ck_assert_uint_lt(visits, 2000);
    } else {
        ck_assert_int_eq(s, CKPT_ERR_PICKLE);
    }
    ck_assert_uint_lt(st.next_id, 10000);
    ck_store_release(&st);
    free(zip);
}

START_TEST(test_laughs_tuples)
{
    /* 64 tuples + the tensor + its atoms: tuples are visited once each, their atoms at every path */
    check_laughs("laughs_tuples.pt", 200, 1, "0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1");
    scan_laughs("laughs_tuples.pt");
}
END_TEST

START_TEST(test_laughs_lists)
{
    check_laughs("laughs_lists.pt", 200, 0, "0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1.0.1");
    scan_laughs("laughs_lists.pt");
}
END_TEST

START_TEST(test_laughs_dicts)
{
    check_laughs("laughs_dicts.pt", 400, 0, "k7.k0.k7.k0.k7.k0.k7.k0.k7.k0.k7.k0.k7.k0.k7.k0.k7.k0.k7.k0.k3");
    scan_laughs("laughs_dicts.pt");
}
END_TEST

/* ckpt_checkpoint_find backtracks over keys that contain dots; its step budget must hold however the
 * search ends (it used to wrap around after running out, turning into an exponential search). */
START_TEST(test_find_backtracking_bounded)
{
    ckpt_checkpoint *c = load_laughs("find_self_dict_dotted_keys.pt");
    const ckpt_value *root = ckpt_checkpoint_root(c);
    ck_assert_ptr_eq(ckpt_checkpoint_find(c, "a.a.a"), root);
    ck_assert_ptr_eq(ckpt_checkpoint_find(c, "a.a.a.a.a.a.a"), root);
    char key[512] = "";
    for (int i = 0; i < 80; i++) strcat(key, "a.");
    strcat(key, "x"); /* 80 components then a miss: tribonacci(80) ~ 10^20 splits without a budget */
    ck_assert_ptr_null(ckpt_checkpoint_find(c, key));
    ck_assert_ptr_null(ckpt_checkpoint_find_tensor(c, key));
    ckpt_checkpoint_free(c);
}
END_TEST

/* Atoms are listed at every path: the JSON document of a string shared by 2,000 paths would be 2 GiB
 * from a 1 MiB file. It is bounded like an allocation (the load itself stays linear and succeeds). */
static void json_refused(const char *file)
{
    ckpt_checkpoint *c = NULL;
    ck_assert_int_eq(ckpt_load_file(data_path(file), NULL, &c, NULL), CKPT_OK);
    ckpt_error *err = ckpt_error_new();
    char *json = NULL;
    ck_assert_int_eq(ckpt_checkpoint_to_json(c, "x", 0, &json, err), CKPT_ERR_LIMIT);
    ck_assert_ptr_null(json);
    ck_assert_ptr_nonnull(strstr(ckpt_error_message(err), "the JSON document would exceed"));
    ckpt_error_free(err);
    ckpt_checkpoint_free(c);
}

START_TEST(test_json_shared_atoms_bounded)
{
    json_refused("shared_bigint_100000_paths.pt");
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_checkpoint *c = NULL;
    ck_assert_int_eq(ckpt_load_file(data_path("shared_string_2000_paths.pt"), o, &c, NULL), CKPT_OK);
    walk_count w = {0};
    ck_assert_int_eq(ckpt_walk(c, NULL, count_visit, &w, NULL), CKPT_OK);
    ck_assert_uint_eq(w.visits, 2001); /* the root list, then the string at each of its 2,000 paths */
    ckpt_error *err = ckpt_error_new();
    char *json = NULL;
    ck_assert_int_eq(ckpt_checkpoint_to_json(c, "x", 0, &json, err), CKPT_ERR_LIMIT);
    ck_assert_ptr_null(json);
    ck_assert_ptr_nonnull(strstr(ckpt_error_message(err), "the JSON document would exceed"));
    ckpt_error_free(err);
    ckpt_checkpoint_free(c);
    ckpt_load_options_free(o);
}
END_TEST

/* A load from memory owns no file: freeing it must leave every descriptor of the caller open (it used
 * to close descriptor 0, the zero of a calloc'd mapping record). */
START_TEST(test_load_memory_keeps_caller_fds)
{
    if (fcntl(0, F_GETFD) == -1) ck_assert_int_eq(open("/dev/null", O_RDONLY), 0);
    size_t len;
    uint8_t *buf = tst_read_file(tst_path("fixtures/data/mlp.pt"), &len);
    ckpt_checkpoint *c = NULL;
    ck_assert_int_eq(ckpt_load_memory(buf, len, NULL, &c, NULL), CKPT_OK);
    ckpt_checkpoint_free(c);
    ck_assert_int_eq(ckpt_load_memory(buf, 10, NULL, &c, NULL), CKPT_ERR_ZIP); /* a failed load frees too */
    ck_assert_msg(fcntl(0, F_GETFD) != -1, "descriptor 0 was closed by the library");
    free(buf);
}
END_TEST

/* Read as data on request (CKPT_LOAD_TORCHSCRIPT, what `ckpt inspect` does), the TorchScript attack file
 * loads its data.pkl only: the payload in constants.pkl and the code/ folder are never parsed. */
START_TEST(test_torchscript_as_data_skips_payload)
{
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_load_options_set_flags(o, CKPT_LOAD_TORCHSCRIPT);
    ckpt_checkpoint *c = NULL;
    ckpt_error *err = ckpt_error_new();
    ckpt_status s = ckpt_load_file(data_path("zip_torchscript.pt"), o, &c, err);
    ck_assert_msg(s == CKPT_OK, "%s", ckpt_error_message(err));
    ck_assert_int_eq(ckpt_checkpoint_format(c), CKPT_FORMAT_TORCHSCRIPT);
    for (size_t i = 0; i < ckpt_checkpoint_num_globals(c); i++)
        ck_assert_str_ne(ckpt_checkpoint_global(c, i), "os.system");
    ck_assert_ptr_nonnull(ckpt_checkpoint_find_tensor(c, "w"));
    ck_assert_int_ne(access(MARKER, F_OK), 0);
    ckpt_checkpoint_free(c);
    ckpt_error_free(err);
    ckpt_load_options_free(o);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("attacks");
    TCase *tc = tcase_create("corpus");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_manifest_complete);
    read_manifest();
    tcase_add_loop_test(tc, test_attack_file, 0, (int)n_entries);
    tcase_add_test(tc, test_laughs_tuples);
    tcase_add_test(tc, test_laughs_lists);
    tcase_add_test(tc, test_laughs_dicts);
    tcase_add_test(tc, test_find_backtracking_bounded);
    tcase_add_test(tc, test_json_shared_atoms_bounded);
    tcase_add_test(tc, test_load_memory_keeps_caller_fds);
    tcase_add_test(tc, test_torchscript_as_data_skips_payload);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tst_run(suite()); }
