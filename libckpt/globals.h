/* globals.h: handlers for the globals of the default allowlist (allowlist.c holds the table). */
#ifndef CK_GLOBALS_H
#define CK_GLOBALS_H

#include "unpickler.h"

#define CK_HANDLER(name) \
    ckpt_status name(ck_unpickler *u, const ck_reg_entry *e, ckpt_value *args, ckpt_value *kwargs, ckpt_value **out, \
                     ckpt_error *err)

/* Python builtins and collections (globals_builtin.c) */
CK_HANDLER(ck_h_ordered_dict);
CK_HANDLER(ck_h_counter);
CK_HANDLER(ck_h_set);
CK_HANDLER(ck_h_frozenset);
CK_HANDLER(ck_h_bytearray);
CK_HANDLER(ck_h_bytes);
CK_HANDLER(ck_h_complex);
CK_HANDLER(ck_h_codecs_encode);

/* torch (globals_torch.c) */
CK_HANDLER(ck_h_size);
CK_HANDLER(ck_h_device);
CK_HANDLER(ck_h_get_layout);
CK_HANDLER(ck_h_rebuild_tensor);
CK_HANDLER(ck_h_rebuild_tensor_v2);
CK_HANDLER(ck_h_rebuild_tensor_v3);
CK_HANDLER(ck_h_rebuild_parameter);
CK_HANDLER(ck_h_rebuild_parameter_with_state);
CK_HANDLER(ck_h_rebuild_from_type_v2);
CK_HANDLER(ck_h_parameter_new);
CK_HANDLER(ck_h_not_yet);

/* Built-in handlers that are off by default (ckpt_global_handler; globals_optional.c, globals_numpy.c). */
#define CK_OPT_HANDLER(name) \
    ckpt_status name(ckpt_handler_ctx *ctx, const ckpt_value *node, void *user, ckpt_value **out, ckpt_error *err)
CK_OPT_HANDLER(ck_h_np_ndarray);
CK_OPT_HANDLER(ck_h_np_dtype);
CK_OPT_HANDLER(ck_h_np_reconstruct);
CK_OPT_HANDLER(ck_h_np_scalar);
CK_OPT_HANDLER(ck_h_np_frombuffer);
CK_OPT_HANDLER(ck_h_namespace);
CK_OPT_HANDLER(ck_h_defaultdict);
CK_OPT_HANDLER(ck_h_slice);
CK_OPT_HANDLER(ck_h_range);

/* str() of a numpy.dtype node: "float64", or ">f8" for big-endian elements. */
void ck_numpy_dtype_str(const ckpt_value *v, char *buf, size_t cap);

/* The store a handler context allocates from (handler.c). */
ck_store *ck_handler_store(ckpt_handler_ctx *ctx);

/* A new node of a dict subclass ("collections.OrderedDict"). */
ckpt_value *ck_new_typed_dict(ck_store *st, const char *type_name, size_t cap);

#endif
