/* dg_binary.c - binary data: a mix of incompressible and structured parts.
 *
 * A record is one segment of 4-32 KiB: a 16-byte header (magic, type,
 * length, a random tag) and a body of one of five shapes, like the pieces
 * of real binary files: random bytes (already-compressed media or
 * encrypted blobs), a table of fixed-size structs with slowly changing
 * fields, a noisy 16-bit waveform, a sparse area that is mostly zeros, and
 * a table of NUL-terminated strings. All multi-byte values are written
 * little-endian byte by byte, so the output does not depend on the host. */
#include "dg.h"

enum { SEG_RANDOM, SEG_TABLE, SEG_WAVE, SEG_SPARSE, SEG_STRINGS };

static void put_le(dg_sink *s, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++, v >>= 8)
        dg_putc(s, (char)(v & 0xff));
}

static void seg_random(dg_gen *g, dg_sink *s, size_t n)
{
    for (size_t i = 0; i < n; i += 8)
        put_le(s, dg_next(&g->rng), n - i < 8 ? (int)(n - i) : 8);
}

/* 32-byte structs: id, time, type, flags, value (random walk), count,
 * a random 64-bit hash, padding. */
static void seg_table(dg_gen *g, dg_sink *s, size_t n)
{
    dg_rng *r = &g->rng;
    int64_t value = (int64_t)dg_below(r, 100000);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        g->serial++;
        g->clock_ms += dg_below(r, 2000);
        value += (int64_t)dg_below(r, 201) - 100;
        put_le(s, g->serial, 4);
        put_le(s, g->clock_ms / 1000, 4);
        put_le(s, dg_zipf_draw(&g->t->small_zipf, r), 2);
        put_le(s, dg_chance(r, 1, 10) ? 0x8001 : 0x0001, 2);
        put_le(s, (uint64_t)value, 4);
        put_le(s, dg_lognormal_clamped(r, 1, 5000), 4);
        put_le(s, dg_next(r), 8);
        put_le(s, 0, 4);
    }
    for (; i < n; i++)
        dg_putc(s, 0);
}

/* Signed 16-bit samples: two triangle waves plus a few bits of noise. */
static void seg_wave(dg_gen *g, dg_sink *s, size_t n)
{
    dg_rng *r = &g->rng;
    unsigned p1 = (unsigned)dg_range(r, 40, 400), p2 = (unsigned)dg_range(r, 7, 60);
    uint64_t noise = 0;
    for (size_t i = 0; i + 2 <= n; i += 2) {
        unsigned k = (unsigned)(i / 2);
        int a = (int)(k % p1) * 20000 / (int)p1 - 10000;
        int b = (int)(k % p2) * 4000 / (int)p2 - 2000;
        if ((k & 15) == 0)
            noise = dg_next(r);
        int v = a + b + (int)((noise >> (4 * (k & 15))) & 0x3f) - 32;
        put_le(s, (uint16_t)(int16_t)v, 2);
    }
    if (n & 1)
        dg_putc(s, 0);
}

static void seg_sparse(dg_gen *g, dg_sink *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dg_putc(s, dg_chance(&g->rng, 1, 64) ? (char)dg_below(&g->rng, 256) : 0);
}

static void seg_strings(dg_gen *g, dg_sink *s, size_t n)
{
    size_t end = s->len + n;
    while (s->len + 32 < end) {
        if (dg_chance(&g->rng, 1, 3))
            dg_puts(s, "/usr/lib/");
        dg_put_word(s, g->t, dg_zipf_draw(&g->t->word_zipf, &g->rng));
        dg_putc(s, dg_chance(&g->rng, 1, 2) ? '_' : '.');
        dg_put_word(s, g->t, dg_zipf_draw(&g->t->word_zipf, &g->rng) % 1000);
        dg_putc(s, 0);
    }
    while (s->len < end)
        dg_putc(s, 0);
}

void dg_binary_record(dg_gen *g, dg_sink *s)
{
    dg_rng *r = &g->rng;
    static const unsigned char type_of[20] = {
        SEG_RANDOM, SEG_RANDOM, SEG_RANDOM, SEG_RANDOM, SEG_RANDOM,
        SEG_TABLE, SEG_TABLE, SEG_TABLE, SEG_TABLE, SEG_TABLE, SEG_TABLE, SEG_TABLE,
        SEG_WAVE, SEG_WAVE, SEG_WAVE, SEG_SPARSE, SEG_SPARSE,
        SEG_STRINGS, SEG_STRINGS, SEG_STRINGS,
    };
    unsigned type = type_of[dg_below(r, 20)];
    size_t body = (size_t)dg_range(r, 4096, 32768) - 16;
    dg_put(s, "PMDG", 4);
    put_le(s, type, 4);
    put_le(s, body, 4);
    put_le(s, dg_next(r), 4);
    switch (type) {
    case SEG_RANDOM: seg_random(g, s, body); break;
    case SEG_TABLE: seg_table(g, s, body); break;
    case SEG_WAVE: seg_wave(g, s, body); break;
    case SEG_SPARSE: seg_sparse(g, s, body); break;
    default: seg_strings(g, s, body); break;
    }
}
