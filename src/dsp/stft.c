/* STFT / ISTFT (torch.stft / torch.istft conventions) and their exact adjoints, on FFTW
 * single precision. See stft.h for the conventions and layouts.
 *
 * Work unit: a block of up to TB consecutive frames of one signal. The spectra of a block
 * sit in per-thread scratch as blk[k * Fp + f] (frame k, bin f), so the (F, T) planes are
 * read and written in runs of TB consecutive frames per bin instead of one strided column
 * per frame (the strided column access cost more than the FFTs).
 *
 * Parallel scheme: blocks are independent in the STFT forward and the ISTFT backward (each
 * writes its own columns), so OpenMP runs over signal x block. The ISTFT forward and the
 * STFT backward overlap-add frames into a signal: blocks are coloured by index mod mb, with
 * mb chosen so that blocks of one colour never touch the same sample; the blocks of one
 * colour run in parallel, colours one after another, the frames of a block in order. Every
 * output sample is therefore summed in the same order whatever the number of threads. In
 * the STFT backward the frames that reach into the reflect padding fold back onto samples
 * that interior frames also touch, so they run last, one signal per thread, in frame order. */
#include "dsp/stft.h"
#include "dsp/dsp_elem.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifndef TB
#define TB 16 /* frames per block (fixed: the summation order must not depend on anything) */
#endif
#ifndef PF
#define PF 12 /* rows of the (F, T) planes prefetched ahead: they are far apart in memory */
#endif

/* Prefetch a run of nb floats in each of two plane rows (for writing when w). */
static inline void prefetch_rows(const float *r, const float *i, int nb, int w) {
    if (w) {
        __builtin_prefetch(r, 1), __builtin_prefetch(r + nb - 1, 1);
        __builtin_prefetch(i, 1), __builtin_prefetch(i + nb - 1, 1);
    } else {
        __builtin_prefetch(r, 0), __builtin_prefetch(r + nb - 1, 0);
        __builtin_prefetch(i, 0), __builtin_prefetch(i + nb - 1, 0);
    }
}

/* Per-thread scratch: one real frame and TB onesided spectra, every one at a 64-byte offset
 * in an fftwf_malloc block, i.e. aligned like the arrays the plans were made with, as the
 * new-array execute functions require. */
typedef struct slot {
    struct slot *next;
    float *frame;       /* (n_fft,) */
    fftwf_complex *blk; /* (TB, Fp) */
} slot;

struct tf_stft {
    int n_fft, hop, nbins, pad;
    int fp;               /* Fp: spectrum stride in blk, F rounded up to 8 complex (64 bytes) */
    float *window;        /* (n_fft,) periodic Hann */
    float *inv_env_per;   /* (hop,) 1 / sum_k w[r + k hop]^2: the interior ISTFT envelope */
    float *inv_env_frame; /* (n_fft,) inv_env_per[n % hop] */
    fftwf_plan r2c, c2r;
    pthread_mutex_t pool_lock;
    slot *pool; /* free scratch slots */
};

static pthread_mutex_t g_plan_lock = PTHREAD_MUTEX_INITIALIZER;
void tf_fftw_plan_lock(void) {
    pthread_mutex_lock(&g_plan_lock);
}
void tf_fftw_plan_unlock(void) {
    pthread_mutex_unlock(&g_plan_lock);
}

static slot *slot_new(const tf_stft *st) {
    slot *sl = malloc(sizeof *sl);
    if (!sl) return NULL;
    size_t nf = ((size_t)st->n_fft + 15) / 16 * 16;
    float *buf = fftwf_malloc((nf + 2 * (size_t)TB * st->fp) * sizeof(float));
    if (!buf) {
        free(sl);
        return NULL;
    }
    sl->next = NULL;
    sl->frame = buf;
    sl->blk = (fftwf_complex *)(buf + nf);
    return sl;
}

static void slot_free(slot *sl) {
    if (!sl) return;
    fftwf_free(sl->frame);
    free(sl);
}

/* A slot from the pool, or a new one; NULL when out of memory. Thread safe. */
static slot *slot_get(tf_stft *st) {
    pthread_mutex_lock(&st->pool_lock);
    slot *sl = st->pool;
    if (sl) st->pool = sl->next;
    pthread_mutex_unlock(&st->pool_lock);
    return sl ? sl : slot_new(st);
}

