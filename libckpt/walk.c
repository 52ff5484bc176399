/*
 * walk.c: one iterative depth-first walk for every consumer (tensor index, find, JSON, converters).
 * No recursion: the frame stack lives on the heap and is bounded by the depth limit; a bitmap over node
 * ids makes each node with identity (containers, tensors, objects) visited once, so a memo DAG costs
 * linear time however many paths reach its nodes.
 */
#include "walk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensors.h"
#include "text.h"
#include "util.h"

/*
 * Longest dotted path handed out. A path repeats every key above its node, so a long key reused at
 * every level of a deep nest grows paths with the depth (and a JSON document with its square) from a
 * small file; no real key path comes near this.
 */
#define CK_WALK_MAX_PATH ((size_t)1 << 20)

bool ck_has_identity(const ckpt_value *v)
{
    switch (v->kind) {
    case CKPT_KIND_LIST:
    case CKPT_KIND_DICT:
    case CKPT_KIND_SET:
    case CKPT_KIND_FROZENSET:
    case CKPT_KIND_BYTEARRAY:
    case CKPT_KIND_TENSOR:
    case CKPT_KIND_STORAGE:
    case CKPT_KIND_OBJECT:
    case CKPT_KIND_CALL:
    case CKPT_KIND_SPARSE: return true;
    case CKPT_KIND_TUPLE: return v->u.seq.len > 0 || v->type_name != NULL; /* () is a singleton in Python */
    default: return false;
    }
}

size_t ck_key_component(const ckpt_value *key, size_t index, char *buf, size_t cap, const char **out)
{
    switch (key->kind) {
    case CKPT_KIND_STR: *out = key->u.s.ptr; return key->u.s.len;
    case CKPT_KIND_NONE: *out = "None"; return 4;
    case CKPT_KIND_BOOL: *out = key->u.b ? "True" : "False"; return key->u.b ? 4 : 5;
    case CKPT_KIND_INT:
        if (!(key->flags & CK_NF_BIGINT)) {
            *out = buf;
            return (size_t)snprintf(buf, cap, "%lld", (long long)key->u.i);
        } else {
            char *dec = ck_le_to_decimal(key->u.big.bytes, key->u.big.len);
            if (dec && strlen(dec) < cap) {
                strcpy(buf, dec);
                free(dec);
                *out = buf;
                return strlen(buf);
            }
            free(dec);
        }
        break;
    case CKPT_KIND_FLOAT: ck_float_repr(key->u.f, buf, cap); *out = buf; return strlen(buf);
    default: break;
    }
    *out = buf;
    return (size_t)snprintf(buf, cap, "#%zu", index);
}

static bool nonempty_dict(const ckpt_value *d) { return d && d->kind == CKPT_KIND_DICT && d->u.dict.len > 0; }

bool ck_child_at(const ckpt_value *node, size_t i, ck_child *c)
{
    switch (node->kind) {
    case CKPT_KIND_LIST:
    case CKPT_KIND_TUPLE:
    case CKPT_KIND_SET:
    case CKPT_KIND_FROZENSET:
        if (i < node->u.seq.len) {
            c->v = node->u.seq.items[i];
            c->comp = c->buf;
            c->comp_len = (size_t)snprintf(c->buf, sizeof c->buf, "%zu", i);
            return true;
        }
        i -= node->u.seq.len;
        break;
    case CKPT_KIND_DICT:
        if (i < node->u.dict.len) {
            c->v = node->u.dict.entries[i].val;
            c->comp_len = ck_key_component(node->u.dict.entries[i].key, i, c->buf, sizeof c->buf, &c->comp);
            return true;
        }
        i -= node->u.dict.len;
        break;
    case CKPT_KIND_OBJECT:
    case CKPT_KIND_CALL: {
        const ck_object *o = node->u.obj;
        if (o->args && o->args->u.seq.len) {
            if (i == 0) {
                c->v = o->args;
                c->comp = "__args__";
                c->comp_len = 8;
                return true;
            }
            i--;
        }
        if (o->kwargs && o->kwargs->kind == CKPT_KIND_DICT && o->kwargs->u.dict.len) {
            if (i == 0) {
                c->v = o->kwargs;
                c->comp = "__kwargs__";
                c->comp_len = 10;
                return true;
            }
            i--;
        }
        if (o->state) {
            if (o->state->kind == CKPT_KIND_DICT) {
                if (i < o->state->u.dict.len) {
                    c->v = o->state->u.dict.entries[i].val;
                    c->comp_len = ck_key_component(o->state->u.dict.entries[i].key, i, c->buf, sizeof c->buf, &c->comp);
                    return true;
                }
                i -= o->state->u.dict.len;
            } else {
                if (i == 0) {
                    c->v = o->state;
                    c->comp = "__state__";
                    c->comp_len = 9;
                    return true;
                }
                i--;
            }
        }
        if (o->list_items) {
            if (i < o->list_items->u.seq.len) {
                c->v = o->list_items->u.seq.items[i];
                c->comp = c->buf;
                c->comp_len = (size_t)snprintf(c->buf, sizeof c->buf, "%zu", i);
                return true;
            }
            i -= o->list_items->u.seq.len;
        }
        if (o->dict_items) {
            if (i < o->dict_items->u.dict.len) {
                c->v = o->dict_items->u.dict.entries[i].val;
                c->comp_len = ck_key_component(o->dict_items->u.dict.entries[i].key, i, c->buf, sizeof c->buf, &c->comp);
                return true;
            }
            i -= o->dict_items->u.dict.len;
        }
        break;
    }
    case CKPT_KIND_SPARSE: {
        /* the component tensors, named like torch's accessors */
        static const char *const names[][3] = {
            [CKPT_LAYOUT_SPARSE_COO] = {"indices", NULL, "values"},
            [CKPT_LAYOUT_SPARSE_CSR] = {"crow_indices", "col_indices", "values"},
            [CKPT_LAYOUT_SPARSE_CSC] = {"ccol_indices", "row_indices", "values"},
            [CKPT_LAYOUT_SPARSE_BSR] = {"crow_indices", "col_indices", "values"},
            [CKPT_LAYOUT_SPARSE_BSC] = {"ccol_indices", "row_indices", "values"},
        };
        const ckpt_sparse *sp = node->u.sparse;
        ckpt_value *parts[3] = {sp->indices, sp->plain, sp->values};
        if (sp->layout >= CK_ARRAY_LEN(names) || sp->layout == CKPT_LAYOUT_STRIDED) return false;
        for (size_t k = 0; k < 3; k++) {
            if (!parts[k]) continue;
            if (i == 0) {
                c->v = parts[k];
                c->comp = names[sp->layout][k];
                c->comp_len = strlen(c->comp);
                return true;
            }
            i--;
        }
        return false;
    }
    default: return false;
    }
    if (i == 0 && nonempty_dict(node->attrs)) {
        c->v = node->attrs;
        c->comp = "__dict__";
        c->comp_len = 8;
        return true;
    }
    return false;
}

