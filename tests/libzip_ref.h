/*
 * libzip_ref.h: libzip as an independent reference reader for the zip tests. Compiled on its own
 * (without libckpt's internal include directory, whose zip.h would shadow libzip's <zip.h>).
 */
#ifndef CKPT_TEST_LIBZIP_REF_H
#define CKPT_TEST_LIBZIP_REF_H

#include <stddef.h>
#include <stdint.h>

typedef struct tst_zip_entry {
    char *name;    /* raw name bytes, NUL-terminated */
    uint8_t *data; /* the member's bytes as libzip decodes them */
    size_t len;
} tst_zip_entry;

/*
 * Opens an archive in memory with ZIP_RDONLY | ZIP_CHECKCONS and reads every member. Returns the
 * number of members (*out: malloc'd array, free with tst_libzip_free), or -1 when libzip refuses the
 * archive or a member, with the reason in `why`.
 */
long tst_libzip_read(const uint8_t *data, size_t len, tst_zip_entry **out, char *why, size_t why_cap);
void tst_libzip_free(tst_zip_entry *entries, long count);

#endif
