/* wc.c - lines, words and bytes per file, a map-reduce over chunks.
 *
 * Stages:
 *   count (parallel)     lines and words of each chunk; a word that spans a
 *                        chunk boundary is counted once, by the chunk where
 *                        it starts: the pipeline's 1-byte overlap shows each
 *                        chunk the byte before it.
 *   sum (serial)         per-file totals. Whitespace is C-locale isspace().
 */
#include <string.h>

#include "common.h"

typedef struct wc_counts {
    uint64_t lines, words, bytes;
} wc_counts;

static int is_space(unsigned char ch)
{
    return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

static int count_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)arg;
    (void)worker;
    wc_counts *k = (wc_counts *)c->out;
    const unsigned char *p = c->data;
    int prev_space = c->prefix_len ? is_space(p[-1]) : 1;
    uint64_t lines = 0, words = 0;
    for (size_t i = 0; i < c->len; i++) {
        int sp = is_space(p[i]);
        lines += p[i] == '\n';
        words += prev_space && !sp;
        prev_space = sp;
    }
    k->lines = lines;
    k->words = words;
    k->bytes = c->len;
    c->out_len = 0;            /* the counts are for the next stage, not output */
    return 0;
}

static int sum_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)arg;
    (void)worker;
    wc_counts *total = c->file->state;
    const wc_counts *k = (const wc_counts *)c->out;
    total->lines += k->lines;
    total->words += k->words;
    total->bytes += k->bytes;
    return 0;
}

static void fill_result(pmp_run *run, const pm_file *f, pmp_result *r)
{
    (void)run;
    const wc_counts *k = f->state;
    r->lines = k->lines;
    r->words = k->words;
    r->bytes = k->bytes;
}

int pmp_wc(const pmp_opts *o, const char *const *paths, size_t n,
           pm_pipeline_stats *stats)
{
    pmp_run run;
    pmp_run_init(&run, o);
    if (!run.pl.chunk_size)
        run.pl.chunk_size = 1024 * 1024;
    run.pl.overlap = 1;
    run.pl.out_size = sizeof(wc_counts);
    run.pl.flags &= ~PM_PL_REMOVE_INPUT;
    run.pl.file_begin = pmp_state_begin;
    run.state_size = sizeof(wc_counts);
    run.fill_result = fill_result;
    static const pmp_stage stages[] = {
        {"count", PM_STAGE_PARALLEL, count_stage},
        {"sum", PM_STAGE_SERIAL_IN_ORDER, sum_stage},
    };
    return pmp_run_stages(&run, stages, 2, paths, n, stats);
}
