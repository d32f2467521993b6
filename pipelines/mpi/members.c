/* members.c - one big file compressed or decompressed by every rank
 * (pmap-mpi compress and decompress, blocked format; dist.c decides which
 * files).
 *
 * Rank 0 runs the one-process compress pipeline on the file, so that the
 * output is committed exactly as pmap commits it (temporary file, fsync,
 * metadata, link into place, the input removed only then, and every skip
 * and failure in pmap's words). Its member stage asks member_source for
 * each chunk: chunk k belongs to rank k mod n; rank 0's own chunks (chunk
 * 0, with the name and mtime, among them) are encoded by the stage and
 * written by rank 0's pipeline. For another rank's chunk:
 *
 *   ENCODE k   rank 0's worker asks the owner, which reads the chunk's
 *              bytes (a shared filesystem), encodes them as the stage would
 *              (no header name: only member 0 has one), keeps the member in
 *              memory and replies with its SIZE only (or -errno). The stage
 *              sets out_len to it and out_elsewhere: rank 0's pipeline
 *              keeps the member's place in the output without writing it.
 *   WRITE k X  when the member retires in order, its offset X is decided
 *              (pm_pipeline_opts.out_placed): rank 0 tells the owner, with
 *              the name of the output's temporary (PM_PL_NAMED_TEMP; beside
 *              the input, compress's output directory). The owner opens it
 *              once, pwrites the member at X and drops it.
 *   SYNC       rank 0's file_end (every member placed, rank 0's own pieces
 *              written): each rank fdatasyncs (when rank 0's pipeline will
 *              sync the output: the input is to be removed) and closes the
 *              temporary, and replies 0 or the first error of its writes;
 *              any error fails the file, whose temporary is then discarded
 *              as for any failed file. Rank 0 then syncs and links it.
 *   END        rank 0, after the file's run whatever became of it: every
 *              rank drops what it holds and returns, so no rank waits for a
 *              request that never comes.
 *
 * Decompress is the same conversation with DECODE in ENCODE's place:
 *
 *   DECODE k   for chunk k (chunk 0 too: the blocked layout is never
 *              decoded for -N, which needs the first header), rank 0's
 *              members stage asks the owner, which reads the chunk's
 *              compressed bytes and decodes its whole members as the stage
 *              would (pm_codec_unpack_members, into at most the chunk's
 *              output room), and replies (members, bytes taken, bytes
 *              made). It keeps the output only when the members are the
 *              whole chunk; else rank 0 streams the chunk itself. WRITE,
 *              SYNC and END as above.
 *   DROP k     rank 0's serial stage could not take chunk k's members as
 *              whole members (its decoder is not at a member boundary:
 *              trailing garbage before them): it streams the chunk itself
 *              and the owner frees what it kept.
 *
 * The bytes are those of a one-process run; the output's bytes travel from
 * each rank to the filesystem, and rank 0's network link carries only
 * these small messages (docs/scale.md). A rank holds at most the members
 * rank 0 has in flight (a chunk's token is alive from its read to its
 * retirement, and max_chunks bounds those): its share of max_chunks
 * members of at most the codec's bound of a chunk each.
 *
 * Threads: rank 0's ENCODE and DECODE requests come from the pipeline's
 * workers, several at once, its WRITEs from out_placed, on a worker under
 * the file's lock, and its DROPs from the serial stage: WRITEs and DROPs
 * are MPI_Isends, never waited for there (completed ones are reaped as
 * later ones go; file_end waits for the rest). SYNC and END
 * are sent by rank 0's main thread once every WRITE was posted, so they
 * arrive after them (MPI keeps one sender's order on one tag). This needs
 * MPI_THREAD_MULTIPLE. A serving rank answers on its main thread, one
 * message at a time, in the order they come.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>
#include <pmap/codec.h>

#include "members.h"

#define TAG_REQUEST 7
#define TAG_SYNC 8
#define TAG_MEMBER 1000      /* + chunk number mod 2^20 */
#define NAME_CAP 512         /* a temporary's name, NUL included */

enum { MSG_ENCODE = 1, MSG_WRITE, MSG_SYNC, MSG_END, MSG_DECODE, MSG_DROP };

