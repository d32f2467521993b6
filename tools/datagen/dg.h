/* dg.h - internals of pmap-datagen, the deterministic test-data generator.
 *
 * Everything that shapes the output is integer arithmetic on our own PRNG
 * (xoshiro256** seeded through splitmix64): no rand(), no floating point, no
 * libm. So the same seed gives the same bytes on any machine, compiler or C
 * library, and a committed sample can be checked byte for byte.
 *
 * Data flows one way: a kind generator (text, log, csv, jsonl, binary)
 * appends one record at a time to a dg_sink; the sink buffers, writes, and
 * cuts the stream at exactly the requested size. Memory is bounded by the
 * sink's buffer, whatever the size. */
#ifndef PM_DATAGEN_DG_H
#define PM_DATAGEN_DG_H

#include <stddef.h>
#include <stdint.h>

/* ---- random numbers (dg_rng.c) ---- */

typedef struct dg_rng {
    uint64_t s[4];
} dg_rng;

/* Seeds a generator from a 64-bit seed and a stream id (files of a tree use
 * their index, so each file is reproducible on its own). */
void dg_rng_seed(dg_rng *r, uint64_t seed, uint64_t stream);
uint64_t dg_next(dg_rng *r);
/* Uniform in [0, n) (n > 0), by multiply-high: no division, no loop. */
uint64_t dg_below(dg_rng *r, uint64_t n);
/* Uniform in [lo, hi] inclusive. */
uint64_t dg_range(dg_rng *r, uint64_t lo, uint64_t hi);
/* True with probability num/den. */
int dg_chance(dg_rng *r, unsigned num, unsigned den);

/* Fixed-point helpers, Q16 (value * 65536), exact integer algorithms. */
int64_t dg_log2_q16(uint64_t x);          /* log2(x), x >= 1 */
uint64_t dg_exp2_q16(int64_t l);          /* 2^(l/65536), l >= 0, < 2^(63-16) */
/* An approximately standard normal deviate in Q16 (sum of 12 uniforms). */
int64_t dg_normal_q16(dg_rng *r);
/* Log-normal size with median sqrt(lo*hi) and sigma = log2(hi/lo)/4 (in
 * log2 units), clamped to [lo, hi]: about 2.3% land on each bound. */
uint64_t dg_lognormal_clamped(dg_rng *r, uint64_t lo, uint64_t hi);

/* A Zipf-like discrete distribution over ranks 0..n-1 with weights
 * proportional to 1/(rank + offset); sampled in O(1) expected time through
 * a guide table. */
typedef struct dg_zipf {
    uint32_t n;
    uint64_t *cdf;     /* cdf[k] = sum of weights of ranks 0..k */
    uint32_t *guide;   /* guide[j] = first rank whose cdf exceeds j*total/n */
} dg_zipf;

int dg_zipf_init(dg_zipf *z, uint32_t n, uint32_t offset);
void dg_zipf_free(dg_zipf *z);
uint32_t dg_zipf_draw(const dg_zipf *z, dg_rng *r);
/* The rank a given uniform 64-bit value maps to (draw = map of dg_next). */
uint32_t dg_zipf_map(const dg_zipf *z, uint64_t u);
/* A 64-bit mixing function (splitmix64's finaliser): hash of an integer. */
uint64_t dg_mix(uint64_t x);

/* ---- the output sink (pmap_datagen.c) ---- */

#define DG_RECORD_MAX (64 * 1024)   /* no record is longer than this */

typedef struct dg_sink {
    int fd;
    const char *path;    /* for messages */
    char *buf;
    size_t len;          /* bytes buffered */
    size_t cap;          /* flush threshold; buf has DG_RECORD_MAX beyond it */
    uint64_t written;    /* bytes already written to fd */
    uint64_t limit;      /* total bytes wanted */
    int err;             /* 0 or a negative errno from write */
} dg_sink;

/* Appending helpers: the caller has DG_RECORD_MAX bytes of room per record. */
static inline char *dg_at(dg_sink *s) { return s->buf + s->len; }
void dg_put(dg_sink *s, const char *p, size_t n);
void dg_puts(dg_sink *s, const char *p);
static inline void dg_putc(dg_sink *s, char c) { s->buf[s->len++] = c; }
void dg_put_u(dg_sink *s, uint64_t v);
void dg_put_u0(dg_sink *s, uint64_t v, int width);   /* zero padded */
void dg_put_hex(dg_sink *s, uint64_t v, int digits);
/* v / 10^decimals printed with exactly `decimals` digits after the point. */
void dg_put_fixed(dg_sink *s, uint64_t v, int decimals);

