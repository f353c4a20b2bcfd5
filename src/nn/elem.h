/* Per-element math of the own (non-GEMM) kernels, written once for the CPU kernels of
 * src/nn, src/optim and src/train and for the CUDA kernels of src/cuda/elem.cu: every
 * function is `static inline` and TF_HD (util/hd.h: __host__ __device__ under nvcc), C11 and CUDA
 * C++, nothing from libc beyond math.h. The CPU code calls these, so the CPU tests
 * (tests/test_elem.c, test_act, test_nn_attn, ...) cover the formulas the GPU runs.
 *
 * The CPU kernels keep their operation order through these functions (their outputs are
 * bitwise the same as before the functions were split out). On the device nvcc contracts
 * a*b+c into FMAs (--fmad=true, its default), so GPU results differ from the CPU ones in
 * the last bits; tests/gpu/test_cuda_elem.c compares with tolerances.
 * The Adam update is in optim/optim_elem.h (optim may not include nn), the magnitude and
 * phase of a bin in dsp/dsp_elem.h (dsp may not include nn), the bf16 rounding in
 * util/hd.h. */
#ifndef TFSWA_NN_ELEM_H
#define TFSWA_NN_ELEM_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "util/hd.h"

/* ------------------------------------------------------------------------ GELU */
/* GELU with the exact-erf definition, branch-free so the CPU loops vectorise (libm's
 * erff/expf are scalar calls):
 *   Phi(x) = 0.5 erfc(-x / sqrt 2), erfc by the Chebyshev fit of Numerical Recipes
 *   ("erfcc", relative error < 1.2e-7 for all arguments) and exp by range reduction +
 *   a degree-6 polynomial (relative error ~2e-7). Checked against erf() in double by
 *   tests/test_act.c and tests/test_elem.c. */
#define TF_INV_SQRT2   0.70710678118654752440f
#define TF_INV_SQRT2PI 0.39894228040143267794f

/* e^a for a <= 88 (clamped below at -87: e^-87 ~ 1.6e-38 is the smallest normal). */
static inline TF_HD float tf_exp_approx(float a) {
    a = a < -87.f ? -87.f : a;
    const float shift = 12582912.f; /* 1.5 * 2^23: adding it rounds to an integer */
    float n = (a * 1.44269504088896341f + shift) - shift;
    float r = a - n * 0.693145751953125f - n * 1.428606765330187045e-06f;
    float p =
        1.f +
        r * (1.f + r * (0.5f + r * (1.f / 6 + r * (1.f / 24 + r * (1.f / 120 + r * (1.f / 720))))));
    int32_t e = ((int32_t)n + 127) << 23;
    return p * tf_elem_bits_to_f32((uint32_t)e);
}

/* Phi(x), the standard normal CDF = 0.5 (1 + erf(x / sqrt 2)). */
static inline TF_HD float tf_normal_cdf(float x) {
    float z = fabsf(x) * TF_INV_SQRT2;
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
    float half_erfc = 0.5f * t * tf_exp_approx(q); /* 0.5 erfc(|x| / sqrt 2) */
    float pos = (float)(x >= 0.f); /* branch-free select: 1 - h for x >= 0, else h */
    return half_erfc + pos * (1.f - 2.f * half_erfc);
}

/* gelu(x) = x Phi(x) */
static inline TF_HD float tf_gelu(float x) {
    return x * tf_normal_cdf(x);
}

/* gelu'(x) = Phi(x) + x phi(x), phi the standard normal density */
static inline TF_HD float tf_gelu_grad(float x) {
    float pdf = TF_INV_SQRT2PI * tf_exp_approx(-0.5f * x * x);
    return tf_normal_cdf(x) + x * pdf;
}

/* --------------------------------------------------------------------- BatchNorm */
/* Per channel: mean m, rstd r = 1 / sqrt(var + eps), scale = weight * r. */

/* rstd from the biased batch variance (double, as the CPU kernel accumulates it) */
static inline TF_HD float tf_bn_rstd(double var, float eps) {
    return (float)(1.0 / sqrt(var + (double)eps));
}

/* running = (1 - momentum) * running + momentum * stat (stat: batch mean, or the UNBIASED
 * variance) */
