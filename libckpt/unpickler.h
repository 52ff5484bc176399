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
/*
 * Called for every global the pickle names, as the pickle spells it after Python 2 normalisation
 * (entry NULL when not allowed), before it is refused. opcode is GLOBAL, STACK_GLOBAL, INST, or EXT1/2/4
 * (module "copyreg", name "<extension N>": extension codes resolve to nothing).
 */
typedef void (*ck_global_seen_fn)(void *ctx, const char *module, const char *name, const ck_reg_entry *entry,
                                  uint64_t offset, int opcode);

/* The decoded argument of one opcode (the VM's only decoder; `ckpt dis` prints these). */
typedef enum ck_pickle_arg_kind {
    CK_ARG_NONE = 0,
    CK_ARG_UINT,      /* u: PROTO, FRAME, BININT1/2, BINPUT/GET, LONG_BINPUT/GET, PUT/GET (parsed), EXT1/2/4 */
    CK_ARG_INT,       /* i: BININT */
    CK_ARG_FLOAT,     /* f: BINFLOAT */
    CK_ARG_STR,       /* p, n: BINUNICODE*, SHORT_BINSTRING, BINSTRING payload (UTF-8 not yet checked) */
    CK_ARG_BYTES,     /* p, n: SHORT_BINBYTES, BINBYTES, BINBYTES8, BYTEARRAY8 payload */
    CK_ARG_LONG,      /* p, n: LONG1 / LONG4 little-endian two's complement bytes */
    CK_ARG_LINE,      /* p, n: a text line without its '\n': INT, LONG, FLOAT, STRING, UNICODE, PERSID */
    CK_ARG_TWO_LINES  /* p, n and p2, n2: GLOBAL, INST (module, name) */
} ck_pickle_arg_kind;

typedef struct ck_pickle_arg {
    ck_pickle_arg_kind kind;
    uint64_t u;
    int64_t i;
    double f;
    const uint8_t *p, *p2;
    size_t n, n2;
} ck_pickle_arg;

/*
 * Trace hook (ckpt dis): called after each opcode executed, with its offset, decoded argument, the
 * stack depth and open MARKs after it, and for REDUCE / NEWOBJ / NEWOBJ_EX / INST / OBJ / BUILD /
 * APPEND(S) / SETITEM(S) the node they acted on (the callable, or the object being built), else NULL.
 */
typedef void (*ck_trace_fn)(void *ctx, uint64_t offset, uint8_t op, const ck_pickle_arg *arg, size_t depth,
                            size_t marks, const ckpt_value *target);
/*
 * Resolves a global the registry does not have, for names only one format gives meaning to (TorchScript's
 * __torch__ classes); returns NULL to refuse it as usual.
 */
typedef const ck_reg_entry *(*ck_resolve_fn)(void *ctx, const char *module, const char *name);

/* Modes. */
#define CK_MODE_LOAD 0u /* refuse globals that are not allowed; run handlers */
#define CK_MODE_SCAN 1u /* record every global, refuse none, run no handler: calls become CALL nodes; STOP is
                           as lax as Python's (extra stack values and open MARKs are ignored) */

struct ck_unpickler {
    /* set by the caller */
    ck_store *store;
    const ck_limits *limits;
    const ckpt_registry *registry; /* NULL: the default registry */
    ck_reg_view *view;             /* a view the caller holds across several pickles, or NULL (one per run) */
    unsigned mode;
    unsigned load_flags;           /* CKPT_LOAD_* (handlers honour CKPT_LOAD_SKIP_DATA) */
    ck_persistent_fn persistent_load;
    void *persistent_ctx;
    ck_global_seen_fn on_global;
    void *on_global_ctx;
    ck_trace_fn on_op;
    void *on_op_ctx;
    ck_resolve_fn resolve; /* NULL: the registry alone decides */
    void *resolve_ctx;
    const char *record; /* for messages: the record being read */
    /* state of the current run, readable by handlers */
    int proto;           /* from PROTO, 0 when absent */
    uint64_t op_offset;  /* offset of the current opcode */
    uint8_t op;          /* the current opcode */
    /* results of a scan-mode run: builtins.getattr was used, but only as getattr(<allowed class>, 'NAME')
     * (an Enum member by name, which a load accepts) */
    bool getattr_enum_only;
};

void ck_unpickler_init(ck_unpickler *u, ck_store *store, const ck_limits *limits);

/*
 * Runs one pickle from data[*pos] to its STOP opcode. On success *result is the unpickled value and
 * *pos the offset just past STOP. The stack must hold exactly one value at STOP with no open MARK
 * (load mode). Errors carry the offset and opcode; on error *pos is the offset of the failing opcode.
 */
ckpt_status ck_unpickle(ck_unpickler *u, const uint8_t *data, size_t len, size_t *pos, ckpt_value **result,
                        ckpt_error *err);

/* Objects whose entry has a ckpt_global_handler, run after STOP (handler.c). */
typedef struct ck_pending {
    ckpt_value *node;
    uint64_t offset; /* of the opcode that created it */
    uint8_t op;
} ck_pending;
ckpt_status ck_run_handlers(ck_unpickler *u, const ck_pending *list, size_t n, ckpt_error *err);
/* True when a GLOBAL node with this entry is reachable from root (iterative; also true when out of memory). */
bool ck_reaches_entry(const ck_store *st, const ckpt_value *root, const ck_reg_entry *entry);

/* "module.name" of what a node stands for in messages (a global, an object's class, a call's function). */
const char *ck_node_label(const ckpt_value *v, char *buf, size_t cap);

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