typedef struct {
    const ckpt_value *v;
    size_t next;     /* next child index */
    size_t path_len; /* length of this node's path */
} frame;

ckpt_status ck_walk(const ckpt_value *start, uint32_t node_count, uint64_t max_depth, ck_walk_fn fn, void *user,
                    ckpt_error *err)
{
    uint8_t *seen = calloc((size_t)node_count / 8 + 1, 1);
    size_t fcap = 64, pcap = 256, depth = 0;
    frame *stack = malloc(fcap * sizeof *stack);
    char *path = malloc(pcap);
    ckpt_status s = CKPT_OK;
    ck_child *child = malloc(sizeof *child);
    if (!seen || !stack || !path || !child) {
        s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
        goto done;
    }
    path[0] = '\0';
    /* visit the start node */
    if (ck_has_identity(start) && start->id < node_count) seen[start->id / 8] |= (uint8_t)(1u << (start->id % 8));
    ckpt_walk_action a = fn(path, 0, start, user);
    if (a == CKPT_WALK_STOP || a == CKPT_WALK_SKIP) goto done;
    stack[depth++] = (frame){start, 0, 0};
    while (depth) {
        frame *f = &stack[depth - 1];
        if (!ck_child_at(f->v, f->next, child)) {
            depth--;
            continue;
        }
        f->next++;
        const ckpt_value *v = child->v;
        bool identity = ck_has_identity(v);
        if (identity && v->id < node_count) {
            uint8_t bit = (uint8_t)(1u << (v->id % 8));
            if (seen[v->id / 8] & bit) continue;
            seen[v->id / 8] |= bit;
        }
        /* child path: the component alone under the start node, else parent + "." + component */
        size_t plen = f->path_len, sep = depth > 1 ? 1 : 0;
        size_t need = plen + sep + child->comp_len + 1;
        if (need > CK_WALK_MAX_PATH + 1) {
            s = ck_error_set(err, CKPT_ERR_LIMIT, "dotted path longer than %zu bytes at depth %zu (long keys repeated down "
                             "a deep nest)", CK_WALK_MAX_PATH, depth);
            goto done;
        }
        if (need > pcap) {
            while (pcap < need) pcap *= 2;
            char *np = realloc(path, pcap);
            if (!np) { s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory"); goto done; }
            path = np;
        }
        if (sep) path[plen] = '.';
        memcpy(path + plen + sep, child->comp, child->comp_len);
        size_t clen = plen + sep + child->comp_len;
        path[clen] = '\0';
        a = fn(path, clen, v, user);
        if (a == CKPT_WALK_STOP) goto done;
        if (a == CKPT_WALK_SKIP) continue;
        /* descend only into nodes that can have children */
        ck_child probe;
        if (!ck_child_at(v, 0, &probe)) continue;
        if (depth >= max_depth) {
            s = ck_error_set(err, CKPT_ERR_LIMIT, "value nesting deeper than %llu at '%.200s' (CKPT_LIMIT_MAX_DEPTH)",
                             (unsigned long long)max_depth, path);
            goto done;
        }
        if (depth == fcap) {
            frame *ns = realloc(stack, 2 * fcap * sizeof *stack);
            if (!ns) { s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory"); goto done; }
            stack = ns;
            fcap *= 2;
        }
        stack[depth++] = (frame){v, 0, clen};
    }
done:
    free(seen);
    free(stack);
    free(path);
    free(child);
    return s;
}
