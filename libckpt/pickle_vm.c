/*
 * pickle_vm.c: the restricted unpickler (see unpickler.h).
 *
 * Semantics follow CPython's C unpickler (Modules/_pickle.c) where it matters for what a file means:
 * the stack is fenced at the top MARK, POP can discard a MARK, MEMOIZE uses the memo's entry count,
 * protocol 0-2 global names are normalised, and protocol-4 frames are checked the way Lib/pickle.py's
 * _Unframer checks them (no argument may straddle a frame's end, no frame may start inside another).
 * Where Python would execute something, this VM either calls a registry handler that builds data,
 * records a generic object/call node for an allowed user global, or refuses. It is stricter than Python
 * where Python is lax: STOP must leave exactly one value and no open MARK, REDUCE arguments must be a
 * tuple, and only lists/dicts (or allowed objects) can be appended to or have items set.
 *
 * Each opcode is handled in two steps: decode_arg reads its argument (the one decoder: `ckpt dis`
 * prints what it returns through the trace hook), then step executes it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickle_opcodes.h"
#include "text.h"
#include "unpickler.h"
#include "util.h"

#define CK_SMALL_INT_MIN (-5)
#define CK_SMALL_INT_MAX 1024

typedef struct vm {
    ck_unpickler *u;
    ck_store *st;
    const ck_limits *lim;
    const ck_reg_view *view;
    const uint8_t *data;
    size_t len;
    size_t pos;
    size_t frame_end; /* valid when in_frame */
    bool in_frame;
    ckpt_value **stack;
    size_t sp, stack_cap;
    size_t *marks;
    size_t nmarks, marks_cap;
    ckpt_value **memo;
    size_t memo_cap;   /* allocated slots */
    size_t memo_count; /* entries set (MEMOIZE's next index) */
    ck_pending *pending; /* objects whose handler runs after STOP */
    size_t npending, pending_cap;
    uint64_t charged;  /* bytes of stack/marks/memo/pending charged to the budget */
    ckpt_value *none, *yes, *no, *empty_tuple;
    /* Python caches small ints and the empty tuple; so does the VM: they are atoms without identity,
     * and torch pickles push hundreds of thousands of them (sizes, strides, offsets). */
    ckpt_value *small_ints[CK_SMALL_INT_MAX - CK_SMALL_INT_MIN + 1];
    const ckpt_value *target; /* what the current opcode acted on (trace hook) */
    bool getattr_seen;        /* builtins.getattr was pushed (see getattr_entry) */
    bool getattr_bad;         /* scan mode: it was used some other way than for an Enum member */
    uint64_t getattr_offset;  /* where the first getattr was named, and by which opcode */
    uint8_t getattr_op;
    ckpt_error *err;
} vm;

/*
 * builtins.getattr is never allowed, but Python >= 3.11 pickles an Enum member by name as
 * getattr(EnumClass, 'NAME'). A load therefore lets GLOBAL builtins.getattr through with this entry,
 * accepts it only as the callable of REDUCE(getattr, (<allowed user class>, '<public identifier>')),
 * which becomes an object of that class whose state is the member name, and refuses the load if the
 * getattr reference itself ends up anywhere in the result.
 */
static const ck_reg_entry getattr_entry = {.module = "builtins", .name = "getattr", .kind = CK_G_FUNCTION};

void ck_unpickler_init(ck_unpickler *u, ck_store *store, const ck_limits *limits)
{
    memset(u, 0, sizeof *u);
    u->store = store;
    u->limits = limits;
}

ckpt_status ck_out_of_memory(ck_store *st, ckpt_error *err)
{
    if (st->arena.over_budget)
        return ck_error_set(err, CKPT_ERR_LIMIT,
                            "allocation limit of %llu bytes reached (CKPT_LIMIT_MAX_ALLOC; raise it only for files "
                            "you have reason to trust)",
                            (unsigned long long)st->arena.budget);
    return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
}

static ckpt_status fail(vm *m, ckpt_status code, const char *fmt, ...) CK_PRINTF(3, 4);
static ckpt_status fail(vm *m, ckpt_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ck_error_vset(m->err, code, fmt, ap);
    va_end(ap);
    return code;
}

static ckpt_status oom(vm *m) { return ck_out_of_memory(m->st, m->err); }

static const char *limit_name(ckpt_limit which)
{
    switch (which) {
    case CKPT_LIMIT_MAX_MEMO: return "CKPT_LIMIT_MAX_MEMO";
    case CKPT_LIMIT_MAX_DEPTH: return "CKPT_LIMIT_MAX_DEPTH";
    case CKPT_LIMIT_MAX_STACK: return "CKPT_LIMIT_MAX_STACK";
    default: return "CKPT_LIMIT_MAX_ALLOC";
    }
}

/* Grows a VM-private array, charging the growth to the load's allocation budget. */
static ckpt_status grow(vm *m, void **arr, size_t *cap, size_t need, size_t elem, uint64_t limit, const char *what,
                        ckpt_limit which)
{
    if (need <= *cap) return CKPT_OK;
    if (need > limit)
        return fail(m, CKPT_ERR_LIMIT, "%s exceeds the limit of %llu (%s)", what, (unsigned long long)limit,
                    limit_name(which));
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need) ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (ncap > limit) ncap = (size_t)limit;
    size_t bytes;
    if (ck_mul_overflow_size(ncap, elem, &bytes)) return oom(m);
    uint64_t extra = bytes - *cap * elem;
    if (!ck_arena_charge(&m->st->arena, extra)) return oom(m);
    void *n = realloc(*arr, bytes);
    if (!n) {
        ck_arena_uncharge(&m->st->arena, extra);
        return fail(m, CKPT_ERR_NOMEM, "out of memory");
    }
    m->charged += extra;
    *arr = n;
    *cap = ncap;
    return CKPT_OK;
}

/* ---- stack ---- */

static inline size_t fence(const vm *m) { return m->nmarks ? m->marks[m->nmarks - 1] : 0; }

static inline ckpt_status push(vm *m, ckpt_value *v)
{
    if (!v) return oom(m);
    if (CK_UNLIKELY(m->sp == m->stack_cap)) {
        ckpt_status s = grow(m, (void **)&m->stack, &m->stack_cap, m->sp + 1, sizeof *m->stack, m->lim->max_stack,
                             "pickle stack depth", CKPT_LIMIT_MAX_STACK);
        if (s) return s;
    }
    m->stack[m->sp++] = v;
    return CKPT_OK;
}

static inline ckpt_status pop(vm *m, ckpt_value **out)
{
    if (CK_UNLIKELY(m->sp <= fence(m)))
        return fail(m, CKPT_ERR_PICKLE, m->sp ? "stack underflow: the value needed is behind a MARK" : "stack underflow: the stack is empty");
    *out = m->stack[--m->sp];
    return CKPT_OK;
}

static inline ckpt_status top(vm *m, ckpt_value **out)
{
    if (CK_UNLIKELY(m->sp <= fence(m)))
        return fail(m, CKPT_ERR_PICKLE, m->sp ? "stack underflow: the value needed is behind a MARK" : "stack underflow: the stack is empty");
    *out = m->stack[m->sp - 1];
    return CKPT_OK;
}

/* Items pushed since the last MARK: [*first, first + *n). Pops the mark; the items stay until the
 * caller lowers sp (they are not overwritten before that). */
static ckpt_status pop_mark(vm *m, size_t *first, size_t *n)
{
    if (m->nmarks == 0) return fail(m, CKPT_ERR_PICKLE, "no MARK on the stack (MARK missing)");
    size_t mk = m->marks[--m->nmarks];
    *first = mk;
    *n = m->sp - mk;
    return CKPT_OK;
}

/* ---- input ---- */

/* Makes n argument bytes at pos readable, applying the frame rules; returns a pointer to them. */
static ckpt_status take(vm *m, size_t n, const uint8_t **out)
{
    if (m->in_frame) {
        if (m->pos == m->frame_end) m->in_frame = false; /* the frame is used up: back to the stream */
        else if (n > m->frame_end - m->pos)
            return fail(m, CKPT_ERR_PICKLE, "argument of %zu bytes runs past the end of the current frame (frame ends at "
                        "byte %zu)", n, m->frame_end);
    }
    if (n > m->len - m->pos)
        return fail(m, CKPT_ERR_PICKLE, "truncated: the argument needs %zu bytes, %zu remain", n, m->len - m->pos);
    *out = m->data + m->pos;
    m->pos += n;
    return CKPT_OK;
}

