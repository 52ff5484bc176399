/*
 * test_registry_threads.c: one registry shared by many threads. Scopes stay with the thread that pushed
 * them; loads run while other threads add, clear, push and pop; each load sees one consistent registry.
 * tools/test.sh also runs this suite in a ThreadSanitizer build (build-tsan, -Db_sanitize=thread).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pickle_builder.h"
#include "support.h"

#define NTHREADS 6
#define ITERS 150

static uint8_t *object_ckpt(const char *module, const char *name, size_t *len)
{
    pk b = {0};
    pk_proto(&b, 2);
    pk_global(&b, module, name);
    pk_empty_tuple(&b);
    pk_newobj(&b);
    pk_empty_dict(&b);
    pk_str(&b, "v");
    pk_int(&b, 1);
    pk_setitem(&b);
    pk_build(&b);
    pk_stop(&b);
    uint8_t *z = tst_make_checkpoint(b.p, b.len, NULL, 0, len);
    pk_free(&b);
    return z;
}

static ckpt_status load(const ckpt_registry *r, const uint8_t *z, size_t len, ckpt_error *err)
{
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_load_options_set_registry(o, r);
    ckpt_checkpoint *ck = NULL;
    ckpt_status s = ckpt_load_memory(z, len, o, &ck, err);
    ckpt_checkpoint_free(ck);
    ckpt_load_options_free(o);
    return s;
}

/* ---- scopes are per thread; loads run concurrently ---- */

typedef struct {
    ckpt_registry *r;
    int id;
    pthread_barrier_t *barrier;
    int failures;
    char msg[256];
} worker;

static void *scoped_worker(void *p)
{
    worker *w = p;
    char own[32], next[32], inner[32];
    snprintf(own, sizeof own, "t%d.Cls", w->id);
    snprintf(next, sizeof next, "t%d", (w->id + 1) % NTHREADS);
    snprintf(inner, sizeof inner, "t%d.Inner", w->id);
    size_t l_own, l_next, l_inner, l_shared;
    char mod[16];
    snprintf(mod, sizeof mod, "t%d", w->id);
    uint8_t *z_own = object_ckpt(mod, "Cls", &l_own);
    uint8_t *z_next = object_ckpt(next, "Cls", &l_next);
    uint8_t *z_inner = object_ckpt(mod, "Inner", &l_inner);
    uint8_t *z_shared = object_ckpt("shared", "Obj", &l_shared);
    ckpt_error *err = ckpt_error_new();
    pthread_barrier_wait(w->barrier);
    for (int it = 0; it < ITERS && !w->failures; it++) {
        const char *names[] = {own};
        ckpt_registry_scope s1, s2 = 0;
        if (ckpt_registry_safe_globals_push(w->r, names, 1, &s1, err)) { w->failures++; break; }
        bool nested = it % 2;
        if (nested) {
            const char *in[] = {inner};
            if (ckpt_registry_safe_globals_push(w->r, in, 1, &s2, err)) { w->failures++; break; }
        }
        ckpt_status a = load(w->r, z_own, l_own, err);
        ckpt_status b = load(w->r, z_next, l_next, err);      /* another thread's scope: never visible */
        ckpt_status c = load(w->r, z_inner, l_inner, err);
        ckpt_status d = load(w->r, z_shared, l_shared, err);  /* the registry's own entry */
        if (a != CKPT_OK || b != CKPT_ERR_BLOCKED || c != (nested ? CKPT_OK : CKPT_ERR_BLOCKED) || d != CKPT_OK) {
            snprintf(w->msg, sizeof w->msg, "thread %d iter %d: own %d, other %d, inner %d, shared %d", w->id, it, a, b,
                     c, d);
            w->failures++;
        }
        if (nested && ckpt_registry_safe_globals_pop(w->r, s2, err)) w->failures++;
        if (ckpt_registry_safe_globals_pop(w->r, s1, err)) w->failures++;
        if (load(w->r, z_own, l_own, err) != CKPT_ERR_BLOCKED) w->failures++;
    }
    ckpt_error_free(err);
    free(z_own);
    free(z_next);
    free(z_inner);
    free(z_shared);
    return NULL;
}

