/* wc_count.h - wc's counting of one byte range and the join of ranges
 * (pipelines/wc.c), shared by wc's stages and pmap-mpi's split wc
 * (pipelines/mpi/split.c). Internal to pipelines/: not part of pmap's API.
 *
 * A range is counted as if it started outside a word; it notes its first
 * significant byte (white space or printable) and whether it ends inside a
 * word. Ranges joined in file order with pmp__wc_join() then give exactly
 * the counts of the whole file counted at once, wherever the cuts fell.
 */
#ifndef PMP_WC_COUNT_H
#define PMP_WC_COUNT_H

#include <stddef.h>
#include <stdint.h>

enum { PMP__WC_NONE = 0, PMP__WC_PRINT, PMP__WC_SPACE };

/* The counts of one range, or of several consecutive ones joined. Plain
 * data (no pointers): it may be sent between processes as bytes. */
typedef struct pmp__wc_part {
    uint64_t lines, words, bytes;
    int32_t first;           /* PMP__WC_*: the first significant byte */
    int32_t ends_in_word;    /* meaningful when first != PMP__WC_NONE */
} pmp__wc_part;

/* Counts p[0..len) into *k (overwritten). With lines_only, newlines and
 * bytes only (words 0, first PMP__WC_NONE), 16 bytes at a time where SSE2
 * is there. Cannot fail; thread-safe (touches only *k). */
void pmp__wc_count(pmp__wc_part *k, const unsigned char *p, size_t len, int lines_only);

/* Appends *next, the range just after those of *acc, to *acc: a range that
 * starts with a printable byte while *acc ends inside a word continues
 * that word, which is counted once. Start from a zeroed part. Cannot fail. */
void pmp__wc_join(pmp__wc_part *acc, const pmp__wc_part *next);

#endif
