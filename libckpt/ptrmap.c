/* ptrmap.c: pointer -> uint32 map with linear probing, at most half full (see ptrmap.h). */
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
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof *m);
}

/* The slot holding key, or the empty slot where it would go; SIZE_MAX when the map has no slots. */
static size_t find(const ck_ptrmap *m, const void *key)
{
    if (!m->cap) return SIZE_MAX;
    size_t mask = m->cap - 1, i = slot_of(key, mask);
    while (m->keys[i] && m->keys[i] != key) i = (i + 1) & mask;
    return i;
}

bool ck_ptrmap_get(const ck_ptrmap *m, const void *key, uint32_t *value)
{
    size_t i = find(m, key);
    if (i == SIZE_MAX || !m->keys[i]) return false;
    if (value) *value = m->values[i];
    return true;
}

static bool grow(ck_ptrmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    if (ncap > SIZE_MAX / sizeof(void *)) return false;
    const void **nk = calloc(ncap, sizeof *nk);
    uint32_t *nv = malloc(ncap * sizeof *nv);
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return false;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = slot_of(m->keys[i], ncap - 1);
        while (nk[j]) j = (j + 1) & (ncap - 1);
        nk[j] = m->keys[i];
        nv[j] = m->values[i];
    }
    free(m->keys);
    free(m->values);
    m->keys = nk;
    m->values = nv;
    m->cap = ncap;
    return true;
}

static size_t insert(ck_ptrmap *m, const void *key)
{
    size_t i = find(m, key);
    if (i != SIZE_MAX && m->keys[i]) return i;
    if ((m->count + 1) * 2 > m->cap) {
        if (!grow(m)) return SIZE_MAX;
        i = find(m, key);
    }
    m->keys[i] = key;
    m->values[i] = 0;
    m->count++;
    return i;
}

bool ck_ptrmap_put(ck_ptrmap *m, const void *key, uint32_t value)
{
    size_t i = insert(m, key);
    if (i == SIZE_MAX) return false;
    m->values[i] = value;
    return true;
}

bool ck_ptrmap_add(ck_ptrmap *m, const void *key, int32_t delta, uint32_t *out)
{
    size_t i = insert(m, key);
    if (i == SIZE_MAX) return false;
    m->values[i] += (uint32_t)delta;
    if (out) *out = m->values[i];
    return true;
}
