/* walk.h: enumerating a node's children with their key components, and the iterative walker. */
#ifndef CK_WALK_H
#define CK_WALK_H

#include <stdbool.h>
#include "ckpt/checkpoint.h"
#include "node.h"

typedef struct ck_child {
    const ckpt_value *v;
    const char *comp; /* key component (not NUL-terminated) */
    size_t comp_len;
    char buf[136];    /* storage for formatted components */
} ck_child;

/*
 * The i-th child of node, in walk order: items of lists/tuples/sets, dict entries, then the
 * `__dict__` attributes BUILD set; for objects, `__args__`, the state's attributes, list items, dict
 * items. Returns false past the last child.
 */
bool ck_child_at(const ckpt_value *node, size_t i, ck_child *out);

/* True for nodes with identity, which a walk visits once; atoms are listed at every path. */
bool ck_has_identity(const ckpt_value *v);

/* Formats a dict key as a path component ("#<index>" for keys that are not str/int/bool/None/float). */
size_t ck_key_component(const ckpt_value *key, size_t index, char *buf, size_t cap, const char **out);

typedef ckpt_walk_action (*ck_walk_fn)(const char *path, size_t path_len, const ckpt_value *v, void *user);
/* The walk behind ckpt_walk: node_count sizes the visited bitmap. */
ckpt_status ck_walk(const ckpt_value *start, uint32_t node_count, uint64_t max_depth, ck_walk_fn fn, void *user,
                    ckpt_error *err);

#endif
