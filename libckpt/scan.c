/*
 * scan.c: ckpt_scan_* and ckpt_disassemble_* (include/ckpt/scan.h): find every pickle of a file and run
 * the VM on it in scan mode, recording globals (scan) or printing each opcode (disassembly).
 *
 * Which bytes are pickles:
 *   zip    the strict zip reader (the loader's) opens it; `<prefix>/data.pkl` is read first and the
 *          storage records its persistent ids name are skipped (they are tensor bytes, never unpickled);
 *          every other member is read when it looks like a pickle: it starts with PROTO 0-5, or it
 *          starts with a protocol 0/1 opcode and ends with STOP ('.'). Member names do not matter.
 *   legacy the five pickles of torch's pre-1.6 stream (magic, protocol, sys_info, object, storage
 *          keys); the raw storage bytes after them are not read.
 *   tar    the strict tar reader (the loader's) opens it; every pickle of sys_info, storages, tensors and
 *          pickle, stepping over the raw bytes between them as the loader does (ck_tar_walk_pickles).
 *   pickle a bare pickle file: pickles back to back as long as the next bytes look like one.
 *   npy    a NumPy .npy file (or an .npz member) whose data is a pickle (dtype object arrays).
 * Each pickle gets its own node store (released after it), so memory stays bounded per pickle.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/scan.h"
#include "errors.h"
#include "formats.h"
#include "json_util.h"
#include "mapfile.h"
#include "options.h"
#include "pickle_opcodes.h"
#include "registry_spec.h"
#include "sniff.h"
#include "strmap.h"
#include "text.h"
#include "unpickler.h"
#include "util.h"
#include "zip.h"

typedef struct scan_global {
    const char *name;
    ckpt_global_status status;
    const char *why;
    uint64_t count, first_offset;
    const char *first_record;
} scan_global;

struct ckpt_scan_result {
    ck_arena arena; /* names and records */
    scan_global *g;
    size_t n, cap;
    ck_strmap index; /* name -> index + 1 */
    const char **pickles;
    size_t npickles, pcap;
    const char *format;
    ckpt_status status;
    char message[CK_ERROR_MESSAGE_MAX];
    bool failed_alloc;
};

typedef struct walker {
    ckpt_scan_result *r;
    ck_limits lim;
    ck_reg_view view;
    const char *record;     /* current record ("" for streams) */
    ck_strmap storage_keys; /* storage keys the main pickle references (result arena) */
    bool collect_keys;
    ckpt_dis_fn dis;
    void *dis_user;
    size_t getattr_refs;  /* builtins.getattr references in the current pickle */
    bool getattr_failed;  /* some pickle used getattr other than for Enum members by name */
} walker;

/* ---- result ---- */

static ckpt_scan_result *result_new(void)
{
    ckpt_scan_result *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    ck_arena_init(&r->arena, 0);
    ck_strmap_init(&r->index, &r->arena);
    r->format = "unknown";
    return r;
}

void ckpt_scan_result_free(ckpt_scan_result *r)
{
    if (!r) return;
    free(r->g);
    free(r->pickles);
    ck_arena_release(&r->arena);
    free(r);
}

static void note_error(ckpt_scan_result *r, const ckpt_error *e)
{
    if (r->status) return; /* the first error is the one reported */
    r->status = e->code;
    snprintf(r->message, sizeof r->message, "%s", e->message);
}

static void note_error_text(ckpt_scan_result *r, ckpt_status code, const char *msg)
{
    ckpt_error e;
    ck_error_init(&e);
    ck_error_set(&e, code, "%s", msg);
    note_error(r, &e);
}

static const char *intern(ckpt_scan_result *r, const char *s)
{
    char *c = ck_arena_strndup(&r->arena, s, strlen(s));
    if (!c) r->failed_alloc = true;
    return c;
}

static void add_pickle(ckpt_scan_result *r, const char *record)
{
    if (r->npickles == r->pcap) {
        size_t ncap = r->pcap ? r->pcap * 2 : 8;
        const char **n = realloc(r->pickles, ncap * sizeof *n);
        if (!n) { r->failed_alloc = true; return; }
        r->pickles = n;
        r->pcap = ncap;
    }
    const char *rec = intern(r, record);
    if (rec) r->pickles[r->npickles++] = rec;
}

