/*
 * globals_builtin.c: allowed Python builtins and collections, turned into plain values.
 * Each handler checks the argument count and types the way Python's constructor would, and copies what
 * it keeps (the pickle can still mutate the arguments afterwards).
 */
#include <string.h>

#include "globals.h"
#include "text.h"
#include "util.h"

ckpt_value *ck_new_typed_dict(ck_store *st, const char *type_name, size_t cap)
{
    ckpt_value *d = ck_new_dict(st, cap);
    if (d) d->type_name = type_name;
    return d;
}

/* Entries of an iterable of 2-item tuples/lists into d. */
static ckpt_status add_pairs(ck_unpickler *u, const ck_reg_entry *e, ckpt_value *d, ckpt_value *pairs, ckpt_error *err)
{
    if (pairs->kind == CKPT_KIND_DICT) {
        for (uint32_t i = 0; i < pairs->u.dict.len; i++) {
            ckpt_status s = ck_dict_set(u->store, d, pairs->u.dict.entries[i].key, pairs->u.dict.entries[i].val, err);
            if (s) return s;
        }
        return CKPT_OK;
    }
    if (!ck_is_seq(pairs))
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: argument must be a dict or a list of pairs, got %s", e->module,
                            e->name, ck_type_name(pairs));
    for (uint32_t i = 0; i < pairs->u.seq.len; i++) {
        ckpt_value *p = pairs->u.seq.items[i];
        if (!ck_is_seq(p) || p->u.seq.len != 2)
            return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: item %u is not a (key, value) pair", e->module, e->name, i);
        ckpt_status s = ck_dict_set(u->store, d, p->u.seq.items[0], p->u.seq.items[1], err);
        if (s) return s;
    }
    return CKPT_OK;
}

static ckpt_status no_kwargs(const ck_reg_entry *e, ckpt_value *kwargs, ckpt_error *err)
{
    if (kwargs && kwargs->u.dict.len)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: keyword arguments are not accepted", e->module, e->name);
    return CKPT_OK;
}

static ckpt_status dict_like(ck_unpickler *u, const ck_reg_entry *e, const char *type_name, ckpt_value *args,
                             ckpt_value *kwargs, ckpt_value **out, ckpt_error *err)
{
    ckpt_status s = no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 0, 1, err);
    if (s) return s;
    ckpt_value *d = ck_new_typed_dict(u->store, type_name, 0);
    if (!d) return ck_out_of_memory(u->store, err);
    if (args->u.seq.len == 1 && (s = add_pairs(u, e, d, args->u.seq.items[0], err))) return s;
    *out = d;
    return CKPT_OK;
}

CK_HANDLER(ck_h_ordered_dict) { return dict_like(u, e, "collections.OrderedDict", args, kwargs, out, err); }
CK_HANDLER(ck_h_counter) { return dict_like(u, e, "collections.Counter", args, kwargs, out, err); }

static ckpt_status set_like(ck_unpickler *u, const ck_reg_entry *e, ckpt_kind kind, ckpt_value *args, ckpt_value *kwargs,
                            ckpt_value **out, ckpt_error *err)
{
    ckpt_status s = no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 0, 1, err);
    if (s) return s;
    ckpt_value *set = ck_new_seq(u->store, kind, 0);
    if (!set) return ck_out_of_memory(u->store, err);
    if (args->u.seq.len == 1) {
        ckpt_value *it = args->u.seq.items[0];
        if (it->kind == CKPT_KIND_DICT) {
            for (uint32_t i = 0; i < it->u.dict.len; i++)
                if ((s = ck_set_add(u->store, set, it->u.dict.entries[i].key, err))) return s;
        } else if (ck_is_seq(it) || it->kind == CKPT_KIND_SET || it->kind == CKPT_KIND_FROZENSET) {
            for (uint32_t i = 0; i < it->u.seq.len; i++)
                if ((s = ck_set_add(u->store, set, it->u.seq.items[i], err))) return s;
        } else {
            return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: argument must be a list, tuple or set, got %s", e->module,
                                e->name, ck_type_name(it));
        }
    }
    *out = set;
    return CKPT_OK;
}

CK_HANDLER(ck_h_set) { return set_like(u, e, CKPT_KIND_SET, args, kwargs, out, err); }
CK_HANDLER(ck_h_frozenset) { return set_like(u, e, CKPT_KIND_FROZENSET, args, kwargs, out, err); }

static bool is_encoding(const char *enc, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(enc, names[i]) == 0) return true;
    return false;
}

static const char *const latin1_names[] = {"latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1", "l1"};
static const char *const utf8_names[] = {"utf-8", "utf8", "utf_8"};
static const char *const ascii_names[] = {"ascii", "us-ascii"};

