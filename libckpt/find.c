/*
 * find.c: looking a value up by dotted key. Dict keys may contain dots themselves (a state dict's
 * "layer1.0.weight" is one key), so at each dict the longest key matching a dot-bounded prefix is
 * tried first, backtracking to shorter ones. A step budget bounds pathological key sets.
 */
#include <string.h>

#include "checkpoint_internal.h"
#include "walk.h"

#define FIND_BUDGET 100000

typedef struct {
    const ckpt_value *node;
    size_t off;  /* where the remaining path starts */
    size_t tryk; /* next prefix end to try (exclusive), counting down */
} find_frame;

/* Spends one step of the budget; false once it is used up (it never wraps around). */
static bool spend(unsigned *budget)
{
    if (*budget == 0) return false;
    (*budget)--;
    return true;
}

/* The child of node whose component equals path[0..n), or NULL. */
static const ckpt_value *child_named(const ckpt_value *node, const char *p, size_t n, unsigned *budget)
{
    if (node->kind == CKPT_KIND_DICT) {
        const ckpt_value *v = ck_dict_get_str(node, p, n);
        if (v) return v;
    }
    ck_child c;
    for (size_t i = 0; ck_child_at(node, i, &c); i++) {
        if (!spend(budget)) return NULL;
        if (node->kind == CKPT_KIND_DICT && i < node->u.dict.len && node->u.dict.entries[i].key->kind == CKPT_KIND_STR)
            continue; /* str keys were looked up by hash */
        if (c.comp_len == n && memcmp(c.comp, p, n) == 0) return c.v;
    }
    return NULL;
}

const ckpt_value *ckpt_checkpoint_find(const ckpt_checkpoint *ck, const char *key)
{
    if (!ck || !key || !ck->root) return NULL;
    size_t len = strlen(key);
    if (len == 0) return ck->root;
    find_frame stack[256];
    size_t depth = 0;
    unsigned budget = FIND_BUDGET;
    stack[depth++] = (find_frame){ck->root, 0, len};
    while (depth) {
        find_frame *f = &stack[depth - 1];
        const char *p = key + f->off;
        size_t rem = len - f->off;
        /* next candidate end: the whole rest, then each earlier dot */
        size_t k = f->tryk;
        while (k > 0 && !(k == rem || p[k] == '.')) k--;
        if (k == 0) {
            depth--;
            continue;
        }
        f->tryk = k - 1;
        if (!spend(&budget)) return NULL;
        const ckpt_value *c = child_named(f->node, p, k, &budget);
        if (!c) continue;
        if (k == rem) return c;
        if (depth == sizeof stack / sizeof stack[0]) return NULL;
        stack[depth++] = (find_frame){c, f->off + k + 1, rem - k - 1};
    }
    return NULL;
}

const ckpt_tensor *ckpt_checkpoint_find_tensor(const ckpt_checkpoint *ck, const char *key)
{
    const ckpt_value *v = ckpt_checkpoint_find(ck, key);
    return v && v->kind == CKPT_KIND_TENSOR ? v->u.tensor : NULL;
}
