/*
 * unpickler.h: the restricted pickle VM.
 *
 * One VM runs every pickle libckpt reads: loads, scans and disassembly share this decoder, so what a
 * scan reports is what a load would see. Globals resolve only through the registry (exact module +
 * name pairs, never imported, never called); their handlers build data. The VM is iterative, shares
 * memo entries (never copies them), and checks every length against the bytes that remain before it
 * allocates.
 */
#ifndef CK_UNPICKLER_H
#define CK_UNPICKLER_H

#include "errors.h"
#include "node.h"
#include "options.h"
#include "registry_internal.h"

typedef struct ck_unpickler ck_unpickler;

/* Called for BINPERSID / PERSID with the persistent id; returns the value to push. */
typedef ckpt_status (*ck_persistent_fn)(ck_unpickler *u, void *ctx, ckpt_value *pid, ckpt_value **out,
                                        ckpt_error *err);
/* Called for every global the pickle names (entry NULL when not allowed), before it is refused. */
typedef void (*ck_global_seen_fn)(void *ctx, const char *module, const char *name, const ck_reg_entry *entry,
                                  uint64_t offset, int opcode);

/* Modes. */
#define CK_MODE_LOAD 0u /* refuse globals that are not allowed; run handlers */
#define CK_MODE_SCAN 1u /* record every global, refuse none, run no handler: calls become CALL nodes */

struct ck_unpickler {
    /* set by the caller */
    ck_store *store;
    const ck_limits *limits;
    const ckpt_registry *registry; /* NULL: the default registry */
    unsigned mode;
    ck_persistent_fn persistent_load;
    void *persistent_ctx;
    ck_global_seen_fn on_global;
    void *on_global_ctx;
    const char *record; /* for messages: the record being read */
    /* state of the current run, readable by handlers */
    int proto;           /* from PROTO, 0 when absent */
    uint64_t op_offset;  /* offset of the current opcode */
    uint8_t op;          /* the current opcode */
};

void ck_unpickler_init(ck_unpickler *u, ck_store *store, const ck_limits *limits);

/*
 * Runs one pickle from data[*pos] to its STOP opcode. On success *result is the unpickled value and
 * *pos the offset just past STOP. The stack must hold exactly one value at STOP with no open MARK.
 * Errors carry the offset and opcode.
 */
ckpt_status ck_unpickle(ck_unpickler *u, const uint8_t *data, size_t len, size_t *pos, ckpt_value **result,
                        ckpt_error *err);

/* Argument helpers for handlers: errors name the global and the argument. */
ckpt_status ck_arg_count(const ck_reg_entry *e, ckpt_value *args, size_t min, size_t max, ckpt_error *err);
ckpt_status ck_arg_int(const ck_reg_entry *e, ckpt_value *args, size_t i, int64_t *out, ckpt_error *err);
ckpt_status ck_arg_bool(const ck_reg_entry *e, ckpt_value *args, size_t i, bool *out, ckpt_error *err);
ckpt_status ck_arg_int_tuple(ck_unpickler *u, const ck_reg_entry *e, ckpt_value *args, size_t i, int64_t **out,
                             uint32_t *n, ckpt_error *err);
ckpt_status ck_arg_str(const ck_reg_entry *e, ckpt_value *args, size_t i, const char **out, size_t *len,
                       ckpt_error *err);
ckpt_status ck_arg_kind(const ck_reg_entry *e, ckpt_value *args, size_t i, ckpt_kind kind, ckpt_value **out,
                        ckpt_error *err);
ckpt_status ck_out_of_memory(ck_store *st, ckpt_error *err);

#endif
