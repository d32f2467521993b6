/* test_codec.c - the codec interface (pmap/codec.h) and the gzip header
 * parser under it (pm_gz_parse_header, pm_gz_blocked_member): every flag
 * combination, truncation at every length, lying "PM" subfields, FHCRC;
 * the registry; the suffix rules; the gzip codec's ops end to end (members,
 * chained blocks, the framer, the decode loop, stored names, magic). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include <pmap/codec.h>
#include <pmap/pipeline.h>
#include <pmap/gz.h>
#include "testutil.h"

/* ---- building headers by hand ---- */

typedef struct hdr {
    unsigned char b[512];
    size_t len;
} hdr;

static void add(hdr *h, const void *p, size_t n)
{
    CU_ASSERT_FATAL(h->len + n <= sizeof h->b);
    memcpy(h->b + h->len, p, n);
    h->len += n;
}

/* A header with the given flags: mtime 0x11223344, XFL 2, OS 3, a 5-byte
 * extra field, name "nm", comment "comment", and a correct FHCRC. */
static hdr make_header(unsigned flags)
{
    hdr h = {.len = 0};
    unsigned char fixed[10] = {0x1f, 0x8b, 8, (unsigned char)flags, 0x44, 0x33, 0x22, 0x11, 2, 3};
    add(&h, fixed, 10);
    if (flags & PM_GZ_FEXTRA)
        add(&h, "\x05\x00XY\x01\x00z", 7);
    if (flags & PM_GZ_FNAME)
        add(&h, "nm", 3);
    if (flags & PM_GZ_FCOMMENT)
        add(&h, "comment", 8);
    if (flags & PM_GZ_FHCRC) {
        uint32_t crc = (uint32_t)crc32(0, h.b, (uInt)h.len);
        unsigned char c[2] = {(unsigned char)crc, (unsigned char)(crc >> 8)};
        add(&h, c, 2);
    }
    return h;
}

/* ---- the header parser ---- */

static void expect_fields(const hdr *h, unsigned flags, const pm_gz_header_info *info)
{
    CU_ASSERT_EQUAL(info->size, h->len);
    CU_ASSERT_EQUAL(info->flags, flags);
    CU_ASSERT_EQUAL(info->parts, flags & (PM_GZ_FEXTRA | PM_GZ_FNAME | PM_GZ_FCOMMENT |
                                          PM_GZ_FHCRC));
    CU_ASSERT_EQUAL(info->mtime, 0x11223344u);
    CU_ASSERT(info->xfl == 2 && info->os == 3);
    size_t pos = 10;
    if (flags & PM_GZ_FEXTRA) {
        CU_ASSERT(info->extra_off == 12 && info->extra_len == 5);
        pos += 7;
    } else {
        CU_ASSERT(info->extra_off == 0 && info->extra_len == 0);
    }
    if (flags & PM_GZ_FNAME) {
        CU_ASSERT(info->name_off == pos && info->name_len == 2);
        CU_ASSERT(memcmp(h->b + info->name_off, "nm", 2) == 0);
        pos += 3;
    } else {
        CU_ASSERT(info->name_off == 0 && info->name_len == 0);
    }
    if (flags & PM_GZ_FCOMMENT) {
        CU_ASSERT(info->comment_off == pos && info->comment_len == 7);
        CU_ASSERT(memcmp(h->b + info->comment_off, "comment", 7) == 0);
    }
    if (flags & PM_GZ_FHCRC)
        CU_ASSERT_EQUAL(info->hcrc, h->b[h->len - 2] | h->b[h->len - 1] << 8);
    CU_ASSERT_EQUAL(info->blocked, 0);
}

static void test_header_flags(void)
{
    for (unsigned flags = 0; flags < 32; flags++) {
        hdr h = make_header(flags);
        pm_gz_header_info info;
        CU_ASSERT_EQUAL(pm_gz_parse_header(h.b, h.len, &info), PM_GZ_HEADER_OK);
        expect_fields(&h, flags, &info);
        /* deflate data after it changes nothing */
        hdr more = h;
        add(&more, "\x03\x00\xff\xff", 4);
        CU_ASSERT_EQUAL(pm_gz_parse_header(more.b, more.len, &info), PM_GZ_HEADER_OK);
        expect_fields(&h, flags, &info);
    }
}

