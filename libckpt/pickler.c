/*
 * pickler.c: value tree -> protocol-2 pickle (see pickler.h).
 *
 * The reference is CPython 3's C pickler at protocol 2 driven by torch.save:
 *   - memoised (BINPUT after creation, BINGET on reuse): str, tuples (after their items), lists and
 *     dicts (before their items), globals, and every object built by REDUCE/NEWOBJ; ints, floats,
 *     bools and None never are;
 *   - lists/dicts in batches of 1000 (MARK ... APPENDS/SETITEMS); an exact list or dict of one item
 *     uses APPEND/SETITEM; OrderedDict items come from an iterator (the last batch of one uses SETITEM);
 *   - bytes are _codecs.encode(str, 'latin1') (b'' is bytes()), bytearray is bytearray(bytes), set and
 *     frozenset are set(list), complex is complex(re, im), torch.Size is Size(tuple), torch.device is
 *     device('cuda', 0), a dtype is the global torch.<name>; Python 2 module names (__builtin__).
 * Tensors follow torch/_tensor.py _reduce_ex_internal and torch/serialization.py persistent_id
 * (docs/pytorch-format-notes.md §2.2, §3.2).
 */
#include "pickler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "dtype.h"
#include "ptrmap.h"
#include "strmap.h"
#include "text.h"
#include "util.h"
#include "walk_paths.h"

#define BATCH 1000u

/* opcodes */
#define OP_MARK '('
#define OP_STOP '.'
#define OP_POP '0'
#define OP_POP_MARK '1'
#define OP_BINFLOAT 'G'
#define OP_BININT 'J'
#define OP_BININT1 'K'
#define OP_BININT2 'M'
#define OP_NONE 'N'
#define OP_BINPERSID 'Q'
#define OP_REDUCE 'R'
#define OP_BINUNICODE 'X'
#define OP_EMPTY_LIST ']'
#define OP_APPEND 'a'
#define OP_BUILD 'b'
#define OP_GLOBAL 'c'
#define OP_APPENDS 'e'
#define OP_BINGET 'h'
#define OP_LONG_BINGET 'j'
#define OP_BINPUT 'q'
#define OP_LONG_BINPUT 'r'
#define OP_SETITEM 's'
#define OP_TUPLE 't'
#define OP_SETITEMS 'u'
#define OP_EMPTY_DICT '}'
#define OP_EMPTY_TUPLE ')'
#define OP_PROTO 0x80
#define OP_NEWOBJ 0x81
#define OP_TUPLE1 0x85
#define OP_TUPLE2 0x86
#define OP_TUPLE3 0x87
#define OP_NEWTRUE 0x88
#define OP_NEWFALSE 0x89
#define OP_LONG1 0x8a
#define OP_LONG4 0x8b

typedef enum {
    T_SAVE,        /* a.v: save a value */
    T_OP,          /* n: one opcode byte */
    T_MEMO,        /* a.v: memoise (NULL: an object with no node, e.g. an argument tuple) */
    T_TUPLE_END,   /* a.v, n: end of a tuple's items */
    T_LIST_BATCH,  /* a.v (list/set node or list_items), b.start, flag: 1 exact list, 0 iterator */
    T_DICT_BATCH,  /* a.v, b.start, flag: 1 exact dict, 0 iterator */
    T_GLOBAL,      /* a.s module, b.s name */
    T_CONST_STR,   /* n: CONST_* */
    T_STR,         /* a.s, b.len: a fresh str object; flag STR_KEY: the key of record n */
    T_LATIN1_STR,  /* a.s, b.len: bytes decoded as latin-1, a fresh str */
    T_INT,         /* a.i */
    T_BOOL,        /* n */
    T_INTS,        /* a.ints, n: a fresh tuple of ints */
    T_PID,         /* a.st, n: dtype the tensor views it as */
    T_ODICT_NEW,   /* OrderedDict() */
    T_BYTES_OBJ,   /* a.s, b.len: a fresh bytes object (bytearray's argument) */
    T_FLOAT,       /* a.f */
    T_TENSOR,      /* b.t, a.v (the node to memoise, or NULL), flag TT_*: a tensor's rebuild call */
    T_NP_DTYPE,    /* n: dtype, flag: big-endian, a.v: the node to memoise or NULL (then by dtype) */
    T_NP_B,        /* the b'b' of ndarray.__reduce__ (a constant: one object) */
    T_LAYOUT,      /* n: layout index: torch.layout objects are singletons, written once */
} task_op;

/* str constants the objects torch and numpy pickle share (one object each: written once, then BINGET) */
enum { CONST_STORAGE, CONST_CPU, CONST_LATIN1, CONST_LT, CONST_GT, CONST_PIPE, CONST_COUNT };
enum { STR_FRESH, STR_KEY };
static const char *const const_text[CONST_COUNT] = {"storage", "cpu", "latin1", "<", ">", "|"};

typedef struct {
    uint8_t op;
    uint8_t flag;
    uint32_t n;
    union {
        const ckpt_value *v;
        const char *s;
        int64_t i;
        const int64_t *ints;
        const ckpt_storage *st;
        double f;
    } a;
    union {
        const char *s;
        size_t len;
        uint64_t start;
        const ckpt_tensor *t;
    } b;
} task;

/* Where each storage went: its record slot and how the persistent id names its element type. */
typedef struct {
    uint32_t slot;
    uint8_t untyped; /* UntypedStorage + _rebuild_tensor_v3 */
    uint8_t dtype;   /* typed: the element type */
    int64_t key_memo;
} slot_info;

typedef struct {
    ck_bytebuf *out;
    ckpt_error *err;
    const ckpt_registry *reg;
    bool dedup;
    task *tasks;
    size_t ntasks, tasks_cap;
    uint32_t memo_next;
    ck_ptrmap memo;        /* node -> memo index */
    ck_ptrmap tuple_busy;  /* tuple node -> times entered and not finished */
    ck_strmap globals;     /* "module\nname" -> memo index + 1 */
    char **global_keys;    /* owned keys of `globals` */
    size_t nglobal_keys;
    int64_t const_memo[CONST_COUNT];
    int64_t np_dtype_memo[CKPT_DTYPE_COUNT_]; /* numpy's builtin dtypes are singletons: one object each */
    int64_t np_b_memo;
    int64_t layout_memo[8];
    ck_ptrmap storage_slot; /* storage -> index into slots + 1 */
    slot_info *slots;
    size_t nslots, slots_cap;
    ck_strmap by_digest;   /* dedup: digest key -> slot index + 1 */
    char **digest_keys;
    size_t ndigest_keys;
    ck_pickle_result *res;
    const ckpt_value *failed_at; /* the node an error is about, for its path */
    ckpt_status status;
} pk;

/* ---- errors ---- */

static ckpt_status fail(pk *p, const ckpt_value *v, ckpt_status code, const char *fmt, ...) CK_PRINTF(4, 5);
static ckpt_status fail(pk *p, const ckpt_value *v, ckpt_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ck_error_vset(p->err, code, fmt, ap);
    va_end(ap);
    p->failed_at = v;
    p->status = code;
    return code;
}

static ckpt_status oom(pk *p) { return fail(p, NULL, CKPT_ERR_NOMEM, "out of memory while pickling"); }

/* ---- output ---- */

static void put_op(pk *p, uint8_t op) { ck_bb_u8(p->out, op); }

static void put_memo_put(pk *p, uint32_t idx)
{
    if (idx < 256) {
        ck_bb_u8(p->out, OP_BINPUT);
        ck_bb_u8(p->out, (uint8_t)idx);
    } else {
        ck_bb_u8(p->out, OP_LONG_BINPUT);
        ck_bb_le32(p->out, idx);
    }
}

static void put_memo_get(pk *p, uint64_t idx)
{
    if (idx < 256) {
        ck_bb_u8(p->out, OP_BINGET);
        ck_bb_u8(p->out, (uint8_t)idx);
    } else {
        ck_bb_u8(p->out, OP_LONG_BINGET);
        ck_bb_le32(p->out, (uint32_t)idx);
    }
}

static ckpt_status new_memo(pk *p, uint32_t *idx)
{
    if (p->memo_next == UINT32_MAX) return fail(p, NULL, CKPT_ERR_LIMIT, "more than 2^32 memoised objects");
    *idx = p->memo_next++;
    put_memo_put(p, *idx);
    return CKPT_OK;
}

