/*
 * fuzz_schema: the schema parser (ckpt_schema_parse, libckpt/schema.c; schemas are untrusted input) and
 * the checker (libckpt/check.c) on what it accepts. The input is the schema JSON. Oracle: no crash or
 * leak; a refusal is CKPT_ERR_FORMAT/LIMIT with a message; an accepted schema survives a JSON round
 * trip unchanged and checks a small module tree (read in model mode from a pickle built here), giving
 * a report whose counts match its JSON.
 * Seeds come from fuzz/make_model_seeds.py (fuzz/corpus/fuzz_schema/).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "fuzz_common.h"

/* A torch zip holding pkgx.Net(conv=pkgx.Conv(w: 4 floats), act=torch.nn.modules.activation.ReLU). */
static const uint8_t *model_zip(size_t *len);

static ckpt_checkpoint *the_model(void)
{
    static ckpt_checkpoint *ck;
    if (!ck) {
        size_t n;
        const uint8_t *z = model_zip(&n);
        ckpt_load_options *o = ckpt_load_options_new();
        ckpt_load_options_set_flags(o, CKPT_LOAD_MODEL);
        if (ckpt_load_memory(z, n, o, &ck, NULL) != CKPT_OK) abort();
        ckpt_load_options_free(o);
    }
    return ck;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    ckpt_error *err = ckpt_error_new();
    ckpt_schema *s = NULL, *s2 = NULL;
    ckpt_status st = ckpt_schema_parse(data, len, &s, err);
    if (st != CKPT_OK) {
        if (s || (st != CKPT_ERR_FORMAT && st != CKPT_ERR_LIMIT) || !*ckpt_error_message(err)) abort();
        ckpt_error_free(err);
        return 0;
    }
    char *j1 = NULL, *j2 = NULL, *rep = NULL;
    if (ckpt_schema_to_json(s, 0, &j1, NULL) != CKPT_OK) abort();
    if (ckpt_schema_parse(j1, strlen(j1), &s2, NULL) != CKPT_OK) abort();
    if (ckpt_schema_to_json(s2, 0, &j2, NULL) != CKPT_OK || strcmp(j1, j2) != 0) abort();
    ckpt_report *r = NULL;
    if (ckpt_check(the_model(), s, &r, err) != CKPT_OK) abort();
    if (ckpt_report_to_json(r, 0, &rep, NULL) != CKPT_OK) abort();
    json_t *doc = json_loads(rep, 0, NULL);
    if (!doc) abort();
    size_t total = 0;
    for (int k = 0; k < CKPT_FINDING_KIND_COUNT_; k++) {
        size_t n = json_array_size(json_object_get(doc, ckpt_finding_kind_name((ckpt_finding_kind)k)));
        if (n != ckpt_report_count(r, (ckpt_finding_kind)k)) abort();
        for (size_t i = 0; i < n; i++)
            if (!ckpt_finding_key(ckpt_report_finding(r, (ckpt_finding_kind)k, i))) abort();
        total += n;
    }
    if (total != ckpt_report_total(r)) abort();
    json_decref(doc);
    ckpt_report_free(r);
    ckpt_free(j1);
    ckpt_free(j2);
    ckpt_free(rep);
    ckpt_schema_free(s);
    ckpt_schema_free(s2);
    ckpt_error_free(err);
    return 0;
}

/* ---- the model: a pickle and a stored zip, built once ---- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} fs_buf;

static void put(fs_buf *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}
static void op(fs_buf *b, uint8_t o) { put(b, &o, 1); }
static void u16(fs_buf *b, unsigned v) { op(b, (uint8_t)v); op(b, (uint8_t)(v >> 8)); }
static void u32(fs_buf *b, uint32_t v) { u16(b, v & 0xffff); u16(b, v >> 16); }
static void str(fs_buf *b, const char *s) { op(b, 'X'); u32(b, (uint32_t)strlen(s)); put(b, s, strlen(s)); }
static void global(fs_buf *b, const char *m, const char *n)
{
    op(b, 'c');
    put(b, m, strlen(m));
    op(b, '\n');
    put(b, n, strlen(n));
    op(b, '\n');
}
/* obj = cls(); obj.__dict__ = {_parameters: {params...}, _buffers: {}, _modules: {...}} -- callers fill */
static void module_open(fs_buf *b, const char *m, const char *n)
{
    global(b, m, n);
    op(b, ')');
    op(b, 0x81);
    op(b, '}');
    str(b, "_buffers");
    op(b, '}');
    op(b, 's');
    str(b, "_parameters");
    op(b, '}');
}

static const uint8_t *model_zip(size_t *len)
{
    static uint8_t *zip;
    static size_t zip_len;
    if (zip) {
        *len = zip_len;
        return zip;
    }
    fs_buf b = {0};
    op(&b, 0x80);
    op(&b, 2);
    module_open(&b, "pkgx", "Net");
    op(&b, 's'); /* no parameters */
    str(&b, "_modules");
    op(&b, '}');
    str(&b, "conv");
    module_open(&b, "pkgx", "Conv");
    str(&b, "w"); /* _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', 4), 0, (4,), (1,), False, OrderedDict()) */
    global(&b, "torch._utils", "_rebuild_tensor_v2");
    op(&b, '(');
    op(&b, '(');
    str(&b, "storage");
    global(&b, "torch", "FloatStorage");
    str(&b, "0");
    str(&b, "cpu");
    op(&b, 'K'); op(&b, 4);
    op(&b, 't');
    op(&b, 'Q');
    op(&b, 'K'); op(&b, 0);
    op(&b, 'K'); op(&b, 4); op(&b, 0x85);
    op(&b, 'K'); op(&b, 1); op(&b, 0x85);
    op(&b, 0x89);
    global(&b, "collections", "OrderedDict");
    op(&b, ')');
    op(&b, 'R');
    op(&b, 't');
    op(&b, 'R');
    op(&b, 's'); /* w */
    op(&b, 's'); /* _parameters */
    str(&b, "_modules");
    op(&b, '}');
    op(&b, 's');
    str(&b, "kernel");
    op(&b, 'K'); op(&b, 3);
    op(&b, 's');
    op(&b, 'b'); /* conv built */
    op(&b, 's'); /* conv into _modules */
    str(&b, "act");
    module_open(&b, "torch.nn.modules.activation", "ReLU");
    op(&b, 's');
    str(&b, "_modules");
    op(&b, '}');
    op(&b, 's');
    op(&b, 'b');
    op(&b, 's'); /* act */
    op(&b, 's'); /* _modules into Net's state */
    op(&b, 'b');
    op(&b, '.');
    static const float w[4] = {1, 2, 3, 4};
    const fz_member m[] = {{"archive/data.pkl", b.p, b.len},
                           {"archive/data/0", (const uint8_t *)w, sizeof w},
                           {"archive/version", (const uint8_t *)"3\n", 2}};
    zip = fz_make_zip(m, 3, &zip_len);
    free(b.p);
    *len = zip_len;
    return zip;
}