static void slot_put(tf_stft *st, slot *sl) {
    if (!sl) return;
    pthread_mutex_lock(&st->pool_lock);
    sl->next = st->pool;
    st->pool = sl;
    pthread_mutex_unlock(&st->pool_lock);
}

/* A thread's slot for one parallel region; on failure (NULL) sets *fail, and the thread
 * skips its iterations (the region still runs its worksharing loops to the end). */
static slot *slot_enter(tf_stft *st, int *fail) {
    slot *sl = slot_get(st);
    if (!sl) {
#pragma omp atomic write
        *fail = 1;
    }
    return sl;
}

/* Block j of S x nblk blocks of TB frames: signal s, first frame *t0; returns its frame
 * count (TB, or fewer for the last block of a signal). */
static int block_at(int64_t j, int64_t nblk, int64_t T, int64_t *s, int64_t *t0) {
    *s = j / nblk;
    *t0 = (j % nblk) * TB;
    return T - *t0 < TB ? (int)(T - *t0) : TB;
}

tf_status tf_stft_create(tf_stft **out, int n_fft, int hop) {
    *out = NULL;
    if (n_fft < 4 || n_fft > 65536 || n_fft % 2 != 0)
        return tf_err(TF_EUSER, "stft: window size (n_fft) %d must be even and in [4, 65536]",
                      n_fft);
    if (hop < 1 || hop > n_fft / 2)
        return tf_err(TF_EUSER, "stft: hop length %d must be in [1, n_fft/2 = %d]", hop, n_fft / 2);
    tf_stft *st = tf_calloc(1, sizeof *st, "stft object");
    if (!st) return TF_EINTERNAL;
    st->n_fft = n_fft;
    st->hop = hop;
    st->nbins = n_fft / 2 + 1;
    st->fp = (st->nbins + 7) / 8 * 8;
    st->pad = n_fft / 2;
    if (pthread_mutex_init(&st->pool_lock, NULL) != 0) {
        free(st);
        return tf_err(TF_EINTERNAL, "stft: pthread_mutex_init failed");
    }
    st->window = tf_malloc((size_t)n_fft * sizeof(float), "stft window");
    st->inv_env_per = tf_malloc((size_t)hop * sizeof(float), "stft envelope");
    st->inv_env_frame = tf_malloc((size_t)n_fft * sizeof(float), "stft envelope");
    if (!st->window || !st->inv_env_per || !st->inv_env_frame) {
        tf_stft_destroy(st);
        return TF_EINTERNAL;
    }
    for (int n = 0; n < n_fft; n++)
        st->window[n] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * (double)n / (double)n_fft));
    for (int r = 0; r < hop; r++) {
        double e = 0.0;
        for (int o = r; o < n_fft; o += hop) e += (double)st->window[o] * st->window[o];
        st->inv_env_per[r] = (float)(1.0 / e); /* e >= w[n_fft/4..]^2 > 0 since hop <= n_fft/2 */
    }
    for (int n = 0; n < n_fft; n++) st->inv_env_frame[n] = st->inv_env_per[n % hop];
    slot *sl = slot_new(st);
    if (!sl) {
        tf_stft_destroy(st);
        return tf_err(TF_EINTERNAL, "stft: out of memory for scratch (n_fft %d)", n_fft);
    }
    tf_fftw_plan_lock();
    st->r2c = fftwf_plan_dft_r2c_1d(n_fft, sl->frame, sl->blk, FFTW_ESTIMATE);
    st->c2r = fftwf_plan_dft_c2r_1d(n_fft, sl->blk, sl->frame, FFTW_ESTIMATE);
    tf_fftw_plan_unlock();
    slot_put(st, sl);
    if (!st->r2c || !st->c2r) {
        tf_stft_destroy(st);
        return tf_err(TF_EINTERNAL, "stft: FFTW could not plan a transform of size %d", n_fft);
    }
    *out = st;
    return TF_OK;
}

void tf_stft_destroy(tf_stft *st) {
    if (!st) return;
    tf_fftw_plan_lock();
    if (st->r2c) fftwf_destroy_plan(st->r2c);
    if (st->c2r) fftwf_destroy_plan(st->c2r);
    tf_fftw_plan_unlock();
    while (st->pool) {
        slot *n = st->pool->next;
        slot_free(st->pool);
        st->pool = n;
    }
    pthread_mutex_destroy(&st->pool_lock);
    free(st->window);
    free(st->inv_env_per);
    free(st->inv_env_frame);
    free(st);
}

