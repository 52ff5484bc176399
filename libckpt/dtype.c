/*
 * dtype.c: every dtype PyTorch can save. Item sizes and storage class names follow torch/_utils.py and
 * torch/storage.py (_dtype_to_storage_type_map).
 */
#include "dtype.h"

#include <string.h>

#include "util.h"

static const ck_dtype_info table[CKPT_DTYPE_COUNT_] = {
    [CKPT_DTYPE_INVALID] = {"invalid", 0, NULL, 0, 0},
    [CKPT_DTYPE_FLOAT32] = {"float32", 4, "FloatStorage", 4, 0},
    [CKPT_DTYPE_FLOAT64] = {"float64", 8, "DoubleStorage", 8, 0},
    [CKPT_DTYPE_FLOAT16] = {"float16", 2, "HalfStorage", 2, 0},
    [CKPT_DTYPE_BFLOAT16] = {"bfloat16", 2, "BFloat16Storage", 2, 0},
    [CKPT_DTYPE_COMPLEX32] = {"complex32", 4, NULL, 2, 0},
    [CKPT_DTYPE_COMPLEX64] = {"complex64", 8, "ComplexFloatStorage", 4, 0},
    [CKPT_DTYPE_COMPLEX128] = {"complex128", 16, "ComplexDoubleStorage", 8, 0},
    [CKPT_DTYPE_INT8] = {"int8", 1, "CharStorage", 1, 0},
    [CKPT_DTYPE_INT16] = {"int16", 2, "ShortStorage", 2, 0},
    [CKPT_DTYPE_INT32] = {"int32", 4, "IntStorage", 4, 0},
    [CKPT_DTYPE_INT64] = {"int64", 8, "LongStorage", 8, 0},
    [CKPT_DTYPE_UINT8] = {"uint8", 1, "ByteStorage", 1, 0},
    [CKPT_DTYPE_UINT16] = {"uint16", 2, NULL, 2, 0},
    [CKPT_DTYPE_UINT32] = {"uint32", 4, NULL, 4, 0},
    [CKPT_DTYPE_UINT64] = {"uint64", 8, NULL, 8, 0},
    [CKPT_DTYPE_BOOL] = {"bool", 1, "BoolStorage", 1, 0},
    [CKPT_DTYPE_QINT8] = {"qint8", 1, "QInt8Storage", 1, 0},
    [CKPT_DTYPE_QUINT8] = {"quint8", 1, "QUInt8Storage", 1, 0},
    [CKPT_DTYPE_QINT32] = {"qint32", 4, "QInt32Storage", 4, 0},
    [CKPT_DTYPE_QUINT4X2] = {"quint4x2", 1, "QUInt4x2Storage", 1, 2},
    [CKPT_DTYPE_QUINT2X4] = {"quint2x4", 1, "QUInt2x4Storage", 1, 4},
    [CKPT_DTYPE_FLOAT8_E4M3FN] = {"float8_e4m3fn", 1, NULL, 1, 0},
    [CKPT_DTYPE_FLOAT8_E5M2] = {"float8_e5m2", 1, NULL, 1, 0},
    [CKPT_DTYPE_FLOAT8_E4M3FNUZ] = {"float8_e4m3fnuz", 1, NULL, 1, 0},
    [CKPT_DTYPE_FLOAT8_E5M2FNUZ] = {"float8_e5m2fnuz", 1, NULL, 1, 0},
    [CKPT_DTYPE_FLOAT8_E8M0FNU] = {"float8_e8m0fnu", 1, NULL, 1, 0},
    [CKPT_DTYPE_BITS8] = {"bits8", 1, NULL, 1, 0},
    [CKPT_DTYPE_BITS16] = {"bits16", 2, NULL, 2, 0},
    [CKPT_DTYPE_BITS1X8] = {"bits1x8", 1, NULL, 1, 0},
    [CKPT_DTYPE_BITS2X4] = {"bits2x4", 1, NULL, 1, 0},
    [CKPT_DTYPE_BITS4X2] = {"bits4x2", 1, NULL, 1, 0},
    [CKPT_DTYPE_FLOAT4_E2M1FN_X2] = {"float4_e2m1fn_x2", 1, NULL, 1, 0},
    [CKPT_DTYPE_UINT1] = {"uint1", 1, NULL, 1, 0}, [CKPT_DTYPE_UINT2] = {"uint2", 1, NULL, 1, 0},
    [CKPT_DTYPE_UINT3] = {"uint3", 1, NULL, 1, 0}, [CKPT_DTYPE_UINT4] = {"uint4", 1, NULL, 1, 0},
    [CKPT_DTYPE_UINT5] = {"uint5", 1, NULL, 1, 0}, [CKPT_DTYPE_UINT6] = {"uint6", 1, NULL, 1, 0},
    [CKPT_DTYPE_UINT7] = {"uint7", 1, NULL, 1, 0}, [CKPT_DTYPE_INT1] = {"int1", 1, NULL, 1, 0},
    [CKPT_DTYPE_INT2] = {"int2", 1, NULL, 1, 0}, [CKPT_DTYPE_INT3] = {"int3", 1, NULL, 1, 0},
    [CKPT_DTYPE_INT4] = {"int4", 1, NULL, 1, 0}, [CKPT_DTYPE_INT5] = {"int5", 1, NULL, 1, 0},
    [CKPT_DTYPE_INT6] = {"int6", 1, NULL, 1, 0}, [CKPT_DTYPE_INT7] = {"int7", 1, NULL, 1, 0},
};