static ckpt_status memoize(pk *p, const ckpt_value *v)
{
    uint32_t idx;
    ckpt_status s = new_memo(p, &idx);
    if (s) return s;
    if (v && !ck_ptrmap_put(&p->memo, v, idx)) return oom(p);
    return CKPT_OK;
}

static void put_int(pk *p, int64_t x)
{
    if (x >= 0 && x <= 0xff) {
        ck_bb_u8(p->out, OP_BININT1);
        ck_bb_u8(p->out, (uint8_t)x);
    } else if (x >= 0 && x <= 0xffff) {
        ck_bb_u8(p->out, OP_BININT2);
        ck_bb_le16(p->out, (uint16_t)x);
    } else if (x >= INT32_MIN && x <= INT32_MAX) {
        ck_bb_u8(p->out, OP_BININT);
        ck_bb_le32(p->out, (uint32_t)(int32_t)x);
    } else {
        /* Python's encode_long: minimal little-endian two's complement */
        uint8_t b[8];
        for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)x >> (8 * i));
        size_t n = 8;
        while (n > 1 && ((b[n - 1] == 0 && !(b[n - 2] & 0x80)) || (b[n - 1] == 0xff && (b[n - 2] & 0x80)))) n--;
        ck_bb_u8(p->out, OP_LONG1);
        ck_bb_u8(p->out, (uint8_t)n);
        ck_bb_put(p->out, b, n);
    }
}

static ckpt_status put_bigint(pk *p, const ckpt_value *v)
{
    size_t n = v->u.big.len;
    if (n < 256) {
        ck_bb_u8(p->out, OP_LONG1);
        ck_bb_u8(p->out, (uint8_t)n);
    } else {
        if (n > INT32_MAX) return fail(p, v, CKPT_ERR_LIMIT, "integer too large for a pickle");
        ck_bb_u8(p->out, OP_LONG4);
        ck_bb_le32(p->out, (uint32_t)n);
    }
    ck_bb_put(p->out, v->u.big.bytes, n);
    return CKPT_OK;
}

static void put_float(pk *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    uint8_t b[8];
    ck_put_be64(b, u);
    ck_bb_u8(p->out, OP_BINFLOAT);
    ck_bb_put(p->out, b, 8);
}

static ckpt_status put_str(pk *p, const ckpt_value *v, const char *s, size_t n)
{
    if (n > UINT32_MAX) return fail(p, v, CKPT_ERR_LIMIT, "a string of %zu bytes does not fit protocol 2 (4 GiB at most)", n);
    ck_bb_u8(p->out, OP_BINUNICODE);
    ck_bb_le32(p->out, (uint32_t)n);
    ck_bb_put(p->out, s, n);
    return CKPT_OK;
}

static ckpt_status put_const_str(pk *p, int which)
{
    int64_t *m = &p->const_memo[which];
    if (*m >= 0) {
        put_memo_get(p, (uint64_t)*m);
        return CKPT_OK;
    }
    const char *s = const_text[which];
    put_str(p, NULL, s, strlen(s));
    uint32_t idx;
    ckpt_status st = new_memo(p, &idx);
    *m = idx;
    return st;
}

/* ---- globals ---- */

/* protocol 2 spells Python 3 modules the Python 2 way (pickle's REVERSE_IMPORT_MAPPING) */
static const char *py2_module(const char *module)
{
    if (strcmp(module, "builtins") == 0) return "__builtin__";
    if (strcmp(module, "copyreg") == 0) return "copy_reg";
    return module;
}

static ckpt_status emit_global_checked(pk *p, const char *module, const char *name, const ckpt_value *for_node,
                                       bool check);
static ckpt_status emit_global(pk *p, const char *module, const char *name, const ckpt_value *for_node)
{
    return emit_global_checked(p, module, name, for_node, true);
}

static ckpt_status emit_global_checked(pk *p, const char *module, const char *name, const ckpt_value *for_node,
                                       bool check)
{
    size_t ml = strlen(module), nl = strlen(name);
    char stackbuf[256];
    char *key = ml + nl + 2 <= sizeof stackbuf ? stackbuf : malloc(ml + nl + 2);
    if (!key) return oom(p);
    memcpy(key, module, ml);
    key[ml] = '\n';
    memcpy(key + ml + 1, name, nl + 1);
    void *found = ck_strmap_get(&p->globals, key, ml + nl + 1);
    if (found) {
        if (key != stackbuf) free(key);
        put_memo_get(p, (uint64_t)(uintptr_t)found - 1);
        return CKPT_OK;
    }
    if (check && !ck_registry_lookup(p->reg, module, name)) {
        if (key != stackbuf) free(key);
        return fail(p, for_node, CKPT_ERR_BLOCKED,
                    "the value needs the global '%s.%s', which the save registry does not allow (torch.load with "
                    "weights_only=True would refuse the file); allow it in the registry passed to "
                    "ckpt_save_options_set_registry if readers will allow it too", module, name);
    }
    const char *m2 = py2_module(module), *n2 = name;
    /* what a protocol-2 reader maps the written name to must be the name itself */
    const char *cm = m2, *cn = n2;
    ck_normalize_global(&cm, &cn);
    if (strcmp(cm, module) != 0 || strcmp(cn, name) != 0) {
        if (key != stackbuf) free(key);
        return fail(p, for_node, CKPT_ERR_UNSUPPORTED,
                    "the global '%s.%s' cannot be written in protocol 2: readers would map it to '%s.%s'", module, name,
                    cm, cn);
    }
    ck_bb_u8(p->out, OP_GLOBAL);
    ck_bb_put(p->out, m2, strlen(m2));
    ck_bb_u8(p->out, '\n');
    ck_bb_put(p->out, n2, nl);
    ck_bb_u8(p->out, '\n');
    uint32_t idx;
    ckpt_status s = new_memo(p, &idx);
    if (s) {
        if (key != stackbuf) free(key);
        return s;
    }
    char *owned = key == stackbuf ? strdup(key) : key;
    if (!owned) return oom(p);
    if (p->nglobal_keys % 64 == 0) {
        char **n = realloc(p->global_keys, (p->nglobal_keys + 64) * sizeof *n);
        if (!n) {
            free(owned);
            return oom(p);
        }
        p->global_keys = n;
    }
    p->global_keys[p->nglobal_keys++] = owned;
    if (!ck_strmap_put(&p->globals, owned, ml + nl + 1, (void *)(uintptr_t)(idx + 1))) return oom(p);
    return CKPT_OK;
}

/* ---- tasks ---- */

static bool push(pk *p, task t)
{
    if (p->ntasks == p->tasks_cap) {
        size_t ncap = p->tasks_cap ? p->tasks_cap * 2 : 256;
        task *n = realloc(p->tasks, ncap * sizeof *n);
        if (!n) {
            oom(p);
            return false;
        }
        p->tasks = n;
        p->tasks_cap = ncap;
    }
    p->tasks[p->ntasks++] = t;
    return true;
}

/* Tasks pushed between seq_begin and seq_end run in the order they were pushed. */
static size_t seq_begin(pk *p) { return p->ntasks; }
static void seq_end(pk *p, size_t mark)
{
    for (size_t i = mark, j = p->ntasks; i + 1 < j; i++, j--) {
        task t = p->tasks[i];
        p->tasks[i] = p->tasks[j - 1];
        p->tasks[j - 1] = t;
    }
}

#define T(...) push(p, (task){__VA_ARGS__})
static void t_save(pk *p, const ckpt_value *v) { T(.op = T_SAVE, .a.v = v); }
static void t_op(pk *p, uint8_t op) { T(.op = T_OP, .n = op); }
static void t_memo(pk *p, const ckpt_value *v) { T(.op = T_MEMO, .a.v = v); }
static void t_global(pk *p, const char *m, const char *n) { T(.op = T_GLOBAL, .a.s = m, .b.s = n); }
static void t_int(pk *p, int64_t i) { T(.op = T_INT, .a.i = i); }
static void t_bool(pk *p, bool b) { T(.op = T_BOOL, .n = b); }

/* ---- storages ---- */

