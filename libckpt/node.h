/*
 * node.h: the layout of value nodes (struct ckpt_value) and the store that allocates them.
 *
 * Nodes live in the store's arena and carry a dense id, so walkers can mark visited nodes in a bitmap
 * (thread-safe, linear in the number of nodes, and a shared node is visited once).
 */
#ifndef CK_NODE_H
#define CK_NODE_H

#include <stdbool.h>
#include "arena.h"
#include "ckpt/value.h"
#include "errors.h"

struct ck_reg_entry;
typedef struct ck_hindex ck_hindex;

/* Node flags. */
#define CK_NF_BIGINT 0x01u   /* int that does not fit in int64: u.big holds it */
#define CK_NF_HASHED 0x02u   /* tuple/frozenset: u.seq.hash is valid */
#define CK_NF_READONLY 0x04u /* bytearray turned read-only by READONLY_BUFFER */
#define CK_NF_BIG_ENDIAN 0x10u /* numpy.dtype node: elements are stored big-endian */
#define CK_NF_PENDING 0x08u  /* object/call whose registry handler runs after the pickle's STOP */
#define CK_NF_CALLED 0x20u   /* object built by calling its class (REDUCE, INST), not by NEWOBJ: the writer
                                pickles it the same way */

typedef struct ck_dict_entry {
    ckpt_value *key;
    ckpt_value *val;
} ck_dict_entry;

typedef struct ck_object {
    const char *module, *name;
    const struct ck_reg_entry *entry; /* NULL when recorded without an allowlist entry (scan, model) */
    ckpt_value *args, *kwargs, *state, *list_items, *dict_items;
} ck_object;

struct ckpt_value {
    uint8_t kind;  /* ckpt_kind */
    uint8_t flags; /* CK_NF_* */
    uint16_t spare; /* builder.c: tag of the ckpt_builder that created the node (0 for loaded nodes) */
    uint32_t id;
    const char *type_name; /* NULL: the default Python name for the kind */
    ckpt_value *attrs;     /* dict that BUILD set on a container, or NULL */
    union {
        bool b;
        int64_t i;
        struct { const uint8_t *bytes; size_t len; } big; /* little-endian two's complement, minimal */
        double f;
        struct { double re, im; } c;
        struct { const char *ptr; size_t len; } s;        /* NUL-terminated copy */
        struct { ckpt_value **items; uint32_t len, cap; ck_hindex *index; uint64_t hash; } seq;
        struct { ck_dict_entry *entries; uint32_t len, cap; ck_hindex *index; } dict;
        ckpt_tensor *tensor;
        ckpt_storage *storage;
        ckpt_sparse *sparse;
        uint8_t dtype;
        struct { const char *module, *name; const struct ck_reg_entry *entry; } global;
        ck_object *obj;
    } u;
};

/* Allocates nodes for one checkpoint. */
typedef struct ck_store {
    ck_arena arena;
    uint32_t next_id;
    uint32_t max_nodes; /* ids are 32-bit */
    uint64_t eq_work;   /* node comparisons spent comparing tuple/frozenset keys (bounded per load) */
} ck_store;

void ck_store_init(ck_store *st, uint64_t budget);
void ck_store_release(ck_store *st);

/* Constructors return NULL only when the arena refuses (budget or malloc). */
ckpt_value *ck_new(ck_store *st, ckpt_kind kind);
ckpt_value *ck_new_int(ck_store *st, int64_t v);
/* From little-endian two's complement bytes of any length (normalised; fits-in-64 becomes small). */
ckpt_value *ck_new_int_le(ck_store *st, const uint8_t *bytes, size_t len);
ckpt_value *ck_new_float(ck_store *st, double v);
ckpt_value *ck_new_bool(ck_store *st, bool v);
/* str/bytes/bytearray/device: copies n bytes (NUL-terminated). */
ckpt_value *ck_new_bytes_kind(ck_store *st, ckpt_kind kind, const void *p, size_t n);
ckpt_value *ck_new_seq(ck_store *st, ckpt_kind kind, size_t cap);
ckpt_value *ck_new_dict(ck_store *st, size_t cap);
ckpt_value *ck_new_dtype(ck_store *st, uint8_t dtype);

/* Appends to a list/tuple under construction (no hashing). */
ckpt_status ck_seq_push(ck_store *st, ckpt_value *seq, ckpt_value *item, ckpt_error *err);
/* Python semantics: set d[key] = val, replacing the value of an equal key in place. */
ckpt_status ck_dict_set(ck_store *st, ckpt_value *dict, ckpt_value *key, ckpt_value *val, ckpt_error *err);
/* Appends without looking for an equal key (only for places where keys are known unique). */
ckpt_status ck_dict_append(ck_store *st, ckpt_value *dict, ckpt_value *key, ckpt_value *val, ckpt_error *err);
/* Appends without hashing or indexing (scan mode: keys are recorded, not interpreted). */
ckpt_status ck_dict_append_unindexed(ck_store *st, ckpt_value *dict, ckpt_value *key, ckpt_value *val, ckpt_error *err);
/* Python semantics: adds item unless an equal item is present. */
ckpt_status ck_set_add(ck_store *st, ckpt_value *set, ckpt_value *item, ckpt_error *err);
/* Lookup by str key (no allocation; safe on a finished checkpoint from many threads). */
ckpt_value *ck_dict_get_str(const ckpt_value *dict, const char *key, size_t len);

/* The Python type name of a node ("int", "collections.OrderedDict", ...). */
const char *ck_type_name(const ckpt_value *v);
/* The name used in messages for a kind ("list", "tensor"...). */
const char *ck_kind_name(ckpt_kind kind);

/* Small-int helpers for argument checking. */
static inline bool ck_is_small_int(const ckpt_value *v)
{
    return v && (v->kind == CKPT_KIND_INT || v->kind == CKPT_KIND_BOOL) && !(v->flags & CK_NF_BIGINT);
}
static inline int64_t ck_small_int(const ckpt_value *v) { return v->kind == CKPT_KIND_BOOL ? v->u.b : v->u.i; }
static inline bool ck_is_seq(const ckpt_value *v)
{
    return v && (v->kind == CKPT_KIND_TUPLE || v->kind == CKPT_KIND_LIST);
}
static inline bool ck_is_str(const ckpt_value *v) { return v && v->kind == CKPT_KIND_STR; }

#endif