/* A text argument ending in '\n' (not included in *n). */
static ckpt_status take_line(vm *m, const uint8_t **out, size_t *n)
{
    size_t limit = m->len;
    if (m->in_frame) {
        if (m->pos == m->frame_end) m->in_frame = false;
        else limit = m->frame_end;
    }
    const uint8_t *start = m->data + m->pos;
    size_t avail = limit - m->pos;
    size_t cap = avail;
    if (cap > m->lim->max_string + 1) cap = (size_t)m->lim->max_string + 1;
    const uint8_t *nl = memchr(start, '\n', cap);
    if (!nl) {
        if (cap < avail) return fail(m, CKPT_ERR_LIMIT, "text argument longer than CKPT_LIMIT_MAX_STRING");
        return fail(m, CKPT_ERR_PICKLE, m->in_frame ? "text argument runs past the end of the current frame"
                                                    : "truncated: text argument has no terminating newline");
    }
    *out = start;
    *n = (size_t)(nl - start);
    m->pos += *n + 1;
    return CKPT_OK;
}

/* Checks a declared payload length fits (and is within the string limit), then takes it. */
static ckpt_status take_payload(vm *m, uint64_t n, const uint8_t **out)
{
    if (n > m->lim->max_string)
        return fail(m, CKPT_ERR_LIMIT, "declared length %llu exceeds CKPT_LIMIT_MAX_STRING (%llu)",
                    (unsigned long long)n, (unsigned long long)m->lim->max_string);
    size_t avail = m->len - m->pos;
    if (m->in_frame && m->pos != m->frame_end) avail = m->frame_end - m->pos;
    if (n > avail)
        return fail(m, CKPT_ERR_PICKLE, "declared length %llu but only %zu bytes remain%s", (unsigned long long)n, avail,
                    m->in_frame ? " in the current frame" : "");
    return take(m, (size_t)n, out);
}

static ckpt_status read_u(vm *m, size_t n, uint64_t *out)
{
    const uint8_t *p;
    ckpt_status s = take(m, n, &p);
    if (s) return s;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    *out = v;
    return CKPT_OK;
}

/* ---- decoding ---- */

static ckpt_status decode_line_index(vm *m, ck_pickle_arg *a)
{
    ckpt_status s = take_line(m, &a->p, &a->n);
    if (s) return s;
    int64_t v;
    if (ck_parse_decimal_i64((const char *)a->p, a->n, &v) != CK_INT_OK || v < 0)
        return fail(m, CKPT_ERR_PICKLE, "invalid memo index '%.*s'", (int)CK_MIN(a->n, 40), (const char *)a->p);
    a->kind = CK_ARG_UINT;
    a->u = (uint64_t)v;
    return CKPT_OK;
}

/* A length field of `width` bytes, then that many payload bytes. */
static ckpt_status decode_sized(vm *m, size_t width, ck_pickle_arg_kind kind, ck_pickle_arg *a)
{
    ckpt_status s = read_u(m, width, &a->u);
    if (s) return s;
    a->kind = kind;
    a->n = (size_t)a->u;
    return take_payload(m, a->u, &a->p);
}

/* Reads the argument of `op` (nothing is pushed or executed). */
static ckpt_status decode_arg(vm *m, uint8_t op, ck_pickle_arg *a)
{
    ckpt_status s;
    memset(a, 0, sizeof *a);
    switch (op) {
    case OP_PROTO:
    case OP_BININT1:
    case OP_BINPUT:
    case OP_BINGET:
    case OP_EXT1: a->kind = CK_ARG_UINT; return read_u(m, 1, &a->u);
    case OP_BININT2:
    case OP_EXT2: a->kind = CK_ARG_UINT; return read_u(m, 2, &a->u);
    case OP_LONG_BINPUT:
    case OP_LONG_BINGET:
    case OP_EXT4: a->kind = CK_ARG_UINT; return read_u(m, 4, &a->u);
    case OP_FRAME:
        /* the size field is read first, under the current frame's rules (Lib/pickle.py load_frame): a
         * frame whose last bytes are the next FRAME's header is finished, not nested */
        a->kind = CK_ARG_UINT;
        if ((s = read_u(m, 8, &a->u))) return s;
        if (m->in_frame && m->pos != m->frame_end)
            return fail(m, CKPT_ERR_PICKLE, "FRAME inside an unfinished frame (the current frame ends at byte %zu)",
                        m->frame_end);
        return CKPT_OK;
    case OP_BININT:
        if ((s = read_u(m, 4, &a->u))) return s;
        a->kind = CK_ARG_INT;
        a->i = (int32_t)(uint32_t)a->u;
        return CKPT_OK;
    case OP_BINFLOAT: {
        const uint8_t *p;
        if ((s = take(m, 8, &p))) return s;
        uint64_t bits = ck_be64(p);
        memcpy(&a->f, &bits, 8);
        a->kind = CK_ARG_FLOAT;
        return CKPT_OK;
    }
    case OP_LONG1:
        if ((s = read_u(m, 1, &a->u))) return s;
        a->kind = CK_ARG_LONG;
        a->n = (size_t)a->u;
        return take(m, a->n, &a->p);
    case OP_LONG4: {
        if ((s = read_u(m, 4, &a->u))) return s;
        int32_t n4 = (int32_t)(uint32_t)a->u;
        if (n4 < 0) return fail(m, CKPT_ERR_PICKLE, "LONG4 with a negative byte count %d", n4);
        if ((uint64_t)n4 > m->lim->max_int_bytes)
            return fail(m, CKPT_ERR_LIMIT, "integer of %d bytes exceeds CKPT_LIMIT_MAX_INT_BYTES (%llu)", n4,
                        (unsigned long long)m->lim->max_int_bytes);
        a->kind = CK_ARG_LONG;
        a->n = (size_t)n4;
        return take_payload(m, (uint64_t)n4, &a->p);
    }
    case OP_SHORT_BINUNICODE:
    case OP_SHORT_BINSTRING: return decode_sized(m, 1, CK_ARG_STR, a);
    case OP_BINUNICODE: return decode_sized(m, 4, CK_ARG_STR, a);
    case OP_BINUNICODE8: return decode_sized(m, 8, CK_ARG_STR, a);
    case OP_SHORT_BINBYTES: return decode_sized(m, 1, CK_ARG_BYTES, a);
    case OP_BINBYTES: return decode_sized(m, 4, CK_ARG_BYTES, a);
    case OP_BINBYTES8:
    case OP_BYTEARRAY8: return decode_sized(m, 8, CK_ARG_BYTES, a);
    case OP_BINSTRING: {
        if ((s = read_u(m, 4, &a->u))) return s;
        int32_t n4 = (int32_t)(uint32_t)a->u;
        if (n4 < 0) return fail(m, CKPT_ERR_PICKLE, "BINSTRING with a negative byte count %d", n4);
        a->kind = CK_ARG_STR;
        a->n = (size_t)n4;
        return take_payload(m, (uint64_t)n4, &a->p);
    }
    case OP_INT:
    case OP_LONG:
    case OP_FLOAT:
    case OP_STRING:
    case OP_UNICODE:
    case OP_PERSID: a->kind = CK_ARG_LINE; return take_line(m, &a->p, &a->n);
    case OP_PUT:
    case OP_GET: return decode_line_index(m, a);
    case OP_GLOBAL:
    case OP_INST:
        a->kind = CK_ARG_TWO_LINES;
        if ((s = take_line(m, &a->p, &a->n))) return s;
        return take_line(m, &a->p2, &a->n2);
    case OP_MARK: case OP_STOP: case OP_POP: case OP_POP_MARK: case OP_DUP: case OP_NONE: case OP_NEWTRUE:
    case OP_NEWFALSE: case OP_EMPTY_LIST: case OP_EMPTY_TUPLE: case OP_EMPTY_DICT: case OP_EMPTY_SET:
    case OP_LIST: case OP_TUPLE: case OP_TUPLE1: case OP_TUPLE2: case OP_TUPLE3: case OP_DICT: case OP_FROZENSET:
    case OP_APPEND: case OP_APPENDS: case OP_SETITEM: case OP_SETITEMS: case OP_ADDITEMS: case OP_MEMOIZE:
    case OP_STACK_GLOBAL: case OP_OBJ: case OP_REDUCE: case OP_NEWOBJ: case OP_NEWOBJ_EX: case OP_BUILD:
    case OP_BINPERSID: case OP_NEXT_BUFFER: case OP_READONLY_BUFFER: return CKPT_OK;
    default: return fail(m, CKPT_ERR_PICKLE, "invalid opcode 0x%02x", op);
    }
}

/* ---- values ---- */

static ckpt_value *new_int(vm *m, int64_t x)
{
    if (x < CK_SMALL_INT_MIN || x > CK_SMALL_INT_MAX) return ck_new_int(m->st, x);
    ckpt_value **slot = &m->small_ints[x - CK_SMALL_INT_MIN];
    if (!*slot) *slot = ck_new_int(m->st, x);
    return *slot;
}

