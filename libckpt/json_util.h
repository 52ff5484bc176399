/* json_util.h: jansson helpers shared by the JSON writers (json_out.c, schema.c, check.c, scan.c). */
#ifndef CK_JSON_UTIL_H
#define CK_JSON_UTIL_H

#include <jansson.h>
#include <stddef.h>

/* A JSON string from bytes that may hold lone surrogates (pickle allows them): those become U+FFFD. */
json_t *ck_json_str(const char *p, size_t n);
/* The document as text in plain malloc memory (release with ckpt_free); CKPT_JSON_PRETTY indents. NULL
 * when out of memory. */
char *ck_json_dump(json_t *doc, unsigned flags);

#endif
