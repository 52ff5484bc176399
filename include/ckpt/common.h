/*
 * libckpt: read and write PyTorch checkpoints safely.
 *
 * common.h: version, export macro and the status codes shared by every part of the API.
 */
#ifndef CKPT_COMMON_H
#define CKPT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CKPT_VERSION_MAJOR 0
#define CKPT_VERSION_MINOR 1
#define CKPT_VERSION_PATCH 0
/* MAJOR * 10000 + MINOR * 100 + PATCH, comparable with ckpt_version_number(). */
#define CKPT_VERSION_NUMBER (CKPT_VERSION_MAJOR * 10000 + CKPT_VERSION_MINOR * 100 + CKPT_VERSION_PATCH)
#define CKPT_VERSION_STRING "0.1.0"

/* Every public symbol carries CKPT_API; everything else is hidden (-fvisibility=hidden). */
#if defined(_WIN32)
#  if defined(CKPT_BUILDING_LIBRARY) && defined(CKPT_SHARED)
#    define CKPT_API __declspec(dllexport)
#  else
#    define CKPT_API
#  endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define CKPT_API __attribute__((visibility("default")))
#else
#  define CKPT_API
#endif

/* The version of the library actually linked (may differ from the header's). */
CKPT_API unsigned ckpt_version_number(void);
CKPT_API const char *ckpt_version_string(void);

/*
 * Status codes. CKPT_OK is 0; every failure is negative. The error object (error.h) carries the same
 * code plus a message and the place of the failure.
 */
typedef enum ckpt_status {
    CKPT_OK = 0,
    CKPT_ERR_INVALID_ARG = -1, /* API misuse: NULL handle, bad enum value, wrong value kind */
    CKPT_ERR_NOMEM = -2,       /* the system allocator failed */
    CKPT_ERR_IO = -3,          /* open/read/write/mmap/rename failed */
    CKPT_ERR_FORMAT = -4,      /* the input is not a checkpoint at all (empty, HTML, LFS pointer...) */
    CKPT_ERR_ZIP = -5,         /* malformed or suspicious zip container */
    CKPT_ERR_PICKLE = -6,      /* malformed pickle stream, or an opcode used in a way that is refused */
    CKPT_ERR_BLOCKED = -7,     /* the pickle names a global that the allowlist does not allow */
    CKPT_ERR_TENSOR = -8,      /* tensor or storage metadata is inconsistent with the bytes present */
    CKPT_ERR_LIMIT = -9,       /* a resource limit (allocation, depth, memo, string size...) was hit */
    CKPT_ERR_UNSUPPORTED = -10,/* well-formed input using a feature libckpt does not implement */
    CKPT_ERR_NOT_FOUND = -11,  /* a requested key, record or entry does not exist */
    CKPT_ERR_STATE = -12,      /* calls made in the wrong order (e.g. popping a scope out of order) */
    CKPT_ERR_TYPE = -13        /* a value has the wrong type for what was asked of it */
} ckpt_status;

/* A short stable name for a status code: "CKPT_ERR_ZIP". */
CKPT_API const char *ckpt_status_name(ckpt_status status);

/* Releases memory the library returned to the caller (JSON text, formatted integers...). */
CKPT_API void ckpt_free(void *ptr);

#ifdef __cplusplus
}
#endif
#endif
