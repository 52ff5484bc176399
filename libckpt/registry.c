/*
 * registry.c: the allowlist registry object: entries, snapshots, adding/clearing/listing names,
 * lookup views, presets of built-in handlers, Python 2 name normalisation and the never-allowed names
 * (a second fence behind the allowlist). Thread-local scopes are in registry_scope.c.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "registry_internal.h"
#include "registry_spec.h"
#include "util.h"

/* ---- built-in entries (allowlist.c) ---- */

static ck_strmap default_map;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static char *default_keys; /* "module\0name" keys for default_map */

size_t ck_reg_make_key(char *buf, const char *module, const char *name)
{
    size_t ml = strlen(module), nl = strlen(name);
    memcpy(buf, module, ml);
    buf[ml] = '\0';
    memcpy(buf + ml + 1, name, nl);
    return ml + 1 + nl;
}

static void build_default_map(void)
{
    size_t n;
    const ck_reg_entry *e = ck_default_entries(&n);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += strlen(e[i].module) + strlen(e[i].name) + 2;
    default_keys = malloc(total);
    ck_strmap_init(&default_map, NULL);
    if (!default_keys) return; /* lookups then find nothing: everything is refused, which is safe */
    char *p = default_keys;
    for (size_t i = 0; i < n; i++) {
        size_t len = ck_reg_make_key(p, e[i].module, e[i].name);
        ck_strmap_put(&default_map, p, len, (void *)&e[i]);
        p += len + 1;
    }
}

/* Looks a pair up in a map keyed "module\0name". */
const void *ck_reg_map_get(const ck_strmap *m, const char *module, const char *name)
{
    size_t ml = strlen(module), nl = strlen(name);
    char stackbuf[256];
    char *key = ml + nl + 2 <= sizeof stackbuf ? stackbuf : malloc(ml + nl + 2);
    if (!key) return NULL;
    size_t len = ck_reg_make_key(key, module, name);
    const void *e = ck_strmap_get(m, key, len);
    if (key != stackbuf) free(key);
    return e;
}

const ck_reg_entry *ck_default_lookup(const char *module, const char *name)
{
    pthread_once(&default_once, build_default_map);
    return ck_reg_map_get(&default_map, module, name);
}

/* ---- snapshots ---- */

static ck_reg_snapshot *snap_new(bool with_defaults)
{
    ck_reg_snapshot *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    atomic_init(&s->refs, 1);
    s->with_defaults = with_defaults;
    ck_strmap_init(&s->map, NULL);
    return s;
}

static void snap_free(ck_reg_snapshot *s)
{
    if (!s) return;
    ck_strmap_release(&s->map);
    free(s->order);
    free(s);
}

static void snap_release(ck_reg_snapshot *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) snap_free(s);
}

/* Adds or replaces (keeping the first position). The key points into the entry, which outlives s. */
static bool snap_put(ck_reg_snapshot *s, const ck_reg_entry *e)
{
    const char *key = e->module;
    size_t len = strlen(e->module) + 1 + strlen(e->name); /* entries store "module\0name" contiguously */
    void *old = NULL;
    if (!ck_strmap_add(&s->map, key, len, (void *)e, &old)) return false;
    if (old) {
        ck_strmap_put(&s->map, key, len, (void *)e); /* present: replacing cannot allocate */
        for (size_t i = 0; i < s->count; i++)
            if (s->order[i] == old) s->order[i] = e;
        return true;
    }
    const ck_reg_entry **n = realloc(s->order, (s->count + 1) * sizeof *n);
    if (!n) return false; /* the map holds it but the order does not: the caller discards s */
    s->order = n;
    s->order[s->count++] = e;
    return true;
}

static ck_reg_snapshot *snap_copy(const ck_reg_snapshot *old, bool with_defaults)
{
    ck_reg_snapshot *s = snap_new(with_defaults);
    if (!s || !old) return s;
    for (size_t i = 0; i < old->count; i++)
        if (!snap_put(s, old->order[i])) {
            snap_free(s);
            return NULL;
        }
    return s;
}

/* ---- registry objects ---- */

static ckpt_registry default_registry = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .is_static = true,
};

const ckpt_registry *ckpt_registry_default(void) { return &default_registry; }

const ckpt_registry *ck_registry_or_default(const ckpt_registry *reg) { return reg ? reg : &default_registry; }

ckpt_registry *ckpt_registry_new(unsigned flags)
{
    ckpt_registry *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r);
        return NULL;
    }
    r->current = snap_new(!(flags & CKPT_REGISTRY_EMPTY));
    if (!r->current) {
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
    }
    ck_strmap_init(&r->pool_index, NULL);
    atomic_init(&r->next_scope, 1);
    return r;
}

