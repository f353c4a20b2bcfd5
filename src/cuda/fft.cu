/* STFT / ISTFT and their adjoints with cuFFT (see cuda/fft.h and dsp/stft.h).
 *
 * Buffers: fr (S_max * T, n_fft) real frames, frame (s, t) at row s*T + t; sp (S_max * T, F)
 * complex onesided spectra in the same order: the contiguous layout of a batched 1-D
 * cufftPlanMany (idist n_fft, odist F for r2c and the reverse for c2r).
 *   STFT         frames = window * padded x  -> r2c -> planes re, im (S, F, T)
 *   ISTFT        planes / n_fft (DC/Nyquist imaginary parts zeroed) -> c2r -> each output
 *                sample gathers window * frame over the frames covering it, times the
 *                inverse envelope (tf_stft_inv_envelope, computed once on the host)
 *   ISTFT^T      frames = window * envelope * dy / n_fft -> r2c -> planes += the c2r adjoint
 *                (middle bins twice, DC and Nyquist once, real parts only)
 *   STFT^T       planes with the middle bins halved (imaginary DC/Nyquist zeroed) -> c2r ->
 *                each signal sample gathers window * frame over every padded position that
 *                maps to it (itself, and its reflections when the padding reflects)
 * Every kernel is a grid-stride loop over its outputs; each output is one thread's sum in
 * frame order. */
#include <cuda_runtime.h>
#include <cufft.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cuda/fft.h"
extern "C" {
#include "dsp/stft.h"
}

struct tf_cuda_stft {
    int n_fft, hop, pad, F, S_max;
    int64_t N, T;
    cudaStream_t stream;
    cufftHandle r2c, c2r;
    int have_r2c, have_c2r;
    float *fr;        /* (S_max * T, n_fft) */
    cufftComplex *sp; /* (S_max * T, F) */
    float *w;         /* (n_fft,) */
    float *ie;        /* (N,) inverse envelope */
    size_t plan_bytes, buffer_bytes;
    char err[256];
};

static int failf(char *err, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (err && n) vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return 1;
}

static const char *cufft_str(cufftResult r) {
    switch (r) {
    case CUFFT_SUCCESS:
        return "success";
    case CUFFT_INVALID_PLAN:
        return "invalid plan";
    case CUFFT_ALLOC_FAILED:
        return "allocation failed";
    case CUFFT_INVALID_VALUE:
        return "invalid value";
    case CUFFT_INTERNAL_ERROR:
        return "internal error";
    case CUFFT_EXEC_FAILED:
        return "exec failed";
    case CUFFT_SETUP_FAILED:
        return "setup failed";
    case CUFFT_INVALID_SIZE:
        return "invalid size";
    default:
        return "cuFFT error";
    }
}

#define FFT(what, call)                                                                            \
    do {                                                                                           \
        cufftResult r_ = (call);                                                                   \
        if (r_ != CUFFT_SUCCESS)                                                                   \
            return failf(g->err, sizeof g->err, "cuFFT: %s: %s (%d)", what, cufft_str(r_),         \
                         (int)r_);                                                                 \
    } while (0)
#define CUDA(what, call)                                                                           \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess)                                                                     \
            return failf(g->err, sizeof g->err, "CUDA: %s: %s", what, cudaGetErrorString(e_));     \
    } while (0)
#define LAUNCHED(what) CUDA(what, cudaGetLastError())

static unsigned grid_for(size_t n) {
    size_t b = (n + 255) / 256;
    return b > 65535u * 16u ? 65535u * 16u : (unsigned)(b ? b : 1);
}
#define GRID_STRIDE(i, n)                                                                          \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n);                        \
         i += (size_t)gridDim.x * blockDim.x)

/* signal index of signal-coordinate sample j (< 0 or >= N in the padding), -1 for a zero */
__device__ inline int64_t src_index(int64_t j, int64_t N, int reflect) {
    if (j >= 0 && j < N) return j;
    if (!reflect) return -1;
    return j < 0 ? -j : 2 * (N - 1) - j;
}

// fr (S, T, n_fft) = w * frame t of padded x (S, N)
__global__ void k_frames(float *fr, const float *x, const float *w, int S, int64_t N, int64_t T,
                         int n_fft, int hop, int pad) {
    const int reflect = N > pad;
    GRID_STRIDE(i, (size_t)S * T * n_fft) {
        int n = (int)(i % n_fft);
        size_t st = i / n_fft;
        int64_t t = (int64_t)(st % T), s = (int64_t)(st / T);
        int64_t j = src_index(t * hop - pad + n, N, reflect);
        fr[i] = j >= 0 ? w[n] * x[s * N + j] : 0.f;
    }
}

