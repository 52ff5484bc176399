/*
 * arena.h: the allocator behind a loaded checkpoint.
 *
 * Every value node, string, shape array and tensor copy of one load comes from one arena, so freeing a
 * checkpoint is one call and the hot path never calls malloc per node. Small requests are carved from
 * chunks; large ones (tensor copies) get their own block. Every byte is counted against a budget
 * (CKPT_LIMIT_MAX_ALLOC), so hostile input cannot make a load allocate without bound.
 */
#ifndef CK_ARENA_H
#define CK_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct ck_arena_chunk ck_arena_chunk;

typedef struct ck_arena {
    ck_arena_chunk *chunks;  /* small-object chunks, newest first */
    ck_arena_chunk *large;   /* dedicated blocks for big requests */
    uint8_t *cur, *end;      /* free space in the newest chunk */
    void *last;              /* the most recent small allocation (for in-place growth) */
    size_t last_size;
    size_t next_chunk;       /* size of the next chunk (grows geometrically) */
    uint64_t used;           /* bytes obtained from the system */
    uint64_t budget;         /* limit on `used`; UINT64_MAX for none */
    int over_budget;         /* set when a request was refused for the budget (not for malloc) */
} ck_arena;

void ck_arena_init(ck_arena *a, uint64_t budget);
void ck_arena_release(ck_arena *a);

/* NULL on failure: check a->over_budget to tell the budget from a real out-of-memory. */
void *ck_arena_alloc(ck_arena *a, size_t size, size_t align);
void *ck_arena_zalloc(ck_arena *a, size_t size, size_t align);
/* A NUL-terminated copy of n bytes. */
char *ck_arena_strndup(ck_arena *a, const char *s, size_t n);
/* "module.name", NUL-terminated (a global's qualified name). */
char *ck_arena_qualname(ck_arena *a, const char *module, const char *name);
/*
 * Grows an array allocated from this arena to new_size bytes: in place when it is the most recent
 * allocation, else by copying (the old block stays until the arena is released; geometric growth keeps
 * the waste below 2x).
 */
void *ck_arena_grow(ck_arena *a, void *old, size_t old_size, size_t new_size, size_t align);
/* A big block (e.g. a tensor copy), 64-byte aligned, not zeroed. */
void *ck_arena_alloc_large(ck_arena *a, size_t size);
/* Counts bytes the caller allocated elsewhere but that belong to the same budget. 0 when refused. */
int ck_arena_charge(ck_arena *a, uint64_t bytes);
void ck_arena_uncharge(ck_arena *a, uint64_t bytes);

#endif
