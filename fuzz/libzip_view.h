/*
 * libzip_view.h: the libzip side of fuzz_zip_libzip, in its own file because libzip's <zip.h> and
 * libckpt's internal "zip.h" share a name.
 */
#ifndef CK_FUZZ_LIBZIP_VIEW_H
#define CK_FUZZ_LIBZIP_VIEW_H

#include <stddef.h>
#include <stdint.h>

typedef struct fz_libzip fz_libzip;

/* NULL when libzip refuses the archive (*why gets libzip's reason, static or owned by nothing). */
fz_libzip *fz_libzip_open(const uint8_t *data, size_t len, char *why, size_t why_cap);
void fz_libzip_close(fz_libzip *z);
int64_t fz_libzip_count(fz_libzip *z);
/* Raw (undecoded) name of entry i, or NULL. */
const char *fz_libzip_name(fz_libzip *z, uint64_t i);
/* Reads entry i whole (at most cap bytes + 1 to detect excess); returns bytes read or -1 (why filled). */
int64_t fz_libzip_read(fz_libzip *z, uint64_t i, uint8_t *buf, size_t cap, char *why, size_t why_cap);

#endif