int tf_stft_n_fft(const tf_stft *st) {
    return st->n_fft;
}
int tf_stft_hop(const tf_stft *st) {
    return st->hop;
}
int tf_stft_bins(const tf_stft *st) {
    return st->nbins;
}
int64_t tf_stft_frames(const tf_stft *st, int64_t n) {
    return 1 + n / st->hop;
}
const float *tf_stft_window(const tf_stft *st) {
    return st->window;
}

static tf_status check_args(const char *fn, int S, int64_t N) {
    if (S < 0) return tf_err(TF_EUSER, "%s: number of signals %d < 0", fn, S);
    if (N < 1) return tf_err(TF_EUSER, "%s: signal length %lld must be >= 1", fn, (long long)N);
    return TF_OK;
}

static tf_status scratch_fail(const char *fn) {
    return tf_err(TF_EINTERNAL, "%s: out of memory for per-thread FFT scratch", fn);
}

/* Signal index of padded-domain sample i (signal coordinates, i.e. already minus pad):
 * reflect for i outside [0, N) when reflect, else -1 (a zero-padded sample). */
static inline int64_t src_index(int64_t i, int64_t N, int reflect) {
    if (i >= 0 && i < N) return i;
    if (!reflect) return -1;
    return i < 0 ? -i : 2 * (N - 1) - i;
}

/* 1 / (overlap-added squared window) at padded position p for T frames; 0 where no frame
 * has weight (cannot happen for p in [pad, pad + N) given hop <= n_fft/2). */
static float inv_env_at(const tf_stft *st, int64_t p, int64_t T) {
    const int64_t hop = st->hop, n = st->n_fft;
    if (p >= n - hop && p / hop <= T - 1) return st->inv_env_per[p % hop];
    int64_t tlo = p >= n ? (p - n) / hop + 1 : 0, thi = p / hop < T - 1 ? p / hop : T - 1;
    double e = 0.0;
    for (int64_t t = tlo; t <= thi; t++) {
        double w = st->window[p - t * hop];
        e += w * w;
    }
    return e > 1e-11 ? (float)(1.0 / e) : 0.f;
}

void tf_stft_inv_envelope(const tf_stft *st, float *ie, int64_t N) {
    const int64_t T = tf_stft_frames(st, N);
    for (int64_t i = 0; i < N; i++) ie[i] = inv_env_at(st, i + st->pad, T);
}

/* r2c of window * (frame t of xs (N,), padded) into out (F,) */
static void stft_frame(const tf_stft *st, slot *sl, const float *xs, int64_t N, int64_t t,
                       fftwf_complex *out) {
    const int n_fft = st->n_fft;
    const float *w = st->window;
    float *fr = sl->frame;
    int64_t i0 = t * st->hop - st->pad;
    if (i0 >= 0 && i0 + n_fft <= N) {
#pragma omp simd
        for (int n = 0; n < n_fft; n++) fr[n] = w[n] * xs[i0 + n];
    } else {
        int reflect = N > st->pad;
        for (int n = 0; n < n_fft; n++) {
            int64_t j = src_index(i0 + n, N, reflect);
            fr[n] = j >= 0 ? w[n] * xs[j] : 0.f;
        }
    }
    fftwf_execute_dft_r2c(st->r2c, fr, out);
}

/* Columns [t0, t0 + nb) of the planes re, im (F, T) = the block's spectra. */
static void blk_store(const tf_stft *st, const slot *sl, float *re, float *im, int64_t T,
                      int64_t t0, int nb) {
    const int F = st->nbins, fp = st->fp;
    for (int f = 0; f < F; f++) {
        float *r = re + (size_t)f * T + t0, *i = im + (size_t)f * T + t0;
        const fftwf_complex *b = sl->blk + f;
        if (f + PF < F) prefetch_rows(r + PF * T, i + PF * T, nb, 1);
        for (int k = 0; k < nb; k++) {
            r[k] = b[(size_t)k * fp][0];
            i[k] = b[(size_t)k * fp][1];
        }
    }
}

/* Columns [t0, t0 + nb) of dre, dim (F, T) += adjoint of the onesided c2r applied to the
 * block's r2c spectra: bins 1..F-2 occur twice in c2r's hermitian sum, DC and Nyquist once
 * and only through their real parts. */
