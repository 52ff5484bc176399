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
            "  inspect FILE [--json] [--copy] [--model]\n"
            "                                    list tensors and values of a checkpoint, running nothing;\n"
            "                                    --model reads whole-model pickles and lists the state dict\n"
            "  check FILE (--schema S.json | --like REF) [--json]\n"
            "                                    missing/unexpected/mis-shaped keys and module attributes\n"
            "                                    against what the current code expects (exit 1: findings)\n"
            "  scan PATH... [-r] [--json]        list the globals every pickle of each file references, and\n"
            "                                    whether the registry allows them\n"
            "  dis FILE                          disassemble every pickle of a file\n"
            "  convert IN OUT [--to pt|safetensors]\n"
            "                                    write a checkpoint as .pt (torch.load weights_only) or\n"
            "                                    safetensors; nothing is left behind on failure\n"
            "  version                           print the library version\n"
            "\n"
            "inspect, check, scan, dis and convert take the registry options:\n"
            "  --allow MODULE.NAME        allow a global as plain data (OLD.NAME=NEW.NAME: under an old name)\n"
            "  --allow-preset numpy       NumPy arrays -> tensors, scalars -> numbers (also: stdlib)\n"
            "  --handler MODULE.NAME      allow a global with libckpt's built-in handler for it\n"
            "\n"
            "exit status: 0 success, 1 a global was refused (scan: not allowed), 2 malformed input or I/O error\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_ERROR;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "inspect") == 0) return cmd_inspect(argc - 1, argv + 1);
    if (strcmp(cmd, "scan") == 0) return cmd_scan(argc - 1, argv + 1);
    if (strcmp(cmd, "dis") == 0) return cmd_dis(argc - 1, argv + 1);
    if (strcmp(cmd, "convert") == 0) return cmd_convert(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0) return cmd_check(argc - 1, argv + 1);
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