static inline TF_HD float tf_bn_running(float running, float momentum, double stat) {
    return (float)((1.0 - momentum) * running + momentum * stat);
}

/* The end of one channel's BatchNorm batch statistics, from its mean mu and the sum v of
 * squared deviations over n values: *mean, *rstd of the biased variance; the running
 * statistics *rm, *rv (both, or both NULL: untouched) updated with the unbiased one. */
static inline TF_HD void tf_bn_stats_finish(double mu, double v, size_t n, float eps,
                                            float momentum, float *mean, float *rstd, float *rm,
                                            float *rv) {
    const double var = v / (double)n; /* biased: used for normalisation */
    *mean = (float)mu;
    *rstd = tf_bn_rstd(var, eps);
    if (rm && rv) {
        const double unbiased = n > 1 ? v / (double)(n - 1) : var;
        *rm = tf_bn_running(*rm, momentum, mu);
        *rv = tf_bn_running(*rv, momentum, unbiased);
    }
}

/* y = (x - m) * scale + bias, scale = weight * rstd */
static inline TF_HD float tf_bn_affine(float x, float m, float scale, float bias) {
    return (x - m) * scale + bias;
}

/* Training-mode backward. With xhat = (x - m) * r, g = dout * w and means over (B, H, W):
 *   dx = r * (g - mean(g) - xhat * mean(g * xhat))
 * mg = mean(g) = w * sum(dout) / n, mgx = mean(g * xhat) = w * sum(dout * xhat) / n
 * (sums in double, as the CPU kernel accumulates them): */
static inline TF_HD float tf_bn_mean_grad(float w, double sum, double n) {
    return (float)(w * sum / n);
}

/* one term of sum(dout * xhat), in double */
static inline TF_HD double tf_bn_dxhat(float d, float x, float m, float r) {
    return (double)d * ((x - m) * r);
}

/* dx of one element */
static inline TF_HD float tf_bn_backward_dx(float d, float x, float m, float r, float w, float mg,
                                            float mgx) {
    float xhat = (x - m) * r;
    return r * (d * w - mg - xhat * mgx);
}

/* --------------------------------------------------------------------- LayerNorm */
/* Per row: mean m, rstd s (float, from double sums); per channel weight w, bias b. */

/* y = (x - m) * s * w + b */
static inline TF_HD float tf_ln_forward(float x, float m, float s, float w, float b) {
    return (x - m) * s * w + b;
}

/* With g = w * dy, xhat = (x - m) * s, sum_g = mean_c(g), sum_gx = mean_c(g * xhat):
 * dx = (g - sum_g - xhat * sum_gx) * s */
static inline TF_HD float tf_ln_backward_dx(float dy, float x, float m, float s, float w,
                                            float sum_g, float sum_gx) {
    float xhat = (x - m) * s;
    return (w * dy - sum_g - xhat * sum_gx) * s;
}

/* dweight term xhat * dy */
static inline TF_HD float tf_ln_dweight(float dy, float x, float m, float s) {
    return (x - m) * s * dy;
}

/* ----------------------------------------------------------------------- softmax */
/* dx = p * (dy - sum_j p_j dy_j) */
static inline TF_HD float tf_softmax_backward_dx(float p, float dy, float s) {
    return p * (dy - s);
}

/* -------------------------------------------------------------------------- loss */
/* L1: value |y - t|, gradient g * sign(y - t) (0 at y == t), g = scale / n. */
static inline TF_HD float tf_l1_grad(float d, float g) {
    return d > 0 ? g : d < 0 ? -g : 0.f;
}

/* One STFT bin of the magnitude loss | |Y| - |T| |: returns the value and writes
 * d/dY = sign(|Y| - |T|) * gm * Y / |Y| (0 where |Y| = 0) into *dr, *di. */
static inline TF_HD float tf_mag_l1(float yr, float yi, float tr, float ti, float gm, float *dr,
                                    float *di) {
    float my = sqrtf(yr * yr + yi * yi);
    float mt = sqrtf(tr * tr + ti * ti);
    float d = my - mt;
    float gg = d > 0 ? gm : d < 0 ? -gm : 0.f;
    float inv = my > 0 ? gg / my : 0.f;
    *dr = yr * inv, *di = yi * inv;
    return fabsf(d);
}