static void blk_add_c2r_adjoint(const tf_stft *st, const slot *sl, float *dre, float *dim,
                                int64_t T, int64_t t0, int nb) {
    const int F = st->nbins, fp = st->fp;
    for (int f = 0; f < F; f++) {
        const int edge = f == 0 || f == F - 1;
        const float c = edge ? 1.f : 2.f;
        float *r = dre + (size_t)f * T + t0, *i = dim + (size_t)f * T + t0;
        const fftwf_complex *b = sl->blk + f;
        if (f + PF < F) prefetch_rows(r + PF * T, i + PF * T, nb, 1);
        for (int k = 0; k < nb; k++) r[k] += c * b[(size_t)k * fp][0];
        if (!edge)
            for (int k = 0; k < nb; k++) i[k] += c * b[(size_t)k * fp][1];
    }
}

/* The block's spectra = columns [t0, t0 + nb) of re, im (F, T), DC and Nyquist scaled by
 * edge_scale, the other bins by mid_scale; the imaginary parts of DC and Nyquist are zeroed
 * (c2r treats them as zero: they never reach the output). */
static void blk_load(const tf_stft *st, slot *sl, const float *re, const float *im, int64_t T,
                     int64_t t0, int nb, float edge_scale, float mid_scale) {
    const int F = st->nbins, fp = st->fp;
    for (int f = 0; f < F; f++) {
        const float c = (f == 0 || f == F - 1) ? edge_scale : mid_scale;
        const float *r = re + (size_t)f * T + t0, *i = im + (size_t)f * T + t0;
        fftwf_complex *b = sl->blk + f;
        if (f + PF < F) prefetch_rows(r + PF * T, i + PF * T, nb, 0);
        for (int k = 0; k < nb; k++) {
            b[(size_t)k * fp][0] = c * r[k];
            b[(size_t)k * fp][1] = c * i[k];
        }
    }
    for (int k = 0; k < nb; k++) {
        sl->blk[(size_t)k * fp][1] = 0.f;
        sl->blk[(size_t)k * fp + F - 1][1] = 0.f;
    }
}

/* sl->frame = window * c2r(spectrum k of the block) (unnormalised; destroys spectrum k) */
static void c2r_frame(const tf_stft *st, slot *sl, int k) {
    fftwf_execute_dft_c2r(st->c2r, sl->blk + (size_t)k * st->fp, sl->frame);
    float *fr = sl->frame;
    const float *w = st->window;
#pragma omp simd
    for (int n = 0; n < st->n_fft; n++) fr[n] *= w[n];
}

/* Blocks of TB frames starting every TB*hop samples span (TB-1)*hop + n_fft samples: blocks
 * whose indices differ by this many or more never touch the same sample. */
static int64_t block_colours(const tf_stft *st) {
    int64_t span = (int64_t)(TB - 1) * st->hop + st->n_fft, step = (int64_t)TB * st->hop;
    return (span + step - 1) / step;
}

/* Number of block indices b = c + m k in [0, nblk) */
static int64_t colour_count(int64_t nblk, int64_t c, int64_t m) {
    return nblk > c ? (nblk - c + m - 1) / m : 0;
}

tf_status tf_stft_forward(tf_stft *st, float *re, float *im, const float *x, int S, int64_t N) {
    TF_TRY(check_args("stft", S, N));
    const int F = st->nbins;
    const int64_t T = tf_stft_frames(st, N), nblk = (T + TB - 1) / TB, SB = (int64_t)S * nblk;
    int fail = 0;
#pragma omp parallel
    {
        slot *sl = slot_enter(st, &fail);
#pragma omp for schedule(static)
        for (int64_t j = 0; j < SB; j++) {
            if (!sl) continue;
            int64_t s, t0;
            int nb = block_at(j, nblk, T, &s, &t0);
            for (int k = 0; k < nb; k++)
                stft_frame(st, sl, x + s * N, N, t0 + k, sl->blk + (size_t)k * st->fp);
            blk_store(st, sl, re + (size_t)s * F * T, im + (size_t)s * F * T, T, t0, nb);
        }
        slot_put(st, sl);
    }
    return fail ? scratch_fail("stft") : TF_OK;
}

