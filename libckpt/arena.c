/* arena.c: chunked bump allocator with a byte budget (see arena.h). */
#include "arena.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "util.h"

struct ck_arena_chunk {
    ck_arena_chunk *next;
    size_t size;
    size_t mapped; /* bytes mapped with mmap (0: from malloc) */
    /* payload follows, 64-byte aligned */
};

#define CK_CHUNK_HEADER 64u
#define CK_FIRST_CHUNK (16u * 1024u)
#define CK_MAX_CHUNK (4u * 1024u * 1024u)
/* Blocks from this size up are mapped directly and marked for transparent huge pages: tensor copies
 * then fault in 2 MiB at a time instead of 4 KiB, which is most of the cost of a large copying load. */
#define CK_HUGE_BLOCK (2u * 1024u * 1024u)

void ck_arena_init(ck_arena *a, uint64_t budget)
{
    memset(a, 0, sizeof *a);
    a->next_chunk = CK_FIRST_CHUNK;
    a->budget = budget ? budget : UINT64_MAX;
}

static void free_list(ck_arena_chunk *c)
{
    while (c) {
        ck_arena_chunk *next = c->next;
        if (c->mapped) munmap(c, c->mapped);
        else free(c);
        c = next;
    }
}

void ck_arena_release(ck_arena *a)
{
    free_list(a->chunks);
    free_list(a->large);
    memset(a, 0, sizeof *a);
}

int ck_arena_charge(ck_arena *a, uint64_t bytes)
{
    if (bytes > a->budget || a->used > a->budget - bytes) {
        a->over_budget = 1;
        return 0;
    }
    a->used += bytes;
    return 1;
}

void ck_arena_uncharge(ck_arena *a, uint64_t bytes) { a->used = bytes > a->used ? 0 : a->used - bytes; }

static ck_arena_chunk *new_block(ck_arena *a, size_t payload)
{
    size_t total;
    if (ck_add_overflow_size(payload, CK_CHUNK_HEADER, &total)) return NULL;
    if (!ck_arena_charge(a, total)) return NULL;
    if (total >= CK_HUGE_BLOCK) {
        void *m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) {
#ifdef MADV_HUGEPAGE
            madvise(m, total, MADV_HUGEPAGE);
#endif
            ck_arena_chunk *c = m;
            c->size = payload;
            c->mapped = total;
            return c;
        }
    }
    void *mem = NULL;
    if (posix_memalign(&mem, 64, total) != 0) {
        ck_arena_uncharge(a, total);
        return NULL;
    }
    ck_arena_chunk *c = mem;
    c->size = payload;
    c->mapped = 0;
    return c;
}

static inline uint8_t *payload_of(ck_arena_chunk *c) { return (uint8_t *)c + CK_CHUNK_HEADER; }

void *ck_arena_alloc_large(ck_arena *a, size_t size)
{
    ck_arena_chunk *c = new_block(a, size ? size : 1);
    if (!c) return NULL;
    c->next = a->large;
    a->large = c;
    return payload_of(c);
}

void *ck_arena_alloc(ck_arena *a, size_t size, size_t align)
{
    if (align == 0) align = 1;
    uintptr_t p = ((uintptr_t)a->cur + (align - 1)) & ~(uintptr_t)(align - 1);
    if (a->cur && p <= (uintptr_t)a->end && size <= (size_t)((uintptr_t)a->end - p)) {
        a->cur = (uint8_t *)p + size;
        a->last = (void *)p;
        a->last_size = size;
        return (void *)p;
    }
    /* Big requests get a block of their own so they do not waste the rest of a chunk. */
    if (size >= CK_MAX_CHUNK / 4) return ck_arena_alloc_large(a, size);
    size_t want = a->next_chunk;
    while (want < size + align) want *= 2;
    ck_arena_chunk *c = new_block(a, want);
    if (!c) return NULL;
    c->next = a->chunks;
    a->chunks = c;
    if (a->next_chunk < CK_MAX_CHUNK) a->next_chunk *= 2;
    a->cur = payload_of(c);
    a->end = a->cur + want;
    p = ((uintptr_t)a->cur + (align - 1)) & ~(uintptr_t)(align - 1);
    a->cur = (uint8_t *)p + size;
    a->last = (void *)p;
    a->last_size = size;
    return (void *)p;
}

void *ck_arena_zalloc(ck_arena *a, size_t size, size_t align)
{
    void *p = ck_arena_alloc(a, size, align);
    if (p) memset(p, 0, size);
    return p;
}

char *ck_arena_strndup(ck_arena *a, const char *s, size_t n)
{
    size_t total;
    if (ck_add_overflow_size(n, 1, &total)) return NULL;
    char *d = ck_arena_alloc(a, total, 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *ck_arena_qualname(ck_arena *a, const char *module, const char *name)
{
    size_t ml = strlen(module), nl = strlen(name), total;
    if (ck_add_overflow_size(ml, nl, &total) || ck_add_overflow_size(total, 2, &total)) return NULL;
    char *d = ck_arena_alloc(a, total, 1);
    if (!d) return NULL;
    memcpy(d, module, ml);
    d[ml] = '.';
    memcpy(d + ml + 1, name, nl + 1);
    return d;
}

void *ck_arena_grow(ck_arena *a, void *old, size_t old_size, size_t new_size, size_t align)
{
    if (new_size <= old_size) return old;
    if (old && old == a->last && old_size == a->last_size) {
        size_t extra = new_size - old_size;
        if (extra <= (size_t)(a->end - a->cur)) {
            a->cur += extra;
            a->last_size = new_size;
            return old;
        }
    }
    void *n = ck_arena_alloc(a, new_size, align);
    if (n && old_size) memcpy(n, old, old_size);
    return n;
}
