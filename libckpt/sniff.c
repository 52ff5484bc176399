/* sniff.c: tell a user what their file is when it is not a checkpoint. */
#include "sniff.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const uint8_t ck_legacy_magic_pickle[15] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                            0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};

static bool has_prefix_ci(const uint8_t *p, size_t n, const char *s)
{
    size_t l = strlen(s);
    return n >= l && strncasecmp((const char *)p, s, l) == 0;
}

static const uint8_t *skip_space(const uint8_t *p, size_t *n)
{
    /* UTF-8 BOM and whitespace */
    if (*n >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) { p += 3; *n -= 3; }
    while (*n && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) { p++; (*n)--; }
    return p;
}

static bool looks_like_text(const uint8_t *p, size_t n)
{
    size_t check = n < 4096 ? n : 4096;
    for (size_t i = 0; i < check; i++) {
        uint8_t c = p[i];
        if (c == 0 || (c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f')) return false;
    }
    return true;
}

ck_input_kind ck_sniff(const uint8_t *p, size_t n, char *desc, size_t cap)
{
    if (n == 0) { snprintf(desc, cap, "an empty file"); return CK_INPUT_OTHER; }
    if (n >= 4 && memcmp(p, "PK\x03\x04", 4) == 0) { snprintf(desc, cap, "a zip archive"); return CK_INPUT_ZIP; }
    if (n >= 4 && memcmp(p, "PK\x05\x06", 4) == 0) { snprintf(desc, cap, "an empty zip archive"); return CK_INPUT_ZIP; }
    if (n >= sizeof ck_legacy_magic_pickle && memcmp(p, ck_legacy_magic_pickle, sizeof ck_legacy_magic_pickle) == 0) {
        snprintf(desc, cap, "a legacy PyTorch checkpoint (torch < 1.6 or _use_new_zipfile_serialization=False)");
        return CK_INPUT_LEGACY;
    }
    if (n >= 263 && memcmp(p + 257, "ustar", 5) == 0) {
        snprintf(desc, cap, "a tar archive (PyTorch 0.1-0.3 used tar checkpoints)");
        return CK_INPUT_TAR;
    }
    if (n >= 8 && memcmp(p, "PYTORCH1", 8) == 0) {
        snprintf(desc, cap, "a PyTorch preview-release archive (PYTORCH1), which PyTorch itself no longer reads");
        return CK_INPUT_OTHER;
    }
    if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b) { snprintf(desc, cap, "a gzip-compressed file (decompress it first)"); return CK_INPUT_OTHER; }
    if (n >= 6 && memcmp(p, "\x93NUMPY", 6) == 0) { snprintf(desc, cap, "a NumPy .npy array"); return CK_INPUT_OTHER; }
    if (n >= 4 && memcmp(p, "\x89HDF", 4) == 0) { snprintf(desc, cap, "an HDF5 file (Keras/TensorFlow weights?)"); return CK_INPUT_OTHER; }
    if (n >= 4 && memcmp(p, "GGUF", 4) == 0) { snprintf(desc, cap, "a GGUF model file"); return CK_INPUT_OTHER; }
    if (n >= 6 && memcmp(p, "7z\xbc\xaf\x27\x1c", 6) == 0) { snprintf(desc, cap, "a 7-Zip archive"); return CK_INPUT_OTHER; }
    if (n >= 9) {
        uint64_t hlen = 0;
        for (int i = 0; i < 8; i++) hlen |= (uint64_t)p[i] << (8 * i);
        /* a length the format allows (even past the end: the reader then says "truncated") */
        if (p[8] == '{' && hlen >= 2 && hlen <= 100000000u) {
            snprintf(desc, cap, "a safetensors file");
            return CK_INPUT_SAFETENSORS;
        }
    }
    /* after safetensors: a header length of 0x380 bytes starts with 80 03, like a protocol-3 pickle */
    if (n >= 2 && p[0] == 0x80 && p[1] <= 5) {
        snprintf(desc, cap, "a bare pickle (protocol %u), not a PyTorch checkpoint container", p[1]);
        return CK_INPUT_PICKLE;
    }
    size_t m = n;
    const uint8_t *t = skip_space(p, &m);
    if (has_prefix_ci(t, m, "version https://git-lfs.github.com/spec/")) {
        snprintf(desc, cap, "a Git LFS pointer file, not the checkpoint itself (run `git lfs pull`)");
        return CK_INPUT_OTHER;
    }
    if (has_prefix_ci(t, m, "<!doctype html") || has_prefix_ci(t, m, "<html") || has_prefix_ci(t, m, "<head")) {
        snprintf(desc, cap, "an HTML page (a download that returned a web page instead of the file?)");
        return CK_INPUT_OTHER;
    }
    if (has_prefix_ci(t, m, "<?xml")) { snprintf(desc, cap, "an XML document (an error page from a storage service?)"); return CK_INPUT_OTHER; }
    if (m && (t[0] == '{' || t[0] == '[') && looks_like_text(t, m)) { snprintf(desc, cap, "a JSON document"); return CK_INPUT_OTHER; }
    if (looks_like_text(p, n)) { snprintf(desc, cap, "a text file"); return CK_INPUT_OTHER; }
    snprintf(desc, cap, "unrecognised binary data (starts with %02x %02x %02x %02x)", p[0], n > 1 ? p[1] : 0,
             n > 2 ? p[2] : 0, n > 3 ? p[3] : 0);
    return CK_INPUT_OTHER;
}
