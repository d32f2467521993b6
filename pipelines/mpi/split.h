/* split.h - one file's work shared by every rank (split.c). Private to
 * pipelines/mpi/. */
#ifndef PMPI_SPLIT_H
#define PMPI_SPLIT_H

#include <stdint.h>

#include "wc_count.h"

/* Collective: the CRC-32 of the size bytes of fd, each rank reading its
 * share. fd is the file, open for reading on this rank (the caller closes
 * it), or the negative errno of this rank's failure to open it. On rank 0
 * returns 0 with *crc_ret set, or a negative errno when a rank could not
 * read its share or the file is no longer size bytes; on the other ranks
 * returns 0. Blocks until every rank has read its share. */
int pmpi__split_crc(int fd, uint64_t size, uint32_t *crc_ret);

/* Collective: wc's counts of the size bytes of fd (lines_only: newlines
 * and bytes only, as pmp_opts.lines_only), each rank counting its share;
 * the counts are those of the whole file counted at once. fd, returns and
 * blocking as pmpi__split_crc(); *wc_ret is set on rank 0 only. */
int pmpi__split_wc(int fd, uint64_t size, int lines_only, pmp__wc_part *wc_ret);

#endif
