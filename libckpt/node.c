/*
 * node.c: value-node constructors and Python's dict/set semantics.
 *
 * Dicts and sets follow Python: an equal key replaces the value in place (insertion order kept), 1, 1.0
 * and True are the same key, str and bytes never equal, NaN equals only itself, and unhashable keys
 * (list, dict, set, bytearray) are refused. Tuple hashes are cached in the node and computed
 * iteratively, and equality has a work budget shared by the whole load, so a memo DAG used as a key
 * (or many of them) cannot cost exponential time.
 */
#include "node.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "util.h"

struct ck_hindex {
    uint32_t mask;   /* capacity - 1 (capacity is a power of two) */
    uint32_t *slots; /* entry index + 1; 0 = empty */
    uint32_t *tags;  /* low 32 bits of the entry's hash */
};

#define CK_INDEX_MIN_LEN 8u                 /* below this, lookups scan linearly */
/*
 * Node comparisons allowed for tuple/frozenset keys in one load. Python compares equal keys that are
 * distinct objects structurally, item by item; shared sub-tuples and nested frozensets make that
 * exponential in the nesting (a few KB of pickle: 2**60 comparisons), and every comparison of a load
 * draws from this one budget, so many keys cannot add up to a hang either.
 */
#ifndef CK_EQ_BUDGET /* the fuzzing build sets a small one so that runs stay fast */
#define CK_EQ_BUDGET (UINT64_C(1) << 24)
#endif

void ck_store_init(ck_store *st, uint64_t budget)
{
    ck_arena_init(&st->arena, budget);
    st->next_id = 0;
    st->max_nodes = UINT32_MAX - 1;
    st->eq_work = 0;
}

void ck_store_release(ck_store *st) { ck_arena_release(&st->arena); }

ckpt_value *ck_new(ck_store *st, ckpt_kind kind)
{
    if (st->next_id >= st->max_nodes) return NULL;
    ckpt_value *v = ck_arena_alloc(&st->arena, sizeof *v, _Alignof(ckpt_value));
    if (!v) return NULL;
    memset(v, 0, sizeof *v);
    v->kind = (uint8_t)kind;
    v->id = st->next_id++;
    return v;
}

ckpt_value *ck_new_int(ck_store *st, int64_t x)
{
    ckpt_value *v = ck_new(st, CKPT_KIND_INT);
    if (v) v->u.i = x;
    return v;
}

