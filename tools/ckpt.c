/* ckpt.c: the command-line tool: `ckpt <command> ...`. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cli_exit_for(ckpt_status status)
{
    if (status == CKPT_OK) return EXIT_CLEAN;
    return status == CKPT_ERR_BLOCKED ? EXIT_REFUSED : EXIT_ERROR;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ckpt <command> [options]\n"
            "\n"
            "commands:\n"
            "  inspect FILE [--json]   list tensors and values of a checkpoint, running nothing\n"
            "  version                 print the library version\n"
            "\n"
            "exit status: 0 success, 1 a global was refused, 2 malformed input or I/O error\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_ERROR;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "inspect") == 0) return cmd_inspect(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("ckpt %s\n", ckpt_version_string());
        return EXIT_CLEAN;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return EXIT_CLEAN;
    }
    fprintf(stderr, "ckpt: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_ERROR;
}
