/*
 * ckpt_bench.c: one measurement per process, for tools/bench (which runs them, alternating, and prints
 * ratios). Speed and memory goals are checked here, never by timed unit tests.
 *
 *   ckpt-bench write-plain   CASE OUT   write(2) of the tensors' bytes, 4 MiB at a time
 *   ckpt-bench write-libckpt CASE OUT   build the state dict with the builder API and ckpt_save_file
 *   ckpt-bench read-libckpt  FILE MODE  ckpt_load_file (MODE copy | mmap) and touch every tensor byte
 *
 * CASE is "big" (1 GiB in 256 float32 tensors of 4 MiB) or "tiny" (100,000 float32 tensors of 8
 * elements). Tensor memory is allocated and touched before the clock starts. Prints one line:
 *   seconds=<wall> rss_mib=<peak RSS above the RSS after the tensors were in memory> bytes=<file size>
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ckpt/ckpt.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

typedef struct {
    size_t count, numel;
    float *data; /* count * numel floats, contiguous */
} bench_case;

static int make_case(const char *name, bench_case *c)
{
    if (strcmp(name, "big") == 0) {
        c->count = 256;
        c->numel = (1u << 30) / 256 / sizeof(float);
    } else if (strcmp(name, "tiny") == 0) {
        c->count = 100000;
        c->numel = 8;
    } else {
        return -1;
    }
    size_t n = c->count * c->numel;
    c->data = aligned_alloc(64, n * sizeof(float));
    if (!c->data) return -1;
    for (size_t i = 0; i < n; i++) c->data[i] = (float)(i % 1000) * 0.25f; /* touch every page */
    return 0;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static int write_plain(const bench_case *c, const char *out)
{
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    const uint8_t *p = (const uint8_t *)c->data;
    size_t left = c->count * c->numel * sizeof(float);
    while (left) {
        size_t chunk = left < (4u << 20) ? left : (4u << 20);
        ssize_t w = write(fd, p, chunk);
        if (w <= 0) return -1;
        p += w;
        left -= (size_t)w;
    }
    return close(fd);
}

static int write_libckpt(const bench_case *c, const char *out)
{
    ckpt_error *err = ckpt_error_new();
    ckpt_builder *b = ckpt_builder_new();
    ckpt_value *sd = ckpt_builder_ordered_dict(b);
    int64_t shape[1] = {(int64_t)c->numel};
    char key[64];
    int rc = 0;
    for (size_t i = 0; i < c->count && !rc; i++) {
        snprintf(key, sizeof key, "layers.%zu.weight", i);
        ckpt_value *t = ckpt_builder_tensor_from_data(b, CKPT_DTYPE_FLOAT32, c->data + i * c->numel, 1, shape, 0, err);
        if (!t || ckpt_builder_dict_set_str(b, sd, key, t, err) != CKPT_OK) rc = -1;
    }
    if (!rc && ckpt_save_file(sd, out, NULL, err) != CKPT_OK) rc = -1;
    if (rc) fprintf(stderr, "ckpt-bench: %s\n", ckpt_error_message(err));
    ckpt_builder_free(b);
    ckpt_error_free(err);
    return rc;
}

static int read_libckpt(const char *file, const char *mode)
{
    ckpt_load_options *o = ckpt_load_options_new();
    if (strcmp(mode, "mmap") == 0) ckpt_load_options_set_flags(o, CKPT_LOAD_MMAP);
    ckpt_load_options_set_limit(o, CKPT_LIMIT_MAX_ALLOC, 1ull << 40);
    ckpt_error *err = ckpt_error_new();
    ckpt_checkpoint *ck = NULL;
    if (ckpt_load_file(file, o, &ck, err) != CKPT_OK) {
        fprintf(stderr, "ckpt-bench: %s\n", ckpt_error_message(err));
        return -1;
    }
    /* touch every tensor byte, as a user reading the weights would */
    volatile uint64_t sum = 0;
    for (size_t i = 0; i < ckpt_checkpoint_num_tensors(ck); i++) {
        const ckpt_tensor *t = ckpt_checkpoint_tensor(ck, i, NULL);
        const uint8_t *p = ckpt_tensor_data(t);
        for (uint64_t k = 0; k < ckpt_tensor_nbytes(t); k += 4096) sum += p[k];
    }
    ckpt_checkpoint_free(ck);
    ckpt_error_free(err);
    ckpt_load_options_free(o);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: ckpt-bench write-plain|write-libckpt big|tiny OUT | read-libckpt FILE copy|mmap\n");
        return 2;
    }
    const char *cmd = argv[1];
    int rc;
    double base, t0, t1;
    if (strcmp(cmd, "read-libckpt") == 0) {
        base = peak_rss_mib();
        t0 = now();
        rc = read_libckpt(argv[2], argv[3]);
        t1 = now();
        printf("seconds=%.4f rss_mib=%.1f bytes=%lld\n", t1 - t0, peak_rss_mib() - base, file_size(argv[2]));
        return rc ? 1 : 0;
    }
    bench_case c;
    if (make_case(argv[2], &c) != 0) {
        fprintf(stderr, "ckpt-bench: unknown case '%s' (big or tiny)\n", argv[2]);
        return 2;
    }
    base = peak_rss_mib();
    t0 = now();
    if (strcmp(cmd, "write-plain") == 0) rc = write_plain(&c, argv[3]);
    else if (strcmp(cmd, "write-libckpt") == 0) rc = write_libckpt(&c, argv[3]);
    else rc = -2;
    t1 = now();
    if (rc == -2) {
        fprintf(stderr, "ckpt-bench: unknown command '%s'\n", cmd);
        return 2;
    }
    printf("seconds=%.4f rss_mib=%.1f bytes=%lld\n", t1 - t0, peak_rss_mib() - base, file_size(argv[3]));
    free(c.data);
    return rc ? 1 : 0;
}
