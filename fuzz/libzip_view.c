/* libzip_view.c: see libzip_view.h. */
#include "libzip_view.h"

#include <stdio.h>
#include <stdlib.h>
#include <zip.h>

struct fz_libzip {
    zip_t *za;
};

fz_libzip *fz_libzip_open(const uint8_t *data, size_t len, char *why, size_t why_cap)
{
    zip_error_t err;
    zip_error_init(&err);
    zip_source_t *src = zip_source_buffer_create(data, len, 0, &err);
    if (!src) abort();
    zip_t *za = zip_open_from_source(src, ZIP_RDONLY, &err);
    if (!za) {
        snprintf(why, why_cap, "%s", zip_error_strerror(&err));
        zip_source_free(src);
        zip_error_fini(&err);
        return NULL;
    }
    zip_error_fini(&err);
    fz_libzip *z = malloc(sizeof *z);
    if (!z) abort();
    z->za = za;
    return z;
}

void fz_libzip_close(fz_libzip *z)
{
    if (!z) return;
    zip_discard(z->za); /* read-only: frees the archive and its source */
    free(z);
}

int64_t fz_libzip_count(fz_libzip *z) { return zip_get_num_entries(z->za, 0); }

const char *fz_libzip_name(fz_libzip *z, uint64_t i) { return zip_get_name(z->za, i, ZIP_FL_ENC_RAW); }

int64_t fz_libzip_read(fz_libzip *z, uint64_t i, uint8_t *buf, size_t cap, char *why, size_t why_cap)
{
    zip_file_t *f = zip_fopen_index(z->za, i, 0);
    if (!f) {
        snprintf(why, why_cap, "open: %s", zip_strerror(z->za));
        return -1;
    }
    int64_t got = 0;
    for (;;) {
        zip_int64_t r = zip_fread(f, buf + got, (zip_uint64_t)(cap + 1 - (size_t)got));
        if (r < 0) {
            snprintf(why, why_cap, "read: %s", zip_file_strerror(f));
            zip_fclose(f);
            return -1;
        }
        if (r == 0 || (size_t)(got += r) > cap) break;
    }
    zip_fclose(f);
    return got;
}