void ckpt_registry_free(ckpt_registry *r)
{
    if (!r || r->is_static) return;
    snap_release(r->current);
    for (size_t i = 0; i < r->pool_len; i++) free(r->pool[i]); /* entries (with their strings) and keys */
    free(r->pool);
    ck_strmap_release(&r->pool_index);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* ---- names: "module.name" and "pickled.module.name=target.module.name" ---- */

#define MAX_NAME 1024

static ckpt_status split_one(const char *s, size_t n, const char *full, ck_name *out, ckpt_error *err)
{
    const char *dot = NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f)
            return ck_error_set(err, CKPT_ERR_INVALID_ARG, "'%s' contains a space or control character", full);
        if (c == '.') dot = s + i;
    }
    if (!dot || dot == s || dot == s + n - 1)
        return ck_error_set(err, CKPT_ERR_INVALID_ARG,
                            "'%s' is not a \"module.name\" global (or \"pickled.module.Name=real.module.Name\")", full);
    if ((dot > s && dot[-1] == '.') || s[0] == '.')
        return ck_error_set(err, CKPT_ERR_INVALID_ARG, "'%s' has an empty module component", full);
    size_t ml = (size_t)(dot - s);
    memcpy(out->module, s, ml);
    out->module[ml] = '\0';
    memcpy(out->name, dot + 1, n - ml - 1);
    out->name[n - ml - 1] = '\0';
    return CKPT_OK;
}

ckpt_status ck_parse_spec(const char *full, ck_spec *out, ckpt_error *err)
{
    if (!full) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL global name");
    size_t len = strlen(full);
    if (len == 0 || len > MAX_NAME)
        return ck_error_set(err, CKPT_ERR_INVALID_ARG, "global name of %zu bytes (1 to %d expected)", len, MAX_NAME);
    const char *eq = strchr(full, '=');
    if (eq && strchr(eq + 1, '='))
        return ck_error_set(err, CKPT_ERR_INVALID_ARG, "'%s' has more than one '='", full);
    size_t pl = eq ? (size_t)(eq - full) : len;
    ckpt_status s = split_one(full, pl, full, &out->pickled, err);
    if (s) return s;
    out->is_alias = eq != NULL;
    if (eq && (s = split_one(eq + 1, len - pl - 1, full, &out->target, err))) return s;
    const char *why;
    if (ck_never_allowed(out->pickled.module, out->pickled.name, &why))
        return ck_error_set(err, CKPT_ERR_INVALID_ARG, "'%s.%s' can never be allowed: %s", out->pickled.module,
                            out->pickled.name, why);
    if (eq && ck_never_allowed(out->target.module, out->target.name, &why))
        return ck_error_set(err, CKPT_ERR_INVALID_ARG, "alias target '%s.%s' can never be allowed: %s",
                            out->target.module, out->target.name, why);
    return CKPT_OK;
}

/* Python's naming convention: a name starting (after underscores) with a capital letter is a class. */
static bool looks_like_class(const char *name)
{
    while (*name == '_') name++;
    return *name >= 'A' && *name <= 'Z';
}

/*
 * A new entry (malloc'd: struct, then "module\0name\0target_module\0target_name\0"). What the pickled
 * name does comes from the target (the name itself when not an alias): a default-table global keeps its
 * native handlers; anything else becomes a generic node, with the built-in handler when `builtin` is
 * set, or the user's handler.
 */
ck_reg_entry *ck_make_entry(const ck_spec *sp, unsigned flags, bool builtin, ckpt_global_handler fn, void *user)
{
    const ck_name *t = sp->is_alias ? &sp->target : &sp->pickled;
    size_t pm = strlen(sp->pickled.module), pn = strlen(sp->pickled.name);
    size_t tm = sp->is_alias ? strlen(t->module) : 0, tn = sp->is_alias ? strlen(t->name) : 0;
    ck_reg_entry *e = malloc(sizeof *e + pm + pn + tm + tn + 4);
    if (!e) return NULL;
    memset(e, 0, sizeof *e);
    char *p = (char *)(e + 1);
    const ck_reg_entry *native = ck_default_lookup(t->module, t->name);
    const ck_optional_entry *opt = ck_optional_lookup(t->module, t->name);
    if (native) {
        *e = *native;
    } else {
        e->flags = CK_RF_GENERIC;
        if (flags & CKPT_GLOBAL_CLASS) e->kind = CK_G_CLASS;
        else if (flags & CKPT_GLOBAL_FUNCTION) e->kind = CK_G_FUNCTION;
        else if (opt) e->kind = opt->kind;
        else e->kind = looks_like_class(t->name) ? CK_G_CLASS : CK_G_FUNCTION;
        if (builtin && opt) e->handler = opt->handler;
    }
    if (fn) {
        e->handler = fn;
        e->handler_user = user;
        e->flags |= CK_RF_GENERIC; /* a user handler sees the generic node even for a native global */
        e->call = e->newobj = NULL;
        if (e->kind != CK_G_CLASS && e->kind != CK_G_FUNCTION) e->kind = CK_G_CLASS;
    }
    memcpy(p, sp->pickled.module, pm + 1);
    e->module = p;
    p += pm + 1;
    memcpy(p, sp->pickled.name, pn + 1);
    e->name = p;
    p += pn + 1;
    if (sp->is_alias) {
        memcpy(p, t->module, tm + 1);
        e->target_module = p;
        p += tm + 1;
        memcpy(p, t->name, tn + 1);
        e->target_name = p;
    }
    return e;
}

