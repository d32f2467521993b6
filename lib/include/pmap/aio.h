/* pmap/aio.h - chunked file reading and writing over a pm_loop.
 *
 * pm_reader streams a descriptor as chunks of a fixed size, keeping a
 * number of reads in flight ahead of the consumer, into buffers from a
 * fixed pool: memory is buffers x chunk_size whatever the file's size.
 * Chunks arrive in file order. Regular files and block devices are read at
 * offsets (several reads at once); pipes, FIFOs, sockets and terminals at
 * the current position, one read at a time. Each chunk is full
 * (chunk_size bytes) except the last: a read is repeated until its chunk is
 * full or the input ends.
 *
 * pm_writer writes caller-owned buffers at given offsets, or appends
 * numbered chunks in their order whatever order they are handed in, and can
 * fsync before it reports completion.
 *
 * Both are driven by their loop: every function is for the loop's thread,
 * except pm_reader_release(), which any thread may call.
 */
#ifndef PMAP_AIO_H
#define PMAP_AIO_H

#include <stddef.h>
#include <stdint.h>

#include <pmap/export.h>
#include <pmap/loop.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- reader ---- */

typedef struct pm_reader pm_reader;

/* One chunk of input, owned by the consumer until pm_reader_release(). */
typedef struct pm_aio_chunk {
    unsigned char *data;     /* chunk_size bytes of room */
    size_t len;              /* bytes read: chunk_size, less only for the last */
    uint64_t offset;         /* input offset of data[0] (bytes before it, for pipes) */
    uint64_t seq;            /* 0, 1, 2, ... in input order */
} pm_aio_chunk;

/* Push mode: called on the loop's thread for each chunk in order (status
 * 0), then exactly once with chunk NULL and status 0 at end of input or
 * -errno on failure (chunks before the failure were delivered). */
typedef void (*pm_reader_cb)(void *arg, pm_aio_chunk *chunk, int status);

typedef struct pm_reader_opts {
    size_t chunk_size;       /* bytes per chunk; 0: 1 MiB */
    unsigned ahead;          /* reads in flight ahead of the consumer; 0: 4
                                (always 1 for pipes and other streams) */
    unsigned buffers;        /* buffer pool: in-flight reads plus the chunks
                                the consumer holds; 0: ahead + 2 (min ahead) */
    uint64_t offset;         /* first byte to read (seekable inputs) */
    uint64_t length;         /* most bytes to read; 0: up to end of input */
    pm_reader_cb on_chunk;   /* push mode; NULL: pull with pm_reader_next() */
    void *arg;               /* for on_chunk */
} pm_reader_opts;

/* Starts reading fd (which the caller keeps open until pm_reader_free and
 * until the loop has let go of the reads in flight then: see below).
 * In push mode the reader holds the loop (pm_loop_hold) until its final
 * callback has run and every chunk is released, so pm_loop_run() carries on
 * while other threads still hold chunks. Returns 0 and sets *reader_ret, or
 * -EINVAL (bad options), -EBADF (fd not open), -ENOMEM. */
PM_API int pm_reader_new(pm_loop *loop, int fd, const pm_reader_opts *opts,
                         pm_reader **reader_ret);

/* Pull mode: runs the loop until the next chunk is ready. Returns 1 and sets
 * *chunk_ret; 0 at end of input (and again on later calls); -errno on
 * failure (chunks before it were returned); -ENOBUFS when every buffer is
 * held by the caller (release some first); -EINVAL in push mode. */
PM_API int pm_reader_next(pm_reader *reader, pm_aio_chunk **chunk_ret);

/* Thread-safe: hands a chunk's buffer back to the pool, which lets the
 * reader read further. From another thread the buffer is passed to the
 * loop with pm_loop_post(). Each chunk is released exactly once. */
PM_API void pm_reader_release(pm_reader *reader, pm_aio_chunk *chunk);

/* Stops reading: reads in flight are cancelled, and the memory goes once
 * the loop has let go of them (at once if none is in flight; otherwise from
 * the loop, so keep running it or free the loop). A cancelled read may
 * still be running on the descriptor (the threads engine's pread), so close
 * it only after that: when pm_loop_run() returns or pm_loop_pending() is
 * 0. Chunks not yet released become invalid. No callback runs after this.
 * NULL: no-op. */
PM_API void pm_reader_free(pm_reader *reader);

/* Bytes delivered to the consumer so far. */
PM_API uint64_t pm_reader_bytes(const pm_reader *reader);

/* ---- writer ---- */

typedef struct pm_writer pm_writer;

typedef struct pm_writer_opts {
    int sync;                /* before close completes: 0 nothing, 1 fsync,
                                2 fdatasync (ignored for pipes, sockets and
                                character devices) */
    uint64_t append_at;      /* where appending starts on a seekable file;
                                0: the descriptor's current position */
} pm_writer_opts;

/* Creates a writer for fd (kept open by the caller until the writer is
 * freed). Returns 0, -EBADF, -EINVAL or -ENOMEM. */
PM_API int pm_writer_new(pm_loop *loop, int fd, const pm_writer_opts *opts,
                         pm_writer **writer_ret);

/* Writes len bytes at offset off; cb(arg, res) follows with res = len or
 * -errno (e.g. -ENOSPC). data must stay valid until then. Returns 0, or
 * -ESPIPE for a descriptor without offsets (pipes, O_APPEND), -EINVAL
 * after close; then cb is not called. A write that cannot even be queued
 * (-ENOMEM) is reported through cb. */
PM_API int pm_writer_write_at(pm_writer *w, uint64_t off, const void *data,
                              size_t len, pm_loop_cb cb, void *arg);

/* Appends chunk number seq (0, 1, 2, ..., each once, in any order): it is
 * written right after chunk seq - 1, as soon as every earlier chunk has been
 * handed in (on seekable files at its computed offset, several at once; on
 * pipes and O_APPEND descriptors one at a time, in order). cb as for
 * pm_writer_write_at. Returns 0, or -EEXIST for a seq already handed in,
 * -EINVAL after close, -ENOMEM; then cb is not called. */
PM_API int pm_writer_append(pm_writer *w, uint64_t seq, const void *data,
                            size_t len, pm_loop_cb cb, void *arg);

/* No more writes. Once every write has completed, syncs if asked and calls
 * cb(arg, status): 0, or the first error of a write or of the sync. Chunks
 * still waiting for a missing predecessor fail (-ECANCELED) and the status
 * is then -EINVAL. Appending leaves a seekable descriptor's position after
 * the appended data. Returns 0, or -EINVAL if already closed. */
PM_API int pm_writer_close(pm_writer *w, pm_loop_cb cb, void *arg);

/* pm_writer_close() and run the loop until it has completed; returns the
 * status. */
PM_API int pm_writer_finish(pm_writer *w);

/* Frees the writer. Writes still pending are cancelled (callbacks get
 * -ECANCELED); the memory goes once they complete. NULL: no-op. */
PM_API void pm_writer_free(pm_writer *w);

/* Bytes written successfully so far. */
PM_API uint64_t pm_writer_bytes(const pm_writer *w);

#ifdef __cplusplus
}
#endif
#endif
