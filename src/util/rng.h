/* Deterministic random numbers. Streams are derived from (seed, a, b, c) by hashing, so
 * any consumer can reproduce the numbers of e.g. (seed, step, batch item, stem) without
 * shared state: batches depend only on (seed, step), never on thread scheduling. */
#ifndef TFSWA_RNG_H
#define TFSWA_RNG_H
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} tf_rng; /* xoshiro256** */

uint64_t tf_hash64(uint64_t x); /* splitmix64 finaliser */
void tf_rng_seed(tf_rng *r, uint64_t seed, uint64_t a, uint64_t b, uint64_t c);
uint64_t tf_rng_u64(tf_rng *r);
double tf_rng_uniform(tf_rng *r);                     /* [0, 1) */
double tf_rng_range(tf_rng *r, double lo, double hi); /* [lo, hi) */
uint64_t tf_rng_below(tf_rng *r, uint64_t n);         /* [0, n), n > 0, unbiased */
double tf_rng_normal(tf_rng *r);                      /* N(0, 1) */

#endif
