/* fuzz_decompress_blocked.c - libFuzzer target for parallel decompression
 * of pmap's blocked format (pipelines/decompress.c: the "PM" framer, whole
 * members inflated in parallel, the streaming decoder for the rest).
 *
 * Input: one control byte (the chunk size, 1-8 KiB, so that members fall
 * within chunks, across them and are cut by the framer), then a file. The
 * file is decompressed by `pmap decompress -c` (the whole pipeline, two
 * workers) and, independently, by the streaming decoder alone (pm_gz_inflate
 * over the whole input, itself fuzzed against zlib by fuzz_gz_inflate). The
 * two must agree: same verdict, same bytes. The size fields are the input's
 * to lie with; they may make the pipeline slower, never different. Output
 * beyond OUT_CAP makes a case inconclusive (decompression bombs).
 *
 * Seeds: fuzz/corpus/fuzz_decompress_blocked (blocked files made with
 * pmap compress --blocked -b 1K).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <pmap/gz.h>
#include "pipelines.h"

#define OUT_CAP (1u << 20)

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_decompress_blocked: %s\n", what);
        abort();
    }
}

/* The reference: the streaming decoder over the whole input. Returns 1 ok,
 * 0 bad, -1 inconclusive (output over OUT_CAP). */
static int reference(const uint8_t *in, size_t len, unsigned char *out, size_t *out_len)
{
    pm_gz_inflater *z;
    check(pm_gz_inflater_new(&z) == 0, "inflater_new");
    size_t used = 0, made = 0;
    int rc = pm_gz_inflate(z, in, len, &used, out, OUT_CAP, &made, 1);
    pm_gz_inflater_free(z);
    *out_len = made;
    if (rc == PM_GZ_OUTPUT_FULL)
        return -1;
    return rc == PM_GZ_DONE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = 1024 * (1 + (size_t)(data[0] & 7));
    data++;
    size--;
    static unsigned char *want;
    if (!want)
        check((want = malloc(OUT_CAP)) != NULL, "malloc");
    size_t want_len;
    int ok = reference(data, size, want, &want_len);
    if (ok < 0)
        return 0;

    int in = memfd_create("in", 0), out = memfd_create("out", 0);
    check(in >= 0 && out >= 0, "memfd_create");
    check(write(in, data, size) == (ssize_t)size, "write input");
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", in);
    const char *paths[] = {path};
    pmp_opts o = {0};
    o.pl.jobs = 2;
    o.pl.chunk_size = chunk;
    o.to_stdout = 1;
    fflush(stdout);
    int saved = dup(1);
    check(saved >= 0 && dup2(out, 1) == 1, "dup2");
    int rc = pmp_decompress(&o, paths, 1, NULL);
    check(dup2(saved, 1) == 1, "restore stdout");
    close(saved);

    off_t got = lseek(out, 0, SEEK_END);
    if (ok) {
        check(rc == 0, "the pipeline failed a file the streaming decoder accepts");
        check((size_t)got == want_len, "output length differs");
        unsigned char *p = mmap(NULL, want_len ? want_len : 1, PROT_READ, MAP_PRIVATE, out, 0);
        check(p != MAP_FAILED, "mmap");
        check(want_len == 0 || memcmp(p, want, want_len) == 0, "output differs");
        munmap(p, want_len ? want_len : 1);
    } else {
        check(rc != 0, "the pipeline accepted a file the streaming decoder rejects");
    }
    close(in);
    close(out);
    return 0;
}
