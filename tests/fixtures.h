/* Fixtures shared by several test programs (built into build/tests/libtesthelp.a). */
#ifndef TFSWA_TEST_FIXTURES_H
#define TFSWA_TEST_FIXTURES_H
#include <stddef.h>
#include <stdint.h>

#include "util/config.h"

/* A small TFSWA-ResUNet at 8 kHz (STFT 256/64, channels 4,8, one RCM and one TFSWA
 * block) with random weights from `seed`, saved as the checkpoint directory `dir` for
 * `targets` (comma-separated). Its config goes to *out when out is not NULL. 1 on
 * success, 0 (with the reason on stderr) otherwise. */
int test_make_small_checkpoint(const char *dir, const char *targets, uint64_t seed, tf_config *out);

/* n floats uniform in [-1, 1) from `seed` (util/rng.h), malloc'ed (NULL when out of
 * memory); the caller frees. */
float *test_rand_floats(size_t n, uint64_t seed);
/* max |a - b| / max |b| over n values; a NaN counts as the largest error. */
double test_max_rel_err(const float *a, const float *b, size_t n);

#endif
