/*
 * cmd_check.c: `ckpt check FILE (--schema S.json | --like REF) [--json]`: what load_state_dict(strict=True)
 * and the current classes would find wrong with FILE, all at once: missing, unexpected, mis-shaped and
 * mis-typed keys, and (whole-model pickles) module attributes missing or no longer expected, and pickled
 * classes the schema does not know. FILE and REF are read in model mode (module classes are recorded,
 * never run). Exit 0 clean, 1 anything reported, 2 error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ckpt check FILE (--schema S.json | --like REF) [--json] " CLI_ALLOW_USAGE "\n"
            "  --schema S.json  what the current code expects (tools/ckpt-schema.py writes it from a live model)\n"
            "  --like REF       take the expected keys, shapes, dtypes and classes from another checkpoint\n"
            "  --json           print the findings as JSON\n"
            "FILE and REF are read in model mode: whole-model pickles (torch.save(model)) are read without\n"
            "running their classes. Exit status: 0 clean, 1 findings, 2 error.\n");
}

static void print_shape(FILE *out, const ckpt_finding *f, bool found)
{
    size_t n;
    const int64_t *d;
    if (!ckpt_finding_shape(f, found, &n, &d)) {
        fprintf(out, "(not a tensor)");
        return;
    }
    fprintf(out, "[");
    for (size_t i = 0; i < n; i++) fprintf(out, "%s%" PRId64, i ? ", " : "", d[i]);
    fprintf(out, "]");
}

void cli_print_report(FILE *out, const ckpt_report *r)
{
    for (size_t i = 0; i < ckpt_report_count(r, CKPT_FINDING_MISSING_KEY); i++)
        fprintf(out, "missing key: %s\n", ckpt_finding_key(ckpt_report_finding(r, CKPT_FINDING_MISSING_KEY, i)));
    for (size_t i = 0; i < ckpt_report_count(r, CKPT_FINDING_UNEXPECTED_KEY); i++)
        fprintf(out, "unexpected key: %s\n", ckpt_finding_key(ckpt_report_finding(r, CKPT_FINDING_UNEXPECTED_KEY, i)));
    for (size_t i = 0; i < ckpt_report_count(r, CKPT_FINDING_SHAPE_MISMATCH); i++) {
        const ckpt_finding *f = ckpt_report_finding(r, CKPT_FINDING_SHAPE_MISMATCH, i);
        fprintf(out, "shape mismatch: %s: expected ", ckpt_finding_key(f));
        print_shape(out, f, false);
        fprintf(out, ", found ");
        print_shape(out, f, true);
        fprintf(out, "\n");
    }
    for (size_t i = 0; i < ckpt_report_count(r, CKPT_FINDING_DTYPE_MISMATCH); i++) {
        const ckpt_finding *f = ckpt_report_finding(r, CKPT_FINDING_DTYPE_MISMATCH, i);
        const char *found = ckpt_finding_found_type(f);
        fprintf(out, "dtype mismatch: %s: expected %s, found %s\n", ckpt_finding_key(f),
               ckpt_dtype_name(ckpt_finding_dtype(f, false)), found ? found : ckpt_dtype_name(ckpt_finding_dtype(f, true)));
    }
    static const ckpt_finding_kind attrs[] = {CKPT_FINDING_MISSING_ATTRIBUTE, CKPT_FINDING_UNEXPECTED_ATTRIBUTE};
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < ckpt_report_count(r, attrs[k]); i++) {
            const ckpt_finding *f = ckpt_report_finding(r, attrs[k], i);
            const char *path = ckpt_finding_key(f);
            fprintf(out, "%s (%s): %s attribute '%s'\n", *path ? path : "<model>", ckpt_finding_class(f),
                   k == 0 ? "missing" : "unexpected", ckpt_finding_attribute(f));
        }
    for (size_t i = 0; i < ckpt_report_count(r, CKPT_FINDING_UNKNOWN_CLASS); i++) {
        const ckpt_finding *f = ckpt_report_finding(r, CKPT_FINDING_UNKNOWN_CLASS, i);
        const char *path = ckpt_finding_key(f), *hint = ckpt_finding_hint(f);
        fprintf(out, "unknown class: %s (first at %s)%s%s\n", ckpt_finding_class(f), *path ? path : "<model>",
               hint ? ": " : "", hint ? hint : "");
    }
    size_t total = ckpt_report_total(r);
    if (total) fprintf(out, "%zu finding%s\n", total, total == 1 ? "" : "s");
    else fprintf(out, "clean: the checkpoint matches the schema\n");
}

static ckpt_status load_model(const char *path, const cli_allow *allow, ckpt_checkpoint **out, ckpt_error *err)
{
    ckpt_load_options *o = ckpt_load_options_new();
    if (!o) return CKPT_ERR_NOMEM;
    ckpt_load_options_set_flags(o, CKPT_LOAD_MODEL | CKPT_LOAD_TORCHSCRIPT | CKPT_LOAD_SKIP_DATA);
    cli_allow_apply(allow, o);
    ckpt_status s = ckpt_load_file(path, o, out, err);
    ckpt_load_options_free(o);
    return s;
}

int cmd_check(int argc, char **argv)
{
    const char *file = NULL, *schema_path = NULL, *like = NULL;
    bool json = false;
    cli_allow allow = {0};
    for (int i = 1; i < argc; i++) {
        int r = cli_allow_option(&allow, "check", argc, argv, &i);
        if (r < 0) {
            cli_allow_free(&allow);
            return EXIT_ERROR;
        }
        if (r > 0) continue;
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) json = true;
        else if (strcmp(a, "--schema") == 0 && i + 1 < argc) schema_path = argv[++i];
        else if (strcmp(a, "--like") == 0 && i + 1 < argc) like = argv[++i];
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            cli_allow_free(&allow);
            return EXIT_CLEAN;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "ckpt check: unknown option '%s'\n", a);
            usage(stderr);
            cli_allow_free(&allow);
            return EXIT_ERROR;
        } else if (!file) file = a;
        else {
            fprintf(stderr, "ckpt check: one FILE expected\n");
            cli_allow_free(&allow);
            return EXIT_ERROR;
        }
    }
    if (!file || !schema_path == !like) {
        if (file) fprintf(stderr, "ckpt check: give exactly one of --schema and --like\n");
        usage(stderr);
        cli_allow_free(&allow);
        return EXIT_ERROR;
    }
    ckpt_error *err = ckpt_error_new();
    if (!err) {
        fprintf(stderr, "ckpt: out of memory\n");
        cli_allow_free(&allow);
        return EXIT_ERROR;
    }
    int rc = EXIT_ERROR;
    ckpt_schema *schema = NULL;
    ckpt_checkpoint *ck = NULL, *ref = NULL;
    ckpt_report *report = NULL;
    char *text = NULL;
    ckpt_status s;
    const char *where = schema_path ? schema_path : like;
    if (schema_path) {
        s = ckpt_schema_load_file(schema_path, &schema, err);
    } else if (!(s = load_model(like, &allow, &ref, err))) {
        s = ckpt_schema_from_checkpoint(ref, &schema, err);
    }
    if (!s) {
        where = file;
        if (!(s = load_model(file, &allow, &ck, err))) s = ckpt_check(ck, schema, &report, err);
    }
    if (!s && json) s = ckpt_report_to_json(report, CKPT_JSON_PRETTY, &text, err);
    if (s) {
        /* a file that cannot be read is an error here (2), never a finding */
        if (strstr(ckpt_error_message(err), where) == ckpt_error_message(err))
            fprintf(stderr, "ckpt check: %s\n", ckpt_error_message(err));
        else
            fprintf(stderr, "ckpt check: %s: %s\n", where, ckpt_error_message(err));
    } else {
        if (json) {
            fputs(text, stdout);
            fputc('\n', stdout);
        } else {
            cli_print_report(stdout, report);
        }
        rc = ckpt_report_total(report) ? EXIT_REFUSED : EXIT_CLEAN;
    }
    ckpt_free(text);
    ckpt_report_free(report);
    ckpt_checkpoint_free(ck);
    ckpt_checkpoint_free(ref);
    ckpt_schema_free(schema);
    ckpt_error_free(err);
    cli_allow_free(&allow);
    return rc;
}
