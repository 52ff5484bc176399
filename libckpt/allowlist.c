/*
 * allowlist.c: the default registry = current PyTorch's weights-only allowlist
 * (torch/_weights_only_unpickler.py _get_allowed_globals; docs/pytorch-format-notes.md §1.1), plus
 * three harmless additions PyTorch lacks, so that files torch itself writes all load:
 *   builtins.bytes (b'' pickles as __builtin__.bytes() in protocol 2), builtins.frozenset, and
 *   torch._utils._rebuild_sparse_csr_tensor (written by torch <= 1.13 for CSR tensors),
 * and torch's dtype aliases (torch.float is torch.float32).
 * A legacy tensor class (torch.FloatTensor...) is allowed as a value but cannot be called: calling it
 * allocates memory of a size the file chooses, and no checkpoint needs that.
 */
#include "globals.h"
#include "registry_internal.h"
#include "util.h"

#define FN(mod, nm, h) {.module = mod, .name = nm, .kind = CK_G_FUNCTION, .call = h}
#define CLASS(mod, nm, h, newobj_) {.module = mod, .name = nm, .kind = CK_G_CLASS, .call = h, .newobj = newobj_}
#define DTYPE(nm, dt) {.module = "torch", .name = nm, .kind = CK_G_DTYPE, .dtype = dt, .type_name = "torch.dtype"}
#define STORAGE(mod, nm, dt) {.module = mod, .name = nm, .kind = CK_G_STORAGE_TYPE, .dtype = dt, .type_name = "type"}
#define CONST(mod, nm, type) {.module = mod, .name = nm, .kind = CK_G_CONSTANT, .type_name = type}
#define TENSOR_CLASSES(mod)                                                                                   \
    CONST(mod, "DoubleTensor", "type"), CONST(mod, "FloatTensor", "type"), CONST(mod, "HalfTensor", "type"),  \
    CONST(mod, "BFloat16Tensor", "type"), CONST(mod, "LongTensor", "type"), CONST(mod, "IntTensor", "type"),  \
    CONST(mod, "ShortTensor", "type"), CONST(mod, "CharTensor", "type"), CONST(mod, "ByteTensor", "type")
#define STORAGE_CLASSES(mod)                                                                                  \
    STORAGE(mod, "DoubleStorage", CKPT_DTYPE_FLOAT64), STORAGE(mod, "FloatStorage", CKPT_DTYPE_FLOAT32),      \
    STORAGE(mod, "HalfStorage", CKPT_DTYPE_FLOAT16), STORAGE(mod, "BFloat16Storage", CKPT_DTYPE_BFLOAT16),    \
    STORAGE(mod, "LongStorage", CKPT_DTYPE_INT64), STORAGE(mod, "IntStorage", CKPT_DTYPE_INT32),              \
    STORAGE(mod, "ShortStorage", CKPT_DTYPE_INT16), STORAGE(mod, "CharStorage", CKPT_DTYPE_INT8),             \
    STORAGE(mod, "ByteStorage", CKPT_DTYPE_UINT8), STORAGE(mod, "BoolStorage", CKPT_DTYPE_BOOL),              \
    STORAGE(mod, "ComplexFloatStorage", CKPT_DTYPE_COMPLEX64),                                               \
    STORAGE(mod, "ComplexDoubleStorage", CKPT_DTYPE_COMPLEX128)

