/*
 * fuzz_model: model mode (CKPT_LOAD_MODEL: libckpt/model_globals.c, model.c, ts_code.c) and everything
 * that reads its result (schema.c, check.c), through ckpt_load_memory.
 * Input: a file ("PK..." zip, or a legacy stream), loaded as it is; or "<data.pkl>[SEP<data/0>]..."
 * (SEP = "\xff\xfeSTOR"), packed into a stored torch zip under "archive/"; a part "#code PATH\n<text>" is
 * a file code/PATH instead of a storage, and makes the zip a TorchScript archive (ts_code.c reads the
 * class declarations of its code/). Oracle: no crash or leak; a failure carries its status and a message;
 * for every checkpoint that loads, the state dict holds str keys, its tensors digest, every module has
 * a path and a class, the checkpoint's own schema (also after a JSON round trip, which must be stable)
 * finds nothing in it, and the report's JSON is produced.
 * Seeds come from fuzz/make_model_seeds.py (fuzz/corpus/fuzz_model/).
 */
#include <stdio.h>

#include "fuzz_common.h"
#include "fuzz_formats_common.h"

/* What a user does with a model-mode checkpoint; aborts on an inconsistency. */
static void exercise_model(const ckpt_checkpoint *ck)
{
    const ckpt_value *sd = ckpt_checkpoint_state_dict(ck);
    if ((sd == NULL) != (ckpt_checkpoint_model_source(ck) == CKPT_MODEL_NONE)) abort();
    if (!sd) return;
    if (!ckpt_checkpoint_model_path(ck) || !ckpt_checkpoint_model_stripped_prefix(ck)) abort();
    for (size_t i = 0; i < ckpt_value_len(sd); i++) {
        size_t n;
        if (!ckpt_value_str(ckpt_value_dict_key(sd, i), &n)) abort();
        const ckpt_tensor *t = ckpt_value_tensor(ckpt_value_dict_value(sd, i));
        uint64_t h;
        if (t && ckpt_tensor_data(t) && ckpt_tensor_xxh3_64(t, &h, NULL) != CKPT_OK) abort();
    }
    for (size_t i = 0; i < ckpt_checkpoint_num_modules(ck); i++) {
        const char *path = NULL;
        const ckpt_value *m = ckpt_checkpoint_module(ck, i, &path);
        if (!m || !path || !ckpt_value_type_name(m)) abort();
    }
    ckpt_schema *s = NULL, *s2 = NULL;
    ckpt_report *r = NULL;
    char *j1 = NULL, *j2 = NULL, *rep = NULL;
    if (ckpt_schema_from_checkpoint(ck, &s, NULL) != CKPT_OK) abort();
    if (ckpt_check(ck, s, &r, NULL) != CKPT_OK || ckpt_report_total(r) != 0) abort();
    if (ckpt_report_to_json(r, 0, &rep, NULL) != CKPT_OK) abort();
    ckpt_report_free(r);
    r = NULL;
    if (ckpt_schema_to_json(s, 0, &j1, NULL) != CKPT_OK) abort();
    /* keys holding NUL or lone surrogates do not survive JSON unchanged; anything else must */
    if (ckpt_schema_parse(j1, strlen(j1), &s2, NULL) == CKPT_OK) {
        if (ckpt_schema_to_json(s2, 0, &j2, NULL) != CKPT_OK || strcmp(j1, j2) != 0) abort();
        if (ckpt_check(ck, s2, &r, NULL) != CKPT_OK) abort();
    }
    ckpt_report_free(r);
    ckpt_free(j1);
    ckpt_free(j2);
    ckpt_free(rep);
    ckpt_schema_free(s);
    ckpt_schema_free(s2);
}

static void load(const uint8_t *p, size_t n, unsigned flags)
{
    static const unsigned modes[] = {0, CKPT_LOAD_SKIP_DATA};
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
        ckpt_load_options *o = ff_options(flags | modes[m]);
        ckpt_error *err = ckpt_error_new();
        ckpt_checkpoint *ck = NULL;
        ckpt_status s = ckpt_load_memory(p, n, o, &ck, err);
        if (s == CKPT_OK) {
            if (!ck) abort();
            ff_exercise(ck);
            exercise_model(ck);
            ckpt_checkpoint_free(ck);
        } else if (ck || ckpt_error_code(err) != s || !*ckpt_error_message(err)) {
            abort();
        }
        ckpt_error_free(err);
        ckpt_load_options_free(o);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    if ((len >= 2 && data[0] == 'P' && data[1] == 'K') || (len >= 2 && data[0] == 0x80)) {
        load(data, len, CKPT_LOAD_MODEL | CKPT_LOAD_TORCHSCRIPT);
        return 0;
    }
    const uint8_t *part[16];
    size_t plen[16];
    size_t k = ff_split(data, len, part, plen, 16);
    fz_member m[24];
    size_t n = 0, storages = 0;
    bool ts = false;
    snprintf(m[n].name, sizeof m[n].name, "archive/data.pkl");
    m[n].data = part[0];
    m[n++].len = plen[0];
    for (size_t i = 1; i < k; i++, n++) {
        const uint8_t *nl = plen[i] > 6 ? memchr(part[i], '\n', plen[i] < 48 ? plen[i] : 48) : NULL;
        if (nl && memcmp(part[i], "#code ", 6) == 0) {
            /* a code file: "#code PATH\n" then its text; the path keeps [A-Za-z0-9_./] only */
            size_t pl = (size_t)(nl - part[i]) - 6, o = (size_t)snprintf(m[n].name, sizeof m[n].name, "archive/code/");
            for (size_t c = 0; c < pl && o + 1 < sizeof m[n].name; c++) {
                char ch = (char)part[i][6 + c];
                if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                    ch == '.' || ch == '/')
                    m[n].name[o++] = ch;
            }
            m[n].name[o] = '\0';
            m[n].data = nl + 1;
            m[n].len = plen[i] - (size_t)(nl + 1 - part[i]);
            ts = true;
            continue;
        }
        snprintf(m[n].name, sizeof m[n].name, "archive/data/%zu", storages++);
        m[n].data = part[i];
        m[n].len = plen[i];
    }
    static const uint8_t constants[] = {0x80, 0x02, ')', '.'};
    if (ts) m[n++] = (fz_member){"archive/constants.pkl", constants, sizeof constants};
    m[n++] = (fz_member){"archive/version", (const uint8_t *)"3\n", 2};
    size_t zlen;
    uint8_t *z = fz_make_zip(m, n, &zlen);
    load(z, zlen, CKPT_LOAD_MODEL | (ts ? CKPT_LOAD_TORCHSCRIPT : 0));
    free(z);
    return 0;
}
