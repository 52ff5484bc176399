/*
 * fuzz_json: load, then the `ckpt inspect --json` document (pretty with digests, compact without),
 * which must parse back as a JSON object. Input as for fuzz_load.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

static void check_json(const ckpt_checkpoint *ck, unsigned flags)
{
    char *text = NULL;
    ckpt_error *err = ckpt_error_new();
    ckpt_status s = ckpt_checkpoint_to_json(ck, "fuzz.pt", flags, &text, err);
    if (s == CKPT_OK) {
        if (!text) abort();
        json_error_t jerr;
        json_t *doc = json_loads(text, JSON_ALLOW_NUL, &jerr);
        if (!doc || !json_is_object(doc) || !json_is_array(json_object_get(doc, "tensors")) ||
            !json_is_array(json_object_get(doc, "values")))
            abort(); /* the writer produced something that is not the documented JSON */
        if (json_array_size(json_object_get(doc, "tensors")) != ckpt_checkpoint_num_tensors(ck)) abort();
        json_decref(doc);
        ckpt_free(text);
    } else if (text || ckpt_error_code(err) != s) {
        abort();
    }
    ckpt_error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    uint8_t *owned;
    size_t n;
    const uint8_t *p = fz_checkpoint_bytes(data, len, &n, &owned);
    ckpt_load_options *o = fz_options(0);
    ckpt_checkpoint *ck = NULL;
    if (ckpt_load_memory(p, n, o, &ck, NULL) == CKPT_OK) {
        check_json(ck, CKPT_JSON_PRETTY);
        check_json(ck, CKPT_JSON_NO_DIGEST);
        ckpt_checkpoint_free(ck);
    }
    ckpt_load_options_free(o);
    free(owned);
    return 0;
}