/* Python's str.encode for the encodings pickles use: latin-1 (protocol 2 bytes), utf-8, ascii. */
static ckpt_status encode_str(ck_unpickler *u, const ck_reg_entry *e, ckpt_value *str, const char *enc, ckpt_kind kind,
                              ckpt_value **out, ckpt_error *err)
{
    const uint8_t *p = (const uint8_t *)str->u.s.ptr;
    size_t n = str->u.s.len;
    if (is_encoding(enc, utf8_names, CK_ARRAY_LEN(utf8_names))) {
        if (!ck_utf8_valid(p, n, false))
            return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: string has lone surrogates, not encodable as UTF-8",
                                e->module, e->name);
        *out = ck_new_bytes_kind(u->store, kind, p, n);
        return *out ? CKPT_OK : ck_out_of_memory(u->store, err);
    }
    bool latin1 = is_encoding(enc, latin1_names, CK_ARRAY_LEN(latin1_names));
    bool ascii = is_encoding(enc, ascii_names, CK_ARRAY_LEN(ascii_names));
    if (!latin1 && !ascii)
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: encoding '%s' is not supported (latin-1, utf-8, ascii are)",
                            e->module, e->name, enc);
    /* decode UTF-8 code points; each must fit one byte */
    uint8_t *buf = ck_arena_alloc(&u->store->arena, n + 1, 1);
    if (!buf) return ck_out_of_memory(u->store, err);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp = p[i];
        size_t len = 1;
        if (cp >= 0xc0 && cp < 0xe0 && i + 1 < n) { cp = ((cp & 0x1f) << 6) | (p[i + 1] & 0x3f); len = 2; }
        else if (cp >= 0x80) cp = 0x110000; /* 3- and 4-byte sequences are all > 0xff */
        if (cp > (ascii ? 0x7fu : 0xffu))
            return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: string has characters outside %s", e->module, e->name,
                                ascii ? "ASCII" : "latin-1");
        buf[o++] = (uint8_t)cp;
        i += len;
    }
    ckpt_value *v = ck_new(u->store, kind);
    if (!v) return ck_out_of_memory(u->store, err);
    buf[o] = '\0';
    v->u.s.ptr = (const char *)buf;
    v->u.s.len = o;
    *out = v;
    return CKPT_OK;
}

CK_HANDLER(ck_h_codecs_encode)
{
    /* _codecs.encode(str, encoding): how protocol 2 pickles bytes under Python 3 */
    ckpt_status s = no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 1, 2, err);
    if (s) return s;
    ckpt_value *str;
    const char *enc = "utf-8";
    if ((s = ck_arg_kind(e, args, 0, CKPT_KIND_STR, &str, err))) return s;
    if (args->u.seq.len == 2 && (s = ck_arg_str(e, args, 1, &enc, NULL, err))) return s;
    return encode_str(u, e, str, enc, CKPT_KIND_BYTES, out, err);
}

static ckpt_status bytes_like(ck_unpickler *u, const ck_reg_entry *e, ckpt_kind kind, ckpt_value *args, ckpt_value *kwargs,
                              ckpt_value **out, ckpt_error *err)
{
    ckpt_status s = no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 0, 2, err);
    if (s) return s;
    size_t n = args->u.seq.len;
    if (n == 0) {
        *out = ck_new_bytes_kind(u->store, kind, "", 0);
        return *out ? CKPT_OK : ck_out_of_memory(u->store, err);
    }
    ckpt_value *a = args->u.seq.items[0];
    if (n == 1 && (a->kind == CKPT_KIND_BYTES || a->kind == CKPT_KIND_BYTEARRAY)) {
        *out = ck_new_bytes_kind(u->store, kind, a->u.s.ptr, a->u.s.len);
        return *out ? CKPT_OK : ck_out_of_memory(u->store, err);
    }
    if (n == 2 && a->kind == CKPT_KIND_STR) {
        const char *enc;
        if ((s = ck_arg_str(e, args, 1, &enc, NULL, err))) return s;
        return encode_str(u, e, a, enc, kind, out, err);
    }
    return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: expected (), (bytes,) or (str, encoding) arguments", e->module,
                        e->name);
}

CK_HANDLER(ck_h_bytearray) { return bytes_like(u, e, CKPT_KIND_BYTEARRAY, args, kwargs, out, err); }
CK_HANDLER(ck_h_bytes) { return bytes_like(u, e, CKPT_KIND_BYTES, args, kwargs, out, err); }

static bool to_double(const ckpt_value *v, double *d)
{
    if (v->kind == CKPT_KIND_FLOAT) { *d = v->u.f; return true; }
    if (ck_is_small_int(v)) { *d = (double)ck_small_int(v); return true; }
    return false;
}

CK_HANDLER(ck_h_complex)
{
    ckpt_status s = no_kwargs(e, kwargs, err);
    if (!s) s = ck_arg_count(e, args, 0, 2, err);
    if (s) return s;
    double re = 0, im = 0;
    size_t n = args->u.seq.len;
    if ((n >= 1 && !to_double(args->u.seq.items[0], &re)) || (n == 2 && !to_double(args->u.seq.items[1], &im)))
        return ck_error_set(err, CKPT_ERR_PICKLE, "%s.%s: arguments must be int or float", e->module, e->name);
    ckpt_value *v = ck_new(u->store, CKPT_KIND_COMPLEX);
    if (!v) return ck_out_of_memory(u->store, err);
    v->u.c.re = re;
    v->u.c.im = im;
    *out = v;
    return CKPT_OK;
}
