/* gz_member.c - one whole gzip member inflated in one call, for readers
 * that know where members start and end (pmap's blocked format).
 *
 * ISA-L's stateless inflate decodes the member's deflate data straight into
 * the caller's buffer and computes its CRC-32 (1.0-1.15 times libdeflate's
 * speed here, bench/bench_codec). Nothing is trusted: the header is parsed
 * here (any flags), the deflate stream must end exactly where the trailer
 * begins, the output must be exactly the size the caller expects, and the
 * trailer's CRC-32 and ISIZE must match. ISA-L reads input ahead in 64-bit
 * words; depending on its version the bytes read past the stream's end are
 * left in its bit buffer or given back through avail_in, so both are
 * counted.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/igzip_lib.h>

#include <pmap/gz.h>

struct pm_gz_member_decoder {
    struct inflate_state s;
};

int pm_gz_member_decoder_new(pm_gz_member_decoder **d_ret)
{
    if (!d_ret)
        return -EINVAL;
    *d_ret = malloc(sizeof **d_ret);
    return *d_ret ? 0 : -ENOMEM;
}

void pm_gz_member_decoder_free(pm_gz_member_decoder *d)
{
    free(d);
}

static uint32_t le32(const unsigned char *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The length of the member header at p[0..n), or 0 if it is not a
 * complete, valid one. */
static size_t header_length(const unsigned char *p, size_t n)
{
    if (n < 10 || p[0] != 0x1f || p[1] != 0x8b || p[2] != 8 || (p[3] & 0xe0))
        return 0;
    size_t pos = 10;
    if (p[3] & 0x04) {                          /* FEXTRA */
        if (n - pos < 2)
            return 0;
        size_t xlen = p[pos] | (size_t)p[pos + 1] << 8;
        if (n - pos - 2 < xlen)
            return 0;
        pos += 2 + xlen;
    }
    for (unsigned flag = 0x08; flag <= 0x10; flag <<= 1) {   /* FNAME, FCOMMENT */
        if (!(p[3] & flag))
            continue;
        const unsigned char *nul = memchr(p + pos, 0, n - pos);
        if (!nul)
            return 0;
        pos = (size_t)(nul - p) + 1;
    }
    if (p[3] & 0x02) {                          /* FHCRC */
        if (n - pos < 2 || (pm_crc32(0, p, pos) & 0xffff) != (p[pos] | (unsigned)p[pos + 1] << 8))
            return 0;
        pos += 2;
    }
    return pos;
}

int pm_gz_member_decode(pm_gz_member_decoder *d, const void *in, size_t in_len, void *out,
                        size_t out_len)
{
    const unsigned char *p = in;
    if (!d || !in || (out_len && !out) || in_len > UINT32_MAX || out_len > UINT32_MAX)
        return -EINVAL;
    size_t hdr = header_length(p, in_len);
    if (hdr == 0 || in_len - hdr < PM_GZ_TRAILER_SIZE + 2)
        return -EBADMSG;
    struct inflate_state *s = &d->s;
    isal_inflate_init(s);
    s->crc_flag = ISAL_GZIP_NO_HDR;             /* raw deflate, CRC-32 of the output */
    s->next_in = (uint8_t *)p + hdr;
    s->avail_in = (uint32_t)(in_len - hdr);     /* the trailer too: room to read ahead */
    unsigned char spare;                        /* a valid pointer for an empty output */
    s->next_out = out_len ? out : &spare;
    s->avail_out = (uint32_t)out_len;
    int rc = isal_inflate_stateless(s);
    size_t left = s->avail_in + (size_t)(s->read_in_length / 8);
    if (rc != ISAL_DECOMP_OK || s->avail_out != 0 || left != PM_GZ_TRAILER_SIZE)
        return -EBADMSG;
    const unsigned char *t = p + in_len - PM_GZ_TRAILER_SIZE;
    if (le32(t) != s->crc || le32(t + 4) != (uint32_t)out_len)
        return -EBADMSG;
    return 0;
}
