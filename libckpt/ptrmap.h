/*
 * ptrmap.h: an open-addressing map from pointers to 32-bit values (malloc-backed, 12 bytes a slot).
 *
 * The writers key on node identity with it (pickle memo, visited sets), which works for any mix of
 * nodes: a builder's own, and nodes borrowed from loaded checkpoints, whose dense ids would collide.
 */
#ifndef CK_PTRMAP_H
#define CK_PTRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ck_ptrmap {
    const void **keys; /* NULL: empty slot */
    uint32_t *values;
    size_t cap, count;
} ck_ptrmap;

void ck_ptrmap_init(ck_ptrmap *m);
void ck_ptrmap_release(ck_ptrmap *m);
/* True when present; *value (may be NULL) receives the value. */
bool ck_ptrmap_get(const ck_ptrmap *m, const void *key, uint32_t *value);
/* Inserts or replaces. key must not be NULL. False when out of memory. */
bool ck_ptrmap_put(ck_ptrmap *m, const void *key, uint32_t value);
/* Adds `delta` to the value (inserting 0 first); returns the new value through *out. */
bool ck_ptrmap_add(ck_ptrmap *m, const void *key, int32_t delta, uint32_t *out);

#endif