/* Rank 0 -> a rank. A WRITE is followed by the temporary's name. */
typedef struct msg {
    int32_t type;            /* MSG_* */
    int32_t durable;         /* SYNC: fdatasync before closing */
    int64_t seq;             /* ENCODE, DECODE, WRITE, DROP: the chunk */
    uint64_t offset;         /* ENCODE, DECODE: input offset; WRITE: output offset */
    uint64_t len;            /* ENCODE, DECODE: input bytes; WRITE: the output's size */
    uint64_t cap;            /* DECODE: the most output bytes to make */
} msg;

/* A WRITE on its way (rank 0): the Isend's request and its bytes, which
 * must live until it completes. */
typedef struct pending {
    struct pending *next;
    MPI_Request req;
    msg m;
    char name[NAME_CAP];
} pending;

_Static_assert(offsetof(pending, name) == offsetof(pending, m) + sizeof(msg),
               "a WRITE's name follows its header");

/* Rank 0's side, for the one file being compressed across ranks. */
static struct {
    pthread_mutex_t lock;    /* the pending list and err */
    pending *head, *tail;    /* WRITEs not known to be complete, in order */
    int err;                 /* first failure to post a WRITE */
    int durable;             /* the pipeline syncs the output (set up) */
    pm_signals *signals;     /* a signal stops rank 0's waits (set up) */
    pmpi_ident ident;        /* the file every rank reads (set up) */
} root = {.lock = PTHREAD_MUTEX_INITIALIZER};

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

static int owner_of(const pm_chunk *c)
{
    return (int)(c->seq % (uint64_t)ranks());
}

int pmpi__members_ok(void)
{
    int provided;
    MPI_Query_thread(&provided);
    return provided == MPI_THREAD_MULTIPLE && ranks() > 1;
}

/* ---- rank 0 ---- */

/* Waits for req, polling (with a growing pause, up to 1 ms) so that a
 * signal can stop it: when mpirun ends the job because a rank died, it
 * sends SIGTERM and, a second later, SIGKILL; the signal cancels the
 * pipeline, and a wait that returned lets it discard the named temporary
 * in that second (a rank that died never answers). Returns 0, or
 * -ECANCELED with the receive cancelled. (A blocking MPI_Recv would also
 * spin a core meanwhile.) */
static int wait_for(MPI_Request *req)
{
    long pause_ns = 20000;
    for (;;) {
        int done = 0;
        MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (done)
            return 0;
        if (pm_signals_caught(root.signals)) {
            MPI_Cancel(req);
            MPI_Wait(req, MPI_STATUS_IGNORE);
            return -ECANCELED;
        }
        nanosleep(&(struct timespec){.tv_nsec = pause_ns}, NULL);
        if (pause_ns < 1000000)
            pause_ns *= 2;
    }
}

/* Receives one value of type t from rank `from` on tag; 0 or -ECANCELED. */
static int recv_value(void *v, MPI_Datatype t, int from, int tag)
{
    MPI_Request req;
    MPI_Irecv(v, 1, t, from, tag, MPI_COMM_WORLD, &req);
    return wait_for(&req);
}

int pmpi__ident_same(const pmpi_ident *a, const struct stat *st)
{
    return a->ino == (uint64_t)st->st_ino && a->size == (uint64_t)st->st_size &&
           a->mtime_sec == (int64_t)st->st_mtim.tv_sec &&
           a->mtime_nsec == (int64_t)st->st_mtim.tv_nsec && S_ISREG(st->st_mode);
}

void pmpi__ident_of(pmpi_ident *id, const struct stat *st)
{
    *id = (pmpi_ident){.ino = (uint64_t)st->st_ino, .size = (uint64_t)st->st_size,
                       .mtime_sec = (int64_t)st->st_mtim.tv_sec,
                       .mtime_nsec = (int64_t)st->st_mtim.tv_nsec};
}

/* Who works on chunk c: its rank (> 0), 0 for rank 0 itself, or -ESTALE
 * when the file rank 0's pipeline opened is not the one the others read. */