static ckpt_status storage_slot(pk *p, const ckpt_storage *st, ckpt_dtype view, const ckpt_value *for_node,
                                slot_info **out)
{
    uint32_t found;
    if (ck_ptrmap_get(&p->storage_slot, st, &found)) {
        slot_info *si = &p->slots[found - 1];
        if (!si->untyped && si->dtype != (uint8_t)view)
            return fail(p, for_node, CKPT_ERR_TENSOR,
                        "storage '%s' is viewed as %s here and as %s elsewhere: PyTorch cannot save or load one storage "
                        "with two element types", st->key, ckpt_dtype_name(view), ckpt_dtype_name((ckpt_dtype)si->dtype));
        *out = si;
        return CKPT_OK;
    }
    if (st->nbytes && !st->data)
        return fail(p, for_node, CKPT_ERR_STATE,
                    "storage '%s' has no data (the checkpoint was loaded with CKPT_LOAD_SKIP_DATA): load it with data to "
                    "save it", st->key);
    /* typed (torch.<X>Storage + _rebuild_tensor_v2) whenever the element type has a storage class */
    const ck_dtype_info *info = ck_dtype_info_of(view);
    bool untyped = !info->storage_class || st->nbytes % info->itemsize != 0;
    slot_info si = {0, untyped, (uint8_t)(untyped ? CKPT_DTYPE_UINT8 : view), -1};
    /* dedup: an identical earlier storage of the same kind takes this one's place */
    if (p->dedup && st->nbytes) {
        XXH128_hash_t h = XXH3_128bits(st->data, (size_t)st->nbytes);
        char dk[40];
        memcpy(dk, &h.low64, 8);
        memcpy(dk + 8, &h.high64, 8);
        memcpy(dk + 16, &st->nbytes, 8);
        dk[24] = (char)si.untyped;
        dk[25] = (char)si.dtype;
        void *prev = ck_strmap_get(&p->by_digest, dk, 26);
        if (prev) {
            slot_info *other = &p->slots[(uintptr_t)prev - 1];
            const ckpt_storage *os = p->res->storages[other->slot].storage;
            if (os->nbytes == st->nbytes && memcmp(os->data, st->data, (size_t)st->nbytes) == 0) {
                if (!ck_ptrmap_put(&p->storage_slot, st, (uint32_t)(uintptr_t)prev)) return oom(p);
                p->res->deduplicated++;
                *out = other;
                return CKPT_OK;
            }
        } else {
            char *owned = malloc(26);
            if (!owned) return oom(p);
            memcpy(owned, dk, 26);
            if (p->ndigest_keys % 64 == 0) {
                char **n = realloc(p->digest_keys, (p->ndigest_keys + 64) * sizeof *n);
                if (!n) {
                    free(owned);
                    return oom(p);
                }
                p->digest_keys = n;
            }
            p->digest_keys[p->ndigest_keys++] = owned;
            if (!ck_strmap_put(&p->by_digest, owned, 26, (void *)(uintptr_t)(p->nslots + 1))) return oom(p);
        }
    }
    if (p->nslots == p->slots_cap) {
        size_t ncap = p->slots_cap ? p->slots_cap * 2 : 16;
        slot_info *n = realloc(p->slots, ncap * sizeof *n);
        ck_pickled_storage *r = realloc(p->res->storages, ncap * sizeof *r);
        if (n) p->slots = n;
        if (r) p->res->storages = r;
        if (!n || !r) return oom(p);
        p->slots_cap = ncap;
    }
    si.slot = (uint32_t)p->res->nstorages;
    ck_pickled_storage *rec = &p->res->storages[p->res->nstorages++];
    rec->storage = st;
    rec->nbytes = st->nbytes;
    p->slots[p->nslots++] = si;
    if (p->nslots >= UINT32_MAX) return fail(p, for_node, CKPT_ERR_LIMIT, "more than 2^32 storages");
    if (!ck_ptrmap_put(&p->storage_slot, st, (uint32_t)p->nslots)) return oom(p);
    *out = &p->slots[p->nslots - 1];
    return CKPT_OK;
}

/* ('storage', <storage class>, key, location, numel) BINPERSID */
static ckpt_status emit_pid(pk *p, const ckpt_storage *st, ckpt_dtype view, const ckpt_value *for_node)
{
    slot_info *si;
    ckpt_status s = storage_slot(p, st, view, for_node, &si);
    if (s) return s;
    uint32_t slot = si->slot;
    bool untyped = si->untyped;
    uint8_t dtype = si->dtype;
    const ck_pickled_storage *rec = &p->res->storages[slot];
    size_t mark = seq_begin(p);
    t_op(p, OP_MARK);
    T(.op = T_CONST_STR, .n = CONST_STORAGE);
    if (untyped) t_global(p, "torch.storage", "UntypedStorage");
    else t_global(p, "torch", ck_dtype_info_of((ckpt_dtype)dtype)->storage_class);
    T(.op = T_STR, .flag = STR_KEY, .n = slot); /* one str object per record: memoised */
    if (strcmp(st->location, "cpu") == 0) T(.op = T_CONST_STR, .n = CONST_CPU);
    else T(.op = T_STR, .a.s = st->location, .b.len = strlen(st->location));
    t_int(p, (int64_t)(untyped ? rec->nbytes : rec->nbytes / ckpt_dtype_itemsize((ckpt_dtype)dtype)));
    t_op(p, OP_TUPLE);
    t_memo(p, NULL);
    t_op(p, OP_BINPERSID);
    seq_end(p, mark);
    return p->status;
}

/* ---- tensors ---- */

static void push_ints(pk *p, const int64_t *a, uint32_t n) { T(.op = T_INTS, .a.ints = a, .n = n); }

/* A storage and the tensor's offset in it, a legacy view storage replaced by the storage it slices. */
static ckpt_status root_storage(pk *p, const ckpt_tensor *t, const ckpt_value *node, const ckpt_storage **st,
                                int64_t *offset)
{
    const ckpt_storage *s = t->storage;
    uint64_t bytes = 0;
    for (unsigned hops = 0; s->flags & CK_SF_VIEW; hops++) {
        if (!s->base || hops > 64) return fail(p, node, CKPT_ERR_STATE, "storage view without its base");
        bytes += s->base_offset;
        s = s->base;
    }
    size_t isz = ckpt_dtype_itemsize((ckpt_dtype)t->dtype);
    if (bytes % isz) return fail(p, node, CKPT_ERR_UNSUPPORTED, "a storage view starts inside an element");
    *st = s;
    *offset = t->storage_offset + (int64_t)(bytes / isz);
    return CKPT_OK;
}

/* The type of a tensor subclass ("module.Class") as a global. */
static ckpt_status subclass_global(pk *p, const ckpt_tensor *t, const ckpt_value *node, const char **module,
                                   const char **name)
{
    const char *tn = t->type_name, *dot = tn ? strrchr(tn, '.') : NULL;
    if (!dot || dot == tn) return fail(p, node, CKPT_ERR_UNSUPPORTED, "tensor subclass without a class name");
    /* the node's strings live as long as the tree: slice the module name into a task-owned copy */
    char *m = strndup(tn, (size_t)(dot - tn));
    if (!m) return oom(p);
    if (p->nglobal_keys % 64 == 0) {
        char **n = realloc(p->global_keys, (p->nglobal_keys + 64) * sizeof *n);
        if (!n) {
            free(m);
            return oom(p);
        }
        p->global_keys = n;
    }
    p->global_keys[p->nglobal_keys++] = m; /* freed with the other owned strings */
    *module = m;
    *name = dot + 1;
    return CKPT_OK;
}

/* Tensor-task flags: which wrappers have been written already. */
#define TT_NO_PARAM 0x1u  /* inside _rebuild_parameter: the data tensor */
#define TT_NO_WRAP 0x2u   /* inside _rebuild_from_type_v2: the args */
#define TT_NO_DEVICE 0x4u /* inside _rebuild_device_tensor_from_cpu_tensor: the host tensor */
#define TT_ARGS 0x8u      /* only the argument tuple of the rebuild function */

/* The rebuild function torch uses for the innermost form of t. */
static const char *rebuild_fn(const ckpt_tensor *t, bool v3, unsigned flags)
{
    if (!t->storage) return t->subclass ? "_rebuild_wrapper_subclass" : "_rebuild_meta_tensor_no_storage";
    if (t->device && !(flags & TT_NO_DEVICE)) return "_rebuild_device_tensor_from_cpu_tensor";
    if (t->quant) return "_rebuild_qtensor";
    return v3 ? "_rebuild_tensor_v3" : "_rebuild_tensor_v2";
}

static const char *const layout_names[] = {"strided", "sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr",
                                           "sparse_bsc", "_mkldnn", "jagged"};

