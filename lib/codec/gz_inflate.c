/* gz_inflate.c - the streaming gzip decoder (pm_gz_inflater).
 *
 * Design: a state machine over the gzip file format (RFC 1952) that accepts
 * its input in pieces of any size and writes into output buffers of any
 * size. The header, trailer and the bytes between members are parsed here,
 * byte by byte where needed, so that every flag and check is ours; only the
 * raw deflate data goes through an inflate engine (inflate_engine.h: ISA-L,
 * or zlib). Per member:
 *
 *   MAGIC -> FIXED (10 bytes) -> [XLEN -> EXTRA] -> [NAME] -> [COMMENT]
 *         -> [HCRC] -> BODY (inflate, CRC-32 of the output) -> TRAILER
 *
 * and back to MAGIC for the next member. What follows the last member is
 * treated as gzip 1.12 treats it: a new member if it starts with the magic
 * 1f 8b (then any error in it is an error); zero bytes up to the end are
 * ignored (ZEROS); anything else of two bytes or more is ignored with a
 * warning (GARBAGE); a single non-zero byte is a truncation. An empty input
 * or a first member without the magic is an error.
 *
 * Every state handler consumes what it can and returns STEP (state changed
 * or made progress, go on), WAIT (needs more input) or OUT_FULL (needs
 * output room), or a negative errno after setting the message. Errors are
 * sticky until pm_gz_inflater_reset(). One decoder belongs to one thread.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pmap/config.h>
#include <pmap/gz.h>
#include "inflate_engine.h"
#include "le.h"

enum {
    FTEXT = 0x01, FHCRC = 0x02, FEXTRA = 0x04, FNAME = 0x08, FCOMMENT = 0x10,
    FRESERVED = 0xe0,
};

typedef enum gz_state {
    ST_MAGIC, ST_FIXED, ST_XLEN, ST_EXTRA, ST_NAME, ST_COMMENT, ST_HCRC,
    ST_BODY, ST_TRAILER, ST_ZEROS, ST_GARBAGE, ST_DONE, ST_ERROR,
} gz_state;

enum { WAIT = 0, STEP = 1, OUT_FULL = 2 };

struct pm_gz_inflater {
    const pm__inflate_engine *eng;  /* raw inflate, reset per member */
    void *es;                   /* its state */
    gz_state state;
    int err;                    /* sticky error (ST_ERROR) */
    unsigned char buf[10];      /* fixed header, XLEN, HCRC or trailer */
    size_t have;                /* bytes collected in buf */
    unsigned flags;             /* FLG of the current member */
    uint32_t hcrc;              /* CRC-32 of the current header so far */
    size_t extra_left;          /* FEXTRA bytes still to skip */
    uint32_t crc;               /* CRC-32 of the current member's output */
    uint64_t member_out;        /* output bytes of the current member */
    size_t name_len;            /* bytes of info.name filled */
    pm_gz_info info;
    char msg[256];
};

/* The caller's buffers during one pm_gz_inflate() call. */
typedef struct gz_io {
    const unsigned char *in;
    size_t in_left;
    unsigned char *out;
    size_t out_left;
} gz_io;

__attribute__((format(printf, 3, 4)))
static int fail(pm_gz_inflater *z, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(z->msg, sizeof z->msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof z->msg)
        snprintf(z->msg + n, sizeof z->msg - (size_t)n,
                 " (member %llu, at byte %llu)",
                 (unsigned long long)z->info.members + 1,
                 (unsigned long long)z->info.in_bytes);
    z->state = ST_ERROR;
    z->err = err;
    return err;
}

static void consume(pm_gz_inflater *z, gz_io *io, size_t n)
{
    io->in += n;
    io->in_left -= n;
    z->info.in_bytes += n;
}

/* Collects up to `need` bytes into z->buf; 1 when complete. */
static int collect(pm_gz_inflater *z, gz_io *io, size_t need)
{
    size_t n = need - z->have;
    if (n > io->in_left)
        n = io->in_left;
    if (n == 0)
        return z->have == need;
    memcpy(z->buf + z->have, io->in, n);
    z->have += n;
    consume(z, io, n);
    return z->have == need;
}