static int worker_of(const pm_chunk *c)
{
    if (!pmpi__ident_same(&root.ident, &c->file->st))
        return -ESTALE;
    return owner_of(c);
}

int pmpi__member_source(const pm_chunk *c, unsigned char *out, size_t cap, size_t *len,
                        void *arg)
{
    (void)out;
    (void)arg;
    int owner = worker_of(c);
    if (owner <= 0)
        return owner;
    msg q = {.type = MSG_ENCODE, .seq = (int64_t)c->seq, .offset = c->offset, .len = c->len};
    int64_t size;
    MPI_Send(&q, sizeof q, MPI_BYTE, owner, TAG_REQUEST, MPI_COMM_WORLD);
    if (recv_value(&size, MPI_INT64_T, owner, member_tag(q.seq)) < 0)
        return -ECANCELED;
    if (size <= 0)
        return size < 0 && size > -4096 ? (int)size : -EIO;  /* not made there */
    if ((uint64_t)size > cap)
        return -EIO;             /* larger than the codec's bound: not ours */
    *len = (size_t)size;
    return PMP_MEMBER_ELSEWHERE;
}

/* unpack_source: chunk c's whole members, decoded by its rank, which keeps
 * them only when they are the whole chunk; nothing whole (members 0):
 * rank 0 streams the chunk. */
static int unpack_source(const pm_chunk *c, uint64_t *members, size_t *in_used,
                         size_t *out_len, void *arg)
{
    (void)arg;
    int owner = worker_of(c);
    if (owner <= 0)
        return owner;
    msg q = {.type = MSG_DECODE, .seq = (int64_t)c->seq, .offset = c->offset, .len = c->len,
             .cap = c->out_cap};
    int64_t r[3];                /* members or -errno, bytes taken, bytes made */
    MPI_Request req;
    MPI_Send(&q, sizeof q, MPI_BYTE, owner, TAG_REQUEST, MPI_COMM_WORLD);
    MPI_Irecv(r, 3, MPI_INT64_T, owner, member_tag(q.seq), MPI_COMM_WORLD, &req);
    if (wait_for(&req) < 0)
        return -ECANCELED;
    if (r[0] < 0)
        return r[0] > -4096 ? (int)r[0] : -EIO;
    int whole = r[0] > 0 && (uint64_t)r[1] == c->len && r[2] >= 0 &&
                (uint64_t)r[2] <= c->out_cap;
    *members = whole ? (uint64_t)r[0] : 0;
    *in_used = whole ? (size_t)r[1] : 0;
    *out_len = whole ? (size_t)r[2] : 0;
    return PMP_MEMBER_ELSEWHERE;
}

/* Under root.lock: frees the WRITEs at the head that have completed. */
static void reap(void)
{
    int done = 1;
    while (root.head && done) {
        MPI_Test(&root.head->req, &done, MPI_STATUS_IGNORE);
        if (done) {
            pending *p = root.head;
            root.head = p->next;
            if (!root.head)
                root.tail = NULL;
            free(p);
        }
    }
}

/* Posts m (and nlen bytes of name) to chunk c's rank without waiting;
 * a failure to is the file's (root.err: member_end reports it). */
static void post(const pm_chunk *c, const msg *m, const char *name, size_t nlen, int err)
{
    pending *p = !err ? malloc(sizeof *p) : NULL;
    pthread_mutex_lock(&root.lock);
    if (!p) {
        if (!root.err)
            root.err = err ? err : -ENOMEM;
    } else {
        p->next = NULL;
        p->m = *m;
        memcpy(p->name, name, nlen);
        MPI_Isend(&p->m, (int)(sizeof p->m + nlen), MPI_BYTE, owner_of(c), TAG_REQUEST,
                  MPI_COMM_WORLD, &p->req);
        if (root.tail)
            root.tail->next = p;
        else
            root.head = p;
        root.tail = p;
        reap();
    }
    pthread_mutex_unlock(&root.lock);
}

