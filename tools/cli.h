/* cli.h: shared helpers of the ckpt command-line tool. */
#ifndef CKPT_CLI_H
#define CKPT_CLI_H

#include <ckpt/ckpt.h>
#include <stdbool.h>
#include <stdio.h>

/* Exit codes, the pickle-scanner convention. */
enum { EXIT_CLEAN = 0, EXIT_REFUSED = 1, EXIT_ERROR = 2 };

/* The exit code for a failed library call: 1 when a global was refused, 2 otherwise. */
int cli_exit_for(ckpt_status status);

/* Registry options shared by the commands: --allow NAME (also OLD.NAME=NEW.NAME), --allow-preset NAME,
 * --handler NAME; each may repeat. */
typedef struct cli_allow {
    ckpt_registry *reg; /* created by the first option; NULL: the default registry */
} cli_allow;
/* 1 when argv[*i] was one of them (*i then indexes its value), 0 when not, -1 on error (printed). */
int cli_allow_option(cli_allow *a, const char *cmd, int argc, char **argv, int *i);
void cli_allow_apply(const cli_allow *a, ckpt_load_options *opts);
void cli_allow_free(cli_allow *a);
#define CLI_ALLOW_USAGE "[--allow MODULE.NAME[=REAL.NAME]]... [--allow-preset numpy|stdlib]... [--handler MODULE.NAME]..."

int cmd_inspect(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_dis(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_check(int argc, char **argv);
/* The findings of a check, one per line, and a summary line. */
void cli_print_report(FILE *out, const ckpt_report *r);

#endif
