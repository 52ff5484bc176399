/* walk_paths.c: the address-keyed walk of the writers (see walk_paths.h). */
#include "walk_paths.h"

#include <stdlib.h>
#include <string.h>

#include "ptrmap.h"
#include "walk.h"

typedef struct {
    const ckpt_value *v;
    size_t next;
    size_t path_len;
} frame;

ckpt_status ck_walk_paths(const ckpt_value *root, bool repeat_leaves, ck_paths_fn fn, void *user, ckpt_error *err)
{
    ck_ptrmap seen;
    ck_ptrmap_init(&seen);
    size_t fcap = 64, pcap = 256, depth = 0;
    frame *stack = malloc(fcap * sizeof *stack);
    char *path = malloc(pcap);
    ck_child *child = malloc(sizeof *child);
    ckpt_status s = CKPT_OK;
    if (!stack || !path || !child) {
        s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
        goto done;
    }
    path[0] = '\0';
    if (ck_has_identity(root) && !ck_ptrmap_put(&seen, root, 1)) {
        s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
        goto done;
    }
    ckpt_walk_action a = fn(path, 0, root, true, user);
    if (a != CKPT_WALK_CONTINUE) goto done;
    stack[depth++] = (frame){root, 0, 0};
    while (depth) {
        frame *f = &stack[depth - 1];
        if (!ck_child_at(f->v, f->next, child)) {
            depth--;
            continue;
        }
        f->next++;
        const ckpt_value *v = child->v;
        bool first = true;
        if (ck_has_identity(v)) {
            if (ck_ptrmap_get(&seen, v, NULL)) {
                first = false;
                if (!repeat_leaves || (v->kind != CKPT_KIND_TENSOR && v->kind != CKPT_KIND_STORAGE)) continue;
            } else if (!ck_ptrmap_put(&seen, v, 1)) {
                s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
                goto done;
            }
        }
        size_t plen = f->path_len, sep = depth > 1 ? 1 : 0;
        size_t need = plen + sep + child->comp_len + 1;
        if (need > pcap) {
            while (pcap < need) pcap *= 2;
            char *np = realloc(path, pcap);
            if (!np) {
                s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
                goto done;
            }
            path = np;
        }
        if (sep) path[plen] = '.';
        memcpy(path + plen + sep, child->comp, child->comp_len);
        size_t clen = plen + sep + child->comp_len;
        path[clen] = '\0';
        a = fn(path, clen, v, first, user);
        if (a == CKPT_WALK_STOP) goto done;
        if (a == CKPT_WALK_SKIP || !first) continue;
        ck_child probe;
        if (!ck_child_at(v, 0, &probe)) continue;
        if (depth == fcap) {
            frame *ns = realloc(stack, 2 * fcap * sizeof *stack);
            if (!ns) {
                s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
                goto done;
            }
            stack = ns;
            fcap *= 2;
        }
        stack[depth++] = (frame){v, 0, clen};
    }
done:
    ck_ptrmap_release(&seen);
    free(stack);
    free(path);
    free(child);
    return s;
}

typedef struct {
    const ckpt_value *target;
    char *found;
} find_ctx;

static ckpt_walk_action find_visit(const char *path, size_t len, const ckpt_value *v, bool first, void *user)
{
    (void)first;
    find_ctx *x = user;
    if (v != x->target) return CKPT_WALK_CONTINUE;
    x->found = strndup(path, len);
    return CKPT_WALK_STOP;
}

char *ck_path_of(const ckpt_value *root, const ckpt_value *target)
{
    find_ctx x = {target, NULL};
    if (ck_walk_paths(root, false, find_visit, &x, NULL) != CKPT_OK) {
        free(x.found);
        return NULL;
    }
    return x.found;
}