ckpt_value *ck_new_int_le(ck_store *st, const uint8_t *b, size_t n)
{
    /* Drop redundant sign-extension bytes so equal values have one representation. */
    while (n > 1 && ((b[n - 1] == 0x00 && !(b[n - 2] & 0x80)) || (b[n - 1] == 0xff && (b[n - 2] & 0x80)))) n--;
    if (n == 0) return ck_new_int(st, 0);
    if (n <= 8) {
        uint64_t u = 0;
        for (size_t i = 0; i < n; i++) u |= (uint64_t)b[i] << (8 * i);
        if (n < 8 && (b[n - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * n);
        return ck_new_int(st, (int64_t)u);
    }
    ckpt_value *v = ck_new(st, CKPT_KIND_INT);
    if (!v) return NULL;
    uint8_t *copy = ck_arena_alloc(&st->arena, n, 1);
    if (!copy) return NULL;
    memcpy(copy, b, n);
    v->flags |= CK_NF_BIGINT;
    v->u.big.bytes = copy;
    v->u.big.len = n;
    return v;
}

ckpt_value *ck_new_float(ck_store *st, double x)
{
    ckpt_value *v = ck_new(st, CKPT_KIND_FLOAT);
    if (v) v->u.f = x;
    return v;
}

ckpt_value *ck_new_bool(ck_store *st, bool b)
{
    ckpt_value *v = ck_new(st, CKPT_KIND_BOOL);
    if (v) v->u.b = b;
    return v;
}

ckpt_value *ck_new_bytes_kind(ck_store *st, ckpt_kind kind, const void *p, size_t n)
{
    /* node and bytes in one allocation: half the allocations for string-heavy pickles */
    size_t total;
    if (st->next_id >= st->max_nodes || ck_add_overflow_size(sizeof(ckpt_value) + 1, n, &total)) return NULL;
    ckpt_value *v = ck_arena_alloc(&st->arena, total, _Alignof(ckpt_value));
    if (!v) return NULL;
    memset(v, 0, sizeof *v);
    v->kind = (uint8_t)kind;
    v->id = st->next_id++;
    char *copy = (char *)(v + 1);
    if (n) memcpy(copy, p, n);
    copy[n] = '\0';
    v->u.s.ptr = copy;
    v->u.s.len = n;
    return v;
}

ckpt_value *ck_new_seq(ck_store *st, ckpt_kind kind, size_t cap)
{
    ckpt_value *v = ck_new(st, kind);
    if (!v) return NULL;
    if (cap > UINT32_MAX) return NULL;
    if (cap) {
        size_t bytes;
        if (ck_mul_overflow_size(cap, sizeof(ckpt_value *), &bytes)) return NULL;
        v->u.seq.items = ck_arena_alloc(&st->arena, bytes, _Alignof(ckpt_value *));
        if (!v->u.seq.items) return NULL;
        v->u.seq.cap = (uint32_t)cap;
    }
    return v;
}

ckpt_value *ck_new_dict(ck_store *st, size_t cap)
{
    ckpt_value *v = ck_new(st, CKPT_KIND_DICT);
    if (!v) return NULL;
    if (cap > UINT32_MAX) return NULL;
    if (cap) {
        size_t bytes;
        if (ck_mul_overflow_size(cap, sizeof(ck_dict_entry), &bytes)) return NULL;
        v->u.dict.entries = ck_arena_alloc(&st->arena, bytes, _Alignof(ck_dict_entry));
        if (!v->u.dict.entries) return NULL;
        v->u.dict.cap = (uint32_t)cap;
    }
    return v;
}

ckpt_value *ck_new_dtype(ck_store *st, uint8_t dtype)
{
    ckpt_value *v = ck_new(st, CKPT_KIND_DTYPE);
    if (v) v->u.dtype = dtype;
    return v;
}

static ckpt_status out_of_memory(ck_store *st, ckpt_error *err)
{
    if (st->arena.over_budget)
        return ck_error_set(err, CKPT_ERR_LIMIT,
                            "allocation limit of %llu bytes reached (CKPT_LIMIT_MAX_ALLOC; raise it only for "
                            "files you have reason to trust)",
                            (unsigned long long)st->arena.budget);
    return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
}

/* Makes room for one more element in an array of `size`-byte elements. */
static ckpt_status grow_array(ck_store *st, void **arr, uint32_t *cap, uint32_t len, size_t size, size_t align,
                              ckpt_error *err)
{
    if (len < *cap) return CKPT_OK;
    if (*cap >= UINT32_MAX / 2) return ck_error_set(err, CKPT_ERR_LIMIT, "container has too many items");
    uint32_t ncap = *cap ? *cap * 2 : 4;
    void *n = ck_arena_grow(&st->arena, *arr, (size_t)*cap * size, (size_t)ncap * size, align);
    if (!n) return out_of_memory(st, err);
    *arr = n;
    *cap = ncap;
    return CKPT_OK;
}

ckpt_status ck_seq_push(ck_store *st, ckpt_value *seq, ckpt_value *item, ckpt_error *err)
{
    ckpt_status s = grow_array(st, (void **)&seq->u.seq.items, &seq->u.seq.cap, seq->u.seq.len,
                               sizeof(ckpt_value *), _Alignof(ckpt_value *), err);
    if (s) return s;
    seq->u.seq.items[seq->u.seq.len++] = item;
    return CKPT_OK;
}

/* ---- hashing ---- */

static bool is_identity_hashed(const ckpt_value *v)
{
    switch (v->kind) {
    case CKPT_KIND_TENSOR:
    case CKPT_KIND_STORAGE:
    case CKPT_KIND_OBJECT:
    case CKPT_KIND_CALL: return true;
    default: return false;
    }
}

static bool is_unhashable(const ckpt_value *v)
{
    switch (v->kind) {
    case CKPT_KIND_LIST:
    case CKPT_KIND_DICT:
    case CKPT_KIND_SET:
    case CKPT_KIND_BYTEARRAY: return true;
    default: return false;
    }
}

static uint64_t mix(uint64_t h, uint64_t x)
{
    h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

static uint64_t hash_i64(int64_t x) { return XXH3_64bits(&x, sizeof x) ^ 0x1; }

/* Exact integer bytes (little-endian two's complement) of an integral double outside int64. */
static size_t double_int_bytes(double f, uint8_t *out, size_t cap)
{
    int exp;
    double m = frexp(fabs(f), &exp); /* |f| = m * 2^exp, 0.5 <= m < 1 */
    uint64_t mant = (uint64_t)ldexp(m, 53);
    int shift = exp - 53; /* >= 11 here since |f| >= 2^63 */
    size_t n = (size_t)(exp / 8 + 2);
    if (n > cap) return 0;
    memset(out, 0, n);
    for (int bit = 0; bit < 53; bit++)
        if (mant >> bit & 1) {
            int pos = bit + shift;
            out[pos / 8] |= (uint8_t)(1u << (pos % 8));
        }
    if (f < 0) { /* two's complement negate */
        unsigned carry = 1;
        for (size_t i = 0; i < n; i++) {
            unsigned b = (uint8_t)~out[i] + carry;
            out[i] = (uint8_t)b;
            carry = b >> 8;
        }
    }
    while (n > 1 && ((out[n - 1] == 0x00 && !(out[n - 2] & 0x80)) || (out[n - 1] == 0xff && (out[n - 2] & 0x80)))) n--;
    return n;
}

/* Numeric view shared by bool/int/float/complex(imag 0) so equal numbers hash alike. */
static uint64_t hash_number(double f)
{
    if (f == floor(f) && f >= -9223372036854775808.0 && f < 9223372036854775808.0) return hash_i64((int64_t)f);
    if (isfinite(f) && f == floor(f)) {
        uint8_t buf[160];
        size_t n = double_int_bytes(f, buf, sizeof buf);
        return XXH3_64bits(buf, n) ^ 0x2;
    }
    if (f == 0) f = 0; /* -0.0 == 0.0 */
    return XXH3_64bits(&f, sizeof f) ^ 0x3;
}

static uint64_t hash_scalar(const ckpt_value *v)
{
    switch (v->kind) {
    case CKPT_KIND_NONE: return 0x6e6f6e65;
    case CKPT_KIND_BOOL: return hash_i64(v->u.b);
    case CKPT_KIND_INT:
        if (v->flags & CK_NF_BIGINT) return XXH3_64bits(v->u.big.bytes, v->u.big.len) ^ 0x2;
        return hash_i64(v->u.i);
    case CKPT_KIND_FLOAT:
        if (isnan(v->u.f)) return (uint64_t)(uintptr_t)v; /* NaN keys are distinct unless identical */
        return hash_number(v->u.f);
    case CKPT_KIND_COMPLEX:
        if (v->u.c.im == 0 && !isnan(v->u.c.re)) return hash_number(v->u.c.re);
        return mix(XXH3_64bits(&v->u.c.re, 8), XXH3_64bits(&v->u.c.im, 8));
    case CKPT_KIND_STR: return XXH3_64bits(v->u.s.ptr, v->u.s.len) ^ 0x5;
    case CKPT_KIND_BYTES: return XXH3_64bits(v->u.s.ptr, v->u.s.len) ^ 0x6;
    case CKPT_KIND_DEVICE: return XXH3_64bits(v->u.s.ptr, v->u.s.len) ^ 0x7;
    case CKPT_KIND_DTYPE: return hash_i64(v->u.dtype) ^ 0x8;
    case CKPT_KIND_GLOBAL:
        return mix(XXH3_64bits(v->u.global.module, strlen(v->u.global.module)),
                   XXH3_64bits(v->u.global.name, strlen(v->u.global.name)));
    default: return (uint64_t)(uintptr_t)v; /* identity */
    }
}

static bool is_container_key(const ckpt_value *v)
{
    return v->kind == CKPT_KIND_TUPLE || v->kind == CKPT_KIND_FROZENSET;
}

/*
 * Hash of a key. Tuples and frozensets are hashed bottom-up with an explicit stack; each node's hash is
 * cached, so shared sub-tuples cost once.
 */
static ckpt_status hash_key(ck_store *st, ckpt_value *key, uint64_t *out, ckpt_error *err)
{
    if (is_unhashable(key)) return ck_error_set(err, CKPT_ERR_PICKLE, "unhashable type '%s' used as a dict key or set item", ck_type_name(key));
    if (!is_container_key(key)) {
        *out = hash_scalar(key);
        return CKPT_OK;
    }
    if (key->flags & CK_NF_HASHED) {
        *out = key->u.seq.hash;
        return CKPT_OK;
    }
    /* Explicit post-order stack of (node, next child index). */
    typedef struct { ckpt_value *v; uint32_t i; } frame;
    size_t cap = 64, top = 0;
    frame *stack = malloc(cap * sizeof *stack);
    if (!stack) return out_of_memory(st, err);
    stack[top++] = (frame){key, 0};
    ckpt_status s = CKPT_OK;
    while (top) {
        frame *f = &stack[top - 1];
        ckpt_value *v = f->v;
        if (f->i < v->u.seq.len) {
            ckpt_value *c = v->u.seq.items[f->i++];
            if (is_unhashable(c)) {
                s = ck_error_set(err, CKPT_ERR_PICKLE, "unhashable type '%s' inside a %s used as a dict key or set item",
                                 ck_type_name(c), ck_type_name(v));
                break;
            }
            if (is_container_key(c) && !(c->flags & CK_NF_HASHED)) {
                if (top == cap) {
                    frame *n = realloc(stack, 2 * cap * sizeof *stack);
                    if (!n) { s = out_of_memory(st, err); break; }
                    stack = n;
                    cap *= 2;
                }
                stack[top++] = (frame){c, 0};
            }
            continue;
        }
        /* All children hashed: combine. frozenset combines order-independently. */
        uint64_t h = v->kind == CKPT_KIND_TUPLE ? 0x7475706c65ull : 0x66726f7a656eull;
        uint64_t acc = 0;
        for (uint32_t i = 0; i < v->u.seq.len; i++) {
            ckpt_value *c = v->u.seq.items[i];
            uint64_t ch = is_container_key(c) ? c->u.seq.hash : hash_scalar(c);
            if (v->kind == CKPT_KIND_TUPLE) h = mix(h, ch);
            else acc += ch * 0x9e3779b97f4a7c15ull + (ch >> 29);
        }
        if (v->kind == CKPT_KIND_FROZENSET) h = mix(h, acc);
        v->u.seq.hash = mix(h, v->u.seq.len);
        v->flags |= CK_NF_HASHED;
        top--;
    }
    free(stack);
    if (s == CKPT_OK) *out = key->u.seq.hash;
    return s;
}

/* ---- equality ---- */

static bool numeric(const ckpt_value *v, double *f)
{
    switch (v->kind) {
    case CKPT_KIND_BOOL: *f = v->u.b; return true;
    case CKPT_KIND_INT:
        if (v->flags & CK_NF_BIGINT) return false;
        *f = (double)v->u.i;
        return true;
    case CKPT_KIND_FLOAT: *f = v->u.f; return true;
    case CKPT_KIND_COMPLEX:
        if (v->u.c.im != 0) return false;
        *f = v->u.c.re;
        return true;
    default: return false;
    }
}

static bool is_number(const ckpt_value *v)
{
    return v->kind == CKPT_KIND_BOOL || v->kind == CKPT_KIND_INT || v->kind == CKPT_KIND_FLOAT ||
           v->kind == CKPT_KIND_COMPLEX;
}

static bool numbers_equal(const ckpt_value *a, const ckpt_value *b)
{
    if (a->kind == CKPT_KIND_COMPLEX && b->kind == CKPT_KIND_COMPLEX)
        return a->u.c.re == b->u.c.re && a->u.c.im == b->u.c.im;
    bool ai = (a->kind == CKPT_KIND_INT || a->kind == CKPT_KIND_BOOL);
    bool bi = (b->kind == CKPT_KIND_INT || b->kind == CKPT_KIND_BOOL);
    if (ai && bi) {
        bool abig = a->flags & CK_NF_BIGINT, bbig = b->flags & CK_NF_BIGINT;
        if (abig != bbig) return false; /* representations are normalised */
        if (abig) return a->u.big.len == b->u.big.len && memcmp(a->u.big.bytes, b->u.big.bytes, a->u.big.len) == 0;
        return ck_small_int(a) == ck_small_int(b);
    }
    /* At least one float/complex: compare exactly. */
    const ckpt_value *big = (a->flags & CK_NF_BIGINT) ? a : (b->flags & CK_NF_BIGINT) ? b : NULL;
    if (big) {
        const ckpt_value *other = big == a ? b : a;
        double f;
        if (!numeric(other, &f) || !isfinite(f) || f != floor(f)) return false;
        uint8_t buf[160];
        size_t n = double_int_bytes(f, buf, sizeof buf);
        return n == big->u.big.len && memcmp(buf, big->u.big.bytes, n) == 0;
    }
    double fa, fb;
    if (!numeric(a, &fa) || !numeric(b, &fb)) return false;
    if (a->kind == CKPT_KIND_INT || b->kind == CKPT_KIND_INT) {
        /* int vs float: exact comparison, avoiding rounding of large int64 to double. */
        const ckpt_value *iv = a->kind == CKPT_KIND_INT ? a : b;
        double f = iv == a ? fb : fa;
        if (f != floor(f) || f < -9223372036854775808.0 || f >= 9223372036854775808.0) return false;
        return (int64_t)f == iv->u.i;
    }
    return fa == fb;
}

static ckpt_status keys_equal(ck_store *st, ckpt_value *a, ckpt_value *b, bool *eq, unsigned depth, ckpt_error *err);

/* Frozensets nested in frozensets compare recursively; this bounds that recursion. */
#define CK_EQ_MAX_DEPTH 64u

static bool scalar_equal(const ckpt_value *a, const ckpt_value *b)
{
    if (a == b) return true;
    if (is_number(a) && is_number(b)) return numbers_equal(a, b);
    if (a->kind != b->kind || is_identity_hashed(a)) return false;
    switch (a->kind) {
    case CKPT_KIND_NONE: return true;
    case CKPT_KIND_STR:
    case CKPT_KIND_BYTES:
    case CKPT_KIND_DEVICE: return a->u.s.len == b->u.s.len && memcmp(a->u.s.ptr, b->u.s.ptr, a->u.s.len) == 0;
    case CKPT_KIND_DTYPE: return a->u.dtype == b->u.dtype;
    case CKPT_KIND_GLOBAL:
        return strcmp(a->u.global.module, b->u.global.module) == 0 && strcmp(a->u.global.name, b->u.global.name) == 0;
    default: return false;
    }
}

static ckpt_status charge_eq(ck_store *st, ckpt_error *err)
{
    if (++st->eq_work <= CK_EQ_BUDGET) return CKPT_OK;
    return ck_error_set(err, CKPT_ERR_LIMIT,
                        "comparing tuple/frozenset keys takes too long (more than %llu comparisons in this load: shared "
                        "sub-tuples or frozensets nested too deeply)",
                        (unsigned long long)CK_EQ_BUDGET);
}

/* Finds an item equal to x in a frozenset (linear; frozenset keys are rare and small). */
static ckpt_status frozenset_contains(ck_store *st, ckpt_value *set, ckpt_value *x, bool *found, unsigned depth,
                                      ckpt_error *err)
{
    *found = false;
    for (uint32_t i = 0; i < set->u.seq.len; i++) {
        bool eq;
        ckpt_status s = charge_eq(st, err);
        if (!s) s = keys_equal(st, set->u.seq.items[i], x, &eq, depth, err);
        if (s) return s;
        if (eq) { *found = true; return CKPT_OK; }
    }
    return CKPT_OK;
}

/* Iterative structural equality with a work budget (hash equality is checked first by callers). */
static ckpt_status keys_equal(ck_store *st, ckpt_value *a, ckpt_value *b, bool *eq, unsigned depth, ckpt_error *err)
{
    if (depth > CK_EQ_MAX_DEPTH)
        return ck_error_set(err, CKPT_ERR_LIMIT, "dict key or set item nests frozensets more than %u deep", CK_EQ_MAX_DEPTH);
    if (!is_container_key(a) || !is_container_key(b)) {
        *eq = scalar_equal(a, b);
        return CKPT_OK;
    }
    if (a == b) { *eq = true; return CKPT_OK; }
    if (a->kind != b->kind || a->u.seq.len != b->u.seq.len ||
        ((a->flags & b->flags & CK_NF_HASHED) && a->u.seq.hash != b->u.seq.hash)) {
        *eq = false;
        return CKPT_OK;
    }
    if (a->kind == CKPT_KIND_FROZENSET) {
        for (uint32_t i = 0; i < a->u.seq.len; i++) {
            bool found;
            ckpt_status s = frozenset_contains(st, b, a->u.seq.items[i], &found, depth + 1, err);
            if (s) return s;
            if (!found) { *eq = false; return CKPT_OK; }
        }
        *eq = true;
        return CKPT_OK;
    }
    typedef struct { ckpt_value *a, *b; } pair;
    size_t cap = 64, top = 0;
    pair *stack = malloc(cap * sizeof *stack);
    if (!stack) return out_of_memory(st, err);
    stack[top++] = (pair){a, b};
    *eq = true;
    ckpt_status s = CKPT_OK;
    while (top && *eq) {
        pair p = stack[--top];
        if ((s = charge_eq(st, err))) break;
        if (p.a == p.b) continue;
        if (!is_container_key(p.a) || !is_container_key(p.b) || p.a->kind == CKPT_KIND_FROZENSET) {
            bool e;
            s = keys_equal(st, p.a, p.b, &e, depth + 1, err); /* scalars, or a frozenset */
            if (s) break;
            if (!e) *eq = false;
            continue;
        }
        if (p.a->kind != p.b->kind || p.a->u.seq.len != p.b->u.seq.len ||
            ((p.a->flags & p.b->flags & CK_NF_HASHED) && p.a->u.seq.hash != p.b->u.seq.hash)) {
            *eq = false;
            continue;
        }
        for (uint32_t i = 0; i < p.a->u.seq.len; i++) {
            if (top == cap) {
                pair *n = realloc(stack, 2 * cap * sizeof *stack);
                if (!n) { s = out_of_memory(st, err); goto done; }
                stack = n;
                cap *= 2;
            }
            stack[top++] = (pair){p.a->u.seq.items[i], p.b->u.seq.items[i]};
        }
    }
done:
    free(stack);
    return s;
}

/* ---- hash index shared by dicts and sets ---- */

static ckpt_value *key_at(const ckpt_value *c, uint32_t i)
{
    return c->kind == CKPT_KIND_DICT ? c->u.dict.entries[i].key : c->u.seq.items[i];
}
static uint32_t len_of(const ckpt_value *c) { return c->kind == CKPT_KIND_DICT ? c->u.dict.len : c->u.seq.len; }
static ck_hindex **index_of(ckpt_value *c) { return c->kind == CKPT_KIND_DICT ? &c->u.dict.index : &c->u.seq.index; }

static ckpt_status build_index(ck_store *st, ckpt_value *c, uint32_t want_len, ckpt_error *err)
{
    uint32_t cap = 16;
    while (cap < want_len * 2) cap *= 2;
    ck_hindex *ix = ck_arena_alloc(&st->arena, sizeof *ix, _Alignof(ck_hindex));
    uint32_t *slots = ck_arena_zalloc(&st->arena, (size_t)cap * 4, 4);
    uint32_t *tags = ck_arena_alloc(&st->arena, (size_t)cap * 4, 4);
    if (!ix || !slots || !tags) return out_of_memory(st, err);
    ix->mask = cap - 1;
    ix->slots = slots;
    ix->tags = tags;
    uint32_t n = len_of(c);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t h;
        ckpt_status s = hash_key(st, key_at(c, i), &h, err);
        if (s) return s;
        uint32_t pos = (uint32_t)h & ix->mask;
        while (slots[pos]) pos = (pos + 1) & ix->mask;
        slots[pos] = i + 1;
        tags[pos] = (uint32_t)h;
    }
    *index_of(c) = ix;
    return CKPT_OK;
}

/* Finds the position of a key equal to `key`; *found_at = index or UINT32_MAX. */
static ckpt_status find_key(ck_store *st, ckpt_value *c, ckpt_value *key, uint64_t h, uint32_t *found_at, ckpt_error *err)
{
    *found_at = UINT32_MAX;
    ck_hindex *ix = *index_of(c);
    uint32_t n = len_of(c);
    if (!ix) {
        for (uint32_t i = 0; i < n; i++) {
            ckpt_value *k = key_at(c, i);
            if (k == key) { *found_at = i; return CKPT_OK; }
            uint64_t kh;
            ckpt_status s = hash_key(st, k, &kh, err);
            if (s) return s;
            if (kh != h) continue;
            bool eq;
            s = keys_equal(st, k, key, &eq, 0, err);
            if (s) return s;
            if (eq) { *found_at = i; return CKPT_OK; }
        }
        return CKPT_OK;
    }
    for (uint32_t pos = (uint32_t)h & ix->mask; ix->slots[pos]; pos = (pos + 1) & ix->mask) {
        if (ix->tags[pos] != (uint32_t)h) continue;
        uint32_t i = ix->slots[pos] - 1;
        ckpt_value *k = key_at(c, i);
        bool eq = (k == key);
        if (!eq) {
            ckpt_status s = keys_equal(st, k, key, &eq, 0, err);
            if (s) return s;
        }
        if (eq) { *found_at = i; return CKPT_OK; }
    }
    return CKPT_OK;
}

/* Records entry i (already stored) in the index, growing it when 50% full. */
static ckpt_status index_insert(ck_store *st, ckpt_value *c, uint32_t i, uint64_t h, ckpt_error *err)
{
    ck_hindex *ix = *index_of(c);
    uint32_t n = len_of(c);
    if (!ix) {
        if (n < CK_INDEX_MIN_LEN) return CKPT_OK;
        return build_index(st, c, n, err);
    }
    if ((uint64_t)n * 2 > ix->mask + 1ull) return build_index(st, c, n, err);
    uint32_t pos = (uint32_t)h & ix->mask;
    while (ix->slots[pos]) pos = (pos + 1) & ix->mask;
    ix->slots[pos] = i + 1;
    ix->tags[pos] = (uint32_t)h;
    return CKPT_OK;
}

ckpt_status ck_dict_append(ck_store *st, ckpt_value *d, ckpt_value *key, ckpt_value *val, ckpt_error *err)
{
    ckpt_status s = grow_array(st, (void **)&d->u.dict.entries, &d->u.dict.cap, d->u.dict.len, sizeof(ck_dict_entry),
                               _Alignof(ck_dict_entry), err);
    if (s) return s;
    d->u.dict.entries[d->u.dict.len++] = (ck_dict_entry){key, val};
    if (d->u.dict.index || d->u.dict.len >= CK_INDEX_MIN_LEN) {
        uint64_t h;
        s = hash_key(st, key, &h, err);
        if (s) return s;
        return index_insert(st, d, d->u.dict.len - 1, h, err);
    }
    return CKPT_OK;
}

ckpt_status ck_dict_append_unindexed(ck_store *st, ckpt_value *d, ckpt_value *key, ckpt_value *val, ckpt_error *err)
{
    ckpt_status s = grow_array(st, (void **)&d->u.dict.entries, &d->u.dict.cap, d->u.dict.len, sizeof(ck_dict_entry),
                               _Alignof(ck_dict_entry), err);
    if (s) return s;
    d->u.dict.entries[d->u.dict.len++] = (ck_dict_entry){key, val};
    return CKPT_OK;
}

ckpt_status ck_dict_set(ck_store *st, ckpt_value *d, ckpt_value *key, ckpt_value *val, ckpt_error *err)
{
    uint64_t h;
    uint32_t at;
    ckpt_status s = hash_key(st, key, &h, err);
    if (s) return s;
    s = find_key(st, d, key, h, &at, err);
    if (s) return s;
    if (at != UINT32_MAX) { /* Python keeps the first key object and its position */
        d->u.dict.entries[at].val = val;
        return CKPT_OK;
    }
    s = grow_array(st, (void **)&d->u.dict.entries, &d->u.dict.cap, d->u.dict.len, sizeof(ck_dict_entry),
                   _Alignof(ck_dict_entry), err);
    if (s) return s;
    d->u.dict.entries[d->u.dict.len++] = (ck_dict_entry){key, val};
    return index_insert(st, d, d->u.dict.len - 1, h, err);
}

ckpt_status ck_set_add(ck_store *st, ckpt_value *set, ckpt_value *item, ckpt_error *err)
{
    uint64_t h;
    uint32_t at;
    ckpt_status s = hash_key(st, item, &h, err);
    if (s) return s;
    s = find_key(st, set, item, h, &at, err);
    if (s || at != UINT32_MAX) return s;
    s = ck_seq_push(st, set, item, err);
    if (s) return s;
    return index_insert(st, set, set->u.seq.len - 1, h, err);
}

ckpt_value *ck_dict_get_str(const ckpt_value *d, const char *key, size_t len)
{
    if (!d || d->kind != CKPT_KIND_DICT) return NULL;
    const ck_hindex *ix = d->u.dict.index;
    if (!ix) {
        for (uint32_t i = 0; i < d->u.dict.len; i++) {
            const ckpt_value *k = d->u.dict.entries[i].key;
            if (k->kind == CKPT_KIND_STR && k->u.s.len == len && memcmp(k->u.s.ptr, key, len) == 0)
                return d->u.dict.entries[i].val;
        }
        return NULL;
    }
    uint64_t h = XXH3_64bits(key, len) ^ 0x5;
    for (uint32_t pos = (uint32_t)h & ix->mask; ix->slots[pos]; pos = (pos + 1) & ix->mask) {
        if (ix->tags[pos] != (uint32_t)h) continue;
        const ck_dict_entry *e = &d->u.dict.entries[ix->slots[pos] - 1];
        if (e->key->kind == CKPT_KIND_STR && e->key->u.s.len == len && memcmp(e->key->u.s.ptr, key, len) == 0)
            return e->val;
    }
    return NULL;
}

/* ---- names ---- */

const char *ck_kind_name(ckpt_kind kind)
{
    static const char *const names[] = {
        [CKPT_KIND_NONE] = "NoneType", [CKPT_KIND_BOOL] = "bool", [CKPT_KIND_INT] = "int",
        [CKPT_KIND_FLOAT] = "float", [CKPT_KIND_COMPLEX] = "complex", [CKPT_KIND_STR] = "str",
        [CKPT_KIND_BYTES] = "bytes", [CKPT_KIND_BYTEARRAY] = "bytearray", [CKPT_KIND_LIST] = "list",
        [CKPT_KIND_TUPLE] = "tuple", [CKPT_KIND_DICT] = "dict", [CKPT_KIND_SET] = "set",
        [CKPT_KIND_FROZENSET] = "frozenset", [CKPT_KIND_TENSOR] = "torch.Tensor",
        [CKPT_KIND_STORAGE] = "torch.storage.TypedStorage", [CKPT_KIND_DTYPE] = "torch.dtype",
        [CKPT_KIND_DEVICE] = "torch.device", [CKPT_KIND_GLOBAL] = "global", [CKPT_KIND_OBJECT] = "object",
        [CKPT_KIND_CALL] = "call", [CKPT_KIND_SPARSE] = "torch.Tensor",
    };
    return (unsigned)kind < CK_ARRAY_LEN(names) && names[kind] ? names[kind] : "unknown";
}

const char *ck_type_name(const ckpt_value *v)
{
    if (v->type_name) return v->type_name;
    return ck_kind_name((ckpt_kind)v->kind);
}