tf_status tf_istft_forward(tf_stft *st, float *y, const float *re, const float *im, int S,
                           int64_t N) {
    TF_TRY(check_args("istft", S, N));
    enum { CH = 1024 };
    const int F = st->nbins, n_fft = st->n_fft, hop = st->hop, pad = st->pad;
    const int64_t T = tf_stft_frames(st, N), nblk = (T + TB - 1) / TB, m = block_colours(st);
    const int64_t nch = (N + CH - 1) / CH;
    const float inv_n = 1.0f / (float)n_fft;
    int fail = 0;
#pragma omp parallel
    {
        slot *sl = slot_enter(st, &fail);
#pragma omp for schedule(static)
        for (int s = 0; s < S; s++) memset(y + (size_t)s * N, 0, (size_t)N * sizeof(float));
        for (int64_t c = 0; c < m; c++) {
            const int64_t K = colour_count(nblk, c, m), SK = (int64_t)S * K;
#pragma omp for schedule(static)
            for (int64_t j = 0; j < SK; j++) {
                if (!sl) continue;
                int64_t s = j / K, t0 = (c + m * (j % K)) * TB;
                int nb = T - t0 < TB ? (int)(T - t0) : TB;
                blk_load(st, sl, re + (size_t)s * F * T, im + (size_t)s * F * T, T, t0, nb, inv_n,
                         inv_n);
                float *ys = y + (size_t)s * N;
                for (int k = 0; k < nb; k++) {
                    c2r_frame(st, sl, k);
                    int64_t i0 = (t0 + k) * hop - pad;
                    int n0 = i0 < 0 ? (int)-i0 : 0, n1 = i0 + n_fft > N ? (int)(N - i0) : n_fft;
                    const float *fr = sl->frame;
#pragma omp simd
                    for (int n = n0; n < n1; n++) ys[i0 + n] += fr[n];
                }
            }
        }
        /* divide by the window envelope, CH samples at a time */
#pragma omp for schedule(static)
        for (int64_t ch = 0; ch < nch; ch++) {
            float ie[CH];
            int64_t i0 = ch * CH;
            int n = N - i0 < CH ? (int)(N - i0) : CH;
            for (int q = 0; q < n; q++) ie[q] = inv_env_at(st, i0 + q + pad, T);
            for (int s = 0; s < S; s++) {
                float *ys = y + (size_t)s * N + i0;
#pragma omp simd
                for (int q = 0; q < n; q++) ys[q] *= ie[q];
            }
        }
        slot_put(st, sl);
    }
    return fail ? scratch_fail("istft") : TF_OK;
}

tf_status tf_istft_backward(tf_stft *st, float *dre, float *dim, const float *dy, int S,
                            int64_t N) {
    TF_TRY(check_args("istft backward", S, N));
    const int F = st->nbins, n_fft = st->n_fft, hop = st->hop;
    const int64_t T = tf_stft_frames(st, N), nblk = (T + TB - 1) / TB, SB = (int64_t)S * nblk;
    const float inv_n = 1.0f / (float)n_fft;
    int fail = 0;
#pragma omp parallel
    {
        slot *sl = slot_enter(st, &fail);
#pragma omp for schedule(static)
        for (int64_t j = 0; j < SB; j++) {
            if (!sl) continue;
            int64_t s, t0;
            int nb = block_at(j, nblk, T, &s, &t0);
            const float *g = dy + (size_t)s * N, *w = st->window;
            float *fr = sl->frame;
            for (int k = 0; k < nb; k++) {
                int64_t p0 = (t0 + k) * hop, i0 = p0 - st->pad;
                if (p0 >= n_fft - hop && (p0 + n_fft - 1) / hop <= T - 1 && i0 >= 0 &&
                    i0 + n_fft <= N) {
                    /* every sample inside the signal and under the periodic envelope */
                    const float *ie = st->inv_env_frame;
#pragma omp simd
                    for (int n = 0; n < n_fft; n++) fr[n] = g[i0 + n] * ie[n] * w[n] * inv_n;
                } else {
                    for (int n = 0; n < n_fft; n++) {
                        int64_t i = i0 + n;
                        float v = i >= 0 && i < N ? g[i] * inv_env_at(st, p0 + n, T) : 0.f;
                        fr[n] = v * w[n] * inv_n;
                    }
                }
                fftwf_execute_dft_r2c(st->r2c, fr, sl->blk + (size_t)k * st->fp);
            }
            blk_add_c2r_adjoint(st, sl, dre + (size_t)s * F * T, dim + (size_t)s * F * T, T, t0,
                                nb);
        }
        slot_put(st, sl);
    }
    return fail ? scratch_fail("istft backward") : TF_OK;
}

