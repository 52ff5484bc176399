/* libzip_ref.c: see libzip_ref.h. */
#include "libzip_ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

void tst_libzip_free(tst_zip_entry *e, long count)
{
    for (long i = 0; e && i < count; i++) {
        free(e[i].name);
        free(e[i].data);
    }
    free(e);
}

long tst_libzip_read(const uint8_t *data, size_t len, tst_zip_entry **out, char *why, size_t why_cap)
{
    *out = NULL;
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(data, len, 0, &ze);
    if (!src) {
        snprintf(why, why_cap, "zip_source_buffer_create: %s", zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return -1;
    }
    zip_t *za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    if (!za) {
        snprintf(why, why_cap, "%s", zip_error_strerror(&ze));
        zip_source_free(src);
        zip_error_fini(&ze);
        return -1;
    }
    zip_error_fini(&ze);
    zip_int64_t count = zip_get_num_entries(za, 0);
    tst_zip_entry *e = calloc(count > 0 ? (size_t)count : 1, sizeof *e);
    long got = 0;
    for (zip_int64_t i = 0; e && i < count; i++) {
        zip_stat_t st;
        const char *name = zip_get_name(za, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
        if (!name || zip_stat_index(za, (zip_uint64_t)i, ZIP_FL_ENC_RAW, &st) != 0) {
            snprintf(why, why_cap, "entry %lld: %s", (long long)i, zip_strerror(za));
            got = -1;
            break;
        }
        e[i].name = strdup(name);
        e[i].len = (size_t)st.size;
        e[i].data = malloc(e[i].len + 1);
        zip_file_t *f = zip_fopen_index(za, (zip_uint64_t)i, 0);
        if (!f) {
            snprintf(why, why_cap, "entry %s: %s", name, zip_strerror(za));
            got = -1;
            break;
        }
        zip_int64_t r = zip_fread(f, e[i].data, e[i].len);
        if (r < 0 || (size_t)r != e[i].len) {
            snprintf(why, why_cap, "entry %s: %s", name, r < 0 ? zip_file_strerror(f) : "short read");
            zip_fclose(f);
            got = -1;
            break;
        }
        /* reading to the end makes libzip check the CRC */
        char extra;
        if (zip_fread(f, &extra, 1) != 0) {
            snprintf(why, why_cap, "entry %s: %s", name, zip_file_strerror(f));
            zip_fclose(f);
            got = -1;
            break;
        }
        zip_fclose(f);
        got++;
    }
    zip_discard(za);
    if (got < 0) {
        tst_libzip_free(e, (long)count);
        return -1;
    }
    *out = e;
    return got;
}