/* out_placed: tells chunk c's rank where its member goes. Never waits. */
static void member_placed(const pm_chunk *c, uint64_t offset, size_t len, void *arg)
{
    (void)arg;
    const char *name = c->file->tmp_name;
    size_t nlen = name ? strlen(name) + 1 : 0;
    msg m = {.type = MSG_WRITE, .seq = (int64_t)c->seq, .offset = offset, .len = len};
    post(c, &m, name, nlen, nlen && nlen <= NAME_CAP ? 0 : -ENAMETOOLONG);
}

/* unpack_drop: chunk c's rank frees the output it keeps. Never waits. */
static void unpack_drop(const pm_chunk *c, void *arg)
{
    (void)arg;
    msg m = {.type = MSG_DROP, .seq = (int64_t)c->seq};
    post(c, &m, "", 0, 0);
}

/* Waits for every WRITE posted (the ranks are serving: they match). After
 * a signal, what is left is abandoned, not freed: the process is ending,
 * and a send to a rank that died may never complete. */
static void drain(void)
{
    pthread_mutex_lock(&root.lock);
    while (root.head && wait_for(&root.head->req) == 0) {
        pending *p = root.head;
        root.head = p->next;
        free(p);
    }
    root.head = root.tail = NULL;
    pthread_mutex_unlock(&root.lock);
}

/* file_end: once every member is placed, each rank syncs what it wrote;
 * the first error (a failed write, sync or close there) fails the file. */
static int member_end(pm_file *f, int status, void *arg)
{
    (void)f;
    (void)arg;
    drain();
    if (status)
        return 0;                /* failed anyway: END releases the ranks */
    msg q = {.type = MSG_SYNC, .durable = root.durable};
    int n = ranks(), err = root.err;
    for (int r = 1; r < n; r++)
        MPI_Send(&q, sizeof q, MPI_BYTE, r, TAG_REQUEST, MPI_COMM_WORLD);
    for (int r = 1; r < n; r++) {
        int32_t rc;
        if (recv_value(&rc, MPI_INT32_T, r, TAG_SYNC) < 0)
            return -ECANCELED;
        if (rc < 0 && !err)
            err = rc;
    }
    return err;
}

void pmpi__members_setup(pmp_opts *o, const pmpi_ident *ident, int decode)
{
    const unsigned f = o->pl.flags;
    root.ident = *ident;
    if (decode) {
        o->unpack_source = unpack_source;
        o->unpack_drop = unpack_drop;
    } else {
        o->member_source = pmpi__member_source;
    }
    o->member_placed = member_placed;
    o->member_end = member_end;
    root.err = 0;
    root.signals = o->signals;
    root.durable = (f & PM_PL_REMOVE_INPUT) && !(f & PM_PL_NO_SYNC);
}

void pmpi__members_end(void)
{
    msg q = {.type = MSG_END};
    drain();                     /* a file that never reached file_end */
    for (int r = 1; r < ranks(); r++)
        MPI_Send(&q, sizeof q, MPI_BYTE, r, TAG_REQUEST, MPI_COMM_WORLD);
}

/* ---- the other ranks ---- */

/* A member encoded here (or a chunk's members decoded here), waiting for
 * its offset. */
typedef struct held {
    int64_t seq;
    unsigned char *buf;
    size_t len;
} held;

typedef struct server {
    const pm_codec *k;
    void *enc;               /* compress: the encoder */
    void *unp;               /* decompress: the unpacker */
    int fd;                  /* the input, or -errno: why not */
    int dir_fd;              /* the input's directory (it holds the
                                output), or -1: by in_path */
    const char *in_path;
    unsigned char *in;       /* a chunk's bytes */
    size_t in_cap;
    held *held;              /* members not yet written (rank 0's in flight) */
    size_t nheld, held_cap;
    int out_fd;              /* the output's temporary, once a WRITE came */
    int err;                 /* first failed write, sync or close: SYNC's reply */
} server;

static void set_err(server *s, int err)
{
    if (!s->err)
        s->err = err;
}

/* Reads q's bytes of the input into s->in and makes room for one more
 * held output. 0 or -errno. */