static void on_global(void *ctx, const char *module, const char *name, const ck_reg_entry *e, uint64_t offset, int op)
{
    (void)op;
    walker *w = ctx;
    ckpt_scan_result *r = w->r;
    if (strcmp(module, "builtins") == 0 && strcmp(name, "getattr") == 0) w->getattr_refs++;
    size_t ml = strlen(module), nl = strlen(name);
    char stackbuf[512];
    char *full = ml + nl + 2 <= sizeof stackbuf ? stackbuf : malloc(ml + nl + 2);
    if (!full) { r->failed_alloc = true; return; }
    memcpy(full, module, ml);
    full[ml] = '.';
    memcpy(full + ml + 1, name, nl + 1);
    size_t idx = (size_t)(uintptr_t)ck_strmap_get(&r->index, full, ml + nl + 1);
    if (!idx && r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 16;
        scan_global *ng = realloc(r->g, ncap * sizeof *ng);
        if (ng) {
            r->g = ng;
            r->cap = ncap;
        }
    }
    if (idx) {
        r->g[idx - 1].count++;
    } else if (r->n == r->cap) {
        r->failed_alloc = true;
    } else {
        scan_global *g = &r->g[r->n];
        memset(g, 0, sizeof *g);
        g->name = intern(r, full);
        g->first_record = intern(r, w->record);
        g->count = 1;
        g->first_offset = offset;
        g->status = ck_classify_entry(e, module, name, &g->why);
        if (g->name && g->first_record && ck_strmap_put(&r->index, g->name, ml + nl + 1, (void *)(uintptr_t)(r->n + 1)))
            r->n++;
        else
            r->failed_alloc = true;
    }
    if (full != stackbuf) free(full);
}

/* Persistent ids are recorded, never resolved: ('storage', type, key, ...) names a storage record. */
static ckpt_status scan_persistent(ck_unpickler *u, void *ctx, ckpt_value *pid, ckpt_value **out, ckpt_error *err)
{
    walker *w = ctx;
    if (w->collect_keys && pid->kind == CKPT_KIND_TUPLE && pid->u.seq.len >= 3) {
        ckpt_value *tag = pid->u.seq.items[0], *key = pid->u.seq.items[2];
        if (tag->kind == CKPT_KIND_STR && strcmp(tag->u.s.ptr, "storage") == 0 && key->kind == CKPT_KIND_STR) {
            const char *k = ck_arena_strndup(&w->r->arena, key->u.s.ptr, key->u.s.len);
            if (!k || !ck_strmap_add(&w->storage_keys, k, key->u.s.len, (void *)k, NULL)) w->r->failed_alloc = true;
        }
    }
    *out = ck_new(u->store, CKPT_KIND_NONE);
    return *out ? CKPT_OK : ck_out_of_memory(u->store, err);
}

/* ---- disassembly lines ---- */

/* Appends text for bytes p[0..n) into buf (at most `room` characters of output), escaping non-printables. */
static size_t put_escaped(char *buf, size_t cap, const uint8_t *p, size_t n, size_t room, bool text)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (o + 8 >= cap || o >= room) {
            o += (size_t)snprintf(buf + o, cap - o, "...(%zu bytes)", n);
            break;
        }
        uint8_t c = p[i];
        if (c == '\\' || c == '\'') o += (size_t)snprintf(buf + o, cap - o, "\\%c", c);
        else if (c == '\n') o += (size_t)snprintf(buf + o, cap - o, "\\n");
        else if (c >= 0x20 && c < 0x7f) buf[o++] = (char)c;
        else if (text && c >= 0x80) buf[o++] = (char)c; /* UTF-8 text passes through (validated by the VM) */
        else o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    }
    if (o >= cap) o = cap - 1;
    buf[o] = '\0';
    return o;
}

