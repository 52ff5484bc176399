/*
 * fuzz_common.h: helpers shared by the libFuzzer harnesses (never part of the library).
 *
 * Checkpoint-level harnesses (fuzz_load, fuzz_json) take two input shapes, so the fuzzer reaches deep
 * code without having to forge CRC-32s:
 *   - input starting with "PK": the bytes are the file, loaded as they are;
 *   - anything else: "<data.pkl bytes>[FZ_SEP<record data/0>][FZ_SEP<record data/1>]...", which the
 *     harness wraps in a valid torch zip (correct CRCs, 64-byte aligned) before loading.
 */
#ifndef CK_FUZZ_COMMON_H
#define CK_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "ckpt/ckpt.h"

#define FZ_SEP "\xff\xfe" "STOR"
#define FZ_SEP_LEN 6

/* One member of a zip built by fz_make_zip. */
typedef struct {
    char name[64];
    const uint8_t *data;
    size_t len;
} fz_member;

/* A zip of stored members with correct CRC-32s, each 64-byte aligned as torch writes them. Caller frees. */
uint8_t *fz_make_zip(const fz_member *m, size_t n, size_t *out_len);

/* Builds a stored torch zip ("archive/...") from the structured shape above. Caller frees. */
uint8_t *fz_wrap_checkpoint(const uint8_t *data, size_t len, size_t *out_len);

/* Returns the bytes to load: `data` itself (PK...) or a wrapped zip in *owned (free it). */
const uint8_t *fz_checkpoint_bytes(const uint8_t *data, size_t len, size_t *out_len, uint8_t **owned);

/* Limits the harnesses run with: small enough that libFuzzer's -rss_limit_mb is never the first to trip. */
ckpt_load_options *fz_options(unsigned flags);

/* A registry with the defaults plus a few user entries (generic objects and calls). Never freed. */
const ckpt_registry *fz_registry(void);

/*
 * Exercises a loaded checkpoint the way users do: every tensor's accessors, digest and contiguous copy
 * (bounded by `max_bytes` per tensor), a walk, ckpt_checkpoint_find on every key the walk reports, the
 * value accessors. Aborts on any inconsistency it can detect.
 */
void fz_exercise(const ckpt_checkpoint *ck, uint64_t max_bytes);

#endif