/* Header bytes count towards the FHCRC check. */
static void header_bytes(pm_gz_inflater *z, const void *p, size_t n)
{
    z->hcrc = pm_crc32(z->hcrc, p, n);
}

/* Moves to the first optional header part after `from` that the flags ask
 * for, or to the body. */
static int next_part(pm_gz_inflater *z, gz_state from)
{
    z->have = 0;
    if (from < ST_XLEN && (z->flags & FEXTRA))
        z->state = ST_XLEN;
    else if (from < ST_NAME && (z->flags & FNAME))
        z->state = ST_NAME;
    else if (from < ST_COMMENT && (z->flags & FCOMMENT))
        z->state = ST_COMMENT;
    else if (from < ST_HCRC && (z->flags & FHCRC))
        z->state = ST_HCRC;
    else {
        z->eng->reset(z->es);
        z->crc = 0;
        z->member_out = 0;
        z->state = ST_BODY;
    }
    return STEP;
}

/* Start of a member or of what follows the last one: the magic bytes. */
static int do_magic(pm_gz_inflater *z, gz_io *io)
{
    if (!collect(z, io, z->have + 1))
        return WAIT;
    int first = z->info.members == 0;
    if (z->have == 1) {
        if (first && z->buf[0] != 0x1f)
            return fail(z, -EBADMSG, "not in gzip format");
        if (!first && z->buf[0] == 0) {
            z->state = ST_ZEROS;
            return STEP;
        }
        return STEP;            /* come back for the second byte */
    }
    if (z->buf[0] == 0x1f && z->buf[1] == 0x8b) {
        z->state = ST_FIXED;
        return STEP;
    }
    if (first)
        return fail(z, -EBADMSG, "not in gzip format");
    z->state = ST_GARBAGE;
    return STEP;
}

/* The rest of the 10 fixed bytes; method and flags are checked as soon as
 * they arrive, as gzip does, so that a short file with a bad method is
 * reported as such. */
static int do_fixed(pm_gz_inflater *z, gz_io *io)
{
    if (z->have < 3 && !collect(z, io, 3))
        return WAIT;
    if (z->buf[2] != 8)
        return fail(z, -EBADMSG, "unknown method %u -- not supported",
                    z->buf[2]);
    if (z->have < 4 && !collect(z, io, 4))
        return WAIT;
    z->flags = z->buf[3];
    if (z->flags & FRESERVED)
        return fail(z, -EBADMSG, "has flags 0x%02x -- not supported",
                    z->flags);
    if (!collect(z, io, 10))
        return WAIT;
    if (z->info.members == 0)
        z->info.mtime = pm__get_le32(z->buf + 4);
    z->hcrc = 0;
    header_bytes(z, z->buf, 10);
    return next_part(z, ST_FIXED);
}

static int do_xlen(pm_gz_inflater *z, gz_io *io)
{
    if (!collect(z, io, 2))
        return WAIT;
    header_bytes(z, z->buf, 2);
    z->extra_left = z->buf[0] | (size_t)z->buf[1] << 8;
    z->state = ST_EXTRA;
    return STEP;
}

static int do_extra(pm_gz_inflater *z, gz_io *io)
{
    size_t n = z->extra_left < io->in_left ? z->extra_left : io->in_left;
    header_bytes(z, io->in, n);
    consume(z, io, n);
    z->extra_left -= n;
    return z->extra_left ? WAIT : next_part(z, ST_EXTRA);
}