START_TEST(scopes_are_isolated_between_threads)
{
    ckpt_registry *r = ckpt_registry_new(0);
    const char *shared = "shared.Obj";
    ck_assert_int_eq(ckpt_registry_add_safe_globals(r, &shared, 1, NULL), CKPT_OK);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    pthread_t t[NTHREADS];
    worker w[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (worker){r, i, &barrier, 0, ""};
        ck_assert_int_eq(pthread_create(&t[i], NULL, scoped_worker, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < NTHREADS; i++) ck_assert_msg(w[i].failures == 0, "%s", w[i].msg);
    pthread_barrier_destroy(&barrier);
    ckpt_registry_free(r);
}
END_TEST

/* ---- writers while loads run: every load sees the registry before or after a change, never a mix ---- */

typedef struct {
    ckpt_registry *r;
    atomic_int stop;
    atomic_int ok, blocked, failures;
    char msg[512];
} shared_state;

static void *writer(void *p)
{
    shared_state *x = p;
    const char *pair[] = {"pair.A", "pair.B"};
    for (int it = 0; it < 4 * ITERS; it++) {
        if (ckpt_registry_add_safe_globals(x->r, pair, 2, NULL)) atomic_fetch_add(&x->failures, 1);
        usleep(50); /* let loads see both states */
        char **names;
        size_t n;
        if (ckpt_registry_get_safe_globals(x->r, &names, &n, NULL) || (n != 2 && n != 3)) atomic_fetch_add(&x->failures, 1);
        else ckpt_free(names);
        const char *extra = "extra.Name";
        if (it % 3 == 0 && ckpt_registry_add_safe_globals(x->r, &extra, 1, NULL)) atomic_fetch_add(&x->failures, 1);
        if (ckpt_registry_clear_safe_globals(x->r, 0, NULL)) atomic_fetch_add(&x->failures, 1);
        usleep(50);
    }
    atomic_store(&x->stop, 1);
    return NULL;
}

static void *pair_loader(void *p)
{
    shared_state *x = p;
    /* references pair.A, then pair.B: a mixed view would refuse B after accepting A */
    pk b = {0};
    pk_proto(&b, 2);
    pk_global(&b, "pair", "A");
    pk_empty_tuple(&b);
    pk_newobj(&b);
    pk_global(&b, "pair", "B");
    pk_empty_tuple(&b);
    pk_newobj(&b);
    pk_tuple2(&b);
    pk_stop(&b);
    size_t len, dlen;
    uint8_t *z = tst_make_checkpoint(b.p, b.len, NULL, 0, &len);
    pk_free(&b);
    pk_proto(&b, 2);
    pk_global(&b, "collections", "OrderedDict");
    pk_empty_tuple(&b);
    pk_reduce(&b);
    pk_stop(&b);
    uint8_t *d = tst_make_checkpoint(b.p, b.len, NULL, 0, &dlen);
    pk_free(&b);
    ckpt_error *err = ckpt_error_new();
    const char *mine = "loader.Own";
    ckpt_registry_scope sc;
    while (!atomic_load(&x->stop)) {
        ckpt_status s = load(x->r, z, len, err);
        if (s == CKPT_OK) {
            atomic_fetch_add(&x->ok, 1);
        } else if (s == CKPT_ERR_BLOCKED && strcmp(ckpt_error_global(err), "pair.A") == 0) {
            atomic_fetch_add(&x->blocked, 1);
        } else {
            snprintf(x->msg, sizeof x->msg, "%s", ckpt_error_message(err));
            atomic_fetch_add(&x->failures, 1);
        }
        if (load(x->r, d, dlen, err) != CKPT_OK) atomic_fetch_add(&x->failures, 1); /* defaults: always there */
        /* scopes come and go on the same registry meanwhile */
        if (ckpt_registry_safe_globals_push(x->r, &mine, 1, &sc, err) ||
            !ckpt_registry_is_allowed(x->r, "loader", "Own") || ckpt_registry_safe_globals_pop(x->r, sc, err))
            atomic_fetch_add(&x->failures, 1);
    }
    ckpt_error_free(err);
    free(z);
    free(d);
    return NULL;
}

START_TEST(loads_during_adds_and_clears)
{
    shared_state x;
    memset(&x, 0, sizeof x);
    x.r = ckpt_registry_new(0);
    pthread_t w, l[NTHREADS - 1];
    for (int i = 0; i < NTHREADS - 1; i++) ck_assert_int_eq(pthread_create(&l[i], NULL, pair_loader, &x), 0);
    ck_assert_int_eq(pthread_create(&w, NULL, writer, &x), 0);
    pthread_join(w, NULL);
    for (int i = 0; i < NTHREADS - 1; i++) pthread_join(l[i], NULL);
    ck_assert_msg(atomic_load(&x.failures) == 0, "%d failures: %s", atomic_load(&x.failures), x.msg);
    ck_assert_int_gt(atomic_load(&x.ok) + atomic_load(&x.blocked), 0);
    printf("loads during writes: %d saw the pair, %d saw neither, none saw half\n", atomic_load(&x.ok),
           atomic_load(&x.blocked));
    ckpt_registry_free(x.r);
}
END_TEST

/* ---- the default registry from many threads, each with its own scope ---- */

static void *default_worker(void *p)
{
    worker *w = p;
    char mod[16];
    snprintf(mod, sizeof mod, "d%d", w->id);
    char name[32];
    snprintf(name, sizeof name, "d%d.Cls", w->id);
    size_t len;
    uint8_t *z = object_ckpt(mod, "Cls", &len);
    pthread_barrier_wait(w->barrier);
    for (int it = 0; it < ITERS; it++) {
        const char *names[] = {name};
        ckpt_registry_scope s;
        if (load(NULL, z, len, NULL) != CKPT_ERR_BLOCKED) w->failures++;
        if (ckpt_registry_safe_globals_push(NULL, names, 1, &s, NULL)) w->failures++;
        if (load(NULL, z, len, NULL) != CKPT_OK) w->failures++;
        if (ckpt_registry_safe_globals_pop(NULL, s, NULL)) w->failures++;
    }
    free(z);
    return NULL;
}

START_TEST(default_registry_scopes_in_threads)
{
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    pthread_t t[NTHREADS];
    worker w[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (worker){NULL, i, &barrier, 0, ""};
        ck_assert_int_eq(pthread_create(&t[i], NULL, default_worker, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < NTHREADS; i++) ck_assert_int_eq(w[i].failures, 0);
    pthread_barrier_destroy(&barrier);
}
END_TEST

/* A thread that exits with scopes still pushed does not leak them (the key destructor frees them). */
static ckpt_status left_status = CKPT_ERR_STATE;
static bool left_seen;
static void *leave_scope(void *p)
{
    const char *names[] = {"left.Behind"};
    ckpt_registry_scope s;
    left_status = ckpt_registry_safe_globals_push(p, names, 1, &s, NULL);
    left_seen = ckpt_registry_is_allowed(p, "left", "Behind");
    return NULL;
}

START_TEST(thread_exit_frees_scopes)
{
    ckpt_registry *r = ckpt_registry_new(0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, leave_scope, r), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(left_status, CKPT_OK);
    ck_assert(left_seen);
    ck_assert(!ckpt_registry_is_allowed(r, "left", "Behind"));
    ckpt_registry_free(r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("registry_threads");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, scopes_are_isolated_between_threads);
    tcase_add_test(tc, loads_during_adds_and_clears);
    tcase_add_test(tc, default_registry_scopes_in_threads);
    tcase_add_test(tc, thread_exit_frees_scopes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tst_run(suite()); }
