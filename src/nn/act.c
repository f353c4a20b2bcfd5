#include "nn/act.h"

#include "nn/clones.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* GELU with the exact-erf definition, computed branch-free so the loops vectorise (libm's
 * erff/expf are scalar calls and dominated the model's time):
 *   Phi(x) = 0.5 erfc(-x / sqrt 2), erfc by the Chebyshev fit of Numerical Recipes
 *   ("erfcc", relative error < 1.2e-7 for all arguments) and exp by range reduction +
 *   a degree-6 polynomial (relative error ~2e-7). Checked against erf() in double by
 *   tests/test_act.c over the whole float range that matters. */

#define INV_SQRT2   0.70710678118654752440f
#define INV_SQRT2PI 0.39894228040143267794f

/* e^a for a <= 88 (clamped below at -87: e^-87 ~ 1.6e-38 is the smallest normal). */
static inline float exp_approx(float a) {
    a = a < -87.f ? -87.f : a;
    const float shift = 12582912.f; /* 1.5 * 2^23: adding it rounds to an integer */
    float n = (a * 1.44269504088896341f + shift) - shift;
    float r = a - n * 0.693145751953125f - n * 1.428606765330187045e-06f;
    float p =
        1.f +
        r * (1.f + r * (0.5f + r * (1.f / 6 + r * (1.f / 24 + r * (1.f / 120 + r * (1.f / 720))))));
    int32_t e = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &e, sizeof s);
    return p * s;
}

/* Phi(x), the standard normal CDF = 0.5 (1 + erf(x / sqrt 2)). */
static inline float normal_cdf(float x) {
    float z = fabsf(x) * INV_SQRT2;
    float t = 1.f / (1.f + 0.5f * z);
    float q =
        -z * z - 1.26551223f +
        t * (1.00002368f +
             t * (0.37409196f +
                  t * (0.09678418f +
                       t * (-0.18628806f +
                            t * (0.27886807f + t * (-1.13520398f +
                                                    t * (1.48851587f + t * (-0.82215223f +
                                                                            t * 0.17087277f))))))));
    float half_erfc = 0.5f * t * exp_approx(q); /* 0.5 erfc(|x| / sqrt 2) */
    float pos = (float)(x >= 0.f);              /* branch-free select: 1 - h for x >= 0, else h */
    return half_erfc + pos * (1.f - 2.f * half_erfc);
}

enum { CHUNK = 4096 };

TF_CLONES void tf_gelu_forward(float *out, const float *inp, size_t n) {
    const size_t nc = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t c = 0; c < nc; c++) {
        const size_t end = (c + 1) * CHUNK < n ? (c + 1) * CHUNK : n;
#pragma omp simd
        for (size_t i = c * CHUNK; i < end; i++) {
            float x = inp[i];
            out[i] = x * normal_cdf(x);
        }
    }
}

TF_CLONES void tf_bn_gelu(float *out, const float *inp, size_t n, float mean, float rstd,
                          float weight, float bias) {
    const float scale = weight * rstd;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float x = (inp[i] - mean) * scale + bias;
        out[i] = x * normal_cdf(x);
    }
}

TF_CLONES void tf_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    const size_t nc = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t c = 0; c < nc; c++) {
        const size_t end = (c + 1) * CHUNK < n ? (c + 1) * CHUNK : n;
#pragma omp simd
        for (size_t i = c * CHUNK; i < end; i++) {
            float x = inp[i];
            float pdf = INV_SQRT2PI * exp_approx(-0.5f * x * x);
            dinp[i] += dout[i] * (normal_cdf(x) + x * pdf);
        }
    }
}
