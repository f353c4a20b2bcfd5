/* nn.Linear with OpenBLAS sgemm (see nn/attn.h). */
#include <cblas.h>
#include <stddef.h>

#include "nn/attn.h"

#define LIN_OBLOCK 64

// out (N, OC), inp (N, IC), weight (OC, IC), bias (OC) or NULL
void tf_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N,
                       int IC, int OC) {
    if (N <= 0 || OC <= 0) return;
    float beta = 0.f;
    if (bias) {
#pragma omp parallel for schedule(static) if ((size_t)N * OC > 65536)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] = bias[o];
        beta = 1.f;
    }
    if (IC <= 0) {
        if (!bias)
            for (size_t i = 0; i < (size_t)N * OC; i++) out[i] = 0.f;
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1.f, inp, IC, weight, IC, beta,
                out, OC);
}

// dinp (N, IC) += dout @ W, dweight (OC, IC) += dout^T @ inp, dbias (OC) += colsum(dout)
void tf_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int N, int IC, int OC) {
    if (N <= 0 || OC <= 0) return;
    if (IC > 0) {
        if (dinp)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, 1.f, dout, OC, weight,
                        IC, 1.f, dinp, IC);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, 1.f, dout, OC, inp, IC, 1.f,
                    dweight, IC);
    }
    if (dbias) {
        /* blocks of output channels, rows summed by one thread: contiguous, no races */
        int nblk = (OC + LIN_OBLOCK - 1) / LIN_OBLOCK;
#pragma omp parallel for schedule(static) if ((size_t)N * OC > 65536)
        for (int bk = 0; bk < nblk; bk++) {
            int o0 = bk * LIN_OBLOCK, o1 = o0 + LIN_OBLOCK < OC ? o0 + LIN_OBLOCK : OC;
            float acc[LIN_OBLOCK] = {0};
            for (int n = 0; n < N; n++) {
                const float *dy = dout + (size_t)n * OC;
                for (int o = o0; o < o1; o++) acc[o - o0] += dy[o];
            }
            for (int o = o0; o < o1; o++) dbias[o] += acc[o - o0];
        }
    }
}