static void format_arg(uint8_t op, const ck_pickle_arg *a, char *buf, size_t cap)
{
    enum { ROOM = 80 };
    size_t o = 0;
    buf[0] = '\0';
    switch (a->kind) {
    case CK_ARG_NONE: break;
    case CK_ARG_UINT: snprintf(buf, cap, "%llu", (unsigned long long)a->u); break;
    case CK_ARG_INT: snprintf(buf, cap, "%lld", (long long)a->i); break;
    case CK_ARG_FLOAT: ck_float_repr(a->f, buf, cap); break;
    case CK_ARG_LONG:
        if (a->n <= 8) { /* little-endian two's complement, sign-extended */
            uint64_t u = 0;
            for (size_t i = 0; i < a->n; i++) u |= (uint64_t)a->p[i] << (8 * i);
            if (a->n && a->n < 8 && (a->p[a->n - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * a->n);
            snprintf(buf, cap, "%lld", (long long)(int64_t)u);
        } else {
            char *dec = a->n <= 64 ? ck_le_to_decimal(a->p, a->n) : NULL;
            if (dec) snprintf(buf, cap, "%.*s%s", ROOM, dec, strlen(dec) > ROOM ? "..." : "");
            else snprintf(buf, cap, "<%zu-byte integer>", a->n);
            free(dec);
        }
        break;
    case CK_ARG_STR:
    case CK_ARG_LINE:
        buf[o++] = '\'';
        o += put_escaped(buf + o, cap - o - 2, a->p, a->n, ROOM, true);
        snprintf(buf + o, cap - o, "'");
        break;
    case CK_ARG_BYTES:
        o += (size_t)snprintf(buf, cap, "%sb'", op == OP_BYTEARRAY8 ? "bytearray " : "");
        o += put_escaped(buf + o, cap - o - 2, a->p, a->n, ROOM, false);
        snprintf(buf + o, cap - o, "'");
        break;
    case CK_ARG_TWO_LINES:
        buf[o++] = '\'';
        o += put_escaped(buf + o, cap - o - 2, a->p, a->n, ROOM / 2, true);
        buf[o++] = ' ';
        o += put_escaped(buf + o, cap - o - 2, a->p2, a->n2, ROOM / 2, true);
        snprintf(buf + o, cap - o, "'");
        break;
    }
}

static void dis_line(walker *w, const char *fmt, ...) CK_PRINTF(2, 3);
static void dis_line(walker *w, const char *fmt, ...)
{
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    w->dis(line, w->dis_user);
}

static void on_op(void *ctx, uint64_t offset, uint8_t op, const ck_pickle_arg *arg, size_t depth, size_t marks,
                  const ckpt_value *target)
{
    walker *w = ctx;
    char a[400], t[300] = "";
    format_arg(op, arg, a, sizeof a);
    if (target) {
        char label[256];
        ck_node_label(target, label, sizeof label);
        snprintf(t, sizeof t, "  -> %.*s", 200, label);
    }
    char mk[32] = "";
    if (marks) snprintf(mk, sizeof mk, " marks %zu", marks);
    dis_line(w, "%8llu  %-17s %-44s depth %zu%s%s", (unsigned long long)offset, ck_pickle_opcode_name(op), a, depth, mk,
             t);
}

/* ---- running pickles ---- */

/* One pickle at *pos into the node store st (the caller's); on success *pos is past its STOP and *root
 * is the pickle's value. */
static ckpt_status run_pickle_in(walker *w, ck_store *st, const uint8_t *p, size_t n, size_t *pos, ckpt_value **root)
{
    ck_unpickler u;
    ck_unpickler_init(&u, st, &w->lim);
    u.mode = CK_MODE_SCAN;
    u.view = &w->view;
    u.registry = w->view.reg;
    u.persistent_load = scan_persistent;
    u.persistent_ctx = w;
    u.on_global = on_global;
    u.on_global_ctx = w;
    u.record = w->record;
    if (w->dis) {
        u.on_op = on_op;
        u.on_op_ctx = w;
        dis_line(w, "== pickle %zu%s%s at byte %zu", w->r->npickles, w->record[0] ? " in " : "", w->record, *pos);
    }
    add_pickle(w->r, w->record);
    ckpt_error e;
    ck_error_init(&e);
    w->getattr_refs = 0;
    ckpt_status s = ck_unpickle(&u, p, n, pos, root, &e);
    if (w->getattr_refs && (s || !u.getattr_enum_only)) w->getattr_failed = true;
    if (s) {
        if (w->record[0]) ck_error_in_record(&e, w->record);
        note_error(w->r, &e);
        if (w->dis) dis_line(w, "error: %s", e.message);
    }
    return s;
}

/* One pickle at *pos in a node store of its own; on success *pos is past its STOP. */
static ckpt_status run_pickle(walker *w, const uint8_t *p, size_t n, size_t *pos)
{
    ck_store st;
    ck_store_init(&st, w->lim.max_alloc);
    ckpt_value *root;
    ckpt_status s = run_pickle_in(w, &st, p, n, pos, &root);
    ck_store_release(&st);
    return s;
}

static bool pickle_start(const uint8_t *p, size_t n)
{
    if (n >= 2 && p[0] == OP_PROTO && p[1] <= 5) return true;
    static const char proto01[] = "()]}NIJKLMFGSTUVXcP";
    return n >= 2 && memchr(proto01, p[0], sizeof proto01 - 1) != NULL;
}

/* Whole-buffer test: PROTO start, or a protocol 0/1 start and a final STOP. */
static bool looks_like_pickle(const uint8_t *p, size_t n)
{
    if (n >= 2 && p[0] == OP_PROTO && p[1] <= 5) return true;
    return pickle_start(p, n) && p[n - 1] == OP_STOP;
}

/*
 * A NumPy .npy file (also the members of an .npz) holds a pickle after its header when the array has
 * dtype object: the offset of that payload, or 0 when this is not an .npy or the data is not a pickle.
 */
static size_t npy_pickle_offset(const uint8_t *p, size_t n)
{
    if (n < 10 || memcmp(p, "\x93NUMPY", 6) != 0) return 0;
    uint64_t hlen, off;
    if (p[6] == 1) {
        hlen = ck_le16(p + 8);
        off = 10;
    } else if ((p[6] == 2 || p[6] == 3) && n >= 12) {
        hlen = ck_le32(p + 8);
        off = 12;
    } else {
        return 0;
    }
    if (!ck_fits(n, off, hlen)) return 0;
    off += hlen;
    return looks_like_pickle(p + off, n - (size_t)off) ? (size_t)off : 0;
}

/* Pickles back to back from p[start] (at most max when max > 0). */
static ckpt_status scan_stream(walker *w, const uint8_t *p, size_t n, size_t start, size_t max)
{
    size_t pos = start, count = 0;
    while (pos < n && (!max || count < max)) {
        if (count && !pickle_start(p + pos, n - pos)) break; /* trailing bytes that are not a pickle */
        ckpt_status s = run_pickle(w, p, n, &pos);
        count++;
        if (s) return s;
    }
    return CKPT_OK;
}

static ckpt_status scan_zip(walker *w, const uint8_t *p, size_t n)
{
    ckpt_scan_result *r = w->r;
    ck_arena arena;
    ck_arena_init(&arena, w->lim.max_alloc);
    ck_zip z;
    ckpt_error e;
    ck_error_init(&e);
    ckpt_status s = ck_zip_open(&z, p, n, &arena, w->lim.max_members, &e);
    if (s) {
        note_error(r, &e);
        ck_arena_release(&arena);
        return s;
    }
    /* the main pickle first: its persistent ids tell which members are storage records */
    const ck_zip_member *main = NULL;
    size_t plen = 0;
    for (size_t i = 0; i < z.count && !main; i++) {
        const char *slash = strchr(z.members[i].name, '/');
        if (slash && slash != z.members[i].name && strcmp(slash + 1, "data.pkl") == 0) {
            main = &z.members[i];
            plen = (size_t)(slash - z.members[i].name);
        }
    }
    ckpt_status first = CKPT_OK;
    for (size_t pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < z.count; i++) {
            const ck_zip_member *m = &z.members[i];
            if ((pass == 0) != (m == main)) continue;
            if (pass == 1 && main && m->name_len > plen + 6 && memcmp(m->name, main->name, plen) == 0 &&
                memcmp(m->name + plen, "/data/", 6) == 0 &&
                ck_strmap_get(&w->storage_keys, m->name + plen + 6, m->name_len - plen - 6))
                continue; /* a storage record the main pickle references: tensor bytes */
            /* each member's bytes live in an arena of their own, released after it */
            ck_arena ma;
            ck_arena_init(&ma, w->lim.max_alloc);
            const uint8_t *bytes;
            uint8_t *copy = NULL;
            ck_error_init(&e);
            size_t start = 0; /* where the pickle starts: after the header of an .npy member (an .npz) */
            if (m->method == 0) { /* peek in place; parse a private copy (the file cannot change under the VM) */
                bytes = z.data + m->data_offset;
                bool pickle = looks_like_pickle(bytes, (size_t)m->size) || (start = npy_pickle_offset(bytes, (size_t)m->size));
                s = pickle ? ck_zip_read_copy(&z, m, &ma, true, &copy, &e) : CKPT_OK;
            } else { /* inflated into a private buffer, CRC checked */
                s = ck_zip_read(&z, m, &ma, true, &bytes, &e);
                if (!s && (looks_like_pickle(bytes, (size_t)m->size) || (start = npy_pickle_offset(bytes, (size_t)m->size))))
                    copy = (uint8_t *)bytes;
            }
            if (s) {
                ck_error_in_record(&e, m->name);
                note_error(r, &e);
                if (!first) first = s;
            } else if (copy) {
                w->record = intern(r, m->name);
                if (w->record) {
                    w->collect_keys = m == main;
                    s = scan_stream(w, copy, (size_t)m->size, start, 0);
                    w->collect_keys = false;
                    if (s && !first) first = s;
                }
            }
            ck_arena_release(&ma);
            if (r->failed_alloc) break;
        }
    }
    w->record = "";
    ck_arena_release(&arena);
    return first;
}

/* ---- tar (PyTorch 0.1-0.3) ---- */

typedef struct tar_scan {
    walker *w;
    ck_store st; /* the last pickle's nodes: the tar walker reads its value (counts, storage classes) */
    const ckpt_value *last;
    bool live;
} tar_scan;

static ckpt_status tar_scan_pickle(void *ctx, const uint8_t *p, size_t n, size_t *pos, const ckpt_value **root)
{
    tar_scan *t = ctx;
    if (t->live) ck_store_release(&t->st);
    ck_store_init(&t->st, t->w->lim.max_alloc);
    t->live = true;
    ckpt_value *v = NULL;
    ckpt_status s = run_pickle_in(t->w, &t->st, p, n, pos, &v);
    *root = t->last = v;
    return s;
}

/*
 * Every pickle of every member, in the order torch reads them (sys_info, storages, tensors, pickle),
 * stepping over the raw bytes between them as the loader does (ck_tar_walk_pickles). A member whose
 * layout breaks is reported and the others are still scanned.
 */
static ckpt_status scan_tar(walker *w, const uint8_t *p, size_t n)
{
    ckpt_error e;
    ck_error_init(&e);
    ck_tar_member m[CK_TAR_COUNT];
    memset(m, 0, sizeof m);
    ckpt_status s = ck_tar_members(p, n, w->lim.max_members, m, &e);
    if (s) {
        note_error(w->r, &e);
        return s;
    }
    static const int order[] = {CK_TAR_SYS_INFO, CK_TAR_STORAGES, CK_TAR_TENSORS, CK_TAR_PICKLE};
    ckpt_status first = CKPT_OK;
    bool little = true;
    for (size_t i = 0; i < sizeof order / sizeof *order && !w->r->failed_alloc; i++) {
        int which = order[i];
        if (!m[which].present) continue;
        w->record = ck_tar_member_names[which];
        tar_scan t = {.w = w};
        ck_error_init(&e);
        s = ck_tar_walk_pickles(&m[which], which, little, tar_scan_pickle, &t, &e);
        if (which == CK_TAR_SYS_INFO && !s) little = ck_tar_little_endian(t.last);
        if (t.live) ck_store_release(&t.st);
        /* a pickle's own failure is noted by run_pickle_in (e stays clear); a layout failure is noted here */
        if (s && e.code) note_error(w->r, &e);
        if (s && !first) first = s;
    }
    w->record = "";
    return first;
}

static ckpt_status scan_bytes(walker *w, const uint8_t *p, size_t n)
{
    char desc[160];
    ckpt_scan_result *r = w->r;
    switch (ck_sniff(p, n, desc, sizeof desc)) {
    case CK_INPUT_ZIP: r->format = "zip"; return scan_zip(w, p, n);
    case CK_INPUT_LEGACY: r->format = "legacy"; return scan_stream(w, p, n, 0, 5);
    case CK_INPUT_PICKLE:
        if (ck_legacy_probe(p, n)) { /* a legacy stream written with another pickle protocol than 2 */
            r->format = "legacy";
            return scan_stream(w, p, n, 0, 5);
        }
        r->format = "pickle";
        return scan_stream(w, p, n, 0, 0);
    case CK_INPUT_TAR: r->format = "tar"; return scan_tar(w, p, n);
    case CK_INPUT_SAFETENSORS: r->format = "safetensors"; return CKPT_OK; /* no pickle: nothing to report */
    case CK_INPUT_OTHER: break;
    }
    if (looks_like_pickle(p, n)) {
        r->format = "pickle";
        return scan_stream(w, p, n, 0, 0);
    }
    size_t npy = npy_pickle_offset(p, n);
    if (npy) {
        r->format = "npy";
        return scan_stream(w, p, n, npy, 0);
    }
    if (n >= 6 && memcmp(p, "\x93NUMPY", 6) == 0) {
        r->format = "npy"; /* plain numbers: nothing to unpickle */
        return CKPT_OK;
    }
    char msg[256];
    snprintf(msg, sizeof msg, "not a checkpoint or pickle: the input is %s", desc);
    note_error_text(r, CKPT_ERR_FORMAT, msg);
    return CKPT_ERR_FORMAT;
}

static ckpt_status run(const void *data, size_t len, const ckpt_load_options *opts, ckpt_dis_fn dis, void *dis_user,
                       ckpt_scan_result **out, ckpt_error *err)
{
    if (out) *out = NULL;
    if (!data && len) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "data is NULL");
    ckpt_scan_result *r = result_new();
    if (!r) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    walker w;
    memset(&w, 0, sizeof w);
    w.r = r;
    w.record = "";
    w.dis = dis;
    w.dis_user = dis_user;
    ck_limits_resolve(opts, len, &w.lim);
    ck_strmap_init(&w.storage_keys, &r->arena);
    ckpt_status s = ck_registry_view_acquire(&w.view, opts ? opts->registry : NULL, err);
    if (s) {
        ckpt_scan_result_free(r);
        return s;
    }
    scan_bytes(&w, data ? data : (const void *)"", len);
    ck_registry_view_release(&w.view);
    /* getattr used only for Enum members by name, in every pickle: what a load accepts */
    size_t gi = (size_t)(uintptr_t)ck_strmap_get(&r->index, "builtins.getattr", 16);
    if (gi && !w.getattr_failed) {
        r->g[gi - 1].status = CKPT_GLOBAL_ALLOWED;
        r->g[gi - 1].why = "used only as getattr(<allowed class>, 'NAME'): Enum members pickled by name";
    }
    if (r->failed_alloc) {
        ckpt_scan_result_free(r);
        return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory recording the scan");
    }
    s = r->status;
    if (s) ck_error_set(err, s, "%s", r->message);
    if (out) *out = r;
    else ckpt_scan_result_free(r);
    return s;
}

