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

/* other tensor kinds (globals_kinds.c) */
CK_HANDLER(ck_h_rebuild_qtensor);
CK_HANDLER(ck_h_rebuild_sparse_tensor);
CK_HANDLER(ck_h_rebuild_sparse_csr_tensor);
CK_HANDLER(ck_h_rebuild_meta_tensor_no_storage);
CK_HANDLER(ck_h_rebuild_wrapper_subclass);
CK_HANDLER(ck_h_rebuild_device_tensor_from_cpu_tensor);
CK_HANDLER(ck_h_rebuild_device_tensor_from_numpy);

/* Helpers shared by the tensor handlers (globals_torch.c). */
ckpt_status ck_no_kwargs(const ck_reg_entry *e, ckpt_value *kwargs, ckpt_error *err);
/* A new TENSOR node with a zeroed tensor of type "torch.Tensor"; NULL when out of memory. */
ckpt_value *ck_tensor_node(ck_unpickler *u, ckpt_tensor **t);
/* (storage, storage_offset, size, stride) at args[0..3], validated; dtype INVALID: the storage's. */
ckpt_status ck_rebuild_strided(ck_unpickler *u, const ck_reg_entry *e, ckpt_value *args, ckpt_dtype dtype,
                               ckpt_value **out, ckpt_tensor **tout, ckpt_error *err);
/* requires_grad at args[i], backward_hooks at args[i + 1]. */
ckpt_status ck_grad_and_hooks(const ck_reg_entry *e, ckpt_value *args, size_t i, ckpt_tensor *t, ckpt_error *err);
/* A Parameter node sharing data's storage and metadata. */
ckpt_status ck_make_parameter(ck_unpickler *u, const ck_reg_entry *e, ckpt_value *data, bool requires_grad,
                              ckpt_value **out, ckpt_tensor **tout, ckpt_error *err);

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