static int read_chunk(server *s, const msg *q)
{
    if (q->len > s->in_cap) {
        unsigned char *a = realloc(s->in, q->len);
        if (!a)
            return -ENOMEM;
        s->in = a;
        s->in_cap = q->len;
    }
    if (s->nheld == s->held_cap) {
        size_t cap = s->held_cap ? 2 * s->held_cap : 16;
        held *h = realloc(s->held, cap * sizeof *h);
        if (!h)
            return -ENOMEM;
        s->held = h;
        s->held_cap = cap;
    }
    ssize_t n = pread(s->fd, s->in, q->len, (off_t)q->offset);
    return n == (ssize_t)q->len ? 0 : n < 0 ? -errno : -EIO;
}

/* ENCODE: the member of q's bytes of the input, kept; its size or -errno. */
static int64_t encode(server *s, const msg *q)
{
    if (s->fd < 0)
        return s->fd;
    if (!s->enc || q->len > SIZE_MAX / 2)
        return -EIO;
    ssize_t n = read_chunk(s, q);
    if (n < 0)
        return n;
    size_t need = s->k->bound(q->len);
    unsigned char *out = malloc(need ? need : 1);
    if (!out)
        return -ENOMEM;
    n = s->k->encode_member(s->enc, NULL, s->in, q->len, out, need);
    if (n <= 0) {
        free(out);
        return n < 0 ? n : -EIO;
    }
    s->held[s->nheld++] = (held){.seq = q->seq, .buf = out, .len = (size_t)n};
    return n;
}

/* DECODE: the whole members at the start of q's bytes of the input, into
 * r (members or -errno, bytes taken, bytes made); their output is kept
 * only when they are all of q's bytes (rank 0 streams any other chunk). */
static void decode_chunk(server *s, const msg *q, int64_t r[3])
{
    r[0] = r[1] = r[2] = 0;
    if (s->fd < 0)
        r[0] = s->fd;
    else if (!s->unp || q->len > SIZE_MAX / 2 || q->cap > SIZE_MAX / 2)
        r[0] = -EIO;
    else
        r[0] = read_chunk(s, q);
    unsigned char *out = r[0] == 0 ? malloc(q->cap ? q->cap : 1) : NULL;
    if (r[0] == 0 && !out)
        r[0] = -ENOMEM;
    if (r[0] < 0)
        return;
    size_t used = 0, made = 0;
    uint64_t members = pm_codec_unpack_members(s->k, s->unp, s->in, q->len, out, q->cap,
                                               &used, &made);
    r[0] = (int64_t)members;
    r[1] = (int64_t)used;
    r[2] = (int64_t)made;
    if (members == 0 || used != q->len) {
        free(out);
        return;
    }
    unsigned char *fit = realloc(out, made ? made : 1);   /* held until its WRITE */
    s->held[s->nheld++] = (held){.seq = q->seq, .buf = fit ? fit : out, .len = made};
}

/* Index of the held output of chunk seq, or s->nheld. */
static size_t find_held(const server *s, int64_t seq)
{
    size_t i = 0;
    while (i < s->nheld && s->held[i].seq != seq)
        i++;
    return i;
}

/* DROP: rank 0 streamed chunk q->seq itself. */
static void drop(server *s, const msg *q)
{
    size_t i = find_held(s, q->seq);
    if (i < s->nheld) {
        free(s->held[i].buf);
        s->held[i] = s->held[--s->nheld];
    }
}

/* Opens the temporary named by rank 0, in the input's directory (its
 * descriptor; by path for an operand): a regular file of ours with one
 * name, never through a symbolic link. */
static int check_output(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
        st.st_nlink != 1) {
        close(fd);
        return -EPERM;
    }
    return fd;
}

static int open_output(server *s, const char *name)
{
    const int flags = O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK;
    if (strchr(name, '/'))
        return -EINVAL;
    if (s->dir_fd >= 0) {
        int fd = openat(s->dir_fd, name, flags);
        return fd < 0 ? -errno : check_output(fd);
    }
    const char *slash = strrchr(s->in_path, '/');
    char path[PATH_MAX];
    int dlen = slash ? (int)(slash - s->in_path) : 1;
    const char *dir = slash ? s->in_path : ".";
    if (slash == s->in_path)
        dlen = 0;                               /* "/x": the root */
    if (strchr(name, '/') || snprintf(path, sizeof path, "%.*s/%s", dlen, dir, name) >=
                                 (int)sizeof path)
        return -ENAMETOOLONG;
    int fd = open(path, flags);
    return fd < 0 ? -errno : check_output(fd);
}