/* Registry-owned entry for a spec: equal specs share one entry, so re-adding costs no memory. */
static const ck_reg_entry *pooled_entry(ckpt_registry *r, const ck_spec *sp, unsigned flags, bool builtin,
                                        ckpt_global_handler fn, void *user)
{
    char key[2 * MAX_NAME + 96];
    int kl = snprintf(key, sizeof key, "%s.%s=%s.%s|%x|%d|%p|%p", sp->pickled.module, sp->pickled.name,
                      sp->is_alias ? sp->target.module : "", sp->is_alias ? sp->target.name : "", flags, builtin,
                      (void *)(uintptr_t)fn, user);
    if (kl < 0 || (size_t)kl >= sizeof key) return NULL;
    const ck_reg_entry *found = ck_strmap_get(&r->pool_index, key, (size_t)kl);
    if (found) return found;
    ck_reg_entry *e = ck_make_entry(sp, flags, builtin, fn, user);
    if (!e) return NULL;
    char *kcopy = malloc((size_t)kl + 1);
    if (!kcopy) {
        free(e);
        return NULL;
    }
    memcpy(kcopy, key, (size_t)kl + 1);
    if (r->pool_len + 2 > r->pool_cap) {
        size_t ncap = r->pool_cap ? r->pool_cap * 2 : 32;
        void **n = realloc(r->pool, ncap * sizeof *n);
        if (!n) {
            free(e);
            free(kcopy);
            return NULL;
        }
        r->pool = n;
        r->pool_cap = ncap;
    }
    if (!ck_strmap_put(&r->pool_index, kcopy, (size_t)kl, e)) {
        free(e);
        free(kcopy);
        return NULL;
    }
    r->pool[r->pool_len++] = e;
    r->pool[r->pool_len++] = kcopy;
    return e;
}

typedef struct {
    const char *const *names;
    size_t count;
    unsigned flags;
    bool builtin;
    ckpt_global_handler fn;
    void *user;
} add_req;