static const ck_reg_entry entries[] = {
    /* containers and builtins */
    CLASS("collections", "OrderedDict", ck_h_ordered_dict, NULL),
    CLASS("collections", "Counter", ck_h_counter, NULL),
    CLASS("builtins", "set", ck_h_set, NULL),
    CLASS("builtins", "frozenset", ck_h_frozenset, NULL),
    CLASS("builtins", "bytearray", ck_h_bytearray, NULL),
    CLASS("builtins", "bytes", ck_h_bytes, NULL),
    CLASS("builtins", "complex", ck_h_complex, NULL),
    FN("_codecs", "encode", ck_h_codecs_encode),

    /* torch classes and helpers */
    CLASS("torch", "Size", ck_h_size, NULL),
    CLASS("torch", "device", ck_h_device, NULL),
    CLASS("torch", "Tensor", NULL, NULL),
    CLASS("torch.nn.parameter", "Parameter", NULL, ck_h_parameter_new),
    FN("torch.serialization", "_get_layout", ck_h_get_layout),

    /* tensor rebuild functions */
    FN("torch._utils", "_rebuild_tensor", ck_h_rebuild_tensor),
    FN("torch._utils", "_rebuild_tensor_v2", ck_h_rebuild_tensor_v2),
    FN("torch._utils", "_rebuild_tensor_v3", ck_h_rebuild_tensor_v3),
    FN("torch._utils", "_rebuild_parameter", ck_h_rebuild_parameter),
    FN("torch._utils", "_rebuild_parameter_with_state", ck_h_rebuild_parameter_with_state),
    FN("torch._tensor", "_rebuild_from_type_v2", ck_h_rebuild_from_type_v2),
    FN("torch._utils", "_rebuild_qtensor", ck_h_rebuild_qtensor),
    FN("torch._utils", "_rebuild_sparse_tensor", ck_h_rebuild_sparse_tensor),
    FN("torch._utils", "_rebuild_sparse_csr_tensor", ck_h_rebuild_sparse_csr_tensor),
    FN("torch._utils", "_rebuild_meta_tensor_no_storage", ck_h_rebuild_meta_tensor_no_storage),
    FN("torch._utils", "_rebuild_wrapper_subclass", ck_h_rebuild_wrapper_subclass),
    FN("torch._utils", "_rebuild_device_tensor_from_numpy", ck_h_rebuild_device_tensor_from_numpy),
    FN("torch._utils", "_rebuild_device_tensor_from_cpu_tensor", ck_h_rebuild_device_tensor_from_cpu_tensor),

    /* storages: typed classes name the element type; UntypedStorage counts bytes */
    STORAGE_CLASSES("torch"),
    STORAGE_CLASSES("torch.cuda"),
    STORAGE("torch", "QUInt8Storage", CKPT_DTYPE_QUINT8),
    STORAGE("torch", "QInt8Storage", CKPT_DTYPE_QINT8),
    STORAGE("torch", "QInt32Storage", CKPT_DTYPE_QINT32),
    STORAGE("torch", "QUInt4x2Storage", CKPT_DTYPE_QUINT4X2),
    STORAGE("torch", "QUInt2x4Storage", CKPT_DTYPE_QUINT2X4),
    {.module = "torch.storage", .name = "UntypedStorage", .kind = CK_G_STORAGE_TYPE, .dtype = CKPT_DTYPE_UINT8,
     .flags = CK_RF_UNTYPED, .type_name = "type"},
    CONST("torch.storage", "TypedStorage", "type"),

    /* legacy tensor classes (values only) */
    TENSOR_CLASSES("torch"), CONST("torch", "BoolTensor", "type"),
    TENSOR_CLASSES("torch.cuda"), CONST("torch.cuda", "BoolTensor", "type"),
    TENSOR_CLASSES("torch.sparse"),
    TENSOR_CLASSES("torch.cuda.sparse"),

    /* dtypes (primary names, then torch's aliases) */
    DTYPE("float32", CKPT_DTYPE_FLOAT32), DTYPE("float64", CKPT_DTYPE_FLOAT64), DTYPE("float16", CKPT_DTYPE_FLOAT16),
    DTYPE("bfloat16", CKPT_DTYPE_BFLOAT16), DTYPE("complex32", CKPT_DTYPE_COMPLEX32),
    DTYPE("complex64", CKPT_DTYPE_COMPLEX64), DTYPE("complex128", CKPT_DTYPE_COMPLEX128),
    DTYPE("int8", CKPT_DTYPE_INT8), DTYPE("int16", CKPT_DTYPE_INT16), DTYPE("int32", CKPT_DTYPE_INT32),
    DTYPE("int64", CKPT_DTYPE_INT64), DTYPE("uint8", CKPT_DTYPE_UINT8), DTYPE("uint16", CKPT_DTYPE_UINT16),
    DTYPE("uint32", CKPT_DTYPE_UINT32), DTYPE("uint64", CKPT_DTYPE_UINT64), DTYPE("bool", CKPT_DTYPE_BOOL),
    DTYPE("qint8", CKPT_DTYPE_QINT8), DTYPE("quint8", CKPT_DTYPE_QUINT8), DTYPE("qint32", CKPT_DTYPE_QINT32),
    DTYPE("quint4x2", CKPT_DTYPE_QUINT4X2), DTYPE("quint2x4", CKPT_DTYPE_QUINT2X4),
    DTYPE("float8_e4m3fn", CKPT_DTYPE_FLOAT8_E4M3FN), DTYPE("float8_e5m2", CKPT_DTYPE_FLOAT8_E5M2),
    DTYPE("float8_e4m3fnuz", CKPT_DTYPE_FLOAT8_E4M3FNUZ), DTYPE("float8_e5m2fnuz", CKPT_DTYPE_FLOAT8_E5M2FNUZ),
    DTYPE("float8_e8m0fnu", CKPT_DTYPE_FLOAT8_E8M0FNU), DTYPE("bits8", CKPT_DTYPE_BITS8),
    DTYPE("bits16", CKPT_DTYPE_BITS16), DTYPE("bits1x8", CKPT_DTYPE_BITS1X8), DTYPE("bits2x4", CKPT_DTYPE_BITS2X4),
    DTYPE("bits4x2", CKPT_DTYPE_BITS4X2), DTYPE("float4_e2m1fn_x2", CKPT_DTYPE_FLOAT4_E2M1FN_X2),
    DTYPE("uint1", CKPT_DTYPE_UINT1), DTYPE("uint2", CKPT_DTYPE_UINT2), DTYPE("uint3", CKPT_DTYPE_UINT3),
    DTYPE("uint4", CKPT_DTYPE_UINT4), DTYPE("uint5", CKPT_DTYPE_UINT5), DTYPE("uint6", CKPT_DTYPE_UINT6),
    DTYPE("uint7", CKPT_DTYPE_UINT7), DTYPE("int1", CKPT_DTYPE_INT1), DTYPE("int2", CKPT_DTYPE_INT2),
    DTYPE("int3", CKPT_DTYPE_INT3), DTYPE("int4", CKPT_DTYPE_INT4), DTYPE("int5", CKPT_DTYPE_INT5),
    DTYPE("int6", CKPT_DTYPE_INT6), DTYPE("int7", CKPT_DTYPE_INT7),
    DTYPE("float", CKPT_DTYPE_FLOAT32), DTYPE("double", CKPT_DTYPE_FLOAT64), DTYPE("half", CKPT_DTYPE_FLOAT16),
    DTYPE("cfloat", CKPT_DTYPE_COMPLEX64), DTYPE("cdouble", CKPT_DTYPE_COMPLEX128),
    DTYPE("chalf", CKPT_DTYPE_COMPLEX32), DTYPE("short", CKPT_DTYPE_INT16), DTYPE("int", CKPT_DTYPE_INT32),
    DTYPE("long", CKPT_DTYPE_INT64),

    /* quantization schemes */
    CONST("torch", "per_tensor_affine", "torch.qscheme"),
    CONST("torch", "per_tensor_symmetric", "torch.qscheme"),
    CONST("torch", "per_channel_affine", "torch.qscheme"),
    CONST("torch", "per_channel_symmetric", "torch.qscheme"),
    CONST("torch", "per_channel_affine_float_qparams", "torch.qscheme"),
};

const ck_reg_entry *ck_default_entries(size_t *count)
{
    *count = CK_ARRAY_LEN(entries);
    return entries;
}