static int layout_index(const char *name)
{
    for (int i = 0; i < (int)CK_ARRAY_LEN(layout_names); i++)
        if (strcmp(name, layout_names[i]) == 0) return i;
    return -1;
}

/* copyreg.pickle(torch.layout): _get_layout('torch.<name>'); each layout is one object, memoised once */
static void push_layout(pk *p, const char *name) { T(.op = T_LAYOUT, .n = (uint32_t)layout_index(name)); }

static ckpt_status emit_layout(pk *p, int i)
{
    if (p->layout_memo[i] >= 0) {
        put_memo_get(p, (uint64_t)p->layout_memo[i]);
        return CKPT_OK;
    }
    char buf[64];
    snprintf(buf, sizeof buf, "torch.%s", layout_names[i]);
    uint32_t idx;
    ckpt_status s = emit_global(p, "torch.serialization", "_get_layout", NULL);
    if (!s) s = put_str(p, NULL, buf, strlen(buf));
    if (!s) s = new_memo(p, &idx);
    if (s) return s;
    put_op(p, OP_TUPLE1);
    if ((s = new_memo(p, &idx))) return s;
    put_op(p, OP_REDUCE);
    if ((s = new_memo(p, &idx))) return s;
    p->layout_memo[i] = idx;
    return CKPT_OK;
}

/* torch.Size(tuple): a fresh Size object */
static void push_size(pk *p, const int64_t *dims, uint32_t n)
{
    t_global(p, "torch", "Size");
    push_ints(p, dims, n);
    t_op(p, OP_TUPLE1);
    t_memo(p, NULL);
    t_op(p, OP_REDUCE);
    t_memo(p, NULL);
}

/* torch.device('cuda', 0) / torch.device('cpu') */
static void push_device(pk *p, const char *d)
{
    const char *colon = strchr(d, ':');
    t_global(p, "torch", "device");
    T(.op = T_STR, .a.s = d, .b.len = colon ? (size_t)(colon - d) : strlen(d));
    if (colon) t_int(p, strtoll(colon + 1, NULL, 10));
    t_op(p, colon ? OP_TUPLE2 : OP_TUPLE1);
    t_memo(p, NULL);
    t_op(p, OP_REDUCE);
    t_memo(p, NULL);
}

/*
 * One tensor (torch/_tensor.py _reduce_ex_internal and the wrappers around it):
 *   Parameter                -> _rebuild_parameter(data, requires_grad, OrderedDict()) (+ state: _with_state)
 *   Python attributes or an allowed subclass -> _rebuild_from_type_v2(func, type, args, state)
 *   a tensor of another device -> _rebuild_device_tensor_from_cpu_tensor(host tensor, dtype, device, rg)
 *   quantized                -> _rebuild_qtensor(storage, offset, size, stride, qparams, rg, OrderedDict())
 *   meta                     -> _rebuild_meta_tensor_no_storage(dtype, size, stride, rg)
 *   wrapper subclass         -> _rebuild_wrapper_subclass(cls, dtype, size, stride, offset, layout, device, rg)
 *   otherwise                -> _rebuild_tensor_v2(storage, offset, size, stride, rg, OrderedDict()[, metadata]),
 *                               or _rebuild_tensor_v3 (+ dtype) for dtypes without a typed storage class.
 * `node` (may be NULL) is memoised as the result.
 */
static ckpt_status emit_tensor(pk *p, const ckpt_tensor *t, const ckpt_value *node, unsigned flags)
{
    const ckpt_value *hooks = t->extra_kind == CK_TX_HOOKS ? t->extra : NULL;
    const ckpt_value *metadata = t->extra_kind == CK_TX_METADATA ? t->extra : NULL;
    const ckpt_value *state = t->extra_kind == CK_TX_STATE ? t->extra : NULL;
    bool param = t->is_parameter && !(flags & TT_NO_PARAM);
    bool wrap = !(flags & TT_NO_WRAP) && !t->is_parameter && (state || t->subclass);
    const ckpt_storage *st = NULL;
    int64_t offset = t->storage_offset;
    slot_info *si = NULL;
    ckpt_status s;
    if (t->storage) {
        if ((s = root_storage(p, t, node, &st, &offset))) return s;
        if ((s = storage_slot(p, st, (ckpt_dtype)t->dtype, node, &si))) return s;
    } else if (!t->subclass && (!t->device || strcmp(t->device, "meta") != 0)) {
        return fail(p, node, CKPT_ERR_UNSUPPORTED, "a tensor without storage that is not a meta tensor cannot be written");
    }
    bool v3 = si && si->untyped && !t->quant;
    const char *fn = rebuild_fn(t, v3, flags);
    size_t mark = seq_begin(p);
    if (flags & TT_ARGS) goto args;
    if (param) {
        /* Parameter.__reduce_ex__: the data is a detached plain tensor */
        t_global(p, "torch._utils", state ? "_rebuild_parameter_with_state" : "_rebuild_parameter");
        if (state) t_op(p, OP_MARK);
        T(.op = T_TENSOR, .a.v = NULL, .b.t = t, .flag = (uint8_t)(flags | TT_NO_PARAM | TT_NO_WRAP));
        t_bool(p, t->requires_grad);
        T(.op = T_ODICT_NEW);
        if (state) {
            t_save(p, state);
            t_op(p, OP_TUPLE);
        } else {
            t_op(p, OP_TUPLE3);
        }
        t_memo(p, NULL);
        t_op(p, OP_REDUCE);
        t_memo(p, node);
        seq_end(p, mark);
        return p->status;
    }
    if (wrap) {
        const char *tm = "torch", *tname = "Tensor";
        if (t->subclass && (s = subclass_global(p, t, node, &tm, &tname))) return s;
        t_global(p, "torch._tensor", "_rebuild_from_type_v2");
        t_op(p, OP_MARK);
        t_global(p, "torch._utils", fn);
        t_global(p, tm, tname);
        T(.op = T_TENSOR, .a.v = NULL, .b.t = t, .flag = (uint8_t)(flags | TT_NO_WRAP | TT_ARGS));
        if (state) t_save(p, state);
        else {
            t_op(p, OP_EMPTY_DICT); /* an object's empty __dict__ */
            t_memo(p, NULL);
        }
        t_op(p, OP_TUPLE);
        t_memo(p, NULL);
        t_op(p, OP_REDUCE);
        t_memo(p, node);
        seq_end(p, mark);
        return p->status;
    }
    t_global(p, "torch._utils", fn);
args:
    t_op(p, OP_MARK);
    if (!t->storage && t->subclass) { /* wrapper subclass */
        const char *cm, *cn;
        if ((s = subclass_global(p, t, node, &cm, &cn))) return s;
        t_global(p, cm, cn);
        t_global(p, "torch", ckpt_dtype_name((ckpt_dtype)t->dtype));
        push_ints(p, t->shape, t->ndim);
        push_ints(p, t->stride, t->ndim);
        t_int(p, t->storage_offset);
        push_layout(p, "strided");
        push_device(p, t->device ? t->device : "cpu");
        t_bool(p, t->requires_grad);
    } else if (!t->storage) { /* meta */
        t_global(p, "torch", ckpt_dtype_name((ckpt_dtype)t->dtype));
        push_ints(p, t->shape, t->ndim);
        push_ints(p, t->stride, t->ndim);
        t_bool(p, t->requires_grad);
    } else if (t->device && !(flags & TT_NO_DEVICE)) {
        /* (host tensor, dtype, str(device), requires_grad) */
        T(.op = T_TENSOR, .a.v = NULL, .b.t = t, .flag = (uint8_t)(flags | TT_NO_DEVICE | TT_NO_PARAM | TT_NO_WRAP));
        t_global(p, "torch", ckpt_dtype_name((ckpt_dtype)t->dtype));
        T(.op = T_STR, .a.s = t->device, .b.len = strlen(t->device));
        t_bool(p, t->requires_grad);
    } else {
        T(.op = T_PID, .a.st = st, .n = t->dtype);
        t_int(p, offset);
        push_ints(p, t->shape, t->ndim);
        push_ints(p, t->stride, t->ndim);
        /* the data of a Parameter or of a device tensor is a plain (detached) tensor */
        bool rg = (flags & (TT_NO_PARAM | TT_NO_DEVICE)) ? false : t->requires_grad;
        if (t->quant) {
            const ck_quant *q = t->quant;
            if (q->qscheme == CKPT_QSCHEME_PER_TENSOR_AFFINE || q->qscheme == CKPT_QSCHEME_PER_TENSOR_SYMMETRIC) {
                t_global(p, "torch", ckpt_qscheme_name((ckpt_qscheme)q->qscheme));
                T(.op = T_FLOAT, .a.f = q->scale);
                t_int(p, q->zero_point);
                t_op(p, OP_TUPLE3);
            } else {
                /* torch writes per_channel_affine_float_qparams with the per_channel_affine tag too */
                bool sym = q->qscheme == CKPT_QSCHEME_PER_CHANNEL_SYMMETRIC;
                if (!q->scales || !q->zero_points)
                    return fail(p, node, CKPT_ERR_STATE, "per-channel quantized tensor without its scales");
                t_op(p, OP_MARK);
                t_global(p, "torch", sym ? "per_channel_symmetric" : "per_channel_affine");
                T(.op = T_TENSOR, .a.v = NULL, .b.t = q->scales, .flag = 0);
                T(.op = T_TENSOR, .a.v = NULL, .b.t = q->zero_points, .flag = 0);
                t_int(p, q->axis);
                t_op(p, OP_TUPLE);
            }
            t_memo(p, NULL);
            t_bool(p, rg);
            if (hooks) t_save(p, hooks);
            else T(.op = T_ODICT_NEW);
        } else {
            t_bool(p, rg);
            if (hooks) t_save(p, hooks);
            else T(.op = T_ODICT_NEW);
            if (v3) t_global(p, "torch", ckpt_dtype_name((ckpt_dtype)t->dtype));
            if (metadata) t_save(p, metadata);
        }
    }
    t_op(p, OP_TUPLE);
    t_memo(p, NULL);
    if (!(flags & TT_ARGS)) {
        t_op(p, OP_REDUCE);
        t_memo(p, node);
    }
    seq_end(p, mark);
    return p->status;
}