ckpt_status ckpt_scan_memory(const void *data, size_t len, const ckpt_load_options *opts, ckpt_scan_result **out,
                             ckpt_error *err)
{
    if (!out) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "out is NULL");
    return run(data, len, opts, NULL, NULL, out, err);
}

ckpt_status ckpt_scan_file(const char *path, const ckpt_load_options *opts, ckpt_scan_result **out, ckpt_error *err)
{
    if (!out) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!path) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "path is NULL");
    ck_mapped map;
    ckpt_status s = ck_map_file(path, &map, err);
    if (s) return s;
    s = run(map.data, map.len, opts, NULL, NULL, out, err);
    ck_unmap_file(&map);
    return s;
}

ckpt_status ckpt_disassemble_memory(const void *data, size_t len, const ckpt_load_options *opts, ckpt_dis_fn fn,
                                    void *user, ckpt_error *err)
{
    if (!fn) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL callback");
    return run(data, len, opts, fn, user, NULL, err);
}

ckpt_status ckpt_disassemble_file(const char *path, const ckpt_load_options *opts, ckpt_dis_fn fn, void *user,
                                  ckpt_error *err)
{
    if (!fn || !path) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL path or callback");
    ck_mapped map;
    ckpt_status s = ck_map_file(path, &map, err);
    if (s) return s;
    s = run(map.data, map.len, opts, fn, user, NULL, err);
    ck_unmap_file(&map);
    return s;
}