tf_status tf_stft_backward(tf_stft *st, float *dx, const float *dre, const float *dim, int S,
                           int64_t N) {
    TF_TRY(check_args("stft backward", S, N));
    const int F = st->nbins, n_fft = st->n_fft, hop = st->hop, pad = st->pad;
    const int64_t T = tf_stft_frames(st, N), m = block_colours(st);
    const int reflect = N > pad;
    /* interior frames [ta, tb): all their samples inside the signal, no padding */
    int64_t ta = (pad + hop - 1) / hop, tb = N + pad - n_fft >= 0 ? (N + pad - n_fft) / hop + 1 : 0;
    if (ta > T) ta = T;
    if (tb > T) tb = T;
    if (tb < ta) tb = ta;
    const int64_t nblk = (tb - ta + TB - 1) / TB;
    /* d(rfft)/d(frame) is c2r with the middle bins halved: they occur once in the onesided
     * spectrum but twice in c2r's hermitian sum */
    const float edge_scale = 1.f, mid_scale = 0.5f;
    int fail = 0;
#pragma omp parallel
    {
        slot *sl = slot_enter(st, &fail);
        for (int64_t c = 0; c < m; c++) {
            const int64_t K = colour_count(nblk, c, m), SK = (int64_t)S * K;
#pragma omp for schedule(static)
            for (int64_t j = 0; j < SK; j++) {
                if (!sl) continue;
                int64_t s = j / K, t0 = ta + (c + m * (j % K)) * TB;
                int nb = tb - t0 < TB ? (int)(tb - t0) : TB;
                blk_load(st, sl, dre + (size_t)s * F * T, dim + (size_t)s * F * T, T, t0, nb,
                         edge_scale, mid_scale);
                for (int k = 0; k < nb; k++) {
                    c2r_frame(st, sl, k);
                    float *d = dx + (size_t)s * N + ((t0 + k) * hop - pad);
                    const float *fr = sl->frame;
#pragma omp simd
                    for (int n = 0; n < n_fft; n++) d[n] += fr[n];
                }
            }
        }
        /* frames reaching into the padding, in frame order, one signal per thread */
#pragma omp for schedule(static)
        for (int s = 0; s < S; s++) {
            if (!sl) continue;
            const int64_t range[2][2] = {{0, ta}, {tb, T}};
            for (int q = 0; q < 2; q++)
                for (int64_t t0 = range[q][0]; t0 < range[q][1]; t0 += TB) {
                    int nb = range[q][1] - t0 < TB ? (int)(range[q][1] - t0) : TB;
                    blk_load(st, sl, dre + (size_t)s * F * T, dim + (size_t)s * F * T, T, t0, nb,
                             edge_scale, mid_scale);
                    for (int k = 0; k < nb; k++) {
                        c2r_frame(st, sl, k);
                        float *d = dx + (size_t)s * N;
                        int64_t i0 = (t0 + k) * hop - pad;
                        for (int n = 0; n < n_fft; n++) {
                            int64_t i = src_index(i0 + n, N, reflect);
                            if (i >= 0) d[i] += sl->frame[n];
                        }
                    }
                }
        }
        slot_put(st, sl);
    }
    return fail ? scratch_fail("stft backward") : TF_OK;
}

/* ---- elementwise ---- */

#define PAR_MIN 65536

void tf_magphase(float *mag, float *pr, float *pi, const float *re, const float *im, size_t n) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t k = 0; k < n; k++) {
        float p, q;
        const float m = tf_magphase_elem(re[k], im[k], &p, &q);
        if (mag) mag[k] = m;
        if (pr) pr[k] = p;
        if (pi) pi[k] = q;
    }
}

void tf_mag_backward(float *dre, float *dim, const float *dmag, const float *re, const float *im,
                     size_t n) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t k = 0; k < n; k++) {
        double a = re[k], b = im[k], m = sqrt(a * a + b * b);
        if (m > 0) {
            dre[k] += (float)(dmag[k] * a / m);
            dim[k] += (float)(dmag[k] * b / m);
        }
    }
}

void tf_combine_forward(float *yr, float *yi, const float *mag, const float *pr, const float *pi,
                        size_t n) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t k = 0; k < n; k++) {
        yr[k] = mag[k] * pr[k];
        yi[k] = mag[k] * pi[k];
    }
}

void tf_combine_backward(float *dmag, const float *dyr, const float *dyi, const float *pr,
                         const float *pi, size_t n) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t k = 0; k < n; k++) dmag[k] += pr[k] * dyr[k] + pi[k] * dyi[k];
}
