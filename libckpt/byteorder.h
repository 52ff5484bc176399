/*
 * byteorder.h: byte-order conversion of tensor data. PyTorch swaps each element by its dtype's swap
 * unit (the item size, or the component size for complex dtypes). Used when reading big-endian files
 * on a little-endian host (and the reverse), and by writers that produce big-endian files on request.
 */
#ifndef CK_BYTEORDER_H
#define CK_BYTEORDER_H

#include <stdint.h>
#include "ckpt/tensor.h"

/* Reverses the bytes of every `unit`-byte element of p[0 .. nbytes) in place (unit <= 1: nothing). */
void ck_swap_elements(uint8_t *p, uint64_t nbytes, unsigned unit);
/* The swap unit of a dtype: 8 for float64, 4 for complex64, 1 for bool and 8-bit types. */
unsigned ck_dtype_swap_unit(ckpt_dtype dtype);

#endif
