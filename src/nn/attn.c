/* Softmax and the multi-head self-attention core (see nn/attn.h). Attention is
 * parallelised over (sequence, head) pairs; per pair the L x L work is done with plain
 * loops (no sgemm inside the OpenMP region: the OpenBLAS here is the pthread build). */
#include <math.h>
#include <stddef.h>

#include "nn/attn.h"
#include "nn/elem.h"

/* sequences per backward chunk: bounds the workspace to ATTN_CHUNK*H*L*L floats */
#define ATTN_CHUNK 64

static void softmax_row(float *y, const float *x, int L) {
    float mx = -INFINITY;
    for (int j = 0; j < L; j++) mx = x[j] > mx ? x[j] : mx;
    float s = 0.f;
    for (int j = 0; j < L; j++) {
        y[j] = expf(x[j] - mx);
        s += y[j];
    }
    float inv = 1.f / s;
    for (int j = 0; j < L; j++) y[j] *= inv;
}

// out (N, L), inp (N, L)
void tf_softmax_forward(float *out, const float *inp, int N, int L) {
#pragma omp parallel for schedule(static) if ((size_t)N * L > 65536)
    for (int n = 0; n < N; n++) softmax_row(out + (size_t)n * L, inp + (size_t)n * L, L);
}

// dinp (N, L) +=, dout (N, L), p (N, L)
void tf_softmax_backward(float *dinp, const float *dout, const float *p, int N, int L) {
#pragma omp parallel for schedule(static) if ((size_t)N * L > 65536)
    for (int n = 0; n < N; n++) {
        const float *pr = p + (size_t)n * L, *dy = dout + (size_t)n * L;
        float *dx = dinp + (size_t)n * L;
        float s = 0.f;
        for (int j = 0; j < L; j++) s += pr[j] * dy[j];
        for (int j = 0; j < L; j++) dx[j] += tf_softmax_backward_dx(pr[j], dy[j], s);
    }
}

static inline float dot(const float *restrict a, const float *restrict b, int D) {
    float s = 0.f;
    for (int d = 0; d < D; d++) s += a[d] * b[d];
    return s;
}

// out (N, L, C), att (N, H, L, L), qkv (N, L, 3C), bias_table (R, H), bias_index (L, L),
// mask (nW, L, L)
void tf_attention_forward(float *out, float *att, const float *qkv, const float *bias_table,
                          const int *bias_index, const float *mask, int nW, int N, int L, int C,
                          int H) {
    const int D = C / H, C3 = 3 * C;
    const float scale = 1.f / sqrtf((float)D);
    const size_t LL = (size_t)L * L;
    const int NH = N * H;
#pragma omp parallel for schedule(static) if ((size_t)NH * LL * D > 32768)
    for (int nh = 0; nh < NH; nh++) {
        const int n = nh / H, h = nh % H;
        const float *base = qkv + (size_t)n * L * C3 + (size_t)h * D;
        float *P = att + (size_t)nh * LL;
        const float *M = mask ? mask + (size_t)(n % nW) * LL : NULL;
        for (int i = 0; i < L; i++) {
            const float *q = base + (size_t)i * C3;
            float *row = P + (size_t)i * L;
            for (int j = 0; j < L; j++) {
                float s = scale * dot(q, base + (size_t)j * C3 + C, D);
                if (bias_table) s += bias_table[(size_t)bias_index[(size_t)i * L + j] * H + h];
                if (M) s += M[(size_t)i * L + j];
                row[j] = s;
            }
            softmax_row(row, row, L);
            float *o = out + ((size_t)n * L + i) * C + (size_t)h * D;
            for (int d = 0; d < D; d++) o[d] = 0.f;
            for (int j = 0; j < L; j++) {
                const float p = row[j], *v = base + (size_t)j * C3 + 2 * C;
                for (int d = 0; d < D; d++) o[d] += p * v[d];
            }
        }
    }
}

size_t tf_attention_workspace_floats(int N, int L, int H) {
    size_t chunk = N < ATTN_CHUNK ? (size_t)(N > 0 ? N : 0) : ATTN_CHUNK;
    return chunk * (size_t)H * L * L;
}

// dqkv (N, L, 3C) +=, dbias_table (R, H) +=, dout (N, L, C), qkv (N, L, 3C), att (N, H, L, L),
// bias_index (L, L), workspace (min(N, 64), H, L, L)
void tf_attention_backward(float *dqkv, float *dbias_table, const float *dout, const float *qkv,
                           const float *att, const int *bias_index, int N, int L, int C, int H,
                           float *workspace) {
    const int D = C / H, C3 = 3 * C;
    const float scale = 1.f / sqrtf((float)D);
    const size_t LL = (size_t)L * L;
    for (int n0 = 0; n0 < N; n0 += ATTN_CHUNK) {
        const int nc = N - n0 < ATTN_CHUNK ? N - n0 : ATTN_CHUNK;
        const int NH = nc * H;
#pragma omp parallel for schedule(static) if ((size_t)NH * LL * D > 32768)
        for (int t = 0; t < NH; t++) {
            const int n = n0 + t / H, h = t % H;
            const size_t off = (size_t)n * L * C3 + (size_t)h * D;
            const float *base = qkv + off;
            float *dbase = dqkv + off;
            const float *P = att + ((size_t)n * H + h) * LL;
            float *dS = workspace + (size_t)t * LL;
            for (int i = 0; i < L; i++) {
                const float *dO = dout + ((size_t)n * L + i) * C + (size_t)h * D;
                const float *Pi = P + (size_t)i * L;
                float *dSi = dS + (size_t)i * L;
                float s = 0.f;
                for (int j = 0; j < L; j++) {
                    /* dP[i,j] = dO_i . v_j ; dv_j += P[i,j] dO_i */
                    const float *v = base + (size_t)j * C3 + 2 * C;
                    float *dv = dbase + (size_t)j * C3 + 2 * C;
                    const float pij = Pi[j];
                    dSi[j] = dot(dO, v, D);
                    s += pij * dSi[j];
                    for (int d = 0; d < D; d++) dv[d] += pij * dO[d];
                }
                const float *q = base + (size_t)i * C3;
                float *dq = dbase + (size_t)i * C3;
                for (int j = 0; j < L; j++) {
                    /* softmax backward, then the scaled q.k product */
                    const float ds = Pi[j] * (dSi[j] - s);
                    dSi[j] = ds;
                    const float *k = base + (size_t)j * C3 + C;
                    float *dk = dbase + (size_t)j * C3 + C;
                    const float a = scale * ds;
                    for (int d = 0; d < D; d++) {
                        dq[d] += a * k[d];
                        dk[d] += a * q[d];
                    }
                }
            }
        }
        if (dbias_table) {
            /* d(bias[h,i,j]) = dS summed over the chunk's sequences; one thread per head,
             * so the scatter through the index has no races and a fixed order. */
#pragma omp parallel for schedule(static) if ((size_t)NH * LL > 32768)
            for (int h = 0; h < H; h++)
                for (int c = 0; c < nc; c++) {
                    const float *dS = workspace + ((size_t)c * H + h) * LL;
                    for (size_t ij = 0; ij < LL; ij++)
                        dbias_table[(size_t)bias_index[ij] * H + h] += dS[ij];
                }
        }
    }
}
