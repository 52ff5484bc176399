/*
 * legacy.c: the legacy stream format: torch.save before PyTorch 1.6, and since then with
 * _use_new_zipfile_serialization=False (docs/pytorch-format-notes.md §3.5; torch 1.13
 * torch/serialization.py _legacy_save at line 430 and _legacy_load at line 815).
 *
 * The file is a sequence of pickles followed by raw data, all read with the one restricted VM:
 *   1. the magic number 0x1950a86a20f9469cfc6c      2. the protocol version 1001
 *   3. sys_info {protocol_version, little_endian, type_sizes{short, int, long}}
 *   4. the object; its persistent ids are ('storage', storage_type, root_key, location, numel, view)
 *      with view None or (view_key, offset, numel) (a slice of the root, written by torch <= 0.4), or
 *      ('module', cls, source_file, source) for the classes of a whole-model pickle
 *   5. the list of root storage keys, in the order their data follows
 *   6. per key: an int64 element count, then count x itemsize bytes of little-endian data.
 * PyTorch always wrote the data little-endian (THPStorage_writeFileRaw encodes it on big-endian hosts);
 * the count was written in host order before 1.5, so a file whose sys_info says big-endian may carry
 * big-endian counts. Every count is checked against the size the pickle declared before it is used.
 */
#include <stdio.h>
#include <string.h>

#include "dtype.h"
#include "formats.h"
#include "sniff.h"
#include "tensors.h"