/* FNAME or FCOMMENT: bytes up to and including a NUL. */
static int do_string(pm_gz_inflater *z, gz_io *io)
{
    if (io->in_left == 0)
        return WAIT;
    const unsigned char *nul = memchr(io->in, 0, io->in_left);
    size_t n = nul ? (size_t)(nul - io->in) + 1 : io->in_left;
    if (z->state == ST_NAME && z->info.members == 0) {
        size_t room = sizeof z->info.name - 1 - z->name_len;
        size_t text = nul ? n - 1 : n;
        size_t k = text < room ? text : room;
        memcpy(z->info.name + z->name_len, io->in, k);
        z->name_len += k;
    }
    header_bytes(z, io->in, n);
    consume(z, io, n);
    return nul ? next_part(z, z->state) : WAIT;
}

static int do_hcrc(pm_gz_inflater *z, gz_io *io)
{
    if (!collect(z, io, 2))
        return WAIT;
    unsigned stored = z->buf[0] | (unsigned)z->buf[1] << 8;
    unsigned computed = z->hcrc & 0xffff;
    if (stored != computed)
        return fail(z, -EBADMSG, "header crc16 error (stored %04x, "
                    "computed %04x)", stored, computed);
    return next_part(z, ST_HCRC);
}

static int do_body(pm_gz_inflater *z, gz_io *io)
{
    if (io->out_left == 0)
        return OUT_FULL;
    pm__inflate_result r;
    int rc = z->eng->run(z->es, io->in, io->in_left, io->out, io->out_left, &r);
    consume(z, io, r.used);
    z->crc = pm_crc32(z->crc, io->out, r.made);
    io->out += r.made;
    io->out_left -= r.made;
    z->member_out += r.made;
    z->info.out_bytes += r.made;
    if (rc == -ENOMEM)
        return fail(z, -ENOMEM, "out of memory");
    if (rc < 0)
        return fail(z, -EBADMSG, "invalid compressed data (%s)", r.msg);
    if (r.end) {
        /* The trailer's first bytes, when the engine had read them already
         * in an earlier call (already counted as consumed). */
        memcpy(z->buf, r.back, r.back_len);
        z->have = r.back_len;
        z->state = ST_TRAILER;
        return STEP;
    }
    if (io->out_left == 0)
        return OUT_FULL;
    if (io->in_left == 0)
        return WAIT;
    if (r.used || r.made)
        return STEP;
    return fail(z, -EIO, "inflate made no progress");
}

static int do_trailer(pm_gz_inflater *z, gz_io *io)
{
    if (!collect(z, io, 8))
        return WAIT;
    uint32_t crc = pm__get_le32(z->buf), len = pm__get_le32(z->buf + 4);
    if (crc != z->crc)
        return fail(z, -EBADMSG, "crc error (stored %08x, computed %08x)",
                    crc, z->crc);
    if (len != (uint32_t)z->member_out)
        return fail(z, -EBADMSG, "length error (stored %u, computed %u)",
                    len, (uint32_t)z->member_out);
    z->info.members++;
    z->have = 0;
    z->state = ST_MAGIC;
    return STEP;
}

/* After the last member: zeros up to the end, or anything at all. */
static int do_trailing(pm_gz_inflater *z, gz_io *io)
{
    if (z->state == ST_ZEROS && io->in_left) {
        size_t i = 0;
        while (i < io->in_left && io->in[i] == 0)
            i++;
        if (i < io->in_left)
            z->state = ST_GARBAGE;
    }
    consume(z, io, io->in_left);
    return WAIT;
}

static int step(pm_gz_inflater *z, gz_io *io)
{
    switch (z->state) {
    case ST_MAGIC:   return do_magic(z, io);
    case ST_FIXED:   return do_fixed(z, io);
    case ST_XLEN:    return do_xlen(z, io);
    case ST_EXTRA:   return do_extra(z, io);
    case ST_NAME:
    case ST_COMMENT: return do_string(z, io);
    case ST_HCRC:    return do_hcrc(z, io);
    case ST_BODY:    return do_body(z, io);
    case ST_TRAILER: return do_trailer(z, io);
    case ST_ZEROS:
    case ST_GARBAGE: return do_trailing(z, io);
    default:         return -EINVAL;
    }
}

