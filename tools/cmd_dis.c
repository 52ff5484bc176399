/* cmd_dis.c: `ckpt dis FILE`: disassembly of every pickle in the file (the loader's decoder, scan mode). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void print_line(const char *line, void *user)
{
    (void)user;
    puts(line);
}

int cmd_dis(int argc, char **argv)
{
    const char *file = NULL;
    cli_allow allow = {0};
    for (int i = 1; i < argc; i++) {
        int r = cli_allow_option(&allow, "dis", argc, argv, &i);
        if (r < 0) { cli_allow_free(&allow); return EXIT_ERROR; }
        if (r > 0) continue;
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "ckpt dis: unknown option '%s'\n", argv[i]);
            cli_allow_free(&allow);
            return EXIT_ERROR;
        }
        if (file) {
            fprintf(stderr, "ckpt dis: one FILE expected\n");
            cli_allow_free(&allow);
            return EXIT_ERROR;
        }
        file = argv[i];
    }
    if (!file) {
        fprintf(stderr, "usage: ckpt dis FILE\n");
        return EXIT_ERROR;
    }
    ckpt_load_options *opts = ckpt_load_options_new();
    cli_allow_apply(&allow, opts);
    ckpt_error *err = ckpt_error_new();
    printf("%8s  %-17s %-44s %s\n", "OFFSET", "OPCODE", "ARGUMENT", "STACK / TARGET");
    ckpt_status s = ckpt_disassemble_file(file, opts, print_line, NULL, err);
    if (s) fprintf(stderr, "ckpt: %s: %s\n", file, ckpt_error_message(err));
    ckpt_error_free(err);
    ckpt_load_options_free(opts);
    cli_allow_free(&allow);
    return s ? EXIT_ERROR : EXIT_CLEAN;
}
