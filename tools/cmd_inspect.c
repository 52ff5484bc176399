/*
 * cmd_inspect.c: `ckpt inspect FILE [--json] [--mmap] [--model]`: tensors and values of a checkpoint,
 * nothing executed. --model reads whole-model pickles (model mode) and lists the state dict too.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void print_shape(const ckpt_tensor *t, char *buf, size_t cap)
{
    size_t n = ckpt_tensor_ndim(t), o = 0;
    const int64_t *shape = ckpt_tensor_shape(t);
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (size_t i = 0; i < n && o < cap; i++) o += (size_t)snprintf(buf + o, cap - o, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

/* One row of the tensor tables: key, dtype, shape, bytes, element digest. */
static void print_tensor_row(const char *key, const ckpt_tensor *t)
{
    char shape[128], digest[17] = "-";
    uint64_t h = 0;
    print_shape(t, shape, sizeof shape);
    if (ckpt_tensor_xxh3_64(t, &h, NULL) == CKPT_OK) snprintf(digest, sizeof digest, "%016" PRIx64, h);
    printf("%-40s %-10s %-20s %12" PRIu64 "  %s\n", key, ckpt_dtype_name(ckpt_tensor_dtype(t)), shape,
           ckpt_tensor_nbytes(t), digest);
}

typedef struct {
    int count;
} values_ctx;

static ckpt_walk_action print_value(const char *path, size_t len, const ckpt_value *v, void *user)
{
    values_ctx *x = user;
    ckpt_kind k = ckpt_value_kind(v);
    if (k == CKPT_KIND_TENSOR) return CKPT_WALK_CONTINUE;
    char val[128] = "";
    size_t n;
    const char *s;
    switch (k) {
    case CKPT_KIND_NONE: snprintf(val, sizeof val, "None"); break;
    case CKPT_KIND_BOOL: snprintf(val, sizeof val, "%s", ckpt_value_bool(v) ? "True" : "False"); break;
    case CKPT_KIND_INT: {
        /* an int is listed at every path that reaches it: converting a huge one each time would make a
         * small file (one 1 KiB int referenced 100,000 times) cost minutes; the column shows ~100 digits */
        uint8_t scratch[8];
        const uint8_t *bytes;
        size_t nb = ckpt_value_int_bytes(v, scratch, &bytes);
        if (nb > 40) {
            snprintf(val, sizeof val, "<int of %zu bytes>", nb);
            break;
        }
        char *d = ckpt_value_int_to_string(v);
        snprintf(val, sizeof val, "%s", d ? d : "?");
        ckpt_free(d);
        break;
    }
    case CKPT_KIND_FLOAT: snprintf(val, sizeof val, "%.17g", ckpt_value_float(v)); break;
    case CKPT_KIND_STR:
    case CKPT_KIND_DEVICE:
        s = ckpt_value_str(v, &n);
        snprintf(val, sizeof val, "%.*s%s", (int)(n > 80 ? 80 : n), s, n > 80 ? "..." : "");
        break;
    case CKPT_KIND_BYTES:
    case CKPT_KIND_BYTEARRAY: ckpt_value_str(v, &n); snprintf(val, sizeof val, "<%zu bytes>", n); break;
    case CKPT_KIND_DTYPE:
        snprintf(val, sizeof val, "%s%s", strcmp(ckpt_value_type_name(v), "torch.dtype") == 0 ? "torch." : "",
                 ckpt_dtype_name(ckpt_value_dtype(v)));
        break;
    case CKPT_KIND_COMPLEX: {
        double re, im;
        ckpt_value_complex(v, &re, &im);
        snprintf(val, sizeof val, "(%.17g%+.17gj)", re, im);
        break;
    }
    case CKPT_KIND_LIST:
    case CKPT_KIND_TUPLE:
    case CKPT_KIND_DICT:
    case CKPT_KIND_SET:
    case CKPT_KIND_FROZENSET: snprintf(val, sizeof val, "len %zu", ckpt_value_len(v)); break;
    case CKPT_KIND_GLOBAL:
    case CKPT_KIND_CALL:
        snprintf(val, sizeof val, "%s.%s%s", ckpt_value_global_module(v), ckpt_value_global_name(v),
                 k == CKPT_KIND_CALL ? "(...) (recorded, not called)" : "");
        break;
    case CKPT_KIND_OBJECT: snprintf(val, sizeof val, "(object: args, state and items below)"); break;
    default: break;
    }
    if (x->count++ == 0) printf("\n%-40s %-28s %s\n", "VALUE", "TYPE", "");
    printf("%-40.*s %-28s %s\n", (int)(len ? len : 2), len ? path : "\"\"", ckpt_value_type_name(v), val);
    return CKPT_WALK_CONTINUE;
}

