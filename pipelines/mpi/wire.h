/* wire.h - the byte buffers pmap-mpi's ranks exchange (pipelines/mpi/):
 * a growing buffer written with wire_put*() and read back with
 * wire_get*(). Every rank runs the same binary on the same architecture
 * (an MPI job's usual case), so fixed-size values travel as their bytes.
 * Private to pipelines/mpi/. */
#ifndef PMPI_WIRE_H
#define PMPI_WIRE_H

#include <stddef.h>

typedef struct wire {
    unsigned char *p;
    size_t len, cap;
    size_t pos;              /* read position */
    int bad;                 /* out of memory (writing) or overrun (reading) */
} wire;

/* Appends n bytes; on failure sets w->bad and appends nothing more. */
void wire_put(wire *w, const void *data, size_t n);
/* Appends a string (NULL allowed: read back as NULL). */
void wire_put_str(wire *w, const char *s);
/* Reads n bytes into data; on overrun sets w->bad and zeroes data. */
void wire_get(wire *w, void *data, size_t n);
/* Reads a string: a pointer into w's bytes (valid while w is), or NULL. */
const char *wire_get_str(wire *w);
/* Releases the bytes; the wire is then empty. NULL: no-op. */
void wire_free(wire *w);

#endif