/* _rebuild_sparse_tensor(layout, (indices, values, Size[, is_coalesced])) or, compressed layouts,
 * (compressed, plain, values, Size); torch <= 1.13's CSR files used _rebuild_sparse_csr_tensor. */
static ckpt_status save_sparse(pk *p, const ckpt_value *v)
{
    static const char *const layouts[] = {"strided", "sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc"};
    const ckpt_sparse *sp = v->u.sparse;
    if (sp->layout == CKPT_LAYOUT_STRIDED || sp->layout >= CK_ARRAY_LEN(layouts) || !sp->indices || !sp->values)
        return fail(p, v, CKPT_ERR_UNSUPPORTED, "a sparse tensor of an unknown layout cannot be written");
    bool coo = sp->layout == CKPT_LAYOUT_SPARSE_COO;
    if (!coo && !sp->plain) return fail(p, v, CKPT_ERR_STATE, "compressed sparse tensor without plain indices");
    size_t mark = seq_begin(p);
    t_global(p, "torch._utils", sp->legacy_csr ? "_rebuild_sparse_csr_tensor" : "_rebuild_sparse_tensor");
    push_layout(p, layouts[sp->layout]);
    bool four = !coo || sp->coalesced; /* torch <= 1.13 wrote COO without is_coalesced */
    if (four) t_op(p, OP_MARK);
    t_save(p, sp->indices);
    if (!coo) t_save(p, sp->plain);
    t_save(p, sp->values);
    push_size(p, sp->shape, sp->ndim);
    if (coo && sp->coalesced) t_bool(p, true);
    t_op(p, four ? OP_TUPLE : OP_TUPLE3);
    t_memo(p, NULL);
    t_op(p, OP_TUPLE2);
    t_memo(p, NULL);
    t_op(p, OP_REDUCE);
    t_memo(p, v);
    seq_end(p, mark);
    return p->status;
}


/* ---- NumPy values (made by the numpy preset's handlers; written back the way NumPy pickles them) ---- */

/* numpy's type code of a dtype ("f4"), or NULL when numpy has none (bfloat16, float8...). */
static const char *np_code(ckpt_dtype d)
{
    switch (d) {
    case CKPT_DTYPE_BOOL: return "b1";
    case CKPT_DTYPE_INT8: return "i1";
    case CKPT_DTYPE_INT16: return "i2";
    case CKPT_DTYPE_INT32: return "i4";
    case CKPT_DTYPE_INT64: return "i8";
    case CKPT_DTYPE_UINT8: return "u1";
    case CKPT_DTYPE_UINT16: return "u2";
    case CKPT_DTYPE_UINT32: return "u4";
    case CKPT_DTYPE_UINT64: return "u8";
    case CKPT_DTYPE_FLOAT16: return "f2";
    case CKPT_DTYPE_FLOAT32: return "f4";
    case CKPT_DTYPE_FLOAT64: return "f8";
    case CKPT_DTYPE_COMPLEX64: return "c8";
    case CKPT_DTYPE_COMPLEX128: return "c16";
    default: return NULL;
    }
}

/* dtype.__reduce__: (numpy.dtype, (code, False, True), (3, order, None, None, None, -1, -1, 0)) */
static ckpt_status emit_np_dtype(pk *p, ckpt_dtype d, bool big, const ckpt_value *node)
{
    int64_t *shared = node ? NULL : &p->np_dtype_memo[d];
    if (shared && *shared >= 0 && !big) {
        put_memo_get(p, (uint64_t)*shared);
        return CKPT_OK;
    }
    const char *code = np_code(d);
    if (!code) return fail(p, node, CKPT_ERR_UNSUPPORTED, "numpy has no dtype for %s", ckpt_dtype_name(d));
    int order = ckpt_dtype_itemsize(d) == 1 ? CONST_PIPE : big ? CONST_GT : CONST_LT;
    ckpt_status s = emit_global(p, "numpy", "dtype", node);
    if (s) return s;
    put_str(p, NULL, code, strlen(code));
    uint32_t idx;
    if ((s = new_memo(p, &idx))) return s;
    put_op(p, OP_NEWFALSE);
    put_op(p, OP_NEWTRUE);
    put_op(p, OP_TUPLE3);
    if ((s = new_memo(p, &idx))) return s;
    put_op(p, OP_REDUCE);
    if ((s = new_memo(p, &idx))) return s;
    if (node && !ck_ptrmap_put(&p->memo, node, idx)) return oom(p);
    if (shared && !big) *shared = idx;
    put_op(p, OP_MARK);
    put_int(p, 3);
    uint32_t oi;
    if ((s = put_const_str(p, order))) return s;
    put_op(p, OP_NONE);
    put_op(p, OP_NONE);
    put_op(p, OP_NONE);
    put_int(p, -1);
    put_int(p, -1);
    put_int(p, 0);
    put_op(p, OP_TUPLE);
    if ((s = new_memo(p, &oi))) return s;
    put_op(p, OP_BUILD);
    return CKPT_OK;
}

/* A numpy.ndarray (a tensor the numpy handlers made): _reconstruct(ndarray, (0,), b'b') + BUILD
 * (1, shape, dtype, is_fortran, raw bytes), as ndarray.__reduce__ gives it. */
static ckpt_status save_np_array(pk *p, const ckpt_value *v)
{
    const ckpt_tensor *t = v->u.tensor;
    size_t isz = ckpt_dtype_itemsize((ckpt_dtype)t->dtype);
    bool c_order = ckpt_tensor_is_contiguous(t), f_order = true;
    int64_t run = 1;
    for (uint32_t i = 0; i < t->ndim; i++) { /* column-major: strides grow from the first dimension */
        if (t->shape[i] > 1 && t->stride[i] != run) f_order = false;
        if (t->shape[i] > 1) run *= t->shape[i];
    }
    if (!t->storage || !np_code((ckpt_dtype)t->dtype) || t->is_parameter || t->extra || t->quant || t->device ||
        (!c_order && !f_order) || (t->numel && (t->storage_offset != 0 || t->numel * isz != t->storage->nbytes)))
        return fail(p, v, CKPT_ERR_UNSUPPORTED, "this numpy.ndarray cannot be written back as one");
    if (t->numel && !t->storage->data) return fail(p, v, CKPT_ERR_STATE, "array without data (loaded with CKPT_LOAD_SKIP_DATA)");
    size_t mark = seq_begin(p);
    t_global(p, "numpy.core.multiarray", "_reconstruct");
    t_global(p, "numpy", "ndarray");
    static const int64_t zero[1] = {0};
    push_ints(p, zero, 1);
    T(.op = T_NP_B);
    t_op(p, OP_TUPLE3);
    t_memo(p, NULL);
    t_op(p, OP_REDUCE);
    t_memo(p, v);
    t_op(p, OP_MARK);
    t_int(p, 1);
    push_ints(p, t->shape, t->ndim);
    T(.op = T_NP_DTYPE, .n = t->dtype, .flag = 0);
    t_bool(p, !c_order && f_order);
    T(.op = T_BYTES_OBJ, .a.s = (const char *)t->storage->data, .b.len = (size_t)(t->numel * isz));
    t_op(p, OP_TUPLE);
    t_memo(p, NULL);
    t_op(p, OP_BUILD);
    seq_end(p, mark);
    return p->status;
}

