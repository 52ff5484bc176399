/*
 * fuzz_unpickle: the restricted VM alone on raw pickle bytes, with a registry holding a few user
 * entries: once in load mode (handlers run, unknown globals refused) and once in scan mode (every
 * global recorded, nothing refused). Persistent ids become plain values. The result is walked.
 */
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "node.h"
#include "options.h"
#include "unpickler.h"
#include "walk.h"
#include "fuzz_common.h"

static ckpt_status persistent(ck_unpickler *u, void *ctx, ckpt_value *pid, ckpt_value **out, ckpt_error *err)
{
    (void)u; (void)ctx; (void)err;
    *out = pid; /* shared, like a storage referenced twice */
    return CKPT_OK;
}

static void seen(void *ctx, const char *module, const char *name, const ck_reg_entry *e, uint64_t off, int op)
{
    size_t *n = ctx;
    if (!module || !name || !*module || !*name) abort();
    (void)e; (void)off; (void)op;
    (*n)++;
}

static ckpt_walk_action visit(const char *path, size_t len, const ckpt_value *v, void *user)
{
    (void)path; (void)len; (void)v;
    (*(size_t *)user)++;
    return CKPT_WALK_CONTINUE;
}

static void run(const uint8_t *data, size_t len, unsigned mode)
{
    ck_limits lim;
    ck_limits_resolve(NULL, len, &lim);
    /* the defaults, with a smaller allocation allowance and memo: a 5-byte LONG_BINPUT may legitimately
     * allocate (and clear) a memo of the whole allowance, which would dominate every run */
    lim.max_alloc = 4 * (uint64_t)len + (16u << 20);
    lim.max_memo = 1u << 16;
    ck_store st;
    ck_store_init(&st, lim.max_alloc);
    ckpt_error err;
    ck_error_init(&err);
    ck_unpickler u;
    ck_unpickler_init(&u, &st, &lim);
    u.registry = fz_registry();
    u.mode = mode;
    u.persistent_load = persistent;
    size_t globals = 0;
    u.on_global = seen;
    u.on_global_ctx = &globals;
    u.record = "data.pkl";
    size_t pos = 0;
    ckpt_value *root = NULL;
    ckpt_status s = ck_unpickle(&u, data, len, &pos, &root, &err);
    if (s == CKPT_OK) {
        if (!root || pos > len) abort();
        size_t visits = 0;
        (void)ck_walk(root, st.next_id, lim.max_depth, visit, &visits, &err);
    } else if (ckpt_error_code(&err) != s || !*ckpt_error_message(&err)) {
        abort(); /* a failure must say why, with the status it returned */
    }
    ck_store_release(&st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    run(data, len, CK_MODE_LOAD);
    run(data, len, CK_MODE_SCAN);
    return 0;
}
