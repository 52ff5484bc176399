/* strmap.h: a small open-addressing map from byte strings to pointers. */
#ifndef CK_STRMAP_H
#define CK_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "arena.h"

typedef struct ck_strmap_slot {
    const char *key; /* not owned: must outlive the map */
    size_t len;
    uint64_t hash;
    void *value;
} ck_strmap_slot;

typedef struct ck_strmap {
    ck_strmap_slot *slots;
    size_t cap, count;
    ck_arena *arena; /* allocate from this arena; NULL: malloc/free */
} ck_strmap;

void ck_strmap_init(ck_strmap *m, ck_arena *arena);
void ck_strmap_release(ck_strmap *m);
void *ck_strmap_get(const ck_strmap *m, const char *key, size_t len);
/* Inserts or replaces. Returns false when out of memory (or over the arena budget). */
bool ck_strmap_put(ck_strmap *m, const char *key, size_t len, void *value);
/* Sizes the table for n entries up front (no rehashing while they are added). */
bool ck_strmap_reserve(ck_strmap *m, size_t n);
/* Inserts only when absent; *existing receives the present value (or NULL). */
bool ck_strmap_add(ck_strmap *m, const char *key, size_t len, void *value, void **existing);

#endif
