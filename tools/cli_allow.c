/* cli_allow.c: the registry options every command shares: --allow, --allow-preset, --handler. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* The value of `--opt VALUE` or `--opt=VALUE` at argv[*i], or NULL when argv[*i] is not that option. */
static const char *value_of(const char *opt, int argc, char **argv, int *i, bool *missing)
{
    size_t n = strlen(opt);
    const char *a = argv[*i];
    *missing = false;
    if (strncmp(a, opt, n) != 0) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n] != '\0') return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

int cli_allow_option(cli_allow *a, const char *cmd, int argc, char **argv, int *i)
{
    static const char *const opts[] = {"--allow", "--allow-preset", "--handler"};
    for (int k = 0; k < 3; k++) {
        bool missing;
        const char *v = value_of(opts[k], argc, argv, i, &missing);
        if (missing) {
            fprintf(stderr, "ckpt %s: %s needs a value\n", cmd, opts[k]);
            return -1;
        }
        if (!v) continue;
        if (!a->reg && !(a->reg = ckpt_registry_new(0))) {
            fprintf(stderr, "ckpt: out of memory\n");
            return -1;
        }
        ckpt_error *err = ckpt_error_new();
        ckpt_status s = k == 0   ? ckpt_registry_add_safe_globals(a->reg, &v, 1, err)
                        : k == 1 ? ckpt_registry_add_preset(a->reg, v, err)
                                 : ckpt_registry_enable_handlers(a->reg, &v, 1, err);
        if (s) fprintf(stderr, "ckpt %s: %s %s: %s\n", cmd, opts[k], v, ckpt_error_message(err));
        ckpt_error_free(err);
        return s ? -1 : 1;
    }
    return 0;
}

void cli_allow_apply(const cli_allow *a, ckpt_load_options *opts)
{
    if (a->reg) ckpt_load_options_set_registry(opts, a->reg);
}

void cli_allow_free(cli_allow *a)
{
    ckpt_registry_free(a->reg);
    a->reg = NULL;
}
