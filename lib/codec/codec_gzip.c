/* codec_gzip.c - the gzip codec (pmap/codec.h) on pmap/gz.h.
 *
 * Compression: an encoder is a pm_gz_deflater and its level (the header's
 * XFL depends on it). Blocked output is pmap's blocked format
 * (docs/format.md): each chunk a whole member with the "PM" subfield, its
 * sizes filled in once known, one complete deflate stream (the deflater's
 * PM_GZ_INDEPENDENT engines per level, levels 1-12). Chained output is
 * pigz's scheme: one member, each chunk raw deflate with the 32 KiB before
 * it as a preset dictionary, CRC-32s combined (levels 1-9).
 *
 * Decompression: whole blocked members go to pm_gz_member_decode (ISA-L's
 * stateless inflate; exact sizes, CRC-32 and ISIZE checked; one decoder
 * per worker); the streaming decoder is pm_gz_inflater. Headers are read with
 * pm_gz_parse_header(): the member splitter (pm_gz_blocked_member) and the
 * stored name for -N.
 *
 * Names: gzip 1.12's suffixes, ".tgz" and ".taz" decompressing to ".tar".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <pmap/codec.h>
#include <pmap/gz.h>

#define KiB 1024

/* ---- compression ---- */

/* Chained: pigz uses 128 KiB. From level 4 up (zlib's lazy matcher)
 * 256 KiB is measurably faster (half the dictionary set-ups) and a little
 * smaller; at levels 1-3 (the fast matcher, which skips hashing inside long
 * matches) the fully hashed dictionary of each chunk helps the ratio, and
 * 256 KiB comes out about 0.2% larger than pigz: keep 128 KiB.
 * Blocked: input bytes per member. Larger members come out a little
 * smaller (libdeflate -6 and -7 on English-like text: 0.25% at 2 MiB) but
 * decompress slower within the same memory: the parallel reader's chunk
 * must hold whole members and its output buffer their output, and at 2 MiB
 * it lost a fifth of its speed at the same memory (bench/bench_codec).
 * Figures in BENCHMARKS.md. */
static size_t gzip_chunk_size(int level, unsigned flags)
{
    if (flags & PM_CODEC_BLOCKED)
        return 1024 * KiB;
    return level <= 3 ? 128 * KiB : 256 * KiB;
}

#define HEADER_ROOM (4096 + 64)     /* any header with a name of up to 4 KiB */

static size_t gzip_bound(size_t len)
{
    return pm_gz_block_bound(len) + HEADER_ROOM + PM_GZ_TRAILER_SIZE;
}

typedef struct gzip_encoder {
    pm_gz_deflater *d;
    int level;                  /* for the header's XFL */
} gzip_encoder;

static int gzip_encoder_new(int level, unsigned flags, void **enc_ret)
{
    if (!enc_ret || (flags & ~PM_CODEC_BLOCKED))
        return -EINVAL;
    *enc_ret = NULL;
    gzip_encoder *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    e->level = level;
    int rc = pm_gz_deflater_new_ex(level, flags & PM_CODEC_BLOCKED ? PM_GZ_INDEPENDENT : 0,
                                   &e->d);
    if (rc < 0) {
        free(e);
        return rc;
    }
    *enc_ret = e;
    return 0;
}

static void gzip_encoder_free(void *enc)
{
    gzip_encoder *e = enc;
    if (e)
        pm_gz_deflater_free(e->d);
    free(e);
}

/* The member header with meta (NULL: none) at out; its size, or
 * -ENAMETOOLONG when it does not fit in cap with the trailer after it. */
static ssize_t header(const gzip_encoder *e, const pm_codec_meta *meta, int blocked,
                      unsigned char *out, size_t cap)
{
    pm_gz_header h = {.level = e->level, .blocked = blocked};
    if (meta) {
        h.name = meta->name;
        h.mtime = meta->mtime;
    }
    ssize_t n = pm_gz_write_header(&h, out, cap);
    if (n < 0 || cap - (size_t)n < PM_GZ_TRAILER_SIZE)
        return -ENAMETOOLONG;
    return n;
}