/* Every proper prefix of every header needs more bytes, and what it has
 * parsed so far is consistent: complete parts only. */
static void test_header_truncated(void)
{
    for (unsigned flags = 0; flags < 32; flags++) {
        hdr h = make_header(flags);
        for (size_t n = 0; n < h.len; n++) {
            unsigned char *cut = malloc(n ? n : 1);     /* exact size: ASan sees overreads */
            CU_ASSERT_FATAL(cut != NULL);
            memcpy(cut, h.b, n);
            pm_gz_header_info info;
            CU_ASSERT_EQUAL(pm_gz_parse_header(cut, n, &info), PM_GZ_HEADER_MORE);
            CU_ASSERT(info.size <= n);
            CU_ASSERT_EQUAL(info.flags, n >= 4 ? flags : 0);
            if (n < 10)
                CU_ASSERT(info.size == 0 && info.parts == 0);
            CU_ASSERT((info.parts & ~flags) == 0);
            if (flags & 0x1e)                       /* not every optional part */
                CU_ASSERT(info.parts != (flags & 0x1e));
            free(cut);
        }
    }
    pm_gz_header_info info;
    CU_ASSERT_EQUAL(pm_gz_parse_header(NULL, 0, &info), PM_GZ_HEADER_MORE);
}

static void test_header_not_gzip(void)
{
    pm_gz_header_info info;
    CU_ASSERT_EQUAL(pm_gz_parse_header("\x1e", 1, &info), PM_GZ_HEADER_NOT_GZIP);
    CU_ASSERT_EQUAL(pm_gz_parse_header("\x1f\x8c", 2, &info), PM_GZ_HEADER_NOT_GZIP);
    CU_ASSERT_EQUAL(pm_gz_parse_header("PK\x03\x04", 4, &info), PM_GZ_HEADER_NOT_GZIP);
    CU_ASSERT_EQUAL(pm_gz_parse_header("\x1f", 1, &info), PM_GZ_HEADER_MORE);
    CU_ASSERT_EQUAL(pm_gz_parse_header("\x1f\x8b", 2, &info), PM_GZ_HEADER_MORE);
    /* method and flags are judged as soon as they are there */
    CU_ASSERT_EQUAL(pm_gz_parse_header("\x1f\x8b\x07", 3, &info), PM_GZ_HEADER_BAD);
    CU_ASSERT_EQUAL(pm_gz_parse_header("\x1f\x8b\x08", 3, &info), PM_GZ_HEADER_MORE);
    for (unsigned bit = 0x20; bit <= 0x80; bit <<= 1) {
        hdr h = make_header(0);
        h.b[3] = (unsigned char)bit;
        CU_ASSERT_EQUAL(pm_gz_parse_header(h.b, 4, &info), PM_GZ_HEADER_BAD);
        CU_ASSERT_EQUAL(pm_gz_parse_header(h.b, h.len, &info), PM_GZ_HEADER_BAD);
    }
    CU_ASSERT_EQUAL(pm_gz_parse_header(NULL, 3, &info), -EINVAL);
    CU_ASSERT_EQUAL(pm_gz_parse_header("\x1f\x8b", 2, NULL), -EINVAL);
}

static void test_header_hcrc(void)
{
    hdr h = make_header(PM_GZ_FHCRC | PM_GZ_FNAME);
    pm_gz_header_info info;
    CU_ASSERT_EQUAL(pm_gz_parse_header(h.b, h.len, &info), PM_GZ_HEADER_OK);
    h.b[h.len - 1] ^= 0x40;                         /* the stored CRC is wrong */
    CU_ASSERT_EQUAL(pm_gz_parse_header(h.b, h.len, &info), PM_GZ_HEADER_BAD);
    CU_ASSERT(info.parts & PM_GZ_FHCRC);
    CU_ASSERT(info.parts & PM_GZ_FNAME);            /* the name before it is still read */
    h.b[h.len - 1] ^= 0x40;
    h.b[10] ^= 1;                                   /* a covered byte is wrong */
    CU_ASSERT_EQUAL(pm_gz_parse_header(h.b, h.len, &info), PM_GZ_HEADER_BAD);
    h.b[10] ^= 1;
    CU_ASSERT_EQUAL(pm_gz_parse_header(h.b, h.len - 1, &info), PM_GZ_HEADER_MORE);
    CU_ASSERT_EQUAL(info.parts, PM_GZ_FNAME);
}

