/* split.h - one file's work shared by every rank (split.c). Private to
 * pipelines/mpi/. */
#ifndef PMPI_SPLIT_H
#define PMPI_SPLIT_H

#include <stdint.h>

/* Collective: the CRC-32 of the size bytes of path, each rank reading its
 * share. On rank 0 returns 0 with *crc_ret set, or a negative errno when a
 * rank could not read its share or the file is no longer size bytes; on
 * the other ranks returns 0. */
int pmpi__split_crc(const char *path, uint64_t size, uint32_t *crc_ret);

#endif
