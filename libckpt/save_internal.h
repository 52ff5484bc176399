/* save_internal.h: the layout of save options, shared by the .pt and safetensors writers. */
#ifndef CK_SAVE_INTERNAL_H
#define CK_SAVE_INTERNAL_H

#include <stddef.h>
#include "ckpt/writer.h"

struct ckpt_save_options {
    ckpt_save_format format;
    unsigned flags;
    char *prefix;                 /* NULL: from the file name */
    const ckpt_registry *registry; /* NULL: the default */
    char **meta_keys, **meta_values; /* extra safetensors __metadata__ */
    size_t nmeta;
};

#endif
