/* mapfile.h: getting a file's bytes, by mmap when possible, else by reading. */
#ifndef CK_MAPFILE_H
#define CK_MAPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "errors.h"

typedef struct ck_mapped {
    const uint8_t *data;
    size_t len;
    bool is_mmap; /* else a malloc'd buffer */
    int fd;       /* the open file behind a mapping (for pread), or -1 */
} ck_mapped;

ckpt_status ck_map_file(const char *path, ck_mapped *out, ckpt_error *err);
void ck_unmap_file(ck_mapped *m);

#endif