/* Model mode: where the model was found, its modules and its state dict. */
static void print_model(const ckpt_checkpoint *ck)
{
    static const char *const sources[] = {"none", "module tree", "state dict", "TorchScript module tree"};
    ckpt_model_source src = ckpt_checkpoint_model_source(ck);
    if (src == CKPT_MODEL_NONE) {
        printf("\nmodel: none found (no nn.Module and no state dict)\n");
        return;
    }
    const char *path = ckpt_checkpoint_model_path(ck), *strip = ckpt_checkpoint_model_stripped_prefix(ck);
    printf("\nmodel: %s at '%s'%s%s%s\n", sources[src], path, *strip ? " (keys without their '" : "", strip,
           *strip ? "' prefix)" : "");
    size_t nm = ckpt_checkpoint_num_modules(ck);
    if (nm) printf("\n%-40s %s\n", "MODULE", "CLASS");
    for (size_t i = 0; i < nm; i++) {
        const char *mp;
        const ckpt_value *m = ckpt_checkpoint_module(ck, i, &mp);
        printf("%-40s %s\n", *mp ? mp : "\"\"", ckpt_value_type_name(m));
    }
    const ckpt_value *sd = ckpt_checkpoint_state_dict(ck);
    size_t n = ckpt_value_len(sd);
    printf("\n%-40s %-10s %-20s %12s  %s\n", "STATE DICT", "DTYPE", "SHAPE", "BYTES", "XXH3_64");
    for (size_t i = 0; i < n; i++) {
        size_t kl;
        const char *key = ckpt_value_str(ckpt_value_dict_key(sd, i), &kl);
        const ckpt_tensor *t = ckpt_value_tensor(ckpt_value_dict_value(sd, i));
        if (!t) {
            printf("%-40s %s\n", key, ckpt_value_type_name(ckpt_value_dict_value(sd, i)));
            continue;
        }
        print_tensor_row(key, t);
    }
    printf("%zu entries\n", n);
}

int cmd_inspect(int argc, char **argv)
{
    const char *file = NULL;
    bool json = false;
    /* Inspection only reads: map the file rather than copy every tensor (--copy for the copying load). */
    unsigned flags = CKPT_LOAD_MMAP;
    cli_allow allow = {0};
    for (int i = 1; i < argc; i++) {
        int r = cli_allow_option(&allow, "inspect", argc, argv, &i);
        if (r < 0) {
            cli_allow_free(&allow);
            return EXIT_ERROR;
        }
        if (r > 0) continue;
        if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--mmap") == 0) flags |= CKPT_LOAD_MMAP;
        else if (strcmp(argv[i], "--copy") == 0) flags &= ~CKPT_LOAD_MMAP;
        else if (strcmp(argv[i], "--model") == 0) flags |= CKPT_LOAD_MODEL;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "ckpt inspect: unknown option '%s'\n", argv[i]);
            return EXIT_ERROR;
        } else if (!file) file = argv[i];
        else {
            fprintf(stderr, "ckpt inspect: one FILE expected\n");
            return EXIT_ERROR;
        }
    }
    if (!file) {
        fprintf(stderr, "usage: ckpt inspect FILE [--json] [--copy] [--model] " CLI_ALLOW_USAGE "\n");
        return EXIT_ERROR;
    }
    ckpt_error *err = ckpt_error_new();
    ckpt_load_options *opts = ckpt_load_options_new();
    if (!err || !opts) {
        fprintf(stderr, "ckpt: out of memory\n");
        return EXIT_ERROR;
    }
    /* inspecting never runs anything: a TorchScript archive is listed as data (format "torchscript") */
    ckpt_load_options_set_flags(opts, flags | CKPT_LOAD_TORCHSCRIPT);
    cli_allow_apply(&allow, opts);
    ckpt_checkpoint *ck = NULL;
    ckpt_status s = ckpt_load_file(file, opts, &ck, err);
    int rc = EXIT_CLEAN;
    if (s) {
        fprintf(stderr, "ckpt: %s: %s\n", file, ckpt_error_message(err));
        rc = cli_exit_for(s);
    } else if (json) {
        char *text = NULL;
        s = ckpt_checkpoint_to_json(ck, file, CKPT_JSON_PRETTY, &text, err);
        if (s) {
            fprintf(stderr, "ckpt: %s: %s\n", file, ckpt_error_message(err));
            rc = cli_exit_for(s);
        } else {
            fputs(text, stdout);
            fputc('\n', stdout);
        }
        ckpt_free(text);
    } else {
        printf("file: %s\nformat: %s, archive prefix '%s', %s-endian\n", file,
               ckpt_format_name(ckpt_checkpoint_format(ck)), ckpt_checkpoint_archive_prefix(ck),
               ckpt_checkpoint_big_endian(ck) ? "big" : "little");
        if (ckpt_checkpoint_format(ck) == CKPT_FORMAT_TORCHSCRIPT)
            printf("a TorchScript archive (torch.jit.save), read as data: its code is never read or run\n");
        size_t nt = ckpt_checkpoint_num_tensors(ck);
        uint64_t total = 0;
        printf("\n%-40s %-10s %-20s %12s  %s\n", "TENSOR", "DTYPE", "SHAPE", "BYTES", "XXH3_64");
        for (size_t i = 0; i < nt; i++) {
            const char *key;
            const ckpt_tensor *t = ckpt_checkpoint_tensor(ck, i, &key);
            print_tensor_row(key, t);
            total += ckpt_tensor_nbytes(t);
        }
        printf("%zu tensors, %" PRIu64 " bytes\n", nt, total);
        values_ctx x = {0};
        s = ckpt_walk(ck, NULL, print_value, &x, err);
        if (s) {
            fprintf(stderr, "ckpt: %s: %s\n", file, ckpt_error_message(err));
            rc = cli_exit_for(s);
        }
        size_t ng = ckpt_checkpoint_num_globals(ck);
        printf("\nglobals (%zu):", ng);
        for (size_t i = 0; i < ng; i++) printf(" %s", ckpt_checkpoint_global(ck, i));
        printf("\n");
        if (flags & CKPT_LOAD_MODEL) print_model(ck);
    }
    ckpt_checkpoint_free(ck);
    ckpt_load_options_free(opts);
    ckpt_error_free(err);
    cli_allow_free(&allow);
    return rc;
}