/* Ends a record: flushes when the buffer is full, stops at the limit.
 * Returns 1 while more bytes are wanted, 0 when done or on error. */
int dg_sink_commit(dg_sink *s);

/* ---- kinds (dg_text.c, dg_records.c, dg_binary.c) ---- */

typedef enum dg_kind {
    DG_TEXT, DG_LOG, DG_CSV, DG_JSONL, DG_BINARY, DG_NKINDS
} dg_kind;

const char *dg_kind_name(dg_kind k);
const char *dg_kind_ext(dg_kind k);
int dg_kind_parse(const char *s, dg_kind *k_ret);   /* 0 or -EINVAL */

/* Read-only tables shared by every generator: the vocabulary and the
 * distributions over it. Built once per run, deterministically. */
typedef struct dg_tables {
    const char **words;     /* vocabulary, most frequent first */
    uint8_t *word_len;
    char *word_store;
    uint32_t nwords;
    dg_zipf word_zipf;      /* over all words: prose */
    dg_zipf small_zipf;     /* over 64 items: agents, paths, cities... */
    dg_zipf mid_zipf;       /* over 4096 items: clients, users, products */
} dg_tables;

int dg_tables_init(dg_tables *t);
void dg_tables_free(dg_tables *t);

/* Per-stream state of one kind generator. */
typedef struct dg_gen {
    dg_kind kind;
    const dg_tables *t;
    dg_rng rng;
    uint64_t seed;
    uint64_t clock_ms;      /* log/jsonl/csv: current timestamp, ms since epoch */
    uint64_t serial;        /* csv/jsonl/log: running id */
    int header_done;        /* csv: header written */
    uint32_t prev_word;     /* text: rank of the previous word */
} dg_gen;

void dg_gen_init(dg_gen *g, dg_kind kind, const dg_tables *t, uint64_t seed, uint64_t stream);
/* Appends one record of g's kind to s. */
void dg_gen_record(dg_gen *g, dg_sink *s);

/* Kind-specific record writers. */
void dg_text_record(dg_gen *g, dg_sink *s);
void dg_log_record(dg_gen *g, dg_sink *s);
void dg_csv_record(dg_gen *g, dg_sink *s);
void dg_jsonl_record(dg_gen *g, dg_sink *s);
void dg_binary_record(dg_gen *g, dg_sink *s);

/* Shared pieces of the record writers (dg_text.c). */
void dg_put_word(dg_sink *s, const dg_tables *t, uint32_t rank);
/* ISO 8601 UTC timestamp with milliseconds: 2024-03-05T12:34:56.789Z */
void dg_put_iso_time(dg_sink *s, uint64_t ms);
/* Splits ms since the epoch into calendar fields (proleptic Gregorian). */
void dg_civil(uint64_t ms, unsigned *y, unsigned *mo, unsigned *d,
              unsigned *h, unsigned *mi, unsigned *sec, unsigned *milli);

/* ---- writing files and trees (dg_sink.c, dg_tree.c) ---- */

/* A sink with its buffer; dg_sink_free releases it (accepts NULL). */
dg_sink *dg_sink_new(void);
void dg_sink_free(dg_sink *s);

/* Streams `size` bytes of `kind` (stream id `stream`) to fd. Returns 0 or a
 * negative errno from write(). */
int dg_write_stream(dg_sink *s, int fd, const char *path, dg_kind kind,
                    const dg_tables *t, uint64_t seed, uint64_t stream, uint64_t size);
/* Creates path (refusing to replace an existing file unless force) and
 * writes the stream into it. 0 or negative errno; a message names path. */
int dg_write_file(dg_sink *s, const char *path, int force, dg_kind kind,
                  const dg_tables *t, uint64_t seed, uint64_t stream, uint64_t size);

typedef struct dg_tree_opts {
    uint64_t seed;
    uint64_t files;        /* small files wanted (0: fill `small_bytes`) */
    uint64_t small_bytes;  /* total size of the small files when files == 0 */
    uint64_t min, max;     /* bounds of a small file's size */
    unsigned kinds;        /* bit mask of the kinds small files may have */
    unsigned large;        /* mixed trees: number of large files */
    uint64_t large_bytes;  /* mixed trees: their total size */
    int force;             /* write into a non-empty directory */
} dg_tree_opts;

typedef struct dg_tree_stats {
    uint64_t files, dirs, bytes;
} dg_tree_stats;

/* Writes a tree under dir (created if missing; must be empty unless force):
 * `large` big files at the top, then small files in nested directories.
 * Returns 0 or a negative errno after printing a message naming the path. */
int dg_write_tree(const char *dir, const dg_tree_opts *o, const dg_tables *t,
                  dg_sink *s, dg_tree_stats *stats_ret);

#endif