/* Validates every name first, then installs a new snapshot with the entries: all or nothing. */
static ckpt_status add_entries(ckpt_registry *r, const add_req *q, ckpt_error *err)
{
    if (!r) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL registry");
    if (r->is_static)
        return ck_error_set(err, CKPT_ERR_INVALID_ARG,
                            "the default registry is read-only: create one with ckpt_registry_new (or push a scope)");
    if (q->count && !q->names) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL names");
    ck_spec *sp = malloc(sizeof *sp);
    if (!sp) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    ckpt_status s = CKPT_OK;
    for (size_t i = 0; i < q->count && !s; i++) s = ck_parse_spec(q->names[i], sp, err);
    if (s) {
        free(sp);
        return s;
    }
    pthread_mutex_lock(&r->lock);
    ck_reg_snapshot *n = snap_copy(r->current, r->current->with_defaults);
    for (size_t i = 0; n && i < q->count; i++) {
        const ck_reg_entry *e = NULL;
        if (ck_parse_spec(q->names[i], sp, NULL) == CKPT_OK) e = pooled_entry(r, sp, q->flags, q->builtin, q->fn, q->user);
        if (!e || !snap_put(n, e)) {
            snap_free(n);
            n = NULL;
        }
    }
    ck_reg_snapshot *old = NULL;
    if (n) {
        old = r->current;
        r->current = n;
    } else {
        s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_unlock(&r->lock);
    snap_release(old);
    free(sp);
    return s;
}

ckpt_status ckpt_registry_add_safe_globals(ckpt_registry *r, const char *const *names, size_t count, ckpt_error *err)
{
    add_req q = {.names = names, .count = count};
    return add_entries(r, &q, err);
}

ckpt_status ckpt_registry_add_safe_global(ckpt_registry *r, const char *name, unsigned flags, ckpt_error *err)
{
    if ((flags & CKPT_GLOBAL_CLASS) && (flags & CKPT_GLOBAL_FUNCTION))
        return ck_error_set(err, CKPT_ERR_INVALID_ARG, "a global is a class or a function, not both");
    if (flags & ~(CKPT_GLOBAL_CLASS | CKPT_GLOBAL_FUNCTION))
        return ck_error_set(err, CKPT_ERR_INVALID_ARG, "unknown flags 0x%x", flags);
    add_req q = {.names = &name, .count = 1, .flags = flags};
    return add_entries(r, &q, err);
}

ckpt_status ckpt_registry_add_alias(ckpt_registry *r, const char *pickled, const char *target, ckpt_error *err)
{
    if (!pickled || !target) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL name");
    if (strchr(pickled, '=') || strchr(target, '='))
        return ck_error_set(err, CKPT_ERR_INVALID_ARG, "alias names cannot contain '='");
    size_t a = strlen(pickled), b = strlen(target);
    char *full = malloc(a + b + 2);
    if (!full) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    memcpy(full, pickled, a);
    full[a] = '=';
    memcpy(full + a + 1, target, b + 1);
    const char *names[1] = {full};
    ckpt_status s = ckpt_registry_add_safe_globals(r, names, 1, err);
    free(full);
    return s;
}

ckpt_status ckpt_registry_add_handler(ckpt_registry *r, const char *name, ckpt_global_handler fn, void *user,
                                      ckpt_error *err)
{
    if (!fn) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL handler");
    add_req q = {.names = &name, .count = 1, .fn = fn, .user = user};
    return add_entries(r, &q, err);
}

static const char *const *builtin_names_cache(void);

ckpt_status ckpt_registry_enable_handlers(ckpt_registry *r, const char *const *names, size_t count, ckpt_error *err)
{
    if (count && !names) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL names");
    for (size_t i = 0; i < count; i++) {
        ck_spec sp;
        ckpt_status s = ck_parse_spec(names[i], &sp, err);
        if (s) return s;
        const ck_name *t = sp.is_alias ? &sp.target : &sp.pickled;
        const ck_optional_entry *opt = ck_optional_lookup(t->module, t->name);
        const ck_reg_entry *native = ck_default_lookup(t->module, t->name);
        /* a default global with a native handler (collections.Counter, torch.Size) counts too: useful
         * for registries created CKPT_REGISTRY_EMPTY */
        if (!(opt && opt->handler) && !(native && (native->call || native->newobj)))
            return ck_error_set(err, CKPT_ERR_NOT_FOUND,
                                "'%s.%s' has no built-in handler (ckpt_registry_builtin_handlers lists them; "
                                "allow it as a generic object with ckpt_registry_add_safe_globals)",
                                t->module, t->name);
    }
    add_req q = {.names = names, .count = count, .builtin = true};
    return add_entries(r, &q, err);
}

static const char *const preset_names[] = {"numpy", "stdlib", NULL};

const char *const *ckpt_registry_presets(void) { return preset_names; }

unsigned ck_preset_bit(const char *name)
{
    if (!name) return 0;
    if (strcmp(name, "numpy") == 0) return CK_PRESET_NUMPY;
    if (strcmp(name, "stdlib") == 0) return CK_PRESET_STDLIB;
    return 0;
}

ckpt_status ckpt_registry_add_preset(ckpt_registry *r, const char *preset, ckpt_error *err)
{
    unsigned bit = ck_preset_bit(preset);
    if (!bit)
        return ck_error_set(err, CKPT_ERR_NOT_FOUND, "unknown preset '%s' (known: numpy, stdlib)", preset ? preset : "(null)");
    size_t n;
    const ck_optional_entry *opt = ck_optional_entries(&n);
    const char *const *all = builtin_names_cache(); /* "module.name" of opt[i], same order */
    const char **names = calloc(n ? n : 1, sizeof *names);
    if (!names) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n && all[i]; i++)
        if (opt[i].presets & bit) names[k++] = all[i];
    add_req q = {.names = names, .count = k, .builtin = true};
    ckpt_status s = add_entries(r, &q, err);
    free(names);
    return s;
}

static pthread_once_t builtin_names_once = PTHREAD_ONCE_INIT;
static const char **builtin_names;

