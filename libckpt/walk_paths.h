/*
 * walk_paths.h: the writers' walk. Like walk.c's (same children, same dotted paths, iterative), but it
 * remembers visited nodes by address instead of by dense id, because a tree being saved may mix nodes
 * of several stores (a builder's values holding tensors of a loaded checkpoint), whose ids collide.
 */
#ifndef CK_WALK_PATHS_H
#define CK_WALK_PATHS_H

#include <stdbool.h>
#include "ckpt/checkpoint.h"
#include "node.h"

/* first: false when a node with identity is met again (only reported with repeat_leaves). */
typedef ckpt_walk_action (*ck_paths_fn)(const char *path, size_t len, const ckpt_value *v, bool first, void *user);

/*
 * Depth-first pre-order from root (path ""). Nodes with identity are descended into once, at the first
 * path that reaches them; with repeat_leaves, tensors and storages are also reported at every later
 * path (first = false), so aliases can be named.
 */
ckpt_status ck_walk_paths(const ckpt_value *root, bool repeat_leaves, ck_paths_fn fn, void *user, ckpt_error *err);

/* The dotted path of the first place the walk meets `target` ("" for the root), malloc'd; NULL if absent. */
char *ck_path_of(const ckpt_value *root, const ckpt_value *target);

#endif