static ckpt_status push_str(vm *m, const uint8_t *p, size_t n)
{
    if (!ck_utf8_valid(p, n, true)) return fail(m, CKPT_ERR_PICKLE, "string is not valid UTF-8");
    return push(m, ck_new_bytes_kind(m->st, CKPT_KIND_STR, p, n));
}

/* Scratch buffers for decoding text arguments, counted against the allocation budget while they live. */
static void *scratch_alloc(vm *m, size_t n)
{
    if (!ck_arena_charge(&m->st->arena, n)) return NULL;
    void *p = malloc(n);
    if (!p) ck_arena_uncharge(&m->st->arena, n);
    return p;
}

static void scratch_free(vm *m, void *p, size_t n)
{
    free(p);
    ck_arena_uncharge(&m->st->arena, n);
}

/* Decodes a protocol-0 text argument (STRING, UNICODE) through a scratch buffer of up to `expand` bytes
 * per input byte. */
static ckpt_status push_decoded(vm *m, const uint8_t *p, size_t n, size_t expand,
                                long (*decode)(const uint8_t *, size_t, uint8_t *), const char *invalid)
{
    size_t cap;
    if (ck_mul_overflow_size(n, expand, &cap) || ck_add_overflow_size(cap, 1, &cap)) return oom(m);
    uint8_t *buf = scratch_alloc(m, cap);
    if (!buf) return oom(m);
    long r = decode(p, n, buf);
    ckpt_status s = r < 0 ? fail(m, CKPT_ERR_PICKLE, "%s", invalid) : push_str(m, buf, (size_t)r);
    scratch_free(m, buf, cap);
    return s;
}

static ckpt_status push_int_le(vm *m, const uint8_t *p, size_t n)
{
    if (n > m->lim->max_int_bytes)
        return fail(m, CKPT_ERR_LIMIT, "integer of %zu bytes exceeds CKPT_LIMIT_MAX_INT_BYTES (%llu)", n,
                    (unsigned long long)m->lim->max_int_bytes);
    return push(m, ck_new_int_le(m->st, p, n));
}

static ckpt_status push_decimal(vm *m, const uint8_t *p, size_t n)
{
    int64_t v;
    switch (ck_parse_decimal_i64((const char *)p, n, &v)) {
    case CK_INT_OK: return push(m, new_int(m, v));
    case CK_INT_BAD: return fail(m, CKPT_ERR_PICKLE, "invalid integer text '%.*s'", (int)CK_MIN(n, 40), (const char *)p);
    case CK_INT_BIG: break;
    }
    /* digits * log2(10)/8 bytes, + sign */
    uint64_t bytes = (uint64_t)n * 416 / 1000 + 2;
    if (bytes > m->lim->max_int_bytes + 2)
        return fail(m, CKPT_ERR_LIMIT, "integer of %zu digits exceeds CKPT_LIMIT_MAX_INT_BYTES (%llu bytes)", n,
                    (unsigned long long)m->lim->max_int_bytes);
    uint8_t *buf = scratch_alloc(m, (size_t)bytes + 2);
    if (!buf) return oom(m);
    size_t len = ck_decimal_to_le((const char *)p, n, buf, (size_t)bytes + 2);
    ckpt_status s = len ? push(m, ck_new_int_le(m->st, buf, len)) : fail(m, CKPT_ERR_PICKLE, "invalid integer text");
    scratch_free(m, buf, (size_t)bytes + 2);
    return s;
}

static ckpt_status memo_put(vm *m, uint64_t idx)
{
    ckpt_value *v = NULL;
    ckpt_status s = top(m, &v);
    if (s) return s;
    if (idx >= m->lim->max_memo)
        return fail(m, CKPT_ERR_LIMIT, "memo index %llu exceeds CKPT_LIMIT_MAX_MEMO (%llu)", (unsigned long long)idx,
                    (unsigned long long)m->lim->max_memo);
    if (idx >= m->memo_cap) {
        size_t old = m->memo_cap;
        s = grow(m, (void **)&m->memo, &m->memo_cap, (size_t)idx + 1, sizeof *m->memo, m->lim->max_memo, "memo index",
                 CKPT_LIMIT_MAX_MEMO);
        if (s) return s;
        memset(m->memo + old, 0, (m->memo_cap - old) * sizeof *m->memo);
    }
    if (!m->memo[idx]) m->memo_count++;
    m->memo[idx] = v; /* shared, never copied */
    return CKPT_OK;
}

static ckpt_status memo_get(vm *m, uint64_t idx)
{
    if (idx >= m->memo_cap || !m->memo[idx])
        return fail(m, CKPT_ERR_PICKLE, "memo entry %llu was never set", (unsigned long long)idx);
    return push(m, m->memo[idx]);
}

/* ---- globals ---- */

static ckpt_status blocked(vm *m, const char *module, const char *name);

static ckpt_status check_name(vm *m, const uint8_t *p, size_t n, const char *what)
{
    if (n == 0) return fail(m, CKPT_ERR_PICKLE, "empty %s name in a global reference", what);
    if (memchr(p, '\0', n)) return fail(m, CKPT_ERR_PICKLE, "%s name of a global contains a NUL byte", what);
    if (!ck_utf8_valid(p, n, false)) return fail(m, CKPT_ERR_PICKLE, "%s name of a global is not valid UTF-8", what);
    return CKPT_OK;
}

/* Resolves module + name (exact pair, no attribute walking, no import) and pushes what it stands for. */
static ckpt_status push_global(vm *m, const uint8_t *mp, size_t mn, const uint8_t *np, size_t nn, ckpt_value **out)
{
    ckpt_status s = check_name(m, mp, mn, "module");
    if (!s) s = check_name(m, np, nn, "attribute");
    if (s) return s;
    const char *module = ck_arena_strndup(&m->st->arena, (const char *)mp, mn);
    const char *name = ck_arena_strndup(&m->st->arena, (const char *)np, nn);
    if (!module || !name) return oom(m);
    if (m->u->proto < 3) ck_normalize_global(&module, &name);
    const ck_reg_entry *e = ck_view_lookup(m->view, module, name);
    if (!e && m->u->resolve) e = m->u->resolve(m->u->resolve_ctx, module, name);
    if (!e && (m->u->load_flags & CKPT_LOAD_MODEL) && m->u->mode != CK_MODE_SCAN) e = ck_model_lookup(module, name);
    if (m->u->on_global) m->u->on_global(m->u->on_global_ctx, module, name, e, m->u->op_offset, m->u->op);
    if (!e && strcmp(module, "builtins") == 0 && strcmp(name, "getattr") == 0) {
        e = &getattr_entry; /* judged where it is used: only an Enum member by name passes */
        if (!m->getattr_seen) {
            m->getattr_offset = m->u->op_offset;
            m->getattr_op = m->u->op;
        }
        m->getattr_seen = true;
    }
    if (!e && m->u->mode != CK_MODE_SCAN) return blocked(m, module, name);
    ckpt_value *v;
    if (e && e->kind == CK_G_DTYPE && m->u->mode != CK_MODE_SCAN) {
        v = ck_new_dtype(m->st, e->dtype);
    } else {
        v = ck_new(m->st, CKPT_KIND_GLOBAL);
        if (v) {
            /* an alias stands for its target: nodes report the real name (copied: scope entries go away) */
            if (e && e->target_module) {
                module = ck_arena_strndup(&m->st->arena, e->target_module, strlen(e->target_module));
                name = ck_arena_strndup(&m->st->arena, e->target_name, strlen(e->target_name));
                if (!module || !name) return oom(m);
            }
            v->u.global.module = module;
            v->u.global.name = name;
            v->u.global.entry = e;
            if (e && e->kind == CK_G_CONSTANT) v->type_name = e->type_name;
        }
    }
    if (!v) return oom(m);
    if (out) *out = v;
    return push(m, v);
}