static int pwrite_all(int fd, const unsigned char *p, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* WRITE: the held member q->seq at q->offset of the temporary `name`. */
static void write_member(server *s, const msg *q, const char *name)
{
    size_t i = find_held(s, q->seq);
    if (i == s->nheld || s->held[i].len != q->len) {
        set_err(s, -EIO);        /* not encoded here: a confused rank 0 */
        return;
    }
    held h = s->held[i];
    s->held[i] = s->held[--s->nheld];
    if (s->out_fd < 0 && !s->err) {
        int fd = name ? open_output(s, name) : -EINVAL;
        if (fd < 0)
            set_err(s, fd);
        else
            s->out_fd = fd;
    }
    if (s->out_fd >= 0 && !s->err) {
        int rc = pwrite_all(s->out_fd, h.buf, h.len, q->offset);
        if (rc < 0)
            set_err(s, rc);
    }
    free(h.buf);
}

/* SYNC: what was written here is durable (if asked) and closed; replies
 * 0 or the first error. */
static void sync_output(server *s, const msg *q)
{
    if (s->out_fd >= 0) {
        if (q->durable && fdatasync(s->out_fd) < 0)
            set_err(s, -errno);
        if (close(s->out_fd) < 0)       /* a network filesystem's last word */
            set_err(s, -errno);
        s->out_fd = -1;
    }
    int32_t rc = s->err;
    MPI_Send(&rc, 1, MPI_INT32_T, 0, TAG_SYNC, MPI_COMM_WORLD);
}

static void server_free(server *s)
{
    if (s->enc)
        s->k->encoder_free(s->enc);
    if (s->unp)
        s->k->unpacker_free(s->unp);
    for (size_t i = 0; i < s->nheld; i++)
        free(s->held[i].buf);
    free(s->held);
    free(s->in);
    if (s->out_fd >= 0)
        close(s->out_fd);
}

void pmpi__members_serve(int fd, int dir_fd, const char *codec, int level, int decode,
                         const char *in_path)
{
    server s = {.k = pm_codec_find(codec), .fd = fd, .dir_fd = dir_fd, .in_path = in_path,
                .out_fd = -1};
    if (s.k && !decode && s.k->encoder_new(level ? level : s.k->level_default,
                                           PM_CODEC_BLOCKED, &s.enc) < 0)
        s.enc = NULL;
    if (s.k && decode && s.k->unpacker_new(&s.unp) < 0)
        s.unp = NULL;
    static _Alignas(msg) unsigned char buf[sizeof(msg) + NAME_CAP];
    for (;;) {
        MPI_Status st;
        int count;
        MPI_Recv(buf, sizeof buf, MPI_BYTE, 0, TAG_REQUEST, MPI_COMM_WORLD, &st);
        MPI_Get_count(&st, MPI_BYTE, &count);
        msg q;
        memcpy(&q, buf, sizeof q);
        if (count < (int)sizeof q || q.type == MSG_END)
            break;
        if (q.type == MSG_ENCODE) {
            int64_t n = encode(&s, &q);
            MPI_Send(&n, 1, MPI_INT64_T, 0, member_tag(q.seq), MPI_COMM_WORLD);
        } else if (q.type == MSG_DECODE) {
            int64_t r[3];
            decode_chunk(&s, &q, r);
            MPI_Send(r, 3, MPI_INT64_T, 0, member_tag(q.seq), MPI_COMM_WORLD);
        } else if (q.type == MSG_DROP) {
            drop(&s, &q);
        } else if (q.type == MSG_WRITE) {
            char *name = count > (int)sizeof q ? (char *)buf + sizeof q : NULL;
            if (name)
                buf[count - 1] = '\0';
            write_member(&s, &q, name);
        } else if (q.type == MSG_SYNC) {
            sync_output(&s, &q);
        }
    }
    server_free(&s);
}
