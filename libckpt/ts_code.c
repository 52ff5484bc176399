/*
 * ts_code.c: which attributes of a TorchScript module class are parameters and buffers.
 *
 * A TorchScript data.pkl keeps a scripted module's attributes flat (parameters, buffers, submodules
 * and plain attributes alike, in slot order); PyTorch learns which is which by compiling the archive's
 * code/, where every module class is declared as (docs/pytorch-format-notes.md §7, [run 1.13]):
 *
 *   class Linear(Module):
 *     __parameters__ = ["weight", "bias", ]
 *     __buffers__ = []
 *     weight : Tensor
 *     ...
 *
 * in code/<module path>.py (`code/__torch__/torch/nn/modules/linear.py` declares classes of
 * `__torch__.torch.nn.modules.linear`; mangled variants live in `.../linear/___torch_mangle_0.py`).
 * libckpt reads these files as text and only these lines: a column-0 `class NAME(...)` line opens a
 * class, its `__parameters__` / `__buffers__` lines (two-space indent, a list of double-quoted
 * identifiers) say what it holds, any other column-0 line closes it. Nothing is compiled or run; a
 * declaration line that does not have exactly this shape is refused rather than guessed at.
 */
#include <stdio.h>
#include <string.h>

#include "model_internal.h"
#include "unpickler.h"

typedef struct parser {
    ckpt_checkpoint *c;
    const char *record;
    size_t line_no;
    ckpt_error *err;
} parser;

static bool ident_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
}

static ckpt_status bad_line(parser *p, const char *what)
{
    ckpt_status s = ck_error_set(p->err, CKPT_ERR_UNSUPPORTED,
                                 "line %zu: %s (libckpt reads TorchScript class declarations as text and accepts only "
                                 "the shape torch.jit.save writes)", p->line_no, what);
    ck_error_in_record(p->err, p->record);
    return s;
}

/* `["a", "b", ]` (or `[]`) at line[0 .. n) into names. */
static ckpt_status parse_names(parser *p, const char *line, size_t n, ck_strmap *names)
{
    size_t i = 0;
    if (i >= n || line[i++] != '[') return bad_line(p, "a name list must start with '['");
    for (;;) {
        while (i < n && line[i] == ' ') i++;
        if (i < n && line[i] == ']') {
            i++;
            break;
        }
        if (i >= n || line[i] != '"') return bad_line(p, "expected a double-quoted name or ']'");
        size_t start = ++i;
        while (i < n && ident_char(line[i])) i++;
        if (i >= n || line[i] != '"' || i == start) return bad_line(p, "a declared name is not an identifier");
        const char *name = ck_arena_strndup(&p->c->store.arena, line + start, i - start);
        if (!name || !ck_strmap_put(names, name, i - start, (void *)name)) return ck_out_of_memory(&p->c->store, p->err);
        i++;
        if (i >= n || line[i] != ',') return bad_line(p, "expected ',' after a declared name");
        i++;
    }
    if (i != n) return bad_line(p, "unexpected text after a name list");
    return CKPT_OK;
}

static ckpt_status parse_file(parser *p, const char *module, const char *text, size_t len, ck_ts_classes *out)
{
    ck_arena *a = &p->c->store.arena;
    ck_ts_class *cur = NULL;
    size_t pos = 0;
    p->line_no = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        p->line_no++;
        if (n && line[n - 1] == '\r') n--;
        if (n == 0) continue;
        if (line[0] != ' ') {
            cur = NULL;
            if (n < 6 || memcmp(line, "class ", 6) != 0) continue;
            size_t i = 6, start = 6;
            while (i < n && ident_char(line[i])) i++;
            if (i == start || i >= n || (line[i] != '(' && line[i] != ':')) return bad_line(p, "malformed class line");
            size_t ml = strlen(module), nl2 = i - start;
            char *qual = ck_arena_alloc(a, ml + nl2 + 2, 1);
            cur = ck_arena_zalloc(a, sizeof *cur, _Alignof(ck_ts_class));
            if (!qual || !cur) return ck_out_of_memory(&p->c->store, p->err);
            memcpy(qual, module, ml);
            qual[ml] = '.';
            memcpy(qual + ml + 1, line + start, nl2);
            qual[ml + 1 + nl2] = '\0';
            cur->name = qual;
            ck_strmap_init(&cur->params, a);
            ck_strmap_init(&cur->buffers, a);
            void *old = NULL;
            if (!ck_strmap_add(&out->by_name, qual, ml + 1 + nl2, cur, &old)) return ck_out_of_memory(&p->c->store, p->err);
            if (old) return bad_line(p, "a class is declared twice");
            continue;
        }
        static const char params[] = "  __parameters__ = ", buffers[] = "  __buffers__ = ";
        bool is_p = n >= sizeof params - 1 && memcmp(line, params, sizeof params - 1) == 0;
        bool is_b = n >= sizeof buffers - 1 && memcmp(line, buffers, sizeof buffers - 1) == 0;
        if (!is_p && !is_b) continue;
        if (!cur) return bad_line(p, "a __parameters__ / __buffers__ line outside a class");
        size_t skip = is_p ? sizeof params - 1 : sizeof buffers - 1;
        ckpt_status s = parse_names(p, line + skip, n - skip, is_p ? &cur->params : &cur->buffers);
        if (s) return s;
        if (is_p) cur->module = true;
    }
    return CKPT_OK;
}

ckpt_status ck_ts_read_classes(ckpt_checkpoint *c, const ck_zip *z, ckpt_error *err)
{
    ck_arena *a = &c->store.arena;
    ck_ts_classes *out = ck_arena_zalloc(a, sizeof *out, _Alignof(ck_ts_classes));
    if (!out) return ck_out_of_memory(&c->store, err);
    ck_strmap_init(&out->by_name, a);
    size_t plen = strlen(c->prefix);
    parser p = {.c = c, .err = err};
    for (size_t i = 0; i < z->count; i++) {
        const ck_zip_member *m = &z->members[i];
        /* <prefix>/code/<path>.py -> module "<path with / as .>" */
        if (m->name_len < plen + 6 + 3 || memcmp(m->name + plen, "/code/", 6) != 0) continue;
        const char *rel = m->name + plen + 6;
        size_t rl = m->name_len - plen - 6;
        if (rl < 4 || memcmp(rel + rl - 3, ".py", 3) != 0) continue;
        char *module = ck_arena_strndup(a, rel, rl - 3);
        if (!module) return ck_out_of_memory(&c->store, err);
        for (char *q = module; *q; q++)
            if (*q == '/') *q = '.';
        uint8_t *text;
        ckpt_status s = ck_zip_read_copy(z, m, a, true, &text, err);
        if (s) return s;
        p.record = m->name;
        if ((s = parse_file(&p, module, (const char *)text, (size_t)m->size, out))) return s;
    }
    c->ts_classes = out;
    return CKPT_OK;
}

const ck_ts_class *ck_ts_class_of(const ckpt_checkpoint *c, const ckpt_value *obj)
{
    if (!c->ts_classes || !obj || obj->kind != CKPT_KIND_OBJECT || !obj->type_name) return NULL;
    return ck_strmap_get(&c->ts_classes->by_name, obj->type_name, strlen(obj->type_name));
}
