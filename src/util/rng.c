#include "util/rng.h"

#include <math.h>

uint64_t tf_hash64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

void tf_rng_seed(tf_rng *r, uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
    uint64_t h = tf_hash64(seed);
    h = tf_hash64(h ^ tf_hash64(a + 0x1234567ull));
    h = tf_hash64(h ^ tf_hash64(b + 0x89ABCDEull));
    h = tf_hash64(h ^ tf_hash64(c + 0xF0F0F0Full));
    for (int i = 0; i < 4; i++) r->s[i] = h = tf_hash64(h + (uint64_t)i);
}

static inline uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t tf_rng_u64(tf_rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double tf_rng_uniform(tf_rng *r) {
    return (double)(tf_rng_u64(r) >> 11) * 0x1.0p-53;
}

double tf_rng_range(tf_rng *r, double lo, double hi) {
    return lo + (hi - lo) * tf_rng_uniform(r);
}

uint64_t tf_rng_below(tf_rng *r, uint64_t n) {
    uint64_t lim = -n % n; /* 2^64 mod n */
    for (;;) {
        uint64_t x = tf_rng_u64(r);
        if (x >= lim) return x % n;
    }
}

double tf_rng_normal(tf_rng *r) {
    double u1 = tf_rng_uniform(r), u2 = tf_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
