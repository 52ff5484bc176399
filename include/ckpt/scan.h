/*
 * scan.h: listing the globals a file's pickles reference, and disassembling them, without loading.
 *
 * A scan runs the same strict zip reader and the same pickle VM as a load, in scan mode: every global is
 * recorded (GLOBAL, STACK_GLOBAL operands however they were built, INST, EXT codes) and classified
 * against the registry, nothing is refused, no handler runs, no tensor is built and no storage record is
 * read. It covers every pickle in the file: each zip member that looks like a pickle whatever its name
 * (storage records the main pickle references are skipped), bare pickle files (several pickles back to
 * back are all read), legacy torch.save streams, and the pickles NumPy .npy files (also .npz members)
 * carry for object arrays. Like torch's get_unsafe_globals_in_checkpoint and
 * the hub scanners, but with the parser that loads.
 */
#ifndef CKPT_SCAN_H
#define CKPT_SCAN_H

#include "checkpoint.h"
#include "common.h"
#include "error.h"
#include "registry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ckpt_scan_result ckpt_scan_result;

/*
 * Scans a file or a buffer. The registry of opts (NULL: the default registry, with the calling thread's
 * scopes) classifies the globals; its limits bound the work. Returns CKPT_OK when every pickle parsed;
 * otherwise the first parse error (also in err and in the result). In both cases *out receives the
 * result, with every global seen before an error, unless the status is CKPT_ERR_NOMEM,
 * CKPT_ERR_INVALID_ARG or CKPT_ERR_IO (then *out is NULL).
 */
CKPT_API ckpt_status ckpt_scan_file(const char *path, const ckpt_load_options *opts, ckpt_scan_result **out,
                                    ckpt_error *err);
CKPT_API ckpt_status ckpt_scan_memory(const void *data, size_t len, const ckpt_load_options *opts,
                                      ckpt_scan_result **out, ckpt_error *err);
CKPT_API void ckpt_scan_result_free(ckpt_scan_result *r);

/* The globals in order of first appearance, each once ("module.name" after Python 2 normalisation;
 * an EXT code appears as "copyreg._extension_registry[N]"). */
CKPT_API size_t ckpt_scan_num_globals(const ckpt_scan_result *r);
CKPT_API const char *ckpt_scan_global_name(const ckpt_scan_result *r, size_t i);
CKPT_API ckpt_global_status ckpt_scan_global_status(const ckpt_scan_result *r, size_t i);
/*
 * For never-allowed globals: why (static text). builtins.getattr is never allowed, except that a load
 * accepts getattr(<allowed class>, 'NAME') (how Python >= 3.11 pickles an Enum member): when every
 * use in the file is that, it is reported allowed with this note as the reason. Otherwise NULL.
 */
CKPT_API const char *ckpt_scan_global_reason(const ckpt_scan_result *r, size_t i);
/* How many times the pickles reference it. */
CKPT_API uint64_t ckpt_scan_global_count(const ckpt_scan_result *r, size_t i);
/* Where it first appears: byte offset of the opcode within its pickle's record (the file for bare and
 * legacy streams) and the record ("" for bare and legacy streams). */
CKPT_API uint64_t ckpt_scan_global_first_offset(const ckpt_scan_result *r, size_t i);
CKPT_API const char *ckpt_scan_global_first_record(const ckpt_scan_result *r, size_t i);

/* The most severe status among the globals (CKPT_GLOBAL_ALLOWED when there are none). */
CKPT_API ckpt_global_status ckpt_scan_worst(const ckpt_scan_result *r);
/* "zip", "legacy", "pickle", "npy" (a NumPy file whose object array is a pickle), "tar", "unknown". */
CKPT_API const char *ckpt_scan_format(const ckpt_scan_result *r);
/* The pickles read: zip member names, "" for a bare/legacy stream (one entry per pickle). */
CKPT_API size_t ckpt_scan_num_pickles(const ckpt_scan_result *r);
CKPT_API const char *ckpt_scan_pickle_record(const ckpt_scan_result *r, size_t i);
/* The first parse error (CKPT_OK and "" when none). */
CKPT_API ckpt_status ckpt_scan_error_code(const ckpt_scan_result *r);
CKPT_API const char *ckpt_scan_error_message(const ckpt_scan_result *r);

/*
 * One JSON object on one line (docs/scan-json.md):
 *   {"file": str, "format": str, "pickles": [str], "globals": [{"name", "status", "count",
 *    "first_offset", "first_record"[, "reason"]}], "error": null|str}
 * *out is NUL-terminated (no newline), released with ckpt_free.
 */
CKPT_API ckpt_status ckpt_scan_result_to_json(const ckpt_scan_result *r, const char *file_label, char **out,
                                              ckpt_error *err);

/*
 * Disassembly (`ckpt dis`): fn receives each line of text for every pickle of the file (same pickles as
 * a scan): a header per pickle, then per opcode its offset, name, argument (long arguments cut to a
 * bounded length, bytes escaped), the stack depth after it, and for REDUCE / NEWOBJ / BUILD and friends
 * the global it acts on; a parse error ends that pickle with an "error:" line. Safe on hostile input:
 * the VM runs in scan mode within the limits of opts. The return value is as for ckpt_scan_memory.
 */
typedef void (*ckpt_dis_fn)(const char *line, void *user);
CKPT_API ckpt_status ckpt_disassemble_file(const char *path, const ckpt_load_options *opts, ckpt_dis_fn fn,
                                           void *user, ckpt_error *err);
CKPT_API ckpt_status ckpt_disassemble_memory(const void *data, size_t len, const ckpt_load_options *opts,
                                             ckpt_dis_fn fn, void *user, ckpt_error *err);

#ifdef __cplusplus
}
#endif
#endif
