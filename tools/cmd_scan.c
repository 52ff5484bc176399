/*
 * cmd_scan.c: `ckpt scan PATH... [-r] [--json] [--allow ...]`: the globals every pickle of each file
 * references, classified allowed / not_allowed / never_allowed. Exit status: 1 when any global is not
 * allowed (even in a file that also failed to parse: Python would have run the payload before reaching
 * the error), else 2 when a file could not be read or parsed, else 0.
 */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

typedef struct {
    bool json;
    const ckpt_load_options *opts;
    bool any_refused, any_error;
} scan_ctx;

static json_t *jstr_or(const char *s, const char *fallback)
{
    json_t *j = json_string(s); /* NULL when s is not UTF-8 */
    return j ? j : json_string(fallback);
}

/* A file that could not be scanned: a JSON line of format "unknown", or "PATH: error: MSG". */
static void report_error(const scan_ctx *x, const char *file, const char *msg)
{
    if (!x->json) {
        printf("%s: error: %s\n", file, msg);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "file", jstr_or(file, "?"));
    json_object_set_new(o, "format", json_string("unknown"));
    json_object_set_new(o, "pickles", json_array());
    json_object_set_new(o, "globals", json_array());
    json_object_set_new(o, "error", jstr_or(msg, "error"));
    char *text = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT);
    if (text) puts(text);
    free(text);
    json_decref(o);
}

/* from_walk: found by -r; files that are not checkpoints or pickles are then skipped silently. */
static void scan_one(scan_ctx *x, const char *path, bool from_walk)
{
    ckpt_error *err = ckpt_error_new();
    ckpt_scan_result *r = NULL;
    ckpt_status s = ckpt_scan_file(path, x->opts, &r, err);
    if (from_walk && s == CKPT_ERR_FORMAT && ckpt_scan_num_pickles(r) == 0) {
        ckpt_scan_result_free(r);
        ckpt_error_free(err);
        return;
    }
    if (s) x->any_error = true;
    if (r && ckpt_scan_worst(r) != CKPT_GLOBAL_ALLOWED) x->any_refused = true;
    if (!r) {
        report_error(x, path, ckpt_error_message(err));
    } else if (x->json) {
        char *text = NULL;
        if (ckpt_scan_result_to_json(r, path, &text, err) == CKPT_OK) puts(text);
        else report_error(x, path, ckpt_error_message(err));
        ckpt_free(text);
    } else {
        size_t n = ckpt_scan_num_globals(r), np = ckpt_scan_num_pickles(r);
        printf("%s: %s, %zu pickle%s, %zu global%s\n", path, ckpt_scan_format(r), np, np == 1 ? "" : "s", n,
               n == 1 ? "" : "s");
        for (size_t i = 0; i < n; i++) {
            const char *rec = ckpt_scan_global_first_record(r, i);
            const char *why = ckpt_scan_global_reason(r, i);
            printf("  %-13s %6llu  %s%sbyte %llu  %s%s%s%s\n", ckpt_global_status_name(ckpt_scan_global_status(r, i)),
                   (unsigned long long)ckpt_scan_global_count(r, i), rec, rec[0] ? " " : "",
                   (unsigned long long)ckpt_scan_global_first_offset(r, i), ckpt_scan_global_name(r, i),
                   why ? " (" : "", why ? why : "", why ? ")" : "");
        }
        if (s) printf("  error: %s\n", ckpt_scan_error_message(r));
    }
    fflush(stdout);
    ckpt_scan_result_free(r);
    ckpt_error_free(err);
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Depth-first over a directory tree with an explicit stack (no recursion); entries in name order;
 * symbolic links are not followed (no loops, no escaping the tree). */
static void walk_dir(scan_ctx *x, const char *root)
{
    size_t cap = 16, n = 0;
    char **stack = malloc(cap * sizeof *stack);
    if (!stack) return;
    stack[n++] = strdup(root);
    while (n) {
        char *dir = stack[--n];
        if (!dir) continue;
        DIR *d = opendir(dir);
        if (!d) {
            x->any_error = true;
            report_error(x, dir, "cannot open directory");
            free(dir);
            continue;
        }
        char **names = NULL;
        size_t nn = 0, ncap = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            if (nn == ncap) {
                ncap = ncap ? ncap * 2 : 32;
                char **nn2 = realloc(names, ncap * sizeof *names);
                if (!nn2) break;
                names = nn2;
            }
            names[nn++] = strdup(e->d_name);
        }
        closedir(d);
        qsort(names, nn, sizeof *names, cmp_names);
        size_t sub_first = n; /* subdirectories are pushed in reverse so they pop in name order */
        for (size_t i = 0; i < nn; i++) {
            if (!names[i]) continue;
            size_t len = strlen(dir) + strlen(names[i]) + 2;
            char *path = malloc(len);
            if (path) snprintf(path, len, "%s/%s", dir, names[i]);
            struct stat st;
            if (path && lstat(path, &st) == 0) {
                if (S_ISREG(st.st_mode)) {
                    scan_one(x, path, true);
                } else if (S_ISDIR(st.st_mode)) {
                    if (n == cap) {
                        char **ns = realloc(stack, 2 * cap * sizeof *stack);
                        if (ns) { stack = ns; cap *= 2; }
                    }
                    if (n < cap) { stack[n++] = path; path = NULL; }
                }
            }
            free(path);
            free(names[i]);
        }
        for (size_t a = sub_first, b = n; b > a + 1; a++, b--) {
            char *t = stack[a];
            stack[a] = stack[b - 1];
            stack[b - 1] = t;
        }
        free(names);
        free(dir);
    }
    free(stack);
}

int cmd_scan(int argc, char **argv)
{
    scan_ctx x = {0};
    bool recursive = false;
    cli_allow allow = {0};
    int npaths = 0;
    char **paths = calloc((size_t)argc, sizeof *paths);
    if (!paths) return EXIT_ERROR;
    for (int i = 1; i < argc; i++) {
        int r = cli_allow_option(&allow, "scan", argc, argv, &i);
        if (r < 0) { free(paths); cli_allow_free(&allow); return EXIT_ERROR; }
        if (r > 0) continue;
        if (strcmp(argv[i], "--json") == 0) x.json = true;
        else if (strcmp(argv[i], "-r") == 0 || strcmp(argv[i], "--recursive") == 0) recursive = true;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "ckpt scan: unknown option '%s'\n", argv[i]);
            free(paths);
            cli_allow_free(&allow);
            return EXIT_ERROR;
        } else paths[npaths++] = argv[i];
    }
    if (!npaths) {
        fprintf(stderr, "usage: ckpt scan PATH... [-r] [--json] " CLI_ALLOW_USAGE "\n");
        free(paths);
        cli_allow_free(&allow);
        return EXIT_ERROR;
    }
    ckpt_load_options *opts = ckpt_load_options_new();
    cli_allow_apply(&allow, opts);
    x.opts = opts;
    for (int i = 0; i < npaths; i++) {
        struct stat st;
        if (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            if (recursive) {
                walk_dir(&x, paths[i]);
            } else {
                x.any_error = true;
                report_error(&x, paths[i], "is a directory (use -r to scan what it contains)");
            }
        } else {
            scan_one(&x, paths[i], false);
        }
    }
    ckpt_load_options_free(opts);
    cli_allow_free(&allow);
    free(paths);
    return x.any_refused ? EXIT_REFUSED : x.any_error ? EXIT_ERROR : EXIT_CLEAN;
}