// re, im (S, F, T) = sp (S, T, F)
__global__ void k_store(float *re, float *im, const cufftComplex *sp, int S, int F, int64_t T) {
    GRID_STRIDE(i, (size_t)S * F * T) {
        int64_t t = (int64_t)(i % T);
        size_t sf = i / T;
        int f = (int)(sf % F);
        size_t s = sf / F;
        cufftComplex v = sp[(s * T + t) * F + f];
        re[i] = v.x;
        im[i] = v.y;
    }
}

// dre, dim (S, F, T) += adjoint of the onesided c2r applied to sp (S, T, F)
__global__ void k_add_c2r_adjoint(float *dre, float *dim, const cufftComplex *sp, int S, int F,
                                  int64_t T) {
    GRID_STRIDE(i, (size_t)S * F * T) {
        int64_t t = (int64_t)(i % T);
        size_t sf = i / T;
        int f = (int)(sf % F);
        size_t s = sf / F;
        cufftComplex v = sp[(s * T + t) * F + f];
        const int edge = f == 0 || f == F - 1;
        const float c = edge ? 1.f : 2.f;
        dre[i] += c * v.x;
        if (!edge) dim[i] += c * v.y;
    }
}

// sp (S, T, F) = re, im (S, F, T) times edge (DC, Nyquist) or mid (other bins); the imaginary
// parts of DC and Nyquist zeroed
__global__ void k_load(cufftComplex *sp, const float *re, const float *im, int S, int F, int64_t T,
                       float edge_scale, float mid_scale) {
    GRID_STRIDE(i, (size_t)S * F * T) {
        int64_t t = (int64_t)(i % T);
        size_t sf = i / T;
        int f = (int)(sf % F);
        size_t s = sf / F;
        const int edge = f == 0 || f == F - 1;
        const float c = edge ? edge_scale : mid_scale;
        cufftComplex v;
        v.x = c * re[i];
        v.y = edge ? 0.f : c * im[i];
        sp[(s * T + t) * F + f] = v;
    }
}

/* sum over the frames t (in order) covering padded position p of w * frame t of signal s */
__device__ inline float gather_at(const float *fr, const float *w, int64_t s, int64_t p, int64_t T,
                                  int n_fft, int hop) {
    int64_t tlo = p >= n_fft ? (p - n_fft) / hop + 1 : 0, thi = p / hop < T - 1 ? p / hop : T - 1;
    float acc = 0.f;
    for (int64_t t = tlo; t <= thi; t++) {
        int64_t k = p - t * hop;
        acc += fr[(size_t)(s * T + t) * n_fft + k] * w[k];
    }
    return acc;
}

// y (S, N) = ie * overlap-add of w * fr
__global__ void k_ola(float *y, const float *fr, const float *w, const float *ie, int S, int64_t N,
                      int64_t T, int n_fft, int hop, int pad) {
    GRID_STRIDE(i, (size_t)S * N) {
        int64_t q = (int64_t)(i % N), s = (int64_t)(i / N);
        y[i] = gather_at(fr, w, s, q + pad, T, n_fft, hop) * ie[q];
    }
}

// dx (S, N) += sum over the padded positions mapping to each sample of w * fr
__global__ void k_ola_adjoint(float *dx, const float *fr, const float *w, int S, int64_t N,
                              int64_t T, int n_fft, int hop, int pad) {
    const int reflect = N > pad;
    GRID_STRIDE(i, (size_t)S * N) {
        int64_t q = (int64_t)(i % N), s = (int64_t)(i / N);
        float acc = gather_at(fr, w, s, q + pad, T, n_fft, hop);
        if (reflect) {
            if (q >= 1 && q <= pad) acc += gather_at(fr, w, s, pad - q, T, n_fft, hop);
            if (q <= N - 2) acc += gather_at(fr, w, s, 2 * (N - 1) - q + pad, T, n_fft, hop);
        }
        dx[i] += acc;
    }
}

// fr (S, T, n_fft) = w * ie * dy / n_fft over each frame's samples (0 in the padding)
__global__ void k_frames_istft_adjoint(float *fr, const float *dy, const float *w, const float *ie,
                                       int S, int64_t N, int64_t T, int n_fft, int hop, int pad,
                                       float inv_n) {
    GRID_STRIDE(i, (size_t)S * T * n_fft) {
        int n = (int)(i % n_fft);
        size_t st = i / n_fft;
        int64_t t = (int64_t)(st % T), s = (int64_t)(st / T);
        int64_t q = t * hop - pad + n;
        float v = q >= 0 && q < N ? dy[s * N + q] * ie[q] : 0.f;
        fr[i] = v * w[n] * inv_n;
    }
}

