#include "nn/act.h"

#include "nn/clones.h"
#include "nn/elem.h"

/* GELU, exact-erf form; the per-element math (tf_gelu, tf_gelu_grad) is in nn/elem.h. */

enum { CHUNK = 4096 };

TF_CLONES void tf_gelu_forward(float *out, const float *inp, size_t n) {
    const size_t nc = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t c = 0; c < nc; c++) {
        const size_t end = (c + 1) * CHUNK < n ? (c + 1) * CHUNK : n;
#pragma omp simd
        for (size_t i = c * CHUNK; i < end; i++) {
            out[i] = tf_gelu(inp[i]);
        }
    }
}

TF_CLONES void tf_bn_gelu(float *out, const float *inp, size_t n, float mean, float rstd,
                          float weight, float bias) {
    const float scale = weight * rstd;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        out[i] = tf_gelu(tf_bn_affine(inp[i], mean, scale, bias));
    }
}

TF_CLONES void tf_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    const size_t nc = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t c = 0; c < nc; c++) {
        const size_t end = (c + 1) * CHUNK < n ? (c + 1) * CHUNK : n;
#pragma omp simd
        for (size_t i = c * CHUNK; i < end; i++) {
            dinp[i] += dout[i] * tf_gelu_grad(inp[i]);
        }
    }
}