/* Every optional entry as "module.name", in table order (presets use it), then a NULL; handler_names
 * lists those with a handler plus the default globals whose native handlers the issue names. */
static const char **handler_names;

static void build_builtin_names(void)
{
    size_t n;
    const ck_optional_entry *opt = ck_optional_entries(&n);
    static const char *const natives[] = {"collections.Counter", "collections.OrderedDict", "torch.Size"};
    size_t nn = CK_ARRAY_LEN(natives);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += strlen(opt[i].module) + strlen(opt[i].name) + 2;
    builtin_names = malloc((n + 1) * sizeof *builtin_names + total);
    handler_names = malloc((n + nn + 1) * sizeof *handler_names);
    if (!builtin_names || !handler_names) {
        free(builtin_names);
        free(handler_names);
        builtin_names = handler_names = NULL;
        return;
    }
    char *p = (char *)(builtin_names + n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        builtin_names[i] = p;
        if (opt[i].handler) handler_names[k++] = p;
        p += sprintf(p, "%s.%s", opt[i].module, opt[i].name) + 1;
    }
    builtin_names[n] = NULL;
    for (size_t i = 0; i < nn; i++) handler_names[k++] = natives[i];
    handler_names[k] = NULL;
}

static const char *const *builtin_names_cache(void)
{
    pthread_once(&builtin_names_once, build_builtin_names);
    static const char *const none[] = {NULL};
    return builtin_names ? builtin_names : none;
}

const char *const *ckpt_registry_builtin_handlers(void)
{
    builtin_names_cache();
    static const char *const none[] = {NULL};
    return handler_names ? handler_names : none;
}

ckpt_status ckpt_registry_clear_safe_globals(ckpt_registry *r, unsigned flags, ckpt_error *err)
{
    if (!r) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL registry");
    if (r->is_static) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "the default registry is read-only");
    if (flags & ~CKPT_REGISTRY_CLEAR_DEFAULTS) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "unknown flags 0x%x", flags);
    pthread_mutex_lock(&r->lock);
    ck_reg_snapshot *n = snap_new((flags & CKPT_REGISTRY_CLEAR_DEFAULTS) ? false : r->current->with_defaults);
    ck_reg_snapshot *old = NULL;
    if (n) {
        old = r->current;
        r->current = n;
    }
    pthread_mutex_unlock(&r->lock);
    if (!n) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    snap_release(old);
    return CKPT_OK;
}

/* ---- views ---- */

ck_reg_snapshot *ck_registry_snapshot_acquire(const ckpt_registry *reg)
{
    ckpt_registry *r = (ckpt_registry *)ck_registry_or_default(reg);
    if (r->is_static) return NULL;
    pthread_mutex_lock(&r->lock);
    ck_reg_snapshot *s = r->current;
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&r->lock);
    return s;
}

void ck_registry_snapshot_release(ck_reg_snapshot *s) { snap_release(s); }

const ck_reg_entry *ck_view_lookup(const ck_reg_view *v, const char *module, const char *name)
{
    const ck_reg_entry *e = ck_scope_lookup(v->scopes, v->reg, module, name);
    if (e) return e;
    if (v->snap) {
        e = ck_reg_map_get(&v->snap->map, module, name);
        if (e) return e;
        if (!v->snap->with_defaults) return NULL;
    }
    return ck_default_lookup(module, name);
}

const ck_reg_entry *ck_registry_lookup(const ckpt_registry *reg, const char *module, const char *name)
{
    ck_reg_view v;
    if (ck_registry_view_acquire(&v, reg, NULL)) return NULL;
    const ck_reg_entry *e = ck_view_lookup(&v, module, name);
    ck_registry_view_release(&v);
    return e;
}

bool ckpt_registry_is_allowed(const ckpt_registry *reg, const char *module, const char *name)
{
    if (!module || !name) return false;
    ck_normalize_global(&module, &name);
    return ck_registry_lookup(reg, module, name) != NULL;
}

const char *ckpt_global_status_name(ckpt_global_status s)
{
    switch (s) {
    case CKPT_GLOBAL_ALLOWED: return "allowed";
    case CKPT_GLOBAL_NOT_ALLOWED: return "not_allowed";
    case CKPT_GLOBAL_NEVER_ALLOWED: return "never_allowed";
    }
    return "unknown";
}

ckpt_global_status ck_classify_entry(const ck_reg_entry *e, const char *module, const char *name, const char **why)
{
    if (why) *why = NULL;
    if (e) return CKPT_GLOBAL_ALLOWED;
    if (ck_never_allowed(module, name, why)) return CKPT_GLOBAL_NEVER_ALLOWED;
    return CKPT_GLOBAL_NOT_ALLOWED;
}

