/* Fixtures shared by several test programs (built into build/tests/libtesthelp.a). */
#ifndef TFSWA_TEST_FIXTURES_H
#define TFSWA_TEST_FIXTURES_H
#include <stdint.h>

#include "util/config.h"

/* A small TFSWA-ResUNet at 8 kHz (STFT 256/64, channels 4,8, one RCM and one TFSWA
 * block) with random weights from `seed`, saved as the checkpoint directory `dir` for
 * `targets` (comma-separated). Its config goes to *out when out is not NULL. 1 on
 * success, 0 (with the reason on stderr) otherwise. */
int test_make_small_checkpoint(const char *dir, const char *targets, uint64_t seed, tf_config *out);

#endif