/* ---- values ---- */

static bool has_attrs(const ckpt_value *v) { return v->attrs && v->attrs->kind == CKPT_KIND_DICT && v->attrs->u.dict.len; }

/* a fresh tuple of the items of `holder` (a torch.Size's tuple(self)), memoised without a node */
static void fresh_tuple(pk *p, const ckpt_value *holder)
{
    uint32_t n = holder->u.seq.len;
    if (n == 0) {
        t_op(p, OP_EMPTY_TUPLE);
        return;
    }
    if (n > 3) t_op(p, OP_MARK);
    for (uint32_t i = 0; i < n; i++) t_save(p, holder->u.seq.items[i]);
    t_op(p, n == 1 ? OP_TUPLE1 : n == 2 ? OP_TUPLE2 : n == 3 ? OP_TUPLE3 : OP_TUPLE);
    t_memo(p, NULL);
}

static ckpt_status save_dict(pk *p, const ckpt_value *v)
{
    const char *tn = v->type_name;
    size_t mark = seq_begin(p);
    if (!tn) {
        if (has_attrs(v)) return fail(p, v, CKPT_ERR_UNSUPPORTED, "a plain dict cannot carry attributes (an OrderedDict can)");
        t_op(p, OP_EMPTY_DICT);
        t_memo(p, v);
        if (v->u.dict.len) T(.op = T_DICT_BATCH, .a.v = v, .b.start = 0, .flag = 1);
    } else if (strcmp(tn, "collections.OrderedDict") == 0) {
        /* OrderedDict.__reduce__: (OrderedDict, (), __dict__ or None, None, iter(items)) */
        t_global(p, "collections", "OrderedDict");
        t_op(p, OP_EMPTY_TUPLE);
        t_op(p, OP_REDUCE);
        t_memo(p, v);
        if (v->u.dict.len) T(.op = T_DICT_BATCH, .a.v = v, .b.start = 0, .flag = 0);
        if (has_attrs(v)) {
            t_save(p, v->attrs);
            t_op(p, OP_BUILD);
        }
    } else if (strcmp(tn, "collections.Counter") == 0) {
        if (has_attrs(v)) return fail(p, v, CKPT_ERR_UNSUPPORTED, "a Counter with attributes cannot be written");
        /* Counter.__reduce__: (Counter, (dict(self),)) */
        t_global(p, "collections", "Counter");
        t_op(p, OP_EMPTY_DICT);
        t_memo(p, NULL);
        if (v->u.dict.len) T(.op = T_DICT_BATCH, .a.v = v, .b.start = 0, .flag = 1);
        t_op(p, OP_TUPLE1);
        t_memo(p, NULL);
        t_op(p, OP_REDUCE);
        t_memo(p, v);
    } else {
        return fail(p, v, CKPT_ERR_UNSUPPORTED, "a dict of type %s cannot be written", tn);
    }
    seq_end(p, mark);
    return p->status;
}

static ckpt_status save_object(pk *p, const ckpt_value *v)
{
    const ck_object *o = v->u.obj;
    if (!o->module || !o->name || strcmp(o->module, "?") == 0)
        return fail(p, v, CKPT_ERR_UNSUPPORTED, "an object recorded by a scan (not a load) cannot be written");
    if (v->kind == CKPT_KIND_OBJECT && !o->args && o->state && o->state->kind == CKPT_KIND_STR && !o->list_items &&
        !o->dict_items) {
        /* an Enum member by name, as Python >= 3.11 pickles it: getattr(EnumClass, 'NAME'). builtins.getattr
         * is never allowed as such; like the loader, the writer uses it only this way and with an allowed class */
        if (!ck_registry_lookup(p->reg, o->module, o->name))
            return fail(p, v, CKPT_ERR_BLOCKED, "the value needs the global '%s.%s', which the save registry does not "
                        "allow", o->module, o->name);
        size_t mark = seq_begin(p);
        T(.op = T_GLOBAL, .a.s = "builtins", .b.s = "getattr", .flag = 1);
        t_global(p, o->module, o->name);
        t_save(p, o->state);
        t_op(p, OP_TUPLE2);
        t_memo(p, NULL);
        t_op(p, OP_REDUCE);
        t_memo(p, v);
        seq_end(p, mark);
        return p->status;
    }
    if (o->kwargs && o->kwargs->kind == CKPT_KIND_DICT && o->kwargs->u.dict.len)
        return fail(p, v, CKPT_ERR_UNSUPPORTED,
                    "%s.%s was built with keyword arguments (NEWOBJ_EX), which protocol 2 cannot express", o->module, o->name);
    if (o->args && o->args->kind != CKPT_KIND_TUPLE)
        return fail(p, v, CKPT_ERR_UNSUPPORTED, "%s.%s: arguments that are not a tuple cannot be written", o->module,
                    o->name);
    size_t mark = seq_begin(p);
    t_global(p, o->module, o->name);
    if (o->args) t_save(p, o->args);
    else t_op(p, OP_EMPTY_TUPLE);
    /* NEWOBJ (cls.__new__) unless the pickle called the class or function */
    t_op(p, v->kind == CKPT_KIND_OBJECT && !(v->flags & CK_NF_CALLED) ? OP_NEWOBJ : OP_REDUCE);
    t_memo(p, v);
    if (o->list_items && o->list_items->u.seq.len) T(.op = T_LIST_BATCH, .a.v = o->list_items, .b.start = 0, .flag = 0);
    if (o->dict_items && o->dict_items->u.dict.len) T(.op = T_DICT_BATCH, .a.v = o->dict_items, .b.start = 0, .flag = 0);
    if (o->state) {
        t_save(p, o->state);
        t_op(p, OP_BUILD);
    }
    seq_end(p, mark);
    return p->status;
}

