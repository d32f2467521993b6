/* wc.c - lines, words and bytes per file, a map-reduce over chunks.
 *
 * Words follow GNU wc in the C locale: a word starts at a printable byte
 * that follows whitespace (or the file's start); other bytes (controls,
 * bytes >= 0x80) neither start nor end one.
 *
 * Stages:
 *   count (parallel)     each chunk counted as if it started outside a
 *                        word, noting its first significant byte (space or
 *                        printable) and whether it ends inside a word.
 *   sum (serial)         joined in order: a chunk that starts with a
 *                        printable byte while the previous chunk ended in a
 *                        word continues that word, so it is not counted
 *                        twice. No overlap between chunks is needed.
 *                        With count_chars it also counts characters
 *                        (mbrtowc, the shift state carried from chunk to
 *                        chunk): serial, since a character may straddle
 *                        two chunks; files still go in parallel.
 * With lines_only (wc -l, -c) the count stage counts newlines alone, 16
 * bytes at a time where SSE2 is there (every x86-64): GNU wc -l counts
 * that way too, and the byte-by-byte word scan is ten times slower.
 * The stages only read the chunks, so files are mapped (PM_PL_MAP_INPUT).
 * The counting of a chunk and the join are pmp__wc_count() and
 * pmp__wc_join() (wc_count.h): pmap-mpi joins ranks' shares of one file
 * with them too (pipelines/mpi/split.c).
 */
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#ifdef __SSE2__
#include <emmintrin.h>               /* count_lines: 16 bytes at a time */
#endif

#include "common.h"
#include "wc_count.h"

typedef struct wc_opts {
    int chars;                   /* count characters (pmp_opts.count_chars) */
    int lines_only;              /* pmp_opts.lines_only */
} wc_opts;

typedef struct wc_counts {
    pmp__wc_part sum;            /* the chunks so far, joined */
    uint64_t chars;
    mbstate_t mb;                /* count_chars: a character begun */
} wc_counts;

/* Characters in p[0..len), as GNU wc -m counts them: every complete valid
 * one (NUL included); an invalid byte is skipped, and so are the bytes of
 * an incomplete one that an invalid byte cuts short. In a single-byte
 * locale every byte is a character. */
static uint64_t count_chars(wc_counts *t, const unsigned char *p, size_t len)
{
    if (MB_CUR_MAX == 1)
        return len;
    uint64_t n = 0;
    size_t i = 0;
    while (i < len) {
        int fresh = mbsinit(&t->mb);
        if (p[i] < 0x80 && fresh) {
            n++;
            i++;
            continue;
        }
        wchar_t wc;
        size_t r = mbrtowc(&wc, (const char *)p + i, len - i, &t->mb);
        if (r == (size_t)-2)     /* goes on in the next chunk */
            break;
        if (r == (size_t)-1) {   /* skip a byte, or the bytes held before */
            memset(&t->mb, 0, sizeof t->mb);
            i += fresh;
            continue;
        }
        n++;
        i += r ? r : 1;
    }
    return n;
}

static int is_space(unsigned char ch)
{
    return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

static int is_print(unsigned char ch)
{
    return ch > ' ' && ch < 0x7f;
}

/* Newlines in p[0..len). */
static uint64_t count_lines(const unsigned char *p, size_t len)
{
    uint64_t n = 0;
    size_t i = 0;
#ifdef __SSE2__
    const __m128i nl = _mm_set1_epi8('\n'), zero = _mm_setzero_si128();
    while (len - i >= 16) {
        size_t blocks = (len - i) / 16 < 255 ? (len - i) / 16 : 255;  /* no byte wraps */
        __m128i acc = zero;
        for (size_t b = 0; b < blocks; b++, i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(p + i));
            acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(v, nl));   /* -1 per newline */
        }
        __m128i sums = _mm_sad_epu8(acc, zero);              /* two 64-bit sums */
        n += (uint64_t)_mm_cvtsi128_si64(sums) + (uint64_t)_mm_extract_epi16(sums, 4);
    }
#endif
    for (; i < len; i++)
        n += p[i] == '\n';
    return n;
}

void pmp__wc_count(pmp__wc_part *k, const unsigned char *p, size_t len, int lines_only)
{
    if (lines_only) {          /* no words: first PMP__WC_NONE joins nothing */
        *k = (pmp__wc_part){.lines = count_lines(p, len), .bytes = len};
        return;
    }
    uint64_t lines = 0, words = 0;
    int in_word = 0, first = PMP__WC_NONE;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = p[i];
        lines += ch == '\n';
        if (is_space(ch)) {
            in_word = 0;
            if (!first)
                first = PMP__WC_SPACE;
        } else if (is_print(ch)) {
            words += !in_word;
            in_word = 1;
            if (!first)
                first = PMP__WC_PRINT;
        }
    }
    *k = (pmp__wc_part){.lines = lines, .words = words, .bytes = len, .first = first,
                        .ends_in_word = in_word};
}

void pmp__wc_join(pmp__wc_part *acc, const pmp__wc_part *next)
{
    acc->lines += next->lines;
    acc->words += next->words;
    acc->bytes += next->bytes;
    if (next->first == PMP__WC_PRINT && acc->first != PMP__WC_NONE && acc->ends_in_word)
        acc->words--;          /* acc's last word goes on */
    if (next->first == PMP__WC_NONE)
        return;
    if (acc->first == PMP__WC_NONE)
        acc->first = next->first;
    acc->ends_in_word = next->ends_in_word;
}

static int count_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)worker;
    const wc_opts *wo = arg;
    c->out_len = 0;            /* the counts are for the next stage, not output */
    pmp__wc_count((pmp__wc_part *)c->out, c->data, c->len, wo->lines_only);
    return 0;
}

static int sum_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)worker;
    const wc_opts *wo = arg;
    wc_counts *total = c->file->state;
    pmp__wc_join(&total->sum, (const pmp__wc_part *)c->out);
    if (wo->chars)
        total->chars += count_chars(total, c->data, c->len);
    return 0;
}

static void fill_result(pmp_run *run, const pm_file *f, pmp_result *r)
{
    (void)run;
    const wc_counts *k = f->state;
    r->lines = k->sum.lines;
    r->words = k->sum.words;
    r->bytes = k->sum.bytes;
    r->chars = k->chars;
}

int pmp_wc(const pmp_opts *o, const char *const *paths, size_t n,
           pm_pipeline_stats *stats)
{
    pmp_run run;
    pmp_run_init(&run, o);
    if (!run.pl.chunk_size)
        run.pl.chunk_size = 1024 * 1024;
    run.pl.out_size = sizeof(pmp__wc_part);
    run.pl.flags &= ~PM_PL_REMOVE_INPUT;
    run.pl.flags |= PM_PL_MAP_INPUT;   /* the stages only read the data */
    run.state_size = sizeof(wc_counts);
    run.fill_result = fill_result;
    wc_opts wo = {.chars = o->count_chars, .lines_only = o->lines_only && !o->count_chars};
    run.ctx = &wo;
    static const pmp_stage stages[] = {
        {"count", PM_STAGE_PARALLEL, count_stage},
        {"sum", PM_STAGE_SERIAL_IN_ORDER, sum_stage},
    };
    return pmp_run_stages(&run, stages, 2, paths, n, stats);
}