static ckpt_status blocked(vm *m, const char *module, const char *name)
{
    const char *why;
    if (ck_never_allowed(module, name, &why)) {
        /* the same two ways to allow a name, with the note that for this one they are refused */
        ck_error_set(m->err, CKPT_ERR_BLOCKED,
                     "global '%s.%s' is not allowed: libckpt never runs code from a checkpoint, and this name can "
                     "never be allowed (%s): ckpt_registry_add_safe_globals(reg, (const char *[]){\"%s.%s\"}, 1, err) "
                     "and `--allow %s.%s` refuse it. Do not load this file unless you know where it came from "
                     "(`ckpt scan` lists its globals, `ckpt dis` shows its pickle)",
                     module, name, why, module, name, module, name);
    } else {
        ck_error_set(m->err, CKPT_ERR_BLOCKED,
                     "global '%s.%s' is not allowed: libckpt never runs code from a checkpoint, and this name is not on "
                     "the allowlist. If you trust the file and the global is plain data, allow it (it becomes a generic "
                     "object or call node, never executed): C: ckpt_registry_add_safe_globals(reg, (const char *[]){\"%s.%s\"}, "
                     "1, err); CLI: --allow %s.%s",
                     module, name, module, name, module, name);
        const ck_optional_entry *opt = ck_optional_lookup(module, name);
        if (opt && (opt->presets & CK_PRESET_NUMPY))
            ck_error_append(m->err, ". For NumPy values, ckpt_registry_add_preset(reg, \"numpy\", err) or "
                                    "`--allow-preset numpy` allows every NumPy global and turns arrays into tensors and "
                                    "scalars into numbers");
        else if (opt && opt->handler)
            ck_error_append(m->err, ". libckpt has a built-in handler that turns it into a plain value: "
                                    "ckpt_registry_enable_handlers(reg, (const char *[]){\"%s.%s\"}, 1, err) or "
                                    "`--handler %s.%s` (or `--allow-preset stdlib`)", module, name, module, name);
        else if (opt)
            ck_error_append(m->err, " (`--allow-preset stdlib` allows it too)");
        else if (strncmp(module, "numpy", 5) == 0 && (module[5] == '.' || module[5] == '\0'))
            ck_error_append(m->err, " (`--allow-preset numpy` covers NumPy arrays, dtypes and scalars)");
        else if (!(m->u->load_flags & CKPT_LOAD_MODEL) &&
                 ((name[0] >= 'A' && name[0] <= 'Z') || (strcmp(module, "copyreg") == 0 && ck_model_lookup(module, name))))
            ck_error_append(m->err, ". If this is a whole-model pickle (torch.save(model)), model mode reads its module "
                                    "classes as opaque objects without running them: load with CKPT_LOAD_MODEL "
                                    "(CLI: --model)");
    }
    ck_error_set_global(m->err, module, name);
    return CKPT_ERR_BLOCKED;
}

/* Refuses a use of builtins.getattr; the error points at the opcode that named it, like every refusal. */
static ckpt_status blocked_getattr(vm *m, const char *what)
{
    blocked(m, "builtins", "getattr");
    ck_error_append(m->err, ". libckpt accepts getattr only as getattr(<allowed class>, '<NAME>'), the way Python "
                            "3.11+ pickles an Enum member by name; here %s (%s at byte %llu)", what,
                    ck_pickle_opcode_name(m->u->op), (unsigned long long)m->u->op_offset);
    ck_error_at_offset(m->err, (int64_t)m->getattr_offset, m->getattr_op);
    return CKPT_ERR_BLOCKED;
}

