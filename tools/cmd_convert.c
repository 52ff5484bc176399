/*
 * cmd_convert.c: `ckpt convert IN OUT [--to pt|safetensors] [...]`: read any checkpoint libckpt loads
 * (.pt zip, safetensors) and write it as a .pt file torch.load(weights_only=True) reads, or as
 * safetensors. The output appears only when complete; on any failure no file is left at OUT.
 * --model reads IN in model mode (whole-model pickles, training checkpoints, TorchScript archives) and
 * writes the state dict model.state_dict() would give; --check S.json first reports what
 * load_state_dict and the current classes would find wrong (the file is still written; exit 1).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ckpt convert IN OUT [--to pt|safetensors] [--model [--check S.json]] [--dedup] [--fsync]\n"
            "                            [--drop-non-tensors] [--prefix NAME] " CLI_ALLOW_USAGE "\n"
            "  --model              read IN in model mode (torch.save(model), training checkpoints, TorchScript)\n"
            "                       and write the state dict model.state_dict() gives, without the classes\n"
            "  --check S.json       with --model: first report missing/unexpected/mis-shaped keys and module\n"
            "                       attributes against a schema (ckpt check); the output is still written,\n"
            "                       and the exit status is 1 when anything was reported\n"
            "  --to FORMAT          output format (default: by OUT's extension: .safetensors, else pt)\n"
            "  --dedup              pt: store byte-identical storages once (they load as shared)\n"
            "  --fsync              flush the file and its folder to disk before exiting\n"
            "  --drop-non-tensors   safetensors: leave out values that are not tensors instead of failing\n"
            "  --prefix NAME        pt: the folder inside the zip (default: OUT's name without extension)\n"
            "  --allow... options   globals to accept when reading IN; a .pt output may name them too\n"
            "                       (readers of it then need the same allowance)\n");
}

int cmd_convert(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *prefix = NULL, *check = NULL;
    bool model = false;
    ckpt_save_format format = CKPT_SAVE_AUTO;
    unsigned flags = 0;
    cli_allow allow = {0};
    for (int i = 1; i < argc; i++) {
        int r = cli_allow_option(&allow, "convert", argc, argv, &i);
        if (r < 0) goto usage_error;
        if (r > 0) continue;
        const char *a = argv[i];
        if (strcmp(a, "--to") == 0 && i + 1 < argc) {
            const char *f = argv[++i];
            if (strcmp(f, "pt") == 0) format = CKPT_SAVE_PT;
            else if (strcmp(f, "safetensors") == 0) format = CKPT_SAVE_SAFETENSORS;
            else {
                fprintf(stderr, "ckpt convert: unknown format '%s' (pt or safetensors)\n", f);
                goto usage_error;
            }
        } else if (strcmp(a, "--model") == 0) model = true;
        else if (strcmp(a, "--check") == 0 && i + 1 < argc) check = argv[++i];
        else if (strcmp(a, "--dedup") == 0) flags |= CKPT_SAVE_DEDUP;
        else if (strcmp(a, "--fsync") == 0) flags |= CKPT_SAVE_FSYNC;
        else if (strcmp(a, "--drop-non-tensors") == 0) flags |= CKPT_SAVE_DROP_NON_TENSORS;
        else if (strcmp(a, "--prefix") == 0 && i + 1 < argc) prefix = argv[++i];
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            cli_allow_free(&allow);
            return EXIT_CLEAN;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "ckpt convert: unknown option '%s'\n", a);
            usage(stderr);
            goto usage_error;
        } else if (!in) in = a;
        else if (!out) out = a;
        else {
            fprintf(stderr, "ckpt convert: IN and OUT expected\n");
            goto usage_error;
        }
    }
    if (!in || !out) {
        usage(stderr);
        goto usage_error;
    }
    if (check && !model) {
        fprintf(stderr, "ckpt convert: --check needs --model (it checks the state dict model mode extracts)\n");
        goto usage_error;
    }
    ckpt_error *err = ckpt_error_new();
    ckpt_load_options *lo = ckpt_load_options_new();
    ckpt_save_options *so = ckpt_save_options_new();
    if (!err || !lo || !so) {
        fprintf(stderr, "ckpt: out of memory\n");
        ckpt_save_options_free(so);
        ckpt_load_options_free(lo);
        ckpt_error_free(err);
        goto usage_error;
    }
    /* tensors stay in the input's mapping: nothing is copied on the way to the output */
    ckpt_load_options_set_flags(lo, CKPT_LOAD_MMAP | (model ? CKPT_LOAD_MODEL | CKPT_LOAD_TORCHSCRIPT : 0));
    cli_allow_apply(&allow, lo);
    ckpt_save_options_set_format(so, format);
    ckpt_save_options_set_flags(so, flags);
    if (allow.reg) ckpt_save_options_set_registry(so, allow.reg);
    int rc = EXIT_CLEAN;
    ckpt_checkpoint *ck = NULL;
    ckpt_status s = prefix ? ckpt_save_options_set_archive_prefix(so, prefix, err) : CKPT_OK;
    if (!s) {
        s = ckpt_load_file(in, lo, &ck, err);
        if (s) fprintf(stderr, "ckpt: %s: %s\n", in, ckpt_error_message(err));
    } else {
        fprintf(stderr, "ckpt convert: %s\n", ckpt_error_message(err));
    }
    const ckpt_value *root = NULL;
    if (!s && model && !(root = ckpt_checkpoint_state_dict(ck))) {
        fprintf(stderr, "ckpt: %s: no model and no state dict found (model mode looks at the root, the keys "
                        "'model', 'state_dict', 'model_state_dict'..., then the first nn.Module or state dict)\n", in);
        s = CKPT_ERR_NOT_FOUND;
    }
    size_t findings = 0;
    if (!s && check) {
        ckpt_schema *schema = NULL;
        ckpt_report *report = NULL;
        s = ckpt_schema_load_file(check, &schema, err);
        if (!s) s = ckpt_check(ck, schema, &report, err);
        if (s) {
            fprintf(stderr, "ckpt convert: %s\n", ckpt_error_message(err));
        } else {
            findings = ckpt_report_total(report);
            fprintf(stderr, "checked against %s:\n", check);
            cli_print_report(stderr, report);
        }
        ckpt_report_free(report);
        ckpt_schema_free(schema);
    }
    if (!s) {
        s = root ? ckpt_save_file(root, out, so, err) : ckpt_checkpoint_save_file(ck, out, so, err);
        if (s) fprintf(stderr, "ckpt: %s: %s\n", out, ckpt_error_message(err));
    }
    if (s) rc = cli_exit_for(s);
    else if (findings) rc = EXIT_REFUSED;
    ckpt_checkpoint_free(ck);
    ckpt_save_options_free(so);
    ckpt_load_options_free(lo);
    ckpt_error_free(err);
    cli_allow_free(&allow);
    return rc;

usage_error:
    cli_allow_free(&allow);
    return EXIT_ERROR;
}