ckpt_global_status ckpt_registry_classify(const ckpt_registry *reg, const char *module, const char *name,
                                          const char **why)
{
    if (why) *why = NULL;
    if (!module || !name) return CKPT_GLOBAL_NOT_ALLOWED;
    ck_normalize_global(&module, &name);
    return ck_classify_entry(ck_registry_lookup(reg, module, name), module, name, why);
}

/* ---- listing ---- */

/* "module.name" or "module.name=target.name" of an entry into buf (returns the length). */
size_t ck_entry_label(const ck_reg_entry *e, char *buf, size_t cap)
{
    int n = e->target_module
                ? snprintf(buf, cap, "%s.%s=%s.%s", e->module, e->name, e->target_module, e->target_name)
                : snprintf(buf, cap, "%s.%s", e->module, e->name);
    return n < 0 ? 0 : (size_t)n;
}

ckpt_status ckpt_registry_get_safe_globals(const ckpt_registry *reg, char ***names, size_t *count, ckpt_error *err)
{
    if (!names || !count) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL output");
    *names = NULL;
    *count = 0;
    ck_reg_view v;
    ckpt_status s = ck_registry_view_acquire(&v, reg, err);
    if (s) return s;
    const ck_reg_entry **list = NULL;
    size_t n = 0;
    s = ck_scope_collect(v.scopes, v.reg, v.snap ? v.snap->order : NULL, v.snap ? v.snap->count : 0, &list, &n);
    if (s) {
        ck_registry_view_release(&v);
        return ck_error_set(err, s, "out of memory");
    }
    size_t total = (n + 1) * sizeof(char *);
    char label[2 * MAX_NAME + 8];
    for (size_t i = 0; i < n; i++) total += ck_entry_label(list[i], label, sizeof label) + 1;
    char **out = malloc(total);
    if (!out) {
        free(list);
        ck_registry_view_release(&v);
        return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    }
    char *p = (char *)(out + n + 1);
    for (size_t i = 0; i < n; i++) {
        out[i] = p;
        p += ck_entry_label(list[i], p, total - (size_t)(p - (char *)out)) + 1;
    }
    out[n] = NULL;
    free(list);
    ck_registry_view_release(&v);
    *names = out;
    *count = n;
    return CKPT_OK;
}

/* ---- never-allowed names ---- */

/* Modules (and their submodules) whose only use in a pickle is running code or touching the system. */
static const char *const never_modules[] = {
    "os", "posix", "nt", "sys", "subprocess", "_posixsubprocess", "importlib", "imp", "zipimport", "pkgutil",
    "runpy", "pickle", "_pickle", "cPickle", "pickletools", "marshal", "shelve", "dill", "cloudpickle", "joblib",
    "ctypes", "_ctypes", "cffi", "code", "codeop", "pdb", "bdb", "timeit", "cProfile", "profile", "trace",
    "doctest", "pty", "shutil", "tempfile", "socket", "_socket", "socketserver", "ssl", "select", "selectors",
    "asyncio", "asyncore", "asynchat", "multiprocessing", "_multiprocessing", "_thread", "threading",
    "concurrent", "signal", "atexit", "fcntl", "webbrowser", "antigravity", "urllib", "http", "ftplib", "smtplib",
    "telnetlib", "poplib", "imaplib", "xmlrpc", "requests", "httpx", "aiohttp", "pip", "setuptools", "distutils",
    "ensurepip", "venv", "site", "sysconfig", "_io", "io", "fileinput", "glob", "linecache", "mmap", "resource",
    "gc", "inspect", "_operator", "platform", "pydoc", "idlelib", "lib2to3", "tkinter", "zipfile", "tarfile",
    "gzip", "bz2", "lzma", "sqlite3", "dbm", "_winapi", "winreg", "msvcrt",
    "torch.hub", "torch.jit", "torch._dynamo", "torch._inductor", "torch.utils.cpp_extension", "torch.package",
    "torch.distributed.rpc", "numpy.f2py", "numpy.distutils", "numpy.testing", "numpy.ctypeslib",
    "numpy.lib.npyio",
};

