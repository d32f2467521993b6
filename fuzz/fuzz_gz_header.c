/* fuzz_gz_header.c - libFuzzer target for pm_gz_parse_header() and
 * pm_gz_blocked_member() (lib/codec/gz_header.c).
 *
 * Input: the bytes to parse, as they are. The parser must read nothing
 * outside them (libFuzzer's buffer is exactly their size; run under ASan),
 * and its verdict and every field must agree with the reference below: a
 * small parser written the other way round, one cursor over the bytes and
 * a bitwise CRC-32, following RFC 1952 and gzip's order of judgement
 * (magic, method as soon as byte 2 is there, flags as soon as byte 3 is,
 * then the optional parts). Also:
 *   - a whole header of s bytes parses the same from exactly s bytes, and
 *     every shorter prefix is "need more";
 *   - pm_gz_blocked_member() says yes exactly for whole headers with the
 *     "PM" subfield, no flags but FEXTRA and FNAME, and plausible sizes.
 *
 * Build: CC=clang cmake -DPM_BUILD_FUZZ=ON ...; run e.g.
 *   ./fuzz_gz_header -max_total_time=60 fuzz/corpus/fuzz_gz_header
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pmap/gz.h>

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_gz_header: %s\n", what);
        abort();
    }
}

/* ---- the reference ---- */

static uint32_t ref_crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

typedef struct cursor {
    const uint8_t *p;
    size_t n, at;
} cursor;

/* Takes k bytes: 1, or 0 when they are not all there. */
static int take(cursor *c, size_t k, size_t *off)
{
    if (c->n - c->at < k)
        return 0;
    *off = c->at;
    c->at += k;
    return 1;
}

/* A zero-terminated string: 1 with its offset and length, or 0. */
static int take_string(cursor *c, size_t *off, size_t *len)
{
    for (size_t i = c->at; i < c->n; i++)
        if (c->p[i] == 0) {
            *off = c->at;
            *len = i - c->at;
            c->at = i + 1;
            return 1;
        }
    return 0;
}

static int ref_parse(const uint8_t *p, size_t n, pm_gz_header_info *h)
{
    memset(h, 0, sizeof *h);
    if (n > 0 && p[0] != 31)
        return PM_GZ_HEADER_NOT_GZIP;
    if (n > 1 && p[1] != 139)
        return PM_GZ_HEADER_NOT_GZIP;
    if (n > 2 && p[2] != 8)
        return PM_GZ_HEADER_BAD;
    if (n > 3)
        h->flags = p[3];
    if (h->flags >= 32)
        return PM_GZ_HEADER_BAD;
    if (n < 10)
        return PM_GZ_HEADER_MORE;
    h->mtime = p[4] + 256u * (p[5] + 256u * (p[6] + 256u * p[7]));
    h->xfl = p[8];
    h->os = p[9];
    cursor c = {p, n, 10};
    h->size = 10;
    size_t off, len;
    if (h->flags & 4) {
        if (!take(&c, 2, &off))
            return PM_GZ_HEADER_MORE;
        len = p[off] + 256u * p[off + 1];
        if (!take(&c, len, &off))
            return PM_GZ_HEADER_MORE;
        h->extra_off = off;
        h->extra_len = len;
        h->parts |= 4;
        h->size = c.at;
        if (len == 12 && !memcmp(p + off, "PM\x08\x00", 4)) {
            const uint8_t *s = p + off + 4;
            h->blocked = 1;
            h->member_size = s[0] | s[1] << 8 | s[2] << 16 | (uint32_t)s[3] << 24;
            h->data_size = s[4] | s[5] << 8 | s[6] << 16 | (uint32_t)s[7] << 24;
        }
    }
    if (h->flags & 8) {
        if (!take_string(&c, &h->name_off, &h->name_len))
            return PM_GZ_HEADER_MORE;
        h->parts |= 8;
        h->size = c.at;
    }
    if (h->flags & 16) {
        if (!take_string(&c, &h->comment_off, &h->comment_len))
            return PM_GZ_HEADER_MORE;
        h->parts |= 16;
        h->size = c.at;
    }
    if (h->flags & 2) {
        size_t before = c.at;
        if (!take(&c, 2, &off))
            return PM_GZ_HEADER_MORE;
        h->hcrc = (uint16_t)(p[off] | p[off + 1] << 8);
        h->parts |= 2;
        h->size = c.at;
        if (h->hcrc != (ref_crc32(p, before) & 0xffff))
            return PM_GZ_HEADER_BAD;
    }
    return PM_GZ_HEADER_OK;
}

/* ---- the comparison ---- */

static void same(const pm_gz_header_info *a, const pm_gz_header_info *b)
{
    check(a->size == b->size, "size");
    check(a->flags == b->flags, "flags");
    check(a->parts == b->parts, "parts");
    check(a->mtime == b->mtime && a->xfl == b->xfl && a->os == b->os, "fixed fields");
    check(a->extra_off == b->extra_off && a->extra_len == b->extra_len, "extra");
    check(a->name_off == b->name_off && a->name_len == b->name_len, "name");
    check(a->comment_off == b->comment_off && a->comment_len == b->comment_len, "comment");
    check(a->hcrc == b->hcrc, "hcrc");
    check(a->blocked == b->blocked && a->member_size == b->member_size &&
          a->data_size == b->data_size, "PM subfield");
}

/* Parses p[0..n) from a buffer of exactly n bytes (so that ASan sees any
 * read past it) and compares with the reference. Returns the status. */
static int parse_and_compare(const uint8_t *p, size_t n, pm_gz_header_info *got)
{
    uint8_t *copy = malloc(n ? n : 1);
    check(copy != NULL, "malloc");
    memcpy(copy, p, n);
    int st = pm_gz_parse_header(n ? copy : NULL, n, got);
    free(copy);
    pm_gz_header_info want;
    int ref = ref_parse(p, n, &want);
    check(st == ref, "status differs from the reference");
    same(got, &want);
    check(got->size <= n, "size past the input");
    return st;
}

static void blocked_agrees(const uint8_t *p, size_t n, int st, const pm_gz_header_info *h)
{
    uint32_t ms = 0, us = 0;
    int yes = pm_gz_blocked_member(p, n, &ms, &us);
    int want = st == PM_GZ_HEADER_OK && h->blocked && !(h->flags & ~0x0cu) &&
               h->member_size >= h->size + 10 && h->data_size <= PM_GZ_BLOCKED_MAX;
    check(yes == want, "pm_gz_blocked_member verdict");
    if (yes)
        check(ms == h->member_size && us == h->data_size, "blocked sizes");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pm_gz_header_info h, again;
    int st = parse_and_compare(data, size, &h);
    blocked_agrees(data, size, st, &h);
    if (st == PM_GZ_HEADER_OK) {
        check(parse_and_compare(data, h.size, &again) == PM_GZ_HEADER_OK, "exact size");
        same(&h, &again);
        if (h.parts & PM_GZ_FNAME)
            check(data[h.name_off + h.name_len] == 0 &&
                  !memchr(data + h.name_off, 0, h.name_len), "name span");
        size_t step = h.size > 256 ? h.size / 64 : 1;
        for (size_t k = 0; k < h.size; k += step)
            check(parse_and_compare(data, k, &again) == PM_GZ_HEADER_MORE, "prefix not MORE");
    }
    return 0;
}
