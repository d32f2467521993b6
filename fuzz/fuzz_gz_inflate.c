/* fuzz_gz_inflate.c - libFuzzer target for the streaming gzip decoder.
 *
 * Input: two control bytes (output window size, feed-split seed) and then
 * the bytes to decode. The decoder is fed in random pieces, some empty, into
 * small output windows. It must never crash, and its verdict must agree with
 * an independent reference: zlib's own gzip decoder (windowBits 31) run
 * member by member with gzip's rules for what follows the last member. In
 * particular PM_GZ_DONE is only allowed when every member's CRC-32 and
 * length check, and the output must be the reference's, byte for byte.
 * Output beyond OUT_CAP makes a case inconclusive (decompression bombs).
 *
 * Build: CC=clang cmake -DPM_BUILD_FUZZ=ON ...; run e.g.
 *   ./fuzz_gz_inflate -max_total_time=60 fuzz/corpus/fuzz_gz_inflate
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include <pmap/gz.h>

#define OUT_CAP (1u << 20)

typedef struct obuf {
    unsigned char *p;
    size_t len;
    int capped;                 /* output limit reached: inconclusive */
} obuf;

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_gz_inflate: %s\n", what);
        abort();
    }
}

/* One member with zlib at in[0..len); its size in *used. 1 ok, 0 bad. */
static int ref_member(z_stream *s, const unsigned char *in, size_t len,
                      size_t *used, obuf *o)
{
    inflateReset(s);
    s->next_in = (unsigned char *)in;
    s->avail_in = (uInt)len;
    for (;;) {
        s->next_out = o->p + o->len;
        s->avail_out = (uInt)(OUT_CAP - o->len);
        int rc = inflate(s, Z_NO_FLUSH);
        o->len = OUT_CAP - s->avail_out;
        *used = len - s->avail_in;
        if (rc == Z_STREAM_END)
            return 1;
        if (o->len == OUT_CAP) {
            o->capped = 1;
            return 0;
        }
        if (rc != Z_OK)         /* corrupt, or Z_BUF_ERROR: truncated */
            return 0;
    }
}

/* gzip's verdict on the whole input: 1 ok, 0 bad. */
static int ref_decode(const unsigned char *in, size_t len, obuf *o)
{
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, 15 + 16) != Z_OK)
        abort();
    int ok = 0;
    for (size_t members = 0;; members++) {
        if (members > 0) {
            if (len == 0 || in[0] == 0) {
                ok = 1;                 /* end, or zero padding/garbage */
                break;
            }
            if (len == 1)
                break;                  /* one non-zero byte: truncated */
            if (in[0] != 0x1f || in[1] != 0x8b) {
                ok = 1;                 /* trailing garbage */
                break;
            }
        }
        size_t used;
        if (!ref_member(&s, in, len, &used, o))
            break;
        in += used;
        len -= used;
    }
    inflateEnd(&s);
    return ok;
}

/* Our decoder, fed in random pieces into windows of `win` bytes. */
static int our_decode(const unsigned char *in, size_t len, size_t win,
                      uint32_t seed, obuf *o)
{
    pm_gz_inflater *z;
    if (pm_gz_inflater_new(&z) != 0)
        abort();
    size_t pos = 0, end = 0;
    unsigned feed_bits = seed % 13;
    int rc;
    for (;;) {
        if (pos == end) {
            seed = seed * 1103515245u + 12345u;
            size_t n = (seed >> 8) & ((1u << feed_bits) - 1);
            end = pos + (n ? n : (seed >> 20) % 3);     /* some empty feeds */
            if (end > len)
                end = len;
        }
        size_t room = OUT_CAP - o->len < win ? OUT_CAP - o->len : win;
        size_t used, made;
        rc = pm_gz_inflate(z, in + pos, end - pos, &used, o->p + o->len, room,
                           &made, end == len);
        check(used <= end - pos && made <= room, "bad in_used/out_len");
        pos += used;
        o->len += made;
        if (rc == PM_GZ_NEED_INPUT)
            check(pos == end && end < len, "NEED_INPUT with input left");
        if (rc == PM_GZ_OUTPUT_FULL) {
            check(made == room, "OUTPUT_FULL with room left");
            if (o->len == OUT_CAP) {
                o->capped = 1;
                break;
            }
        }
        if (rc < 0 || rc == PM_GZ_DONE)
            break;
    }
    if (rc < 0)
        check(pm_gz_inflater_message(z)[0] != '\0', "error without message");
    if (rc == PM_GZ_DONE) {
        pm_gz_info info;
        pm_gz_inflater_info(z, &info);
        check(pos == len && info.in_bytes == len, "DONE before the end");
        check(info.out_bytes == o->len && info.members > 0, "bad info");
    }
    pm_gz_inflater_free(z);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t win = data[0] & 0x80 ? 1 + (size_t)(data[0] & 0x7f) * 1024
                                : 1 + (size_t)(data[0] & 0x3f);
    uint32_t seed = data[1] * 2654435761u + 1;
    data += 2;
    size -= 2;
    static unsigned char *bufs;     /* two output areas, kept across runs */
    if (!bufs && !(bufs = malloc(2 * (size_t)OUT_CAP)))
        abort();
    obuf ours = {bufs, 0, 0}, ref = {bufs + OUT_CAP, 0, 0};
    int rc = our_decode(data, size, win, seed, &ours);
    int ref_ok = ref_decode(data, size, &ref);
    if (!ours.capped && !ref.capped) {
        check((rc == PM_GZ_DONE) == ref_ok, "verdict differs from zlib/gzip");
        if (ref_ok)
            check(ours.len == ref.len &&
                  memcmp(ours.p, ref.p, ours.len) == 0, "output differs");
    }
    return 0;
}
