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
#include <pmap/proc.h>

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
    /* compress, blocked layout: if set, asked for each chunk's member before
     * the stage encodes it (pmap-mpi: members encoded by other ranks). It
     * writes the member (the codec's encode_member of the chunk, header
     * included) into out[0..cap), sets *len and returns 1; returns 0 to
     * let the stage encode the chunk; or a negative errno, which fails the
     * file (-ESTALE: the file is not the one read elsewhere; the message
     * says it changed). Called from the pipeline's workers, several at
     * once. */
    int (*member_source)(const pm_chunk *c, unsigned char *out, size_t cap, size_t *len,
                         void *arg);
    void *member_arg;
    /* compress, blocked layout, with member_source, members written by
     * someone else (and decompress with unpack_source, the same way for
     * the output of a chunk's members): member_source may return PMP_MEMBER_ELSEWHERE with
     * *len the member's size and nothing in out; the member is then not
     * written by this pipeline but in its place (pm_chunk.out_elsewhere),
     * member_placed hears its offset in the output (pm_pipeline_opts.
     * out_placed's contract: a pool worker, under a lock, must not block),
     * and member_end, the file's file_end hook (status 0 or the file's
     * error), returns 0 once every such member is in the output, or a
     * negative errno that fails the file. With member_placed set, outputs
     * get a named temporary (PM_PL_NAMED_TEMP) that other processes open
     * by pm_file.tmp_name in the output's directory. arg: member_arg. */
    void (*member_placed)(const pm_chunk *c, uint64_t offset, size_t len, void *arg);
    int (*member_end)(pm_file *f, int status, void *arg);
    /* decompress to files (not -c, -t, -l), blocked layout (not -N, not
     * plain data): if set, asked for each chunk before the stage decodes
     * its whole members (pmap-mpi: decoded by other ranks). Returns 0 to
     * let the stage decode them; PMP_MEMBER_ELSEWHERE when they were
     * decoded by someone else, with *members whole members (0: none, the
     * chunk is streamed here), taking the chunk's first *in_used bytes and
     * making *out_len bytes that are not here: they are placed as
     * compress's members are (member_placed, member_end above serve both,
     * and the named temporary) unless the file's streaming decoder cannot
     * take them as whole members (then the chunk is streamed here and
     * unpack_drop is called: the bytes decoded elsewhere will never be
     * placed); or a negative errno, which fails the file (-ESTALE as for
     * member_source). Called from the pipeline's workers, several at once;
     * unpack_drop from its serial stage, must not block. arg: member_arg. */
    int (*unpack_source)(const pm_chunk *c, uint64_t *members, size_t *in_used,
                         size_t *out_len, void *arg);
    void (*unpack_drop)(const pm_chunk *c, void *arg);
} pmp_opts;

/* member_source's and unpack_source's answer: the member (*len bytes) or
 * the decoded bytes (*out_len) are written by someone else
 * (pmp_opts.member_placed). */
#define PMP_MEMBER_ELSEWHERE 2


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

/* ---- run: commands over arguments (pipelines/run.c) ---- */

/* --halt: when to stop. */
typedef enum pmp_halt_when {
    PMP_HALT_NEVER = 0,
    PMP_HALT_SOON,           /* start no more jobs, let running ones finish */
    PMP_HALT_NOW,            /* and kill the running ones */
} pmp_halt_when;

/* One finished (or, with dry_run, one would-be) job, for the caller's
 * report. */
typedef struct pmp_run_job {
    uint64_t seq;            /* 1-based, in input order ({#}) */
    const char *command;     /* the command line as a shell would read it */
    const pm_job_result *res;   /* NULL with dry_run */
} pmp_run_job;

typedef struct pmp_run_opts {
    /* The command's words, with replacement strings ({} {.} {/} {//} {/.}
     * {#} {%} {N}); without any, the arguments are appended. No words
     * (ncmd 0): each argument is a command line, run by /bin/sh. */
    const char *const *cmd;
    size_t ncmd;
    /* Arguments: ::: groups (their cross product, the last group varying
     * fastest), or else one per line (NUL-terminated with null_sep) from
     * arg_file ("-" or NULL: stdin). */
    const char *const *const *groups;
    const size_t *group_len;
    size_t ngroups;
    const char *arg_file;
    int null_sep;
    int jobs;                /* 0: PMAP_JOBS or the CPUs */
    int keep_order;
    double timeout;          /* seconds per job; 0: none */
    int retries;             /* extra attempts for a failing job */
    const char *joblog;      /* GNU parallel's --joblog format, or NULL */
    int resume;              /* skip the Seqs already in joblog, append to it */
    pmp_halt_when halt_when;
    int halt_on_success;     /* count successes instead of failures */
    double halt_count;       /* halt once this many jobs failed (succeeded) */
    int halt_percent;        /* halt_count is a percentage of the jobs */
    int dry_run;             /* report the commands, run nothing */
    /* --pipe: the command runs once per block of records of the input
     * (arg_file, or stdin), fed to its stdin; outputs in input order. */
    int pipe;
    size_t block;            /* bytes per block; 0: 1 MiB */
    const char *recend;      /* record end; NULL: "\n" */
    int cancel_fd;           /* readable: kill the jobs and stop (a signalfd) */
    void (*on_job)(const pmp_run_job *j, void *arg);   /* after each job */
    void *arg;
    char *errbuf;            /* receives a message naming the cause of a */
    size_t errcap;           /* negative return (which file, why) */
} pmp_run_opts;

typedef struct pmp_run_stats {
    uint64_t started, done, failed, skipped;   /* skipped: --resume */
    int halted;              /* --halt stopped the run */
    int cancelled;           /* cancel_fd fired */
    int exit_status;         /* GNU parallel's (see pmp_run_jobs) */
} pmp_run_stats;

/* Runs the command once per argument (or argument tuple), opts->jobs at a
 * time, each job's output grouped (pmap/proc.h), in input order with
 * keep_order. Returns 0 when the run went through (whatever the jobs'
 * statuses: see stats->exit_status, GNU parallel's: the number of failed
 * jobs, 101 for more than 100; with --halt, fail=1: the failing job's
 * status, 128+N for signal N; fail=P%: the percentage that failed), or a
 * negative errno with errbuf saying what (an unreadable argument file or
 * joblog, a write error). */
int pmp_run_jobs(const pmp_run_opts *o, pmp_run_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
