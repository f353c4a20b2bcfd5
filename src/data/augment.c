#include "data/augment.h"

#include <math.h>

#include "data/sampler.h"
#include "util/rng.h"

int tf_augment_mix_wanted(const tf_config *cfg, uint64_t seed, int64_t step, int item, int stem) {
    if (cfg->aug_mix_same_source <= 0) return 0;
    tf_rng r;
    tf_rng_seed(&r, seed, (uint64_t)step, (uint64_t)item, tf_stream(TF_STREAM_MIX_PICK, stem, 0));
    return tf_rng_uniform(&r) < cfg->aug_mix_same_source;
}

void tf_augment_mix(float *x, const float *y, int64_t n) {
    const float k = 0.70710678118654752f;
    for (int64_t i = 0; i < n; i++) x[i] = (x[i] + y[i]) * k;
}

void tf_augment_draw(const tf_config *cfg, uint64_t seed, int64_t step, int item, int stem,
                     tf_aug_info *info) {
    tf_rng r;
    tf_rng_seed(&r, seed, (uint64_t)step, (uint64_t)item, tf_stream(TF_STREAM_AUG, stem, 0));
    const double u_gain = tf_rng_uniform(&r);
    const double u_swap = tf_rng_uniform(&r);
    const double u_pol = tf_rng_uniform(&r);
    float g = 1.f;
    if (cfg->aug_gain) {
        double db = cfg->aug_gain_min_db + (cfg->aug_gain_max_db - cfg->aug_gain_min_db) * u_gain;
        g = (float)pow(10.0, db / 20.0);
    }
    const int swap = cfg->aug_channel_swap && u_swap < 0.5;
    const int flip = cfg->aug_polarity && u_pol < 0.5;
    if (flip) g = -g;
    info->gain = g;
    info->swapped = swap;
    info->flipped = flip;
}

void tf_augment_gain_swap(float *x, int64_t stride, int64_t m, float g, int swap) {
    float *L = x, *R = x + stride;
    if (swap) {
        for (int64_t i = 0; i < m; i++) {
            float t = L[i];
            L[i] = R[i] * g;
            R[i] = t * g;
        }
    } else if (g != 1.f) {
        for (int64_t i = 0; i < m; i++) L[i] *= g;
        for (int64_t i = 0; i < m; i++) R[i] *= g;
    }
}

void tf_augment_apply(const tf_config *cfg, uint64_t seed, int64_t step, int item, int stem,
                      float *x, int64_t n, tf_aug_info *info) {
    tf_aug_info ai;
    tf_augment_draw(cfg, seed, step, item, stem, &ai);
    tf_augment_gain_swap(x, n, n, ai.gain, ai.swapped);
    if (info) *info = ai;
}
