/* gz_header.c - reading a gzip member header (RFC 1952) from a buffer:
 * pm_gz_parse_header() and, on it, pm_gz_blocked_member(), the test for a
 * member of pmap's blocked format (docs/format.md) that the parallel reader
 * uses to find members without inflating them.
 *
 * The streaming decoder (gz_inflate.c) parses headers on its own, byte by
 * byte across calls; this parser wants the bytes in one piece and reports
 * how far they go: a whole header, a prefix of one (more bytes needed), no
 * gzip at all, or a header no gzip reader takes. It judges in gzip's order
 * (magic, method, flags, then the optional parts) so that its verdict on a
 * prefix is the decoder's. Pure functions: no state, any thread.
 */
#include <errno.h>
#include <string.h>

#include <pmap/gz.h>
#include "le.h"

/* The 10 fixed bytes: magic, method and flags judged as soon as they are
 * there. */
static int fixed_part(const unsigned char *p, size_t n, pm_gz_header_info *h)
{
    if ((n >= 1 && p[0] != 0x1f) || (n >= 2 && p[1] != 0x8b))
        return PM_GZ_HEADER_NOT_GZIP;
    if (n >= 3 && p[2] != 8)
        return PM_GZ_HEADER_BAD;
    if (n >= 4) {
        h->flags = p[3];
        if (h->flags & PM_GZ_FRESERVED)
            return PM_GZ_HEADER_BAD;
    }
    if (n < 10)
        return PM_GZ_HEADER_MORE;
    h->mtime = pm__get_le32(p + 4);
    h->xfl = p[8];
    h->os = p[9];
    h->size = 10;
    return PM_GZ_HEADER_OK;
}

/* Notes the "PM" subfield when it is the whole extra field. */
static void blocked_subfield(const unsigned char *x, size_t xlen, pm_gz_header_info *h)
{
    if (xlen != 12 || x[0] != PM_GZ_BLOCKED_SI1 || x[1] != PM_GZ_BLOCKED_SI2 ||
        x[2] != 8 || x[3] != 0)
        return;
    h->blocked = 1;
    h->member_size = pm__get_le32(x + 4);
    h->data_size = pm__get_le32(x + 8);
}

static int extra_part(const unsigned char *p, size_t n, pm_gz_header_info *h)
{
    if (n - h->size < 2)
        return PM_GZ_HEADER_MORE;
    size_t xlen = (size_t)p[h->size] | (size_t)p[h->size + 1] << 8;
    if (n - h->size - 2 < xlen)
        return PM_GZ_HEADER_MORE;
    h->extra_off = h->size + 2;
    h->extra_len = xlen;
    h->size += 2 + xlen;
    h->parts |= PM_GZ_FEXTRA;
    blocked_subfield(p + h->extra_off, xlen, h);
    return PM_GZ_HEADER_OK;
}

/* FNAME or FCOMMENT (flag): bytes up to a zero byte. */
static int string_part(const unsigned char *p, size_t n, unsigned flag, pm_gz_header_info *h)
{
    const unsigned char *s = p + h->size, *nul = memchr(s, 0, n - h->size);
    if (!nul)
        return PM_GZ_HEADER_MORE;
    size_t len = (size_t)(nul - s);
    if (flag == PM_GZ_FNAME) {
        h->name_off = h->size;
        h->name_len = len;
    } else {
        h->comment_off = h->size;
        h->comment_len = len;
    }
    h->size += len + 1;
    h->parts |= flag;
    return PM_GZ_HEADER_OK;
}

/* The low 16 bits of the CRC-32 of everything before it. */
static int hcrc_part(const unsigned char *p, size_t n, pm_gz_header_info *h)
{
    if (n - h->size < 2)
        return PM_GZ_HEADER_MORE;
    h->hcrc = (uint16_t)(p[h->size] | p[h->size + 1] << 8);
    uint16_t computed = (uint16_t)pm_crc32(0, p, h->size);
    h->size += 2;
    h->parts |= PM_GZ_FHCRC;
    return h->hcrc == computed ? PM_GZ_HEADER_OK : PM_GZ_HEADER_BAD;
}

int pm_gz_parse_header(const void *buf, size_t n, pm_gz_header_info *info)
{
    if (!info || (!buf && n))
        return -EINVAL;
    memset(info, 0, sizeof *info);
    const unsigned char *p = buf;
    int rc = fixed_part(p, n, info);
    if (rc == PM_GZ_HEADER_OK && (info->flags & PM_GZ_FEXTRA))
        rc = extra_part(p, n, info);
    if (rc == PM_GZ_HEADER_OK && (info->flags & PM_GZ_FNAME))
        rc = string_part(p, n, PM_GZ_FNAME, info);
    if (rc == PM_GZ_HEADER_OK && (info->flags & PM_GZ_FCOMMENT))
        rc = string_part(p, n, PM_GZ_FCOMMENT, info);
    if (rc == PM_GZ_HEADER_OK && (info->flags & PM_GZ_FHCRC))
        rc = hcrc_part(p, n, info);
    return rc;
}

int pm_gz_blocked_member(const void *p, size_t n, uint32_t *member_size, uint32_t *data_size)
{
    pm_gz_header_info h;
    if (pm_gz_parse_header(p, n, &h) != PM_GZ_HEADER_OK || !h.blocked ||
        (h.flags & ~(PM_GZ_FEXTRA | PM_GZ_FNAME)))
        return 0;
    if (h.member_size < h.size + 2 + PM_GZ_TRAILER_SIZE || h.data_size > PM_GZ_BLOCKED_MAX)
        return 0;
    *member_size = h.member_size;
    *data_size = h.data_size;
    return 1;
}
