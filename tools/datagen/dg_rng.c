/* dg_rng.c - pmap-datagen's random numbers and integer-only distributions.
 *
 * The generator is xoshiro256** (Blackman and Vigna), seeded by expanding
 * (seed, stream) with splitmix64. Every distribution below is built from
 * integer operations only, with results defined bit for bit: floating point
 * and libm's exp/log may round differently across machines, and one changed
 * file size would change every byte after it. */
#include <errno.h>
#include <stdlib.h>

#include "dg.h"

typedef unsigned __int128 u128;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t dg_mix(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void dg_rng_seed(dg_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed;
    x = splitmix64(&x) ^ (stream * 0xd1b54a32d192ed03ull);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

uint64_t dg_next(dg_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

uint64_t dg_below(dg_rng *r, uint64_t n)
{
    return (uint64_t)(((u128)dg_next(r) * n) >> 64);
}

uint64_t dg_range(dg_rng *r, uint64_t lo, uint64_t hi)
{
    return lo + dg_below(r, hi - lo + 1);
}

int dg_chance(dg_rng *r, unsigned num, unsigned den)
{
    return dg_below(r, den) < num;
}

/* log2 by repeated squaring of the mantissa: each squaring yields one bit. */
int64_t dg_log2_q16(uint64_t x)
{
    int e = 63 - __builtin_clzll(x);
    uint64_t m = e <= 62 ? x << (62 - e) : x >> (e - 62);   /* [1,2) in Q62 */
    int64_t r = (int64_t)e << 16;
    for (int bit = 15; bit >= 0; bit--) {
        m = (uint64_t)(((u128)m * m) >> 62);
        if (m >= (2ull << 62)) {
            m >>= 1;
            r |= (int64_t)1 << bit;
        }
    }
    return r;
}

/* 2^(2^-i) in Q62 for i = 1..16: floor(sqrt(2) * 2^62), then each one the
 * floor of the square root of the previous (exact integer square roots). */
static const uint64_t dg_root2[16] = {
    0x5a827999fcef3242ull, 0x4c1bf828c6dc54b7ull, 0x45cae0f1f545eb73ull,
    0x42d561b3e6243d8aull, 0x4166c34c5615d0ebull, 0x40b268f9de0183b9ull,
    0x4058f6a7ecccd5b5ull, 0x402c6be96af2fb57ull, 0x4016321b687027a7ull,
    0x400b18178ba33b13ull, 0x40058bce410147e7ull, 0x4002c5d7bff71dadull,
    0x400162e807ee7e5aull, 0x4000b1730df6a523ull, 0x400058b9497b8151ull,
    0x40002c5c955dd700ull,
};

uint64_t dg_exp2_q16(int64_t l)
{
    unsigned ip = (unsigned)(l >> 16), frac = (unsigned)(l & 0xffff);
    uint64_t m = 1ull << 62;                 /* 1.0 in Q62 */
    for (int i = 0; i < 16; i++)
        if (frac & (0x8000u >> i))
            m = (uint64_t)(((u128)m * dg_root2[i]) >> 62);
    if (ip > 62)
        return UINT64_MAX;
    return (uint64_t)(((u128)m << ip) >> 62);
}

int64_t dg_normal_q16(dg_rng *r)
{
    int64_t sum = 0;
    for (int i = 0; i < 3; i++) {
        uint64_t v = dg_next(r);
        for (int j = 0; j < 4; j++, v >>= 16)
            sum += (int64_t)(v & 0xffff);
    }
    return sum - 6 * 65536;      /* Irwin-Hall(12) minus its mean: variance 1 */
}

uint64_t dg_lognormal_clamped(dg_rng *r, uint64_t lo, uint64_t hi)
{
    if (lo >= hi)
        return lo;
    int64_t llo = dg_log2_q16(lo), lhi = dg_log2_q16(hi);
    int64_t mu = (llo + lhi) / 2, sigma = (lhi - llo) / 4;
    int64_t l = mu + dg_normal_q16(r) * sigma / 65536;
    if (l <= llo)
        return lo;
    if (l >= lhi)
        return hi;
    uint64_t v = dg_exp2_q16(l);
    return v < lo ? lo : v > hi ? hi : v;
}

int dg_zipf_init(dg_zipf *z, uint32_t n, uint32_t offset)
{
    z->n = n;
    z->cdf = malloc(sizeof *z->cdf * n);
    z->guide = malloc(sizeof *z->guide * n);
    if (!z->cdf || !z->guide || n == 0 || offset == 0) {
        dg_zipf_free(z);
        return -ENOMEM;
    }
    uint64_t total = 0;
    for (uint32_t k = 0; k < n; k++) {
        total += (1ull << 40) / (k + offset);
        z->cdf[k] = total;
    }
    uint32_t k = 0;
    for (uint32_t j = 0; j < n; j++) {
        uint64_t threshold = (uint64_t)((u128)j * total / n);
        while (z->cdf[k] <= threshold)
            k++;
        z->guide[j] = k;
    }
    return 0;
}

void dg_zipf_free(dg_zipf *z)
{
    free(z->cdf);
    free(z->guide);
    z->cdf = NULL;
    z->guide = NULL;
}

/* r = u * total and j = u * n for the same uniform u: guide[j] never lies
 * beyond the answer, and the scan from it is short on average. */
uint32_t dg_zipf_draw(const dg_zipf *z, dg_rng *rng)
{
    return dg_zipf_map(z, dg_next(rng));
}

uint32_t dg_zipf_map(const dg_zipf *z, uint64_t u)
{
    uint64_t total = z->cdf[z->n - 1];
    uint64_t r = (uint64_t)(((u128)u * total) >> 64);
    uint32_t k = z->guide[(uint64_t)(((u128)u * z->n) >> 64)];
    while (z->cdf[k] <= r)
        k++;
    return k;
}