/* -------------------------------------------------------------------- resampling */
/* 2x2 average of a, b (top row) and c, d (bottom row) */
static inline TF_HD float tf_avg4(float a, float b, float c, float d) {
    return 0.25f * ((a + b) + (c + d));
}

/* Output index o of a x2 bilinear upsampled axis of input length n (align_corners=False):
 * s = max(0, (o + 0.5) / 2 - 0.5); i0 = floor(s), i1 = min(i0 + 1, n - 1), weight of i1
 * is s - i0. For o = 2i: s = i - 0.25 (i >= 1) or 0 (i = 0); for o = 2i + 1: s = i + 0.25. */
static inline TF_HD void tf_up_index(int o, int n, int *i0, int *i1, float *w1) {
    int i = o / 2;
    if (o % 2 == 0) {
        if (i == 0) {
            *i0 = 0, *w1 = 0.f;
        } else {
            *i0 = i - 1, *w1 = 0.75f;
        }
    } else {
        *i0 = i, *w1 = 0.25f;
    }
    *i1 = *i0 + 1 < n ? *i0 + 1 : n - 1;
}

/* ------------------------------------------------------------------ Swin windows */
/* One axis of the rolled map: position r on the map rolled by -s (axis length n, window w)
 * is original position *o = (r + s) % n, window *wi = r / w, place in the window *k = r % w. */
static inline TF_HD void tf_window_axis(int r, int n, int w, int s, int *o, int *wi, int *k) {
    *o = (r + s) % n, *wi = r / w, *k = r % w;
}

/* The two offsets (in floats) of one token of image b from its axis parts (tf_window_axis
 * for time: t, wi, ti; for frequency: f, wj, fj): *iw in win (B*nWt*nWf, wt*wf, C), *ix of
 * the original position (t, f) in x (B, T, F, C). */
static inline TF_HD void tf_window_compose(int b, int t, int wi, int ti, int f, int wj, int fj,
                                           int T, int F, int C, int wt, int wf, size_t *iw,
                                           size_t *ix) {
    const size_t w = ((size_t)b * (T / wt) + wi) * (F / wf) + wj;
    *iw = (w * wt * wf + (size_t)ti * wf + fj) * (size_t)C;
    *ix = (((size_t)b * T + t) * F + f) * (size_t)C;
}

/* Both offsets of position (tr, fr) of image b on the map rolled by (-st, -sf). */
static inline TF_HD void tf_window_offsets(int b, int tr, int fr, int T, int F, int C, int wt,
                                           int wf, int st, int sf, size_t *iw, size_t *ix) {
    int t, wi, ti, f, wj, fj;
    tf_window_axis(tr, T, wt, st, &t, &wi, &ti);
    tf_window_axis(fr, F, wf, sf, &f, &wj, &fj);
    tf_window_compose(b, t, wi, ti, f, wj, fj, T, F, C, wt, wf, iw, ix);
}

/* ---------------------------------------------------- feature map <-> token sequences */
/* Token of map element (b, f, t) of x (B, C, F, T): time_seq (TF_SEQ_TIME) -> tokens
 * (B*F, T, C), else (TF_SEQ_FREQ) (B*T, F, C); in units of C. */
static inline TF_HD size_t tf_seq_token(int b, int f, int t, int F, int T, int time_seq) {
    return time_seq ? ((size_t)b * F + f) * T + t : ((size_t)b * T + t) * F + f;
}

/* ------------------------------------------------------------ spectra and the head */
/* The model head's output activations (model/forward.c): ReLU, or the mask output
 * x0 * sigmoid(z), x0 the input magnitude. */
static inline TF_HD float tf_relu(float z) {
    return z > 0 ? z : 0.f;
}

/* d * relu'(z): d where z > 0, else 0 (also for a NaN z) */
static inline TF_HD float tf_relu_backward(float d, float z) {
    return z > 0 ? d : 0.f;
}

static inline TF_HD float tf_mask_act(float x0, float z) {
    return x0 / (1.f + expf(-z));
}

/* d/dz of tf_mask_act: x0 * sg * (1 - sg), sg = sigmoid(z) (the factor dz is scaled by) */
static inline TF_HD float tf_mask_act_grad(float x0, float z) {
    float sg = 1.f / (1.f + expf(-z));
    return x0 * sg * (1.f - sg);
}

#endif
