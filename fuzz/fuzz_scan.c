/*
 * fuzz_scan: what a scanner does with an untrusted file, on the internal VM in CK_MODE_SCAN (the public
 * scan API of issue 3 replaces this when it lands). A zip: every member that is a pickle (".pkl" name or
 * a PROTO opcode first) is scanned. Anything else: a stream of consecutive pickles (the legacy format),
 * scanned one after another. Every global must be reported with a non-empty module and name.
 */
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "node.h"
#include "options.h"
#include "unpickler.h"
#include "walk.h"
#include "zip.h"
#include "fuzz_common.h"

static ckpt_status persistent(ck_unpickler *u, void *ctx, ckpt_value *pid, ckpt_value **out, ckpt_error *err)
{
    (void)u; (void)ctx; (void)err;
    *out = pid;
    return CKPT_OK;
}

static void seen(void *ctx, const char *module, const char *name, const ck_reg_entry *e, uint64_t off, int op)
{
    if (!module || !name || !*module || !*name) abort();
    (void)e; (void)off; (void)op;
    (*(size_t *)ctx)++;
}

static ckpt_walk_action visit(const char *path, size_t len, const ckpt_value *v, void *user)
{
    (void)path; (void)len; (void)v; (void)user;
    return CKPT_WALK_CONTINUE;
}

/* Scans consecutive pickles from data[0..len) (at most 8); returns the number of globals seen. */
static size_t scan_stream(ck_store *st, const ck_limits *lim, const uint8_t *data, size_t len)
{
    size_t globals = 0, pos = 0;
    for (int k = 0; k < 8 && pos < len; k++) {
        ckpt_error err;
        ck_error_init(&err);
        ck_unpickler u;
        ck_unpickler_init(&u, st, lim);
        u.mode = CK_MODE_SCAN;
        u.persistent_load = persistent;
        u.on_global = seen;
        u.on_global_ctx = &globals;
        size_t start = pos;
        ckpt_value *root = NULL;
        ckpt_status s = ck_unpickle(&u, data, len, &pos, &root, &err);
        if (s) {
            if (ckpt_error_code(&err) != s) abort();
            break;
        }
        if (!root || pos <= start || pos > len) abort();
        (void)ck_walk(root, st->next_id, lim->max_depth, visit, NULL, &err);
    }
    return globals;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
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
    ck_zip z;
    if (len >= 4 && memcmp(data, "PK", 2) == 0) {
        if (ck_zip_open(&z, data, len, &st.arena, lim.max_members, &err) == CKPT_OK) {
            for (size_t i = 0; i < z.count; i++) {
                const ck_zip_member *m = &z.members[i];
                bool pkl = m->name_len >= 4 && memcmp(m->name + m->name_len - 4, ".pkl", 4) == 0;
                const uint8_t *p;
                if (ck_zip_read(&z, m, &st.arena, true, &p, &err) != CKPT_OK) continue;
                if (pkl || (m->size >= 2 && p[0] == 0x80)) scan_stream(&st, &lim, p, (size_t)m->size);
            }
        }
    } else {
        scan_stream(&st, &lim, data, len);
    }
    ck_store_release(&st);
    return 0;
}