static ckpt_status save_value(pk *p, const ckpt_value *v)
{
    uint32_t idx;
    if (ck_ptrmap_get(&p->memo, v, &idx)) {
        put_memo_get(p, idx);
        return CKPT_OK;
    }
    size_t mark = seq_begin(p);
    switch ((ckpt_kind)v->kind) {
    case CKPT_KIND_NONE: put_op(p, OP_NONE); return CKPT_OK;
    case CKPT_KIND_BOOL: put_op(p, v->u.b ? OP_NEWTRUE : OP_NEWFALSE); return CKPT_OK;
    case CKPT_KIND_INT:
        if (v->flags & CK_NF_BIGINT) return put_bigint(p, v);
        put_int(p, v->u.i);
        return CKPT_OK;
    case CKPT_KIND_FLOAT: put_float(p, v->u.f); return CKPT_OK;
    case CKPT_KIND_STR: {
        ckpt_status s = put_str(p, v, v->u.s.ptr, v->u.s.len);
        return s ? s : memoize(p, v);
    }
    case CKPT_KIND_COMPLEX:
        t_global(p, "builtins", "complex");
        T(.op = T_FLOAT, .a.f = v->u.c.re);
        T(.op = T_FLOAT, .a.f = v->u.c.im);
        t_op(p, OP_TUPLE2);
        t_memo(p, NULL);
        break;
    case CKPT_KIND_BYTES:
        if (v->u.s.len == 0) {
            t_global(p, "builtins", "bytes");
            t_op(p, OP_EMPTY_TUPLE);
        } else {
            t_global(p, "_codecs", "encode");
            T(.op = T_LATIN1_STR, .a.s = v->u.s.ptr, .b.len = v->u.s.len);
            T(.op = T_CONST_STR, .n = CONST_LATIN1);
            t_op(p, OP_TUPLE2);
            t_memo(p, NULL);
        }
        break;
    case CKPT_KIND_BYTEARRAY:
        t_global(p, "builtins", "bytearray");
        if (v->u.s.len == 0) {
            t_op(p, OP_EMPTY_TUPLE);
        } else {
            T(.op = T_BYTES_OBJ, .a.s = v->u.s.ptr, .b.len = v->u.s.len);
            t_op(p, OP_TUPLE1);
            t_memo(p, NULL);
        }
        break;
    case CKPT_KIND_LIST:
        put_op(p, OP_EMPTY_LIST);
        if (memoize(p, v)) return p->status;
        if (v->u.seq.len) T(.op = T_LIST_BATCH, .a.v = v, .b.start = 0, .flag = 1);
        seq_end(p, mark);
        return p->status;
    case CKPT_KIND_TUPLE: {
        if (v->type_name && strcmp(v->type_name, "torch.Size") == 0) {
            t_global(p, "torch", "Size");
            fresh_tuple(p, v);
            t_op(p, OP_TUPLE1);
            t_memo(p, NULL);
            break;
        }
        if (v->type_name) return fail(p, v, CKPT_ERR_UNSUPPORTED, "a tuple of type %s cannot be written", v->type_name);
        uint32_t n = v->u.seq.len;
        if (n == 0) {
            put_op(p, OP_EMPTY_TUPLE);
            return CKPT_OK;
        }
        /* a tuple reached again before it is finished can only end if a list or dict in between was
         * memoised (Python's "subtle" case); a third entry means a cycle of tuples only */
        uint32_t busy;
        if (!ck_ptrmap_add(&p->tuple_busy, v, 1, &busy)) return oom(p);
        if (busy > 2) return fail(p, v, CKPT_ERR_UNSUPPORTED, "a tuple contains itself through tuples only (not picklable)");
        if (n > 3) t_op(p, OP_MARK);
        for (uint32_t i = 0; i < n; i++) t_save(p, v->u.seq.items[i]);
        T(.op = T_TUPLE_END, .a.v = v, .n = n);
        seq_end(p, mark);
        return p->status;
    }
    case CKPT_KIND_DICT: return save_dict(p, v);
    case CKPT_KIND_SET:
    case CKPT_KIND_FROZENSET:
        /* protocol < 4: set(list) / frozenset(list) */
        t_global(p, "builtins", v->kind == CKPT_KIND_SET ? "set" : "frozenset");
        t_op(p, OP_EMPTY_LIST);
        t_memo(p, NULL);
        if (v->u.seq.len) T(.op = T_LIST_BATCH, .a.v = v, .b.start = 0, .flag = 1);
        t_op(p, OP_TUPLE1);
        t_memo(p, NULL);
        break;
    case CKPT_KIND_TENSOR:
        if (v->u.tensor->type_name && strcmp(v->u.tensor->type_name, "numpy.ndarray") == 0) return save_np_array(p, v);
        return emit_tensor(p, v->u.tensor, v, 0);
    case CKPT_KIND_SPARSE: return save_sparse(p, v);
    case CKPT_KIND_STORAGE: {
        const ckpt_storage *st = v->u.storage;
        return emit_pid(p, st, (ckpt_dtype)st->dtype, v);
    }
    case CKPT_KIND_DTYPE:
        if (v->type_name && strcmp(v->type_name, "numpy.dtype") == 0)
            return emit_np_dtype(p, (ckpt_dtype)v->u.dtype, v->flags & CK_NF_BIG_ENDIAN, v);
        return emit_global(p, "torch", ckpt_dtype_name((ckpt_dtype)v->u.dtype), v);
    case CKPT_KIND_DEVICE: {
        /* torch.device.__reduce__: (device, ('cuda', 0)) or (device, ('cpu',)) */
        const char *d = v->u.s.ptr, *colon = memchr(d, ':', v->u.s.len);
        t_global(p, "torch", "device");
        T(.op = T_STR, .a.s = d, .b.len = colon ? (size_t)(colon - d) : v->u.s.len);
        if (colon) {
            int64_t index;
            if (ck_parse_decimal_i64(colon + 1, v->u.s.len - (size_t)(colon - d) - 1, &index) != CK_INT_OK)
                return fail(p, v, CKPT_ERR_UNSUPPORTED, "invalid device string '%s'", d);
            t_int(p, index);
        }
        t_op(p, colon ? OP_TUPLE2 : OP_TUPLE1);
        t_memo(p, NULL);
        break;
    }
    case CKPT_KIND_GLOBAL:
        if (v->type_name && strcmp(v->type_name, "torch.layout") == 0) {
            int li = layout_index(v->u.global.name);
            if (li < 0) return fail(p, v, CKPT_ERR_UNSUPPORTED, "unknown layout '%s'", v->u.global.name);
            return emit_layout(p, li);
        }
        return emit_global(p, v->u.global.module, v->u.global.name, v);
    case CKPT_KIND_OBJECT:
    case CKPT_KIND_CALL: return save_object(p, v);
    default: return fail(p, v, CKPT_ERR_UNSUPPORTED, "a value of kind %d cannot be written", v->kind);
    }
    /* the reductions above end the same way: REDUCE, then memoise the object */
    t_op(p, OP_REDUCE);
    t_memo(p, v);
    seq_end(p, mark);
    return p->status;
}

/* ---- the task loop ---- */

static ckpt_status run_batch_list(pk *p, const task *t)
{
    const ckpt_value *v = t->a.v;
    uint32_t n = v->u.seq.len;
    uint64_t start = t->b.start;
    bool exact = t->flag;
    uint64_t end = CK_MIN((uint64_t)n, start + BATCH), count = end - start;
    size_t mark = seq_begin(p);
    if (exact && n == 1) {
        t_save(p, v->u.seq.items[0]);
        t_op(p, OP_APPEND);
    } else if (!exact && count == 1) {
        t_save(p, v->u.seq.items[start]);
        t_op(p, OP_APPEND);
    } else if (count) {
        t_op(p, OP_MARK);
        for (uint64_t i = start; i < end; i++) t_save(p, v->u.seq.items[i]);
        t_op(p, OP_APPENDS);
        /* exact lists stop at the end; iterators fetch again after a full batch */
        if (end < n) T(.op = T_LIST_BATCH, .a.v = v, .b.start = end, .flag = t->flag);
    }
    seq_end(p, mark);
    return p->status;
}

static ckpt_status run_batch_dict(pk *p, const task *t)
{
    const ckpt_value *v = t->a.v;
    uint32_t n = v->u.dict.len;
    uint64_t start = t->b.start;
    bool exact = t->flag;
    uint64_t end = CK_MIN((uint64_t)n, start + BATCH), count = end - start;
    size_t mark = seq_begin(p);
    if ((exact && n == 1) || (!exact && count == 1)) {
        t_save(p, v->u.dict.entries[start].key);
        t_save(p, v->u.dict.entries[start].val);
        t_op(p, OP_SETITEM);
    } else if (exact || count) {
        /* an exact dict writes MARK ... SETITEMS while batches are full, even an empty last one */
        t_op(p, OP_MARK);
        for (uint64_t i = start; i < end; i++) {
            t_save(p, v->u.dict.entries[i].key);
            t_save(p, v->u.dict.entries[i].val);
        }
        t_op(p, OP_SETITEMS);
        if (count == BATCH && (exact || end < n)) T(.op = T_DICT_BATCH, .a.v = v, .b.start = end, .flag = t->flag);
    }
    seq_end(p, mark);
    return p->status;
}

/* bytes decoded as latin-1: each byte is one code point, written as UTF-8 */
static ckpt_status put_latin1_str(pk *p, const char *s, size_t n)
{
    size_t extra = 0;
    for (size_t i = 0; i < n; i++) extra += (uint8_t)s[i] >= 0x80;
    size_t total;
    if (ck_add_overflow_size(n, extra, &total) || total > UINT32_MAX)
        return fail(p, NULL, CKPT_ERR_LIMIT, "bytes of %zu bytes do not fit protocol 2", n);
    ck_bb_u8(p->out, OP_BINUNICODE);
    ck_bb_le32(p->out, (uint32_t)total);
    if (!ck_bb_reserve(p->out, total)) return oom(p);
    uint8_t *o = p->out->p + p->out->len;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c < 0x80) {
            *o++ = c;
        } else {
            *o++ = (uint8_t)(0xc0 | (c >> 6));
            *o++ = (uint8_t)(0x80 | (c & 0x3f));
        }
    }
    p->out->len += total;
    uint32_t idx;
    return new_memo(p, &idx);
}

