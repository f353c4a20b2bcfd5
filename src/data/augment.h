/* Training augmentations of one stem chunk, each switched by the config:
 *   same-source mix (augment.mix_same_source = p): with probability p a second segment of
 *     the same source (another draw, possibly another track) is added in:
 *     x = (x + y) / sqrt(2). The 1/sqrt(2) keeps the power of two uncorrelated segments
 *     of equal level, so mixed stems are neither louder nor quieter on average (0.5
 *     would make them ~3 dB quieter). The loader reads y; this module decides and adds.
 *   gain (augment.gain): x *= 10^(g/20), g uniform in [gain_min_db, gain_max_db].
 *   channel swap (augment.channel_swap): left and right exchanged with probability 1/2.
 *   polarity (augment.polarity): x = -x with probability 1/2.
 * Applied in that order. All random numbers come from tf_rng_seed(seed, step, item,
 * tf_stream(TF_STREAM_AUG or TF_STREAM_MIX_PICK, stem, 0)); the gain, swap and polarity
 * draws are always made, so switching one augmentation never changes another's. */
#ifndef TFSWA_AUGMENT_H
#define TFSWA_AUGMENT_H
#include <stdint.h>

#include "util/config.h"

typedef struct {
    float gain;  /* linear gain applied (1 when off) */
    int swapped; /* channels exchanged */
    int flipped; /* polarity inverted */
} tf_aug_info;

/* Whether stem `stem` of item (seed, step, item) gets the same-source mix. */
int tf_augment_mix_wanted(const tf_config *cfg, uint64_t seed, int64_t step, int item, int stem);
/* x = (x + y) / sqrt(2) over n floats. */
void tf_augment_mix(float *x, const float *y, int64_t n);
/* The gain (sign included), swap and polarity choices of one stem, without applying them. */
void tf_augment_draw(const tf_config *cfg, uint64_t seed, int64_t step, int item, int stem,
                     tf_aug_info *info);
/* x (2, m) with row stride `stride` (the frames [j, j + m) of a longer chunk when x points
 * at its frame j): swap ? (L, R) = (R * g, L * g) : x *= g (nothing when g == 1). Each
 * sample is one float multiply, so a chunk done in blocks equals the chunk done at once. */
void tf_augment_gain_swap(float *x, int64_t stride, int64_t m, float g, int swap);
/* Gain, channel swap and polarity in place on x (2, n) planar: tf_augment_draw, then
 * tf_augment_gain_swap(x, n, n, ...). */
void tf_augment_apply(const tf_config *cfg, uint64_t seed, int64_t step, int item, int stem,
                      float *x, int64_t n, tf_aug_info *info);

#endif
