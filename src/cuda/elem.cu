/* CUDA kernels of the model's own layers (see src/cuda/elem.h): GELU, BatchNorm2d (+GELU),
 * LayerNorm, softmax, pooling/upsampling, Swin window partition/reverse, the L1 and STFT
 * magnitude losses, a fused Adam, and the model's glue (sums, channel copies, magnitude and
 * phase, subbands, crops, the head's activation). The per-element math is nn/elem.h and
 * optim/optim_elem.h, the code the CPU kernels run.
 *
 * Compiles on its own (no GPU needed):
 *   nvcc -std=c++17 -O2 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
 *        -Isrc -Iinclude -c src/cuda/elem.cu -o /tmp/elem.o
 */
#include <cuda_runtime.h>

#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "cuda/elem.h"
#include "nn/attn.h" /* LAYERNORM_EPS */
}
#include "dsp/dsp_elem.h"
#include "nn/elem.h"
#include "optim/optim_elem.h"

namespace {

constexpr int NT = 256; /* threads per block */

inline cudaStream_t as_stream(void *s) {
    return static_cast<cudaStream_t>(s);
}

/* blocks for a grid-stride loop over n items */
inline unsigned grid_for(size_t n) {
    size_t b = (n + NT - 1) / NT;
    return (unsigned)(b < 65536 ? (b ? b : 1) : 65536);
}

inline int launched() {
    return (int)cudaGetLastError();
}

__device__ inline double warp_sum(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

__device__ inline float warp_sum_f(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ inline float warp_max_f(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* sum of v over the block (BS threads, a multiple of 32, at most 1024), returned to every
 * thread; sh: BS/32 doubles of shared memory (reusable right after the call returns) */
template <int BS> __device__ double block_sum(double v, double *sh) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    v = warp_sum(v);
    __syncthreads(); /* earlier readers of sh are done */
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    if (wid == 0) {
        v = lane < BS / 32 ? sh[lane] : 0.0;
        v = warp_sum(v);
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    return sh[0];
}

/* ------------------------------------------------------------------------ GELU */
__global__ void gelu_fwd_k(float *out, const float *inp, size_t n) {
    for (size_t i = blockIdx.x * (size_t)NT + threadIdx.x; i < n; i += (size_t)gridDim.x * NT)
        out[i] = tf_gelu(inp[i]);
}

__global__ void gelu_bwd_k(float *dinp, const float *dout, const float *inp, size_t n) {
    for (size_t i = blockIdx.x * (size_t)NT + threadIdx.x; i < n; i += (size_t)gridDim.x * NT)
        dinp[i] += dout[i] * tf_gelu_grad(inp[i]);
}

/* ------------------------------------------------------------------- BatchNorm */
/* One block per channel (the statistics of a channel span the whole batch), so the block
 * is large to keep many loads in flight. */
constexpr int BN_NT = 1024;

// grid C; out, inp (B, C, hw); mean, rstd, running_mean, running_var, weight, bias (C)
__global__ void __launch_bounds__(BN_NT)
    bn_fwd_k(float *out, float *mean, float *rstd, float *running_mean, float *running_var,
             const float *inp, const float *weight, const float *bias, int B, int C, size_t hw,
             float momentum, float eps, int gelu) {
    __shared__ double sh[BN_NT / 32];
    const int c = blockIdx.x;
    const size_t n = (size_t)B * hw;
    double s = 0.0;
    for (int b = 0; b < B; b++) {
        const float *x = inp + ((size_t)b * C + c) * hw;
        for (size_t i = threadIdx.x; i < hw; i += BN_NT) s += x[i];
    }
    const double m = block_sum<BN_NT>(s, sh) / (double)n;
    double v = 0.0;
    for (int b = 0; b < B; b++) {
        const float *x = inp + ((size_t)b * C + c) * hw;
        for (size_t i = threadIdx.x; i < hw; i += BN_NT) {
            double d = x[i] - m;
            v += d * d;
        }
    }
    v = block_sum<BN_NT>(v, sh);
    /* every thread needs (mf, r); thread 0 stores them and updates the running stats */
    const int t0 = threadIdx.x == 0 && running_mean && running_var;
    float mf, r;
    tf_bn_stats_finish(m, v, n, eps, momentum, &mf, &r, t0 ? &running_mean[c] : NULL,
                       t0 ? &running_var[c] : NULL);
    if (threadIdx.x == 0) mean[c] = mf, rstd[c] = r;
    const float w = weight ? weight[c] : 1.f, bb = bias ? bias[c] : 0.f, scale = w * r;
    for (int b = 0; b < B; b++) {
        const float *x = inp + ((size_t)b * C + c) * hw;
        float *o = out + ((size_t)b * C + c) * hw;
        for (size_t i = threadIdx.x; i < hw; i += BN_NT) {
            float y = tf_bn_affine(x[i], mf, scale, bb);
            o[i] = gelu ? tf_gelu(y) : y;
        }
    }
}

// grid C; dinp, dout, inp (B, C, hw); dweight, dbias, weight, mean, rstd (C)
__global__ void __launch_bounds__(BN_NT)
    bn_bwd_k(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
             const float *weight, const float *mean, const float *rstd, int B, int C, size_t hw) {
    __shared__ double sh[BN_NT / 32];
    const int c = blockIdx.x;
    const size_t n = (size_t)B * hw;
    const float m = mean[c], r = rstd[c], w = weight ? weight[c] : 1.f;
    double sd = 0.0, sdx = 0.0; // sum(dout), sum(dout * xhat)
    for (int b = 0; b < B; b++) {
        const float *x = inp + ((size_t)b * C + c) * hw;
        const float *d = dout + ((size_t)b * C + c) * hw;
        for (size_t i = threadIdx.x; i < hw; i += BN_NT) {
            sd += d[i];
            sdx += tf_bn_dxhat(d[i], x[i], m, r);
        }
    }
    sd = block_sum<BN_NT>(sd, sh);
    sdx = block_sum<BN_NT>(sdx, sh);
    if (threadIdx.x == 0) {
        if (dweight && weight) dweight[c] += (float)sdx;
        if (dbias) dbias[c] += (float)sd;
    }
    if (!dinp) return;
    const float mg = tf_bn_mean_grad(w, sd, (double)n), mgx = tf_bn_mean_grad(w, sdx, (double)n);
    for (int b = 0; b < B; b++) {
        const float *x = inp + ((size_t)b * C + c) * hw;
        const float *d = dout + ((size_t)b * C + c) * hw;
        float *dx = dinp + ((size_t)b * C + c) * hw;
        for (size_t i = threadIdx.x; i < hw; i += BN_NT)
            dx[i] += tf_bn_backward_dx(d[i], x[i], m, r, w, mg, mgx);
    }
}

// out, inp (B, C, hw) flat (total elements); weight, bias, running_mean, running_var (C)
__global__ void bn_eval_k(float *out, const float *inp, const float *weight, const float *bias,
                          const float *running_mean, const float *running_var, int C, size_t hw,
                          size_t total, float eps, int gelu) {
    for (size_t i = blockIdx.x * (size_t)NT + threadIdx.x; i < total; i += (size_t)gridDim.x * NT) {
        const int c = (int)((i / hw) % (size_t)C);
        const float r = tf_bn_rstd(running_var[c], eps);
        const float scale = (weight ? weight[c] : 1.f) * r, shift = bias ? bias[c] : 0.f;
        float y = tf_bn_affine(inp[i], running_mean[c], scale, shift);
        out[i] = gelu ? tf_gelu(y) : y;
    }
}

// grid C; dinp, dout, inp (B, C, hw); dweight, dbias, weight, running_mean, running_var (C)
__global__ void __launch_bounds__(BN_NT)
    bn_eval_bwd_k(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                  const float *weight, const float *running_mean, const float *running_var, int B,
                  int C, size_t hw, float eps) {
    __shared__ double sh[BN_NT / 32];
    const int c = blockIdx.x;
    const float r = tf_bn_rstd(running_var[c], eps);
    const float m = running_mean[c], g = (weight ? weight[c] : 1.f) * r;
    double sd = 0.0, sdx = 0.0;
    for (int b = 0; b < B; b++) {
        const float *x = inp + ((size_t)b * C + c) * hw;
        const float *d = dout + ((size_t)b * C + c) * hw;
        float *dx = dinp ? dinp + ((size_t)b * C + c) * hw : NULL;
        for (size_t i = threadIdx.x; i < hw; i += BN_NT) {
            sd += d[i];
            sdx += tf_bn_dxhat(d[i], x[i], m, r);
            if (dx) dx[i] += d[i] * g;
        }
    }
    sd = block_sum<BN_NT>(sd, sh);
    sdx = block_sum<BN_NT>(sdx, sh);
    if (threadIdx.x == 0) {
        if (dweight && weight) dweight[c] += (float)sdx;
        if (dbias) dbias[c] += (float)sd;
    }
}

/* ------------------------------------------------------------------- LayerNorm */
constexpr int ROWS = NT / 32; /* rows per block: one warp each */

// out (N, C), mean, rstd (N), inp (N, C), weight, bias (C)
__global__ void ln_fwd_k(float *out, float *mean, float *rstd, const float *inp,
                         const float *weight, const float *bias, int N, int C) {
    const int n = blockIdx.x * ROWS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (n >= N) return;
    const float *x = inp + (size_t)n * C;
    float *y = out + (size_t)n * C;
    double m = 0.0;
    for (int c = lane; c < C; c += 32) m += x[c];
    m = __shfl_sync(0xffffffffu, warp_sum(m), 0) / C;
    double v = 0.0;
    for (int c = lane; c < C; c += 32) {
        double d = x[c] - m;
        v += d * d;
    }
    v = __shfl_sync(0xffffffffu, warp_sum(v), 0) / C;
    const float s = tf_bn_rstd(v, LAYERNORM_EPS), mf = (float)m;
    for (int c = lane; c < C; c += 32) y[c] = tf_ln_forward(x[c], mf, s, weight[c], bias[c]);
    if (lane == 0) mean[n] = mf, rstd[n] = s;
}

// dinp (N, C) +=; dout, inp (N, C); weight (C); mean, rstd (N)
__global__ void ln_bwd_dx_k(float *dinp, const float *dout, const float *inp, const float *weight,
                            const float *mean, const float *rstd, int N, int C) {
    const int n = blockIdx.x * ROWS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (n >= N) return;
    const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
    float *dx = dinp + (size_t)n * C;
    const float m = mean[n], s = rstd[n];
    float sum_g = 0.f, sum_gx = 0.f; /* g = w * dy, xhat = (x - m) * s */
    for (int c = lane; c < C; c += 32) {
        float g = weight[c] * dy[c];
        sum_g += g;
        sum_gx += g * (x[c] - m) * s;
    }
    sum_g = warp_sum_f(sum_g) / (float)C;
    sum_gx = warp_sum_f(sum_gx) / (float)C;
    for (int c = lane; c < C; c += 32)
        dx[c] += tf_ln_backward_dx(dy[c], x[c], m, s, weight[c], sum_g, sum_gx);
}

/* rows per partial sum of dweight/dbias: at least 256, and at most 4096 chunks (the grid's
 * y dimension is limited to 65535) */
inline int ln_chunk_rows(int N) {
    int r = (N + 4095) / 4096;
    return r > 256 ? r : 256;
}

inline int ln_chunks(int N) {
    return (N + ln_chunk_rows(N) - 1) / ln_chunk_rows(N);
}

/* grid (ceil(C/32), chunks), block (32, 8): part (chunks, 2, C) = per chunk of `rows` rows,
 * sum of xhat * dy and of dy per channel */
__global__ void ln_bwd_dw_part_k(float *part, const float *dout, const float *inp,
                                 const float *mean, const float *rstd, int N, int C, int rows) {
    __shared__ float shw[8][33], shb[8][33];
    const int c = blockIdx.x * 32 + threadIdx.x, k = blockIdx.y;
    const int n0 = k * rows, n1 = n0 + rows < N ? n0 + rows : N;
    float aw = 0.f, ab = 0.f;
    if (c < C)
        for (int n = n0 + threadIdx.y; n < n1; n += 8) {
            const float dy = dout[(size_t)n * C + c];
            aw += tf_ln_dweight(dy, inp[(size_t)n * C + c], mean[n], rstd[n]);
            ab += dy;
        }
    shw[threadIdx.y][threadIdx.x] = aw, shb[threadIdx.y][threadIdx.x] = ab;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        for (int j = 1; j < 8; j++) aw += shw[j][threadIdx.x], ab += shb[j][threadIdx.x];
        part[((size_t)k * 2) * C + c] = aw;
        part[((size_t)k * 2 + 1) * C + c] = ab;
    }
}

/* dweight, dbias (C) += the chunk partials summed in chunk order */
__global__ void ln_bwd_dw_sum_k(float *dweight, float *dbias, const float *part, int chunks,
                                int C) {
    const int c = blockIdx.x * NT + threadIdx.x;
    if (c >= C) return;
    float aw = 0.f, ab = 0.f;
    for (int k = 0; k < chunks; k++)
        aw += part[((size_t)k * 2) * C + c], ab += part[((size_t)k * 2 + 1) * C + c];
    dweight[c] += aw;
    dbias[c] += ab;
}

/* ---------------------------------------------------------------------- softmax */
// out, inp (N, L): one warp per row
__global__ void softmax_fwd_k(float *out, const float *inp, int N, int L) {
    const int n = blockIdx.x * ROWS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (n >= N) return;
    const float *x = inp + (size_t)n * L;
    float *y = out + (size_t)n * L;
    float mx = -INFINITY;
    for (int j = lane; j < L; j += 32) mx = fmaxf(mx, x[j]);
    mx = warp_max_f(mx);
    float s = 0.f;
    for (int j = lane; j < L; j += 32) {
        float e = expf(x[j] - mx);
        y[j] = e;
        s += e;
    }
    const float inv = 1.f / warp_sum_f(s);
    for (int j = lane; j < L; j += 32) y[j] *= inv;
}

// dinp (N, L) +=, dout, p (N, L)
__global__ void softmax_bwd_k(float *dinp, const float *dout, const float *p, int N, int L) {
    const int n = blockIdx.x * ROWS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (n >= N) return;
    const float *pr = p + (size_t)n * L, *dy = dout + (size_t)n * L;
    float *dx = dinp + (size_t)n * L;
    float s = 0.f;
    for (int j = lane; j < L; j += 32) s += pr[j] * dy[j];
    s = warp_sum_f(s);
    for (int j = lane; j < L; j += 32) dx[j] += tf_softmax_backward_dx(pr[j], dy[j], s);
}

/* ------------------------------------------------------------------ resampling */
// out (planes, H/2, W/2), inp (planes, H, W); total = planes * (H/2) * (W/2)
__global__ void pool_fwd_k(float *out, const float *inp, int H, int W, size_t total) {
    const int Ho = H / 2, Wo = W / 2;
    for (size_t o = blockIdx.x * (size_t)NT + threadIdx.x; o < total; o += (size_t)gridDim.x * NT) {
        const int j = (int)(o % Wo), i = (int)((o / Wo) % Ho);
        const size_t p = o / ((size_t)Ho * Wo);
        const float *r0 = inp + (p * H + 2 * i) * W, *r1 = r0 + W;
        out[o] = tf_avg4(r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]);
    }
}

// dinp (planes, H, W) +=, dout (planes, H/2, W/2); total = planes * H * W
__global__ void pool_bwd_k(float *dinp, const float *dout, int H, int W, size_t total) {
    const int Ho = H / 2, Wo = W / 2;
    for (size_t i = blockIdx.x * (size_t)NT + threadIdx.x; i < total; i += (size_t)gridDim.x * NT) {
        const int x = (int)(i % W), y = (int)((i / W) % H);
        const size_t p = i / ((size_t)H * W);
        if (y / 2 < Ho && x / 2 < Wo) dinp[i] += 0.25f * dout[(p * Ho + y / 2) * Wo + x / 2];
    }
}

// out (planes, 2H, 2W), inp (planes, H, W); total = planes * 4HW
__global__ void up_fwd_k(float *out, const float *inp, int H, int W, size_t total) {
    const int Ho = 2 * H, Wo = 2 * W;
    for (size_t o = blockIdx.x * (size_t)NT + threadIdx.x; o < total; o += (size_t)gridDim.x * NT) {
        const int ox = (int)(o % Wo), oy = (int)((o / Wo) % Ho);
        const size_t p = o / ((size_t)Ho * Wo);
        int y0, y1, x0, x1;
        float wy1, wx1;
        tf_up_index(oy, H, &y0, &y1, &wy1);
        tf_up_index(ox, W, &x0, &x1, &wx1);
        const float wy0 = 1.f - wy1, wx0 = 1.f - wx1;
        const float *r0 = inp + (p * H + y0) * W, *r1 = inp + (p * H + y1) * W;
        out[o] = wy0 * (wx0 * r0[x0] + wx1 * r0[x1]) + wy1 * (wx0 * r1[x0] + wx1 * r1[x1]);
    }
}

/* weight of input index i in output index o of a x2 upsampled axis of input length n */
__device__ inline float up_weight(int o, int n, int i) {
    int i0, i1;
    float w1;
    tf_up_index(o, n, &i0, &i1, &w1);
    return (i0 == i ? 1.f - w1 : 0.f) + (i1 == i ? w1 : 0.f);
}

// dinp (planes, H, W) +=, dout (planes, 2H, 2W); total = planes * HW. Input index i is a tap
// of the outputs 2i-2 .. 2i+3 only (tf_up_index), so each input gathers a 6x6 window.
__global__ void up_bwd_k(float *dinp, const float *dout, int H, int W, size_t total) {
    const int Ho = 2 * H, Wo = 2 * W;
    for (size_t i = blockIdx.x * (size_t)NT + threadIdx.x; i < total; i += (size_t)gridDim.x * NT) {
        const int ix = (int)(i % W), iy = (int)((i / W) % H);
        const size_t p = i / ((size_t)H * W);
        const float *dy = dout + p * Ho * Wo;
        float acc = 0.f;
        for (int oy = max(0, 2 * iy - 2); oy <= min(Ho - 1, 2 * iy + 3); oy++) {
            const float ay = up_weight(oy, H, iy);
            if (ay == 0.f) continue;
            for (int ox = max(0, 2 * ix - 2); ox <= min(Wo - 1, 2 * ix + 3); ox++) {
                const float ax = up_weight(ox, W, ix);
                if (ax != 0.f) acc += ay * ax * dy[(size_t)oy * Wo + ox];
            }
        }
        dinp[i] += acc;
    }
}

// out (B, C1+C2, hw) = [a (B, C1, hw), b (B, C2, hw)]; total = B * (C1+C2) * hw
__global__ void concat_fwd_k(float *out, const float *a, const float *b, int C1, int C2, size_t hw,
                             size_t total) {
    const int C = C1 + C2;
    for (size_t e = blockIdx.x * (size_t)NT + threadIdx.x; e < total; e += (size_t)gridDim.x * NT) {
        const size_t i = e % hw, p = e / hw;
        const int c = (int)(p % C);
        const size_t k = p / C;
        out[e] = c < C1 ? a[(k * C1 + c) * hw + i] : b[(k * C2 + c - C1) * hw + i];
    }
}

// da (B, C1, hw) +=, db (B, C2, hw) += the parts of dout (B, C1+C2, hw); either may be NULL
__global__ void concat_bwd_k(float *da, float *db, const float *dout, int C1, int C2, size_t hw,
                             size_t total) {
    const int C = C1 + C2;
    for (size_t e = blockIdx.x * (size_t)NT + threadIdx.x; e < total; e += (size_t)gridDim.x * NT) {
        const size_t i = e % hw, p = e / hw;
        const int c = (int)(p % C);
        const size_t k = p / C;
        if (c < C1) {
            if (da) da[(k * C1 + c) * hw + i] += dout[e];
        } else if (db) {
            db[(k * C2 + c - C1) * hw + i] += dout[e];
        }
    }
}

/* ---------------------------------------------------------------- Swin windows */
/* to_win: win (+)= x rolled and partitioned; else x (+)= the inverse permutation of win.
 * One thread per element of the (rolled) map (B, T, F, C). */
__global__ void window_k(float *dst, const float *src, int T, int F, int C, int wt, int wf, int st,
                         int sf, int to_win, int acc, size_t total) {
    for (size_t e = blockIdx.x * (size_t)NT + threadIdx.x; e < total; e += (size_t)gridDim.x * NT) {
        const int c = (int)(e % C);
        const size_t pos = e / C;
        const int fr = (int)(pos % F), tr = (int)((pos / F) % T), b = (int)(pos / ((size_t)F * T));
        size_t iw, ix;
        tf_window_offsets(b, tr, fr, T, F, C, wt, wf, st, sf, &iw, &ix);
        const size_t id = (to_win ? iw : ix) + c, is = (to_win ? ix : iw) + c;
        if (acc)
            dst[id] += src[is];
        else
            dst[id] = src[is];
    }
}

/* ------------------------------------------------- feature map <-> token sequences */
/* to_tok: tok (+)= x (B, C, F, T) rearranged; else x (+)= tok. One thread per element of
 * the map. */
__global__ void map_seq_k(float *tok, float *x, const float *src, int C, int F, int T, int time_seq,
                          int to_tok, int acc, size_t total) {
    for (size_t e = blockIdx.x * (size_t)NT + threadIdx.x; e < total; e += (size_t)gridDim.x * NT) {
        const int t = (int)(e % T), f = (int)((e / T) % F), c = (int)((e / ((size_t)T * F)) % C);
        const int b = (int)(e / ((size_t)T * F * C));
        const size_t o = tf_seq_token(b, f, t, F, T, time_seq) * C + c;
        float *d = to_tok ? tok + o : x + e;
        const float v = to_tok ? src[e] : src[o];
        if (acc)
            *d += v;
        else
            *d = v;
    }
}

/* dst (B, A2, A1, C) (+)= src (B, A1, A2, C) with the middle axes swapped; one thread per
 * element of dst */
__global__ void swap_mid_k(float *dst, const float *src, int A1, int A2, int C, int acc,
                           size_t total) {
    for (size_t e = blockIdx.x * (size_t)NT + threadIdx.x; e < total; e += (size_t)gridDim.x * NT) {
        const int c = (int)(e % C), a1 = (int)((e / C) % A1),
                  a2 = (int)((e / ((size_t)C * A1)) % A2);
        const size_t b = e / ((size_t)C * A1 * A2);
        const float v = src[((b * A1 + a1) * A2 + a2) * C + c];
        if (acc)
            dst[e] += v;
        else
            dst[e] = v;
    }
}

/* ------------------------------------------------------------------------- loss */
constexpr int RED_BLOCKS = 1024; /* partial sums of one loss reduction */

// part (gridDim.x) = per block sum |y - t|; dy (n) = sign(y - t) * g
__global__ void l1_k(const float *y, const float *t, size_t n, float g, float *dy, double *part) {
    __shared__ double sh[NT / 32];
    double s = 0.0;
    for (size_t i = blockIdx.x * (size_t)NT + threadIdx.x; i < n; i += (size_t)gridDim.x * NT) {
        float d = y[i] - t[i];
        s += fabsf(d);
        dy[i] = tf_l1_grad(d, g);
    }
    s = block_sum<NT>(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

// part (gridDim.x) = per block sum | |Y| - |T| |; dr, di (m)
__global__ void mag_l1_k(const float *yr, const float *yi, const float *tr, const float *ti,
                         size_t m, float gm, float *dr, float *di, double *part) {
    __shared__ double sh[NT / 32];
    double s = 0.0;
    for (size_t i = blockIdx.x * (size_t)NT + threadIdx.x; i < m; i += (size_t)gridDim.x * NT)
        s += tf_mag_l1(yr[i], yi[i], tr[i], ti[i], gm, &dr[i], &di[i]);
    s = block_sum<NT>(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

/* *out = sum of part (k) / div, one block */
__global__ void sum_parts_k(double *out, const double *part, int k, double div) {
    __shared__ double sh[NT / 32];
    double s = 0.0;
    for (int i = threadIdx.x; i < k; i += NT) s += part[i];
    s = block_sum<NT>(s, sh);
    if (threadIdx.x == 0) *out = s / div;
}

// part (gridDim.x) = per block sum g^2 in double
__global__ void sumsq_k(const float *g, size_t n, double *part) {
    __shared__ double sh[NT / 32];
    double s = 0.0;
    for (size_t i = blockIdx.x * (size_t)NT + threadIdx.x; i < n; i += (size_t)gridDim.x * NT)
        s += (double)g[i] * g[i];
    s = block_sum<NT>(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

/* *out = sqrt(sum of part (k)), one block */
__global__ void sqrt_sum_k(double *out, const double *part, int k) {
    __shared__ double sh[NT / 32];
    double s = 0.0;
    for (int i = threadIdx.x; i < k; i += NT) s += part[i];
    s = block_sum<NT>(s, sh);
    if (threadIdx.x == 0) *out = sqrt(s);
}

__global__ void scale_k(float *g, size_t n, float scale) {
    for (size_t i = blockIdx.x * (size_t)NT + threadIdx.x; i < n; i += (size_t)gridDim.x * NT)
        g[i] *= scale;
}

__global__ void ema_k(float *ema, const float *params, size_t n, float decay) {
    for (size_t i = blockIdx.x * (size_t)NT + threadIdx.x; i < n; i += (size_t)gridDim.x * NT)
        ema[i] = tf_ema(ema[i], params[i], decay);
}

/* ------------------------------------------------------------------------- Adam */
__global__ void adam_k(float *params, const float *grads, float *m, float *v, size_t n,
                       tf_adam_coefs k) {
    for (size_t i = blockIdx.x * (size_t)NT + threadIdx.x; i < n; i += (size_t)gridDim.x * NT)
        tf_adam_update(&params[i], &m[i], &v[i], grads[i], &k);
}

/* ------------------------------------------------------------------ model glue */
__global__ void add_k(float *y, const float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)NT + threadIdx.x; i < n; i += (size_t)gridDim.x * NT)
        y[i] += x[i];
}

__global__ void add2_k(float *out, const float *a, const float *b, size_t n) {
    for (size_t i = blockIdx.x * (size_t)NT + threadIdx.x; i < n; i += (size_t)gridDim.x * NT)
        out[i] = a[i] + b[i];
}

// dst (B, Cd, hw) channels [c0, c0 + Cs) = src (B, Cs, hw); total = B * Cs * hw
__global__ void copy_channels_k(float *dst, int Cd, int c0, const float *src, int Cs, size_t hw,
                                size_t total) {
    for (size_t e = blockIdx.x * (size_t)NT + threadIdx.x; e < total; e += (size_t)gridDim.x * NT) {
        const size_t i = e % hw, p = e / hw;
        const size_t b = p / Cs, c = p % Cs;
        dst[(b * Cd + c0 + c) * hw + i] = src[e];
    }
}

// dst (B, Cd, hw) bf16 channels [c0, c0 + Cs) = bf16(src (B, Cs, hw)); round: src also
// takes the rounded value (the rest of the forward goes on with what was stored)
__global__ void bf16_pack_k(uint16_t *dst, int Cd, int c0, float *src, int Cs, size_t hw,
                            size_t total, int round) {
    for (size_t e = blockIdx.x * (size_t)NT + threadIdx.x; e < total; e += (size_t)gridDim.x * NT) {
        const size_t i = e % hw, p = e / hw;
        const size_t b = p / Cs, c = p % Cs;
        const uint16_t h = tf_elem_f32_to_bf16(src[e]);
        dst[(b * Cd + c0 + c) * hw + i] = h;
        if (round) src[e] = tf_elem_bits_to_f32((uint32_t)h << 16);
    }
}

// dst (n) = (or += with add) the float of src (n) bf16 (fp16 = 0) or binary16 (fp16 = 1)
__global__ void half_unpack_k(float *dst, const uint16_t *src, size_t n, int fp16, int add) {
    for (size_t i = blockIdx.x * (size_t)NT + threadIdx.x; i < n; i += (size_t)gridDim.x * NT) {
        const float v =
            fp16 ? tf_elem_f16_to_f32(src[i]) : tf_elem_bits_to_f32((uint32_t)src[i] << 16);
        dst[i] = add ? dst[i] + v : v;
    }
}

// dst (n) = src (n) rounded to bf16 (fp16 = 0) or binary16 (fp16 = 1)
__global__ void half_pack_k(uint16_t *dst, const float *src, size_t n, int fp16) {
    for (size_t i = blockIdx.x * (size_t)NT + threadIdx.x; i < n; i += (size_t)gridDim.x * NT)
        dst[i] = fp16 ? tf_elem_f32_to_f16(src[i]) : tf_elem_f32_to_bf16(src[i]);
}

// mag, pr, pi (n) (each may be NULL) from re, im (n)
__global__ void magphase_k(float *mag, float *pr, float *pi, const float *re, const float *im,
                           size_t n) {
    for (size_t i = blockIdx.x * (size_t)NT + threadIdx.x; i < n; i += (size_t)gridDim.x * NT) {
        float p, q;
        const float m = tf_magphase_elem(re[i], im[i], &p, &q);
        if (mag) mag[i] = m;
        if (pr) pr[i] = p;
        if (pi) pi[i] = q;
    }
}

// yr, yi, mag (B, S, n); pr, pi (B, n); total = B * S * n
__global__ void combine_fwd_k(float *yr, float *yi, const float *mag, const float *pr,
                              const float *pi, int S, size_t n, size_t total) {
    for (size_t e = blockIdx.x * (size_t)NT + threadIdx.x; e < total; e += (size_t)gridDim.x * NT) {
        const size_t k = e % n, b = e / ((size_t)S * n), j = b * n + k;
        yr[e] = mag[e] * pr[j];
        yi[e] = mag[e] * pi[j];
    }
}

// dmag, dyr, dyi (B, S, n); pr, pi (B, n); total = B * S * n
__global__ void combine_bwd_k(float *dmag, const float *dyr, const float *dyi, const float *pr,
                              const float *pi, int S, size_t n, size_t total) {
    for (size_t e = blockIdx.x * (size_t)NT + threadIdx.x; e < total; e += (size_t)gridDim.x * NT) {
        const size_t k = e % n, b = e / ((size_t)S * n), j = b * n + k;
        dmag[e] += pr[j] * dyr[e] + pi[j] * dyi[e];
    }
}

/* dst (R, dw) from src (R, sw): the first w floats of each row; acc: dst += them (the rest
 * of dst untouched), else dst = them and the rest of dst 0. total = R * dw (subbands: the
 * full band's rows are F*T floats, the subbands' (F-1)*T, the same start). */
__global__ void rows_k(float *dst, size_t dw, const float *src, size_t sw, size_t w, int acc,
                       size_t total) {
    for (size_t e = blockIdx.x * (size_t)NT + threadIdx.x; e < total; e += (size_t)gridDim.x * NT) {
        const size_t j = e % dw, r = e / dw;
        if (acc) {
            if (j < w) dst[e] += src[r * sw + j];
        } else {
            dst[e] = j < w ? src[r * sw + j] : 0.f;
        }
    }
}

// dst (R, Fd, Td) = top-left corner of src (R, Fsrc, Tsrc), the rest 0; total = R * Fd * Td
__global__ void copy_corner_k(float *dst, int Fd, int Td, const float *src, int Fsrc, int Tsrc,
                              size_t total) {
    for (size_t e = blockIdx.x * (size_t)NT + threadIdx.x; e < total; e += (size_t)gridDim.x * NT) {
        const int t = (int)(e % Td), f = (int)((e / Td) % Fd);
        const size_t r = e / ((size_t)Fd * Td);
        dst[e] = f < Fsrc && t < Tsrc ? src[(r * Fsrc + f) * Tsrc + t] : 0.f;
    }
}

/* h (B, S, K2, Fs, T) = act(z (B, S*K2, Fp, Tp) cropped); x0 (B, K2, Fp, Tp) or NULL (ReLU).
 * Plane q = (b*S + s)*K2 + c of h is plane q of z. total = B * S * K2 * Fs * T */
__global__ void head_fwd_k(float *h, const float *z, const float *x0, int S, int K2, int Fs, int T,
                           int Fp, int Tp, size_t total) {
    for (size_t e = blockIdx.x * (size_t)NT + threadIdx.x; e < total; e += (size_t)gridDim.x * NT) {
        const int t = (int)(e % T), f = (int)((e / T) % Fs);
        const size_t q = e / ((size_t)Fs * T), at = (size_t)f * Tp + t;
        const float v = z[q * Fp * Tp + at];
        if (x0) {
            const size_t b = q / ((size_t)S * K2), c = q % K2;
            h[e] = tf_mask_act(x0[(b * K2 + c) * Fp * Tp + at], v);
        } else {
            h[e] = tf_relu(v);
        }
    }
}

/* dz (B, S*K2, Fp, Tp) = act'(z) * dh (B, S, K2, Fs, T) zero-padded; total = B*S*K2*Fp*Tp */
__global__ void head_bwd_k(float *dz, const float *dh, const float *z, const float *x0, int S,
                           int K2, int Fs, int T, int Fp, int Tp, size_t total) {
    for (size_t e = blockIdx.x * (size_t)NT + threadIdx.x; e < total; e += (size_t)gridDim.x * NT) {
        const int t = (int)(e % Tp), f = (int)((e / Tp) % Fp);
        const size_t q = e / ((size_t)Fp * Tp);
        const float d = f < Fs && t < T ? dh[(q * Fs + f) * T + t] : 0.f;
        if (x0) {
            const size_t b = q / ((size_t)S * K2), c = q % K2;
            dz[e] = d * tf_mask_act_grad(x0[(b * K2 + c) * Fp * Tp + (size_t)f * Tp + t], z[e]);
        } else {
            dz[e] = tf_relu_backward(d, z[e]);
        }
    }
}

} // namespace

/* ==================================================================== launchers */
extern "C" {

int tf_cuda_gelu_forward(float *out, const float *inp, size_t n, void *stream) {
    if (!n) return 0;
    gelu_fwd_k<<<grid_for(n), NT, 0, as_stream(stream)>>>(out, inp, n);
    return launched();
}

int tf_cuda_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n,
                          void *stream) {
    if (!n) return 0;
    gelu_bwd_k<<<grid_for(n), NT, 0, as_stream(stream)>>>(dinp, dout, inp, n);
    return launched();
}

int tf_cuda_batchnorm2d_forward(float *out, float *mean, float *rstd, float *running_mean,
                                float *running_var, const float *inp, const float *weight,
                                const float *bias, int B, int C, int H, int W, float momentum,
                                float eps, int gelu, void *stream) {
    if (C <= 0) return 0;
    bn_fwd_k<<<C, BN_NT, 0, as_stream(stream)>>>(out, mean, rstd, running_mean, running_var, inp,
                                                 weight, bias, B, C, (size_t)H * W, momentum, eps,
                                                 gelu);
    return launched();
}

int tf_cuda_batchnorm2d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                 const float *inp, const float *weight, const float *mean,
                                 const float *rstd, int B, int C, int H, int W, void *stream) {
    if (C <= 0) return 0;
    bn_bwd_k<<<C, BN_NT, 0, as_stream(stream)>>>(dinp, dweight, dbias, dout, inp, weight, mean,
                                                 rstd, B, C, (size_t)H * W);
    return launched();
}

int tf_cuda_batchnorm2d_eval_forward(float *out, const float *inp, const float *weight,
                                     const float *bias, const float *running_mean,
                                     const float *running_var, int B, int C, int H, int W,
                                     float eps, int gelu, void *stream) {
    const size_t hw = (size_t)H * W, total = (size_t)B * C * hw;
    if (!total) return 0;
    bn_eval_k<<<grid_for(total), NT, 0, as_stream(stream)>>>(out, inp, weight, bias, running_mean,
                                                             running_var, C, hw, total, eps, gelu);
    return launched();
}

int tf_cuda_batchnorm2d_eval_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                      const float *inp, const float *weight,
                                      const float *running_mean, const float *running_var, int B,
                                      int C, int H, int W, float eps, void *stream) {
    if (C <= 0) return 0;
    bn_eval_bwd_k<<<C, BN_NT, 0, as_stream(stream)>>>(dinp, dweight, dbias, dout, inp, weight,
                                                      running_mean, running_var, B, C,
                                                      (size_t)H * W, eps);
    return launched();
}

int tf_cuda_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, int N, int C, void *stream) {
    if (N <= 0) return 0;
    ln_fwd_k<<<(N + ROWS - 1) / ROWS, NT, 0, as_stream(stream)>>>(out, mean, rstd, inp, weight,
                                                                  bias, N, C);
    return launched();
}

size_t tf_cuda_layernorm_backward_workspace_floats(int N, int C) {
    return N > 0 && C > 0 ? (size_t)ln_chunks(N) * 2 * (size_t)C : 0;
}

int tf_cuda_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean,
                               const float *rstd, int N, int C, float *workspace, void *stream) {
    if (N <= 0 || C <= 0) return 0;
    cudaStream_t s = as_stream(stream);
    ln_bwd_dx_k<<<(N + ROWS - 1) / ROWS, NT, 0, s>>>(dinp, dout, inp, weight, mean, rstd, N, C);
    const int chunks = ln_chunks(N);
    ln_bwd_dw_part_k<<<dim3((C + 31) / 32, chunks), dim3(32, 8), 0, s>>>(
        workspace, dout, inp, mean, rstd, N, C, ln_chunk_rows(N));
    ln_bwd_dw_sum_k<<<(C + NT - 1) / NT, NT, 0, s>>>(dweight, dbias, workspace, chunks, C);
    return launched();
}

int tf_cuda_softmax_forward(float *out, const float *inp, int N, int L, void *stream) {
    if (N <= 0 || L <= 0) return 0;
    softmax_fwd_k<<<(N + ROWS - 1) / ROWS, NT, 0, as_stream(stream)>>>(out, inp, N, L);
    return launched();
}

int tf_cuda_softmax_backward(float *dinp, const float *dout, const float *p, int N, int L,
                             void *stream) {
    if (N <= 0 || L <= 0) return 0;
    softmax_bwd_k<<<(N + ROWS - 1) / ROWS, NT, 0, as_stream(stream)>>>(dinp, dout, p, N, L);
    return launched();
}

int tf_cuda_avgpool2x2_forward(float *out, const float *inp, int B, int C, int H, int W,
                               void *stream) {
    const size_t total = (size_t)B * C * (H / 2) * (W / 2);
    if (!total) return 0;
    pool_fwd_k<<<grid_for(total), NT, 0, as_stream(stream)>>>(out, inp, H, W, total);
    return launched();
}

int tf_cuda_avgpool2x2_backward(float *dinp, const float *dout, int B, int C, int H, int W,
                                void *stream) {
    const size_t total = (size_t)B * C * H * W;
    if (!total) return 0;
    pool_bwd_k<<<grid_for(total), NT, 0, as_stream(stream)>>>(dinp, dout, H, W, total);
    return launched();
}

int tf_cuda_upsample2x_forward(float *out, const float *inp, int B, int C, int H, int W,
                               void *stream) {
    const size_t total = (size_t)B * C * 4 * H * W;
    if (!total) return 0;
    up_fwd_k<<<grid_for(total), NT, 0, as_stream(stream)>>>(out, inp, H, W, total);
    return launched();
}

int tf_cuda_upsample2x_backward(float *dinp, const float *dout, int B, int C, int H, int W,
                                void *stream) {
    const size_t total = (size_t)B * C * H * W;
    if (!total) return 0;
    up_bwd_k<<<grid_for(total), NT, 0, as_stream(stream)>>>(dinp, dout, H, W, total);
    return launched();
}

int tf_cuda_concat_forward(float *out, const float *a, const float *b, int B, int C1, int C2, int H,
                           int W, void *stream) {
    const size_t hw = (size_t)H * W, total = (size_t)B * (C1 + C2) * hw;
    if (!total) return 0;
    concat_fwd_k<<<grid_for(total), NT, 0, as_stream(stream)>>>(out, a, b, C1, C2, hw, total);
    return launched();
}

int tf_cuda_concat_backward(float *da, float *db, const float *dout, int B, int C1, int C2, int H,
                            int W, void *stream) {
    const size_t hw = (size_t)H * W, total = (size_t)B * (C1 + C2) * hw;
    if (!total) return 0;
    concat_bwd_k<<<grid_for(total), NT, 0, as_stream(stream)>>>(da, db, dout, C1, C2, hw, total);
    return launched();
}

static int map_seq_launch(float *tok, float *x, const float *src, int B, int C, int F, int T,
                          int time_seq, int to_tok, int acc, void *stream) {
    const size_t total = (size_t)B * C * F * T;
    if (!total) return 0;
    map_seq_k<<<grid_for(total), NT, 0, as_stream(stream)>>>(tok, x, src, C, F, T, time_seq, to_tok,
                                                             acc, total);
    return launched();
}

int tf_cuda_map_to_seq_forward(float *tok, const float *x, int B, int C, int F, int T, int time_seq,
                               void *stream) {
    return map_seq_launch(tok, NULL, x, B, C, F, T, time_seq, 1, 0, stream);
}

int tf_cuda_map_to_seq_backward(float *dx, const float *dtok, int B, int C, int F, int T,
                                int time_seq, void *stream) {
    return map_seq_launch(NULL, dx, dtok, B, C, F, T, time_seq, 0, 1, stream);
}

int tf_cuda_seq_to_map_forward(float *x, const float *tok, int B, int C, int F, int T, int time_seq,
                               void *stream) {
    return map_seq_launch(NULL, x, tok, B, C, F, T, time_seq, 0, 0, stream);
}

int tf_cuda_seq_to_map_backward(float *dtok, const float *dx, int B, int C, int F, int T,
                                int time_seq, void *stream) {
    return map_seq_launch(dtok, NULL, dx, B, C, F, T, time_seq, 1, 1, stream);
}

static int swap_launch(float *dst, const float *src, int B, int A1, int A2, int C, int acc,
                       void *stream) {
    const size_t total = (size_t)B * A1 * A2 * C;
    if (!total) return 0;
    swap_mid_k<<<grid_for(total), NT, 0, as_stream(stream)>>>(dst, src, A1, A2, C, acc, total);
    return launched();
}

int tf_cuda_seq_swap_forward(float *out, const float *in, int B, int C, int F, int T,
                             int from_time_seq, void *stream) {
    /* (B, F, T, C) -> (B, T, F, C), or back */
    return from_time_seq ? swap_launch(out, in, B, F, T, C, 0, stream)
                         : swap_launch(out, in, B, T, F, C, 0, stream);
}

int tf_cuda_seq_swap_backward(float *din, const float *dout, int B, int C, int F, int T,
                              int from_time_seq, void *stream) {
    return from_time_seq ? swap_launch(din, dout, B, T, F, C, 1, stream)
                         : swap_launch(din, dout, B, F, T, C, 1, stream);
}

static int window_launch(float *dst, const float *src, int B, int T, int F, int C, int wt, int wf,
                         int st, int sf, int to_win, int acc, void *stream) {
    const size_t total = (size_t)B * T * F * C;
    if (!total) return 0;
    window_k<<<grid_for(total), NT, 0, as_stream(stream)>>>(dst, src, T, F, C, wt, wf, st, sf,
                                                            to_win, acc, total);
    return launched();
}

int tf_cuda_window_partition_forward(float *win, const float *x, int B, int T, int F, int C, int wt,
                                     int wf, int st, int sf, void *stream) {
    return window_launch(win, x, B, T, F, C, wt, wf, st, sf, 1, 0, stream);
}

int tf_cuda_window_partition_backward(float *dx, const float *dwin, int B, int T, int F, int C,
                                      int wt, int wf, int st, int sf, void *stream) {
    return window_launch(dx, dwin, B, T, F, C, wt, wf, st, sf, 0, 1, stream);
}

int tf_cuda_window_reverse_forward(float *x, const float *win, int B, int T, int F, int C, int wt,
                                   int wf, int st, int sf, void *stream) {
    return window_launch(x, win, B, T, F, C, wt, wf, st, sf, 0, 0, stream);
}

int tf_cuda_window_reverse_backward(float *dwin, const float *dx, int B, int T, int F, int C,
                                    int wt, int wf, int st, int sf, void *stream) {
    return window_launch(dwin, dx, B, T, F, C, wt, wf, st, sf, 1, 1, stream);
}

size_t tf_cuda_loss_workspace_doubles(void) {
    return RED_BLOCKS;
}

static unsigned red_grid(size_t n) {
    unsigned g = grid_for(n);
    return g < RED_BLOCKS ? g : RED_BLOCKS;
}

int tf_cuda_loss_l1(const float *y, const float *t, size_t n, double scale, float *dy, double *loss,
                    double *workspace, void *stream) {
    if (!n) return 0;
    cudaStream_t s = as_stream(stream);
    const unsigned g = red_grid(n);
    l1_k<<<g, NT, 0, s>>>(y, t, n, (float)(scale / (double)n), dy, workspace);
    sum_parts_k<<<1, NT, 0, s>>>(loss, workspace, (int)g, (double)n);
    return launched();
}

int tf_cuda_loss_mag_l1(const float *yr, const float *yi, const float *tr, const float *ti,
                        size_t m, float gm, float *dr, float *di, double *sum, double *workspace,
                        void *stream) {
    if (!m) return 0;
    cudaStream_t s = as_stream(stream);
    const unsigned g = red_grid(m);
    mag_l1_k<<<g, NT, 0, s>>>(yr, yi, tr, ti, m, gm, dr, di, workspace);
    sum_parts_k<<<1, NT, 0, s>>>(sum, workspace, (int)g, 1.0);
    return launched();
}

int tf_cuda_global_norm(const float *g, size_t n, double *norm, double *workspace, void *stream) {
    cudaStream_t s = as_stream(stream);
    const unsigned k = n ? red_grid(n) : 0;
    if (n) sumsq_k<<<k, NT, 0, s>>>(g, n, workspace);
    sqrt_sum_k<<<1, NT, 0, s>>>(norm, workspace, (int)k);
    return launched();
}

int tf_cuda_scale(float *g, size_t n, float scale, void *stream) {
    if (!n) return 0;
    scale_k<<<grid_for(n), NT, 0, as_stream(stream)>>>(g, n, scale);
    return launched();
}

int tf_cuda_ema_update(float *ema, const float *params, size_t n, float decay, void *stream) {
    if (!n) return 0;
    ema_k<<<grid_for(n), NT, 0, as_stream(stream)>>>(ema, params, n, decay);
    return launched();
}

int tf_cuda_adam_step(int adamw, float beta1, float beta2, float eps, float weight_decay,
                      float *params, const float *grads, float *m, float *v, size_t n, int64_t t,
                      float lr, void *stream) {
    if (!n) return 0;
    const tf_adam_coefs k = tf_adam_coefs_at(adamw, beta1, beta2, eps, weight_decay, t, lr);
    adam_k<<<grid_for(n), NT, 0, as_stream(stream)>>>(params, grads, m, v, n, k);
    return launched();
}

int tf_cuda_add(float *y, const float *x, size_t n, void *stream) {
    if (!n) return 0;
    add_k<<<grid_for(n), NT, 0, as_stream(stream)>>>(y, x, n);
    return launched();
}

int tf_cuda_add2(float *out, const float *a, const float *b, size_t n, void *stream) {
    if (!n) return 0;
    add2_k<<<grid_for(n), NT, 0, as_stream(stream)>>>(out, a, b, n);
    return launched();
}

int tf_cuda_copy_channels(float *dst, int Cd, int c0, const float *src, int B, int Cs, size_t hw,
                          void *stream) {
    if (B <= 0 || Cs <= 0 || !hw) return 0;
    const size_t total = (size_t)B * Cs * hw;
    copy_channels_k<<<grid_for(total), NT, 0, as_stream(stream)>>>(dst, Cd, c0, src, Cs, hw, total);
    return launched();
}

int tf_cuda_bf16_pack(uint16_t *dst, int Cd, int c0, float *src, int B, int Cs, size_t hw,
                      int round, void *stream) {
    if (B <= 0 || Cs <= 0 || !hw) return 0;
    const size_t total = (size_t)B * Cs * hw;
    bf16_pack_k<<<grid_for(total), NT, 0, as_stream(stream)>>>(dst, Cd, c0, src, Cs, hw, total,
                                                               round);
    return launched();
}

int tf_cuda_half_pack(uint16_t *dst, const float *src, size_t n, int fp16, void *stream) {
    if (!n) return 0;
    half_pack_k<<<grid_for(n), NT, 0, as_stream(stream)>>>(dst, src, n, fp16);
    return launched();
}

int tf_cuda_half_unpack(float *dst, const uint16_t *src, size_t n, int fp16, int add,
                        void *stream) {
    if (!n) return 0;
    half_unpack_k<<<grid_for(n), NT, 0, as_stream(stream)>>>(dst, src, n, fp16, add);
    return launched();
}

int tf_cuda_magphase(float *mag, float *pr, float *pi, const float *re, const float *im, size_t n,
                     void *stream) {
    if (!n || (!mag && !pr && !pi)) return 0;
    magphase_k<<<grid_for(n), NT, 0, as_stream(stream)>>>(mag, pr, pi, re, im, n);
    return launched();
}

int tf_cuda_combine_forward(float *yr, float *yi, const float *mag, const float *pr,
                            const float *pi, int B, int S, size_t n, void *stream) {
    if (B <= 0 || S <= 0 || !n) return 0;
    const size_t total = (size_t)B * S * n;
    combine_fwd_k<<<grid_for(total), NT, 0, as_stream(stream)>>>(yr, yi, mag, pr, pi, S, n, total);
    return launched();
}

int tf_cuda_combine_backward(float *dmag, const float *dyr, const float *dyi, const float *pr,
                             const float *pi, int B, int S, size_t n, void *stream) {
    if (B <= 0 || S <= 0 || !n) return 0;
    const size_t total = (size_t)B * S * n;
    combine_bwd_k<<<grid_for(total), NT, 0, as_stream(stream)>>>(dmag, dyr, dyi, pr, pi, S, n,
                                                                 total);
    return launched();
}

/* the (B*C) rows of the subband transforms: dst rows of dw floats from src rows of sw, the
 * first (F-1)*T of each */
static int rows_launch(float *dst, int dst_full, const float *src, int B, int C, int F, int T,
                       int acc, void *stream) {
    if (B <= 0 || C <= 0 || F < 2 || T <= 0) return 0;
    const size_t full = (size_t)F * T, band = (size_t)(F - 1) * T, R = (size_t)B * C;
    const size_t dw = dst_full ? full : band, sw = dst_full ? band : full, total = R * dw;
    rows_k<<<grid_for(total), NT, 0, as_stream(stream)>>>(dst, dw, src, sw, band, acc, total);
    return launched();
}

int tf_cuda_subband_split(float *out, const float *inp, int B, int C, int F, int T, int K,
                          void *stream) {
    (void)K; /* the subband tensor is the full band without its Nyquist rows */
    return rows_launch(out, 0, inp, B, C, F, T, 0, stream);
}

int tf_cuda_subband_split_backward(float *dinp, const float *dout, int B, int C, int F, int T,
                                   int K, void *stream) {
    (void)K;
    return rows_launch(dinp, 1, dout, B, C, F, T, 1, stream);
}

int tf_cuda_subband_merge(float *out, const float *inp, int B, int C, int F, int T, int K,
                          void *stream) {
    (void)K;
    return rows_launch(out, 1, inp, B, C, F, T, 0, stream);
}

int tf_cuda_subband_merge_backward(float *dinp, const float *dout, int B, int C, int F, int T,
                                   int K, void *stream) {
    (void)K;
    return rows_launch(dinp, 0, dout, B, C, F, T, 1, stream);
}

int tf_cuda_copy_corner(float *dst, int Fd, int Td, const float *src, int Fsrc, int Tsrc, size_t R,
                        void *stream) {
    if (Fd <= 0 || Td <= 0 || !R) return 0;
    const size_t total = R * Fd * Td;
    copy_corner_k<<<grid_for(total), NT, 0, as_stream(stream)>>>(dst, Fd, Td, src, Fsrc, Tsrc,
                                                                 total);
    return launched();
}

int tf_cuda_head_forward(float *h, const float *z, const float *x0, int B, int S, int K2, int Fs,
                         int T, int Fp, int Tp, void *stream) {
    if (B <= 0 || S <= 0 || K2 <= 0 || Fs <= 0 || T <= 0) return 0;
    const size_t total = (size_t)B * S * K2 * Fs * T;
    head_fwd_k<<<grid_for(total), NT, 0, as_stream(stream)>>>(h, z, x0, S, K2, Fs, T, Fp, Tp,
                                                              total);
    return launched();
}

int tf_cuda_head_backward(float *dz, const float *dh, const float *z, const float *x0, int B, int S,
                          int K2, int Fs, int T, int Fp, int Tp, void *stream) {
    if (B <= 0 || S <= 0 || K2 <= 0 || Fp <= 0 || Tp <= 0) return 0;
    const size_t total = (size_t)B * S * K2 * Fp * Tp;
    head_bwd_k<<<grid_for(total), NT, 0, as_stream(stream)>>>(dz, dh, z, x0, S, K2, Fs, T, Fp, Tp,
                                                              total);
    return launched();
}

} // extern "C"