/* Single names whose only use is running code, reaching attributes, or touching the system. */
static const char *const never_names[] = {
    "builtins.eval", "builtins.exec", "builtins.compile", "builtins.__import__", "builtins.getattr",
    "builtins.setattr", "builtins.delattr", "builtins.open", "builtins.input", "builtins.breakpoint",
    "builtins.globals", "builtins.locals", "builtins.vars", "builtins.exit", "builtins.quit", "builtins.help",
    "builtins.memoryview", "builtins.__build_class__", "builtins.type", "builtins.super",
    "builtins.classmethod", "builtins.staticmethod", "builtins.property", "builtins.print", "builtins.dir",
    "builtins.apply", "builtins.execfile", "builtins.reload", "builtins.file", "builtins.__loader__",
    "functools.partial", "functools.reduce", "functools.partialmethod", "functools.singledispatch",
    "operator.attrgetter", "operator.methodcaller", "operator.itemgetter", "operator.call",
    "types.CodeType", "types.FunctionType", "types.LambdaType", "types.MethodType", "types.ModuleType",
    "types.new_class", "types.BuiltinFunctionType", "types.BuiltinMethodType", "logging.FileHandler",
    "logging.config.listen", "logging.config.fileConfig", "logging.config.dictConfig",
    "numpy.load", "numpy.loadtxt", "numpy.genfromtxt", "numpy.fromregex", "numpy.fromfile", "numpy.memmap",
    "numpy.lib.format.read_array", "numpy.lib.format.open_memmap",
    "torch.load", "torch.serialization.load", "torch.serialization._load", "torch.serialization._legacy_load",
    "torch.storage._load_from_bytes", "torch._C._jit_pass_inline", "torch.fx.graph_module._forward_from_src",
    "torch.fx.graph_module.reduce_graph_module", "torch.fx.graph_module.reduce_package_graph_module",
    "torch.fx.graph_module.reduce_deploy_graph_module", "torch._C._load_for_lite_interpreter",
};

bool ck_never_allowed(const char *module, const char *name, const char **why)
{
    size_t ml = strlen(module);
    for (size_t i = 0; i < CK_ARRAY_LEN(never_modules); i++) {
        size_t l = strlen(never_modules[i]);
        if (ml >= l && memcmp(module, never_modules[i], l) == 0 && (module[l] == '\0' || module[l] == '.')) {
            if (why) *why = "its module runs code or touches the system";
            return true;
        }
    }
    for (size_t i = 0; i < CK_ARRAY_LEN(never_names); i++) {
        const char *full = never_names[i];
        const char *dot = strrchr(full, '.');
        if ((size_t)(dot - full) == ml && memcmp(full, module, ml) == 0 && strcmp(dot + 1, name) == 0) {
            if (why) *why = "it runs code, reaches arbitrary attributes, or touches the system";
            return true;
        }
    }
    /* CPython's protocol-4 lookup walks dotted names (pathlib + "os.system"): never allowed. */
    if (strchr(name, '.')) {
        if (why) *why = "its name is a dotted attribute path, which Python's unpickler walks to reach other objects";
        return true;
    }
    return false;
}

/* ---- Python 2 names (Lib/_compat_pickle.py, applied when the pickle's protocol is below 3) ---- */

static const struct { const char *from, *to; } import_mapping[] = {
    {"__builtin__", "builtins"}, {"copy_reg", "copyreg"}, {"Queue", "queue"}, {"SocketServer", "socketserver"},
    {"ConfigParser", "configparser"}, {"repr", "reprlib"}, {"tkFileDialog", "tkinter.filedialog"},
    {"tkSimpleDialog", "tkinter.simpledialog"}, {"tkColorChooser", "tkinter.colorchooser"},
    {"tkCommonDialog", "tkinter.commondialog"}, {"Dialog", "tkinter.dialog"}, {"Tkdnd", "tkinter.dnd"},
    {"tkFont", "tkinter.font"}, {"tkMessageBox", "tkinter.messagebox"}, {"ScrolledText", "tkinter.scrolledtext"},
    {"Tkconstants", "tkinter.constants"}, {"Tix", "tkinter.tix"}, {"ttk", "tkinter.ttk"}, {"Tkinter", "tkinter"},
    {"markupbase", "_markupbase"}, {"_winreg", "winreg"}, {"thread", "_thread"}, {"dummy_thread", "_dummy_thread"},
    {"dbhash", "dbm.bsd"}, {"dumbdbm", "dbm.dumb"}, {"dbm", "dbm.ndbm"}, {"gdbm", "dbm.gnu"},
    {"xmlrpclib", "xmlrpc.client"}, {"SimpleXMLRPCServer", "xmlrpc.server"}, {"httplib", "http.client"},
    {"htmlentitydefs", "html.entities"}, {"HTMLParser", "html.parser"}, {"Cookie", "http.cookies"},
    {"cookielib", "http.cookiejar"}, {"BaseHTTPServer", "http.server"}, {"test.test_support", "test.support"},
    {"commands", "subprocess"}, {"urlparse", "urllib.parse"}, {"robotparser", "urllib.robotparser"},
    {"urllib2", "urllib.request"}, {"anydbm", "dbm"}, {"_abcoll", "collections.abc"}, {"cPickle", "pickle"},
    {"_elementtree", "xml.etree.ElementTree"}, {"FileDialog", "tkinter.filedialog"},
    {"SimpleDialog", "tkinter.simpledialog"}, {"DocXMLRPCServer", "xmlrpc.server"},
    {"SimpleHTTPServer", "http.server"}, {"CGIHTTPServer", "http.server"}, {"UserDict", "collections"},
    {"UserList", "collections"}, {"UserString", "collections"}, {"whichdb", "dbm"}, {"StringIO", "io"},
    {"cStringIO", "io"},
};

