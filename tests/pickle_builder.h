/*
 * pickle_builder.h: writing pickles opcode by opcode in tests (hand-made, hostile or not). Header-only:
 * `pk b = {0}; pk_proto(&b, 2); pk_global(&b, "argparse", "Namespace"); ... pk_stop(&b);` then use
 * b.p / b.len and pk_free(&b).
 */
#ifndef CKPT_TEST_PICKLE_BUILDER_H
#define CKPT_TEST_PICKLE_BUILDER_H

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct pk {
    uint8_t *p;
    size_t len, cap;
} pk;

static inline void pk_raw(pk *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        while (b->len + n > b->cap) b->cap = b->cap ? b->cap * 2 : 256;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}
static inline void pk_op(pk *b, uint8_t op) { pk_raw(b, &op, 1); }
static inline void pk_u32(pk *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    pk_raw(b, x, 4);
}
static inline void pk_free(pk *b) { free(b->p); memset(b, 0, sizeof *b); }

static inline void pk_proto(pk *b, uint8_t v) { pk_op(b, 0x80); pk_op(b, v); }
static inline void pk_stop(pk *b) { pk_op(b, '.'); }
static inline void pk_mark(pk *b) { pk_op(b, '('); }
static inline void pk_none(pk *b) { pk_op(b, 'N'); }
static inline void pk_true(pk *b) { pk_op(b, 0x88); }
static inline void pk_false(pk *b) { pk_op(b, 0x89); }
static inline void pk_empty_tuple(pk *b) { pk_op(b, ')'); }
static inline void pk_empty_list(pk *b) { pk_op(b, ']'); }
static inline void pk_empty_dict(pk *b) { pk_op(b, '}'); }
static inline void pk_tuple(pk *b) { pk_op(b, 't'); }
static inline void pk_tuple1(pk *b) { pk_op(b, 0x85); }
static inline void pk_tuple2(pk *b) { pk_op(b, 0x86); }
static inline void pk_tuple3(pk *b) { pk_op(b, 0x87); }
static inline void pk_reduce(pk *b) { pk_op(b, 'R'); }
static inline void pk_newobj(pk *b) { pk_op(b, 0x81); }
static inline void pk_newobj_ex(pk *b) { pk_op(b, 0x92); }
static inline void pk_build(pk *b) { pk_op(b, 'b'); }
static inline void pk_append(pk *b) { pk_op(b, 'a'); }
static inline void pk_appends(pk *b) { pk_op(b, 'e'); }
static inline void pk_setitem(pk *b) { pk_op(b, 's'); }
static inline void pk_setitems(pk *b) { pk_op(b, 'u'); }
static inline void pk_stack_global(pk *b) { pk_op(b, 0x93); }
static inline void pk_memoize(pk *b) { pk_op(b, 0x94); }
static inline void pk_obj(pk *b) { pk_op(b, 'o'); }
static inline void pk_binput(pk *b, uint8_t i) { pk_op(b, 'q'); pk_op(b, i); }
static inline void pk_binget(pk *b, uint8_t i) { pk_op(b, 'h'); pk_op(b, i); }
static inline void pk_int(pk *b, int32_t v) { pk_op(b, 'J'); pk_u32(b, (uint32_t)v); }
static inline void pk_float(pk *b, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, 8);
    pk_op(b, 'G');
    for (int i = 7; i >= 0; i--) pk_op(b, (uint8_t)(bits >> (8 * i)));
}
static inline void pk_str(pk *b, const char *s)
{
    pk_op(b, 'X');
    pk_u32(b, (uint32_t)strlen(s));
    pk_raw(b, s, strlen(s));
}
static inline void pk_bytes(pk *b, const void *d, size_t n)
{
    pk_op(b, 'B');
    pk_u32(b, (uint32_t)n);
    pk_raw(b, d, n);
}
/* Protocol 0 text opcodes. */
static inline void pk_line(pk *b, uint8_t op, const char *text)
{
    pk_op(b, op);
    pk_raw(b, text, strlen(text));
    pk_op(b, '\n');
}
static inline void pk_global(pk *b, const char *module, const char *name)
{
    pk_op(b, 'c');
    pk_raw(b, module, strlen(module));
    pk_op(b, '\n');
    pk_raw(b, name, strlen(name));
    pk_op(b, '\n');
}
static inline void pk_inst(pk *b, const char *module, const char *name)
{
    pk_op(b, 'i');
    pk_raw(b, module, strlen(module));
    pk_op(b, '\n');
    pk_raw(b, name, strlen(name));
    pk_op(b, '\n');
}

#endif
