/* fuzz_member_split.c - libFuzzer target for the member splitter of the
 * blocked layout: the gzip codec's member_at(), the framer built on it
 * (pm_codec_frame_members) and the whole-member decode loop
 * (pm_codec_unpack_members).
 *
 * Input: three control bytes (the framer's chunk bound, its output budget,
 * the seed of the window lengths) and then a file. Sizes in the file's
 * headers are the input's to lie with. Checked:
 *   - every cut the framer returns is 0 or the end of a whole member within
 *     the window it was given, found by walking member_at() from the
 *     window's start, and leaves at most the chunk bound after it;
 *   - the framer is run over the whole file the way the pipeline runs it:
 *     windows of random length from the current position, the next window
 *     starting at the cut (or after the window when there is none);
 *   - the decode loop consumes whole members only, writes only within the
 *     output room it is given (an exact-size buffer, so ASan sees any
 *     write past it) and its output is what the streaming decoder makes of
 *     the same bytes.
 * Every buffer is exactly as large as its contents, so any read a lying
 * size would cause past the input is an ASan report.
 *
 * Seeds: fuzz/corpus/fuzz_member_split (blocked files made with pmap
 * compress -b 1K, pigz output, cut and padded ones).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pmap/codec.h>
#include <pmap/gz.h>
#include <pmap/pipeline.h>

#define OUT_MAX (256 * 1024)     /* decode loop room, at most */

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_member_split: %s\n", what);
        abort();
    }
}

static uint32_t next(uint32_t *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return *seed >> 8;
}

/* Is cut the end of a whole member, walking from p's start? */
static int on_boundary(const pm_codec *k, const uint8_t *p, size_t len, size_t cut)
{
    size_t pos = 0;
    uint64_t ms, us;
    while (pos < cut && k->member_at(p + pos, len - pos, &ms, &us) && ms > 0 &&
           ms <= len - pos)
        pos += (size_t)ms;
    return pos == cut;
}

/* One framer call on a copy of exactly len bytes. */
static size_t frame_window(const pm_codec *k, const uint8_t *p, size_t len, size_t chunk,
                           size_t budget)
{
    uint8_t *w = malloc(len ? len : 1);
    check(w != NULL, "malloc");
    memcpy(w, p, len);
    size_t cut = pm_codec_frame_members(k, w, len, chunk, budget);
    free(w);
    if (cut == PM_FRAME_DEFER) {      /* a first member not all here, in the carry room */
        uint64_t ms, us;
        check(len <= chunk, "deferred more than the carry room");
        check(k->member_at(p, len, &ms, &us) && ms > len, "deferred a whole member");
        return cut;
    }
    check(cut <= len, "cut past the window");
    check(on_boundary(k, p, len, cut), "cut not on a member boundary");
    check(cut == 0 || len - cut <= chunk, "cut leaves more than a chunk");
    return cut;
}

/* The framer over the whole file, in windows of random length. */
static void frame_file(const pm_codec *k, const uint8_t *p, size_t len, size_t chunk,
                       size_t budget, uint32_t seed)
{
    size_t pos = 0, least = 1;
    while (pos < len) {
        size_t win = least + next(&seed) % (2 * chunk + 64);
        if (win > len - pos)
            win = len - pos;
        size_t cut = frame_window(k, p + pos, win, chunk, budget);
        if (cut == PM_FRAME_DEFER && win < len - pos) {
            least = win + 1;              /* the pipeline reads more, then asks again */
            continue;
        }
        least = 1;
        pos += cut && cut != PM_FRAME_DEFER ? cut : win;   /* at the end: sent whole */
    }
}

/* The streaming decoder over in[0..len): its output, or -1 if it fails. */
static long stream_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    pm_gz_inflater *z;
    check(pm_gz_inflater_new(&z) == 0, "inflater_new");
    size_t used = 0, made = 0;
    int rc = pm_gz_inflate(z, in, len, &used, out, cap, &made, 1);
    pm_gz_inflater_free(z);
    return rc == PM_GZ_DONE ? (long)made : -1;
}

/* The decode loop with room of cap bytes; its output checked. */
static void unpack(const pm_codec *k, void *u, const uint8_t *p, size_t len, size_t cap)
{
    uint8_t *in = malloc(len ? len : 1), *out = malloc(cap ? cap : 1);
    check(in && out, "malloc");
    memcpy(in, p, len);
    size_t in_used = 99, out_used = 99;
    uint64_t n = pm_codec_unpack_members(k, u, in, len, out, cap, &in_used, &out_used);
    check(in_used <= len && out_used <= cap, "used past the buffers");
    check(on_boundary(k, p, len, in_used), "decoded up to no member boundary");
    check((n == 0) == (in_used == 0), "members without bytes");
    if (n > 0) {
        uint8_t *ref = malloc(out_used + 1);
        check(ref != NULL, "malloc");
        long got = stream_decode(in, in_used, ref, out_used + 1);
        check(got == (long)out_used && memcmp(ref, out, out_used) == 0,
              "decoded members differ from the streaming decoder");
        free(ref);
    }
    free(in);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    static const pm_codec *k;
    static void *u;
    if (!k) {
        k = pm_codec_find("gzip");
        check(k && k->unpacker_new(&u) == 0, "gzip codec");
    }
    size_t chunk = 64 + (size_t)data[0] * 64;         /* 64 B .. 16 KiB */
    size_t budget = (size_t)data[1] * 1024;           /* 0 .. 255 KiB */
    uint32_t seed = data[2] * 2654435761u + 1;
    data += 3;
    size -= 3;
    frame_window(k, data, size, chunk, budget);
    frame_file(k, data, size, chunk, budget, seed);
    unpack(k, u, data, size, budget < OUT_MAX ? budget : OUT_MAX);
    return 0;
}