/* ---- accessors ---- */

size_t ckpt_scan_num_globals(const ckpt_scan_result *r) { return r ? r->n : 0; }
const char *ckpt_scan_global_name(const ckpt_scan_result *r, size_t i) { return r && i < r->n ? r->g[i].name : NULL; }
ckpt_global_status ckpt_scan_global_status(const ckpt_scan_result *r, size_t i)
{
    return r && i < r->n ? r->g[i].status : CKPT_GLOBAL_NOT_ALLOWED;
}
const char *ckpt_scan_global_reason(const ckpt_scan_result *r, size_t i) { return r && i < r->n ? r->g[i].why : NULL; }
uint64_t ckpt_scan_global_count(const ckpt_scan_result *r, size_t i) { return r && i < r->n ? r->g[i].count : 0; }
uint64_t ckpt_scan_global_first_offset(const ckpt_scan_result *r, size_t i)
{
    return r && i < r->n ? r->g[i].first_offset : 0;
}
const char *ckpt_scan_global_first_record(const ckpt_scan_result *r, size_t i)
{
    return r && i < r->n ? r->g[i].first_record : NULL;
}
ckpt_global_status ckpt_scan_worst(const ckpt_scan_result *r)
{
    ckpt_global_status w = CKPT_GLOBAL_ALLOWED;
    for (size_t i = 0; r && i < r->n; i++)
        if (r->g[i].status > w) w = r->g[i].status;
    return w;
}
const char *ckpt_scan_format(const ckpt_scan_result *r) { return r ? r->format : "unknown"; }
size_t ckpt_scan_num_pickles(const ckpt_scan_result *r) { return r ? r->npickles : 0; }
const char *ckpt_scan_pickle_record(const ckpt_scan_result *r, size_t i) { return r && i < r->npickles ? r->pickles[i] : NULL; }
ckpt_status ckpt_scan_error_code(const ckpt_scan_result *r) { return r ? r->status : CKPT_OK; }
const char *ckpt_scan_error_message(const ckpt_scan_result *r) { return r ? r->message : ""; }