static ckpt_status run_task(pk *p, const task *t)
{
    switch ((task_op)t->op) {
    case T_SAVE: return save_value(p, t->a.v);
    case T_OP: put_op(p, (uint8_t)t->n); return CKPT_OK;
    case T_MEMO: return memoize(p, t->a.v);
    case T_TUPLE_END: {
        const ckpt_value *v = t->a.v;
        uint32_t idx, busy;
        ck_ptrmap_add(&p->tuple_busy, v, -1, &busy);
        if (ck_ptrmap_get(&p->memo, v, &idx)) {
            /* the tuple was written while its items were (a recursive reference): use that copy */
            if (t->n <= 3) {
                for (uint32_t i = 0; i < t->n; i++) put_op(p, OP_POP);
            } else {
                put_op(p, OP_POP_MARK);
            }
            put_memo_get(p, idx);
            return CKPT_OK;
        }
        put_op(p, t->n == 1 ? OP_TUPLE1 : t->n == 2 ? OP_TUPLE2 : t->n == 3 ? OP_TUPLE3 : OP_TUPLE);
        return memoize(p, v);
    }
    case T_LIST_BATCH: return run_batch_list(p, t);
    case T_DICT_BATCH: return run_batch_dict(p, t);
    case T_GLOBAL: return emit_global_checked(p, t->a.s, t->b.s, NULL, t->flag == 0);
    case T_CONST_STR: return put_const_str(p, (int)t->n);
    case T_NP_B: {
        if (p->np_b_memo >= 0) {
            put_memo_get(p, (uint64_t)p->np_b_memo);
            return CKPT_OK;
        }
        ckpt_status st = emit_global(p, "_codecs", "encode", NULL);
        uint32_t idx;
        if (!st) st = put_str(p, NULL, "b", 1);
        if (!st) st = new_memo(p, &idx);
        if (!st) st = put_const_str(p, CONST_LATIN1);
        if (st) return st;
        put_op(p, OP_TUPLE2);
        if ((st = new_memo(p, &idx))) return st;
        put_op(p, OP_REDUCE);
        if ((st = new_memo(p, &idx))) return st;
        p->np_b_memo = idx;
        return CKPT_OK;
    }
    case T_STR: {
        uint32_t idx;
        if (t->flag == STR_KEY) { /* slots and records are created together: slot k is record k */
            slot_info *si = &p->slots[t->n];
            if (si->key_memo >= 0) {
                put_memo_get(p, (uint64_t)si->key_memo);
                return CKPT_OK;
            }
            char key[16];
            snprintf(key, sizeof key, "%u", t->n);
            put_str(p, NULL, key, strlen(key));
            ckpt_status st = new_memo(p, &idx);
            si->key_memo = idx;
            return st;
        }
        ckpt_status st = put_str(p, NULL, t->a.s, t->b.len);
        return st ? st : new_memo(p, &idx);
    }
    case T_LATIN1_STR: return put_latin1_str(p, t->a.s, t->b.len);
    case T_INT: put_int(p, t->a.i); return CKPT_OK;
    case T_FLOAT: put_float(p, t->a.f); return CKPT_OK;
    case T_BOOL: put_op(p, t->n ? OP_NEWTRUE : OP_NEWFALSE); return CKPT_OK;
    case T_INTS: {
        if (t->n == 0) {
            put_op(p, OP_EMPTY_TUPLE);
            return CKPT_OK;
        }
        if (t->n > 3) put_op(p, OP_MARK);
        for (uint32_t i = 0; i < t->n; i++) put_int(p, t->a.ints[i]);
        put_op(p, t->n == 1 ? OP_TUPLE1 : t->n == 2 ? OP_TUPLE2 : t->n == 3 ? OP_TUPLE3 : OP_TUPLE);
        uint32_t idx;
        return new_memo(p, &idx);
    }
    case T_PID: return emit_pid(p, t->a.st, (ckpt_dtype)t->n, NULL);
    case T_TENSOR: return emit_tensor(p, t->b.t, t->a.v, t->flag);
    case T_NP_DTYPE: return emit_np_dtype(p, (ckpt_dtype)t->n, t->flag, t->a.v);
    case T_LAYOUT: return emit_layout(p, (int)t->n);
    case T_ODICT_NEW: {
        ckpt_status s = emit_global(p, "collections", "OrderedDict", NULL);
        if (s) return s;
        put_op(p, OP_EMPTY_TUPLE);
        put_op(p, OP_REDUCE);
        uint32_t idx;
        return new_memo(p, &idx);
    }
    case T_BYTES_OBJ: {
        size_t mark = seq_begin(p);
        if (t->b.len == 0) { /* b'' pickles as bytes() */
            t_global(p, "builtins", "bytes");
            t_op(p, OP_EMPTY_TUPLE);
            t_op(p, OP_REDUCE);
            t_memo(p, NULL);
            seq_end(p, mark);
            return p->status;
        }
        t_global(p, "_codecs", "encode");
        T(.op = T_LATIN1_STR, .a.s = t->a.s, .b.len = t->b.len);
        T(.op = T_CONST_STR, .n = CONST_LATIN1);
        t_op(p, OP_TUPLE2);
        t_memo(p, NULL);
        t_op(p, OP_REDUCE);
        t_memo(p, NULL);
        seq_end(p, mark);
        return p->status;
    }
    }
    return fail(p, NULL, CKPT_ERR_STATE, "internal: unknown pickler task");
}

static void pk_release(pk *p)
{
    free(p->tasks);
    ck_ptrmap_release(&p->memo);
    ck_ptrmap_release(&p->tuple_busy);
    ck_ptrmap_release(&p->storage_slot);
    ck_strmap_release(&p->globals);
    ck_strmap_release(&p->by_digest);
    for (size_t i = 0; i < p->nglobal_keys; i++) free(p->global_keys[i]);
    free(p->global_keys);
    for (size_t i = 0; i < p->ndigest_keys; i++) free(p->digest_keys[i]);
    free(p->digest_keys);
    free(p->slots);
}

void ck_pickle_result_release(ck_pickle_result *r)
{
    ck_bb_free(&r->pickle);
    free(r->storages);
    memset(r, 0, sizeof *r);
}

#define FLUSH_AT (1u << 20)

ckpt_status ck_pickle_tree(const ckpt_value *root, const ckpt_registry *registry, bool dedup, ck_pickle_flush_fn flush,
                           void *flush_ctx, ck_pickle_result *out, ckpt_error *err)
{
    memset(out, 0, sizeof *out);
    pk p;
    memset(&p, 0, sizeof p);
    p.out = &out->pickle;
    p.err = err;
    p.reg = registry;
    p.dedup = dedup;
    p.res = out;
    for (int i = 0; i < CONST_COUNT; i++) p.const_memo[i] = -1;
    for (int i = 0; i < CKPT_DTYPE_COUNT_; i++) p.np_dtype_memo[i] = -1;
    p.np_b_memo = -1;
    for (int i = 0; i < 8; i++) p.layout_memo[i] = -1;
    ck_ptrmap_init(&p.memo);
    ck_ptrmap_init(&p.tuple_busy);
    ck_ptrmap_init(&p.storage_slot);
    ck_strmap_init(&p.globals, NULL);
    ck_strmap_init(&p.by_digest, NULL);

    ck_bb_u8(p.out, OP_PROTO);
    ck_bb_u8(p.out, 2);
    t_save(&p, root);
    while (p.ntasks && !p.status) {
        task t = p.tasks[--p.ntasks];
        if (run_task(&p, &t) != CKPT_OK && !p.status) p.status = ckpt_error_code(err) ? ckpt_error_code(err) : CKPT_ERR_STATE;
        if (p.out->failed && !p.status) oom(&p);
        if (!p.status && flush && p.out->len >= FLUSH_AT) {
            p.status = flush(flush_ctx, p.out->p, p.out->len, err);
            p.out->len = 0;
        }
    }
    if (!p.status) put_op(&p, OP_STOP);
    if (!p.status && p.out->failed) oom(&p);
    if (!p.status && flush) {
        p.status = flush(flush_ctx, p.out->p, p.out->len, err);
        p.out->len = 0;
    }
    ckpt_status s = p.status;
    if (s && p.failed_at && err) {
        char *path = ck_path_of(root, p.failed_at);
        if (path) {
            ck_error_append(err, " (at key '%s')", *path ? path : "<root>");
            free(path);
        }
    }
    pk_release(&p);
    if (s) ck_pickle_result_release(out);
    return s;
}
