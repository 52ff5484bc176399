/* ptrmap.c: pointer -> uint64 map with linear probing (see ptrmap.h). */
#include "ptrmap.h"

#include <stdlib.h>
#include <string.h>

static size_t slot_of(const void *key, size_t mask)
{
    uint64_t h = (uint64_t)(uintptr_t)key;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (size_t)h & mask;
}

void ck_ptrmap_init(ck_ptrmap *m) { memset(m, 0, sizeof *m); }

void ck_ptrmap_release(ck_ptrmap *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static ck_ptrmap_slot *find(const ck_ptrmap *m, const void *key)
{
    if (!m->cap) return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = slot_of(key, mask);; i = (i + 1) & mask) {
        if (m->slots[i].key == key) return &m->slots[i];
        if (!m->slots[i].key) return NULL;
    }
}

bool ck_ptrmap_get(const ck_ptrmap *m, const void *key, uint64_t *value)
{
    ck_ptrmap_slot *s = find(m, key);
    if (s && value) *value = s->value;
    return s != NULL;
}

static bool grow(ck_ptrmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    if (ncap > SIZE_MAX / sizeof(ck_ptrmap_slot)) return false;
    ck_ptrmap_slot *n = calloc(ncap, sizeof *n);
    if (!n) return false;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key) continue;
        size_t j = slot_of(m->slots[i].key, ncap - 1);
        while (n[j].key) j = (j + 1) & (ncap - 1);
        n[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = n;
    m->cap = ncap;
    return true;
}

static ck_ptrmap_slot *insert(ck_ptrmap *m, const void *key)
{
    ck_ptrmap_slot *s = find(m, key);
    if (s) return s;
    if ((m->count + 1) * 2 > m->cap && !grow(m)) return NULL;
    size_t mask = m->cap - 1, i = slot_of(key, mask);
    while (m->slots[i].key) i = (i + 1) & mask;
    m->slots[i].key = key;
    m->slots[i].value = 0;
    m->count++;
    return &m->slots[i];
}

bool ck_ptrmap_put(ck_ptrmap *m, const void *key, uint64_t value)
{
    ck_ptrmap_slot *s = insert(m, key);
    if (!s) return false;
    s->value = value;
    return true;
}

bool ck_ptrmap_add(ck_ptrmap *m, const void *key, int64_t delta, uint64_t *out)
{
    ck_ptrmap_slot *s = insert(m, key);
    if (!s) return false;
    s->value += (uint64_t)delta;
    if (out) *out = s->value;
    return true;
}