/* Header, one complete deflate stream, trailer, then the header's sizes. */
static ssize_t gzip_encode_member(void *enc, const pm_codec_meta *meta, const void *in,
                                  size_t len, void *out, size_t cap)
{
    gzip_encoder *e = enc;
    unsigned char *p = out;
    if (len > PM_GZ_BLOCKED_MAX)
        return -EINVAL;
    ssize_t pos = header(e, meta, 1, p, cap);
    if (pos < 0)
        return pos;
    ssize_t n = pm_gz_deflate_block(e->d, NULL, 0, in, len, 1, p + pos,
                                    cap - (size_t)pos - PM_GZ_TRAILER_SIZE);
    if (n < 0)
        return n;
    size_t size = (size_t)pos + (size_t)n;
    pm_gz_write_trailer(pm_crc32(0, in, len), len, p + size);
    size += PM_GZ_TRAILER_SIZE;
    pm_gz_set_member_sizes(p, (uint32_t)size, (uint32_t)len);
    return (ssize_t)size;
}

/* The header on the file's first block, then the block. */
static ssize_t gzip_encode_block(void *enc, const pm_codec_meta *meta, const void *dict,
                                 size_t dict_len, const void *in, size_t len, int last,
                                 void *out, size_t cap)
{
    gzip_encoder *e = enc;
    unsigned char *p = out;
    ssize_t pos = 0;
    if (cap < PM_GZ_TRAILER_SIZE)
        return -ENOSPC;
    if (meta && (pos = header(e, meta, 0, p, cap)) < 0)
        return pos;
    ssize_t n = pm_gz_deflate_block(e->d, dict, dict_len, in, len, last, p + pos,
                                    cap - (size_t)pos - PM_GZ_TRAILER_SIZE);
    return n < 0 ? n : pos + n;
}

static uint64_t gzip_check(uint64_t check, const void *buf, size_t len)
{
    return pm_crc32((uint32_t)check, buf, len);
}

static uint64_t gzip_check_combine(uint64_t a, uint64_t b, uint64_t len_b)
{
    return pm_crc32_combine((uint32_t)a, (uint32_t)b, len_b);
}

static void gzip_write_trailer(uint64_t check, uint64_t length, void *out)
{
    pm_gz_write_trailer((uint32_t)check, length, out);
}

/* ---- whole members ---- */

static int gzip_member_at(const void *p, size_t avail, uint64_t *member_size,
                          uint64_t *data_size)
{
    uint32_t ms, us;
    if (!pm_gz_blocked_member(p, avail, &ms, &us))
        return 0;
    *member_size = ms;
    *data_size = us;
    return 1;
}

static int gzip_unpacker_new(void **u_ret)
{
    return pm_gz_member_decoder_new((pm_gz_member_decoder **)u_ret);
}

static void gzip_unpacker_free(void *u)
{
    pm_gz_member_decoder_free(u);
}

static int gzip_unpack_member(void *u, const void *in, size_t in_len, void *out,
                              size_t out_len)
{
    return pm_gz_member_decode(u, in, in_len, out, out_len);
}

/* ---- the streaming decoder: pm_gz_inflater ---- */

_Static_assert((int)PM_CODEC_NEED_INPUT == (int)PM_GZ_NEED_INPUT &&
               (int)PM_CODEC_OUTPUT_FULL == (int)PM_GZ_OUTPUT_FULL &&
               (int)PM_CODEC_DONE == (int)PM_GZ_DONE, "pm_codec_status mirrors pm_gz_status");

static int gzip_decoder_new(void **dec_ret)
{
    return pm_gz_inflater_new((pm_gz_inflater **)dec_ret);
}

static void gzip_decoder_free(void *dec)
{
    pm_gz_inflater_free(dec);
}

static int gzip_decode(void *dec, const void *in, size_t in_len, size_t *in_used, void *out,
                       size_t out_cap, size_t *out_len, int in_eof)
{
    return pm_gz_inflate(dec, in, in_len, in_used, out, out_cap, out_len, in_eof);
}

static int gzip_skip_members(void *dec, uint64_t n, uint64_t in_bytes, uint64_t out_bytes)
{
    return pm_gz_inflater_skip_members(dec, n, in_bytes, out_bytes);
}