/* torch's aliases: torch.float is torch.float32, and so on (torch/_C/__init__.pyi). */
static const struct { const char *alias; ckpt_dtype dtype; } aliases[] = {
    {"float", CKPT_DTYPE_FLOAT32}, {"double", CKPT_DTYPE_FLOAT64}, {"half", CKPT_DTYPE_FLOAT16},
    {"cfloat", CKPT_DTYPE_COMPLEX64}, {"cdouble", CKPT_DTYPE_COMPLEX128}, {"chalf", CKPT_DTYPE_COMPLEX32},
    {"short", CKPT_DTYPE_INT16}, {"int", CKPT_DTYPE_INT32}, {"long", CKPT_DTYPE_INT64},
};

const ck_dtype_info *ck_dtype_info_of(ckpt_dtype d)
{
    if ((unsigned)d >= CKPT_DTYPE_COUNT_) d = CKPT_DTYPE_INVALID;
    return &table[d];
}

ckpt_dtype ck_dtype_from_torch_attr(const char *name)
{
    for (unsigned d = 1; d < CKPT_DTYPE_COUNT_; d++)
        if (strcmp(table[d].name, name) == 0) return (ckpt_dtype)d;
    for (size_t i = 0; i < CK_ARRAY_LEN(aliases); i++)
        if (strcmp(aliases[i].alias, name) == 0) return aliases[i].dtype;
    return CKPT_DTYPE_INVALID;
}

ckpt_dtype ck_dtype_from_storage_class(const char *name)
{
    for (unsigned d = 1; d < CKPT_DTYPE_COUNT_; d++)
        if (table[d].storage_class && strcmp(table[d].storage_class, name) == 0) return (ckpt_dtype)d;
    return CKPT_DTYPE_INVALID;
}

const char *ckpt_dtype_name(ckpt_dtype d) { return ck_dtype_info_of(d)->name; }
size_t ckpt_dtype_itemsize(ckpt_dtype d) { return ck_dtype_info_of(d)->itemsize; }

ckpt_dtype ckpt_dtype_from_name(const char *name)
{
    if (!name) return CKPT_DTYPE_INVALID;
    if (strncmp(name, "torch.", 6) == 0) name += 6;
    return ck_dtype_from_torch_attr(name);
}