static const struct { const char *m, *n, *tm, *tn; } name_mapping[] = {
    {"__builtin__", "xrange", "builtins", "range"}, {"__builtin__", "reduce", "functools", "reduce"},
    {"__builtin__", "intern", "sys", "intern"}, {"__builtin__", "unichr", "builtins", "chr"},
    {"__builtin__", "unicode", "builtins", "str"}, {"__builtin__", "long", "builtins", "int"},
    {"itertools", "izip", "builtins", "zip"}, {"itertools", "imap", "builtins", "map"},
    {"itertools", "ifilter", "builtins", "filter"}, {"itertools", "ifilterfalse", "itertools", "filterfalse"},
    {"itertools", "izip_longest", "itertools", "zip_longest"}, {"UserDict", "IterableUserDict", "collections", "UserDict"},
    {"UserList", "UserList", "collections", "UserList"}, {"UserString", "UserString", "collections", "UserString"},
    {"whichdb", "whichdb", "dbm", "whichdb"}, {"_socket", "fromfd", "socket", "fromfd"},
    {"_multiprocessing", "Connection", "multiprocessing.connection", "Connection"},
    {"multiprocessing.process", "Process", "multiprocessing.context", "Process"},
    {"multiprocessing.forking", "Popen", "multiprocessing.popen_fork", "Popen"},
    {"urllib", "ContentTooShortError", "urllib.error", "ContentTooShortError"},
    {"urllib", "getproxies", "urllib.request", "getproxies"}, {"urllib", "pathname2url", "urllib.request", "pathname2url"},
    {"urllib", "quote_plus", "urllib.parse", "quote_plus"}, {"urllib", "quote", "urllib.parse", "quote"},
    {"urllib", "unquote_plus", "urllib.parse", "unquote_plus"}, {"urllib", "unquote", "urllib.parse", "unquote"},
    {"urllib", "url2pathname", "urllib.request", "url2pathname"}, {"urllib", "urlcleanup", "urllib.request", "urlcleanup"},
    {"urllib", "urlencode", "urllib.parse", "urlencode"}, {"urllib", "urlopen", "urllib.request", "urlopen"},
    {"urllib", "urlretrieve", "urllib.request", "urlretrieve"}, {"urllib2", "HTTPError", "urllib.error", "HTTPError"},
    {"urllib2", "URLError", "urllib.error", "URLError"}, {"__builtin__", "basestring", "builtins", "str"},
    {"exceptions", "StandardError", "builtins", "Exception"}, {"UserDict", "UserDict", "collections", "UserDict"},
    {"socket", "_socketobject", "socket", "SocketType"},
    {"multiprocessing", "AuthenticationError", "multiprocessing.context", "AuthenticationError"},
    {"multiprocessing", "BufferTooShort", "multiprocessing.context", "BufferTooShort"},
    {"multiprocessing", "ProcessError", "multiprocessing.context", "ProcessError"},
    {"multiprocessing", "TimeoutError", "multiprocessing.context", "TimeoutError"},
};

void ck_normalize_global(const char **module, const char **name)
{
    for (size_t i = 0; i < CK_ARRAY_LEN(name_mapping); i++)
        if (strcmp(*module, name_mapping[i].m) == 0 && strcmp(*name, name_mapping[i].n) == 0) {
            *module = name_mapping[i].tm;
            *name = name_mapping[i].tn;
            return;
        }
    /* exceptions.X -> builtins.X (every Python 2 exception class is a builtin in Python 3) */
    if (strcmp(*module, "exceptions") == 0) {
        *module = "builtins";
        return;
    }
    for (size_t i = 0; i < CK_ARRAY_LEN(import_mapping); i++)
        if (strcmp(*module, import_mapping[i].from) == 0) {
            *module = import_mapping[i].to;
            return;
        }
}