/* A blocked member header as pm_gz_write_header writes it, sizes set. */
static hdr blocked_header(const char *name, uint32_t msize, uint32_t usize)
{
    hdr h = {.len = 0};
    pm_gz_header g = {.name = name, .level = 6, .blocked = 1};
    ssize_t n = pm_gz_write_header(&g, h.b, sizeof h.b);
    CU_ASSERT_FATAL(n > 0);
    h.len = (size_t)n;
    pm_gz_set_member_sizes(h.b, msize, usize);
    return h;
}

static void test_header_blocked(void)
{
    hdr h = blocked_header(NULL, 1000, 5000);
    pm_gz_header_info info;
    CU_ASSERT_EQUAL(pm_gz_parse_header(h.b, h.len, &info), PM_GZ_HEADER_OK);
    CU_ASSERT(info.blocked && info.member_size == 1000 && info.data_size == 5000);
    CU_ASSERT(info.size == 24 && info.extra_off == 12 && info.extra_len == 12);
    uint32_t ms = 0, us = 0;
    CU_ASSERT_EQUAL(pm_gz_blocked_member(h.b, h.len, &ms, &us), 1);
    CU_ASSERT(ms == 1000 && us == 5000);
    for (size_t n = 0; n < h.len; n++)              /* truncated: no member */
        CU_ASSERT_EQUAL(pm_gz_blocked_member(h.b, n, &ms, &us), 0);

    hdr named = blocked_header("dir/file.txt", 1000, 5000);
    CU_ASSERT_EQUAL(pm_gz_parse_header(named.b, named.len, &info), PM_GZ_HEADER_OK);
    CU_ASSERT(info.blocked && info.name_len == 8);
    CU_ASSERT_EQUAL(pm_gz_blocked_member(named.b, named.len, &ms, &us), 1);
    CU_ASSERT_EQUAL(pm_gz_blocked_member(named.b, named.len - 1, &ms, &us), 0);
}

/* Sizes and layouts that lie are not members. */
static void test_header_blocked_lies(void)
{
    uint32_t ms, us;
    hdr small = blocked_header(NULL, 24 + 9, 0);    /* shorter than header + 10 */
    CU_ASSERT_EQUAL(pm_gz_blocked_member(small.b, small.len, &ms, &us), 0);
    hdr edge = blocked_header(NULL, 24 + 10, 0);
    CU_ASSERT_EQUAL(pm_gz_blocked_member(edge.b, edge.len, &ms, &us), 1);
    hdr named = blocked_header("abc", 24 + 10, 0);  /* its name makes it longer */
    CU_ASSERT_EQUAL(pm_gz_blocked_member(named.b, named.len, &ms, &us), 0);
    hdr huge = blocked_header(NULL, 100, (uint32_t)PM_GZ_BLOCKED_MAX + 1);
    CU_ASSERT_EQUAL(pm_gz_blocked_member(huge.b, huge.len, &ms, &us), 0);
    hdr max = blocked_header(NULL, 100, (uint32_t)PM_GZ_BLOCKED_MAX);
    CU_ASSERT_EQUAL(pm_gz_blocked_member(max.b, max.len, &ms, &us), 1);

    hdr h = blocked_header(NULL, 100, 10);
    h.b[12] = 'B';                                  /* "BM": another subfield */
    pm_gz_header_info info;
    CU_ASSERT_EQUAL(pm_gz_parse_header(h.b, h.len, &info), PM_GZ_HEADER_OK);
    CU_ASSERT_EQUAL(info.blocked, 0);
    CU_ASSERT_EQUAL(pm_gz_blocked_member(h.b, h.len, &ms, &us), 0);
    h = blocked_header(NULL, 100, 10);
    h.b[14] = 9;                                    /* LEN 9 in XLEN 12 */
    CU_ASSERT_EQUAL(pm_gz_blocked_member(h.b, h.len, &ms, &us), 0);
    h = blocked_header(NULL, 100, 10);
    h.b[10] = 13;                                   /* XLEN 13: not only "PM" */
    add(&h, "\x00", 1);
    CU_ASSERT_EQUAL(pm_gz_parse_header(h.b, h.len, &info), PM_GZ_HEADER_OK);
    CU_ASSERT_EQUAL(info.blocked, 0);
    h = blocked_header(NULL, 100, 10);
    h.b[3] |= PM_GZ_FTEXT;                          /* a flag the format has not */
    CU_ASSERT_EQUAL(pm_gz_parse_header(h.b, h.len, &info), PM_GZ_HEADER_OK);
    CU_ASSERT_EQUAL(info.blocked, 1);
    CU_ASSERT_EQUAL(pm_gz_blocked_member(h.b, h.len, &ms, &us), 0);
}

