/*
 * safetensors.h: the safetensors format (https://github.com/huggingface/safetensors, format.md and the
 * reference reader safetensors/src/tensor.rs):
 *   8 bytes little-endian N, then N bytes of UTF-8 JSON (starting with '{', optionally padded with
 *   spaces), then the data. The JSON maps each tensor name to {"dtype", "shape", "data_offsets":
 *   [begin, end]} (offsets relative to the data), plus an optional "__metadata__" map of str to str.
 *   Sorted by offsets, the tensors must tile the data exactly from 0 to its end; each holds exactly
 *   numel x itemsize bytes, row-major, little-endian. N is at most 100,000,000.
 *
 * The reader loads such a file into the usual checkpoint model: the root is an OrderedDict of name ->
 * tensor in file order, each tensor with its own storage (zero copy with CKPT_LOAD_MMAP when aligned),
 * and `__metadata__` as the root's attribute of that name. The writer does the reverse (see
 * docs/writing.md for what it does with shared storages and non-tensor values).
 */
#ifndef CK_SAFETENSORS_H
#define CK_SAFETENSORS_H

#include <stdbool.h>
#include <stdint.h>
#include "checkpoint_internal.h"
#include "save_internal.h"
#include "sink.h"

#define CK_ST_MAX_HEADER 100000000u

/* The safetensors name of a dtype ("F32"), or NULL when the format has none. */
const char *ck_st_dtype_name(ckpt_dtype d);
ckpt_dtype ck_st_dtype_from_name(const char *name);

/* reader: fills c (format, root, storages) from the whole file in data[0, len) */
ckpt_status ck_st_load(ckpt_checkpoint *c, const uint8_t *data, size_t len, bool borrowable, ckpt_error *err);

/* writer */
typedef struct ck_st_item {
    char *name;
    const ckpt_tensor *t;
    uint64_t nbytes;
    int rank; /* dtype order of the reference writer: larger alignment first */
} ck_st_item;

typedef struct ck_st_plan {
    char *header;       /* padded JSON */
    size_t header_len;
    ck_st_item *items;  /* in data order */
    size_t count;
} ck_st_plan;

ckpt_status ck_st_prepare(const ckpt_value *root, const ckpt_save_options *opts, ck_st_plan *plan, ckpt_error *err);
ckpt_status ck_st_write(const ck_st_plan *plan, ck_sink *sink, ckpt_error *err);
void ck_st_plan_release(ck_st_plan *plan);

#endif
