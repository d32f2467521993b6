/* members.c - one big file compressed by every rank (pmap-mpi compress,
 * blocked format; dist.c decides which files).
 *
 * Rank 0 runs the one-process compress pipeline on the file, so that the
 * output is committed exactly as pmap commits it (temporary file, fsync,
 * metadata, link into place, the input removed only then, and every skip
 * and failure in pmap's words). Its member stage asks member_source for
 * each chunk: chunk k belongs to rank k mod n; rank 0's own chunks (chunk
 * 0, with the name and mtime, among them) are encoded by the stage, the
 * others are requested from their rank, which reads the same bytes of the
 * file (a shared filesystem), encodes them as the stage would (no header
 * name: only member 0 has one) and sends the member back. The bytes are
 * those of a one-process run. Rank 0 tells the others when the file is
 * over, whatever became of it, so no rank waits for a request that never
 * comes. The members travel to rank 0, which writes them: the output
 * passes through rank 0's network link (docs/scale.md).
 *
 * Threads: rank 0's requests come from the pipeline's workers, several at
 * once (MPI_THREAD_MULTIPLE); a serving rank answers on its main thread,
 * one request at a time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mpi.h>
#include <pmap/codec.h>

#include "members.h"

#define TAG_REQUEST 7
#define TAG_MEMBER 1000      /* + chunk number mod 2^20 */

typedef struct request {
    int64_t seq;             /* chunk number; -1: the file is over */
    uint64_t offset, len;
} request;

static int ranks(void)
{
    int n;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

static int member_tag(int64_t seq)
{
    return TAG_MEMBER + (int)(seq % (1 << 20));
}

int pmpi__members_ok(void)
{
    int provided;
    MPI_Query_thread(&provided);
    return provided == MPI_THREAD_MULTIPLE && ranks() > 1;
}

int pmpi__member_source(const pm_chunk *c, unsigned char *out, size_t cap, size_t *len,
                        void *arg)
{
    (void)arg;
    int owner = (int)(c->seq % (uint64_t)ranks());
    if (owner == 0)
        return 0;
    request q = {.seq = (int64_t)c->seq, .offset = c->offset, .len = c->len};
    MPI_Status st;
    int n;
    if (cap > INT_MAX)
        return -EOVERFLOW;
    MPI_Send(&q, sizeof q, MPI_BYTE, owner, TAG_REQUEST, MPI_COMM_WORLD);
    MPI_Recv(out, (int)cap, MPI_BYTE, owner, member_tag(q.seq), MPI_COMM_WORLD, &st);
    MPI_Get_count(&st, MPI_BYTE, &n);
    if (n <= 0)
        return -EIO;             /* the rank could not read or encode it */
    *len = (size_t)n;
    return 1;
}

void pmpi__members_end(void)
{
    request q = {.seq = -1};
    for (int r = 1; r < ranks(); r++)
        MPI_Send(&q, sizeof q, MPI_BYTE, r, TAG_REQUEST, MPI_COMM_WORLD);
}

/* One request: the member of q's bytes of fd into *out (grown as needed);
 * its size, or 0 when it could not be made. */
static int encode_one(const pm_codec *k, void *enc, int fd, const request *q,
                      unsigned char **in, unsigned char **out, size_t *cap)
{
    size_t need = k->bound(q->len);
    if (need > *cap) {
        unsigned char *a = realloc(*in, q->len ? q->len : 1), *b;
        if (a)
            *in = a;
        b = a ? realloc(*out, need) : NULL;
        if (!b)
            return 0;
        *out = b;
        *cap = need;
    }
    if (pread(fd, *in, q->len, (off_t)q->offset) != (ssize_t)q->len)
        return 0;
    ssize_t n = k->encode_member(enc, NULL, *in, q->len, *out, need);
    return n > 0 && n <= INT_MAX ? (int)n : 0;
}

void pmpi__members_serve(const char *path, const char *codec, int level)
{
    const pm_codec *k = pm_codec_find(codec);
    void *enc = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (k && k->encoder_new(level ? level : k->level_default, PM_CODEC_BLOCKED, &enc) < 0)
        enc = NULL;
    unsigned char *in = NULL, *out = NULL;
    size_t cap = 0;
    for (;;) {
        request q;
        MPI_Recv(&q, sizeof q, MPI_BYTE, 0, TAG_REQUEST, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (q.seq < 0)
            break;
        int n = fd >= 0 && enc ? encode_one(k, enc, fd, &q, &in, &out, &cap) : 0;
        MPI_Send(out, n, MPI_BYTE, 0, member_tag(q.seq), MPI_COMM_WORLD);
    }
    if (enc)
        k->encoder_free(enc);
    if (fd >= 0)
        close(fd);
    free(in);
    free(out);
}