static bool public_identifier(const ckpt_value *v)
{
    if (!v || v->kind != CKPT_KIND_STR || v->u.s.len == 0 || v->u.s.len > 256) return false;
    const char *p = v->u.s.ptr;
    if (!((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z'))) return false;
    for (size_t i = 1; i < v->u.s.len; i++)
        if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
            return false;
    return true;
}

/* ---- calls, objects, BUILD and container mutation ---- */

const char *ck_node_label(const ckpt_value *v, char *buf, size_t cap)
{
    if (v->kind == CKPT_KIND_GLOBAL) snprintf(buf, cap, "%s.%s", v->u.global.module, v->u.global.name);
    else if ((v->kind == CKPT_KIND_OBJECT || v->kind == CKPT_KIND_CALL) && v->u.obj)
        snprintf(buf, cap, "%s.%s", v->u.obj->module, v->u.obj->name);
    else snprintf(buf, cap, "%s", ck_type_name(v));
    return buf;
}

/* A recorded object or call of a global (scan mode, and allowed user globals without a native handler). */
static ckpt_value *new_object(vm *m, ckpt_kind kind, const char *module, const char *name, const ck_reg_entry *e,
                              ckpt_value *args, ckpt_value *kwargs)
{
    ckpt_value *v = ck_new(m->st, kind);
    ck_object *o = ck_arena_zalloc(&m->st->arena, sizeof *o, _Alignof(ck_object));
    if (!v || !o) return NULL;
    o->module = module;
    o->name = name;
    o->entry = e;
    o->args = args;
    o->kwargs = kwargs;
    v->u.obj = o;
    if (kind == CKPT_KIND_OBJECT) {
        char *tn = ck_arena_qualname(&m->st->arena, module, name);
        if (!tn) return NULL;
        v->type_name = tn; /* an instance of module.qualname; a CALL's type is unknown ("call") */
    }
    return v;
}

static ckpt_status add_pending(vm *m, ckpt_value *node)
{
    if (m->npending == m->pending_cap) {
        ckpt_status s = grow(m, (void **)&m->pending, &m->pending_cap, m->npending + 1, sizeof *m->pending, UINT32_MAX,
                             "objects with handlers", CKPT_LIMIT_MAX_ALLOC);
        if (s) return s;
    }
    node->flags |= CK_NF_PENDING;
    m->pending[m->npending++] = (ck_pending){node, m->u->op_offset, m->u->op};
    return CKPT_OK;
}

typedef enum { HOW_REDUCE, HOW_NEWOBJ, HOW_INST } call_how;

/* A list or tuple of n items (shared, never copied). */
static ckpt_value *seq_of(vm *m, ckpt_kind kind, ckpt_value *const *items, size_t n)
{
    ckpt_value *t = ck_new_seq(m->st, kind, n);
    if (!t) return NULL;
    if (n) memcpy(t->u.seq.items, items, n * sizeof *items);
    t->u.seq.len = (uint32_t)n;
    return t;
}

/* The same from stack slots [first, first + n); the stack may be unallocated when n is 0. */
static ckpt_value *stack_seq(vm *m, ckpt_kind kind, size_t first, size_t n)
{
    return seq_of(m, kind, n ? m->stack + first : NULL, n);
}

/* NULL when this is getattr(<allowed user class>, '<public identifier>'), else what is wrong. */
static const char *getattr_misuse(call_how how, const ckpt_value *args)
{
    if (how != HOW_REDUCE) return "it is instantiated";
    if (args->kind != CKPT_KIND_TUPLE || args->u.seq.len != 2) return "it has the wrong arguments";
    const ckpt_value *cls = args->u.seq.items[0];
    const ck_reg_entry *ce = cls->kind == CKPT_KIND_GLOBAL ? cls->u.global.entry : NULL;
    if (!ce || ce == &getattr_entry || !(ce->flags & CK_RF_GENERIC) || ce->kind != CK_G_CLASS)
        return "its object is not a class allowed with the registry";
    if (!public_identifier(args->u.seq.items[1])) return "the attribute is not a public identifier";
    return NULL;
}

static ckpt_status call(vm *m, ckpt_value *callable, ckpt_value *args, ckpt_value *kwargs, call_how how, ckpt_value **out);

/* Model mode: REDUCE/INST/OBJ on a name outside the registry would run its code. */
static ckpt_status model_refuse_call(vm *m, const ckpt_value *callable, const char *opname)
{
    const char *mod = callable->u.global.module, *nm = callable->u.global.name;
    ck_error_set(m->err, CKPT_ERR_BLOCKED,
                 "global '%s.%s' is called with %s: model mode reads the classes of module objects without running "
                 "them (NEWOBJ, copyreg._reconstructor, copyreg.__newobj__) and never calls anything the registry does "
                 "not allow. If '%s.%s' is plain data you trust, allow it (it becomes a generic object or call node, "
                 "never executed): C: ckpt_registry_add_safe_globals(reg, (const char *[]){\"%s.%s\"}, 1, err); "
                 "CLI: --allow %s.%s",
                 mod, nm, opname, mod, nm, mod, nm, mod, nm);
    ck_error_set_global(m->err, mod, nm);
    return CKPT_ERR_BLOCKED;
}

static bool is_global_named(const ckpt_value *v, const char *module, const char *name)
{
    return v->kind == CKPT_KIND_GLOBAL && strcmp(v->u.global.module, module) == 0 && strcmp(v->u.global.name, name) == 0;
}

/*
 * Model mode: copyreg._reconstructor(cls, object, None) (protocols 0 and 1), copyreg.__newobj__(cls, *args)
 * and copyreg.__newobj_ex__(cls, args, kwargs) create an instance the way NEWOBJ does; they are taken as
 * NEWOBJ on cls, which decides (an opaque module class, or a class the registry allows).
 */
static ckpt_status model_construct(vm *m, const ck_reg_entry *e, ckpt_value *args, ckpt_value *kwargs, call_how how,
                                   ckpt_value **out)
{
    const char *opname = ck_pickle_opcode_name(m->u->op);
    if (how != HOW_REDUCE || kwargs)
        return fail(m, CKPT_ERR_PICKLE, "copyreg.%s used with %s: it is a function, reduced with REDUCE", e->name, opname);
    size_t n = args->u.seq.len;
    ckpt_value **it = args->u.seq.items;
    ckpt_value *cls = n ? it[0] : NULL, *cargs = NULL, *ckw = NULL;
    if (!cls || cls->kind != CKPT_KIND_GLOBAL || (cls->u.global.entry && (cls->u.global.entry->flags & CK_RF_MODEL_CTOR)))
        return fail(m, CKPT_ERR_PICKLE, "copyreg.%s: the first argument must be a class, got %s", e->name,
                    cls ? ck_type_name(cls) : "nothing");
    if (strcmp(e->name, "_reconstructor") == 0) {
        /* copyreg._reduce_ex gives (cls, object, None) for every class whose base is object (all modules);
         * another base would run that base's __init__ with the state */
        if (n != 3) return fail(m, CKPT_ERR_PICKLE, "copyreg._reconstructor takes 3 arguments, got %zu", n);
        if (!is_global_named(it[1], "builtins", "object"))
            return fail(m, CKPT_ERR_UNSUPPORTED,
                        "copyreg._reconstructor with base %s: model mode only creates instances whose base is object "
                        "(another base's __init__ would have to run)", ck_type_name(it[1]));
        if (it[2]->kind != CKPT_KIND_NONE)
            return fail(m, CKPT_ERR_UNSUPPORTED, "copyreg._reconstructor with a %s state: only None (base object) is "
                        "supported", ck_type_name(it[2]));
        cargs = ck_new_seq(m->st, CKPT_KIND_TUPLE, 0);
    } else if (strcmp(e->name, "__newobj__") == 0) {
        cargs = seq_of(m, CKPT_KIND_TUPLE, it + 1, n - 1);
    } else {
        if (n != 3 || it[1]->kind != CKPT_KIND_TUPLE || it[2]->kind != CKPT_KIND_DICT)
            return fail(m, CKPT_ERR_PICKLE, "copyreg.__newobj_ex__ takes (cls, tuple, dict)");
        cargs = it[1];
        ckw = it[2];
    }
    if (!cargs) return oom(m);
    return call(m, cls, cargs, ckw, HOW_NEWOBJ, out);
}

static ckpt_status call(vm *m, ckpt_value *callable, ckpt_value *args, ckpt_value *kwargs, call_how how, ckpt_value **out)
{
    const char *opname = ck_pickle_opcode_name(m->u->op);
    ckpt_kind kind = how == HOW_REDUCE ? CKPT_KIND_CALL : CKPT_KIND_OBJECT;
    m->target = callable;
    if (m->u->mode == CK_MODE_SCAN) {
        /* Python would call whatever this is; record it and go on, so the scan sees every global that follows */
        bool g = callable->kind == CKPT_KIND_GLOBAL;
        const ck_reg_entry *e = g ? callable->u.global.entry : NULL;
        if (e == &getattr_entry && getattr_misuse(how, args)) m->getattr_bad = true;
        if (g && how == HOW_REDUCE && e && e->kind == CK_G_CLASS) kind = CKPT_KIND_OBJECT;
        *out = new_object(m, kind, g ? callable->u.global.module : "?", g ? callable->u.global.name : "?", e, args, kwargs);
        return *out ? CKPT_OK : oom(m);
    }
    if (callable->kind != CKPT_KIND_GLOBAL)
        return fail(m, CKPT_ERR_PICKLE, "%s target is a %s, not a global: only allowed globals can be called", opname,
                    ck_type_name(callable));
    if (args->kind != CKPT_KIND_TUPLE)
        return fail(m, CKPT_ERR_PICKLE, "%s arguments must be a tuple, got %s", opname, ck_type_name(args));
    if (kwargs && kwargs->kind != CKPT_KIND_DICT)
        return fail(m, CKPT_ERR_PICKLE, "%s keyword arguments must be a dict, got %s", opname, ck_type_name(kwargs));
    const ck_reg_entry *e = callable->u.global.entry;
    char label[512];
    if (!e)
        return fail(m, CKPT_ERR_PICKLE, "'%s' cannot be used with %s", ck_node_label(callable, label, sizeof label), opname);
    if (e->flags & CK_RF_MODEL_CTOR) return model_construct(m, e, args, kwargs, how, out);
    if (e->flags & CK_RF_MODEL) {
        if (how != HOW_NEWOBJ) return model_refuse_call(m, callable, opname);
        /* cls.__new__(cls, *args) in Python: no code of the class runs; recorded, never resolved */
        *out = new_object(m, CKPT_KIND_OBJECT, callable->u.global.module, callable->u.global.name, e, args, kwargs);
        return *out ? CKPT_OK : oom(m);
    }
    if (e == &getattr_entry) {
        const char *why = getattr_misuse(how, args);
        if (why) return blocked_getattr(m, why);
        ckpt_value *cls = args->u.seq.items[0], *attr = args->u.seq.items[1];
        const ck_reg_entry *ce = cls->u.global.entry;
        *out = new_object(m, CKPT_KIND_OBJECT, cls->u.global.module, cls->u.global.name, ce, NULL, NULL);
        if (!*out) return oom(m);
        (*out)->u.obj->state = attr; /* the member name */
        return ce->handler ? add_pending(m, *out) : CKPT_OK;
    }
    ck_call_fn fn = how == HOW_NEWOBJ ? e->newobj : e->call;
    if (fn) {
        ckpt_status s = fn(m->u, e, args, kwargs, out, m->err);
        if (s) return s;
        return *out ? CKPT_OK : oom(m);
    }
    if (!(e->flags & CK_RF_GENERIC) || (e->kind != CK_G_CLASS && e->kind != CK_G_FUNCTION))
        return fail(m, CKPT_ERR_PICKLE, "global '%s' cannot be used with %s", ck_node_label(callable, label, sizeof label),
                    opname);
    if (how == HOW_REDUCE && e->kind == CK_G_CLASS) kind = CKPT_KIND_OBJECT;
    *out = new_object(m, kind, callable->u.global.module, callable->u.global.name, e, args, kwargs);
    if (!*out) return oom(m);
    if (kind == CKPT_KIND_OBJECT && how != HOW_NEWOBJ) (*out)->flags |= CK_NF_CALLED;
    return e->handler ? add_pending(m, *out) : CKPT_OK;
}

/* Shallow-merges dict `src` into *dst (created on first use): Python's inst.__dict__.update(state). */
static ckpt_status merge_attrs(vm *m, ckpt_value **dst, ckpt_value *src)
{
    if (src->kind != CKPT_KIND_DICT)
        return fail(m, CKPT_ERR_PICKLE, "BUILD state must be a dict, got %s", ck_type_name(src));
    if (!*dst) {
        *dst = ck_new_dict(m->st, src->u.dict.len);
        if (!*dst) return oom(m);
    }
    for (uint32_t i = 0; i < src->u.dict.len; i++) {
        ckpt_value *k = src->u.dict.entries[i].key;
        if (k->kind != CKPT_KIND_STR)
            return fail(m, CKPT_ERR_PICKLE, "BUILD state has a %s key; attribute names must be str", ck_type_name(k));
        ckpt_status s = ck_dict_set(m->st, *dst, k, src->u.dict.entries[i].val, m->err);
        if (s) return s;
    }
    return CKPT_OK;
}

static bool is_dict_subclass_with_dict(const ckpt_value *v)
{
    /* dict subclasses defined in Python have a __dict__; plain dict does not */
    return v->kind == CKPT_KIND_DICT && v->type_name != NULL;
}

/* An OBJECT/CALL node that accepts BUILD and items: any in scan mode, else one from an allowed entry. */
static bool is_open_object(const vm *m, const ckpt_value *v)
{
    if (v->kind != CKPT_KIND_OBJECT && v->kind != CKPT_KIND_CALL) return false;
    return m->u->mode == CK_MODE_SCAN || v->u.obj->entry != NULL;
}

static ckpt_status build(vm *m, ckpt_value *inst, ckpt_value *state)
{
    m->target = inst;
    if (m->u->mode == CK_MODE_SCAN) {
        if (inst->kind == CKPT_KIND_OBJECT || inst->kind == CKPT_KIND_CALL) inst->u.obj->state = state;
        return CKPT_OK;
    }
    /* (state, slotstate) pairs: both parts update the attributes (Lib/pickle.py load_build) */
    ckpt_value *slotstate = NULL;
    if (state->kind == CKPT_KIND_TUPLE && state->u.seq.len == 2) {
        ckpt_value *d = state->u.seq.items[0], *sl = state->u.seq.items[1];
        if ((d->kind == CKPT_KIND_DICT || d->kind == CKPT_KIND_NONE) &&
            (sl->kind == CKPT_KIND_DICT || sl->kind == CKPT_KIND_NONE)) {
            slotstate = sl;
            state = d;
        }
    }
    if (is_open_object(m, inst)) {
        ck_object *o = inst->u.obj;
        if (state->kind == CKPT_KIND_DICT) {
            if (o->state && o->state->kind != CKPT_KIND_DICT)
                return fail(m, CKPT_ERR_PICKLE, "BUILD with a dict state on a %s that already has a non-dict state",
                            ck_type_name(inst));
            ckpt_status s = merge_attrs(m, &o->state, state);
            if (s) return s;
        } else if (state->kind != CKPT_KIND_NONE) {
            if (o->state) return fail(m, CKPT_ERR_PICKLE, "second BUILD with a non-dict state on %s", ck_type_name(inst));
            o->state = state; /* what __setstate__ would receive, kept as is */
        }
        if (slotstate && slotstate->kind != CKPT_KIND_NONE) {
            if (o->state && o->state->kind != CKPT_KIND_DICT)
                return fail(m, CKPT_ERR_PICKLE, "BUILD slot state on a %s with a non-dict state", ck_type_name(inst));
            return merge_attrs(m, &o->state, slotstate);
        }
        return CKPT_OK;
    }
    if (is_dict_subclass_with_dict(inst)) {
        if (state->kind != CKPT_KIND_NONE) {
            ckpt_status s = merge_attrs(m, &inst->attrs, state);
            if (s) return s;
        }
        if (slotstate && slotstate->kind != CKPT_KIND_NONE) return merge_attrs(m, &inst->attrs, slotstate);
        return CKPT_OK;
    }
    return fail(m, CKPT_ERR_PICKLE,
                "BUILD on a %s is not allowed: only OrderedDict-like containers and objects of allowed classes accept "
                "state",
                ck_type_name(inst));
}

static ckpt_status object_items(vm *m, ckpt_value *obj, bool dict_items, ckpt_value **out)
{
    ck_object *o = obj->u.obj;
    ckpt_value **slot = dict_items ? &o->dict_items : &o->list_items;
    if (!*slot) *slot = dict_items ? ck_new_dict(m->st, 0) : ck_new_seq(m->st, CKPT_KIND_LIST, 0);
    if (!*slot) return oom(m);
    *out = *slot;
    return CKPT_OK;
}

/* The list APPEND(S) adds to: a list, or an allowed object's item list. Type-checked (CVE-2026-24747). */
static ckpt_status append_target(vm *m, ckpt_value *target, ckpt_value **list)
{
    m->target = target;
    if (target->kind == CKPT_KIND_LIST) { *list = target; return CKPT_OK; }
    if (is_open_object(m, target)) return object_items(m, target, false, list);
    if (m->u->mode == CK_MODE_SCAN) { *list = NULL; return CKPT_OK; }
    return fail(m, CKPT_ERR_PICKLE, "%s on a %s: only lists and objects of allowed classes can be appended to",
                ck_pickle_opcode_name(m->u->op), ck_type_name(target));
}

static ckpt_status setitem_target(vm *m, ckpt_value *target, ckpt_value **dict)
{
    m->target = target;
    if (target->kind == CKPT_KIND_DICT) { *dict = target; return CKPT_OK; }
    if (is_open_object(m, target)) return object_items(m, target, true, dict);
    if (m->u->mode == CK_MODE_SCAN) { *dict = NULL; return CKPT_OK; }
    return fail(m, CKPT_ERR_PICKLE, "%s on a %s: only dicts and objects of allowed classes can have items set",
                ck_pickle_opcode_name(m->u->op), ck_type_name(target));
}

/* In scan mode dict keys are kept as they come (no hashing): scanning must not fail on odd keys. */
static ckpt_status dict_put(vm *m, ckpt_value *d, ckpt_value *k, ckpt_value *v)
{
    if (m->u->mode == CK_MODE_SCAN) return ck_dict_append_unindexed(m->st, d, k, v, m->err);
    return ck_dict_set(m->st, d, k, v, m->err);
}

static ckpt_status build_seq(vm *m, ckpt_kind kind, size_t first, size_t n)
{
    ckpt_value *v;
    if (kind == CKPT_KIND_FROZENSET || kind == CKPT_KIND_SET) {
        v = ck_new_seq(m->st, kind, n);
        if (!v) return oom(m);
        for (size_t i = 0; i < n; i++) {
            ckpt_status s = m->u->mode == CK_MODE_SCAN ? ck_seq_push(m->st, v, m->stack[first + i], m->err)
                                                       : ck_set_add(m->st, v, m->stack[first + i], m->err);
            if (s) return s;
        }
    } else {
        v = stack_seq(m, kind, first, n);
        if (!v) return oom(m);
    }
    m->sp = first;
    return push(m, v);
}

/* A tuple of the n stack items at first (INST/OBJ arguments). */

/* ---- the loop ---- */

static ckpt_status step(vm *m, uint8_t op, const ck_pickle_arg *arg, bool *stop);

ckpt_status ck_unpickle(ck_unpickler *u, const uint8_t *data, size_t len, size_t *pos, ckpt_value **result,
                        ckpt_error *err)
{
    vm m;
    memset(&m, 0, sizeof m);
    m.u = u;
    m.st = u->store;
    m.lim = u->limits;
    m.data = data;
    m.len = len;
    m.pos = *pos;
    m.err = err;
    u->proto = 0;
    u->getattr_enum_only = false;
    if (m.pos > len) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "start offset past the end of the pickle");
    ck_reg_view local;
    if (u->view) {
        m.view = u->view;
    } else {
        ckpt_status vs = ck_registry_view_acquire(&local, u->registry, err);
        if (vs) return vs;
        m.view = &local;
    }
    ckpt_status s = CKPT_OK;
    m.none = ck_new(m.st, CKPT_KIND_NONE);
    m.yes = ck_new_bool(m.st, true);
    m.no = ck_new_bool(m.st, false);
    if (!m.none || !m.yes || !m.no) s = oom(&m);
    uint64_t ops = 0;
    bool stop = false;
    int err_op = -1; /* the opcode to name in an error; -1 for errors between opcodes */
    ck_pickle_arg arg;
    while (!s && !stop) {
        u->op_offset = m.pos;
        err_op = -1;
        if (m.pos >= m.len) {
            s = fail(&m, CKPT_ERR_PICKLE, "truncated: the pickle ends without a STOP opcode");
            break;
        }
        if (m.in_frame && m.pos == m.frame_end) m.in_frame = false;
        if (++ops > m.lim->max_opcodes) {
            s = fail(&m, CKPT_ERR_LIMIT, "more than %llu opcodes (CKPT_LIMIT_MAX_OPCODES)",
                     (unsigned long long)m.lim->max_opcodes);
            break;
        }
        uint8_t op = m.data[m.pos++];
        u->op = op;
        err_op = op;
        m.target = NULL;
        s = decode_arg(&m, op, &arg);
        if (!s) s = step(&m, op, &arg, &stop);
        if (!s && u->on_op) u->on_op(u->on_op_ctx, u->op_offset, op, &arg, m.sp, m.nmarks, m.target);
    }
    if (s) {
        ck_error_at_offset(err, (int64_t)u->op_offset, err_op);
        *pos = (size_t)u->op_offset;
    } else {
        *result = m.stack[m.sp - 1];
        *pos = m.pos;
        bool leaked = m.getattr_seen && ck_reaches_entry(m.st, *result, &getattr_entry);
        if (u->mode == CK_MODE_SCAN) {
            u->getattr_enum_only = m.getattr_seen && !m.getattr_bad && !leaked;
        } else if (leaked) {
            u->op = OP_STOP;
            s = blocked_getattr(&m, "the getattr function itself is part of the result");
        }
        if (!s && m.npending) s = ck_run_handlers(u, m.pending, m.npending, err);
    }
    if (!u->view) ck_registry_view_release(&local);
    free(m.stack);
    free(m.marks);
    free(m.memo);
    free(m.pending);
    ck_arena_uncharge(&m.st->arena, m.charged);
    return s;
}

static ckpt_status step(vm *m, uint8_t op, const ck_pickle_arg *arg, bool *stop)
{
    ckpt_status s = CKPT_OK;
    const uint8_t *p = arg->p;
    size_t n = arg->n, first = 0;
    uint64_t x = arg->u;
    ckpt_value *a = NULL, *b = NULL, *c = NULL, *v = NULL;
    switch (op) {
    case OP_PROTO:
        if (x > 5) return fail(m, CKPT_ERR_PICKLE, "unsupported pickle protocol %llu (0-5 exist)", (unsigned long long)x);
        m->u->proto = (int)x;
        return CKPT_OK;
    case OP_FRAME:
        if (x > m->len - m->pos)
            return fail(m, CKPT_ERR_PICKLE, "frame of %llu bytes but only %zu remain", (unsigned long long)x,
                        m->len - m->pos);
        m->in_frame = true;
        m->frame_end = m->pos + (size_t)x;
        return CKPT_OK;
    case OP_STOP:
        if (m->u->mode == CK_MODE_SCAN) {
            /* Python's STOP pops the top value and ignores the rest: so does a scan */
            if (m->sp == 0) return fail(m, CKPT_ERR_PICKLE, "STOP with an empty stack");
            *stop = true;
            return CKPT_OK;
        }
        if (m->nmarks) return fail(m, CKPT_ERR_PICKLE, "STOP with %zu MARK(s) still open", m->nmarks);
        if (m->sp == 0) return fail(m, CKPT_ERR_PICKLE, "STOP with an empty stack");
        if (m->sp != 1) return fail(m, CKPT_ERR_PICKLE, "STOP with %zu values on the stack (exactly 1 expected)", m->sp);
        *stop = true;
        return CKPT_OK;
    case OP_MARK:
        if (m->nmarks == m->marks_cap) {
            s = grow(m, (void **)&m->marks, &m->marks_cap, m->nmarks + 1, sizeof *m->marks, m->lim->max_depth,
                     "MARK nesting depth", CKPT_LIMIT_MAX_DEPTH);
            if (s) return s;
        }
        m->marks[m->nmarks++] = m->sp;
        return CKPT_OK;
    case OP_POP:
        if (m->nmarks && m->marks[m->nmarks - 1] == m->sp) { m->nmarks--; return CKPT_OK; } /* as _pickle.c */
        return pop(m, &a);
    case OP_POP_MARK:
        if ((s = pop_mark(m, &first, &n))) return s;
        m->sp = first;
        return CKPT_OK;
    case OP_DUP:
        if ((s = top(m, &a))) return s;
        return push(m, a);

    /* ---- numbers ---- */
    case OP_NONE: return push(m, m->none);
    case OP_NEWTRUE: return push(m, m->yes);
    case OP_NEWFALSE: return push(m, m->no);
    case OP_BININT1:
    case OP_BININT2: return push(m, new_int(m, (int64_t)x));
    case OP_BININT: return push(m, new_int(m, arg->i));
    case OP_LONG1:
    case OP_LONG4: return push_int_le(m, p, n);
    case OP_INT:
        if (n == 2 && p[0] == '0' && (p[1] == '0' || p[1] == '1')) return push(m, p[1] == '1' ? m->yes : m->no);
        return push_decimal(m, p, n);
    case OP_LONG:
        if (n && p[n - 1] == 'L') n--;
        return push_decimal(m, p, n);
    case OP_BINFLOAT: return push(m, ck_new_float(m->st, arg->f));
    case OP_FLOAT: {
        double d;
        if (!ck_parse_float((const char *)p, n, &d))
            return fail(m, CKPT_ERR_PICKLE, "invalid float text '%.*s'", (int)CK_MIN(n, 40), (const char *)p);
        return push(m, ck_new_float(m->st, d));
    }

    /* ---- strings ---- */
    case OP_SHORT_BINUNICODE:
    case OP_BINUNICODE:
    case OP_BINUNICODE8:
    case OP_SHORT_BINSTRING: /* Python 2 str: torch.load decodes it with encoding='utf-8' */
    case OP_BINSTRING: return push_str(m, p, n);
    case OP_SHORT_BINBYTES:
    case OP_BINBYTES:
    case OP_BINBYTES8: return push(m, ck_new_bytes_kind(m->st, CKPT_KIND_BYTES, p, n));
    case OP_BYTEARRAY8: return push(m, ck_new_bytes_kind(m->st, CKPT_KIND_BYTEARRAY, p, n));
    case OP_STRING:
        return push_decoded(m, p, n, 1, ck_unescape_string, "STRING argument is not a valid quoted Python string");
    case OP_UNICODE:
        return push_decoded(m, p, n, 4, ck_raw_unicode_escape, "UNICODE argument has an invalid \\u or \\U escape");

    /* ---- containers ---- */
    case OP_EMPTY_LIST: return push(m, ck_new_seq(m->st, CKPT_KIND_LIST, 0));
    case OP_EMPTY_TUPLE:
        if (!m->empty_tuple) m->empty_tuple = ck_new_seq(m->st, CKPT_KIND_TUPLE, 0);
        return push(m, m->empty_tuple);
    case OP_EMPTY_DICT: return push(m, ck_new_dict(m->st, 0));
    case OP_EMPTY_SET: return push(m, ck_new_seq(m->st, CKPT_KIND_SET, 0));
    case OP_LIST:
        if ((s = pop_mark(m, &first, &n))) return s;
        return build_seq(m, CKPT_KIND_LIST, first, n);
    case OP_TUPLE:
        if ((s = pop_mark(m, &first, &n))) return s;
        return build_seq(m, CKPT_KIND_TUPLE, first, n);
    case OP_FROZENSET:
        if ((s = pop_mark(m, &first, &n))) return s;
        return build_seq(m, CKPT_KIND_FROZENSET, first, n);
    case OP_TUPLE1:
    case OP_TUPLE2:
    case OP_TUPLE3:
        n = (size_t)(op - OP_TUPLE1 + 1);
        if (m->sp < fence(m) + n)
            return fail(m, CKPT_ERR_PICKLE, "stack underflow: %s needs %zu values", ck_pickle_opcode_name(op), n);
        return build_seq(m, CKPT_KIND_TUPLE, m->sp - n, n);
    case OP_DICT:
        if ((s = pop_mark(m, &first, &n))) return s;
        if (n % 2) return fail(m, CKPT_ERR_PICKLE, "odd number of items (%zu) for DICT", n);
        v = ck_new_dict(m->st, n / 2);
        if (!v) return oom(m);
        for (size_t i = 0; i < n; i += 2)
            if ((s = dict_put(m, v, m->stack[first + i], m->stack[first + i + 1]))) return s;
        m->sp = first;
        return push(m, v);
    case OP_APPEND:
        if ((s = pop(m, &a)) || (s = top(m, &b))) return s;
        if ((s = append_target(m, b, &c))) return s;
        return c ? ck_seq_push(m->st, c, a, m->err) : CKPT_OK;
    case OP_APPENDS:
        if ((s = pop_mark(m, &first, &n))) return s;
        if (m->sp - n <= fence(m)) return fail(m, CKPT_ERR_PICKLE, "APPENDS with no list below its MARK");
        if ((s = append_target(m, m->stack[first - 1], &c))) return s;
        for (size_t i = 0; c && i < n; i++)
            if ((s = ck_seq_push(m->st, c, m->stack[first + i], m->err))) return s;
        m->sp = first;
        return CKPT_OK;
    case OP_SETITEM:
        if ((s = pop(m, &a)) || (s = pop(m, &b)) || (s = top(m, &c))) return s;
        if ((s = setitem_target(m, c, &v))) return s;
        return v ? dict_put(m, v, b, a) : CKPT_OK;
    case OP_SETITEMS:
        if ((s = pop_mark(m, &first, &n))) return s;
        if (n % 2) return fail(m, CKPT_ERR_PICKLE, "odd number of items (%zu) for SETITEMS", n);
        if (m->sp - n <= fence(m)) return fail(m, CKPT_ERR_PICKLE, "SETITEMS with no dict below its MARK");
        if ((s = setitem_target(m, m->stack[first - 1], &v))) return s;
        for (size_t i = 0; v && i < n; i += 2)
            if ((s = dict_put(m, v, m->stack[first + i], m->stack[first + i + 1]))) return s;
        m->sp = first;
        return CKPT_OK;
    case OP_ADDITEMS:
        if ((s = pop_mark(m, &first, &n))) return s;
        if (m->sp - n <= fence(m)) return fail(m, CKPT_ERR_PICKLE, "ADDITEMS with no set below its MARK");
        c = m->stack[first - 1];
        if (c->kind != CKPT_KIND_SET) {
            if (m->u->mode == CK_MODE_SCAN) { m->sp = first; return CKPT_OK; }
            return fail(m, CKPT_ERR_PICKLE, "ADDITEMS on a %s: only sets can be added to", ck_type_name(c));
        }
        for (size_t i = 0; i < n; i++)
            if ((s = m->u->mode == CK_MODE_SCAN ? ck_seq_push(m->st, c, m->stack[first + i], m->err)
                                                : ck_set_add(m->st, c, m->stack[first + i], m->err)))
                return s;
        m->sp = first;
        return CKPT_OK;

    /* ---- memo ---- */
    case OP_BINPUT:
    case OP_LONG_BINPUT:
    case OP_PUT: return memo_put(m, x);
    case OP_MEMOIZE: return memo_put(m, m->memo_count);
    case OP_BINGET:
    case OP_LONG_BINGET:
    case OP_GET: return memo_get(m, x);

    /* ---- globals and calls ---- */
    case OP_GLOBAL: return push_global(m, p, n, arg->p2, arg->n2, NULL);
    case OP_STACK_GLOBAL:
        if ((s = pop(m, &b)) || (s = pop(m, &a))) return s;
        if (a->kind != CKPT_KIND_STR || b->kind != CKPT_KIND_STR)
            return fail(m, CKPT_ERR_PICKLE, "STACK_GLOBAL operands must be str, got %s and %s", ck_type_name(a),
                        ck_type_name(b));
        return push_global(m, (const uint8_t *)a->u.s.ptr, a->u.s.len, (const uint8_t *)b->u.s.ptr, b->u.s.len, NULL);
    case OP_INST: {
        size_t count = 0;
        /* the class is resolved (and refused if not allowed) before anything else happens, its
         * arguments' MARK included (Python's load_inst calls find_class before pop_mark) */
        size_t saved = m->sp;
        if ((s = push_global(m, p, n, arg->p2, arg->n2, &c))) return s;
        m->sp = saved;
        if ((s = pop_mark(m, &first, &count))) return s;
        ckpt_value *args = stack_seq(m, CKPT_KIND_TUPLE, first, count);
        if (!args) return oom(m);
        m->sp = first;
        if ((s = call(m, c, args, NULL, HOW_INST, &v))) return s;
        return push(m, v);
    }
    case OP_OBJ: {
        if ((s = pop_mark(m, &first, &n))) return s;
        if (n == 0) return fail(m, CKPT_ERR_PICKLE, "OBJ with no class after its MARK");
        c = m->stack[first];
        ckpt_value *args = stack_seq(m, CKPT_KIND_TUPLE, first + 1, n - 1);
        if (!args) return oom(m);
        m->sp = first;
        if ((s = call(m, c, args, NULL, HOW_INST, &v))) return s;
        return push(m, v);
    }
    case OP_REDUCE:
        if ((s = pop(m, &b)) || (s = pop(m, &a))) return s;
        if ((s = call(m, a, b, NULL, HOW_REDUCE, &v))) return s;
        return push(m, v);
    case OP_NEWOBJ:
        if ((s = pop(m, &b)) || (s = pop(m, &a))) return s;
        if ((s = call(m, a, b, NULL, HOW_NEWOBJ, &v))) return s;
        return push(m, v);
    case OP_NEWOBJ_EX:
        if ((s = pop(m, &c)) || (s = pop(m, &b)) || (s = pop(m, &a))) return s;
        if ((s = call(m, a, b, c, HOW_NEWOBJ, &v))) return s;
        return push(m, v);
    case OP_BUILD:
        if ((s = pop(m, &b)) || (s = top(m, &a))) return s;
        return build(m, a, b);
    case OP_BINPERSID:
    case OP_PERSID:
        if (op == OP_PERSID) {
            if (!ck_utf8_valid(p, n, false)) return fail(m, CKPT_ERR_PICKLE, "PERSID argument is not ASCII text");
            a = ck_new_bytes_kind(m->st, CKPT_KIND_STR, p, n);
            if (!a) return oom(m);
        } else if ((s = pop(m, &a))) {
            return s;
        }
        if (!m->u->persistent_load)
            return fail(m, CKPT_ERR_PICKLE, "persistent id in a pickle that cannot reference storages");
        if ((s = m->u->persistent_load(m->u, m->u->persistent_ctx, a, &v, m->err))) return s;
        return push(m, v);
    case OP_EXT1:
    case OP_EXT2:
    case OP_EXT4: {
        char name[48];
        snprintf(name, sizeof name, "_extension_registry[%llu]", (unsigned long long)x);
        if (m->u->on_global) m->u->on_global(m->u->on_global_ctx, "copyreg", name, NULL, m->u->op_offset, op);
        if (m->u->mode == CK_MODE_SCAN) {
            v = ck_new(m->st, CKPT_KIND_GLOBAL);
            if (!v) return oom(m);
            v->u.global.module = "copyreg";
            v->u.global.name = "_extension_registry";
            return push(m, v);
        }
        s = fail(m, CKPT_ERR_BLOCKED,
                 "extension code %llu (copyreg extension registry) is not allowed: libckpt resolves no EXT codes, so "
                 "no registry entry can admit it",
                 (unsigned long long)x);
        ck_error_set_global(m->err, "copyreg", name);
        return s;
    }
    case OP_NEXT_BUFFER:
        return fail(m, CKPT_ERR_UNSUPPORTED,
                    "NEXT_BUFFER: the pickle expects out-of-band buffers (protocol 5 buffer_callback), which a "
                    "checkpoint file cannot carry");
    case OP_READONLY_BUFFER:
        if ((s = top(m, &a))) return s;
        if (a->kind == CKPT_KIND_BYTES) return CKPT_OK; /* already read-only */
        return fail(m, CKPT_ERR_UNSUPPORTED, "READONLY_BUFFER on a %s (only meaningful after NEXT_BUFFER)",
                    ck_type_name(a));
    default:
        return fail(m, CKPT_ERR_PICKLE, "invalid opcode 0x%02x", op);
    }
}

/* ---- handler argument helpers ---- */

static ckpt_status arg_error(const ck_reg_entry *e, ckpt_error *err, size_t i, const char *want, const ckpt_value *got)
{
    return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: argument %zu must be %s, got %s", e->module, e->name, i, want,
                        got ? ck_type_name(got) : "nothing");
}

ckpt_status ck_arg_count(const ck_reg_entry *e, ckpt_value *args, size_t min, size_t max, ckpt_error *err)
{
    size_t n = args->u.seq.len;
    if (n < min || n > max) {
        if (min == max)
            return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s takes %zu arguments, got %zu", e->module, e->name, min, n);
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s takes %zu to %zu arguments, got %zu", e->module, e->name, min,
                            max, n);
    }
    return CKPT_OK;
}

