/* cli.h: shared helpers of the ckpt command-line tool. */
#ifndef CKPT_CLI_H
#define CKPT_CLI_H

#include <ckpt/ckpt.h>

/* Exit codes, the pickle-scanner convention. */
enum { EXIT_CLEAN = 0, EXIT_REFUSED = 1, EXIT_ERROR = 2 };

/* The exit code for a failed library call: 1 when a global was refused, 2 otherwise. */
int cli_exit_for(ckpt_status status);

int cmd_inspect(int argc, char **argv);

#endif
