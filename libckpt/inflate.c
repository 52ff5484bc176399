/* inflate.c: bounded raw-deflate decoding on zlib (CRC-32 is in crc32.c). */
#include <zlib.h>

#include "util.h"
#include "zip.h"

static uInt clamp(size_t n) { return n > (1u << 30) ? (1u << 30) : (uInt)n; }

ckpt_status ck_inflate_exact(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len, const char *name,
                             ckpt_error *err)
{
    z_stream zs = {0};
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) return ck_error_set(err, CKPT_ERR_NOMEM, "zlib inflateInit failed");
    size_t in_left = in_len, out_left = out_len;
    uint8_t probe; /* a 1-byte window past the declared size: any output there means the size lied */
    bool probing = false;
    ckpt_status s = CKPT_OK;
    for (;;) {
        uInt ia = clamp(in_left), oa = probing ? 1 : clamp(out_left);
        zs.next_in = (Bytef *)(in + (in_len - in_left));
        zs.avail_in = ia;
        zs.next_out = probing ? &probe : out + (out_len - out_left);
        zs.avail_out = oa;
        int r = inflate(&zs, Z_NO_FLUSH);
        in_left -= ia - zs.avail_in;
        if (probing && zs.avail_out == 0) {
            s = ck_error_set(err, CKPT_ERR_ZIP, "member '%s' inflates to more than its declared %zu bytes (stopped at the "
                             "limit)", name, out_len);
            break;
        }
        if (!probing) out_left -= oa - zs.avail_out;
        if (r == Z_STREAM_END) {
            if (out_left)
                s = ck_error_set(err, CKPT_ERR_ZIP, "member '%s' inflates to %zu bytes, less than its declared %zu", name,
                                 out_len - out_left, out_len);
            else if (in_left)
                s = ck_error_set(err, CKPT_ERR_ZIP, "member '%s' has %zu bytes after the end of its deflate stream", name,
                                 in_left);
            break;
        }
        if (r != Z_OK && r != Z_BUF_ERROR) {
            s = ck_error_set(err, CKPT_ERR_ZIP, "member '%s': invalid deflate data (%s)", name, zs.msg ? zs.msg : "zlib error");
            break;
        }
        if (out_left == 0) probing = true;
        if (r == Z_BUF_ERROR && in_left == 0) {
            s = ck_error_set(err, CKPT_ERR_ZIP, "member '%s': the deflate stream is truncated", name);
            break;
        }
    }
    inflateEnd(&zs);
    return s;
}