ckpt_status ck_arg_int(const ck_reg_entry *e, ckpt_value *args, size_t i, int64_t *out, ckpt_error *err)
{
    ckpt_value *v = args->u.seq.items[i];
    if (v->kind != CKPT_KIND_INT || (v->flags & CK_NF_BIGINT)) return arg_error(e, err, i, "a 64-bit int", v);
    *out = v->u.i;
    return CKPT_OK;
}

ckpt_status ck_arg_bool(const ck_reg_entry *e, ckpt_value *args, size_t i, bool *out, ckpt_error *err)
{
    ckpt_value *v = args->u.seq.items[i];
    if (v->kind != CKPT_KIND_BOOL) return arg_error(e, err, i, "a bool", v);
    *out = v->u.b;
    return CKPT_OK;
}

ckpt_status ck_arg_int_tuple(ck_unpickler *u, const ck_reg_entry *e, ckpt_value *args, size_t i, int64_t **out,
                             uint32_t *n, ckpt_error *err)
{
    ckpt_value *v = args->u.seq.items[i];
    if (!ck_is_seq(v)) return arg_error(e, err, i, "a tuple of ints", v);
    uint32_t len = v->u.seq.len;
    if (len > u->limits->max_ndim)
        return ck_error_set(err, CKPT_ERR_LIMIT, "%s.%s: %u dimensions exceed CKPT_LIMIT_MAX_NDIM (%llu)", e->module,
                            e->name, len, (unsigned long long)u->limits->max_ndim);
    int64_t *arr = NULL;
    if (len) {
        arr = ck_arena_alloc(&u->store->arena, (size_t)len * sizeof *arr, _Alignof(int64_t));
        if (!arr) return ck_out_of_memory(u->store, err);
    }
    for (uint32_t k = 0; k < len; k++) {
        ckpt_value *x = v->u.seq.items[k];
        if (x->kind != CKPT_KIND_INT || (x->flags & CK_NF_BIGINT)) return arg_error(e, err, i, "a tuple of 64-bit ints", v);
        arr[k] = x->u.i;
    }
    *out = arr;
    *n = len;
    return CKPT_OK;
}

ckpt_status ck_arg_str(const ck_reg_entry *e, ckpt_value *args, size_t i, const char **out, size_t *len, ckpt_error *err)
{
    ckpt_value *v = args->u.seq.items[i];
    if (v->kind != CKPT_KIND_STR) return arg_error(e, err, i, "a str", v);
    *out = v->u.s.ptr;
    if (len) *len = v->u.s.len;
    return CKPT_OK;
}

ckpt_status ck_arg_kind(const ck_reg_entry *e, ckpt_value *args, size_t i, ckpt_kind kind, ckpt_value **out,
                        ckpt_error *err)
{
    ckpt_value *v = args->u.seq.items[i];
    if (v->kind != kind) return arg_error(e, err, i, ck_kind_name(kind), v);
    *out = v;
    return CKPT_OK;
}
