/* test_gz_member.c - pm_gz_member_decode: one whole gzip member in one call
 * (libdeflate), exact or refused. Members of every header
 * shape (FEXTRA, FNAME, FCOMMENT, FHCRC) and size decode to their bytes;
 * a wrong expected size, a member cut short or followed by a byte, a bad
 * CRC, ISIZE, header CRC, magic, method or reserved flag, and corrupt
 * deflate data are all -EBADMSG; every truncation is refused without
 * reading out of bounds (run under ASan in CI). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include <pmap/gz.h>
#include "testutil.h"

/* A gzip member of data[0..len) with the given flags (FEXTRA gets a 6-byte
 * field, FNAME "name", FCOMMENT "note"); returns its size. */
static size_t make_member(const unsigned char *data, size_t len, unsigned flags,
                          unsigned char *out, size_t cap)
{
    size_t pos = 0;
    static const unsigned char fixed[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    memcpy(out, fixed, 10);
    out[3] = (unsigned char)flags;
    pos = 10;
    if (flags & 0x04) {
        static const unsigned char extra[8] = {6, 0, 'x', 'y', 2, 0, 1, 2};
        memcpy(out + pos, extra, 8);
        pos += 8;
    }
    if (flags & 0x08) {
        memcpy(out + pos, "name", 5);
        pos += 5;
    }
    if (flags & 0x10) {
        memcpy(out + pos, "note", 5);
        pos += 5;
    }
    if (flags & 0x02) {
        uLong h = crc32(0, out, (uInt)pos);
        out[pos] = (unsigned char)h;
        out[pos + 1] = (unsigned char)(h >> 8);
        pos += 2;
    }
    z_stream z = {0};
    CU_ASSERT_FATAL(deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)len;
    z.next_out = out + pos;
    z.avail_out = (uInt)(cap - pos - 8);
    CU_ASSERT_FATAL(deflate(&z, Z_FINISH) == Z_STREAM_END);
    pos = cap - 8 - z.avail_out;
    deflateEnd(&z);
    uLong c = crc32(0, data, (uInt)len);
    for (int i = 0; i < 4; i++) {
        out[pos + i] = (unsigned char)(c >> (8 * i));
        out[pos + 4 + i] = (unsigned char)(len >> (8 * i));
    }
    return pos + 8;
}

static void test_shapes_and_sizes(void)
{
    static const size_t sizes[] = {0, 1, 1000, 65536, 1 << 20};
    static const unsigned flags[] = {0, 0x04, 0x08, 0x0c, 0x10, 0x02, 0x1e};
    size_t cap = (1 << 20) + 4096;
    unsigned char *data = malloc(cap), *gz = malloc(cap + 4096), *back = malloc(cap);
    pm_gz_member_decoder *d;
    CU_ASSERT_EQUAL_FATAL(pm_gz_member_decoder_new(&d), 0);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        for (int kind = 0; kind < 2; kind++) {
            size_t n = sizes[i];
            if (kind)
                pm_test_fill_random(data, n, 7 + i);
            else
                pm_test_fill_text(data, n, 7 + i);
            for (size_t f = 0; f < sizeof flags / sizeof *flags; f++) {
                if (n > 65536 && f > 1)
                    break;                      /* the shapes are covered smaller */
                size_t m = make_member(data, n, flags[f], gz, cap + 4096);
                memset(back, 0xaa, n);
                CU_ASSERT_EQUAL(pm_gz_member_decode(d, gz, m, back, n), 0);
                CU_ASSERT(memcmp(back, data, n) == 0);
            }
        }
    pm_gz_member_decoder_free(d);
    free(data);
    free(gz);
    free(back);
}

/* The blocked format's own members, from the deflaters of every engine. */
static void test_blocked_members(void)
{
    size_t n = 300000, cap = pm_gz_block_bound(n) + 64;
    unsigned char *data = malloc(n), *gz = malloc(cap), *back = malloc(n);
    pm_test_fill_text(data, n, 3);
    pm_gz_member_decoder *d;
    CU_ASSERT_EQUAL_FATAL(pm_gz_member_decoder_new(&d), 0);
    for (int level = 1; level <= PM_GZ_LEVEL_MAX; level += 3) {
        pm_gz_deflater *z;
        CU_ASSERT_EQUAL_FATAL(pm_gz_deflater_new_ex(level, PM_GZ_INDEPENDENT, &z), 0);
        pm_gz_header h = {.name = "x", .level = level, .blocked = 1};
        ssize_t hl = pm_gz_write_header(&h, gz, cap);
        CU_ASSERT_FATAL(hl > 0);
        ssize_t bl = pm_gz_deflate_block(z, NULL, 0, data, n, 1, gz + hl, cap - (size_t)hl - 8);
        CU_ASSERT_FATAL(bl > 0);
        size_t m = (size_t)hl + (size_t)bl;
        pm_gz_write_trailer(pm_crc32(0, data, n), n, gz + m);
        m += 8;
        pm_gz_set_member_sizes(gz, (uint32_t)m, (uint32_t)n);
        CU_ASSERT_EQUAL(pm_gz_member_decode(d, gz, m, back, n), 0);
        CU_ASSERT(memcmp(back, data, n) == 0);
        pm_gz_deflater_free(z);
    }
    pm_gz_member_decoder_free(d);
    free(data);
    free(gz);
    free(back);
}

static void test_refusals(void)
{
    size_t n = 5000, cap = 16384;
    unsigned char data[5000], gz[16384], bad[16384], back[5001];
    pm_test_fill_text(data, n, 11);
    size_t m = make_member(data, n, 0x1e, gz, cap);
    pm_gz_member_decoder *d;
    CU_ASSERT_EQUAL_FATAL(pm_gz_member_decoder_new(&d), 0);
    CU_ASSERT_EQUAL(pm_gz_member_decode(d, gz, m, back, n), 0);
    /* wrong expected sizes */
    CU_ASSERT_EQUAL(pm_gz_member_decode(d, gz, m, back, n - 1), -EBADMSG);
    CU_ASSERT_EQUAL(pm_gz_member_decode(d, gz, m, back, n + 1), -EBADMSG);
    memcpy(bad, gz, m);
    bad[m] = 0;
    CU_ASSERT_EQUAL(pm_gz_member_decode(d, bad, m + 1, back, n), -EBADMSG);
    /* every truncation, header included */
    for (size_t k = 0; k < m; k++) {
        unsigned char *cut = malloc(k ? k : 1);
        memcpy(cut, gz, k);
        CU_ASSERT_EQUAL(pm_gz_member_decode(d, cut, k, back, n), -EBADMSG);
        free(cut);
    }
    /* one byte changed: CRC, ISIZE, header CRC, magic, method, a reserved
     * flag, and the middle of the deflate data */
    const size_t at[] = {m - 8, m - 4, 26, 0, 1, 2, 3, m / 2};
    const unsigned char x[] = {0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x20, 0x55};
    for (size_t i = 0; i < sizeof at / sizeof *at; i++) {
        memcpy(bad, gz, m);
        bad[at[i]] ^= x[i];
        CU_ASSERT_EQUAL(pm_gz_member_decode(d, bad, m, back, n), -EBADMSG);
    }
    CU_ASSERT_EQUAL(pm_gz_member_decode(NULL, gz, m, back, n), -EINVAL);
    CU_ASSERT_EQUAL(pm_gz_member_decode(d, NULL, m, back, n), -EINVAL);
    CU_ASSERT_EQUAL(pm_gz_member_decode(d, gz, m, NULL, n), -EINVAL);
    CU_ASSERT_EQUAL(pm_gz_member_decoder_new(NULL), -EINVAL);
    pm_gz_member_decoder_free(d);
    pm_gz_member_decoder_free(NULL);
}

int main(void)
{
    static const pm_test_case cases[] = {
        {"every header shape and size decodes exactly", test_shapes_and_sizes},
        {"blocked members from every engine", test_blocked_members},
        {"wrong sizes, truncations and corruptions are refused", test_refusals},
        {NULL, NULL},
    };
    return pm_test_run("gz_member", cases);
}
