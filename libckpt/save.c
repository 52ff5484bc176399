/*
 * save.c: save options and the entry points of include/ckpt/writer.h; the .pt (torch.save zip) layout.
 *
 * The output goes to a temporary file (sink.c) that replaces the destination only once complete; any
 * failure removes it. data.pkl streams into the zip as the pickler produces it, then the storages it
 * named stream straight from their memory. Records, in the order current torch.save writes them
 * (docs/pytorch-format-notes.md §3.2, §4):
 *   data.pkl, .format_version ("1"), .storage_alignment ("64"), byteorder, data/<key> for each
 *   storage in key order, version ("3\n"), .data/serialization_id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "checkpoint_internal.h"
#include "ckpt/writer.h"
#include "pickler.h"
#include "safetensors.h"
#include "save_internal.h"
#include "sink.h"
#include "text.h"
#include "zip_writer.h"

ckpt_save_options *ckpt_save_options_new(void) { return calloc(1, sizeof(ckpt_save_options)); }

void ckpt_save_options_free(ckpt_save_options *o)
{
    if (!o) return;
    for (size_t i = 0; i < o->nmeta; i++) {
        free(o->meta_keys[i]);
        free(o->meta_values[i]);
    }
    free(o->meta_keys);
    free(o->meta_values);
    free(o->prefix);
    free(o);
}

void ckpt_save_options_set_format(ckpt_save_options *o, ckpt_save_format f)
{
    if (o && (unsigned)f <= CKPT_SAVE_SAFETENSORS) o->format = f;
}
void ckpt_save_options_set_flags(ckpt_save_options *o, unsigned flags)
{
    if (o) o->flags = flags;
}
void ckpt_save_options_set_registry(ckpt_save_options *o, const ckpt_registry *reg)
{
    if (o) o->registry = reg;
}

/* A usable zip folder name: non-empty UTF-8 without '/', '\\' or NUL, at most 200 bytes. */
static bool valid_prefix(const char *p, size_t n)
{
    if (n == 0 || n > 200) return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] == '/' || p[i] == '\\' || p[i] == '\0') return false;
    return ck_utf8_valid((const uint8_t *)p, n, false);
}

ckpt_status ckpt_save_options_set_archive_prefix(ckpt_save_options *o, const char *prefix, ckpt_error *err)
{
    if (!o || !prefix) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL argument");
    if (!valid_prefix(prefix, strlen(prefix)))
        return ck_error_set(err, CKPT_ERR_INVALID_ARG, "archive prefix '%.200s' must be 1-200 bytes of UTF-8 without '/', "
                            "'\\\\' or NUL", prefix);
    char *c = strdup(prefix);
    if (!c) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    free(o->prefix);
    o->prefix = c;
    return CKPT_OK;
}

ckpt_status ckpt_save_options_add_metadata(ckpt_save_options *o, const char *key, const char *value, ckpt_error *err)
{
    if (!o || !key || !value) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL argument");
    if (!ck_utf8_valid((const uint8_t *)key, strlen(key), false) ||
        !ck_utf8_valid((const uint8_t *)value, strlen(value), false))
        return ck_error_set(err, CKPT_ERR_INVALID_ARG, "metadata must be UTF-8");
    for (size_t i = 0; i < o->nmeta; i++)
        if (strcmp(o->meta_keys[i], key) == 0) {
            char *v = strdup(value);
            if (!v) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
            free(o->meta_values[i]);
            o->meta_values[i] = v;
            return CKPT_OK;
        }
    char **k = realloc(o->meta_keys, (o->nmeta + 1) * sizeof *k);
    if (k) o->meta_keys = k;
    char **v = realloc(o->meta_values, (o->nmeta + 1) * sizeof *v);
    if (v) o->meta_values = v;
    char *kc = strdup(key), *vc = strdup(value);
    if (!k || !v || !kc || !vc) {
        free(kc);
        free(vc);
        return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    }
    o->meta_keys[o->nmeta] = kc;
    o->meta_values[o->nmeta] = vc;
    o->nmeta++;
    return CKPT_OK;
}