extern "C" void tf_cuda_stft_destroy(tf_cuda_stft *g) {
    if (!g) return;
    if (g->have_r2c) cufftDestroy(g->r2c);
    if (g->have_c2r) cufftDestroy(g->c2r);
    cudaFree(g->fr);
    cudaFree(g->sp);
    cudaFree(g->w);
    cudaFree(g->ie);
    free(g);
}

static int create(tf_cuda_stft *g, const tf_stft *cpu) {
    const size_t nfr = (size_t)g->S_max * g->T;
    if (nfr > 0x7fffffff)
        return failf(g->err, sizeof g->err, "cuFFT: %zu frames in one batch, over 2^31", nfr);
    CUDA("frame buffer", cudaMalloc((void **)&g->fr, nfr * g->n_fft * sizeof(float)));
    CUDA("spectrum buffer", cudaMalloc((void **)&g->sp, nfr * g->F * sizeof(cufftComplex)));
    CUDA("window", cudaMalloc((void **)&g->w, (size_t)g->n_fft * sizeof(float)));
    CUDA("envelope", cudaMalloc((void **)&g->ie, (size_t)g->N * sizeof(float)));
    g->buffer_bytes = nfr * g->n_fft * sizeof(float) + nfr * g->F * sizeof(cufftComplex) +
                      ((size_t)g->n_fft + (size_t)g->N) * sizeof(float);
    /* frames never written by a call with S < S_max must still be finite numbers */
    CUDA("clear frames", cudaMemset(g->fr, 0, nfr * g->n_fft * sizeof(float)));
    CUDA("clear spectra", cudaMemset(g->sp, 0, nfr * g->F * sizeof(cufftComplex)));
    CUDA("window upload", cudaMemcpy(g->w, tf_stft_window(cpu), (size_t)g->n_fft * sizeof(float),
                                     cudaMemcpyHostToDevice));
    float *ie = (float *)malloc((size_t)g->N * sizeof(float));
    if (!ie)
        return failf(g->err, sizeof g->err, "stft: out of host memory (%lld)", (long long)g->N);
    tf_stft_inv_envelope(cpu, ie, g->N);
    cudaError_t e = cudaMemcpy(g->ie, ie, (size_t)g->N * sizeof(float), cudaMemcpyHostToDevice);
    free(ie);
    CUDA("envelope upload", e);
    int n = g->n_fft;
    size_t ws[2] = {0, 0};
    FFT("cufftCreate r2c", cufftCreate(&g->r2c));
    g->have_r2c = 1;
    FFT("cufftMakePlanMany r2c",
        cufftMakePlanMany(g->r2c, 1, &n, NULL, 1, n, NULL, 1, g->F, CUFFT_R2C, (int)nfr, &ws[0]));
    FFT("cufftCreate c2r", cufftCreate(&g->c2r));
    g->have_c2r = 1;
    FFT("cufftMakePlanMany c2r",
        cufftMakePlanMany(g->c2r, 1, &n, NULL, 1, g->F, NULL, 1, n, CUFFT_C2R, (int)nfr, &ws[1]));
    FFT("cufftSetStream r2c", cufftSetStream(g->r2c, g->stream));
    FFT("cufftSetStream c2r", cufftSetStream(g->c2r, g->stream));
    FFT("cufftGetSize r2c", cufftGetSize(g->r2c, &ws[0]));
    FFT("cufftGetSize c2r", cufftGetSize(g->c2r, &ws[1]));
    g->plan_bytes = ws[0] + ws[1];
    return 0;
}

extern "C" int tf_cuda_stft_create(tf_cuda_stft **out, const tf_stft *cpu, int S_max, int64_t N,
                                   void *stream, char *err, size_t err_n) {
    *out = NULL;
    if (S_max < 1 || N < 1)
        return failf(err, err_n, "stft: S_max %d and N %lld must be >= 1", S_max, (long long)N);
    tf_cuda_stft *g = (tf_cuda_stft *)calloc(1, sizeof *g);
    if (!g) return failf(err, err_n, "stft: out of host memory");
    g->n_fft = tf_stft_n_fft(cpu);
    g->hop = tf_stft_hop(cpu);
    g->pad = g->n_fft / 2;
    g->F = tf_stft_bins(cpu);
    g->S_max = S_max;
    g->N = N;
    g->T = tf_stft_frames(cpu, N);
    g->stream = (cudaStream_t)stream;
    if (create(g, cpu)) {
        failf(err, err_n, "%s", g->err);
        tf_cuda_stft_destroy(g);
        return 1;
    }
    *out = g;
    return 0;
}

