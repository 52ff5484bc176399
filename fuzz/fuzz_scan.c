/*
 * fuzz_scan: what a scanner does with an untrusted file, through the public scan API (scan.h): the
 * bytes as a file (zip, bare pickles, legacy stream, NumPy...), scanned with a registry holding a few
 * user entries; every accessor of the result; its JSON, which must parse back; and the disassembly of
 * the same bytes (`ckpt dis`), every line of which must be NUL-terminated text.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/scan.h"
#include "fuzz_common.h"

static void on_line(const char *line, void *user)
{
    if (!line) abort();
    (*(size_t *)user) += strlen(line) + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    ckpt_load_options *o = fz_options(0);
    ckpt_error *err = ckpt_error_new();
    ckpt_scan_result *r = NULL;
    ckpt_status s = ckpt_scan_memory(data, len, o, &r, err);
    if (!r) {
        if (s == CKPT_OK) abort(); /* success always gives a result */
    } else {
        if (s != ckpt_scan_error_code(r)) abort(); /* the status is the result's first parse error */
        for (size_t i = 0; i < ckpt_scan_num_globals(r); i++) {
            const char *name = ckpt_scan_global_name(r, i);
            if (!name || !*name || ckpt_scan_global_count(r, i) == 0 || !ckpt_scan_global_first_record(r, i)) abort();
            (void)ckpt_scan_global_status(r, i);
            (void)ckpt_scan_global_reason(r, i);
            (void)ckpt_scan_global_first_offset(r, i);
        }
        for (size_t i = 0; i < ckpt_scan_num_pickles(r); i++)
            if (!ckpt_scan_pickle_record(r, i)) abort();
        (void)ckpt_scan_worst(r);
        if (!ckpt_scan_format(r) || !ckpt_scan_error_message(r)) abort();
        char *text = NULL;
        if (ckpt_scan_result_to_json(r, "fuzz", &text, NULL) == CKPT_OK) {
            json_error_t jerr;
            json_t *doc = text ? json_loads(text, JSON_ALLOW_NUL, &jerr) : NULL;
            if (!doc || !json_is_object(doc)) abort();
            if (json_array_size(json_object_get(doc, "globals")) != ckpt_scan_num_globals(r)) abort();
            json_decref(doc);
            ckpt_free(text);
        }
        ckpt_scan_result_free(r);
    }
    size_t bytes = 0;
    (void)ckpt_disassemble_memory(data, len, o, on_line, &bytes, err);
    ckpt_error_free(err);
    ckpt_load_options_free(o);
    return 0;
}