/* torch.save's archive name: the file name without folder and without its last extension. */
static char *prefix_for_path(const char *path)
{
    const char *base = path;
    for (const char *c = path; *c; c++)
        if (*c == '/' || *c == '\\') base = c + 1;
    size_t n = strlen(base);
    for (size_t i = n; i > 0; i--)
        if (base[i - 1] == '.') {
            n = i - 1;
            break;
        }
    return valid_prefix(base, n) ? strndup(base, n) : strdup("archive");
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* ---- .pt ---- */

/*
 * .data/serialization_id: 20 digits of a combined hash of the record names, then 20 digits of the
 * combined CRC-32 of the records (c10::hash_combine over each data descriptor's CRC, exactly as torch
 * computes it). torch hashes the names with std::hash in std::unordered_set order, which is not
 * reproducible; libckpt combines XXH64 hashes of the sorted names. Readers only log this value.
 */
static int cmp_cstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static ckpt_status serialization_id(const ck_zipw *z, char out[41], ckpt_error *err)
{
    size_t plen = strlen(z->prefix) + 1;
    char **names = malloc((z->count ? z->count : 1) * sizeof *names);
    if (!names) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    /* the names without the prefix, NUL-terminated copies in one block */
    size_t total = 0, len;
    for (size_t i = 0; i < z->count; i++) total += z->entries[i].name_len - plen + 1;
    char *block = malloc(total ? total : 1);
    if (!block) {
        free(names);
        return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    }
    char *w = block;
    for (size_t i = 0; i < z->count; i++) {
        const char *n = ck_zipw_name(z, i, &len);
        memcpy(w, n + plen, len - plen);
        w[len - plen] = '\0';
        names[i] = w;
        w += len - plen + 1;
    }
    qsort(names, z->count, sizeof *names, cmp_cstr);
    uint64_t h = 0;
    for (size_t i = 0; i < z->count; i++) h = ck_hash_combine(h, XXH64(names[i], strlen(names[i]), 0));
    free(names);
    free(block);
    snprintf(out, 41, "%020llu%020llu", (unsigned long long)h, (unsigned long long)z->combined_crc);
    return CKPT_OK;
}

static ckpt_status pickle_to_zip(void *ctx, const uint8_t *p, size_t n, ckpt_error *err)
{
    return ck_zipw_data(ctx, p, n, err);
}

/* data.pkl is streamed into the zip as it is produced; the storages it names follow. */
static ckpt_status write_pt(const ckpt_value *root, const ckpt_save_options *o, ck_sink *sink, const char *prefix,
                            ckpt_error *err)
{
    ck_zipw z;
    ck_pickle_result res, *r = &res;
    memset(r, 0, sizeof *r);
    ckpt_status s = ck_zipw_init(&z, sink, prefix, err);
    if (s) return s;
    const char *byteorder = ck_host_is_little_endian() ? "little" : "big";
    unsigned flags = o ? o->flags : 0;
    if (!s) s = ck_zipw_begin_stream(&z, "data.pkl", err);
    if (!s) s = ck_pickle_tree(root, o ? o->registry : NULL, flags & CKPT_SAVE_DEDUP, pickle_to_zip, &z, r, err);
    if (!s) s = ck_zipw_end(&z, err);
    if (!s) s = ck_zipw_record(&z, ".format_version", "1", 1, err);
    if (!s) s = ck_zipw_record(&z, ".storage_alignment", "64", 2, err);
    if (!s) s = ck_zipw_record(&z, "byteorder", byteorder, strlen(byteorder), err);
    char name[64];
    for (size_t i = 0; i < r->nstorages && !s; i++) {
        const ck_pickled_storage *ps = &r->storages[i];
        if (ps->nbytes > SIZE_MAX) {
            s = ck_error_set(err, CKPT_ERR_LIMIT, "storage of %llu bytes is too large for this system",
                             (unsigned long long)ps->nbytes);
            break;
        }
        snprintf(name, sizeof name, "data/%zu", i);
        s = ck_zipw_begin(&z, name, ps->nbytes, err);
        if (!s) s = ck_zipw_data(&z, ps->storage->data, (size_t)ps->nbytes, err);
        if (!s) s = ck_zipw_end(&z, err);
    }
    if (!s) s = ck_zipw_record(&z, "version", "3\n", 2, err);
    char id[41];
    if (!s) s = serialization_id(&z, id, err);
    if (!s) s = ck_zipw_record(&z, ".data/serialization_id", id, 40, err);
    if (!s) s = ck_zipw_finish(&z, err);
    ck_zipw_release(&z);
    ck_pickle_result_release(r);
    return s;
}

/* ---- entry points ---- */

static ckpt_save_format format_for(const ckpt_save_options *o, const char *path)
{
    ckpt_save_format f = o ? o->format : CKPT_SAVE_AUTO;
    if (f != CKPT_SAVE_AUTO) return f;
    return path && ends_with(path, ".safetensors") ? CKPT_SAVE_SAFETENSORS : CKPT_SAVE_PT;
}

/* Prepares (pickle or safetensors plan), then opens the sink with `open_sink` and streams. */
static ckpt_status save_to(const ckpt_value *root, const char *path, const ckpt_save_options *o, ck_sink *sink,
                           ckpt_error *err)
{
    unsigned flags = o ? o->flags : 0;
    if (format_for(o, path) == CKPT_SAVE_SAFETENSORS) {
        ck_st_plan plan;
        ckpt_status s = ck_st_prepare(root, o, &plan, err);
        if (s) return s;
        if (path) s = ck_sink_open_file(sink, path, flags & CKPT_SAVE_FSYNC, err);
        else ck_sink_open_memory(sink);
        if (!s) s = ck_st_write(&plan, sink, err);
        if (!s) s = ck_sink_commit(sink, err);
        ck_st_plan_release(&plan);
        return s;
    }
    ckpt_status s = CKPT_OK;
    char *prefix = o && o->prefix ? strdup(o->prefix) : path ? prefix_for_path(path) : strdup("archive");
    if (!prefix) s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    if (!s) {
        if (path) s = ck_sink_open_file(sink, path, flags & CKPT_SAVE_FSYNC, err);
        else ck_sink_open_memory(sink);
    }
    if (!s) s = write_pt(root, o, sink, prefix, err);
    if (!s) s = ck_sink_commit(sink, err);
    free(prefix);
    return s;
}

ckpt_status ckpt_save_file(const ckpt_value *root, const char *path, const ckpt_save_options *o, ckpt_error *err)
{
    if (!root || !path) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL root or path");
    ck_sink sink;
    memset(&sink, 0, sizeof sink);
    sink.fd = -1;
    ckpt_status s = save_to(root, path, o, &sink, err);
    ck_sink_abort(&sink); /* after a commit only releases memory; otherwise removes the temporary file */
    if (s && err && !strstr(ckpt_error_message(err), path)) ck_error_append(err, " (writing '%s'; nothing was written)", path);
    return s;
}

ckpt_status ckpt_save_memory(const ckpt_value *root, const ckpt_save_options *o, void **out, size_t *len, ckpt_error *err)
{
    if (!root || !out || !len) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    *len = 0;
    ck_sink sink;
    memset(&sink, 0, sizeof sink);
    sink.fd = -1;
    ckpt_status s = save_to(root, NULL, o, &sink, err);
    if (!s) ck_sink_take_memory(&sink, out, len);
    ck_sink_abort(&sink);
    if (!s && !*out) s = ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    return s;
}

ckpt_status ckpt_checkpoint_save_file(const ckpt_checkpoint *ckpt, const char *path, const ckpt_save_options *o,
                                      ckpt_error *err)
{
    if (!ckpt || !ckpt->root) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL checkpoint");
    return ckpt_save_file(ckpt->root, path, o, err);
}
