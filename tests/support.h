/* support.h: helpers shared by the Check suites. */
#ifndef CKPT_TEST_SUPPORT_H
#define CKPT_TEST_SUPPORT_H

#include <check.h>
#include <ckpt/ckpt.h>
#include <stddef.h>
#include <stdint.h>

/* Absolute path of a file under tests/ (the source tree), e.g. tst_path("fixtures/data/mlp.pt"). */
const char *tst_path(const char *relative);
/* Absolute path under ../shared/corpus/external, or NULL (with a printed reason) when it is absent. */
const char *tst_external(const char *relative);
/* Whole file into malloc'd memory (ck_assert on failure). */
uint8_t *tst_read_file(const char *path, size_t *len);
/* Runs a suite and returns the process exit status (0 when all tests passed). */
int tst_run(Suite *s);

/* Loads from memory with default options; returns the status, *out (may be NULL) receives the checkpoint. */
ckpt_status tst_load_mem(const void *data, size_t len, ckpt_checkpoint **out, ckpt_error *err);

/* Asserts a load of `data` fails with `code` and a message containing `needle` (NULL: any). */
#define tst_assert_load_fails(data, len, code, needle) tst_assert_load_fails_(data, len, code, needle, __FILE__, __LINE__)
void tst_assert_load_fails_(const void *data, size_t len, ckpt_status code, const char *needle, const char *file, int line);

/* Builds a minimal valid torch zip (prefix "archive") around a pickle and storage records, in memory. */
typedef struct tst_record {
    const char *name;   /* relative to the prefix, e.g. "data/0" */
    const void *data;
    size_t len;
} tst_record;
uint8_t *tst_make_checkpoint(const void *pickle, size_t pickle_len, const tst_record *extra, size_t n_extra,
                             size_t *out_len);
/* A stored zip of arbitrary members (names taken as given), the way torch lays it out. */
uint8_t *tst_make_zip(const tst_record *members, size_t n, size_t *out_len);

/*
 * Loads a checkpoint made by tst_make_checkpoint around `pickle` (and storage records), with options
 * (NULL: defaults). Returns the status; *out (may be NULL) receives the checkpoint.
 */
ckpt_status tst_load_pickle(const void *pickle, size_t pickle_len, const tst_record *extra, size_t n_extra,
                            const ckpt_load_options *opts, ckpt_checkpoint **out, ckpt_error *err);
/* A pickle given as a string literal: TST_PKL("\x80\x02N.") expands to pointer, length. */
#define TST_PKL(lit) (const void *)(lit), (sizeof(lit) - 1)

#endif
