/* pipelines.h - ready-made pipelines built on libpmap's public API:
 * compress, decompress (also test and list), checksum and wc. Compress and
 * decompress know no format: they drive a codec (pmap/codec.h).
 *
 * Each is a small file (pipelines/<name>.c) meant to be read and copied:
 * it sets up a pm_pipeline with its stages and hooks and runs it. The CLI
 * (tools/pmap) only parses arguments, fills a pmp_opts and reports.
 */
#ifndef PMAP_PIPELINES_H
#define PMAP_PIPELINES_H

#include <stdint.h>
#include <pmap/app.h>
#include <pmap/pipeline.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One file's result, for pipelines that compute something per file.
 * Delivered in source order through pmp_opts.on_result. */
typedef struct pmp_result {
    const char *path;
    uint64_t index;          /* source order */
    uint64_t bytes;          /* input bytes (checksum, wc) */
    uint32_t crc32;          /* checksum: CRC-32 of the whole file */
    uint64_t lines, words;   /* wc */
    uint64_t chars;          /* wc with count_chars: characters */
    uint64_t compressed;     /* decompress -l: .gz size */
    uint64_t uncompressed;   /* decompress -l: decoded size (all members) */
    uint32_t crc_stored;     /* decompress -l: CRC-32 of all the decoded data;
                                verified, so for one member it is the stored CRC */
    uint32_t mtime;          /* decompress -l: first member's MTIME */
    const char *name;        /* decompress -l: first member's FNAME or "" */
} pmp_result;

typedef struct pmp_opts {
    /* The pipeline's options: jobs, chunk_size, flags (PM_PL_OVERWRITE for
     * -f, PM_PL_REMOVE_INPUT unless -k, PM_PL_FOLLOW_SYMLINKS, ...),
     * on_event, on_progress, arg. The pipelines fill in the stages, sink,
     * out_path, overlap, out_size and file hooks themselves. */
    pm_pipeline_opts pl;
    const char *codec;       /* compress, decompress: the codec's name
                                (pmap/codec.h); NULL: gzip, the only one */
    int level;               /* compress: the codec's levels (gzip: 1..12,
                                1..9 with one_member); 0: its default (6) */
    const char *suffix;      /* the codec's (".gz") when NULL */
    int no_name;             /* compress -n: store neither name nor mtime;
                                decompress -N is the opposite: see restore_name */
    int one_member;          /* compress: one gzip member per file, pigz's
                                format, instead of pmap's blocked format
                                (independent members of chunk_size bytes,
                                0: 1 MiB, with their sizes in the header:
                                docs/format.md) */
    int restore_name;        /* decompress -N: output named after the stored
                                name, with the stored mtime */
    int to_stdout;           /* -c: everything to stdout (fd 1), inputs kept */
    int test_only;           /* decompress -t: check, write nothing */
    int list;                /* decompress -l: report sizes via on_result */
    int pass_plain;          /* decompress -f with -c or -t (zcat -f): an input
                                not in gzip format is copied as it is */
    int warn_trailing_zeros; /* decompress: zeros after the last member get a
                                warning (gzip -v); else they are ignored */
    int count_chars;         /* wc: count characters in the current LC_CTYPE
                                (wc -m): complete valid ones, as GNU wc */
    int lines_only;          /* wc: count newlines and bytes only (wc -l, -c):
                                words and characters stay 0; much faster */
    void (*on_result)(const pmp_result *r, void *arg);  /* arg: pl.arg */
    pm_signals *signals;     /* if set, the run is watched: a signal
                                cancels it (pmap/app.h) */
} pmp_opts;


/* Each runs its pipeline over paths[0..n) ("-" or n == 0: stdin) and
 * returns what pm_pipeline_run() returns; stats may be NULL. */
int pmp_compress(const pmp_opts *o, const char *const *paths, size_t n,
                 pm_pipeline_stats *stats);
int pmp_decompress(const pmp_opts *o, const char *const *paths, size_t n,
                   pm_pipeline_stats *stats);
int pmp_checksum(const pmp_opts *o, const char *const *paths, size_t n,
                 pm_pipeline_stats *stats);
int pmp_wc(const pmp_opts *o, const char *const *paths, size_t n,
           pm_pipeline_stats *stats);

/* Output names, by the gzip codec's rules (pm_codec_compressed_name() and
 * friends apply any codec's). Compress appends the suffix. Decompress strips gzip's
 * suffixes, in any case: `suffix` (-S) if given, and always ".gz", ".z",
 * ".taz", ".tgz", "-gz", "-z", "_z" (".tgz" and ".taz" become ".tar"), and
 * fails with -EINVAL when `in` has none of them or nothing would be left.
 * Both write into buf (cap bytes) and return 0, -EINVAL or -ENAMETOOLONG.
 * pmp_has_gz_suffix() says whether pmp_decompressed_name() would find one:
 * the length of the suffix it would strip, 0 for none. */
int pmp_compressed_name(const char *in, const char *suffix, char *buf, size_t cap);
int pmp_decompressed_name(const char *in, const char *suffix, char *buf, size_t cap);
int pmp_has_gz_suffix(const char *in, const char *suffix);

#ifdef __cplusplus
}
#endif
#endif