/* No more input: the file is complete or truncated. */
static int finish(pm_gz_inflater *z)
{
    int ok = (z->state == ST_MAGIC && z->have == 0 && z->info.members > 0) ||
             z->state == ST_ZEROS || z->state == ST_GARBAGE;
    if (!ok)
        return fail(z, -ENODATA, "unexpected end of file");
    if (z->state == ST_ZEROS) {
        z->info.trailing_zeros = 1;
        snprintf(z->msg, sizeof z->msg,
                 "decompression OK, trailing zero bytes ignored");
    } else if (z->state == ST_GARBAGE) {
        z->info.trailing_garbage = 1;
        snprintf(z->msg, sizeof z->msg,
                 "decompression OK, trailing garbage ignored");
    }
    z->state = ST_DONE;
    return PM_GZ_DONE;
}

int pm_gz_inflate(pm_gz_inflater *z, const void *in, size_t in_len,
                  size_t *in_used, void *out, size_t out_cap,
                  size_t *out_len, int in_eof)
{
    if (in_used)
        *in_used = 0;
    if (out_len)
        *out_len = 0;
    if (!z || !in_used || !out_len || (in_len && !in) || (out_cap && !out))
        return -EINVAL;
    if (z->state == ST_ERROR)
        return z->err;
    if (z->state == ST_DONE)
        return in_len ? -EINVAL : PM_GZ_DONE;
    gz_io io = {in, in_len, out, out_cap};
    int rc;
    do
        rc = step(z, &io);
    while (rc == STEP);
    *in_used = in_len - io.in_left;
    *out_len = out_cap - io.out_left;
    if (rc < 0)
        return rc;
    if (rc == OUT_FULL)
        return PM_GZ_OUTPUT_FULL;
    return in_eof ? finish(z) : PM_GZ_NEED_INPUT;
}

int pm_gz_inflater_new(pm_gz_inflater **z_ret)
{
    if (!z_ret)
        return -EINVAL;
    *z_ret = NULL;
    pm_gz_inflater *z = calloc(1, sizeof *z);
    if (!z)
        return -ENOMEM;
    z->eng = pm__inflate_engine_find(NULL);
    int rc = z->eng ? z->eng->new(&z->es) : -EINVAL;
    if (rc < 0) {
        free(z);
        return rc;
    }
    *z_ret = z;
    return 0;
}

void pm_gz_inflater_free(pm_gz_inflater *z)
{
    if (!z)
        return;
    z->eng->free(z->es);
    free(z);
}

void pm_gz_inflater_reset(pm_gz_inflater *z)
{
    if (!z)
        return;
    const pm__inflate_engine *eng = z->eng;     /* keep the engine's allocation */
    void *es = z->es;
    memset(z, 0, sizeof *z);
    z->eng = eng;
    z->es = es;
    eng->reset(es);
}

const char *pm_gz_inflater_message(const pm_gz_inflater *z)
{
    return z ? z->msg : "";
}

int pm_gz_inflater_skip_members(pm_gz_inflater *z, uint64_t n, uint64_t in_bytes,
                                uint64_t out_bytes)
{
    if (!z || z->state != ST_MAGIC || z->have != 0)
        return -EINVAL;
    z->info.members += n;
    z->info.in_bytes += in_bytes;
    z->info.out_bytes += out_bytes;
    return 0;
}

void pm_gz_inflater_info(const pm_gz_inflater *z, pm_gz_info *info)
{
    if (z && info)
        *info = z->info;
}

/* ---- the engines ---- */

const pm__inflate_engine *pm__inflate_engine_find(const char *name)
{
    static const pm__inflate_engine *const engines[] = {&pm__inflate_isal, &pm__inflate_zlib};
    if (!name)
        name = pm_config_inflate_engine();
    if (!name)
        return engines[0];
    for (size_t i = 0; i < sizeof engines / sizeof *engines; i++)
        if (strcmp(engines[i]->name, name) == 0)
            return engines[i];
    return NULL;
}
