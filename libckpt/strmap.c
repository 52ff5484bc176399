/* strmap.c: open-addressing string map (linear probing, 50% load). */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

void ck_strmap_init(ck_strmap *m, ck_arena *arena)
{
    memset(m, 0, sizeof *m);
    m->arena = arena;
}

void ck_strmap_release(ck_strmap *m)
{
    if (!m->arena) free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}

static ck_strmap_slot *find(const ck_strmap *m, const char *key, size_t len, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        ck_strmap_slot *s = &m->slots[i];
        if (!s->key || (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0)) return s;
    }
}

void *ck_strmap_get(const ck_strmap *m, const char *key, size_t len)
{
    if (!m->cap) return NULL;
    ck_strmap_slot *s = find(m, key, len, XXH3_64bits(key, len));
    return s->key ? s->value : NULL;
}

static bool resize(ck_strmap *m, size_t ncap);

static bool grow(ck_strmap *m) { return resize(m, m->cap ? m->cap * 2 : 16); }

bool ck_strmap_reserve(ck_strmap *m, size_t n)
{
    size_t cap = 16;
    while (cap < n * 2) {
        if (cap > SIZE_MAX / 4) return false;
        cap *= 2;
    }
    return cap <= m->cap || resize(m, cap);
}

static bool resize(ck_strmap *m, size_t ncap)
{
    ck_strmap_slot *ns = m->arena ? ck_arena_zalloc(m->arena, ncap * sizeof *ns, _Alignof(ck_strmap_slot))
                                  : calloc(ncap, sizeof *ns);
    if (!ns) return false;
    ck_strmap_slot *old = m->slots;
    size_t ocap = m->cap;
    m->slots = ns;
    m->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].key) *find(m, old[i].key, old[i].len, old[i].hash) = old[i];
    if (!m->arena) free(old);
    return true;
}

bool ck_strmap_add(ck_strmap *m, const char *key, size_t len, void *value, void **existing)
{
    if (existing) *existing = NULL;
    if ((m->count + 1) * 2 > m->cap && !grow(m)) return false;
    uint64_t h = XXH3_64bits(key, len);
    ck_strmap_slot *s = find(m, key, len, h);
    if (s->key) {
        if (existing) *existing = s->value;
        return true;
    }
    *s = (ck_strmap_slot){key, len, h, value};
    m->count++;
    return true;
}

bool ck_strmap_put(ck_strmap *m, const char *key, size_t len, void *value)
{
    void *existing = NULL;
    if (!ck_strmap_add(m, key, len, value, &existing)) return false;
    if (existing) {
        ck_strmap_slot *s = find(m, key, len, XXH3_64bits(key, len));
        s->value = value;
    }
    return true;
}
