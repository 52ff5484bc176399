/*
 * registry_scope.c: thread-local scopes (ckpt_registry_safe_globals_push/pop) and lookup views.
 *
 * Each thread has its own stack of scopes, kept behind a pthread key (the one piece of per-process
 * state, created once; its destructor frees what a thread leaves behind when it exits). A scope belongs
 * to one registry and holds its own entries, freed when it is popped: nothing else can reference them,
 * because only the pushing thread sees the scope and a pop is refused while a load runs on that thread.
 * Tokens come from a per-registry counter, so a token never matches another thread's or another
 * registry's scope.
 */
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "registry_spec.h"
#include "util.h"

struct ck_scope {
    ck_scope *prev;
    const ckpt_registry *reg;
    ckpt_registry_scope token;
    ck_strmap map;          /* "module\0name" -> entry */
    ck_reg_entry **entries; /* owned, in push order */
    size_t n;
};

typedef struct ck_tls {
    ck_scope *top;
    unsigned active_views; /* loads/scans running on this thread (handlers may run inside them) */
} ck_tls;

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static bool tls_ready;

static void scope_free(ck_scope *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->entries[i]);
    free(s->entries);
    ck_strmap_release(&s->map);
    free(s);
}

static void tls_destroy(void *p)
{
    ck_tls *t = p;
    while (t->top) {
        ck_scope *s = t->top;
        t->top = s->prev;
        scope_free(s);
    }
    free(t);
}

static void tls_init(void) { tls_ready = pthread_key_create(&tls_key, tls_destroy) == 0; }

static ck_tls *tls_get(bool create)
{
    pthread_once(&tls_once, tls_init);
    if (!tls_ready) return NULL;
    ck_tls *t = pthread_getspecific(tls_key);
    if (!t && create) {
        t = calloc(1, sizeof *t);
        if (t && pthread_setspecific(tls_key, t) != 0) {
            free(t);
            t = NULL;
        }
    }
    return t;
}

const ck_reg_entry *ck_scope_lookup(const ck_scope *s, const ckpt_registry *reg, const char *module, const char *name)
{
    for (; s; s = s->prev) {
        if (s->reg != reg) continue;
        const ck_reg_entry *e = ck_reg_map_get(&s->map, module, name);
        if (e) return e;
    }
    return NULL;
}

ckpt_status ck_scope_collect(const ck_scope *top, const ckpt_registry *reg, const ck_reg_entry *const *base,
                             size_t nbase, const ck_reg_entry ***out, size_t *n)
{
    size_t total = nbase, nscopes = 0;
    for (const ck_scope *s = top; s; s = s->prev)
        if (s->reg == reg) {
            total += s->n;
            nscopes++;
        }
    const ck_reg_entry **list = malloc((total ? total : 1) * sizeof *list);
    const ck_scope **chain = malloc((nscopes ? nscopes : 1) * sizeof *chain);
    if (!list || !chain) {
        free(list);
        free(chain);
        return CKPT_ERR_NOMEM;
    }
    size_t k = 0, c = nscopes;
    for (const ck_scope *s = top; s; s = s->prev)
        if (s->reg == reg) chain[--c] = s; /* outermost first */
    for (size_t i = 0; i < nbase; i++) list[k++] = base[i];
    for (size_t j = 0; j < nscopes; j++)
        for (size_t i = 0; i < chain[j]->n; i++) list[k++] = chain[j]->entries[i];
    free(chain);
    *out = list;
    *n = k;
    return CKPT_OK;
}

ckpt_status ckpt_registry_safe_globals_push(const ckpt_registry *reg, const char *const *names, size_t count,
                                            ckpt_registry_scope *scope, ckpt_error *err)
{
    if (!scope) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL scope output");
    if (count && !names) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL names");
    reg = ck_registry_or_default(reg);
    ck_spec *sp = malloc(sizeof *sp);
    ck_scope *s = calloc(1, sizeof *s);
    if (!sp || !s) {
        free(sp);
        free(s);
        return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    }
    ck_strmap_init(&s->map, NULL);
    s->reg = reg;
    ckpt_status st = CKPT_OK;
    if (count) {
        s->entries = calloc(count, sizeof *s->entries);
        if (!s->entries) st = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < count && !st; i++) {
        if ((st = ck_parse_spec(names[i], sp, err))) break;
        ck_reg_entry *e = ck_make_entry(sp, 0, false, NULL, NULL);
        if (!e) {
            st = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
            break;
        }
        s->entries[s->n++] = e;
        /* entries store "module\0name" contiguously: the key points into the entry */
        if (!ck_strmap_put(&s->map, e->module, strlen(e->module) + 1 + strlen(e->name), e))
            st = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    }
    free(sp);
    ck_tls *t = st ? NULL : tls_get(true);
    if (!st && !t) st = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory (thread-local scope stack)");
    if (st) {
        scope_free(s);
        return st;
    }
    ckpt_registry *r = (ckpt_registry *)reg; /* the token counter is the only field a push touches */
    s->token = atomic_fetch_add_explicit(&r->next_scope, 1, memory_order_relaxed);
    s->prev = t->top;
    t->top = s;
    *scope = s->token;
    return CKPT_OK;
}

ckpt_status ckpt_registry_safe_globals_pop(const ckpt_registry *reg, ckpt_registry_scope scope, ckpt_error *err)
{
    reg = ck_registry_or_default(reg);
    ck_tls *t = tls_get(false);
    if (t && t->active_views)
        return ck_error_set(err, CKPT_ERR_STATE, "a scope cannot be popped while a load runs on this thread (from a handler)");
    ck_scope **link = t ? &t->top : NULL;
    while (link && *link && (*link)->reg != reg) link = &(*link)->prev;
    if (!link || !*link)
        return ck_error_set(err, CKPT_ERR_STATE, "scope %llu is not active on this thread for this registry (popped twice, "
                            "or pushed by another thread)", (unsigned long long)scope);
    ck_scope *s = *link;
    if (s->token != scope) {
        bool deeper = false;
        for (ck_scope *o = s->prev; o && !deeper; o = o->prev) deeper = o->reg == reg && o->token == scope;
        if (deeper)
            return ck_error_set(err, CKPT_ERR_STATE, "scope %llu popped out of order: scope %llu, pushed after it, is "
                                "still active (pop scopes in the reverse order of their pushes)",
                                (unsigned long long)scope, (unsigned long long)s->token);
        return ck_error_set(err, CKPT_ERR_STATE, "scope %llu is not active on this thread for this registry (popped twice, "
                            "or pushed by another thread)", (unsigned long long)scope);
    }
    *link = s->prev;
    scope_free(s);
    return CKPT_OK;
}

ckpt_status ck_registry_view_acquire(ck_reg_view *v, const ckpt_registry *reg, ckpt_error *err)
{
    memset(v, 0, sizeof *v);
    v->reg = ck_registry_or_default(reg);
    ck_tls *t = tls_get(false);
    /* Count the view only when the thread has state (no scopes means nothing a pop could free). */
    if (t) {
        t->active_views++;
        v->scopes = t->top;
        v->counted = true;
    }
    v->snap = ck_registry_snapshot_acquire(v->reg);
    v->acquired = true;
    (void)err;
    return CKPT_OK;
}

void ck_registry_view_release(ck_reg_view *v)
{
    if (!v->acquired) return;
    if (v->counted) {
        ck_tls *t = tls_get(false);
        if (t && t->active_views) t->active_views--;
    }
    ck_registry_snapshot_release(v->snap);
    memset(v, 0, sizeof *v);
}