static void gzip_info(const void *dec, pm_codec_info *info)
{
    pm_gz_info g;
    pm_gz_inflater_info(dec, &g);
    info->members = g.members;
    info->in_bytes = g.in_bytes;
    info->out_bytes = g.out_bytes;
    info->mtime = g.mtime;
    _Static_assert(sizeof info->name == sizeof g.name, "name sizes");
    memcpy(info->name, g.name, sizeof info->name);
    info->trailing_zeros = g.trailing_zeros;
    info->trailing_garbage = g.trailing_garbage;
}

static const char *gzip_message(const void *dec)
{
    return pm_gz_inflater_message(dec);
}

/* ---- recognising data and names ---- */

#define NAME_BYTES 4096         /* a stored name must end within these */

/* Did parsing stop inside the name (the parts before it complete)? */
static int cut_in_name(const pm_gz_header_info *h)
{
    return (h->flags & PM_GZ_FNAME) && !(h->parts & PM_GZ_FNAME) && h->size >= 10 &&
           (!(h->flags & PM_GZ_FEXTRA) || (h->parts & PM_GZ_FEXTRA));
}

static int gzip_stored_name(const void *head, size_t n, char *out, size_t cap)
{
    pm_gz_header_info h;
    int st = pm_gz_parse_header(head, n, &h);
    if (st < 0 || cap == 0)
        return -EINVAL;
    if (!(h.parts & PM_GZ_FNAME))
        return st == PM_GZ_HEADER_MORE && cut_in_name(&h) && n >= NAME_BYTES ? -ENAMETOOLONG
                                                                             : -ENOENT;
    const char *name = (const char *)head + h.name_off, *base = name;
    for (size_t i = 0; i < h.name_len; i++)
        if (name[i] == '/')
            base = name + i + 1;
    size_t len = h.name_len - (size_t)(base - name);
    if (len == 0 || (len == 1 && base[0] == '.') || (len == 2 && !memcmp(base, "..", 2)))
        return -EINVAL;
    int cut = len > cap - 1;
    if (cut)
        len = cap - 1;
    memcpy(out, base, len);
    out[len] = 0;
    return cut;
}

static int gzip_sniff(const void *p, size_t n)
{
    const unsigned char *b = p;
    if (n >= 2)
        return b[0] == 0x1f && b[1] == 0x8b;
    return n == 0 || b[0] == 0x1f ? -EAGAIN : 0;
}

static const pm_codec_suffix gzip_suffixes[] = {
    {".gz", ""}, {".z", ""}, {".taz", ".tar"}, {".tgz", ".tar"},
    {"-gz", ""}, {"-z", ""}, {"_z", ""}, {NULL, NULL},
};

const pm_codec pm__codec_gzip = {
    .name = "gzip",
    .suffix = ".gz",
    .suffixes = gzip_suffixes,
    .level_min = 1,
    .level_max = PM_GZ_LEVEL_MAX,
    .level_max_chained = 9,
    .level_default = 6,
    .dict_size = PM_GZ_DICT_SIZE,
    .member_max = PM_GZ_BLOCKED_MAX,
    .trailer_size = PM_GZ_TRAILER_SIZE,
    .magic_size = 2,
    .name_bytes = NAME_BYTES,
    .chunk_size = gzip_chunk_size,
    .bound = gzip_bound,
    .encoder_new = gzip_encoder_new,
    .encoder_free = gzip_encoder_free,
    .encode_member = gzip_encode_member,
    .encode_block = gzip_encode_block,
    .check = gzip_check,
    .check_combine = gzip_check_combine,
    .write_trailer = gzip_write_trailer,
    .member_at = gzip_member_at,
    .unpacker_new = gzip_unpacker_new,
    .unpacker_free = gzip_unpacker_free,
    .unpack_member = gzip_unpack_member,
    .decoder_new = gzip_decoder_new,
    .decoder_free = gzip_decoder_free,
    .decode = gzip_decode,
    .skip_members = gzip_skip_members,
    .info = gzip_info,
    .message = gzip_message,
    .stored_name = gzip_stored_name,
    .sniff = gzip_sniff,
};