/* ---- the registry and names ---- */

static void test_registry(void)
{
    const pm_codec *gz = pm_codec_find("gzip");
    CU_ASSERT_FATAL(gz != NULL);
    CU_ASSERT_PTR_EQUAL(pm_codec_find(NULL), gz);
    CU_ASSERT_STRING_EQUAL(gz->name, "gzip");
    CU_ASSERT_STRING_EQUAL(gz->suffix, ".gz");
    CU_ASSERT(gz->level_min == 1 && gz->level_max == PM_GZ_LEVEL_MAX &&
              gz->level_max_chained == 9 && gz->level_default == 6);
    CU_ASSERT(gz->magic_size <= PM_CODEC_MAGIC_MAX);
    CU_ASSERT_PTR_NULL(pm_codec_find("zstd"));
    CU_ASSERT_PTR_NULL(pm_codec_find(""));
    CU_ASSERT_PTR_NULL(pm_codec_find("GZIP"));
    CU_ASSERT_PTR_NULL(pm_codec_find("gzip "));
}

static const char *dname(const char *in, const char *user)
{
    static char buf[256];
    int rc = pm_codec_decompressed_name(pm_codec_find(NULL), in, user, buf, sizeof buf);
    return rc == 0 ? buf : rc == -EINVAL ? "EINVAL" : "ERR";
}

