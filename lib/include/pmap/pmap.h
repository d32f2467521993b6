/* pmap/pmap.h - umbrella header: includes every public pmap module.
 *
 *   error.h     negative-errno codes and pm_strerror()
 *   config.h    PMAP_* variables, the CPU count, the default worker count
 *   pool.h      a worker pool mirroring multiprocessing.Pool (map, imap,
 *               apply_async, close/terminate/join)
 *   future.h    futures for asynchronous results, wait_any/wait_all
 *   loop.h      an io_uring event loop with a thread-pool fallback
 *   aio.h       chunked file reader and writer on the loop
 *   co.h        cooperative tasks (stackful coroutines) awaiting loop I/O
 *   pipeline.h  chunked pipelines of parallel and in-order stages, of kind
 *               CPU, BLOCKING or ASYNC
 *   gz.h        gzip: CRC-32, block-parallel deflate, checking decoder
 *   app.h       around runs: signals that cancel them, event words, exit status
 *   proc.h      child processes: a job runner with grouped output
 */
#ifndef PMAP_PMAP_H
#define PMAP_PMAP_H

#include <pmap/version.h>
#include <pmap/export.h>
#include <pmap/error.h>
#include <pmap/config.h>
#include <pmap/pool.h>
#include <pmap/future.h>
#include <pmap/loop.h>
#include <pmap/co.h>
#include <pmap/aio.h>
#include <pmap/pipeline.h>
#include <pmap/gz.h>
#include <pmap/codec.h>
#include <pmap/app.h>
#include <pmap/proc.h>

#endif
