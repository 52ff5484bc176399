/* sniff.h: recognising what an input is before parsing it. */
#ifndef CK_SNIFF_H
#define CK_SNIFF_H

#include <stddef.h>
#include <stdint.h>

typedef enum ck_input_kind {
    CK_INPUT_ZIP,
    CK_INPUT_LEGACY,     /* torch < 1.6 magic-number pickle stream */
    CK_INPUT_TAR,        /* torch 0.1-0.3 tar */
    CK_INPUT_SAFETENSORS, /* 8-byte little-endian header length, then a JSON object */
    CK_INPUT_PICKLE,     /* a bare pickle */
    CK_INPUT_OTHER       /* not a checkpoint: see the description */
} ck_input_kind;

/* Classifies the input; for CK_INPUT_OTHER (and others) writes a short description ("an HTML page"). */
ck_input_kind ck_sniff(const uint8_t *p, size_t n, char *desc, size_t cap);

/* The legacy format's first pickle: PROTO 2, LONG1 of the magic number 0x1950a86a20f9469cfc6c, STOP. */
extern const uint8_t ck_legacy_magic_pickle[15];

#endif