static void test_suffixes(void)
{
    const pm_codec *gz = pm_codec_find(NULL);
    CU_ASSERT_STRING_EQUAL(dname("d/x.gz", NULL), "d/x");
    CU_ASSERT_STRING_EQUAL(dname("UP.GZ", NULL), "UP");
    CU_ASSERT_STRING_EQUAL(dname("x.tgz", NULL), "x.tar");
    CU_ASSERT_STRING_EQUAL(dname("x.TAZ", NULL), "x.tar");
    CU_ASSERT_STRING_EQUAL(dname("x-gz", NULL), "x");
    CU_ASSERT_STRING_EQUAL(dname("x_z", NULL), "x");
    CU_ASSERT_STRING_EQUAL(dname("x.txt", NULL), "EINVAL");
    CU_ASSERT_STRING_EQUAL(dname(".gz", NULL), "EINVAL");
    CU_ASSERT_STRING_EQUAL(dname("d.gz/.gz", NULL), "EINVAL");
    CU_ASSERT_STRING_EQUAL(dname("x.foo", ".foo"), "x");
    CU_ASSERT_STRING_EQUAL(dname("x.gz", ".foo"), "x");
    CU_ASSERT_STRING_EQUAL(dname("x.gz", "z"), "x");     /* -S z: tried last */
    CU_ASSERT_STRING_EQUAL(dname("xz", "z"), "x");
    CU_ASSERT_STRING_EQUAL(dname("x.TGZ", ".tgz"), "x.tar");
    CU_ASSERT_EQUAL(pm_codec_suffix_len(gz, "a/b.Gz", NULL), 3);
    CU_ASSERT_EQUAL(pm_codec_suffix_len(gz, "a.gz/b", NULL), 0);
    CU_ASSERT_EQUAL(pm_codec_suffix_len(gz, "b.tgz", NULL), 4);
    CU_ASSERT_EQUAL(pm_codec_suffix_len(NULL, "b.gz", NULL), 0);
    char buf[16];
    CU_ASSERT_EQUAL(pm_codec_compressed_name(gz, "a/b", NULL, buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, "a/b.gz");
    CU_ASSERT_EQUAL(pm_codec_compressed_name(gz, "a", ".z", buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, "a.z");
    CU_ASSERT_EQUAL(pm_codec_compressed_name(gz, "a", "", buf, sizeof buf), -EINVAL);
    CU_ASSERT_EQUAL(pm_codec_compressed_name(gz, "abcdefghijklmn", NULL, buf, sizeof buf),
                    -ENAMETOOLONG);
    CU_ASSERT_EQUAL(pm_codec_decompressed_name(gz, "abcdefghijklmnopq.gz", NULL, buf,
                                               sizeof buf), -ENAMETOOLONG);
}

/* ---- the gzip codec's ops ---- */

typedef struct blob {
    unsigned char *p;
    size_t len;
} blob;

/* A blocked file of `pieces` members from data, member 0 with meta. */
static blob encode_blocked(const pm_codec *k, const unsigned char *data, size_t len,
                           size_t piece, const pm_codec_meta *meta)
{
    void *enc;
    CU_ASSERT_FATAL(k->encoder_new(6, PM_CODEC_BLOCKED, &enc) == 0);
    size_t cap = k->bound(piece) * (len / piece + 1);
    blob b = {malloc(cap), 0};
    CU_ASSERT_FATAL(b.p != NULL);
    size_t off = 0;
    do {
        size_t n = len - off < piece ? len - off : piece;
        ssize_t m = k->encode_member(enc, off == 0 ? meta : NULL, data + off, n, b.p + b.len,
                                     k->bound(n));
        CU_ASSERT_FATAL(m > 0);
        b.len += (size_t)m;
        off += n;
    } while (off < len);
    k->encoder_free(enc);
    return b;
}

/* The streaming decoder over the whole of in: 0 and the output, or the error. */
static int stream_decode(const pm_codec *k, const blob *in, unsigned char *out, size_t cap,
                         size_t *out_len, pm_codec_info *info)
{
    void *dec;
    CU_ASSERT_FATAL(k->decoder_new(&dec) == 0);
    size_t used = 0;
    int rc = k->decode(dec, in->p, in->len, &used, out, cap, out_len, 1);
    if (info)
        k->info(dec, info);
    k->decoder_free(dec);
    return rc == PM_CODEC_DONE ? 0 : rc < 0 ? rc : -EIO;
}

static void test_codec_members(void)
{
    const pm_codec *k = pm_codec_find("gzip");
    size_t len = 100000;
    unsigned char *data = malloc(len), *out = malloc(len + 16);
    CU_ASSERT_FATAL(data && out);
    pm_test_fill_text(data, len, 7);
    pm_codec_meta meta = {.name = "some/dir/file.txt", .mtime = 1700000000};
    blob b = encode_blocked(k, data, len, 30000, &meta);

    size_t got = 0;
    pm_codec_info info;
    CU_ASSERT_EQUAL(stream_decode(k, &b, out, len + 16, &got, &info), 0);
    CU_ASSERT(got == len && memcmp(out, data, len) == 0);
    CU_ASSERT(info.members == 4 && info.mtime == 1700000000);
    CU_ASSERT_STRING_EQUAL(info.name, "file.txt");

    /* the splitter finds all four, with true sizes */
    uint64_t ms, us;
    size_t pos = 0, n = 0, total = 0;
    while (pos < b.len && k->member_at(b.p + pos, b.len - pos, &ms, &us)) {
        pos += ms;
        total += us;
        n++;
    }
    CU_ASSERT(n == 4 && pos == b.len && total == len);

    /* the decode loop takes whole members that fit */
    void *u;
    CU_ASSERT_FATAL(k->unpacker_new(&u) == 0);
    size_t in_used, out_used;
    memset(out, 0, len);
    CU_ASSERT_EQUAL(pm_codec_unpack_members(k, u, b.p, b.len, out, len, &in_used, &out_used), 4);
    CU_ASSERT(in_used == b.len && out_used == len && memcmp(out, data, len) == 0);
    CU_ASSERT_EQUAL(pm_codec_unpack_members(k, u, b.p, b.len, out, 65000, &in_used, &out_used),
                    2);                                 /* room for two */
    CU_ASSERT(out_used == 60000);
    CU_ASSERT_EQUAL(pm_codec_unpack_members(k, u, b.p, b.len - 1, out, len, &in_used,
                                            &out_used), 3);     /* the last is cut */

    /* a member whose stated data size lies is not taken */
    k->member_at(b.p, b.len, &ms, &us);
    CU_ASSERT_EQUAL(k->unpack_member(u, b.p, ms, out, us), 0);
    CU_ASSERT_EQUAL(k->unpack_member(u, b.p, ms, out, us - 1), -EBADMSG);
    CU_ASSERT_EQUAL(k->unpack_member(u, b.p, ms, out, us + 1), -EBADMSG);
    CU_ASSERT_EQUAL(k->unpack_member(u, b.p, ms - 1, out, us), -EBADMSG);
    pm_gz_set_member_sizes(b.p, (uint32_t)ms, (uint32_t)us + 1);
    CU_ASSERT_EQUAL(pm_codec_unpack_members(k, u, b.p, b.len, out, len, &in_used, &out_used), 0);
    CU_ASSERT(in_used == 0 && out_used == 0);
    pm_gz_set_member_sizes(b.p, (uint32_t)ms + 1, (uint32_t)us);      /* MSIZE lies */
    CU_ASSERT_EQUAL(pm_codec_unpack_members(k, u, b.p, b.len, out, len, &in_used, &out_used), 0);
    k->unpacker_free(u);
    k->unpacker_free(NULL);
    free(b.p);
    free(data);
    free(out);
}

static void test_codec_framer(void)
{
    const pm_codec *k = pm_codec_find("gzip");
    size_t len = 40000;
    unsigned char *data = malloc(len);
    CU_ASSERT_FATAL(data != NULL);
    pm_test_fill_random(data, len, 3);                  /* members of ~10 KiB */
    blob b = encode_blocked(k, data, len, 10000, NULL);
    uint64_t ms[4], us;
    size_t ends[4], pos = 0;
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_FATAL(k->member_at(b.p + pos, b.len - pos, &ms[i], &us));
        pos += ms[i];
        ends[i] = pos;
    }
    /* a big chunk bound: the cut is the last member end in the budget */
    CU_ASSERT_EQUAL(pm_codec_frame_members(k, b.p, b.len, 1 << 20, 1 << 20), b.len);
    CU_ASSERT_EQUAL(pm_codec_frame_members(k, b.p, b.len, 1 << 20, 25000), ends[1]);
    CU_ASSERT_EQUAL(pm_codec_frame_members(k, b.p, b.len, 1 << 20, 0), ends[0]);
    /* a small chunk bound: cut later than the budget, to leave at most a chunk */
    CU_ASSERT_EQUAL(pm_codec_frame_members(k, b.p, ends[2] + 100, 200, 0), ends[2]);
    CU_ASSERT_EQUAL(pm_codec_frame_members(k, b.p, b.len, b.len - ends[1], 0), b.len);
    /* a window that ends inside a member */
    CU_ASSERT_EQUAL(pm_codec_frame_members(k, b.p, ends[2] + 100, 1 << 20, 1 << 20), ends[2]);
    /* nothing to cut: no member at the start, or the tail is too long */
    CU_ASSERT_EQUAL(pm_codec_frame_members(k, b.p + 1, b.len - 1, 1 << 20, 1 << 20), 0);
    CU_ASSERT_EQUAL(pm_codec_frame_members(k, b.p, ends[0] - 1, 10, 1 << 20), 0);
    /* a first member not all here yet: deferred into the next chunk when
     * the carry room holds what is here, else no cut */
    CU_ASSERT_EQUAL(pm_codec_frame_members(k, b.p, ends[0] - 1, 1 << 20, 1 << 20), PM_FRAME_DEFER);
    CU_ASSERT_EQUAL(pm_codec_frame_members(k, b.p, ends[0] - 1, ends[0] - 1, 0), PM_FRAME_DEFER);
    CU_ASSERT_EQUAL(pm_codec_frame_members(k, b.p, ends[0] - 1, ends[0] - 2, 0), 0);
    /* a member whose size points past the window is never cut at: deferred
     * while the carry room lasts (the end of the file sends it whole) */
    pm_gz_set_member_sizes(b.p, (uint32_t)b.len + 1, 10000);
    CU_ASSERT_EQUAL(pm_codec_frame_members(k, b.p, b.len, 1 << 20, 1 << 20), PM_FRAME_DEFER);
    CU_ASSERT_EQUAL(pm_codec_frame_members(k, b.p, b.len, 1000, 1 << 20), 0);
    free(b.p);
    free(data);
}

/* One member in chained blocks, as compress --one-member makes it. */
static void test_codec_chained(void)
{
    const pm_codec *k = pm_codec_find("gzip");
    size_t len = 200000, block = 64 * 1024;
    unsigned char *data = malloc(len), *out = malloc(len);
    CU_ASSERT_FATAL(data && out);
    pm_test_fill_text(data, len, 9);
    void *enc;
    CU_ASSERT_EQUAL(k->encoder_new(10, 0, &enc), -EINVAL);     /* 1-9 chained */
    CU_ASSERT_EQUAL(k->encoder_new(13, PM_CODEC_BLOCKED, &enc), -EINVAL);
    CU_ASSERT_EQUAL(k->encoder_new(0, PM_CODEC_BLOCKED, &enc), -EINVAL);
    CU_ASSERT_EQUAL(k->encoder_new(6, 0x80, &enc), -EINVAL);
    CU_ASSERT_FATAL(k->encoder_new(9, 0, &enc) == 0);
    blob b = {malloc(k->bound(block) * 4), 0};
    CU_ASSERT_FATAL(b.p != NULL);
    pm_codec_meta meta = {.name = "chained.txt", .mtime = 5};
    uint64_t check = 0;
    for (size_t off = 0; off < len; off += block) {
        size_t n = len - off < block ? len - off : block;
        size_t dict = off < k->dict_size ? off : k->dict_size;
        ssize_t m = k->encode_block(enc, off == 0 ? &meta : NULL, data + off - dict, dict,
                                    data + off, n, off + n == len, b.p + b.len, k->bound(n));
        CU_ASSERT_FATAL(m > 0);
        b.len += (size_t)m;
        check = k->check_combine(check, k->check(0, data + off, n), n);
    }
    CU_ASSERT_EQUAL(check, k->check(0, data, len));
    CU_ASSERT_EQUAL(check, crc32(0, data, (uInt)len));
    k->write_trailer(check, len, b.p + b.len);
    b.len += k->trailer_size;
    size_t got;
    pm_codec_info info;
    CU_ASSERT_EQUAL(stream_decode(k, &b, out, len, &got, &info), 0);
    CU_ASSERT(got == len && memcmp(out, data, len) == 0 && info.members == 1);
    CU_ASSERT_STRING_EQUAL(info.name, "chained.txt");
    /* not blocked: the splitter sees no member */
    uint64_t ms, us;
    CU_ASSERT_EQUAL(k->member_at(b.p, b.len, &ms, &us), 0);
    /* a header that cannot fit */
    CU_ASSERT_EQUAL(k->encode_block(enc, &meta, NULL, 0, data, 10, 1, b.p, 20), -ENAMETOOLONG);
    CU_ASSERT_EQUAL(k->encode_member(enc, &meta, data, 10, b.p, 20), -ENAMETOOLONG);
    k->encoder_free(enc);
    k->encoder_free(NULL);
    free(b.p);
    free(data);
    free(out);
}

static void test_codec_stored_name(void)
{
    const pm_codec *k = pm_codec_find("gzip");
    char out[NAME_MAX + 1];
    hdr h = blocked_header("a/b/name.txt", 100, 10);
    CU_ASSERT_EQUAL(k->stored_name(h.b, h.len, out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "name.txt");
    CU_ASSERT_EQUAL(k->stored_name(h.b, h.len, out, 5), 1);        /* cut */
    CU_ASSERT_STRING_EQUAL(out, "name");
    CU_ASSERT_EQUAL(k->stored_name(h.b, h.len - 1, out, sizeof out), -ENOENT);
    CU_ASSERT_EQUAL(k->stored_name(h.b, 5, out, sizeof out), -ENOENT);
    hdr none = blocked_header(NULL, 100, 10);
    CU_ASSERT_EQUAL(k->stored_name(none.b, none.len, out, sizeof out), -ENOENT);
    CU_ASSERT_EQUAL(k->stored_name("plain text", 10, out, sizeof out), -ENOENT);
    static const char *const bad[] = {"x/", "..", ".", "d/..", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        hdr b = make_header(PM_GZ_FNAME);
        b.len = 10;
        add(&b, bad[i], strlen(bad[i]) + 1);
        CU_ASSERT_EQUAL(k->stored_name(b.b, b.len, out, sizeof out), -EINVAL);
    }
    /* a name that does not end within name_bytes */
    size_t n = k->name_bytes;
    unsigned char *big = malloc(n);
    CU_ASSERT_FATAL(big != NULL);
    memcpy(big, make_header(PM_GZ_FNAME).b, 10);
    memset(big + 10, 'a', n - 10);
    CU_ASSERT_EQUAL(k->stored_name(big, n, out, sizeof out), -ENAMETOOLONG);
    CU_ASSERT_EQUAL(k->stored_name(big, n - 1, out, sizeof out), -ENOENT);     /* a short file */
    big[n - 1] = 0;                                 /* ends just in time: cut to NAME_MAX */
    CU_ASSERT_EQUAL(k->stored_name(big, n, out, sizeof out), 1);
    CU_ASSERT_EQUAL(strlen(out), NAME_MAX);
    free(big);
}

static void test_codec_sniff(void)
{
    const pm_codec *k = pm_codec_find("gzip");
    CU_ASSERT_EQUAL(k->sniff("\x1f\x8b", 2), 1);
    CU_ASSERT_EQUAL(k->sniff("\x1f\x8b\x08\x00", 4), 1);
    CU_ASSERT_EQUAL(k->sniff("\x1f\x8c", 2), 0);
    CU_ASSERT_EQUAL(k->sniff("ab", 2), 0);
    CU_ASSERT_EQUAL(k->sniff("a", 1), 0);
    CU_ASSERT_EQUAL(k->sniff("\x1f", 1), -EAGAIN);
    CU_ASSERT_EQUAL(k->sniff("", 0), -EAGAIN);
}

int main(void)
{
    static const pm_test_case cases[] = {
        {"header: every flag combination", test_header_flags},
        {"header: truncated at every length", test_header_truncated},
        {"header: not gzip, bad method and flags", test_header_not_gzip},
        {"header: FHCRC", test_header_hcrc},
        {"header: the PM subfield", test_header_blocked},
        {"header: lying PM subfields", test_header_blocked_lies},
        {"codec: registry", test_registry},
        {"codec: suffixes", test_suffixes},
        {"codec: blocked members, splitter, decode loop", test_codec_members},
        {"codec: framer", test_codec_framer},
        {"codec: chained blocks, checks, trailer", test_codec_chained},
        {"codec: stored name", test_codec_stored_name},
        {"codec: magic", test_codec_sniff},
        {NULL, NULL},
    };
    return pm_test_run("codec", cases);
}