/* 0x1950a86a20f9469cfc6c as little-endian two's complement (what LONG1 carries). */
static const uint8_t magic_le[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

static bool is_magic(const ckpt_value *v)
{
    return v && v->kind == CKPT_KIND_INT && (v->flags & CK_NF_BIGINT) && v->u.big.len == sizeof magic_le &&
           memcmp(v->u.big.bytes, magic_le, sizeof magic_le) == 0;
}

const char *ck_text_of(const ckpt_value *v)
{
    return v && (v->kind == CKPT_KIND_STR || v->kind == CKPT_KIND_BYTES) ? v->u.s.ptr : NULL;
}

bool ck_legacy_probe(const uint8_t *data, size_t len)
{
    /* the first pickle, in scan mode (nothing is resolved or called) with a small budget */
    ck_limits lim;
    ck_limits_resolve(NULL, len, &lim);
    lim.max_alloc = 1u << 20;
    lim.max_opcodes = 1024;
    ck_store st;
    ck_store_init(&st, lim.max_alloc);
    ck_unpickler u;
    ck_unpickler_init(&u, &st, &lim);
    u.mode = CK_MODE_SCAN;
    ckpt_error err;
    ck_error_init(&err);
    size_t pos = 0;
    ckpt_value *v = NULL;
    bool yes = ck_unpickle(&u, data, len, &pos, &v, &err) == CKPT_OK && is_magic(v);
    ck_store_release(&st);
    return yes;
}

ckpt_status ck_module_pid(ckpt_checkpoint *c, ckpt_value *cls, ckpt_value **out, ckpt_error *err)
{
    if (c->accept_module_pids) {
        /* model mode: torch returns the class itself, which NEWOBJ then instantiates (model_globals.c) */
        if (cls->kind != CKPT_KIND_GLOBAL)
            return ck_error_set(err, CKPT_ERR_PICKLE, "module persistent id: the class must be a global, got %s",
                                ck_type_name(cls));
        *out = cls;
        return CKPT_OK;
    }
    const char *module = cls->kind == CKPT_KIND_GLOBAL ? cls->u.global.module : "?";
    const char *name = cls->kind == CKPT_KIND_GLOBAL ? cls->u.global.name : "?";
    ck_error_set(err, CKPT_ERR_BLOCKED,
                 "this is a whole-model pickle (torch.save(model)): it stores the module class %s.%s (with its source "
                 "code) as a persistent id. The weights-only loader refuses module classes; save "
                 "model.state_dict() instead, or read it in model mode (CKPT_LOAD_MODEL; CLI: --model), which records the "
                 "classes as opaque objects without running them",
                 module, name);
    if (cls->kind == CKPT_KIND_GLOBAL) ck_error_set_global(err, module, name);
    return CKPT_ERR_BLOCKED;
}

static ckpt_status legacy_persistent_load(ck_unpickler *u, void *ctx, ckpt_value *pid, ckpt_value **out, ckpt_error *err)
{
    (void)u;
    ckpt_checkpoint *c = ctx;
    if (pid->kind != CKPT_KIND_TUPLE || pid->u.seq.len == 0)
        return ck_error_set(err, CKPT_ERR_PICKLE, "persistent id must be a tuple ('storage', ...) or ('module', ...), got %s",
                            ck_type_name(pid));
    ckpt_value **it = pid->u.seq.items;
    const char *tag = ck_text_of(it[0]);
    if (tag && strcmp(tag, "module") == 0 && pid->u.seq.len == 4) return ck_module_pid(c, it[1], out, err);
    if (!tag || strcmp(tag, "storage") != 0)
        return ck_error_set(err, CKPT_ERR_PICKLE, "unknown persistent id type%s%s (only 'storage' and 'module' exist)",
                            tag ? " " : "", tag ? tag : "");
    if (pid->u.seq.len != 6)
        return ck_error_set(err, CKPT_ERR_PICKLE, "persistent id has %u items; ('storage', type, key, location, numel, "
                            "view_metadata) expected", pid->u.seq.len);
    const ckpt_value *ty = it[1];
    if (ty->kind != CKPT_KIND_GLOBAL || !ty->u.global.entry || ty->u.global.entry->kind != CK_G_STORAGE_TYPE)
        return ck_error_set(err, CKPT_ERR_PICKLE, "persistent id: storage type must be a storage class, got %s",
                            ck_type_name(ty));
    ckpt_dtype dtype = (ckpt_dtype)ty->u.global.entry->dtype;
    bool untyped = ty->u.global.entry->flags & CK_RF_UNTYPED;
    const char *key = ck_text_of(it[2]), *location = ck_text_of(it[3]);
    if (!key || it[2]->u.s.len == 0 || it[2]->u.s.len > 128 || memchr(key, '\0', it[2]->u.s.len))
        return ck_error_set(err, CKPT_ERR_PICKLE, "persistent id: storage key must be a short string");
    if (!location) return ck_error_set(err, CKPT_ERR_PICKLE, "persistent id: location must be a string");
    if (it[4]->kind != CKPT_KIND_INT || !ck_is_small_int(it[4]) || it[4]->u.i < 0)
        return ck_error_set(err, CKPT_ERR_PICKLE, "persistent id: numel must be a non-negative 64-bit int");
    ckpt_value *root;
    ckpt_status s = ck_checkpoint_storage(c, key, it[2]->u.s.len, dtype, untyped, location, it[3]->u.s.len,
                                          (uint64_t)it[4]->u.i, &root, err);
    if (s) return s;
    if (root->u.storage->flags & CK_SF_VIEW)
        return ck_error_set(err, CKPT_ERR_TENSOR, "storage key '%s' names both a storage and a view", key);
    const ckpt_value *view = it[5];
    if (view->kind == CKPT_KIND_NONE) {
        *out = root;
        return CKPT_OK;
    }
    /* (view_key, offset, numel): elements [offset, offset + numel) of the root (torch 0.4 _save) */
    if (view->kind != CKPT_KIND_TUPLE || view->u.seq.len != 3)
        return ck_error_set(err, CKPT_ERR_PICKLE, "persistent id: view_metadata must be None or (key, offset, size)");
    ckpt_value **vm = view->u.seq.items;
    const char *vkey = ck_text_of(vm[0]);
    if (!vkey || vm[0]->u.s.len == 0 || vm[0]->u.s.len > 128 || memchr(vkey, '\0', vm[0]->u.s.len))
        return ck_error_set(err, CKPT_ERR_PICKLE, "persistent id: view key must be a short string");
    for (int k = 1; k < 3; k++)
        if (vm[k]->kind != CKPT_KIND_INT || !ck_is_small_int(vm[k]) || vm[k]->u.i < 0)
            return ck_error_set(err, CKPT_ERR_PICKLE, "persistent id: view offset and size must be non-negative ints");
    return ck_checkpoint_view_storage(c, root->u.storage, vkey, vm[0]->u.s.len, (uint64_t)vm[1]->u.i,
                                      (uint64_t)vm[2]->u.i, out, err);
}

/* Scan-mode persistent loader that notices ('module', ...) ids. */
static ckpt_status spot_module_pid(ck_unpickler *u, void *ctx, ckpt_value *pid, ckpt_value **out, ckpt_error *err)
{
    (void)u; (void)err;
    const char *tag = pid->kind == CKPT_KIND_TUPLE && pid->u.seq.len ? ck_text_of(pid->u.seq.items[0]) : NULL;
    if (tag && strcmp(tag, "module") == 0) *(bool *)ctx = true;
    *out = pid;
    return CKPT_OK;
}

/*
 * After a refused global in the object pickle: is this a whole-model pickle? A scan (nothing resolved or
 * called) of the same pickle looks for module-class persistent ids, so the message can say what the file is.
 */
static bool is_whole_model(const uint8_t *data, size_t len, size_t start, const ck_limits *limits)
{
    ck_store st;
    ck_store_init(&st, limits->max_alloc);
    ck_unpickler u;
    ck_unpickler_init(&u, &st, limits);
    u.mode = CK_MODE_SCAN;
    bool found = false;
    u.persistent_load = spot_module_pid;
    u.persistent_ctx = &found;
    ckpt_error err;
    ck_error_init(&err);
    ckpt_value *v;
    (void)ck_unpickle(&u, data, len, &start, &v, &err);
    ck_store_release(&st);
    return found;
}

/* Runs the pickle at *pos, naming `what` in errors. */
static ckpt_status run(ck_unpickler *u, const uint8_t *data, size_t len, size_t *pos, const char *what, ckpt_value **out,
                       ckpt_error *err)
{
    u->record = what;
    ckpt_status s = ck_unpickle(u, data, len, pos, out, err);
    if (s) ck_error_in_record(err, what);
    return s;
}

static ckpt_status check_sys_info(const ckpt_value *si, bool *little, ckpt_error *err)
{
    /* torch ignores sys_info on load; libckpt reads what matters: the byte order of the counts, and type
     * sizes (always short 2, int 4, long 4, or long 8 from Python 2 builds that used native sizes) */
    *little = true;
    if (si->kind != CKPT_KIND_DICT) return ck_error_set(err, CKPT_ERR_FORMAT, "sys_info is a %s, not a dict", ck_type_name(si));
    const ckpt_value *le = ck_dict_get_str(si, "little_endian", 13);
    if (le) {
        if (le->kind != CKPT_KIND_BOOL) return ck_error_set(err, CKPT_ERR_FORMAT, "sys_info: little_endian is not a bool");
        *little = le->u.b;
    }
    const ckpt_value *ts = ck_dict_get_str(si, "type_sizes", 10);
    if (!ts) return CKPT_OK;
    if (ts->kind != CKPT_KIND_DICT) return ck_error_set(err, CKPT_ERR_FORMAT, "sys_info: type_sizes is not a dict");
    static const struct { const char *name; int64_t a, b; } want[] = {{"short", 2, 2}, {"int", 4, 4}, {"long", 4, 8}};
    for (size_t i = 0; i < CK_ARRAY_LEN(want); i++) {
        const ckpt_value *v = ck_dict_get_str(ts, want[i].name, strlen(want[i].name));
        if (!v) continue;
        if (!ck_is_small_int(v) || (ck_small_int(v) != want[i].a && ck_small_int(v) != want[i].b))
            return ck_error_set(err, CKPT_ERR_UNSUPPORTED,
                                "sys_info says a C %s has %s bytes; PyTorch only ever wrote %lld%s", want[i].name,
                                ck_is_small_int(v) ? "an unexpected number of" : "a non-integer number of",
                                (long long)want[i].a, want[i].b != want[i].a ? " or 8" : "");
    }
    return CKPT_OK;
}

ckpt_status ck_load_legacy(ckpt_checkpoint *c, const uint8_t *data, size_t len, const ckpt_load_options *opts,
                           bool borrowable, ckpt_error *err)
{
    ck_globals_ctx g = {0};
    ck_unpickler u;
    ck_checkpoint_unpickler(c, &u, opts, &g);
    size_t pos = 0;
    ckpt_value *v;
    ckpt_status s = run(&u, data, len, &pos, "legacy magic number", &v, err);
    if (s) return s;
    if (!is_magic(v)) return ck_error_set(err, CKPT_ERR_FORMAT, "invalid magic number: not a legacy PyTorch checkpoint");
    if ((s = run(&u, data, len, &pos, "legacy protocol version", &v, err))) return s;
    if (!ck_is_small_int(v) || v->kind != CKPT_KIND_INT || v->u.i != 1001)
        return ck_error_set(err, CKPT_ERR_UNSUPPORTED, "legacy protocol version is not 1001: not a format PyTorch reads");
    bool little;
    if ((s = run(&u, data, len, &pos, "legacy sys_info", &v, err)) || (s = check_sys_info(v, &little, err))) return s;
    u.persistent_load = legacy_persistent_load;
    u.persistent_ctx = c;
    size_t object_start = pos;
    if ((s = run(&u, data, len, &pos, "legacy object pickle", &c->root, err))) {
        if (s == CKPT_ERR_BLOCKED && !c->accept_module_pids && is_whole_model(data, len, object_start, &c->limits))
            ck_error_append(err, ". The file is a whole-model pickle (torch.save(model) in the legacy format): it names "
                            "the model's classes, which the weights-only loader refuses; save model.state_dict() instead, "
                            "or read it in model mode (CKPT_LOAD_MODEL; CLI: --model)");
        return s;
    }
    u.persistent_load = NULL;
    ckpt_value *keys;
    if ((s = run(&u, data, len, &pos, "legacy storage key list", &keys, err))) return s;
    if ((s = ck_checkpoint_collect_globals(c, &g, err))) return s;
    if (keys->kind != CKPT_KIND_LIST)
        return ck_error_set(err, CKPT_ERR_FORMAT, "the storage key list is a %s, not a list", ck_type_name(keys));

    /* every root storage the object names has its data here, once, in the listed order */
    size_t roots = 0;
    for (size_t i = 0; i < c->nstorages; i++) roots += !(c->storages[i]->flags & CK_SF_VIEW);
    if (keys->u.seq.len != roots)
        return ck_error_set(err, CKPT_ERR_TENSOR, "the storage key list has %u keys, but the object uses %zu storages",
                            keys->u.seq.len, roots);
    bool skip = c->flags & CKPT_LOAD_SKIP_DATA;
    unsigned how = ck_attach_mode(c, borrowable);
    for (uint32_t i = 0; i < keys->u.seq.len; i++) {
        const ckpt_value *k = keys->u.seq.items[i];
        const char *key = ck_text_of(k);
        ckpt_value *sv = key ? ck_strmap_get(&c->storage_by_key, key, k->u.s.len) : NULL;
        if (!sv || (sv->u.storage->flags & CK_SF_VIEW))
            return ck_error_set(err, CKPT_ERR_TENSOR, "storage key list entry %u is not a storage the object uses", i);
        ckpt_storage *st = sv->u.storage;
        if (st->flags & CK_SF_RESOLVED)
            return ck_error_set(err, CKPT_ERR_TENSOR, "storage '%s' is listed twice in the storage key list", st->key);
        if (!ck_fits(len, pos, 8)) {
            ck_error_set(err, CKPT_ERR_TENSOR, "truncated: the element count of storage '%s' is missing", st->key);
            ck_error_at_offset(err, (int64_t)pos, -1);
            return CKPT_ERR_TENSOR;
        }
        uint64_t count = ck_le64(data + pos), be = ck_be64(data + pos);
        if (count != st->numel && !(!little && be == st->numel)) {
            ck_error_set(err, CKPT_ERR_TENSOR,
                         "storage '%s' has an element count of %llu, but the object declares %llu elements of %s", st->key,
                         (unsigned long long)count, (unsigned long long)st->numel, ckpt_dtype_name((ckpt_dtype)st->dtype));
            ck_error_at_offset(err, (int64_t)pos, -1);
            return CKPT_ERR_TENSOR;
        }
        pos += 8;
        if (!ck_fits(len, pos, st->nbytes)) {
            ck_error_set(err, CKPT_ERR_TENSOR, "truncated: storage '%s' needs %llu bytes, %llu remain", st->key,
                         (unsigned long long)st->nbytes, (unsigned long long)(len - pos));
            ck_error_at_offset(err, (int64_t)pos, -1);
            return CKPT_ERR_TENSOR;
        }
        if (skip) st->flags |= CK_SF_RESOLVED;
        else if ((s = ck_storage_attach(c, st, data + pos, how, false, err))) return s;
        pos += (size_t)st->nbytes;
    }
    if (pos != len) {
        ck_error_set(err, CKPT_ERR_FORMAT, "%llu bytes follow the last storage (hidden data is refused)",
                     (unsigned long long)(len - pos));
        ck_error_at_offset(err, (int64_t)pos, -1);
        return CKPT_ERR_FORMAT;
    }
    ck_checkpoint_resolve_views(c);
    return CKPT_OK;
}
