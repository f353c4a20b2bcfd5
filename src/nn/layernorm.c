/* LayerNorm over the last dimension (see nn/attn.h). */
#include <stddef.h>

#include "nn/attn.h"
#include "nn/elem.h"

// out (N, C), mean (N), rstd (N), inp (N, C), weight (C), bias (C)
void tf_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int N, int C) {
#pragma omp parallel for schedule(static) if ((size_t)N * C > 32768)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        double m = 0.0;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        double v = 0.0;
        for (int c = 0; c < C; c++) {
            double d = x[c] - m;
            v += d * d;
        }
        v /= C;
        float s = tf_bn_rstd(v, LAYERNORM_EPS);
        float mf = (float)m;
        for (int c = 0; c < C; c++) y[c] = tf_ln_forward(x[c], mf, s, weight[c], bias[c]);
        mean[n] = mf;
        rstd[n] = s;
    }
}

#define LN_CBLOCK 32

// dinp (N, C) +=, dweight (C) +=, dbias (C) +=, dout (N, C), inp (N, C), weight (C),
// mean (N), rstd (N)
void tf_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean,
                           const float *rstd, int N, int C) {
    int par = (size_t)N * C > 32768;
    /* dinp: rows are independent. */
#pragma omp parallel for schedule(static) if (par)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        float *dx = dinp + (size_t)n * C;
        float m = mean[n], s = rstd[n];
        float sum_g = 0.f, sum_gx = 0.f; /* g = w * dy, xhat = (x - m) * s */
        for (int c = 0; c < C; c++) {
            float g = weight[c] * dy[c];
            sum_g += g;
            sum_gx += g * (x[c] - m) * s;
        }
        sum_g /= (float)C;
        sum_gx /= (float)C;
        for (int c = 0; c < C; c++)
            dx[c] += tf_ln_backward_dx(dy[c], x[c], m, s, weight[c], sum_g, sum_gx);
    }
    /* dweight, dbias: blocks of channels, each summed over all rows by one thread
     * (no races, deterministic). */
    int nblk = (C + LN_CBLOCK - 1) / LN_CBLOCK;
#pragma omp parallel for schedule(static) if (par)
    for (int bk = 0; bk < nblk; bk++) {
        int c0 = bk * LN_CBLOCK, c1 = c0 + LN_CBLOCK < C ? c0 + LN_CBLOCK : C;
        float aw[LN_CBLOCK] = {0}, ab[LN_CBLOCK] = {0};
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
            float m = mean[n], s = rstd[n];
            for (int c = c0; c < c1; c++) {
                aw[c - c0] += tf_ln_dweight(dy[c], x[c], m, s);
                ab[c - c0] += dy[c];
            }
        }
        for (int c = c0; c < c1; c++) {
            dweight[c] += aw[c - c0];
            dbias[c] += ab[c - c0];
        }
    }
}
