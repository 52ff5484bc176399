/* byteorder.c: element byte swapping (byteorder.h). */
#include "byteorder.h"

#include "dtype.h"

void ck_swap_elements(uint8_t *p, uint64_t nbytes, unsigned unit)
{
    if (unit <= 1) return;
    for (uint64_t i = 0; i <= nbytes && unit <= nbytes - i; i += unit)
        for (unsigned a = 0, b = unit - 1; a < b; a++, b--) {
            uint8_t t = p[i + a];
            p[i + a] = p[i + b];
            p[i + b] = t;
        }
}

unsigned ck_dtype_swap_unit(ckpt_dtype dtype) { return ck_dtype_info_of(dtype)->swap_unit; }