extern "C" const char *tf_cuda_stft_error(const tf_cuda_stft *g) {
    return g->err;
}

extern "C" void tf_cuda_stft_sizes(const tf_cuda_stft *g, size_t *plan_bytes,
                                   size_t *buffer_bytes) {
    if (plan_bytes) *plan_bytes = g->plan_bytes;
    if (buffer_bytes) *buffer_bytes = g->buffer_bytes;
}

static int check(tf_cuda_stft *g, const char *fn, int S, int64_t N) {
    if (S < 0 || S > g->S_max || N != g->N)
        return failf(g->err, sizeof g->err,
                     "%s: %d signals of %lld samples; this object takes up to %d of %lld", fn, S,
                     (long long)N, g->S_max, (long long)g->N);
    return 0;
}

extern "C" int tf_cuda_stft_forward(tf_cuda_stft *g, float *re, float *im, const float *x, int S,
                                    int64_t N) {
    if (check(g, "stft", S, N)) return 1;
    if (S == 0) return 0;
    size_t nf = (size_t)S * g->T * g->n_fft, ns = (size_t)S * g->F * g->T;
    k_frames<<<grid_for(nf), 256, 0, g->stream>>>(g->fr, x, g->w, S, N, g->T, g->n_fft, g->hop,
                                                  g->pad);
    LAUNCHED("stft frames");
    FFT("stft r2c", cufftExecR2C(g->r2c, g->fr, g->sp));
    k_store<<<grid_for(ns), 256, 0, g->stream>>>(re, im, g->sp, S, g->F, g->T);
    LAUNCHED("stft store");
    return 0;
}

extern "C" int tf_cuda_istft_forward(tf_cuda_stft *g, float *y, const float *re, const float *im,
                                     int S, int64_t N) {
    if (check(g, "istft", S, N)) return 1;
    if (S == 0) return 0;
    const float inv_n = 1.0f / (float)g->n_fft;
    size_t ns = (size_t)S * g->F * g->T, ny = (size_t)S * N;
    k_load<<<grid_for(ns), 256, 0, g->stream>>>(g->sp, re, im, S, g->F, g->T, inv_n, inv_n);
    LAUNCHED("istft load");
    FFT("istft c2r", cufftExecC2R(g->c2r, g->sp, g->fr));
    k_ola<<<grid_for(ny), 256, 0, g->stream>>>(y, g->fr, g->w, g->ie, S, N, g->T, g->n_fft, g->hop,
                                               g->pad);
    LAUNCHED("istft overlap-add");
    return 0;
}

extern "C" int tf_cuda_istft_backward(tf_cuda_stft *g, float *dre, float *dim, const float *dy,
                                      int S, int64_t N) {
    if (check(g, "istft backward", S, N)) return 1;
    if (S == 0) return 0;
    const float inv_n = 1.0f / (float)g->n_fft;
    size_t nf = (size_t)S * g->T * g->n_fft, ns = (size_t)S * g->F * g->T;
    k_frames_istft_adjoint<<<grid_for(nf), 256, 0, g->stream>>>(g->fr, dy, g->w, g->ie, S, N, g->T,
                                                                g->n_fft, g->hop, g->pad, inv_n);
    LAUNCHED("istft backward frames");
    FFT("istft backward r2c", cufftExecR2C(g->r2c, g->fr, g->sp));
    k_add_c2r_adjoint<<<grid_for(ns), 256, 0, g->stream>>>(dre, dim, g->sp, S, g->F, g->T);
    LAUNCHED("istft backward store");
    return 0;
}

extern "C" int tf_cuda_stft_backward(tf_cuda_stft *g, float *dx, const float *dre, const float *dim,
                                     int S, int64_t N) {
    if (check(g, "stft backward", S, N)) return 1;
    if (S == 0) return 0;
    size_t ns = (size_t)S * g->F * g->T, nx = (size_t)S * N;
    /* d(rfft)/d(frame): c2r with the middle bins halved (they occur twice in its sum) */
    k_load<<<grid_for(ns), 256, 0, g->stream>>>(g->sp, dre, dim, S, g->F, g->T, 1.f, 0.5f);
    LAUNCHED("stft backward load");
    FFT("stft backward c2r", cufftExecC2R(g->c2r, g->sp, g->fr));
    k_ola_adjoint<<<grid_for(nx), 256, 0, g->stream>>>(dx, g->fr, g->w, S, N, g->T, g->n_fft,
                                                       g->hop, g->pad);
    LAUNCHED("stft backward overlap-add");
    return 0;
}