/* A JSON string from text that may not be UTF-8 (names are checked by the VM; labels come from the caller). */
static json_t *jtext(const char *s)
{
    size_t n = strlen(s);
    if (ck_utf8_valid((const uint8_t *)s, n, false)) return json_stringn(s, n);
    char *buf = malloc(n * 4 + 1);
    if (!buf) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c < 0x80) buf[o++] = (char)c;
        else o += (size_t)sprintf(buf + o, "\\x%02x", c);
    }
    json_t *j = json_stringn(buf, o);
    free(buf);
    return j;
}

ckpt_status ckpt_scan_result_to_json(const ckpt_scan_result *r, const char *label, char **out, ckpt_error *err)
{
    if (!r || !out) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL result or output");
    *out = NULL;
    json_t *doc = json_object(), *globals = json_array(), *pickles = json_array();
    if (!doc || !globals || !pickles) {
        json_decref(doc);
        json_decref(globals);
        json_decref(pickles);
        return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory building JSON");
    }
    json_object_set_new(doc, "file", jtext(label ? label : ""));
    json_object_set_new(doc, "format", json_string(r->format));
    for (size_t i = 0; i < r->npickles; i++) json_array_append_new(pickles, jtext(r->pickles[i]));
    json_object_set_new(doc, "pickles", pickles);
    for (size_t i = 0; i < r->n; i++) {
        const scan_global *g = &r->g[i];
        json_t *o = json_object();
        if (!o) continue;
        json_object_set_new(o, "name", jtext(g->name));
        json_object_set_new(o, "status", json_string(ckpt_global_status_name(g->status)));
        json_object_set_new(o, "count", json_integer((json_int_t)g->count));
        json_object_set_new(o, "first_offset", json_integer((json_int_t)g->first_offset));
        json_object_set_new(o, "first_record", jtext(g->first_record));
        if (g->why) json_object_set_new(o, "reason", json_string(g->why));
        json_array_append_new(globals, o);
    }
    json_object_set_new(doc, "globals", globals);
    json_object_set_new(doc, "error", r->status ? jtext(r->message) : json_null());
    *out = ck_json_dump(doc, 0);
    json_decref(doc);
    return *out ? CKPT_OK : ck_error_set(err, CKPT_ERR_NOMEM, "out of memory writing JSON");
}
